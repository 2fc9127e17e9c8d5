"""Value networks ``V(x)`` and their derivatives, in torch (training) and numpy (the DDP).

Two architectures from Parag et al., "Value learning from trajectory optimization and
Sobolev descent: a step toward reinforcement learning with superlinear convergence
properties" (ICRA 2022):

* :class:`GaussResidualNet` (``kind="gauss_residual"``): ``V(x) = ||r(x)||^2`` with ``r``
  a tanh MLP with a linear output of size ``residual_dim``. Its derivatives use the
  residual Jacobian ``J = dr/dx``: ``Vx = 2 J^T r`` and the Gauss-Newton Hessian
  ``Vxx = 2 J^T J`` (positive semi-definite, no second derivatives of the network).
* :class:`FeedForwardNet` (``kind="feed_forward"``): a scalar tanh MLP with its exact
  gradient and Hessian.

Input features. The entries ``angle_dims`` of the state are replaced by their
``(cos, sin)`` so that ``V`` is ``2*pi``-periodic in them; the feature vector is
``phi(x) = [x_i for i not in angle_dims] + [cos x_a for a in angle_dims] + [sin x_a for a in angle_dims]``
(``nf = nx + len(angle_dims)`` entries), normalised as ``z = (phi - mean) / std`` with
statistics from :func:`fit_normalisation`. Every derivative goes through this
feature map by the chain rule, so ``Vx`` and ``Vxx`` are with respect to ``x``.

Everything is ``float64``. :meth:`ValueNetwork.export` gives a :class:`NetworkArrays`
of plain numpy arrays (picklable, torch-free): what travels to worker processes and
to the terminal model of the DDP, which evaluates it with :func:`numpy_value` and
:func:`numpy_value_derivatives` (hand-written chain rules, no torch).
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn

#: the architectures :func:`make_value_network` knows
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


# ---------------------------------------------------------------------------- torch networks
class ValueNetwork(nn.Module, abc.ABC):
    """Base class of the value networks: feature map, tanh MLP, export.

    :param nx: state dimension
    :param net_arch: widths of the hidden tanh layers
    :param output_dim: size of the linear output layer
    :param angle_dims: state entries replaced by ``(cos, sin)`` features
    :param feature_mean: feature means (nf,), zeros if ``None`` (see :func:`fit_normalisation`)
    :param feature_std: feature standard deviations (nf,), ones if ``None``

    The feature statistics are buffers, so they are part of ``state_dict()``;
    ``make_value_network(**net.config)`` followed by ``load_state_dict`` rebuilds a network.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        nx: int,
        net_arch: Sequence[int],
        output_dim: int,
        angle_dims: Sequence[int] = (),
        feature_mean: np.ndarray | None = None,
        feature_std: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        if int(nx) < 1:
            raise ValueError(f"nx must be >= 1, got {nx}")
        self.nx = int(nx)
        self.angle_dims = _check_angle_dims(self.nx, angle_dims)
        self.net_arch = tuple(int(w) for w in net_arch)
        if any(w < 1 for w in self.net_arch):
            raise ValueError(f"net_arch widths must be >= 1, got {tuple(net_arch)}")
        self.nf = self.nx + len(self.angle_dims)
        sizes = (self.nf, *self.net_arch, int(output_dim))
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=torch.float64) for a, b in zip(sizes[:-1], sizes[1:]))
        mean = np.zeros(self.nf) if feature_mean is None else feature_mean
        std = np.ones(self.nf) if feature_std is None else feature_std
        self.register_buffer("feature_mean", torch.zeros(self.nf, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(self.nf, dtype=torch.float64))
        self.set_normalisation(mean, std)
        for name, mat in zip(("_s_lin", "_s_cos", "_s_sin"), _selection_matrices(self.nx, self.angle_dims)):
            self.register_buffer(name, torch.tensor(mat), persistent=False)

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments, ``kind`` included (feature statistics live in the state dict)."""
        return {"kind": self.kind, "nx": self.nx, "net_arch": list(self.net_arch), "angle_dims": list(self.angle_dims)}

    def set_normalisation(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Set the feature statistics, each of shape (nf,); ``std`` must be positive."""
        mean_t = torch.as_tensor(mean, dtype=torch.float64).detach()
        std_t = torch.as_tensor(std, dtype=torch.float64).detach()
        if mean_t.shape != (self.nf,) or std_t.shape != (self.nf,):
            raise ValueError(
                f"feature mean and std must have shape ({self.nf},), got {tuple(mean_t.shape)} and {tuple(std_t.shape)}"
            )
        if not bool(torch.all(std_t > 0)) or not bool(torch.all(torch.isfinite(mean_t))):
            raise ValueError("feature std must be positive and the mean finite")
        self.feature_mean.copy_(mean_t)
        self.feature_std.copy_(std_t)

    def fit_normalisation(self, states: np.ndarray) -> FeatureStats:
        """Set the feature statistics from a sample of states (N, nx) and return them."""
        stats = fit_normalisation(states, self.angle_dims)
        self.set_normalisation(stats.mean, stats.std)
        return stats

    def export(self) -> NetworkArrays:
        """The network as read-only numpy arrays (a snapshot: later training does not change it)."""

        def frozen(t: torch.Tensor) -> np.ndarray:
            arr = t.detach().cpu().numpy().astype(np.float64, copy=True)
            arr.flags.writeable = False
            return arr

        return NetworkArrays(
            kind=self.kind,
            nx=self.nx,
            angle_dims=self.angle_dims,
            feature_mean=frozen(self.feature_mean),
            feature_std=frozen(self.feature_std),
            weights=tuple(frozen(layer.weight) for layer in self.layers),
            biases=tuple(frozen(layer.bias) for layer in self.layers),
        )

    # ------------------------------------------------------------------ evaluation
    def check_states(self, x: Any) -> torch.Tensor:
        """``x`` as a float64 tensor of shape (N, nx), or a ``ValueError`` naming the expected shape."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 2 or x.shape[1] != self.nx:
            raise ValueError(f"{type(self).__name__}: x must have shape (N, {self.nx}), got shape {tuple(x.shape)}")
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features ``z`` (N, nf) of states ``x`` (N, nx)."""
        lin = x @ self._s_lin.T
        cos = torch.cos(x) @ self._s_cos.T
        sin = torch.sin(x) @ self._s_sin.T
        return (lin + cos + sin - self.feature_mean) / self.feature_std

    def feature_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """``dz/dx`` of the normalised features, shape (N, nf, nx)."""
        d = self._s_lin - self._s_cos * torch.sin(x)[:, None, :] + self._s_sin * torch.cos(x)[:, None, :]
        return d / self.feature_std[:, None]

    def mlp(self, z: torch.Tensor) -> torch.Tensor:
        """The tanh MLP on features (N, nf), output (N, output_dim)."""
        h = z
        for layer in self.layers[:-1]:
            h = torch.tanh(layer(h))
        return self.layers[-1](h)

    def mlp_and_jacobian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output (N, output_dim) and its Jacobian in ``x`` (N, output_dim, nx), by forward-mode chain rule.

        Plain torch operations: both are differentiable w.r.t. the parameters.
        """
        h = self.features(x)
        jac = self.feature_jacobian(x)
        for layer in self.layers[:-1]:
            h = torch.tanh(layer(h))
            jac = (1.0 - h * h)[:, :, None] * (layer.weight @ jac)
        last = self.layers[-1]
        return last(h), last.weight @ jac

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``V(x)`` (N,) of states ``x`` (N, nx)."""

    @abc.abstractmethod
    def value_and_gradient(self, x: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(V (N,), Vx (N, nx))``, differentiable w.r.t. the parameters when ``create_graph`` (Sobolev loss)."""

    @abc.abstractmethod
    def value_derivatives(self, x: torch.Tensor, create_graph: bool = True) -> ValueDerivatives:
        """``(V (N,), Vx (N, nx), Vxx (N, nx, nx))``, differentiable w.r.t. the parameters when ``create_graph``."""


class GaussResidualNet(ValueNetwork):
    """``V(x) = ||r(x)||^2``, ``r`` a tanh MLP; ``Vx = 2 J^T r``, Gauss-Newton ``Vxx = 2 J^T J`` (Parag et al. 2022).

    ``J = dr/dx`` is computed analytically by forward-mode chain rule through the
    feature map and the tanh layers, so all derivatives stay differentiable w.r.t.
    the parameters at the cost of ``nx`` columns carried through the layers.

    :param nx: state dimension
    :param net_arch: widths of the hidden tanh layers
    :param residual_dim: size of the residual ``r``
    :param angle_dims: state entries replaced by ``(cos, sin)`` features
    :param feature_mean: feature means (nf,), see :func:`fit_normalisation`
    :param feature_std: feature standard deviations (nf,)
    """

    kind = "gauss_residual"

    def __init__(
        self,
        nx: int,
        net_arch: Sequence[int] = (64, 64, 64),
        residual_dim: int = 3,
        angle_dims: Sequence[int] = (),
        feature_mean: np.ndarray | None = None,
        feature_std: np.ndarray | None = None,
    ) -> None:
        if int(residual_dim) < 1:
            raise ValueError(f"residual_dim must be >= 1, got {residual_dim}")
        self.residual_dim = int(residual_dim)
        super().__init__(nx, net_arch, self.residual_dim, angle_dims, feature_mean, feature_std)

    @property
    def config(self) -> dict[str, Any]:
        return {**super().config, "residual_dim": self.residual_dim}

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``r(x)``, shape (N, residual_dim)."""
        return self.mlp(self.features(self.check_states(x)))

    def residual_and_jacobian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``r`` (N, residual_dim) and ``J = dr/dx`` (N, residual_dim, nx)."""
        return self.mlp_and_jacobian(self.check_states(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.residual(x)
        return (r * r).sum(dim=-1)

    def value_and_gradient(self, x: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        r, jac = self.residual_and_jacobian(x)
        V, Vx = (r * r).sum(dim=-1), 2.0 * (r[:, None, :] @ jac)[:, 0, :]
        return (V, Vx) if create_graph else (V.detach(), Vx.detach())

    def value_derivatives(self, x: torch.Tensor, create_graph: bool = True) -> ValueDerivatives:
        r, jac = self.residual_and_jacobian(x)
        out = ValueDerivatives((r * r).sum(dim=-1), 2.0 * (r[:, None, :] @ jac)[:, 0, :], 2.0 * jac.transpose(1, 2) @ jac)
        return out if create_graph else ValueDerivatives(*(t.detach() for t in out))


class FeedForwardNet(ValueNetwork):
    """``V(x)``: a scalar tanh MLP; exact gradient and Hessian by torch autograd (Parag et al. 2022).

    The Hessian takes ``nx`` extra backward passes (slower than the Gauss-Newton
    Hessian of :class:`GaussResidualNet`); the numpy evaluation of the export uses a
    hand-written second-order chain rule instead.

    :param nx: state dimension
    :param net_arch: widths of the hidden tanh layers
    :param angle_dims: state entries replaced by ``(cos, sin)`` features
    :param feature_mean: feature means (nf,), see :func:`fit_normalisation`
    :param feature_std: feature standard deviations (nf,)
    """

    kind = "feed_forward"

    def __init__(
        self,
        nx: int,
        net_arch: Sequence[int] = (64, 64, 64),
        angle_dims: Sequence[int] = (),
        feature_mean: np.ndarray | None = None,
        feature_std: np.ndarray | None = None,
    ) -> None:
        super().__init__(nx, net_arch, 1, angle_dims, feature_mean, feature_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(self.check_states(x)))[:, 0]

    def _value_and_gradient(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.check_states(x).detach().requires_grad_(True)
        V = self.forward(x)
        (Vx,) = torch.autograd.grad(V.sum(), x, create_graph=True)
        return x, V, Vx

    def value_and_gradient(self, x: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            _, V, Vx = self._value_and_gradient(x)
        return (V, Vx) if create_graph else (V.detach(), Vx.detach())

    def value_derivatives(self, x: torch.Tensor, create_graph: bool = True) -> ValueDerivatives:
        with torch.enable_grad():
            xg, V, Vx = self._value_and_gradient(x)
            rows = [torch.autograd.grad(Vx[:, i].sum(), xg, create_graph=create_graph, retain_graph=True)[0] for i in range(self.nx)]
        Vxx = torch.stack(rows, dim=1)
        out = ValueDerivatives(V, Vx, Vxx)
        return out if create_graph else ValueDerivatives(*(t.detach() for t in out))


_NETWORKS: dict[str, type[ValueNetwork]] = {cls.kind: cls for cls in (GaussResidualNet, FeedForwardNet)}


def make_value_network(kind: str, nx: int, **kwargs: Any) -> ValueNetwork:
    """Build a value network by name: ``"gauss_residual"`` or ``"feed_forward"``.

    ``make_value_network(**net.config)`` rebuilds ``net``'s architecture.
    """
    if kind not in _NETWORKS:
        raise ValueError(f"unknown value network kind {kind!r}; expected one of {sorted(_NETWORKS)}")
    return _NETWORKS[kind](nx, **kwargs)


# ---------------------------------------------------------------------------- numpy evaluation
def _check_numpy_states(arrays: NetworkArrays, x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1:] != (arrays.nx,) or x.ndim not in (1, 2):
        raise ValueError(f"x must have shape ({arrays.nx},) or (N, {arrays.nx}), got shape {x.shape}")
    if arrays.kind not in _NETWORKS:
        raise ValueError(f"unknown value network kind {arrays.kind!r}; expected one of {sorted(_NETWORKS)}")
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
