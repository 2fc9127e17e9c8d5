"""What one DVP iteration collects: its settings (:class:`CollectConfig`), its dataset (:class:`SolvedDataset`),
and the goal state its value targets are anchored at (:func:`checked_goal`). No torch here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from dvp_rl.config import integer
from dvp_rl.control.ocp import guess_names


@dataclass(frozen=True)
class CollectConfig:
    """How each DVP iteration collects its dataset of DDP solves.

    :param max_iter: DDP iteration budget per solve
    :param th_stop: DDP stopping threshold
    :param initial_terminal: terminal cost of the first iteration: ``"zero"`` or ``"env"``
    :param final_state_fraction: share of each iteration's start states drawn from the previous
        iteration's plan end states ``x_T`` (where the DDP evaluates the network as terminal cost),
        the rest from ``env.sample_states``: the network must be accurate where plans end
    :param anchor_goal: relative value iteration: subtract from every value target the value, under
        the same terminal network, of ``env.unwrapped.goal_state`` (a zero-cost equilibrium, where the
        optimal value is 0) when the env defines one, so that an error of the network at the goal
        does not re-enter every later target
    :param n_validation: fixed states on which the Bellman residual (``dvp/bellman_residual``) is measured
    :param guesses: the initial guesses each start state is solved from, the cheapest converged solve
        giving its targets (names of :data:`dvp_rl.control.ocp.GUESSES`, e.g. ``("hold", "pushes")``);
        ``None``: the env's ``ddp_guesses``. Each guess is one more DDP solve per sample.
    :raises ValueError: a setting out of its range, an empty or unknown guess name
    """

    max_iter: int = 300
    th_stop: float = 1e-9
    initial_terminal: str = "zero"
    final_state_fraction: float = 0.25
    anchor_goal: bool = True
    n_validation: int = 200
    guesses: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_iter", integer("collect.max_iter", self.max_iter, 1))
        object.__setattr__(self, "n_validation", integer("collect.n_validation", self.n_validation, 1))
        if not (math.isfinite(float(self.th_stop)) and float(self.th_stop) > 0):
            raise ValueError(f"collect.th_stop must be finite and > 0, got {self.th_stop}")
        if self.initial_terminal not in ("zero", "env"):
            raise ValueError(f"collect.initial_terminal must be 'zero' or 'env', got {self.initial_terminal!r}")
        if not 0.0 <= float(self.final_state_fraction) < 1.0:
            raise ValueError(f"collect.final_state_fraction must be in [0, 1), got {self.final_state_fraction}")
        if self.guesses is not None:
            object.__setattr__(self, "guesses", guess_names(self.guesses, "collect.guesses"))
            if not self.guesses:
                raise ValueError("collect.guesses: name at least one initial guess, or None for the env's ddp_guesses")


class SolvedDataset(NamedTuple):
    """What one iteration's collection gives the fit: the converged solves' start states ``x``
    (N, nx) and targets ``V`` (N,), ``Vx`` (N, nx), ``Vxx`` (N, nx, nx) (relative to the anchor),
    with the counts of the iteration's log: ``n_final`` start states drawn from plan ends,
    ``n_failed`` unconverged and ``n_lost`` lost solves, ``anchor`` (the value subtracted),
    ``mean_iterations`` of the converged solves and ``solve_s`` seconds spent."""

    x: np.ndarray
    V: np.ndarray
    Vx: np.ndarray
    Vxx: np.ndarray
    n_solved: int
    n_final: int
    n_failed: int
    n_lost: int
    anchor: float
    mean_iterations: float
    solve_s: float


def checked_goal(system: Any) -> np.ndarray | None:
    """``system.goal_state`` as an array (nx,), checked to be a zero-cost equilibrium under its
    ``goal_control`` (zero control when the env has none); ``None`` if the env has no goal state.

    :raises ValueError: when the state has the wrong shape, is not finite, moves under its goal
        control, or costs anything (running or terminal)
    """
    goal = getattr(system, "goal_state", None)
    if goal is None:
        return None
    name = type(system).__name__
    goal = system.check_state(goal, "goal_state")  # float64, shape (nx,), finite
    held = getattr(system, "goal_control", None)
    u = np.zeros(system.nu) if held is None else system.check_control(held, "goal_control")
    drift = float(np.max(np.abs(system.dynamics(goal, u) - goal)))
    cost, terminal = float(system.cost(goal, u)), float(system.terminal_cost(goal))
    if drift > 1e-9 or abs(cost) > 1e-10 or abs(terminal) > 1e-10:
        raise ValueError(
            f"{name}.goal_state {goal} is not a zero-cost equilibrium (its goal_control {u} moves it by {drift:.3g}, running cost "
            f"{cost:.3g}, terminal cost {terminal:.3g}); set goal_state = None or DVP(collect={{'anchor_goal': False}})"
        )
    return goal
