"""Compiled (numba) evaluation of an exported Gauss-residual network, for the DDP's terminal node.

numpy spends most of a single-state evaluation in per-operation overhead (some 25 small
operations per ``calcDiff``); the kernel below does the same arithmetic in one compiled call
(``benchmarks/terminal_speed.py`` measures both). It is what
:class:`dvp_rl.control.terminal.ValueTerminalModel` evaluates for a Gauss-residual network (numba is a
dependency of dvp_rl; without it, e.g. on a platform numba does not support, the terminal falls
back to numpy) and gives the same numbers as :func:`dvp_rl.value.arrays.numpy_value_derivatives`
(tested). Torch-free, like :mod:`dvp_rl.value.arrays`.

The network is packed into one float64 buffer and one int64 layout so that a call passes
four arrays (numba's dispatch cost grows with the number of arguments).
"""

from __future__ import annotations

import numpy as np

from dvp_rl.value.arrays import NetworkArrays, _feature_indices

try:  # optional dependency
    import numba
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None

#: whether the compiled path is available
AVAILABLE = numba is not None


def pack(arrays: NetworkArrays) -> tuple[np.ndarray, np.ndarray]:
    """``(params (P,) float64, layout (K,) int64)`` of a Gauss-residual network.

    layout: ``[nx, n_lin, n_ang, n_layers, lin_idx..., ang_idx..., off_mean, off_std,
    (n_out, n_in, off_W, off_b) per layer]``.
    """
    if arrays.kind != "gauss_residual":
        raise ValueError(f"the compiled path serves Gauss-residual networks, got {arrays.kind!r}")
    linear, angles = _feature_indices(arrays.nx, tuple(arrays.angle_dims))
    chunks: list[np.ndarray] = []
    offset = 0

    def put(a: np.ndarray) -> int:
        nonlocal offset
        start = offset
        flat = np.ascontiguousarray(a, dtype=np.float64).ravel()
        chunks.append(flat)
        offset += flat.size
        return start

    off_mean, off_std = put(arrays.feature_mean), put(arrays.feature_std)
    layers = []
    for W, b in zip(arrays.weights, arrays.biases):
        layers += [W.shape[0], W.shape[1], put(W), put(b)]
    layout = [arrays.nx, len(linear), len(angles), len(arrays.weights), *linear.tolist(), *angles.tolist(), off_mean, off_std, *layers]
    return np.concatenate(chunks), np.asarray(layout, dtype=np.int64)


def _evaluate(x: np.ndarray, params: np.ndarray, layout: np.ndarray, derivatives: bool, Vx: np.ndarray, Vxx: np.ndarray) -> float:
    """``V(x)``; with ``derivatives``, also writes ``Vx = 2 J^T r`` (nx,) and ``Vxx = 2 J^T J`` (nx, nx)."""
    nx, n_lin, n_ang, n_layers = layout[0], layout[1], layout[2], layout[3]
    pos = 4
    nf = n_lin + 2 * n_ang
    off_mean = layout[pos + n_lin + n_ang]
    off_std = layout[pos + n_lin + n_ang + 1]
    h = np.empty(nf)
    JT = np.zeros((nx, nf))  # the Jacobian transposed: each row contiguous for the dot products
    for k in range(n_lin):
        i = layout[pos + k]
        std = params[off_std + k]
        h[k] = (x[i] - params[off_mean + k]) / std
        JT[i, k] = 1.0 / std
    for k in range(n_ang):
        i = layout[pos + n_lin + k]
        c, s = np.cos(x[i]), np.sin(x[i])
        kc, ks = n_lin + k, n_lin + n_ang + k
        h[kc] = (c - params[off_mean + kc]) / params[off_std + kc]
        h[ks] = (s - params[off_mean + ks]) / params[off_std + ks]
        JT[i, kc] = -s / params[off_std + kc]
        JT[i, ks] = c / params[off_std + ks]
    base = pos + n_lin + n_ang + 2
    for layer in range(n_layers):
        n_out, n_in = layout[base + 4 * layer], layout[base + 4 * layer + 1]
        off_W, off_b = layout[base + 4 * layer + 2], layout[base + 4 * layer + 3]
        W = params[off_W : off_W + n_out * n_in].reshape(n_out, n_in)
        last = layer == n_layers - 1
        a = np.empty(n_out)
        JT_next = np.empty((nx, n_out)) if derivatives else JT
        for o in range(n_out):
            acc = params[off_b + o]
            for j in range(n_in):
                acc += W[o, j] * h[j]
            a[o] = acc if last else np.tanh(acc)
            if derivatives:
                g = 1.0 if last else 1.0 - a[o] * a[o]
                for d in range(nx):
                    acc = 0.0
                    for j in range(n_in):
                        acc += W[o, j] * JT[d, j]
                    JT_next[d, o] = g * acc
        JT = JT_next
        h = a
    value = 0.0
    for o in range(h.size):
        value += h[o] * h[o]
    if derivatives:
        for d in range(nx):
            acc = 0.0
            for o in range(h.size):
                acc += JT[d, o] * h[o]
            Vx[d] = 2.0 * acc
            for e in range(nx):
                acc = 0.0
                for o in range(h.size):
                    acc += JT[d, o] * JT[e, o]
                Vxx[d, e] = 2.0 * acc
    return value


# fastmath reassociation lets the dot products vectorise (results differ from numpy by ~1e-16 relative)
evaluate = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})(_evaluate) if AVAILABLE else None


class CompiledGaussResidual:
    """Single-state ``value(x)`` and ``derivatives(x) -> (V, Vx, Vxx)`` of a packed Gauss-residual network.

    The kernel is compiled (or loaded from numba's cache) by the first object made in a process,
    when it is made: the first evaluation inside a solve or a control step then costs what the
    others cost.
    """

    def __init__(self, arrays: NetworkArrays) -> None:
        if not AVAILABLE:
            raise ImportError("the compiled path needs numba (a dependency of dvp_rl): pip install numba")
        self.params, self.layout = pack(arrays)
        self.nx = arrays.nx
        self._Vx = np.zeros(self.nx)
        self._Vxx = np.zeros((self.nx, self.nx))
        self.derivatives(np.zeros(self.nx))  # compiles once per process (both paths share one signature)

    def value(self, x: np.ndarray) -> float:
        return evaluate(x, self.params, self.layout, False, self._Vx, self._Vxx)

    def derivatives(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``(V, Vx (nx,), Vxx (nx, nx))``, fresh arrays."""
        Vx, Vxx = np.empty(self.nx), np.empty((self.nx, self.nx))
        V = evaluate(x, self.params, self.layout, True, Vx, Vxx)
        return V, Vx, Vxx
