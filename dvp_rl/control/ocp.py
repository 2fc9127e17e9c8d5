"""The Crocoddyl bridge: build a discounted shooting problem from an env and solve it.

Only this module and :mod:`dvp_rl.control.terminal` speak Crocoddyl's solver API.
Inside, Crocoddyl's names are kept (``xs``, ``us``, ``Vx``, ``Vxx``, ...).

Discount: node ``k``'s running cost is multiplied by ``gamma**k`` and the
terminal cost by ``gamma**T``, so ``cost`` is ``sum_k gamma^k l(x_k, u_k) + gamma^T l_T(x_T)``.
Control bounds come from the env's action space (Crocoddyl's box-constrained
FDDP), so what the DDP plans is what ``step()`` executes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Union

import crocoddyl
import numpy as np

from dvp_rl.config import integer, positive
from dvp_rl.control.terminal import ValueTerminalModel
from dvp_rl.value.arrays import NetworkArrays
from envs.base import DifferentiableEnv

#: a terminal cost: ``None`` (zero), ``"env"`` (the env's own terminal cost), an exported value
#: network (:class:`~dvp_rl.value.arrays.NetworkArrays`, scaled by ``gamma**T``), a factory
#: ``cost_scale -> model`` (it receives ``gamma**T``), or a ready model (used as given).
TerminalSpec = Union[None, str, NetworkArrays, Callable[[float], crocoddyl.ActionModelAbstract], crocoddyl.ActionModelAbstract]


class SolveResult(NamedTuple):
    """Outcome of one DDP solve from ``x0``.

    ``xs`` (T+1, nx), ``us`` (T, nu): the trajectory; ``cost``: the optimal
    discounted cost-to-go ``V(x0)``; ``Vx`` (nx,), ``Vxx`` (nx, nx): its gradient
    and Hessian at the start node; ``iterations``; ``converged``: the solver's
    stopping criterion was met and every output is finite; ``model_evaluations``: node
    evaluations (:class:`ModelEvaluationCounter`); ``interrupted``: a deadline stopped the solve
    between two iterations (the iterate so far is returned, see :meth:`OptimalControlProblem.solve`).
    """

    xs: np.ndarray
    us: np.ndarray
    cost: float
    Vx: np.ndarray
    Vxx: np.ndarray
    iterations: int
    converged: bool
    model_evaluations: int = 0
    interrupted: bool = False


class BatchSolveResult(NamedTuple):
    """Stacked :class:`SolveResult` of N solves: ``x0`` (N, nx), ``cost`` (N,), ``Vx`` (N, nx),
    ``Vxx`` (N, nx, nx), ``iterations`` (N,), ``converged`` (N,) bool, ``us`` (N, T, nu),
    ``model_evaluations`` (N,): node evaluations spent (see :class:`ModelEvaluationCounter`), and
    ``x_final`` (N, nx): the last state of each plan (where the terminal cost was evaluated)."""

    x0: np.ndarray
    cost: np.ndarray
    Vx: np.ndarray
    Vxx: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    us: np.ndarray
    model_evaluations: np.ndarray
    x_final: np.ndarray


def unwrap(env: Any) -> DifferentiableEnv:
    """The :class:`DifferentiableEnv` under Gymnasium wrappers, or a clear ``TypeError``."""
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, DifferentiableEnv):
        raise TypeError(
            f"expected a dvp_rl differentiable env (envs.DifferentiableEnv), got {type(base).__name__}; "
            "make one with gymnasium.make('dvp_rl/...') after `import envs`"
        )
    return base


#: named initial guesses, see :meth:`OptimalControlProblem.initial_guesses`
GUESSES = ("hold", "zero_rollout", "push_plus", "push_minus", "pushes", "continuation", "continuation_inside")



def guess_names(guesses: str | Iterable[str], what: str = "guesses") -> tuple[str, ...]:
    """``guesses`` (names of :data:`GUESSES`; one name may be a string) as a tuple.

    :raises ValueError: a name not in :data:`GUESSES` (the message starts with ``what``)
    """
    names = (guesses,) if isinstance(guesses, str) else tuple(guesses)
    unknown = sorted(set(names) - set(GUESSES))
    if unknown:
        raise ValueError(f"{what}: unknown initial guesses {unknown}; expected names among {GUESSES}")
    return names


#: share of the horizon the ``pushes`` guesses push for (then zero control)
PUSH_FRACTION = 0.1


def pushes(
    low: np.ndarray,
    high: np.ndarray,
    hold: int,
    levels: tuple[float, ...] = (-1.0, 1.0),
    scale: float = 1.0,
    reverse: int = 0,
    length: int | None = None,
) -> list[np.ndarray]:
    """Bang-bang control sequences: one per sign pattern ``s`` in ``levels^nu`` (``itertools.product`` order).

    Each is the push ``scale * (high where s > 0, low where s < 0, 0 where s == 0)`` held ``hold``
    steps, then the opposite push (``-s``) held ``reverse`` steps, then zero control up to ``length``
    steps (``None``: no padding). The one generator of the package's pushes: the ``push_plus`` /
    ``push_minus`` and ``pushes`` initial guesses, and the strategies of
    :class:`dvp_rl.control.search.FirstStepSearch`.

    :param low: lower control bound (nu,)
    :param high: upper control bound (nu,)
    :param hold: steps of the push, >= 1
    :param levels: the signs of a pattern's entries, among -1, 0 and 1
    :param reverse: steps of the opposite push, >= 0
    :return: arrays of shape (length or hold + reverse, nu), float64
    :raises ValueError: ``hold < 1``, ``reverse < 0``, a level outside {-1, 0, 1} or a ``length`` shorter than the pushes
    """
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if int(hold) != hold or hold < 1 or int(reverse) != reverse or reverse < 0:
        raise ValueError(f"pushes hold >= 1 steps and reverse >= 0 steps (integers), got hold={hold!r}, reverse={reverse!r}")
    if not set(levels) <= {-1, 0, 1}:
        raise ValueError(f"push levels must be among -1, 0, 1, got {levels}")
    n = int(hold) + int(reverse)
    total = n if length is None else int(length)
    if total < n:
        raise ValueError(f"pushes of {n} steps do not fit in length {length}")
    sequences = []
    for signs in itertools.product(levels, repeat=low.size):
        sign = np.array(signs, dtype=np.float64)
        push = scale * np.where(sign > 0, high, np.where(sign < 0, low, 0.0))
        pull = scale * np.where(sign < 0, high, np.where(sign > 0, low, 0.0))
        controls = np.zeros((total, low.size))
        controls[:hold] = push
        controls[hold:n] = pull
        sequences.append(controls)
    return sequences

#: horizon of the short problem solved by the ``continuation`` guess (at most half of ``T``)
CONTINUATION_HORIZON = 50


def reference_guesses(env: Any) -> tuple[str, ...]:
    """Initial guesses of long-horizon reference solves: the env's ``ddp_guesses`` plus both continuations."""
    named = tuple(unwrap(env).ddp_guesses)
    return named + tuple(g for g in ("continuation", "continuation_inside") if g not in named)


class ModelEvaluationCounter(crocoddyl.CallbackAbstract):
    """Counts the node evaluations (simulator transitions) of a solve.

    Crocoddyl calls it once per iteration; each iteration is counted as one derivative
    sweep over the T nodes plus one rollout of T nodes per line-search trial (read from
    the accepted step length); at convergence it is called once more after the final
    sweep, with no step. This is the DDP's counterpart of an RL agent's environment
    steps. It errs on the high side: it is never below the number of running-model
    ``calc`` calls (Crocoddyl reuses some), and within ~20% of it (tested on a Python model),
    so comparisons with RL never flatter DDP.
    """

    def __init__(self, horizon: int, alphas: list[float]) -> None:
        crocoddyl.CallbackAbstract.__init__(self)
        self.horizon = horizon
        self._trials = {round(float(a), 12): i + 1 for i, a in enumerate(alphas)}
        self.count = 0
        self._last_trials = 0

    def reset(self) -> None:
        self.count = 0
        self._last_trials = 0

    def __call__(self, solver: crocoddyl.SolverAbstract) -> None:
        self._last_trials = self._trials.get(round(float(solver.stepLength), 12), len(self._trials))
        self.count += self.horizon * (1 + self._last_trials)

    def finish(self, converged: bool) -> int:
        """The total, given whether the last call was the convergence check (no step)."""
        if converged:
            self.count -= self.horizon * self._last_trials
        return self.count


#: :class:`DeadlineCallback` stops a solve when this many times an iteration's time would pass the
#: deadline (iterations vary: a line search that tries more step lengths, a regularised backward pass)
DEADLINE_SAFETY = 1.5


class DeadlineReached(Exception):
    """Raised by :class:`DeadlineCallback` inside a solve to stop it between two iterations."""


class DeadlineCallback(crocoddyl.CallbackAbstract):
    """Stops a solve between two DDP iterations when the next one would end past ``deadline``.

    Crocoddyl calls it after every iteration (the accepted iterate is then in ``solver.xs`` and
    ``solver.us``); it predicts the next iteration to take :data:`DEADLINE_SAFETY` times the longer
    of the last iteration and the mean of the solve's iterations so far, and raises
    :class:`DeadlineReached` when that would pass ``deadline`` (a ``time.perf_counter()`` value;
    ``None``: never). The first iteration always runs (its time, setup included, is kept in
    :attr:`first_iteration` for callers that decide whether to start a solve at all).
    """

    def __init__(self) -> None:
        crocoddyl.CallbackAbstract.__init__(self)
        self.deadline: float | None = None
        #: seconds from :meth:`start` to the end of the first iteration of the last solve (``None``: none ran)
        self.first_iteration: float | None = None
        self._start = self._last = 0.0
        self._calls = 0

    def start(self, deadline: float | None) -> None:
        """Arm the callback for a solve that starts now (``deadline=None``: never stop it)."""
        self.deadline = deadline
        self.first_iteration = None
        self._start = self._last = time.perf_counter()
        self._calls = 0

    def disarm(self) -> None:
        """Never stop a solve until the next :meth:`start` (:attr:`first_iteration` is kept)."""
        self.deadline = None

    def __call__(self, solver: crocoddyl.SolverAbstract) -> None:
        now = time.perf_counter()
        spent, self._last = now - self._last, now
        self._calls += 1
        if self._calls == 1:
            self.first_iteration = now - self._start
        if self.deadline is not None and now + DEADLINE_SAFETY * max(spent, (now - self._start) / self._calls) > self.deadline:
            raise DeadlineReached


class OptimalControlProblem:
    """A horizon-``T`` discounted shooting problem of ``env``, reusable across start states.

    :param env: a dvp_rl env (wrappers allowed)
    :param horizon: number of running nodes ``T`` (an integer >= 1)
    :param gamma: discount in (0, 1]
    :param terminal: the terminal cost, see :data:`TerminalSpec`
    :param max_iter: DDP iteration budget per solve (an integer >= 1)
    :param th_stop: Crocoddyl's stopping threshold (finite, > 0)
    :param line_search_steps: step lengths the line search tries, ``1, 1/2, ..., 2**-(n-1)``
        (``None``: Crocoddyl's ten). Fewer bound the time of an iteration whose step is refused (each
        trial is a rollout of the T nodes): a real-time controller's setting
    :raises ValueError: a setting out of its range, naming it (a float is an integer only when
        integral: ``horizon=2.5`` is refused, not truncated)
    """

    def __init__(
        self,
        env: Any,
        horizon: int,
        gamma: float = 1.0,
        terminal: TerminalSpec = None,
        max_iter: int = 300,
        th_stop: float = 1e-9,
        line_search_steps: int | None = None,
    ) -> None:
        self.env = unwrap(env)
        self.horizon = integer("horizon", horizon, 1)
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.gamma = float(gamma)
        self.max_iter = integer("max_iter", max_iter, 1)
        self.th_stop = positive("th_stop", th_stop)
        self.line_search_steps = None if line_search_steps is None else integer("line_search_steps", line_search_steps, 1)
        self.running_models = [self.env.action_model(self.gamma**k) for k in range(self.horizon)]
        self.problem: crocoddyl.ShootingProblem | None = None
        self.solver: crocoddyl.SolverBoxFDDP | None = None
        self._short: OptimalControlProblem | None = None  # the continuation guess's problem, built on first use
        self._short_solution: tuple[np.ndarray, SolveResult] | None = None  # its last (x0, result)
        self.set_terminal(terminal)

    def set_terminal(self, terminal: TerminalSpec) -> None:
        """Replace the terminal cost (rebuilds the problem, keeps the running models)."""
        scale = self.gamma**self.horizon
        if terminal is None:
            model = self.env.terminal_model(0.0)
        elif isinstance(terminal, str):
            if terminal != "env":
                raise ValueError(f"terminal must be None, 'env', a factory or a Crocoddyl model; got {terminal!r}")
            model = self.env.terminal_model(scale)
        elif isinstance(terminal, NetworkArrays):
            model = ValueTerminalModel(terminal, self.env.nx, self.env.nu, scale)
        elif isinstance(terminal, crocoddyl.ActionModelAbstract):
            model = terminal
        elif callable(terminal):
            model = terminal(scale)
        else:
            raise TypeError(f"unsupported terminal {type(terminal).__name__}")
        self.terminal_model = model
        self.solver = box_fddp(self.running_models, model, self.th_stop)
        if self.line_search_steps is not None:
            self.solver.alphas = [2.0**-i for i in range(self.line_search_steps)]
        self.problem = self.solver.problem
        self.counter = ModelEvaluationCounter(self.horizon, list(self.solver.alphas))
        self.deadline = DeadlineCallback()
        self.solver.setCallbacks([self.counter, self.deadline])

    def initial_guess(self, x0: np.ndarray, name: str = "hold") -> tuple[list[np.ndarray] | None, list[np.ndarray]]:
        """``(xs_init or None, us_init)`` of the named guess from ``x0`` (one of :data:`GUESSES` but
        ``pushes``, which names several: see :meth:`initial_guesses`)."""
        guesses = self.initial_guesses(x0, name)
        if len(guesses) != 1:
            raise ValueError(f"the initial guess {name!r} names {len(guesses)} guesses; use initial_guesses")
        return guesses[0]

    def initial_guesses(self, x0: np.ndarray, name: str = "hold") -> list[tuple[list[np.ndarray] | None, list[np.ndarray]]]:
        """The ``(xs_init or None, us_init)`` pairs the name stands for, from ``x0``.

        ``hold``: every state at ``x0``, zero controls (an infeasible start that FDDP closes);
        ``zero_rollout``: zero controls rolled out; ``push_plus``/``push_minus``: half the control
        bound, +/-, over the first fifth of the horizon, then zero, rolled out (breaks the symmetry
        of swing-ups and turns, which have local optima); ``pushes``: every sign pattern in
        ``{low, 0, high}^nu`` at the full bound over :data:`PUSH_FRACTION` of the horizon, then zero
        (``3^nu`` guesses; :func:`pushes`); ``continuation``: the best solution of a
        short problem (``min(50, T // 2)`` nodes, no terminal cost, the env's other guesses), then
        its last state held with zero controls (long swing-up horizons need it: from the other
        guesses they land in worse local optima); ``continuation_inside``: the same with the
        short plan's controls pulled 2% inside the bounds (box-FDDP warm-started on saturated
        controls can stall in a poor optimum). docs/REPRODUCTION.md has the measurements.
        """
        return [(xs, us) for xs, us, _ in self._guesses(np.asarray(x0, dtype=np.float64), name)]

    def _guesses(self, x0: np.ndarray, name: str) -> list[tuple[list[np.ndarray] | None, list[np.ndarray], int]]:
        """:meth:`initial_guesses` plus the transitions spent making each (the continuation's short solves)."""
        env, T = self.env, self.horizon
        if name == "hold":
            return [([x0.copy() for _ in range(T + 1)], [np.zeros(env.nu) for _ in range(T)], 0)]
        if name in ("continuation", "continuation_inside"):
            return [self._continuation_guess(x0, shrink=0.98 if name == "continuation_inside" else 1.0)]
        if name == "zero_rollout":
            return [(None, [np.zeros(env.nu) for _ in range(T)], 0)]
        if name in ("push_plus", "push_minus"):
            sequences = pushes(env.action_low, env.action_high, max(1, T // 5), (1.0 if name == "push_plus" else -1.0,), 0.5, length=T)
        elif name == "pushes":
            sequences = pushes(env.action_low, env.action_high, max(1, int(round(PUSH_FRACTION * T))), (-1.0, 0.0, 1.0), length=T)
        else:
            raise ValueError(f"unknown initial guess {name!r}; expected one of {GUESSES}")
        return [(None, list(controls), 0) for controls in sequences]

    def _continuation_guess(self, x0: np.ndarray, shrink: float = 1.0) -> tuple[list[np.ndarray] | None, list[np.ndarray], int]:
        T, nu = self.horizon, self.env.nu
        short_T = max(1, min(CONTINUATION_HORIZON, T // 2))
        if self._short is None:
            self._short = OptimalControlProblem(self.env, short_T, self.gamma, None, self.max_iter, self.th_stop)
        cached = self._short_solution
        if cached is not None and np.array_equal(cached[0], x0):
            short, spent = cached[1], 0  # both continuations from one start share the short solve
        else:
            guesses = tuple(g for g in self.env.ddp_guesses if not g.startswith("continuation")) or ("hold",)
            short = self._short.solve_best(x0, guesses)
            spent = short.model_evaluations
            self._short_solution = (x0.copy(), short)
        if not (np.all(np.isfinite(short.xs)) and np.all(np.isfinite(short.us))):
            xs, us, _ = self._guesses(x0, "hold")[0]
            return xs, us, spent
        xs = [x.copy() for x in short.xs] + [short.xs[-1].copy() for _ in range(T - short_T)]
        us = [shrink * u for u in short.us] + [np.zeros(nu) for _ in range(T - short_T)]
        return xs, us, spent

    def solve_best(self, x0: np.ndarray, guesses: tuple[str, ...] = ("hold",)) -> SolveResult:
        """Solve from each named initial guess and keep the lowest converged cost.

        ``model_evaluations`` adds up all the solves (a continuation's short solves included);
        ``converged`` is False only if none converged (then the last attempt is returned).
        """
        if not guesses:
            raise ValueError("guesses must name at least one initial guess")
        best: SolveResult | None = None
        last: SolveResult | None = None
        total = 0
        for name in guesses:
            for xs, us, spent in self._guesses(np.asarray(x0, dtype=np.float64), name):
                last = self.solve(x0, xs_init=xs, us_init=us)
                total += spent + last.model_evaluations
                if last.converged and (best is None or last.cost < best.cost):
                    best = last
        chosen = best if best is not None else last
        return chosen._replace(model_evaluations=total)

    def solve(
        self,
        x0: np.ndarray,
        xs_init: np.ndarray | list[np.ndarray] | None = None,
        us_init: np.ndarray | list[np.ndarray] | None = None,
        max_iter: int | None = None,
        deadline: float | None = None,
    ) -> SolveResult:
        """Solve from ``x0`` (nx,); warm start with ``us_init`` (T, nu) and optionally ``xs_init`` (T+1, nx).

        ``max_iter`` replaces the problem's iteration budget for this solve. ``deadline`` (a
        ``time.perf_counter()`` value) stops the solve between two iterations when the next would end
        after it (:class:`DeadlineCallback`): the iterate so far is returned with ``interrupted=True``
        (``converged`` when it already met the stopping criterion). A failed or unconverged solve is reported through ``converged=False``, not raised; an
        exception raised by the env's own code during the solve (a :class:`envs.NumpySystemEnv`
        hook) is re-raised here, with its original traceback.
        """
        x0 = self.env.check_state(x0, "x0")
        self._take_model_error()  # one kept by a call outside a solve is not this solve's
        self.problem.x0 = x0
        if us_init is None:
            xs, us = self.initial_guess(x0)
        else:
            us = [np.asarray(u, dtype=np.float64).reshape(self.env.nu) for u in us_init]
            if len(us) != self.horizon:
                raise ValueError(f"us_init must have {self.horizon} rows, got {len(us)}")
            xs = list(self.problem.rollout(us)) if xs_init is None else [np.asarray(x, dtype=np.float64) for x in xs_init]
            xs[0] = x0
        solver = self.solver
        self.counter.reset()
        self.deadline.start(deadline)
        interrupted = False
        try:
            converged: bool | None = bool(solver.solve(xs, us, self.max_iter if max_iter is None else int(max_iter), False))
        except DeadlineReached:
            interrupted = True
            converged = bool(solver.isFeasible and solver.stop < solver.th_stop)
        except (RuntimeError, ValueError, ArithmeticError):  # Crocoddyl raises on numerical failures
            converged = None
        finally:
            self.deadline.disarm()
        error = self._take_model_error()
        if error is not None:
            raise error
        if converged is None:
            return self._failed(x0)
        model_evaluations = self.counter.finish(converged)
        Vx = np.array(solver.Vx[0], dtype=np.float64).reshape(self.env.nx)
        Vxx = np.array(solver.Vxx[0], dtype=np.float64).reshape(self.env.nx, self.env.nx)
        cost = float(solver.cost)
        finite = np.isfinite(cost) and np.all(np.isfinite(Vx)) and np.all(np.isfinite(Vxx))
        return SolveResult(
            xs=np.array(solver.xs),
            us=np.array(solver.us).reshape(self.horizon, self.env.nu),
            cost=cost,
            Vx=Vx,
            Vxx=Vxx,
            iterations=int(solver.iter) + int(interrupted),
            converged=converged and bool(finite),
            model_evaluations=model_evaluations,
            interrupted=interrupted,
        )

    def _take_model_error(self) -> BaseException | None:
        """The first exception kept by this problem's Python action models since the last call, and
        clear them all (models with a ``take_error()``, see :class:`envs.base.NumpyActionModel`)."""
        first = None
        for model in (*self.running_models, self.terminal_model):
            take = getattr(model, "take_error", None)
            error = take() if take is not None else None
            if first is None:
                first = error
        return first

    def _failed(self, x0: np.ndarray) -> SolveResult:
        nx, nu, T = self.env.nx, self.env.nu, self.horizon
        return SolveResult(
            xs=np.full((T + 1, nx), np.nan),
            us=np.full((T, nu), np.nan),
            cost=float("nan"),
            Vx=np.full(nx, np.nan),
            Vxx=np.full((nx, nx), np.nan),
            iterations=int(self.solver.iter),
            converged=False,
            model_evaluations=self.counter.count,
        )

    def solve_many(self, x0s: np.ndarray, callback: Callable[[int], None] | None = None) -> BatchSolveResult:
        """Solve from every row of ``x0s`` (N, nx) (cold starts); ``callback(i)`` after each."""
        x0s = np.asarray(x0s, dtype=np.float64)
        if x0s.ndim != 2 or x0s.shape[1] != self.env.nx:
            raise ValueError(f"x0s must have shape (N, {self.env.nx}), got {x0s.shape}")
        results = []
        for i, x0 in enumerate(x0s):
            results.append(self.solve(x0))
            if callback is not None:
                callback(i)
        return stack_results(x0s, results, self.horizon, self.env.nu)


def stack_results(x0s: np.ndarray, results: list[SolveResult], horizon: int, nu: int) -> BatchSolveResult:
    """Stack per-state results into a :class:`BatchSolveResult`."""
    n, nx = x0s.shape
    return BatchSolveResult(
        x0=np.asarray(x0s, dtype=np.float64),
        cost=np.array([r.cost for r in results], dtype=np.float64),
        Vx=np.array([r.Vx for r in results], dtype=np.float64).reshape(n, nx),
        Vxx=np.array([r.Vxx for r in results], dtype=np.float64).reshape(n, nx, nx),
        iterations=np.array([r.iterations for r in results], dtype=np.int64),
        converged=np.array([r.converged for r in results], dtype=bool),
        us=np.array([r.us for r in results], dtype=np.float64).reshape(n, horizon, nu),
        model_evaluations=np.array([r.model_evaluations for r in results], dtype=np.int64),
        x_final=np.array([r.xs[-1] for r in results], dtype=np.float64).reshape(n, nx),
    )


def solve_ocp(
    env: Any,
    x0: np.ndarray,
    horizon: int,
    terminal: TerminalSpec = None,
    gamma: float = 1.0,
    max_iter: int = 300,
    th_stop: float = 1e-9,
) -> SolveResult | BatchSolveResult:
    """Build and solve the horizon-``T`` problem of ``env`` from ``x0``.

    :param x0: a start state (nx,) -> :class:`SolveResult`, or a batch (N, nx) -> :class:`BatchSolveResult`
    :param horizon: number of running nodes ``T``
    :param terminal: terminal cost, see :data:`TerminalSpec`
    :param gamma: discount: node k's cost times ``gamma**k``, the terminal's times ``gamma**T``
    """
    ocp = OptimalControlProblem(env, horizon, gamma, terminal, max_iter, th_stop)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim == 2:
        return ocp.solve_many(x0)
    return ocp.solve(x0)


def box_fddp(running_models: list[Any], terminal_model: Any, th_stop: float = 1e-9) -> crocoddyl.SolverBoxFDDP:
    """Crocoddyl's box-constrained FDDP over the given action models, set up as every solve of
    this package runs: one thread, stopping threshold ``th_stop``, regularisation floor 1e-12.

    :param running_models: the ``T`` running action models
    :param terminal_model: the terminal action model
    """
    problem = crocoddyl.ShootingProblem(np.zeros(terminal_model.state.nx), list(running_models), terminal_model)
    # Crocoddyl's OpenMP threads hang forked worker pools; one thread is also faster here.
    # (Builds without OpenMP already read 1 and print a warning when it is set.)
    if problem.nthreads != 1:
        problem.nthreads = 1
    solver = crocoddyl.SolverBoxFDDP(problem)
    solver.th_stop = float(th_stop)
    # Crocoddyl's default floor of the regularisation (1e-9) biases Vxx by ~1e-8
    # relative; the solver still raises it whenever a step fails.
    solver.reg_min = 1e-12
    return solver


class ModelSolver:
    """Box-FDDP straight over Crocoddyl action models, without an env (a reference for timings).

    Same solver settings as :class:`OptimalControlProblem` (:func:`box_fddp`); :meth:`solve`
    starts from the ``hold`` guess (every state at ``x0``, zero controls).

    :param running_models: the ``T`` running action models
    :param terminal_model: the terminal action model
    :param max_iter: DDP iteration budget per solve (an integer >= 1)
    :param th_stop: stopping threshold (finite, > 0)
    """

    def __init__(self, running_models: list[Any], terminal_model: Any, max_iter: int = 300, th_stop: float = 1e-9) -> None:
        self.max_iter = integer("max_iter", max_iter, 1)
        self.solver = box_fddp(running_models, terminal_model, positive("th_stop", th_stop))
        self.horizon = len(running_models)
        self.nu = int(running_models[0].nu)

    def solve(self, x0: np.ndarray) -> tuple[int, bool]:
        """Solve from ``x0`` (nx,); returns ``(iterations, converged)``."""
        x0 = np.asarray(x0, dtype=np.float64)
        self.solver.problem.x0 = x0
        converged = self.solver.solve([x0] * (self.horizon + 1), [np.zeros(self.nu)] * self.horizon, self.max_iter, False)
        return int(self.solver.iter), bool(converged)
