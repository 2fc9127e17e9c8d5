"""A value network exported as plain arrays, and its evaluation in numpy: no torch here.

This is the side of a value network that the DDP sees: :class:`NetworkArrays` (what
:meth:`dvp_rl.value.networks.ValueNetwork.export` produces, picklable, what travels to
solver workers) and the hand-written chain rules :func:`numpy_value` and
:func:`numpy_value_derivatives`; :mod:`dvp_rl.value.kernel` holds the numba kernel of the
single-state Gauss-residual evaluation. Solver processes (local or Ray) import this module,
:mod:`dvp_rl.control.terminal` and :mod:`dvp_rl.control.ocp`, never torch.

Input features. The entries ``angle_dims`` of the state are replaced by their
``(cos, sin)`` so that ``V`` is ``2*pi``-periodic in them; the feature vector is
``phi(x) = [x_i for i not in angle_dims] + [cos x_a for a in angle_dims] + [sin x_a for a in angle_dims]``
(``nf = nx + len(angle_dims)`` entries), normalised as ``z = (phi - mean) / std`` with
statistics from :func:`fit_normalisation`. Every derivative goes through this feature map
by the chain rule, so ``Vx`` and ``Vxx`` are with respect to ``x``. Everything is ``float64``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

#: the architectures (``NetworkArrays.kind``): ``V = ||r||^2`` or a scalar MLP
VALUE_NETWORK_KINDS = ("gauss_residual", "feed_forward")


class FeatureStats(NamedTuple):
    """Normalisation of the features: ``mean`` and ``std``, each of shape (nf,)."""

    mean: np.ndarray
    std: np.ndarray


class ValueDerivatives(NamedTuple):
    """Value and derivatives, torch tensors or numpy arrays.

    A batch gives ``V`` (N,), ``Vx`` (N, nx), ``Vxx`` (N, nx, nx); one numpy state (nx,)
    gives ``V`` a float, ``Vx`` (nx,), ``Vxx`` (nx, nx).
    """

    V: Any
    Vx: Any
    Vxx: Any


class NetworkArrays(NamedTuple):
    """A value network as plain numpy ``float64`` arrays (read-only), torch-free and picklable.

    ``kind``: ``"gauss_residual"`` or ``"feed_forward"``; ``nx``: state dimension;
    ``angle_dims``: the angle entries of the state; ``feature_mean``/``feature_std``
    (nf,); ``weights[l]`` (n_out, n_in) and ``biases[l]`` (n_out,) of every linear
    layer, input first (tanh between layers, none after the last).
    """

    kind: str
    nx: int
    angle_dims: tuple[int, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]


# ---------------------------------------------------------------------------- features
def _check_angle_dims(nx: int, angle_dims: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(a) for a in angle_dims)
    if len(set(dims)) != len(dims) or any(not 0 <= a < nx for a in dims):
        raise ValueError(f"angle_dims must be distinct indices in [0, {nx}), got {tuple(angle_dims)}")
    return dims


@functools.lru_cache(maxsize=64)
def _selection_matrices(nx: int, angle_dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(S_lin, S_cos, S_sin)``, each (nf, nx): ``dphi/dx = S_lin - S_cos * sin(x) + S_sin * cos(x)`` (columns scaled)."""
    linear = [i for i in range(nx) if i not in angle_dims]
    na, nl = len(angle_dims), len(linear)
    nf = nl + 2 * na
    s_lin, s_cos, s_sin = np.zeros((nf, nx)), np.zeros((nf, nx)), np.zeros((nf, nx))
    s_lin[np.arange(nl), linear] = 1.0
    s_cos[nl + np.arange(na), list(angle_dims)] = 1.0
    s_sin[nl + na + np.arange(na), list(angle_dims)] = 1.0
    for mat in (s_lin, s_cos, s_sin):
        mat.flags.writeable = False  # cached and shared
    return s_lin, s_cos, s_sin


@functools.lru_cache(maxsize=64)
def _feature_indices(nx: int, angle_dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays of the linear and of the angle entries of the state."""
    return np.array([i for i in range(nx) if i not in angle_dims], dtype=np.intp), np.array(angle_dims, dtype=np.intp)


def raw_features(states: np.ndarray, angle_dims: Sequence[int] = ()) -> np.ndarray:
    """The un-normalised features ``phi(x)`` of states (..., nx), shape (..., nx + len(angle_dims))."""
    x = np.asarray(states, dtype=np.float64)
    linear, angles = _feature_indices(x.shape[-1], tuple(angle_dims))
    a = x[..., angles]
    return np.concatenate([x[..., linear], np.cos(a), np.sin(a)], axis=-1)


def fit_normalisation(states: np.ndarray, angle_dims: Sequence[int] = (), min_std: float = 1e-6) -> FeatureStats:
    """Mean and standard deviation of the features of ``states`` (N, nx), each of shape (nf,).

    A feature whose standard deviation is below ``min_std`` (e.g. constant in the
    sample) gets ``std = 1`` so that it is only centred.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[0] < 1:
        raise ValueError(f"states must have shape (N, nx) with N >= 1, got {states.shape}")
    _check_angle_dims(states.shape[1], angle_dims)
    phi = raw_features(states, angle_dims)
    std = phi.std(axis=0)
    return FeatureStats(phi.mean(axis=0), np.where(std > min_std, std, 1.0))


# ---------------------------------------------------------------------------- numpy evaluation
def _check_numpy_states(arrays: NetworkArrays, x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1:] != (arrays.nx,) or x.ndim not in (1, 2):
        raise ValueError(f"x must have shape ({arrays.nx},) or (N, {arrays.nx}), got shape {x.shape}")
    if arrays.kind not in VALUE_NETWORK_KINDS:
        raise ValueError(f"unknown value network kind {arrays.kind!r}; expected one of {list(VALUE_NETWORK_KINDS)}")
    return x


def _numpy_features(arrays: NetworkArrays, x: np.ndarray) -> np.ndarray:
    """Normalised features (..., nf)."""
    if arrays.angle_dims:
        x = raw_features(x, arrays.angle_dims)
    return (x - arrays.feature_mean) / arrays.feature_std


def feature_jacobian(arrays: NetworkArrays, x: np.ndarray) -> np.ndarray:
    """``dz/dx`` of the normalised features in numpy: (nf, nx) for ``x`` (nx,), (N, nf, nx) for (N, nx)."""
    x = np.asarray(x, dtype=np.float64)
    std = arrays.feature_std
    if not arrays.angle_dims:
        return np.broadcast_to(np.diag(1.0 / std), x.shape[:-1] + (std.size, arrays.nx))
    s_lin, s_cos, s_sin = _selection_matrices(arrays.nx, arrays.angle_dims)
    return (s_lin - s_cos * np.sin(x)[..., None, :] + s_sin * np.cos(x)[..., None, :]) / std[:, None]


def numpy_value(arrays: NetworkArrays, x: np.ndarray) -> np.ndarray | float:
    """``V(x)`` of an exported network: a float for ``x`` (nx,), an array (N,) for ``x`` (N, nx)."""
    x = _check_numpy_states(arrays, x)
    h = _numpy_features(arrays, x)
    for W, b in zip(arrays.weights[:-1], arrays.biases[:-1]):
        h = np.tanh(h @ W.T + b)
    out = h @ arrays.weights[-1].T + arrays.biases[-1]
    V = (out * out).sum(axis=-1) if arrays.kind == "gauss_residual" else out[..., 0]
    return float(V) if x.ndim == 1 else V


def numpy_value_derivatives(arrays: NetworkArrays, x: np.ndarray) -> ValueDerivatives:
    """``(V, Vx, Vxx)`` of an exported network at ``x`` (nx,) or a batch (N, nx), in numpy.

    Shapes: ``V`` float / (N,), ``Vx`` (nx,) / (N, nx), ``Vxx`` (nx, nx) / (N, nx, nx).
    Gauss-residual: ``Vx = 2 J^T r``, ``Vxx = 2 J^T J``. Feed-forward: the exact Hessian,
    ``sum_l A_l^T diag(g_l * tanh''(a_l)) A_l`` over the hidden layers (``a_l`` the
    pre-activation, ``A_l = da_l/dx``, ``g_l = dV/dh_l``) plus the curvature of the
    ``(cos, sin)`` features.
    """
    x = _check_numpy_states(arrays, x)
    weights, biases = arrays.weights, arrays.biases
    std = arrays.feature_std
    angles = arrays.angle_dims
    h = _numpy_features(arrays, x)
    jac = feature_jacobian(arrays, x)  # dz/dx (..., nf, nx)
    if angles:
        s_lin, s_cos, s_sin = _selection_matrices(arrays.nx, angles)
        sin_x, cos_x = np.sin(x), np.cos(x)
    feed_forward = arrays.kind == "feed_forward"
    hidden, pre_jacs, slopes = [], [], []
    for W, b in zip(weights[:-1], biases[:-1]):
        A = W @ jac  # da/dx (..., n, nx)
        h = np.tanh(h @ W.T + b)
        s = 1.0 - h * h  # tanh'
        jac = s[..., :, None] * A
        if feed_forward:
            hidden.append(h)
            pre_jacs.append(A)
            slopes.append(s)
    out = h @ weights[-1].T + biases[-1]  # (..., out)
    out_jac = weights[-1] @ jac  # (..., out, nx)
    if not feed_forward:
        V = (out * out).sum(axis=-1)
        Vx = 2.0 * (out[..., None, :] @ out_jac)[..., 0, :]
        Vxx = 2.0 * np.swapaxes(out_jac, -1, -2) @ out_jac
    else:
        V = out[..., 0]
        Vx = out_jac[..., 0, :]
        Vxx = np.zeros(x.shape + (arrays.nx,))
        g = weights[-1][0]  # dV/dh of the last hidden layer
        for W, h_l, A, s in zip(weights[len(hidden) - 1 :: -1], hidden[::-1], pre_jacs[::-1], slopes[::-1]):
            c = -2.0 * g * h_l * s  # g * tanh''(a)
            Vxx = Vxx + np.swapaxes(A, -1, -2) @ (c[..., :, None] * A)
            g = (g * s) @ W  # dV/dh of the layer below (dV/dz at the end)
        if angles:
            g_phi = g / std  # dV/dphi
            diag = -(g_phi @ s_cos) * cos_x - (g_phi @ s_sin) * sin_x  # curvature of cos and sin
            Vxx = Vxx + diag[..., :, None] * np.eye(arrays.nx)
    if x.ndim == 1:
        return ValueDerivatives(float(V), Vx, Vxx)
    return ValueDerivatives(V, Vx, Vxx)
