"""The model-predictive controller of dvp_rl: the one controller of ``DVP.predict``, the harness, the oracles and the experiments.

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
    actions = controller.predict(X)    # SB3-style batch; without episode_start, new episodes are detected

Task-specific strategies (e.g. a swing-up's first push) are wrappers around a controller
(:mod:`dvp_rl.control.search`), not settings of it.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from dvp_rl.control.ocp import DEADLINE_SAFETY, OptimalControlProblem, SolveResult, TerminalSpec, guess_names
from dvp_rl.control.rollout import ModelEnv, run_episode
from dvp_rl.value.arrays import NetworkArrays, numpy_value
from envs.base import wrap_angles

#: when the controller solves its ``guesses`` (see :class:`MPCController`)
GUESS_WHEN = ("every_step", "restart")
#: the new-episode rule of :meth:`MPCController.is_new_episode`: a state farther than this many
#: standard deviations of the env's start states (in some dimension) from the model's prediction
NEW_EPISODE_THRESHOLD = 0.5
#: start states sampled (generator seed 0) to measure the spread of an env's start states
SPREAD_SAMPLES = 1000


class MPCStep(NamedTuple):
    """One control step.

    ``action`` (nu,): the control applied, inside the action bounds; ``plan``: the solve whose
    first control it is (``plan.cost`` is the predicted cost-to-go, terminal included);
    ``solves``: DDP solves made at this step (warm start, cold retry, guesses); ``iterations``
    and ``model_evaluations``: DDP iterations and node evaluations summed over them; ``seconds``:
    wall-clock of the step; ``over_budget``: the step's time budget ran out before its plan
    converged (the plan so far was applied, clipped to the bounds).
    """

    action: np.ndarray
    plan: SolveResult
    solves: int
    iterations: int
    model_evaluations: int
    seconds: float
    over_budget: bool = False


class BatchController:
    """SB3-style batch prediction over a controller's ``step(x, index)`` and ``reset(index)``, one env index per row."""

    env: Any

    def step(self, x: np.ndarray, index: int = 0) -> MPCStep:
        raise NotImplementedError

    def reset(self, index: int | None = None) -> None:
        raise NotImplementedError

    def is_new_episode(self, x: np.ndarray, index: int = 0) -> bool:
        """Whether state ``x`` (nx,) of env ``index`` starts a new episode rather than continues the
        last one (this base class never tells: ``False``; see :meth:`MPCController.is_new_episode`)."""
        return False

    def predict(self, states: np.ndarray, episode_start: np.ndarray | None = None) -> np.ndarray:
        """Actions (N, nu) of a batch of states (N, nx), one env index per row.

        :param episode_start: (N,) bools; a true entry resets that env first (drops its warm start).
            ``None`` (SB3's ``predict(obs)`` after ``env.reset()``): each env whose state
            :meth:`is_new_episode` says starts a new episode is reset first
        """
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2:
            raise ValueError(f"states must have shape (N, {self.env.nx}), got {states.shape}")
        if episode_start is None:
            for i in [i for i, x in enumerate(states) if self.is_new_episode(x, i)]:
                self.reset(i)
        else:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            if starts.shape != (len(states),):
                raise ValueError(f"episode_start must have {len(states)} entries, got {starts.size}")
            for i in np.flatnonzero(starts):
                self.reset(int(i))
        return np.array([self.step(x, i).action for i, x in enumerate(states)]).reshape(len(states), self.env.nu)


class MPCController(BatchController):
    """Receding-horizon control of a differentiable env with a terminal cost (e.g. a learned value).

    New episodes: :meth:`predict` without ``episode_start`` (SB3's habit: ``obs, _ = env.reset()``,
    then ``predict(obs)`` in a loop) resets env ``i`` first when its state starts a new episode
    (:meth:`is_new_episode`), exactly as ``episode_start[i]`` would. The rule: the state is farther
    from the model's prediction of it (``env.dynamics`` of the env's previous state and applied
    control, angle dimensions ``env.angle_dims`` wrapped) than :data:`NEW_EPISODE_THRESHOLD` (0.5)
    standard deviations of the env's start states (:data:`SPREAD_SAMPLES` of ``env.sample_states``)
    in some dimension; dimensions that every start state shares (e.g. speeds that start at rest) are
    not compared. A reset that lands that close to the prediction is not told apart (the plan goes
    on from it), and a real env that the model misses by as much (a joint limit or a speed clip the
    model lacks) reads as a new episode: pass ``episode_start`` to mark episodes yourself (SB3's
    ``evaluate_policy`` does). :meth:`step` itself never resets.

    :param env: a dvp_rl env (wrappers allowed): the model the controller plans with
    :param horizon: the planning horizon ``T`` (running nodes, an integer >= 1)
    :param terminal: the terminal cost (:data:`dvp_rl.control.ocp.TerminalSpec`): ``None`` (zero),
        ``"env"``, or an exported value network (scaled by ``gamma**T``)
    :param gamma: discount of the plan's costs
    :param max_iter: DDP iterations per solve (an integer >= 1); with a small budget the
        (unconverged) plan is applied as it is
    :param th_stop: DDP stopping threshold (finite, > 0)
    :param retry_cold: re-solve from the default guess when a warm-started solve does not
        converge, and keep that solve when it converged (or the warm one failed outright)
    :param guesses: named initial guesses (:data:`dvp_rl.control.ocp.GUESSES`) also solved (multi-start):
        the plan of lowest predicted cost (terminal included) among the converged ones is applied.
        Escapes the local optima a warm start stays in (which way to swing, how many pumps) at
        the price of one solve per guess.
    :param guess_margin: with ``guess_when="every_step"``, solve the ``guesses`` only when the first
        plan did not converge or its predicted cost exceeds the learned value of the state by more
        than this (the plan is worse than the value says is possible: a local optimum); ``None``: at
        every step. Needs a network terminal. Where plan and value agree (e.g. balancing at the
        goal) a step costs one solve.
    :param guess_when: ``"every_step"`` (see ``guess_margin``) or ``"restart"``: only where the plan
        starts afresh, at a step without a warm start (an episode's first) or whose warm-started solve
        did not converge (the DDP oracle's multi-start)
    :param time_budget: seconds a step may take (``None``: no limit). Every solve of the step stops
        between two DDP iterations when the next would end past the step's deadline (as predicted by
        :class:`~dvp_rl.control.ocp.DeadlineCallback`); the cold retry and the guesses start only
        while a first iteration still fits. An unconverged plan is then applied as
        it is (clipped to the bounds) and the step says so (``MPCStep.over_budget``). A step can
        still overrun by one DDP iteration (the first of a solve) and by what the host takes from
        the process: a target, not a hard real-time guarantee.
    :param line_search_steps: step lengths each DDP iteration may try (``None``: Crocoddyl's ten; see
        :class:`~dvp_rl.control.ocp.OptimalControlProblem`): with a ``time_budget``, fewer bound the
        iteration that cannot be interrupted
    :raises ValueError: a setting out of its range, naming it (``horizon``, ``max_iter`` and
        ``th_stop`` as :class:`~dvp_rl.control.ocp.OptimalControlProblem` checks them)
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
        guess_when: str = "every_step",
        time_budget: float | None = None,
        line_search_steps: int | None = None,
    ) -> None:
        self.ocp = OptimalControlProblem(env, horizon, gamma, terminal, max_iter, th_stop, line_search_steps)
        self.env = self.ocp.env
        self.retry_cold = bool(retry_cold)
        self.guesses = guess_names(tuple(guesses))
        if guess_margin is not None and not isinstance(terminal, NetworkArrays):
            raise ValueError("guess_margin compares plans with the learned value: it needs a network terminal (NetworkArrays)")
        if guess_margin is not None and not float(guess_margin) >= 0:
            raise ValueError(f"guess_margin must be >= 0 or None, got {guess_margin}")
        self.guess_margin = None if guess_margin is None else float(guess_margin)
        if guess_when not in GUESS_WHEN:
            raise ValueError(f"guess_when must be one of {GUESS_WHEN}, got {guess_when!r}")
        self.guess_when = guess_when
        if time_budget is not None and not (np.isfinite(float(time_budget)) and float(time_budget) > 0):
            raise ValueError(f"time_budget must be a finite number of seconds > 0 or None, got {time_budget!r}")
        self.time_budget = None if time_budget is None else float(time_budget)
        self.terminal = terminal
        self._warm_starts: dict[int, np.ndarray] = {}
        self._last_steps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per env index: (x, applied control) of its last step
        self._first_iteration_s: dict[int, float] = {}  # per horizon: seconds of a solve's first iteration (see _solve_until)
        self._spread_weights: np.ndarray | None = None  # 1 / the start states' standard deviations (0 where none), on first use
        self._problems: dict[int, OptimalControlProblem] = {self.ocp.horizon: self.ocp}  # by horizon (see step)

    @property
    def horizon(self) -> int:
        """The planning horizon ``T``."""
        return self.ocp.horizon

    def settings(self) -> dict[str, Any]:
        """The constructor arguments but ``env`` (a copy made with them plans as this controller)."""
        ocp = self.ocp
        return {"horizon": ocp.horizon, "terminal": self.terminal, "gamma": ocp.gamma, "max_iter": ocp.max_iter, "th_stop": ocp.th_stop,
                "retry_cold": self.retry_cold, "guesses": self.guesses, "guess_margin": self.guess_margin, "guess_when": self.guess_when,
                "time_budget": self.time_budget, "line_search_steps": ocp.line_search_steps}  # fmt: skip

    def reset(self, index: int | None = None) -> None:
        """Drop the warm start of env ``index`` (``None``: of every env), as at an episode's start."""
        if index is None:
            self._warm_starts.clear()
            self._last_steps.clear()
        else:
            self._warm_starts.pop(int(index), None)
            self._last_steps.pop(int(index), None)

    def is_new_episode(self, x: np.ndarray, index: int = 0) -> bool:
        """Whether state ``x`` (nx,) of env ``index`` starts a new episode: it is farther from the
        model's prediction than :data:`NEW_EPISODE_THRESHOLD` start-state standard deviations in some
        dimension (the rule of the class docstring). ``False`` for an env without a step since its reset.

        :raises ValueError: ``x`` of the wrong shape or not finite
        """
        last = self._last_steps.get(int(index))
        if last is None:
            return False
        x = self.env.check_state(x, "x")
        if self._spread_weights is None:
            spread = np.std(self.env.sample_states(SPREAD_SAMPLES, 0), axis=0)
            self._spread_weights = np.divide(1.0, spread, out=np.zeros_like(spread), where=spread > 1e-9)
        gap = wrap_angles(x - self.env.dynamics(*last), self.env.angle_dims)
        return bool(np.any(np.abs(gap) * self._spread_weights > NEW_EPISODE_THRESHOLD))

    def record_action(self, x: np.ndarray, action: np.ndarray, index: int = 0) -> None:
        """Record that ``action`` was applied from state ``x`` in env ``index`` (what :meth:`step` does
        with its own action; a wrapper that applies another, e.g. a search's push, says so), so that
        :meth:`is_new_episode` predicts the next state from it."""
        self._last_steps[int(index)] = (np.array(x, dtype=np.float64), np.array(action, dtype=np.float64))

    def step(self, x: np.ndarray, index: int = 0, horizon: int | None = None, single_solve: bool = False) -> MPCStep:
        """Plan from state ``x`` (nx,) for env ``index`` and return the first control with the plan.

        :param horizon: plan over this many steps instead of ``T`` (1..T; e.g. the steps left in a
            finite episode); the warm start is cut (or extended by its last control) to fit
        :param single_solve: one solve from the warm start only, no cold retry and no guesses (a
            wrapper that applies actions of its own keeps the plan going this way)
        :raises ValueError: ``x`` of the wrong shape or not finite, a ``horizon`` outside 1..T
        :raises RuntimeError: no solve gave finite controls (the warm start of ``index`` is dropped)
        """
        t0 = time.perf_counter()
        x = self.env.check_state(x, "x")
        index = int(index)
        ocp = self._problem(horizon)
        warm = self._warm_starts.get(index)
        if warm is not None and len(warm) != ocp.horizon:
            warm = np.concatenate([warm[: ocp.horizon], np.repeat(warm[-1:], max(0, ocp.horizon - len(warm)), axis=0)])
        deadline = None if self.time_budget is None else t0 + self.time_budget
        first = plan = self._solve_until(ocp, x, warm, deadline)
        solves, iterations, nodes = 1, plan.iterations, plan.model_evaluations
        if warm is not None and self.retry_cold and not plan.converged and not single_solve and self._time_left(deadline, ocp):
            cold = self._solve_until(ocp, x, None, deadline)
            solves, iterations, nodes = solves + 1, iterations + cold.iterations, nodes + cold.model_evaluations
            if cold.converged or not np.all(np.isfinite(plan.us)):
                plan = cold
        if not single_solve and self._needs_guesses(x, plan, restart=warm is None or not first.converged):
            for name in self.guesses:
                for xs_init, us_init in ocp.initial_guesses(x, name):
                    if not self._time_left(deadline, ocp):
                        break
                    other = self._solve_until(ocp, x, us_init, deadline, xs_init)
                    solves, iterations, nodes = solves + 1, iterations + other.iterations, nodes + other.model_evaluations
                    if other.converged and (not plan.converged or other.cost < plan.cost):
                        plan = other
        if not np.all(np.isfinite(plan.us)):
            self.reset(index)
            raise RuntimeError(f"MPC (T={ocp.horizon}) found no finite plan from state {x}")
        self._warm_starts[index] = np.concatenate([plan.us[1:], plan.us[-1:]])
        action = np.clip(plan.us[0], self.env.action_low, self.env.action_high)
        self.record_action(x, action, index)
        over = deadline is not None and not plan.converged and (plan.interrupted or not self._time_left(deadline, ocp))
        return MPCStep(action, plan, solves, iterations, nodes, time.perf_counter() - t0, over)

    def _time_left(self, deadline: float | None, ocp: OptimalControlProblem) -> bool:
        """Whether a new solve of ``ocp`` still fits before ``deadline``: its first iteration (setup
        included; the slowest seen lately, see :meth:`_solve_until`) times ``DEADLINE_SAFETY``."""
        return deadline is None or time.perf_counter() + DEADLINE_SAFETY * self._first_iteration_s.get(ocp.horizon, 0.0) < deadline

    def _solve_until(self, ocp: OptimalControlProblem, x: np.ndarray, warm: Any, deadline: float | None, xs_warm: Any = None) -> SolveResult:
        """One solve of a step from the warm start ``warm`` (and ``xs_warm``; ``None``: the cold guess),
        stopped between two iterations at ``deadline`` (``None``: none). Keeps the time of a first
        iteration of ``ocp`` (setup included) that decides whether another solve may start: a longer
        one replaces the estimate at once, a shorter one lowers it slowly (a tenth of the gap)."""
        result = ocp.solve(x, xs_init=xs_warm, us_init=warm, deadline=deadline)
        first = ocp.deadline.first_iteration
        if first is not None:
            estimate = self._first_iteration_s.get(ocp.horizon, 0.0)
            self._first_iteration_s[ocp.horizon] = max(first, 0.9 * estimate + 0.1 * first)
        return result

    def _problem(self, horizon: int | None) -> OptimalControlProblem:
        """The problem of ``horizon`` steps (``None``: ``T``), built on first use with this controller's settings."""
        if horizon is None:
            return self.ocp
        if isinstance(horizon, bool) or int(horizon) != horizon or not 1 <= horizon <= self.ocp.horizon:
            raise ValueError(f"horizon must be an integer in 1..{self.ocp.horizon}, got {horizon!r}")
        horizon = int(horizon)
        if horizon not in self._problems:
            ocp = self.ocp
            self._problems[horizon] = OptimalControlProblem(ocp.env, horizon, ocp.gamma, self.terminal, ocp.max_iter, ocp.th_stop, ocp.line_search_steps)
        return self._problems[horizon]

    def _needs_guesses(self, x: np.ndarray, plan: SolveResult, restart: bool) -> bool:
        """Whether this step tries the multi-start guesses (see ``guess_margin`` and ``guess_when``)."""
        if not self.guesses:
            return False
        if self.guess_when == "restart":
            return restart
        if self.guess_margin is None or not plan.converged:
            return True
        return plan.cost > float(numpy_value(self.terminal, x)) + self.guess_margin


class ClosedLoop(NamedTuple):
    """A closed-loop run on the controller's own model.

    ``xs`` (n+1, nx), ``us`` (n, nu), ``costs`` (n,): the running cost of each step; per step
    ``seconds`` (n,), ``iterations`` (n,), ``model_evaluations`` (n,) of the controller, and
    ``converged`` (n,): whether the applied plan met the stopping criterion.
    """

    xs: np.ndarray
    us: np.ndarray
    costs: np.ndarray
    seconds: np.ndarray
    iterations: np.ndarray
    model_evaluations: np.ndarray
    converged: np.ndarray


def closed_loop(controller: BatchController, x0: np.ndarray, n_steps: int) -> ClosedLoop:
    """Run ``controller`` for ``n_steps`` steps from ``x0`` (nx,) on its env's model
    (``env.dynamics``, ``env.cost``: a :class:`~dvp_rl.control.rollout.ModelEnv`), from a fresh
    warm start (env index 0)."""
    if int(n_steps) < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    env = controller.env
    controller.reset(0)
    steps: list[MPCStep] = []

    def act(states: np.ndarray, first: bool) -> np.ndarray:
        steps.append(controller.step(states[0]))
        return steps[-1].action[None]

    run = run_episode(act, ModelEnv(env), int(n_steps), options={"state": env.check_state(x0, "x0")})
    column = lambda f, dtype: np.array([f(s) for s in steps], dtype=dtype)  # noqa: E731
    return ClosedLoop(
        xs=run.observations,
        us=np.array([s.action for s in steps]).reshape(len(steps), env.nu),
        costs=-run.rewards,
        seconds=column(lambda s: s.seconds, np.float64),
        iterations=column(lambda s: s.iterations, np.int64),
        model_evaluations=column(lambda s: s.model_evaluations, np.int64),
        converged=column(lambda s: s.plan.converged, bool),
    )
