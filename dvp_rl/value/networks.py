"""Value networks ``V(x)`` in torch: built, fitted and saved here; exported to :mod:`dvp_rl.value.arrays`.

Two architectures from Parag et al., "Value learning from trajectory optimization and
Sobolev descent: a step toward reinforcement learning with superlinear convergence
properties" (ICRA 2022):

* :class:`GaussResidualNet` (``kind="gauss_residual"``): ``V(x) = ||r(x)||^2`` with ``r``
  a tanh MLP with a linear output of size ``residual_dim``. Its derivatives use the
  residual Jacobian ``J = dr/dx``: ``Vx = 2 J^T r`` and the Gauss-Newton Hessian
  ``Vxx = 2 J^T J`` (positive semi-definite, no second derivatives of the network).
* :class:`FeedForwardNet` (``kind="feed_forward"``): a scalar tanh MLP with its exact
  gradient and Hessian.

The input features (``(cos, sin)`` of the ``angle_dims``, normalised) are those of
:mod:`dvp_rl.value.arrays`. Everything is ``float64``. :meth:`ValueNetwork.export` gives a
:class:`~dvp_rl.value.arrays.NetworkArrays` of plain numpy arrays (picklable, torch-free):
what travels to worker processes and to the terminal model of the DDP, which evaluates it
with :func:`~dvp_rl.value.arrays.numpy_value` and
:func:`~dvp_rl.value.arrays.numpy_value_derivatives` (re-exported here).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dvp_rl.config import integer

from dvp_rl.value.arrays import (
    VALUE_NETWORK_KINDS, FeatureStats, NetworkArrays, ValueDerivatives, _check_angle_dims, _selection_matrices, feature_jacobian,
    fit_normalisation, numpy_value, numpy_value_derivatives, raw_features,
)  # fmt: skip


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


@dataclass(frozen=True)
class NetworkConfig:
    """DVP's value network (SB3's ``policy_kwargs`` of a value learner).

    :param kind: ``"gauss_residual"`` (``V = ||r||^2``, Gauss-Newton Hessian) or ``"feed_forward"``
    :param net_arch: hidden widths of the tanh MLP (paper: 3 x 64)
    :param residual_dim: size of the residual ``r`` (Gauss-residual only; paper: 3)
    :raises ValueError: an unknown kind, a width or residual size below 1
    """

    kind: str = "gauss_residual"
    net_arch: tuple[int, ...] = (64, 64, 64)
    residual_dim: int = 3

    def __post_init__(self) -> None:
        if self.kind not in _NETWORKS:
            raise ValueError(f"unknown value network kind {self.kind!r}; expected one of {sorted(_NETWORKS)}")
        object.__setattr__(self, "net_arch", tuple(integer("network.net_arch", w, 1) for w in self.net_arch))
        object.__setattr__(self, "residual_dim", integer("network.residual_dim", self.residual_dim, 1))

    def make(self, nx: int, angle_dims: Sequence[int] = ()) -> ValueNetwork:
        """An untrained network of this architecture for states of dimension ``nx``."""
        kwargs: dict[str, Any] = {"net_arch": self.net_arch, "angle_dims": tuple(angle_dims)}
        if self.kind == "gauss_residual":
            kwargs["residual_dim"] = self.residual_dim
        return make_value_network(self.kind, nx, **kwargs)


def make_value_network(kind: str, nx: int, **kwargs: Any) -> ValueNetwork:
    """Build a value network by name: ``"gauss_residual"`` or ``"feed_forward"``.

    ``make_value_network(**net.config)`` rebuilds ``net``'s architecture.
    """
    if kind not in _NETWORKS:
        raise ValueError(f"unknown value network kind {kind!r}; expected one of {sorted(_NETWORKS)}")
    return _NETWORKS[kind](nx, **kwargs)


__all__ = [
    "VALUE_NETWORK_KINDS", "FeatureStats", "FeedForwardNet", "GaussResidualNet", "NetworkArrays", "NetworkConfig", "ValueDerivatives", "ValueNetwork",
    "feature_jacobian", "fit_normalisation", "make_value_network", "numpy_value", "numpy_value_derivatives", "raw_features",
]  # fmt: skip
