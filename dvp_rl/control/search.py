"""Wrappers around a controller that add a task's search, Gymnasium-wrapper style.

:class:`FirstStepSearch` chooses, at an episode's first step, between strategies that a
short-horizon plan with a learned terminal value cannot tell apart (e.g. a pendulum's "over the
top on this swing" against "one more pump"): open-loop bang-bang prefixes from
:func:`dvp_rl.control.ocp.pushes`, each scored by a rollout of the controller on its model::

    controller = FirstStepSearch(MPCController(env, 20, terminal=arrays), steps=(2, 4, 10), rollout=40)
    step = controller.step(x)           # the first step searches; later steps are the MPC's

Its price is paid at the first step (``1 + 2**nu * len(steps) * (1 + len(reverse_steps))``
rollouts of ``rollout`` controller steps); the other steps cost what the wrapped controller costs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dvp_rl.control.mpc import BatchController, MPCController, MPCStep
from dvp_rl.control.ocp import pushes
from dvp_rl.control.rollout import ModelEnv, run_episode
from dvp_rl.value.arrays import NetworkArrays, numpy_value


class FirstStepSearch(BatchController):
    """At an episode's first step, play the best of a few open-loop pushes before the controller takes over.

    Candidates: no push, and every full-bound push (each sign pattern in ``{low, high}^nu``) held
    ``k`` steps for each ``k`` of ``steps``, alone and followed by the opposite push held ``j`` steps
    for each ``j`` of ``reverse_steps`` (bang-bang with one switch: a swing-up's pumps). Each is
    scored by a rollout on the controller's model (a :class:`~dvp_rl.control.rollout.ModelEnv`): the
    prefix, then the controller, ``rollout`` steps in all, summing ``gamma**t`` times the model's
    costs plus ``gamma**n V(x_n)`` of a network terminal (0 without one). The cheapest prefix is
    applied open loop (alongside each of its steps one warm-started solve keeps the controller's
    plan going: ``single_solve``), then the controller. The rollouts run on a copy of the
    controller (its own warm starts), so the wrapped controller's state is left alone. A new
    episode is told by the wrapped controller's rule (:meth:`is_new_episode`; the pushes applied are
    recorded with it), and :meth:`predict` without ``episode_start`` then searches again.

    :param controller: the :class:`~dvp_rl.control.mpc.MPCController` to wrap
    :param steps: push durations ``k`` (integers >= 1, at least one)
    :param rollout: steps of each scoring rollout (>= 1)
    :param reverse_steps: durations ``j`` of the opposite push after each push (integers >= 1)
    :raises ValueError: bad durations, or a terminal that is neither ``None`` nor a network
    """

    def __init__(self, controller: MPCController, steps: tuple[int, ...], rollout: int = 60, reverse_steps: tuple[int, ...] = ()) -> None:
        for name, values in (("steps", steps), ("reverse_steps", reverse_steps)):
            if any(isinstance(k, bool) or int(k) != k or k < 1 for k in values):
                raise ValueError(f"{name} must be integers >= 1, got {tuple(values)}")
        if not steps:
            raise ValueError("FirstStepSearch needs at least one push duration in steps")
        if isinstance(rollout, bool) or int(rollout) != rollout or rollout < 1:
            raise ValueError(f"rollout must be an integer >= 1, got {rollout}")
        if not (controller.terminal is None or isinstance(controller.terminal, NetworkArrays)):
            raise ValueError(f"FirstStepSearch scores rollouts with the terminal value: it needs no terminal or a network one, not {controller.terminal!r}")
        self.controller = controller
        self.env = controller.env
        self.steps = tuple(int(k) for k in steps)
        self.rollout = int(rollout)
        self.reverse_steps = tuple(int(j) for j in reverse_steps)
        self._scout = MPCController(controller.env, **controller.settings())  # plays the scoring rollouts
        self._prefixes: dict[int, list[np.ndarray]] = {}  # per env index: the prefix controls still to apply

    @property
    def horizon(self) -> int:
        """The wrapped controller's horizon."""
        return self.controller.horizon

    def settings(self) -> dict[str, Any]:
        """The search's own arguments (``steps``, ``rollout``, ``reverse_steps``)."""
        return {"steps": self.steps, "rollout": self.rollout, "reverse_steps": self.reverse_steps}

    def reset(self, index: int | None = None) -> None:
        """A new episode for env ``index`` (``None``: every env): the next step searches again."""
        self.controller.reset(index)
        if index is None:
            self._prefixes.clear()
        else:
            self._prefixes.pop(int(index), None)

    def is_new_episode(self, x: np.ndarray, index: int = 0) -> bool:
        """Whether state ``x`` of env ``index`` starts a new episode (the wrapped controller's
        :meth:`~dvp_rl.control.mpc.MPCController.is_new_episode`)."""
        return self.controller.is_new_episode(x, index)

    def candidates(self) -> list[list[np.ndarray]]:
        """The prefixes the search scores: ``[]`` first, then for each ``k`` of ``steps`` and ``j`` of
        ``(0,) + reverse_steps`` every sign pattern of :func:`~dvp_rl.control.ocp.pushes` (lists of (nu,) controls)."""
        low, high = self.env.action_low, self.env.action_high
        return [[]] + [list(seq) for k in self.steps for j in (0,) + self.reverse_steps for seq in pushes(low, high, k, reverse=j)]

    def step(self, x: np.ndarray, index: int = 0) -> MPCStep:
        """The controller's step from ``x`` (nx,) for env ``index``, after the search at an episode's first step.

        The first step's :class:`~dvp_rl.control.mpc.MPCStep` counts the search's solves, iterations
        and node evaluations, and its seconds include the search.
        """
        t0 = time.perf_counter()
        index = int(index)
        x = self.env.check_state(x, "x")
        spent = (0, 0, 0)
        if index not in self._prefixes:
            self._prefixes[index], spent = self._search(x)
        prefix = self._prefixes[index]
        step = self.controller.step(x, index, single_solve=bool(prefix))
        action = step.action
        if prefix:
            action = prefix.pop(0)
            self.controller.record_action(x, action, index)  # the push, not the plan's control, was applied
        return step._replace(action=action, solves=step.solves + spent[0], iterations=step.iterations + spent[1],
                             model_evaluations=step.model_evaluations + spent[2], seconds=time.perf_counter() - t0)  # fmt: skip

    def scores(self, x: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """The rollout score of each of :meth:`candidates` from ``x`` (nx,), shape (n_candidates,)
        (``inf`` where the controller found no finite plan), and the solves, iterations and node
        evaluations of the rollouts."""
        scout, gamma = self._scout, self._scout.ocp.gamma
        candidates = self.candidates()
        scores = np.full(len(candidates), np.inf)
        solves, iterations, nodes = 0, 0, 0
        for i, prefix in enumerate(candidates):
            scout.reset()
            remaining = list(prefix)
            steps: list[MPCStep] = []

            def act(states: np.ndarray, first: bool) -> np.ndarray:
                steps.append(scout.step(states[0], single_solve=bool(remaining)))
                return (remaining.pop(0) if remaining else steps[-1].action)[None]

            try:
                run = run_episode(act, ModelEnv(self.env), self.rollout, options={"state": x})
                score = 0.0
                for t, reward in enumerate(run.rewards):
                    score += gamma**t * float(-reward)
                if isinstance(scout.terminal, NetworkArrays):
                    score += gamma**self.rollout * float(numpy_value(scout.terminal, run.observations[-1]))
                scores[i] = score
            except RuntimeError:  # the controller found no finite plan on this rollout
                pass
            solves += sum(s.solves for s in steps)
            iterations += sum(s.iterations for s in steps)
            nodes += sum(s.model_evaluations for s in steps)
        scout.reset()
        return scores, (solves, iterations, nodes)

    def _search(self, x: np.ndarray) -> tuple[list[np.ndarray], tuple[int, int, int]]:
        """The cheapest of :meth:`candidates` from ``x`` by rollout score (the first on ties; no push
        when none has a finite score), and the solves, iterations and node evaluations of the rollouts."""
        scores, spent = self.scores(x)
        if not np.isfinite(scores).any():
            return [], spent
        return list(self.candidates()[int(np.argmin(scores))]), spent
