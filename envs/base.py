"""The differentiable-environment base classes.

Every environment of this package is a Gymnasium ``Env`` whose transition and
cost are one Crocoddyl action model: ``step()``, the derivative API and the DDP
all evaluate the same code.

Two ways to define a system:

* :class:`CrocoddylEnv`: the system *is* a (native, C++) Crocoddyl action model
  built by ``_make_action_model``; the derivative API reads ``calc``/``calcDiff``.
* :class:`NumpySystemEnv`: the user writes the dynamics and cost with their
  derivatives in numpy (``_dynamics``, ``_dynamics_derivatives``, ``_cost``,
  ...); the base class wraps them into a Python Crocoddyl action model.

State and control vectors are ``float64`` arrays of shapes ``(nx,)`` and ``(nu,)``.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import crocoddyl
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DynamicsDerivatives(NamedTuple):
    """Jacobians of ``x_next = f(x, u)``: ``Fx`` (nx, nx) and ``Fu`` (nx, nu)."""

    Fx: np.ndarray
    Fu: np.ndarray


class CostDerivatives(NamedTuple):
    """Derivatives of the running cost: ``Lx`` (nx,), ``Lu`` (nu,), ``Lxx`` (nx, nx), ``Lxu`` (nx, nu), ``Luu`` (nu, nu)."""

    Lx: np.ndarray
    Lu: np.ndarray
    Lxx: np.ndarray
    Lxu: np.ndarray
    Luu: np.ndarray


class TerminalCostDerivatives(NamedTuple):
    """Derivatives of the terminal cost: ``Lx`` (nx,) and ``Lxx`` (nx, nx)."""

    Lx: np.ndarray
    Lxx: np.ndarray


def reject_unknown_kwargs(env: object, unknown: dict[str, Any]) -> None:
    """Raise a ``TypeError`` that names the unknown keys and lists the accepted ones of ``env``'s constructor."""
    if unknown:
        params = inspect.signature(type(env).__init__).parameters.values()
        known = [p.name for p in params if p.name != "self" and p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
        raise TypeError(
            f"{type(env).__name__} got unknown keyword argument(s) {sorted(unknown)}; "
            f"accepted keys are {sorted(known)}"
        )


#: the conditions :func:`check_parameters` checks, each with its wording
_CONDITIONS = {"positive": (lambda a: a > 0, "> 0"), "non_negative": (lambda a: a >= 0, ">= 0"), "finite": (lambda a: True, "finite")}


def check_parameters(env: object, condition: str, **values: Any) -> None:
    """Check constructor arguments of ``env`` (each a number or an array-like of numbers).

    Every entry must be finite and satisfy ``condition``: ``"positive"`` (> 0),
    ``"non_negative"`` (>= 0) or ``"finite"`` only.

    :raises ValueError: naming ``env``'s class, the first bad argument and its value
    """
    if condition not in _CONDITIONS:
        raise ValueError(f"condition must be one of {sorted(_CONDITIONS)}, got {condition!r}")
    holds, wording = _CONDITIONS[condition]
    for name, value in values.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{type(env).__name__}: {name} must be a number or numbers, got {value!r}") from exc
        if not (np.all(np.isfinite(array)) and np.all(holds(array))):
            what = "finite" if condition == "finite" else f"finite and {wording}"
            raise ValueError(f"{type(env).__name__}: {name} must be {what}, got {value!r}")


def wrap_angles(x: np.ndarray, angle_dims: tuple[int, ...]) -> np.ndarray:
    """Map the entries ``angle_dims`` of ``x`` (shape (..., nx)) into [-pi, pi)."""
    if not angle_dims:
        return x
    x = np.array(x, dtype=np.float64, copy=True)
    idx = list(angle_dims)
    x[..., idx] = (x[..., idx] + np.pi) % (2.0 * np.pi) - np.pi
    return x


class DifferentiableEnv(gym.Env[np.ndarray, np.ndarray], abc.ABC):
    """Gymnasium environment with a differentiable model of its dynamics and cost.

    The observation is the state ``x`` (``float64``, shape ``(nx,)``); the reward of
    a step is ``-cost(x, u)``, so returns and values are on the same scale.
    Episodes never terminate; their length comes from the registration's
    ``max_episode_steps`` (Gymnasium's ``TimeLimit``), so truncation is the only end.

    Extra API (on ``env.unwrapped``): ``nx``, ``nu``, ``dt``, ``state``,
    ``dynamics``, ``dynamics_derivatives``, ``cost``, ``cost_derivatives``,
    ``terminal_cost``, ``terminal_cost_derivatives``, ``sample_states``,
    ``action_model`` and ``terminal_model``.

    Subclasses set ``nx``, ``nu``, ``dt`` and the action bounds, and implement
    ``sample_states`` plus either the Crocoddyl or the numpy hooks (see the two
    subclasses below).

    :param action_low: lower control bound, shape (nu,)
    :param action_high: upper control bound, shape (nu,)
    :param state_bound: bound of the observation box, shape (nx,) (``inf`` allowed)
    :param render_mode: unused (no rendering); kept for the Gymnasium signature
    """

    metadata: dict[str, Any] = {"render_modes": []}
    #: state dimensions that are angles on which dynamics and cost are 2*pi-periodic
    angle_dims: tuple[int, ...] = ()
    #: True where ``Lxx`` is Crocoddyl's Gauss-Newton approximation ``R_x^T W R_x`` of a
    #: nonlinear residual cost rather than the exact Hessian (documented per env)
    gauss_newton_hessian: bool = False
    #: steps after which the running cost of an optimal trajectory has died out (ground truth at gamma = 1)
    value_horizon: int = 400
    #: DDP initial guesses worth trying from each state (``dvp_rl.control.ocp.GUESSES``); more than one
    #: where the task has local optima
    ddp_guesses: tuple[str, ...] = ("hold",)
    #: a zero-cost equilibrium, where the optimal value is 0 at every horizon and discount:
    #: ``dynamics(goal, u_goal) = goal``, ``cost(goal, u_goal) = 0``, ``terminal_cost(goal) = 0`` with
    #: ``u_goal`` the :attr:`goal_control` (``None``: none known). DVP anchors its undiscounted value
    #: targets there (``DVP(collect={"anchor_goal": True})``).
    goal_state: tuple[float, ...] | None = None
    #: the control that holds :attr:`goal_state` still at zero cost (``None``: zero control)
    goal_control: tuple[float, ...] | None = None

    nx: int
    nu: int
    dt: float

    def __init__(
        self,
        action_low: np.ndarray,
        action_high: np.ndarray,
        state_bound: np.ndarray | float = np.inf,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"{type(self).__name__} has no render modes, got render_mode={render_mode!r}")
        check_parameters(self, "positive", dt=self.dt)  # before any model reads it (Crocoddyl would replace it)
        self.render_mode = render_mode
        self.action_low = np.asarray(action_low, dtype=np.float64).reshape(self.nu)
        self.action_high = np.asarray(action_high, dtype=np.float64).reshape(self.nu)
        if np.any(np.isnan(self.action_low)) or np.any(np.isnan(self.action_high)) or np.any(self.action_low >= self.action_high):
            raise ValueError(f"{type(self).__name__}: action bounds must satisfy low < high, got {self.action_low} and {self.action_high}")
        if np.any(np.isnan(state_bound)) or np.any(np.asarray(state_bound) <= 0):
            raise ValueError(f"{type(self).__name__}: state_bound must be > 0 (inf allowed), got {state_bound}")
        self.action_space = spaces.Box(
            self.action_low.astype(np.float32), self.action_high.astype(np.float32), dtype=np.float32
        )
        bound = np.broadcast_to(np.asarray(state_bound, dtype=np.float64), (self.nx,))
        self.observation_space = spaces.Box(-bound, bound, dtype=np.float64)
        self.state = np.zeros(self.nx)

    # ------------------------------------------------------------------ validation
    def check_state(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """Return ``x`` as a float64 array of shape (nx,), or raise ``ValueError``."""
        return _check_vector(x, self.nx, name, type(self).__name__)

    def check_control(self, u: np.ndarray, name: str = "u") -> np.ndarray:
        """Return ``u`` as a float64 array of shape (nu,), or raise ``ValueError``."""
        return _check_vector(u, self.nu, name, type(self).__name__)

    # ------------------------------------------------------------------ public derivative API
    def dynamics(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Next state ``x_next = f(x, u)``, shape (nx,). ``u`` is not clipped."""
        return self._dynamics(self.check_state(x), self.check_control(u))

    def dynamics_derivatives(self, x: np.ndarray, u: np.ndarray) -> DynamicsDerivatives:
        """``(Fx, Fu)`` of shapes (nx, nx) and (nx, nu)."""
        return DynamicsDerivatives(*self._dynamics_derivatives(self.check_state(x), self.check_control(u)))

    def cost(self, x: np.ndarray, u: np.ndarray) -> float:
        """Running cost of one step (the negative reward)."""
        return float(self._cost(self.check_state(x), self.check_control(u)))

    def cost_derivatives(self, x: np.ndarray, u: np.ndarray) -> CostDerivatives:
        """``(Lx, Lu, Lxx, Lxu, Luu)`` of the running cost."""
        return CostDerivatives(*self._cost_derivatives(self.check_state(x), self.check_control(u)))

    def terminal_cost(self, x: np.ndarray) -> float:
        """Terminal cost ``l_T(x)``."""
        return float(self._terminal_cost(self.check_state(x)))

    def terminal_cost_derivatives(self, x: np.ndarray) -> TerminalCostDerivatives:
        """``(Lx, Lxx)`` of the terminal cost."""
        return TerminalCostDerivatives(*self._terminal_cost_derivatives(self.check_state(x)))

    @abc.abstractmethod
    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` states of the task's distribution, shape (n, nx)."""

    def sample_training_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` states (n, nx) a value of this task should be right at: where closed loops go, not only
        where episodes start. The start distribution (:meth:`sample_states`) unless an env widens it."""
        return self.sample_states(n, rng)

    @abc.abstractmethod
    def action_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        """A fresh running Crocoddyl action model, cost multiplied by ``cost_scale``, with control bounds set."""

    @abc.abstractmethod
    def terminal_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        """A fresh terminal Crocoddyl action model (``calc(data, x)``), cost multiplied by ``cost_scale``."""

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def _dynamics(self, x: np.ndarray, u: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _dynamics_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    @abc.abstractmethod
    def _cost(self, x: np.ndarray, u: np.ndarray) -> float: ...

    @abc.abstractmethod
    def _cost_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]: ...

    @abc.abstractmethod
    def _terminal_cost(self, x: np.ndarray) -> float: ...

    @abc.abstractmethod
    def _terminal_cost_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def _transition(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
        """``(x_next, cost)``; subclasses may compute both in one call."""
        return self._dynamics(x, u), float(self._cost(x, u))

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Sample the start state from ``sample_states`` with ``self.np_random``.

        ``options={"state": x0}`` starts from a given state instead; a ``ValueError`` says when it is
        not a finite (nx,) vector or when one step of the model from it (zero control) is not finite.
        """
        super().reset(seed=seed)
        if options is not None and "state" in options:
            x = self.check_state(options["state"], "options['state']").copy()
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what is checked here
                x_next, cost = self._transition(x, np.zeros(self.nu))
            if not (np.all(np.isfinite(x_next)) and np.isfinite(cost)):
                raise ValueError(
                    f"{type(self).__name__}: options['state'] = {x} is out of the model's range: a step from it with "
                    f"zero control gives x_next = {x_next}, cost = {cost}"
                )
            self.state = x
        else:
            self.state = self.sample_states(1, self.np_random)[0]
        return self.state.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply ``action`` (clipped to the action space) for one step of ``dt``."""
        u = np.clip(self.check_control(action, "action"), self.action_low, self.action_high)
        x_next, cost = self._transition(self.state, u)
        self.state = wrap_angles(x_next, self.angle_dims)
        return self.state.copy(), -cost, False, False, {"cost": cost}


def as_real_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array; its dtype is checked before converting, so that nothing is dropped.

    :raises ValueError: naming ``what``, for a dtype that is not real numbers (bool, integer or
        floating): a complex one (``np.asarray(..., dtype=float)`` would drop the imaginary part),
        an object or a string one
    """
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold real numbers, got dtype {array.dtype}")
    return np.asarray(array, dtype=np.float64)


def _check_vector(v: Any, n: int, name: str, owner: str) -> np.ndarray:
    arr = as_real_array(v, f"{owner}: {name}")
    if arr.shape != (n,):
        raise ValueError(f"{owner}: {name} must have shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: {name} must be finite, got {arr}")
    return arr


class CrocoddylEnv(DifferentiableEnv):
    """An environment whose system is a Crocoddyl action model (native C++ for speed).

    Subclasses implement ``_make_action_model(cost_scale)`` and
    ``_make_terminal_model(cost_scale)``; everything else (``step``, derivatives,
    bounds) is read from the model's ``calc``/``calcDiff``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model = self.action_model()
        self._data = self._model.createData()
        self._tmodel = self.terminal_model()
        self._tdata = self._tmodel.createData()
        self._check_model_is_finite()

    def _check_model_is_finite(self) -> None:
        """Evaluate the models once at ``goal_state`` (else the origin) with zero control: a NaN
        or a zero mass among the arguments shows up there as a non-finite value (``ValueError``)."""
        x = np.zeros(self.nx) if self.goal_state is None else np.asarray(self.goal_state, dtype=np.float64)
        data = self._calc_diff(x, np.zeros(self.nu))
        self._tmodel.calc(self._tdata, x)
        self._tmodel.calcDiff(self._tdata, x)
        values = [data.xnext, data.cost, data.Fx, data.Fu, data.Lx, data.Lu, data.Lxx, data.Luu, self._tdata.cost, self._tdata.Lx]
        if not all(np.all(np.isfinite(v)) for v in values):
            raise ValueError(
                f"{type(self).__name__}: the model is not finite at x={x}, u=0 (x_next={data.xnext}, cost={data.cost}); "
                "check the constructor's arguments (a NaN, a zero mass or length?)"
            )

    @abc.abstractmethod
    def _make_action_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract: ...

    @abc.abstractmethod
    def _make_terminal_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract: ...

    def action_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        model = self._make_action_model(float(cost_scale))
        model.u_lb = self.action_low.copy()
        model.u_ub = self.action_high.copy()
        return model

    def terminal_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        return self._make_terminal_model(float(cost_scale))

    def _calc(self, x: np.ndarray, u: np.ndarray) -> Any:
        self._model.calc(self._data, x, u)
        return self._data

    def _calc_diff(self, x: np.ndarray, u: np.ndarray) -> Any:
        self._model.calc(self._data, x, u)
        self._model.calcDiff(self._data, x, u)
        return self._data

    def _dynamics(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self._calc(x, u).xnext.copy()

    def _transition(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float]:
        data = self._calc(x, u)
        return data.xnext.copy(), float(data.cost)

    def _dynamics_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = self._calc_diff(x, u)
        return data.Fx.reshape(self.nx, self.nx).copy(), data.Fu.reshape(self.nx, self.nu).copy()

    def _cost(self, x: np.ndarray, u: np.ndarray) -> float:
        return float(self._calc(x, u).cost)

    def _cost_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
        d = self._calc_diff(x, u)
        nx, nu = self.nx, self.nu
        return (
            d.Lx.reshape(nx).copy(),
            d.Lu.reshape(nu).copy(),
            d.Lxx.reshape(nx, nx).copy(),
            d.Lxu.reshape(nx, nu).copy(),
            d.Luu.reshape(nu, nu).copy(),
        )

    def _terminal_cost(self, x: np.ndarray) -> float:
        self._tmodel.calc(self._tdata, x)
        return float(self._tdata.cost)

    def _terminal_cost_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._tmodel.calc(self._tdata, x)
        self._tmodel.calcDiff(self._tdata, x)
        return self._tdata.Lx.reshape(self.nx).copy(), self._tdata.Lxx.reshape(self.nx, self.nx).copy()


def _put(target: np.ndarray, value: Any, name: str = "value") -> None:
    """Write ``value`` into a Crocoddyl data buffer in place (eigenpy returns n x 1 blocks as 1-D).

    :raises ValueError: naming ``name`` when ``value`` has not the buffer's number of entries
    """
    value = np.asarray(value, dtype=np.float64)
    if value.size != target.size:
        raise ValueError(f"{name} must have {target.size} entries (shape {target.shape}), got shape {value.shape}")
    target[...] = np.reshape(value, target.shape)


#: the data buffers written by ``calc`` and by ``calcDiff`` of an action model
_CALC_BUFFERS = ("xnext",)
_CALC_DIFF_BUFFERS = ("Fx", "Fu", "Lx", "Lu", "Lxx", "Lxu", "Luu")


class GuardedActionModel(crocoddyl.ActionModelAbstract):
    """A Python Crocoddyl action model whose exceptions reach the caller of the solve.

    An exception cannot cross Crocoddyl's C++ (it aborts the interpreter), so ``calc``/``calcDiff``
    catch whatever the subclass's ``_calc``/``_calc_diff`` raise, keep the first in :attr:`error`
    and fill the data with NaN: the solve fails numerically and returns. Until the error is taken,
    later calls skip the evaluation and write NaN. :class:`dvp_rl.control.ocp.OptimalControlProblem` takes
    it with :meth:`take_error` after each solve and re-raises it with its original traceback.

    Subclasses call ``GuardedActionModel.__init__(self, state, nu, nr)`` and implement
    ``_calc(data, x, u)`` and ``_calc_diff(data, x, u)`` (``u`` is ``None`` at a terminal node).
    """

    def __init__(self, state: Any, nu: int, nr: int = 0) -> None:
        crocoddyl.ActionModelAbstract.__init__(self, state, nu, nr)
        #: the first exception raised inside ``calc``/``calcDiff`` since the last :meth:`take_error`
        self.error: BaseException | None = None

    def take_error(self) -> BaseException | None:
        """Return the exception raised inside ``calc``/``calcDiff`` (``None`` if none) and clear it."""
        error, self.error = self.error, None
        return error

    def calc(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        if not self._guarded(self._calc, data, x, u):
            data.cost = np.nan
            _fill_nan(data, _CALC_BUFFERS)

    def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        if not self._guarded(self._calc_diff, data, x, u):
            _fill_nan(data, _CALC_DIFF_BUFFERS)

    def _guarded(self, method: Callable[[Any, np.ndarray, np.ndarray | None], None], data: Any, x: np.ndarray, u: np.ndarray | None) -> bool:
        """Run ``method``; ``False`` (the exception kept in :attr:`error`) if it raised now or earlier."""
        if self.error is None:
            try:
                method(data, x, u)
                return True
            except BaseException as exc:  # noqa: BLE001 (kept, and re-raised by the solve's caller)
                self.error = exc
        return False

    @abc.abstractmethod
    def _calc(self, data: Any, x: np.ndarray, u: np.ndarray | None) -> None: ...

    @abc.abstractmethod
    def _calc_diff(self, data: Any, x: np.ndarray, u: np.ndarray | None) -> None: ...

    def createData(self) -> crocoddyl.ActionDataAbstract:
        return crocoddyl.ActionDataAbstract(self)


class NumpyActionModel(GuardedActionModel):
    """A Python Crocoddyl action model over a :class:`NumpySystemEnv`'s numpy functions.

    Exceptions raised by the env's hooks (or a hook's output of the wrong size, a ``ValueError``
    naming the hook) reach the caller of the solve (:class:`GuardedActionModel`).

    :param env: the system whose ``_dynamics``/``_cost``/... hooks are evaluated
    :param cost_scale: factor applied to the cost and its derivatives (discount)
    :param terminal: whether ``calc(data, x)`` evaluates the terminal cost
    """

    def __init__(self, env: "NumpySystemEnv", cost_scale: float = 1.0, terminal: bool = False) -> None:
        GuardedActionModel.__init__(self, crocoddyl.StateVector(env.nx), env.nu, 0)
        self.env = env
        self.cost_scale = float(cost_scale)
        self.terminal = terminal

    def _calc(self, data: Any, x: np.ndarray, u: np.ndarray | None) -> None:
        env, owner = self.env, type(self.env).__name__
        if u is None or self.terminal:
            data.cost = self.cost_scale * float(env._terminal_cost(x))
            _put(data.xnext, x)
        else:
            _put(data.xnext, env._dynamics(x, u), f"{owner}._dynamics(x, u)")
            data.cost = self.cost_scale * float(env._cost(x, u))

    def _calc_diff(self, data: Any, x: np.ndarray, u: np.ndarray | None) -> None:
        env, owner, s = self.env, type(self.env).__name__, self.cost_scale
        if u is None or self.terminal:
            _put_all(data, ("Lx", "Lxx"), env._terminal_cost_derivatives(x), s, f"{owner}._terminal_cost_derivatives(x)")
            _put(data.Fx, np.eye(env.nx))
        else:
            _put_all(data, ("Fx", "Fu"), env._dynamics_derivatives(x, u), 1.0, f"{owner}._dynamics_derivatives(x, u)")
            _put_all(data, ("Lx", "Lu", "Lxx", "Lxu", "Luu"), env._cost_derivatives(x, u), s, f"{owner}._cost_derivatives(x, u)")


def _put_all(data: Any, names: tuple[str, ...], values: Any, scale: float, hook: str) -> None:
    """Write ``scale * values[i]`` into the buffer ``names[i]`` of ``data``; a clear ``ValueError`` names ``hook``
    when it returned another number of arrays or an array of the wrong size."""
    values = tuple(values)
    if len(values) != len(names):
        raise ValueError(f"{hook} must return {len(names)} arrays {names}, got {len(values)}")
    for i, (name, value) in enumerate(zip(names, values)):
        _put(getattr(data, name), scale * np.asarray(value, dtype=np.float64), f"{hook}[{i}] ({name})")


def _fill_nan(data: Any, names: tuple[str, ...]) -> None:
    for name in names:
        getattr(data, name)[...] = np.nan


class NumpySystemEnv(DifferentiableEnv):
    """Base class of a user-defined system written in numpy.

    Implement ``_dynamics(x, u)``, ``_dynamics_derivatives(x, u) -> (Fx, Fu)``,
    ``_cost(x, u)``, ``_cost_derivatives(x, u) -> (Lx, Lu, Lxx, Lxu, Luu)``,
    ``sample_states(n, rng)`` and optionally ``_terminal_cost(x)`` /
    ``_terminal_cost_derivatives(x)`` (zero by default). The hooks receive
    validated float64 vectors. ``action_model()`` wraps them into a Python
    Crocoddyl model (slower in DDP than a native model, see the README).
    See :class:`envs.linear_quadratic.LinearQuadraticEnv` for a complete example.
    """

    def action_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        model = NumpyActionModel(self, cost_scale)
        model.u_lb = self.action_low.copy()
        model.u_ub = self.action_high.copy()
        return model

    def terminal_model(self, cost_scale: float = 1.0) -> crocoddyl.ActionModelAbstract:
        return NumpyActionModel(self, cost_scale, terminal=True)

    def _terminal_cost(self, x: np.ndarray) -> float:
        return 0.0

    def _terminal_cost_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.nx), np.zeros((self.nx, self.nx))


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, a seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def uniform_box(n: int, low: np.ndarray, high: np.ndarray, rng: np.random.Generator | int | None) -> np.ndarray:
    """``n`` uniform samples of the box [low, high], shape (n, len(low))."""
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low <= high)):
        raise ValueError(f"the start box must be finite with low <= high, got low={low}, high={high}")
    return as_generator(rng).uniform(low, high, size=(int(n), low.size))


def model_difference(a: DifferentiableEnv, b: DifferentiableEnv, n: int = 8, seed: int = 0, rtol: float = 1e-9) -> str | None:
    """How two differentiable envs' models differ, or ``None`` when they agree: sizes, time step and
    control bounds, then the dynamics, running cost and terminal cost at ``n`` states of ``a``'s
    start distribution and controls drawn inside the bounds (relative tolerance ``rtol``).

    A value learned on one env is the value of another only when this is ``None`` (their start
    distributions may differ: a value does not depend on where episodes start).
    """
    if (a.nx, a.nu) != (b.nx, b.nu):
        return f"(nx, nu) = {(a.nx, a.nu)} against {(b.nx, b.nu)}"
    if a.dt != b.dt:
        return f"dt = {a.dt} against {b.dt}"
    if not (np.array_equal(a.action_low, b.action_low) and np.array_equal(a.action_high, b.action_high)):
        return f"control bounds {a.action_low}..{a.action_high} against {b.action_low}..{b.action_high}"
    rng = np.random.default_rng(seed)
    for x in a.sample_states(n, rng):
        u = rng.uniform(a.action_low, a.action_high)
        pairs = (("dynamics", a.dynamics(x, u), b.dynamics(x, u)), ("cost", a.cost(x, u), b.cost(x, u)),
                 ("terminal cost", a.terminal_cost(x), b.terminal_cost(x)))  # fmt: skip
        for what, left, right in pairs:
            if not np.allclose(left, right, rtol=rtol, atol=rtol):
                return f"the {what} at x = {np.round(x, 4)}, u = {np.round(u, 4)}: {np.round(left, 6)} against {np.round(right, 6)}"
    return None
