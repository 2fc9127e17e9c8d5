"""The Crocoddyl terminal model of a learned value function.

The DDP of the next round ends on ``gamma**T * V(x_T)``, ``V`` the exported value
network (:class:`dvp_rl.value_networks.NetworkArrays`) evaluated in numpy. Only this
module and :mod:`dvp_rl.ocp` speak Crocoddyl::

    factory = value_terminal(net.export(), env.nx, env.nu)
    OptimalControlProblem(env, horizon, gamma, terminal=factory).solve(x0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import crocoddyl
import numpy as np

from dvp_rl import compiled
from dvp_rl.value_networks import NetworkArrays, feature_jacobian, numpy_value, numpy_value_derivatives, raw_features


def _put(target: np.ndarray, value: np.ndarray) -> None:
    """Write ``value`` into a Crocoddyl data buffer in place (eigenpy returns n x 1 blocks as 1-D)."""
    target[...] = np.reshape(value, target.shape)


class _GaussResidualEvaluator:
    """Single-state Gauss-residual evaluation with precomputed arrays (the DDP's hot path).

    ``forward(x)`` returns the residual and the hidden activations; ``derivatives`` turns
    them into ``(Vx, Vxx) = (2 J^T r, 2 J^T J)``. Equal to :func:`numpy_value_derivatives`
    (tested) at about a third of its cost per call for 3 x 64 layers.
    """

    def __init__(self, arrays: NetworkArrays) -> None:
        self.arrays = arrays
        self.mean, self.std = arrays.feature_mean, arrays.feature_std
        self.hidden = list(zip(arrays.weights[:-1], arrays.biases[:-1]))
        self.W_out, self.b_out = arrays.weights[-1], arrays.biases[-1]
        self.linear_features = not arrays.angle_dims
        # without angles dz/dx = diag(1/std): fold it into the first layer
        self.W0_scaled = arrays.weights[0] / arrays.feature_std if self.linear_features and self.hidden else None

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        if self.linear_features:
            h = (x - self.mean) / self.std
        else:
            h = (raw_features(x, self.arrays.angle_dims) - self.mean) / self.std
        hs = []
        for W, b in self.hidden:
            h = np.tanh(W @ h + b)
            hs.append(h)
        return self.W_out @ h + self.b_out, hs

    def derivatives(self, x: np.ndarray, r: np.ndarray, hs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if self.W0_scaled is not None:
            J = (1.0 - hs[0] * hs[0])[:, None] * self.W0_scaled
            rest = zip(self.hidden[1:], hs[1:])
        else:
            J = feature_jacobian(self.arrays, x)
            rest = zip(self.hidden, hs)
        for (W, _), h in rest:
            J = (1.0 - h * h)[:, None] * (W @ J)
        J = self.W_out @ J
        return 2.0 * (r @ J), 2.0 * (J.T @ J)


class ValueTerminalData(crocoddyl.ActionDataAbstract):
    """Terminal data; remembers the forward pass of its last ``calc`` and the ``x`` it was at."""

    def __init__(self, model: "ValueTerminalModel") -> None:
        crocoddyl.ActionDataAbstract.__init__(self, model)
        self.x_forward: np.ndarray | None = None
        self.forward: Any = None


class ValueTerminalModel(crocoddyl.ActionModelAbstract):
    """Terminal cost ``cost_scale * V(x)`` of an exported value network.

    ``calc`` sets ``cost = cost_scale * V(x)`` and ``xnext = x``; ``calcDiff`` sets
    ``Lx = cost_scale * Vx(x)`` and ``Lxx = cost_scale * Vxx(x)`` (Gauss-Newton for
    a Gauss-residual network, exact for a feed-forward one), computed for the ``x``
    it is given: a Gauss-residual ``calcDiff`` reuses the forward pass its data stored
    at ``calc`` only when that was at the very same ``x`` (compared exactly), else it
    recomputes. Nothing is cached on the model. The control, if any, is ignored.

    :param arrays: the exported network (``net.export()``)
    :param nx: state dimension (must match ``arrays.nx``)
    :param nu: control dimension of the problem's running models
    :param cost_scale: factor on ``V`` and its derivatives (the discount ``gamma**T``)
    :param use_compiled: evaluate a Gauss-residual network with the numba kernel of
        :mod:`dvp_rl.compiled` (about 5x faster per call); ``None``: when numba is installed
    """

    def __init__(self, arrays: NetworkArrays, nx: int, nu: int, cost_scale: float = 1.0, use_compiled: bool | None = None) -> None:
        _check_dimensions(arrays, nx, nu)
        crocoddyl.ActionModelAbstract.__init__(self, crocoddyl.StateVector(int(nx)), int(nu), 0)
        self.arrays = arrays
        self.cost_scale = float(cost_scale)
        self._identity = np.eye(int(nx))
        gauss_residual = arrays.kind == "gauss_residual"
        wanted = compiled.AVAILABLE if use_compiled is None else bool(use_compiled)
        # CompiledGaussResidual raises ImportError when numba is missing and use_compiled=True
        self._compiled = compiled.CompiledGaussResidual(arrays) if wanted and gauss_residual else None
        self._fast = _GaussResidualEvaluator(arrays) if gauss_residual and self._compiled is None else None

    def calc(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        if self._compiled is not None:
            data.cost = self.cost_scale * self._compiled.value(self._check_state(x))
        elif self._fast is not None:
            x = self._check_state(x)
            forward = self._fast.forward(x)
            data.x_forward, data.forward = x, forward
            data.cost = self.cost_scale * float(forward[0] @ forward[0])
        else:
            data.cost = self.cost_scale * numpy_value(self.arrays, x)
        _put(data.xnext, x)

    def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        if self._compiled is not None:
            _, Vx, Vxx = self._compiled.derivatives(self._check_state(x))
        elif self._fast is not None:
            x = self._check_state(x)
            cached = getattr(data, "x_forward", None)
            forward = data.forward if cached is not None and np.array_equal(cached, x) else self._fast.forward(x)
            Vx, Vxx = self._fast.derivatives(x, *forward)
        else:
            _, Vx, Vxx = numpy_value_derivatives(self.arrays, x)
        _put(data.Lx, self.cost_scale * Vx)
        _put(data.Lxx, self.cost_scale * Vxx)
        _put(data.Fx, self._identity)

    def createData(self) -> crocoddyl.ActionDataAbstract:
        return ValueTerminalData(self)

    def _check_state(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)  # a copy: Crocoddyl may reuse the buffer it passes
        if x.shape != (self.arrays.nx,):
            raise ValueError(f"x must have shape ({self.arrays.nx},), got shape {x.shape}")
        return x


def _check_dimensions(arrays: NetworkArrays, nx: int, nu: int) -> None:
    if not isinstance(arrays, NetworkArrays):
        raise TypeError(f"expected NetworkArrays (from ValueNetwork.export()), got {type(arrays).__name__}")
    if int(nx) != arrays.nx:
        raise ValueError(f"the network takes states of dimension {arrays.nx}, got nx={nx}")
    if int(nu) < 0:
        raise ValueError(f"nu must be >= 0, got {nu}")


@dataclass(frozen=True)
class ValueTerminalFactory:
    """``cost_scale -> ValueTerminalModel``: a picklable terminal factory for :class:`dvp_rl.ocp.OptimalControlProblem`.

    :param arrays: the exported network
    :param nx: state dimension
    :param nu: control dimension
    """

    arrays: NetworkArrays
    nx: int
    nu: int

    def __post_init__(self) -> None:
        _check_dimensions(self.arrays, self.nx, self.nu)

    def __call__(self, cost_scale: float) -> ValueTerminalModel:
        return ValueTerminalModel(self.arrays, self.nx, self.nu, cost_scale)


def value_terminal(arrays: NetworkArrays, nx: int, nu: int) -> ValueTerminalFactory:
    """The terminal factory of an exported network, to pass as ``terminal=`` to the OCP.

    It receives the terminal discount ``gamma**T`` and returns a fresh
    :class:`ValueTerminalModel`; it pickles, so it can be sent to worker processes.
    """
    return ValueTerminalFactory(arrays, int(nx), int(nu))
