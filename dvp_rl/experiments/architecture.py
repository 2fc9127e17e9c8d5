"""Gauss-residual against feed-forward value networks on the same data (the paper's Fig. 8-9).

Both architectures (paper: 3 x 64 tanh layers; the Gauss-residual ``V = ||r||^2`` with a
residual of size 3) are fitted with the Sobolev loss (value and gradient weights 1) to the same
solved unicycle states as the ``sobolev`` experiment (horizon-``T`` DDP, zero terminal cost,
:mod:`dvp_rl.experiments.value_fits`), from the same seeds. The experiment measures the
package's own fit, :func:`dvp_rl.value.sobolev.fit_value_network`: Adam with the fit's learning-rate
schedule for ``epochs`` epochs (a patience no run reaches, no L-BFGS polish), the fixed
validation set as the fit's validation data (so the parameters kept are those of its best
validation epoch), and an ``on_epoch`` hook (:class:`CurveRecorder`) that records the relative
training and validation losses of ``V`` and of ``Vx`` after every epoch. The seconds per epoch
exclude the hook's own evaluation and the fit's set-up. Targets are divided by the mean training
value, as in the Sobolev experiment (the feed-forward network's linear output would otherwise
have to climb to values of a few hundred at Adam's step size).

Also measured: the gradient field ``(dV/dx, dV/dy)`` in the x-y plane at heading 0 against the
solved truth on a grid (quiver maps, Fig. 9), and the time of one terminal-node evaluation
``calc`` + ``calcDiff`` of :class:`dvp_rl.control.terminal.ValueTerminalModel` (``V``, ``Vx`` and ``Vxx``:
the Gauss-residual's Gauss-Newton Hessian ``2 J^T J`` against the feed-forward's exact one),
which is what the DDP pays per terminal node.

Outputs under ``runs/reproduce/architecture/``: ``training_curves.png`` (Fig. 8),
``gradient_field.png`` (Fig. 9), ``table.md``/``table.json`` and tensorboard runs
``tb/<kind>__<seed>`` (per-epoch losses).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure

import envs
from dvp_rl.experiments import common
from dvp_rl.experiments.value_fits import Dataset, make_network, network_errors, predict, solved_dataset, target_scale, validation_set
from dvp_rl.value.sobolev import EpochInfo, FitConfig, SobolevWeights, fit_value_network, torch_threads
from dvp_rl.control.terminal import ValueTerminalModel
from dvp_rl.value.networks import VALUE_NETWORK_KINDS, ValueNetwork

NAME = "architecture"
ENV_ID = "dvp_rl/Unicycle-v0"
LABELS = {"gauss_residual": "Gauss-residual", "feed_forward": "feed-forward"}
COLORS = {"gauss_residual": "tab:blue", "feed_forward": "tab:orange"}


@dataclass(frozen=True)
class Settings:
    """Budget of the experiment.

    ``horizon``: DDP horizon of the targets; ``n_train``: training states per seed;
    ``n_validation``: fixed validation states (the same as the Sobolev experiment's);
    ``net_arch``/``residual_dim``: both networks' hidden layers, the Gauss-residual's residual;
    ``learning_rate``, ``batch_size``, ``epochs``: the fit's; ``grid``: points per side
    of the x-y grid of the gradient field; ``timing_calls``: terminal evaluations timed.
    """

    horizon: int = 50
    n_train: int = 1000
    n_validation: int = 500
    net_arch: tuple[int, ...] = (64, 64, 64)
    residual_dim: int = 3
    learning_rate: float = 1e-3
    batch_size: int = 64
    epochs: int = 200
    grid: int = 15
    timing_calls: int = 2000


FULL = Settings()
QUICK = Settings(horizon=10, n_train=60, n_validation=30, net_arch=(16, 16), epochs=6, grid=5, timing_calls=50)


class Curves(NamedTuple):
    """Per-epoch relative MSEs (``mean (V - V*)^2 / mean V*^2``, ``mean ||Vx - Vx*||^2 / mean ||Vx*||^2``)
    on the training and the validation set, and the mean seconds per epoch."""

    train_value: list[float]
    train_gradient: list[float]
    val_value: list[float]
    val_gradient: list[float]
    seconds_per_epoch: float


def _relative_terms(net: ValueNetwork, x: torch.Tensor, V: torch.Tensor, Vx: torch.Tensor) -> tuple[float, float]:
    pV, pVx = net.value_and_gradient(x, create_graph=False)
    value = ((pV - V) ** 2).mean() / (V**2).mean()
    gradient = ((pVx - Vx) ** 2).sum(1).mean() / (Vx**2).sum(1).mean()
    return float(value.detach()), float(gradient.detach())


class CurveRecorder:
    """An ``on_epoch`` hook of :class:`~dvp_rl.value.sobolev.FitConfig` that records :class:`Curves`.

    After every epoch it evaluates the relative MSEs of ``V`` and ``Vx`` on ``train`` and
    ``validation``. The seconds of an epoch run from the end of the previous hook call (or from
    :meth:`start`) to this call, so they exclude this evaluation; ``seconds_per_epoch`` is their
    mean over the epochs after the first, whose interval also holds the fit's set-up (the
    optimiser's first construction imports parts of torch), or the first one's alone. It never
    stops the fit.
    """

    def __init__(self, train: Dataset, validation: Dataset) -> None:
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
        self._data = {"train": tuple(map(as_t, train)), "val": tuple(map(as_t, validation))}
        self._values: dict[str, list[float]] = {"train_value": [], "train_gradient": [], "val_value": [], "val_gradient": []}
        self._epoch_seconds: list[float] = []
        self._mark = time.perf_counter()

    def start(self) -> None:
        """Start the clock of the first epoch (call it just before the fit)."""
        self._mark = time.perf_counter()

    def __call__(self, info: EpochInfo) -> None:
        self._epoch_seconds.append(time.perf_counter() - self._mark)
        for prefix, data in self._data.items():
            value, gradient = _relative_terms(info.net, *data)
            self._values[f"{prefix}_value"].append(value)
            self._values[f"{prefix}_gradient"].append(gradient)
        self._mark = time.perf_counter()

    def curves(self) -> Curves:
        """The curves recorded so far.

        :raises FloatingPointError: a recorded loss is not finite
        """
        if not all(np.isfinite(v) for values in self._values.values() for v in values):
            raise FloatingPointError("the fit diverged (non-finite loss); lower the learning rate")
        timed = self._epoch_seconds[1:] or self._epoch_seconds
        seconds = float(np.mean(timed)) if timed else 0.0
        return Curves(**{k: list(v) for k, v in self._values.items()}, seconds_per_epoch=seconds)


def train_with_curves(
    net: ValueNetwork,
    train: Dataset,
    validation: Dataset,
    weights: SobolevWeights,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    seed: int,
) -> Curves:
    """Fit ``net`` in place with :func:`~dvp_rl.value.sobolev.fit_value_network` for ``epochs`` epochs
    (``validation`` as the fit's validation data, no early stop, no L-BFGS polish), recording the
    losses after each epoch with a :class:`CurveRecorder`; ``net`` ends with the parameters the fit
    keeps (its best validation epoch)."""
    recorder = CurveRecorder(train, validation)
    config = FitConfig(weights=weights, learning_rate=learning_rate, batch_size=batch_size, max_epochs=int(epochs),
                       patience=int(epochs), polish_steps=0, on_epoch=recorder)  # fmt: skip
    recorder.start()
    fit_value_network(net, *train, config=config, seed=seed, validation=tuple(validation))
    return recorder.curves()


def terminal_eval_us(net: ValueNetwork, states: np.ndarray, calls: int) -> float:
    """Mean microseconds of one terminal-node ``calc`` + ``calcDiff`` (``V``, ``Vx``, ``Vxx``) of ``net``."""
    env = envs.make(ENV_ID).unwrapped
    model = ValueTerminalModel(net.export(), env.nx, env.nu, 1.0)
    data = model.createData()
    xs = [np.ascontiguousarray(states[i % len(states)]) for i in range(int(calls))]
    t0 = time.perf_counter()
    for x in xs:
        model.calc(data, x)
        model.calcDiff(data, x)
    return 1e6 * (time.perf_counter() - t0) / max(len(xs), 1)


def xy_grid(n: int, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, states)``: an ``n x n`` grid of the x-y plane at heading 0, states (n*n, 3)."""
    axis = np.linspace(-bound, bound, int(n))
    X, Y = np.meshgrid(axis, axis)
    return X, Y, np.stack([X.ravel(), Y.ravel(), np.zeros(X.size)], axis=1)


class SeedResult(NamedTuple):
    """One network and seed: its loss curves, its errors on the validation set and on the grid
    (see :func:`~dvp_rl.references.ground_truth.value_errors`), the terminal-evaluation time, and its
    ``V`` (N,) and ``Vx`` (N, nx) on the grid."""

    curves: Curves
    value_rel_mse: float
    gradient_rel_error: float
    grid_gradient_rel_error: float
    terminal_us: float
    grid_V: np.ndarray
    grid_Vx: np.ndarray


@common.experiment(NAME, QUICK, FULL)
def run(settings: Settings, seeds: tuple[int, ...], out: Path) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table."""
    with torch_threads(1):
        env = envs.make(ENV_ID).unwrapped
        validation = validation_set(ENV_ID, settings.n_validation, settings.horizon)
        X, Y, grid_states = xy_grid(settings.grid)
        grid_truth = solved_dataset(ENV_ID, grid_states, settings.horizon)
        if len(grid_truth.x) != len(grid_states):
            raise RuntimeError(f"{len(grid_states) - len(grid_truth.x)} DDP solves of the gradient-field grid failed")
        results: dict[str, dict[int, SeedResult]] = {kind: {} for kind in VALUE_NETWORK_KINDS}
        for seed in seeds:
            train = solved_dataset(ENV_ID, env.sample_states(settings.n_train, np.random.default_rng(seed)), settings.horizon)
            scale = target_scale(train)
            scaled, scaled_val = train.scaled(scale), validation.scaled(scale)
            for kind in VALUE_NETWORK_KINDS:
                net = make_network(ENV_ID, kind, settings.net_arch, settings.residual_dim, seed)
                curves = train_with_curves(
                    net, scaled, scaled_val, SobolevWeights(1.0, 1.0), settings.learning_rate, settings.batch_size, settings.epochs, seed
                )
                errors = network_errors(net, scale, validation, settings.horizon)
                grid_errors = network_errors(net, scale, grid_truth, settings.horizon)
                grid_V, grid_Vx = predict(net, grid_states, scale)
                results[kind][seed] = SeedResult(
                    curves, errors.value_rel_mse, errors.gradient_rel_error, grid_errors.gradient_rel_error,
                    terminal_eval_us(net, validation.x, settings.timing_calls), grid_V, grid_Vx,
                )  # fmt: skip
                _log(out, kind, seed, settings, curves)
    _plot_curves(results, out / "training_curves.png")
    _plot_field(results, seeds[0], X, Y, grid_truth, out / "gradient_field.png")
    return _write_table(results, settings, seeds, out)


def _log(out: Path, kind: str, seed: int, settings: Settings, curves: Curves) -> None:
    tb = common.writer(out, f"{kind}__{seed}")
    tb.add_text("settings", json.dumps(asdict(settings) | {"value_net": kind, "seed": seed}))
    for epoch, values in enumerate(zip(curves.train_value, curves.train_gradient, curves.val_value, curves.val_gradient), start=1):
        for tag, value in zip(("train/value_loss", "train/gradient_loss", "validation/value_loss", "validation/gradient_loss"), values):
            tb.add_scalar(tag, value, epoch)
    tb.add_scalar("time/seconds_per_epoch", curves.seconds_per_epoch, 0)
    tb.close()


def _write_table(results: dict[str, dict[int, SeedResult]], settings: Settings, seeds: Sequence[int], out: Path) -> dict[str, Any]:
    def per_seed(kind: str, getter: Any) -> list[float]:
        return [float(getter(r)) for r in results[kind].values()]

    metrics = {
        "final_train_value_loss": lambda r: r.curves.train_value[-1],
        "final_train_gradient_loss": lambda r: r.curves.train_gradient[-1],
        "best_val_value_loss": lambda r: min(r.curves.val_value),
        "value_rel_mse": lambda r: r.value_rel_mse,
        "gradient_rel_error": lambda r: r.gradient_rel_error,
        "grid_gradient_rel_error": lambda r: r.grid_gradient_rel_error,
        "seconds_per_epoch": lambda r: r.curves.seconds_per_epoch,
        "terminal_eval_us": lambda r: r.terminal_us,
    }
    data = {kind: {name: common.stats(per_seed(kind, get), per_seed=True) for name, get in metrics.items()} for kind in results}
    curves = {
        kind: {field: np.mean([getattr(r.curves, field) for r in results[kind].values()], axis=0).tolist()
               for field in ("train_value", "train_gradient", "val_value", "val_gradient")}
        for kind in results
    }  # fmt: skip
    columns = ["network", "train V loss", "train Vx loss", "val V rel. MSE", "val Vx rel. error", "grid Vx rel. error", "s / epoch",
               "terminal calc+calcDiff (µs)"]  # fmt: skip
    error_metrics = ("final_train_value_loss", "final_train_gradient_loss", "value_rel_mse", "gradient_rel_error",
                     "grid_gradient_rel_error")  # fmt: skip
    rows = []
    for kind in results:
        cells = [common.cell(per_seed(kind, metrics[name])) for name in error_metrics]
        timing = [common.plain_cell(per_seed(kind, metrics["seconds_per_epoch"]), 3),
                  common.plain_cell(per_seed(kind, metrics["terminal_eval_us"]), 0)]
        rows.append([LABELS[kind], *cells, *timing])
    notes = (
        f"Unicycle, targets from T={settings.horizon} DDP solves, {settings.n_train} training states per seed, {len(seeds)} seed(s) "
        f"(mean ± std), a fixed validation set of {settings.n_validation} solved states and a {settings.grid}x{settings.grid} x-y grid "
        f"at heading 0. Both networks {list(settings.net_arch)} tanh (Gauss-residual: residual {settings.residual_dim}), Sobolev "
        f"loss (weights 1, 1), dvp_rl's fit: Adam lr {settings.learning_rate}, batch {settings.batch_size}, {settings.epochs} epochs "
        "(no early stop, no L-BFGS), the parameters of the best validation epoch kept; targets divided by their training mean. "
        "Train losses: relative MSEs after the last epoch (V: mean dV^2 / mean V^2; Vx: mean ||dVx||^2 / mean ||Vx||^2). Val V rel. "
        "MSE and Vx rel. error (sqrt of the relative MSE) of the kept parameters on the validation set; grid Vx rel. error on the grid. "
        "s / epoch: time of one epoch of the fit on one thread (mean over the epochs after the first; the curves' evaluation "
        "excluded); terminal: one calc + calcDiff of the DDP's terminal model (V, Vx, Vxx; Gauss-Newton Hessian for "
        "Gauss-residual, exact for feed-forward). Timings on a shared machine."
    )
    table = {
        "experiment": NAME, "env_id": ENV_ID, "seeds": list(seeds), "settings": asdict(settings), "results": data, "mean_curves": curves,
    }  # fmt: skip
    return common.publish_table(out, "Gauss-residual against feed-forward value networks (paper Fig. 8-9)", columns, rows, table, notes)


def _plot_curves(results: dict[str, dict[int, SeedResult]], path: Path) -> None:
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
    for ax, term, title in zip(axes, ("value", "gradient"), ("V loss (relative MSE)", "Vx loss (relative MSE)")):
        for kind, by_seed in results.items():
            for split, style in (("train", "--"), ("val", "-")):
                values = np.array([getattr(r.curves, f"{split}_{term}") for r in by_seed.values()])
                epochs = np.arange(1, values.shape[1] + 1)
                mean, std = values.mean(axis=0), values.std(axis=0)
                ax.plot(epochs, mean, style, color=COLORS[kind], label=f"{LABELS[kind]} {'training' if split == 'train' else 'validation'}")
                ax.fill_between(epochs, np.maximum(mean - std, mean * 1e-2), mean + std, color=COLORS[kind], alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Sobolev fit of the unicycle's value: mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _plot_field(results: dict[str, dict[int, SeedResult]], seed: int, X: np.ndarray, Y: np.ndarray, truth: Dataset, path: Path) -> None:
    panels = [("truth (DDP)", truth.V, truth.Vx)] + [(LABELS[k], results[k][seed].grid_V, results[k][seed].grid_Vx) for k in results]
    levels = np.linspace(min(float(p[1].min()) for p in panels), max(float(p[1].max()) for p in panels), 21)
    # one arrow scale for all panels: the truth's longest arrow spans 0.9 grid spacing
    spacing = float(X[0, 1] - X[0, 0]) if X.shape[1] > 1 else 1.0
    arrow_scale = max(float(np.linalg.norm(truth.Vx[:, :2], axis=1).max()), 1e-12) / (0.9 * spacing)
    fig = Figure(figsize=(4.3 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), sharey=True)
    for ax, (title, V, Vx) in zip(axes, panels):
        contour = ax.contourf(X, Y, V.reshape(X.shape), levels=levels, extend="both", cmap="viridis")
        ax.quiver(
            X, Y, Vx[:, 0].reshape(X.shape), Vx[:, 1].reshape(X.shape), color="white", angles="xy", scale_units="xy", scale=arrow_scale
        )
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_aspect("equal")
    axes[0].set_ylabel("y")
    fig.colorbar(contour, ax=list(axes), shrink=0.8, label="V")
    fig.suptitle(f"Gradient field (dV/dx, dV/dy) at heading 0 (seed {seed})")
    fig.savefig(path, dpi=120)
