"""The model-predictive controller of dvp_rl: the one closed loop of ``DVP.predict``, the benchmark and the experiments.

At every control step the controller solves a horizon-``T`` problem of the env from the current
state (Crocoddyl box-FDDP through :class:`dvp_rl.control.ocp.OptimalControlProblem`), with a terminal
cost that is typically the learned value (``gamma**T * V(x_T)``), and applies the first control.
Per env index it keeps the previous plan, shifted by one step, as the next warm start; a
warm-started solve that does not converge is retried from the default cold guess (box-FDDP
can stall when warm-started on saturated controls). No torch here: the learned value arrives
as :class:`~dvp_rl.value.arrays.NetworkArrays`::

    controller = MPCController(env, horizon=20, terminal=agent.value_arrays)
    step = controller.step(x)          # step.action (nu,), step.plan (SolveResult), timings
    controller.reset()                 # a new episode: drop the warm starts

With ``prefix_steps`` the first step of an episode also searches over strategies: full-bound
pushes held for a few steps, each followed by this controller, simulated on the model; the
cheapest push is played open loop before the MPC takes over (a rollout of the controller itself
sees past its horizon, where the learned value rounds off the choice between swing-ups).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from dvp_rl.control.ocp import GUESSES, OptimalControlProblem, SolveResult, TerminalSpec
from dvp_rl.value.arrays import NetworkArrays, numpy_value

#: the env index the prefix search simulates its rollouts under (its own warm start and prefix)
_SEARCH_INDEX = -1


class MPCStep(NamedTuple):
    """One control step.

    ``action`` (nu,): the control applied, inside the action bounds; ``plan``: the solve whose
    first control it is (``plan.cost`` is the predicted cost-to-go, terminal included);
    ``solves``: DDP solves made at this step (warm start, cold retry, guesses); ``iterations``
    and ``n_transitions``: DDP iterations and node evaluations summed over them; ``seconds``:
    wall-clock of the step.
    """

    action: np.ndarray
    plan: SolveResult
    solves: int
    iterations: int
    n_transitions: int
    seconds: float


class MPCController:
    """Receding-horizon control of a differentiable env with a terminal cost (e.g. a learned value).

    :param env: a dvp_rl env (wrappers allowed): the model the controller plans with
    :param horizon: the planning horizon ``T`` (running nodes, >= 1)
    :param terminal: the terminal cost (:data:`dvp_rl.control.ocp.TerminalSpec`): ``None`` (zero),
        ``"env"``, or an exported value network (scaled by ``gamma**T``)
    :param gamma: discount of the plan's costs
    :param max_iter: DDP iterations per solve; with a small budget the (unconverged) plan is applied as it is
    :param th_stop: DDP stopping threshold
    :param retry_cold: re-solve from the default guess when a warm-started solve does not
        converge, and keep that solve when it converged (or the warm one failed outright)
    :param guesses: named initial guesses (:data:`dvp_rl.control.ocp.GUESSES`) also solved (multi-start):
        the plan of lowest predicted cost (terminal included) among the converged ones is applied.
        Escapes the local optima a warm start stays in (which way to swing, how many pumps) at
        the price of one solve per guess.
    :param guess_margin: solve the ``guesses`` only when the first plan did not converge or its
        predicted cost exceeds the learned value of the state by more than this (the plan is worse
        than the value says is possible: a local optimum); ``None``: at every step. Needs a
        network terminal. Where plan and value agree (e.g. balancing at the goal) a step costs
        one solve.
    :param prefix_steps: strategy search at an episode's first step (an env index without a warm
        start): candidate open-loop prefixes are the full-bound pushes (every sign pattern in
        ``{low, high}^nu``) held for each ``k`` of ``prefix_steps`` steps, and the empty prefix. Each
        is scored by a rollout on the model: the prefix, then this controller, ``prefix_rollout``
        steps in all, summing ``gamma**t`` times the model's costs plus ``gamma**n V(x_n)`` of the
        terminal (0 without one). The cheapest prefix is applied open loop (alongside each of its
        steps one warm-started solve keeps the plan going, without cold retry or guesses), then
        the MPC. Costs ``(1 + 2**nu len(prefix_steps) (1 + len(prefix_reverse_steps))) *
        prefix_rollout`` controller steps at the episode's first step; the other steps are
        unchanged. ``()``: no search. The rollouts run under env index -1 (reserved).
    :param prefix_rollout: steps of each scoring rollout (the rest of the episode scores exactly)
    :param prefix_reverse_steps: two-phase candidates too: each push of ``prefix_steps`` followed by
        the opposite push held for each ``k`` of these (bang-bang with one switch: a swing-up's pumps)
    """

    def __init__(
        self,
        env: Any,
        horizon: int,
        terminal: TerminalSpec = None,
        gamma: float = 1.0,
        max_iter: int = 300,
        th_stop: float = 1e-9,
        retry_cold: bool = True,
        guesses: tuple[str, ...] = (),
        guess_margin: float | None = None,
        prefix_steps: tuple[int, ...] = (),
        prefix_rollout: int = 60,
        prefix_reverse_steps: tuple[int, ...] = (),
    ) -> None:
        self.ocp = OptimalControlProblem(env, horizon, gamma, terminal, max_iter, th_stop)
        self.env = self.ocp.env
        self.retry_cold = bool(retry_cold)
        unknown = sorted(set(guesses) - set(GUESSES))
        if unknown:
            raise ValueError(f"unknown initial guesses {unknown}; expected names among {GUESSES}")
        self.guesses = tuple(guesses)
        if guess_margin is not None and not isinstance(terminal, NetworkArrays):
            raise ValueError("guess_margin compares plans with the learned value: it needs a network terminal (NetworkArrays)")
        if guess_margin is not None and not float(guess_margin) >= 0:
            raise ValueError(f"guess_margin must be >= 0 or None, got {guess_margin}")
        self.guess_margin = None if guess_margin is None else float(guess_margin)
        self._warm_starts: dict[int, np.ndarray] = {}
        for name, steps in (("prefix_steps", prefix_steps), ("prefix_reverse_steps", prefix_reverse_steps)):
            if any(int(k) != k or k < 1 for k in steps):
                raise ValueError(f"{name} must be integers >= 1, got {tuple(steps)}")
        if prefix_reverse_steps and not prefix_steps:
            raise ValueError("prefix_reverse_steps follow the pushes of prefix_steps: give prefix_steps too")
        if int(prefix_rollout) != prefix_rollout or prefix_rollout < 1:
            raise ValueError(f"prefix_rollout must be an integer >= 1, got {prefix_rollout}")
        if prefix_steps and not (terminal is None or isinstance(terminal, NetworkArrays)):
            raise ValueError(f"prefix_steps scores rollouts with the terminal value: it needs no terminal or a network one, not {terminal!r}")
        self.prefix_steps = tuple(int(k) for k in prefix_steps)
        self.prefix_rollout = int(prefix_rollout)
        self.prefix_reverse_steps = tuple(int(k) for k in prefix_reverse_steps)
        self._terminal = terminal
        self._prefixes: dict[int, list[np.ndarray]] = {}  # per env index: the prefix controls still to apply

    @property
    def horizon(self) -> int:
        """The planning horizon ``T``."""
        return self.ocp.horizon

    def reset(self, index: int | None = None) -> None:
        """Drop the warm start of env ``index`` (``None``: of every env), as at an episode's start."""
        if index is None:
            self._warm_starts.clear()
            self._prefixes.clear()
        else:
            self._warm_starts.pop(int(index), None)
            self._prefixes.pop(int(index), None)

    def step(self, x: np.ndarray, index: int = 0) -> MPCStep:
        """Plan from state ``x`` (nx,) for env ``index`` and return the first control with the plan.

        :raises ValueError: ``x`` of the wrong shape or not finite
        :raises RuntimeError: no solve gave finite controls (the warm start of ``index`` is dropped)
        """
        t0 = time.perf_counter()
        x = self.env.check_state(x, "x")
        index = int(index)
        warm = self._warm_starts.get(index)
        solves = iterations = nodes = 0
        if self.prefix_steps and warm is None and index not in self._prefixes:
            self._prefixes[index], solves, iterations, nodes = self._search_prefix(x)
        pushing = bool(self._prefixes.get(index))  # a prefix step: the plan only keeps the warm start going
        plan = self.ocp.solve(x, us_init=warm)
        solves, iterations, nodes = solves + 1, iterations + plan.iterations, nodes + plan.n_transitions
        if warm is not None and self.retry_cold and not plan.converged and not pushing:
            cold = self.ocp.solve(x)
            solves, iterations, nodes = solves + 1, iterations + cold.iterations, nodes + cold.n_transitions
            if cold.converged or not np.all(np.isfinite(plan.us)):
                plan = cold
        for name in self.guesses if not pushing and self._needs_guesses(x, plan) else ():
            xs_init, us_init = self.ocp.initial_guess(x, name)
            other = self.ocp.solve(x, xs_init=xs_init, us_init=us_init)
            solves, iterations, nodes = solves + 1, iterations + other.iterations, nodes + other.n_transitions
            if other.converged and (not plan.converged or other.cost < plan.cost):
                plan = other
        if not np.all(np.isfinite(plan.us)):
            self.reset(index)
            raise RuntimeError(f"MPC (T={self.horizon}) found no finite plan from state {x}")
        self._warm_starts[index] = np.concatenate([plan.us[1:], plan.us[-1:]])
        prefix = self._prefixes.get(index)
        action = prefix.pop(0) if prefix else np.clip(plan.us[0], self.env.action_low, self.env.action_high)
        return MPCStep(action, plan, solves, iterations, nodes, time.perf_counter() - t0)

    def prefix_candidates(self) -> list[list[np.ndarray]]:
        """The open-loop prefixes the search scores: ``[]`` first, then for each ``k`` of
        ``prefix_steps`` every sign pattern in ``{low, high}^nu`` held for ``k`` steps, alone and
        followed by the opposite pattern held for each of ``prefix_reverse_steps`` (lists of (nu,) controls)."""
        import itertools

        low, high = self.env.action_low, self.env.action_high
        signs = [np.array(s) for s in itertools.product((-1, 1), repeat=self.env.nu)]
        push = lambda sign: np.where(sign > 0, high, low).astype(np.float64)  # noqa: E731
        return [[]] + [[push(sign)] * k + [push(-sign)] * j for k in self.prefix_steps for j in (0,) + self.prefix_reverse_steps for sign in signs]

    def _search_prefix(self, x: np.ndarray) -> tuple[list[np.ndarray], int, int, int]:
        """The cheapest of :meth:`prefix_candidates` from ``x`` by rollout score, and the solves,
        iterations and node evaluations the rollouts took."""
        best, best_score, solves, iterations, nodes = [], np.inf, 0, 0, 0
        for prefix in self.prefix_candidates():
            self.reset(_SEARCH_INDEX)
            self._prefixes[_SEARCH_INDEX] = list(prefix)
            score, xt = 0.0, x
            try:
                for t in range(self.prefix_rollout):
                    step = self.step(xt, _SEARCH_INDEX)
                    solves, iterations, nodes = solves + step.solves, iterations + step.iterations, nodes + step.n_transitions
                    score += self.ocp.gamma**t * float(self.env.cost(xt, step.action))
                    xt = self.env.dynamics(xt, step.action)
            except RuntimeError:  # the controller found no finite plan on this rollout
                score = np.inf
            if isinstance(self._terminal, NetworkArrays) and np.isfinite(score):
                score += self.ocp.gamma**self.prefix_rollout * float(numpy_value(self._terminal, xt))
            if score < best_score:
                best, best_score = list(prefix), score
        self.reset(_SEARCH_INDEX)
        return best, solves, iterations, nodes

    def _needs_guesses(self, x: np.ndarray, plan: SolveResult) -> bool:
        """Whether this step tries the multi-start guesses (see ``guess_margin``)."""
        if self.guess_margin is None or not plan.converged:
            return True
        return plan.cost > float(numpy_value(self._terminal, x)) + self.guess_margin

    def predict(self, states: np.ndarray, episode_start: np.ndarray | None = None) -> np.ndarray:
        """Actions (N, nu) of a batch of states (N, nx), one env index per row.

        :param episode_start: (N,) bools; a true entry drops that env's warm start first
        """
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2:
            raise ValueError(f"states must have shape (N, {self.env.nx}), got {states.shape}")
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            if starts.shape != (len(states),):
                raise ValueError(f"episode_start must have {len(states)} entries, got {starts.size}")
            for i in np.flatnonzero(starts):
                self.reset(int(i))
        return np.array([self.step(x, i).action for i, x in enumerate(states)]).reshape(len(states), self.env.nu)


class ClosedLoop(NamedTuple):
    """A closed-loop run on the controller's own model.

    ``xs`` (n+1, nx), ``us`` (n, nu), ``costs`` (n,): the running cost of each step; per step
    ``seconds`` (n,), ``iterations`` (n,), ``n_transitions`` (n,) of the controller, and
    ``converged`` (n,): whether the applied plan met the stopping criterion.
    """

    xs: np.ndarray
    us: np.ndarray
    costs: np.ndarray
    seconds: np.ndarray
    iterations: np.ndarray
    n_transitions: np.ndarray
    converged: np.ndarray


def closed_loop(controller: MPCController, x0: np.ndarray, n_steps: int) -> ClosedLoop:
    """Run ``controller`` for ``n_steps`` steps from ``x0`` (nx,) on its env's model
    (``env.dynamics``, ``env.cost``), from a fresh warm start (env index 0)."""
    if int(n_steps) < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    env = controller.env
    controller.reset(0)
    xs, steps = [env.check_state(x0, "x0")], []
    costs = []
    for _ in range(int(n_steps)):
        step = controller.step(xs[-1])
        steps.append(step)
        costs.append(env.cost(xs[-1], step.action))
        xs.append(env.dynamics(xs[-1], step.action))
    column = lambda f, dtype: np.array([f(s) for s in steps], dtype=dtype)  # noqa: E731
    return ClosedLoop(
        xs=np.array(xs),
        us=np.array([s.action for s in steps]).reshape(len(steps), env.nu),
        costs=np.array(costs, dtype=np.float64),
        seconds=column(lambda s: s.seconds, np.float64),
        iterations=column(lambda s: s.iterations, np.int64),
        n_transitions=column(lambda s: s.n_transitions, np.int64),
        converged=column(lambda s: s.plan.converged, bool),
    )
