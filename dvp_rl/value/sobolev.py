"""Sobolev regression of a value network on ``(x, V, Vx[, Vxx])`` with early stopping.

The loss (Parag et al. 2022, eq. 8) is a weighted sum of the mean squared errors of the
value and of its gradient (and optionally of the Hessian)::

    L = w_V * mean (V_net - V)^2 / s_V + w_Vx * mean ||Vx_net - Vx||^2 / s_Vx [+ w_Vxx * ...]

where the scales ``s`` are the mean squared targets of the training split, so the
weights are relative and the same defaults work whatever the cost's units.
Early stopping watches the loss on a held-out validation split, never the training
loss, and restores the best parameters. An optional full-batch L-BFGS polish follows
Adam (kept only if it lowers the validation loss): Adam's minibatch noise floors the
relative error near 1e-3, L-BFGS on these small smooth problems goes well below.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from dvp_rl.value.networks import ValueNetwork


@dataclass(frozen=True)
class SobolevWeights:
    """Relative weights of the value, gradient and (optional) Hessian terms."""

    value: float = 1.0
    gradient: float = 1.0
    hessian: float = 0.0

    def __post_init__(self) -> None:
        for name in ("value", "gradient", "hessian"):
            w = getattr(self, name)
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"sobolev weight {name!r} must be finite and >= 0, got {w}")
        if self.value == 0 and self.gradient == 0 and self.hessian == 0:
            raise ValueError("at least one sobolev weight must be positive")


class FitResult(NamedTuple):
    """Outcome of :func:`fit_value_network`.

    ``value_loss``, ``gradient_loss``, ``hessian_loss``: plain MSEs on the validation
    split at the best epoch (value: mean (dV)^2; gradient: mean over samples of ||dVx||^2);
    ``train_value_loss``/``train_gradient_loss``: the same on the training split;
    ``epochs``: epochs run; ``best_epoch``; ``history``: validation objective per epoch.
    """

    value_loss: float
    gradient_loss: float
    hessian_loss: float
    train_value_loss: float
    train_gradient_loss: float
    epochs: int
    best_epoch: int
    history: list[float]


class EpochInfo(NamedTuple):
    """What :attr:`FitConfig.on_epoch` receives after every Adam epoch.

    ``epoch`` (1-based); ``validation_objective``: the weighted, scaled loss on the validation
    data; ``best_epoch`` so far; ``learning_rate``: the current one; ``net``: the network being
    fitted (in eval mode; read it, do not train it).
    """

    epoch: int
    validation_objective: float
    best_epoch: int
    learning_rate: float
    net: ValueNetwork


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_value_network` (one value instead of a dozen arguments).

    :param weights: relative weights of the value, gradient and Hessian terms
    :param learning_rate: Adam's learning rate (> 0)
    :param batch_size: minibatch size (>= 1)
    :param max_epochs: epoch budget (>= 1)
    :param patience: epochs without a better validation loss before stopping (>= 1); the
        learning rate is halved after ``patience // 3`` such epochs
    :param validation_fraction: share of the samples held out for early stopping, in (0, 1)
        (unused when the fit is given its own validation data)
    :param polish_steps: L-BFGS iterations on the full training split after Adam (0: none)
    :param device: torch device of the fit
    :param num_threads: torch CPU threads during the fit (``None``: leave as is). One thread is
        fastest for these small networks and does not fight the DDP workers for cores.
    :param on_epoch: called with an :class:`EpochInfo` after every epoch; returning ``False``
        stops the fit (early stopping's best parameters are still restored)
    """

    weights: SobolevWeights = SobolevWeights()
    learning_rate: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 500
    patience: int = 30
    validation_fraction: float = 0.2
    polish_steps: int = 0
    device: str = "cpu"
    num_threads: int | None = 1
    on_epoch: Callable[[EpochInfo], bool | None] | None = field(default=None, compare=False, metadata={"save": False})

    def __post_init__(self) -> None:
        if not isinstance(self.weights, SobolevWeights):
            raise TypeError(f"weights must be SobolevWeights, got {type(self.weights).__name__}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be finite and > 0, got {self.learning_rate}")
        for name in ("batch_size", "max_epochs", "patience"):
            _check_int(name, getattr(self, name), 1)
        _check_int("polish_steps", self.polish_steps, 0)
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.num_threads is not None:
            _check_int("num_threads", self.num_threads, 1)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class _Scales(NamedTuple):
    value: float
    gradient: float
    hessian: float


def _mse_terms(
    net: ValueNetwork, x: torch.Tensor, V: torch.Tensor, Vx: torch.Tensor, Vxx: torch.Tensor | None, need_hessian: bool, create_graph: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if need_hessian:
        pV, pVx, pVxx = net.value_derivatives(x, create_graph=create_graph)
        h = ((pVxx - Vxx) ** 2).sum(dim=(1, 2)).mean()
    else:
        pV, pVx = net.value_and_gradient(x, create_graph=create_graph)
        h = torch.zeros((), dtype=x.dtype)
    return ((pV - V) ** 2).mean(), ((pVx - Vx) ** 2).sum(dim=1).mean(), h


def _check_dataset(net: ValueNetwork, x: np.ndarray, V: np.ndarray, Vx: np.ndarray, Vxx: np.ndarray | None) -> None:
    n = len(x)
    expected = {"x": (n, net.nx), "V": (n,), "Vx": (n, net.nx)}
    got = {"x": np.shape(x), "V": np.shape(V), "Vx": np.shape(Vx)}
    if Vxx is not None:
        expected["Vxx"], got["Vxx"] = (n, net.nx, net.nx), np.shape(Vxx)
    for key in expected:
        if tuple(got[key]) != expected[key]:
            raise ValueError(f"sobolev fit: {key} must have shape {expected[key]}, got {tuple(got[key])}")
    for key, arr in (("x", x), ("V", V), ("Vx", Vx), ("Vxx", Vxx)):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ValueError(f"sobolev fit: {key} holds NaN or inf; drop failed solves before fitting")
    if n < 2:
        raise ValueError(f"sobolev fit needs at least 2 samples, got {n}")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``n`` inside, restored afterwards (``None``: left as is).

    One thread is fastest for the small networks of this package and does not fight the DDP
    workers for cores: the fits use it, and so do the experiments (``torch_threads(1)``).
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_value_network(
    net: ValueNetwork,
    x: np.ndarray,
    V: np.ndarray,
    Vx: np.ndarray,
    Vxx: np.ndarray | None = None,
    config: FitConfig = FitConfig(),
    seed: int | None = None,
    validation: tuple[np.ndarray, ...] | None = None,
) -> FitResult:
    """Fit ``net`` in place on the dataset with Adam and early stopping; return the losses.

    :param x: states (N, nx); ``V`` (N,); ``Vx`` (N, nx); ``Vxx`` (N, nx, nx), needed when ``config.weights.hessian > 0``
    :param config: the fit's settings (:class:`FitConfig`)
    :param seed: seeds the split and the batch order
    :param validation: ``(x, V, Vx[, Vxx])`` of separate validation data for early stopping and the
        reported losses; ``None``: ``config.validation_fraction`` of the dataset is held out
    """
    if not isinstance(config, FitConfig):
        raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
    with torch_threads(config.num_threads if torch.device(config.device).type == "cpu" else None):
        return _fit(net, x, V, Vx, Vxx, config, seed, validation)


def _fit(
    net: ValueNetwork,
    x: np.ndarray,
    V: np.ndarray,
    Vx: np.ndarray,
    Vxx: np.ndarray | None,
    config: FitConfig,
    seed: int | None,
    validation: tuple[np.ndarray, ...] | None,
) -> FitResult:
    weights, batch_size, patience = config.weights, config.batch_size, config.patience
    _check_dataset(net, x, V, Vx, Vxx)
    need_hessian = weights.hessian > 0
    if need_hessian and Vxx is None:
        raise ValueError("weights.hessian > 0 needs Vxx targets")
    gen = np.random.default_rng(seed)
    n = len(x)
    if validation is None:
        order = gen.permutation(n)
        n_val = min(n - 1, max(1, int(round(config.validation_fraction * n))))
        val_idx, train_idx = order[:n_val], order[n_val:]
    else:  # appended after the training samples
        if len(validation) not in (3, 4):
            raise ValueError("validation must be (x, V, Vx) or (x, V, Vx, Vxx)")
        val_Vxx = validation[3] if len(validation) == 4 else None
        if (Vxx is None) != (val_Vxx is None):
            raise ValueError("give Vxx for both the dataset and the validation data, or for neither")
        _check_dataset(net, *validation[:3], val_Vxx)
        x, V, Vx = (np.concatenate([a, b]) for a, b in zip((x, V, Vx), validation[:3]))
        Vxx = None if Vxx is None else np.concatenate([Vxx, val_Vxx])
        train_idx, val_idx = np.arange(n), np.arange(n, len(x))

    device = torch.device(config.device)
    net.to(device)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)  # noqa: E731
    X, Vt, Vxt = as_t(x), as_t(V), as_t(Vx)
    Vxxt = as_t(Vxx) if Vxx is not None else None
    tr = torch.as_tensor(train_idx, device=device)
    va = torch.as_tensor(val_idx, device=device)
    scales = _Scales(
        value=float((Vt[tr] ** 2).mean().clamp_min(1e-12)),
        gradient=float((Vxt[tr] ** 2).sum(1).mean().clamp_min(1e-12)),
        hessian=float((Vxxt[tr] ** 2).sum((1, 2)).mean().clamp_min(1e-12)) if need_hessian else 1.0,
    )

    def objective(terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        v, g, h = terms
        return weights.value * v / scales.value + weights.gradient * g / scales.gradient + weights.hessian * h / scales.hessian

    def validation_objective(val: tuple[float, float, float]) -> float:
        return weights.value * val[0] / scales.value + weights.gradient * val[1] / scales.gradient + weights.hessian * val[2] / scales.hessian

    def evaluate(idx: torch.Tensor) -> tuple[float, float, float]:
        terms = _mse_terms(net, X[idx], Vt[idx], Vxt[idx], None if Vxxt is None else Vxxt[idx], need_hessian, create_graph=False)
        return tuple(float(t.detach()) for t in terms)  # type: ignore[return-value]

    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, patience // 3))
    torch_gen = torch.Generator(device="cpu").manual_seed(int(gen.integers(2**31)))
    best = (math.inf, 0, copy.deepcopy(net.state_dict()))
    history: list[float] = []
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        perm = tr[torch.randperm(len(tr), generator=torch_gen).to(device)]
        for start in range(0, len(perm), batch_size):
            b = perm[start : start + batch_size]
            loss = objective(_mse_terms(net, X[b], Vt[b], Vxt[b], None if Vxxt is None else Vxxt[b], need_hessian, create_graph=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        val_obj = validation_objective(evaluate(va))
        if not math.isfinite(val_obj):
            raise FloatingPointError(f"sobolev fit diverged at epoch {epoch} (validation loss {val_obj}); lower the learning rate")
        history.append(val_obj)
        scheduler.step(val_obj)
        if val_obj < best[0]:
            best = (val_obj, epoch, copy.deepcopy(net.state_dict()))
        if config.on_epoch is not None:
            info = EpochInfo(epoch, val_obj, best[1], float(optimizer.param_groups[0]["lr"]), net)
            if config.on_epoch(info) is False:
                break
        if epoch - best[1] >= patience:
            break
    net.load_state_dict(best[2])
    net.eval()
    if config.polish_steps > 0:
        _polish(net, lambda create_graph: objective(_mse_terms(net, X[tr], Vt[tr], Vxt[tr], None if Vxxt is None else Vxxt[tr], need_hessian, create_graph)),
                lambda: validation_objective(evaluate(va)), config.polish_steps)
    val = evaluate(va)
    train = evaluate(tr)
    return FitResult(
        value_loss=val[0],
        gradient_loss=val[1],
        hessian_loss=val[2],
        train_value_loss=train[0],
        train_gradient_loss=train[1],
        epochs=epoch,
        best_epoch=best[1],
        history=history,
    )


def _polish(net: ValueNetwork, train_objective, validation_objective, steps: int) -> None:
    """Full-batch L-BFGS on the training objective; keeps the result only if validation improves."""
    before = validation_objective()
    saved = copy.deepcopy(net.state_dict())
    optimizer = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=int(steps), history_size=50, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = train_objective(True)
        loss.backward()
        return loss

    optimizer.step(closure)
    after = validation_objective()
    if not (math.isfinite(after) and after < before):
        net.load_state_dict(saved)
