"""The settings of DVP's controller as values: :class:`MPCConfig` and its :class:`SearchConfig`.

``DVP(mpc=...)`` takes one (or a dict of its fields); :meth:`MPCConfig.make` builds the controller
that ``predict`` runs: an :class:`~dvp_rl.control.mpc.MPCController`, wrapped in a
:class:`~dvp_rl.control.search.FirstStepSearch` when a search is set. No torch here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dvp_rl.config import as_config, integer
from dvp_rl.control.mpc import GUESS_WHEN, BatchController, MPCController
from dvp_rl.control.ocp import TerminalSpec, guess_names
from dvp_rl.control.search import FirstStepSearch
from dvp_rl.value.arrays import NetworkArrays


@dataclass(frozen=True)
class SearchConfig:
    """The first-step search (:class:`~dvp_rl.control.search.FirstStepSearch`) around the controller.

    :param steps: push durations (integers >= 1, at least one)
    :param reverse_steps: durations of the opposite push after each push (integers >= 1)
    :param rollout: steps of each scoring rollout (>= 1)
    """

    steps: tuple[int, ...]
    reverse_steps: tuple[int, ...] = ()
    rollout: int = 60

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(integer("search.steps", k, 1) for k in self.steps))
        object.__setattr__(self, "reverse_steps", tuple(integer("search.reverse_steps", k, 1) for k in self.reverse_steps))
        object.__setattr__(self, "rollout", integer("search.rollout", self.rollout, 1))
        if not self.steps:
            raise ValueError("search.steps needs at least one push duration")


@dataclass(frozen=True)
class MPCConfig:
    """How ``DVP.predict`` controls: an :class:`~dvp_rl.control.mpc.MPCController` with the learned value.

    :param horizon: planning horizon (``None``: DVP's training horizon)
    :param max_iter: DDP iterations per solve (``None``: the training solves')
    :param th_stop: DDP stopping threshold (``None``: the training solves')
    :param retry_cold: re-solve from the cold guess when a warm-started solve does not converge
    :param guesses: named initial guesses also solved (:data:`dvp_rl.control.ocp.GUESSES`)
    :param guess_margin: solve the guesses only when the plan costs more than the learned value + this
    :param guess_when: ``"every_step"`` or ``"restart"`` (see :class:`~dvp_rl.control.mpc.MPCController`)
    :param time_budget: seconds a control step may take (``None``: no limit; see
        :class:`~dvp_rl.control.mpc.MPCController`): e.g. the env's control period
    :param line_search_steps: step lengths each DDP iteration may try (``None``: Crocoddyl's ten):
        fewer bound a step's time under ``time_budget`` (see :class:`~dvp_rl.control.mpc.MPCController`)
    :param search: a first-step search around the controller (:class:`SearchConfig` or a dict of its fields)
    :param env_kwargs: arguments of the model the controller plans with, over those of the env DVP
        learns on (e.g. ``{"rk_order": 2}``: a MuJoCo twin's cheaper integrator); the model must
        have the same states and controls, and the agent keeps acting in its own env's action space
    :raises ValueError: a setting out of its range, an unknown guess name
    """

    horizon: int | None = None
    max_iter: int | None = None
    th_stop: float | None = None
    retry_cold: bool = True
    guesses: tuple[str, ...] = ()
    guess_margin: float | None = None
    guess_when: str = "every_step"
    time_budget: float | None = None
    line_search_steps: int | None = None
    search: SearchConfig | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.horizon is not None:
            object.__setattr__(self, "horizon", integer("mpc.horizon", self.horizon, 1))
        if self.max_iter is not None:
            object.__setattr__(self, "max_iter", integer("mpc.max_iter", self.max_iter, 1))
        if self.th_stop is not None and not (math.isfinite(float(self.th_stop)) and float(self.th_stop) > 0):
            raise ValueError(f"mpc.th_stop must be finite and > 0, got {self.th_stop}")
        object.__setattr__(self, "guesses", guess_names(self.guesses, "mpc.guesses"))
        if self.guess_margin is not None and not float(self.guess_margin) >= 0:
            raise ValueError(f"mpc.guess_margin must be >= 0 or None, got {self.guess_margin}")
        if self.guess_when not in GUESS_WHEN:
            raise ValueError(f"mpc.guess_when must be one of {GUESS_WHEN}, got {self.guess_when!r}")
        if self.time_budget is not None and not (math.isfinite(float(self.time_budget)) and float(self.time_budget) > 0):
            raise ValueError(f"mpc.time_budget must be a finite number of seconds > 0 or None, got {self.time_budget!r}")
        if self.line_search_steps is not None:
            object.__setattr__(self, "line_search_steps", integer("mpc.line_search_steps", self.line_search_steps, 1))
        if self.search is not None:
            object.__setattr__(self, "search", as_config(SearchConfig, self.search, "mpc.search"))
        if not isinstance(self.env_kwargs, Mapping):
            raise TypeError(f"mpc.env_kwargs must be a mapping of env arguments, got {type(self.env_kwargs).__name__}")
        object.__setattr__(self, "env_kwargs", dict(self.env_kwargs))

    def make(self, env: Any, terminal: TerminalSpec, gamma: float, horizon: int, max_iter: int, th_stop: float) -> BatchController:
        """The controller on model ``env`` with ``terminal``; ``horizon``, ``max_iter`` and ``th_stop``
        stand in for the settings left ``None``. Before any learned value (a terminal that is not a
        network) ``guess_margin`` has nothing to compare with and is dropped."""
        margin = self.guess_margin if isinstance(terminal, NetworkArrays) else None
        controller = MPCController(
            env, self.horizon or horizon, terminal, gamma, self.max_iter or max_iter, self.th_stop or th_stop,
            self.retry_cold, self.guesses, margin, self.guess_when, self.time_budget, self.line_search_steps,
        )  # fmt: skip
        if self.search is None:
            return controller
        return FirstStepSearch(controller, self.search.steps, self.search.rollout, self.search.reverse_steps)

    def replace(self, **changes: Any) -> MPCConfig:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
