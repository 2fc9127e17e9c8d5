"""The Crocoddyl terminal model of a learned value function.

The DDP of the next round ends on ``gamma**T * V(x_T)``, ``V`` the exported value
network (:class:`dvp_rl.value.arrays.NetworkArrays`) evaluated in numpy or numba (no torch).
Only this module and :mod:`dvp_rl.control.ocp` speak Crocoddyl::

    factory = value_terminal(net.export(), env.nx, env.nu)
    OptimalControlProblem(env, horizon, gamma, terminal=factory).solve(x0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import crocoddyl
import numpy as np

from dvp_rl.value import kernel as compiled
from dvp_rl.value.arrays import NetworkArrays, numpy_value, numpy_value_derivatives
from envs.base import GuardedActionModel


def _put(target: np.ndarray, value: np.ndarray) -> None:
    """Write ``value`` into a Crocoddyl data buffer in place (eigenpy returns n x 1 blocks as 1-D)."""
    target[...] = np.reshape(value, target.shape)


class ValueTerminalModel(GuardedActionModel):
    """Terminal cost ``cost_scale * V(x)`` of an exported value network.

    ``calc`` sets ``cost = cost_scale * V(x)`` and ``xnext = x``; ``calcDiff`` sets
    ``Lx = cost_scale * Vx(x)`` and ``Lxx = cost_scale * Vxx(x)`` (Gauss-Newton for
    a Gauss-residual network, exact for a feed-forward one), computed for the ``x``
    it is given; nothing is cached between calls. The control, if any, is ignored. An exception
    inside (e.g. a state of the wrong shape) reaches the caller of the solve
    (:class:`envs.base.GuardedActionModel`).

    :param arrays: the exported network (``net.export()``)
    :param nx: state dimension (must match ``arrays.nx``)
    :param nu: control dimension of the problem's running models
    :param cost_scale: factor on ``V`` and its derivatives (the discount ``gamma**T``)
    :param use_compiled: evaluate a Gauss-residual network with the numba kernel of
        :mod:`dvp_rl.value.kernel` (else :func:`~dvp_rl.value.arrays.numpy_value_derivatives`);
        ``None``: whenever numba is importable
    """

    def __init__(self, arrays: NetworkArrays, nx: int, nu: int, cost_scale: float = 1.0, use_compiled: bool | None = None) -> None:
        _check_dimensions(arrays, nx, nu)
        GuardedActionModel.__init__(self, crocoddyl.StateVector(int(nx)), int(nu), 0)
        self.arrays = arrays
        self.cost_scale = float(cost_scale)
        self._identity = np.eye(int(nx))
        wanted = compiled.AVAILABLE if use_compiled is None else bool(use_compiled)
        # CompiledGaussResidual raises ImportError when numba is missing and use_compiled=True
        self._compiled = compiled.CompiledGaussResidual(arrays) if wanted and arrays.kind == "gauss_residual" else None

    def _calc(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        x = self._check_state(x)
        value = self._compiled.value(x) if self._compiled is not None else numpy_value(self.arrays, x)
        data.cost = self.cost_scale * value
        _put(data.xnext, x)

    def _calc_diff(self, data: Any, x: np.ndarray, u: np.ndarray | None = None) -> None:
        x = self._check_state(x)
        if self._compiled is not None:
            _, Vx, Vxx = self._compiled.derivatives(x)
        else:
            _, Vx, Vxx = numpy_value_derivatives(self.arrays, x)
        _put(data.Lx, self.cost_scale * Vx)
        _put(data.Lxx, self.cost_scale * Vxx)
        _put(data.Fx, self._identity)

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
    """``cost_scale -> ValueTerminalModel``: a picklable terminal factory for :class:`dvp_rl.control.ocp.OptimalControlProblem`.

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
