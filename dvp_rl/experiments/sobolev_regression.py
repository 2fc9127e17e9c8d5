"""Sobolev against plain regression of the unicycle's value (the paper's Fig. 7).

Targets ``(V, Vx)`` come from horizon-``T`` DDP solves of the unicycle (zero terminal cost,
multi-start, failed solves dropped): the value to learn is the fixed function ``V_T``, so no
DVP iteration is needed. For every dataset size ``n`` a Gauss-residual network (paper:
3 x 64, residual of size 3) is fitted with :func:`dvp_rl.value.sobolev.fit_value_network` twice from
the same initialisation: *plain* regression (gradient weight 0) and *Sobolev* regression
(value and gradient weights 1). Both are measured on a separate fixed set of solved states
(the same for every seed and size) with :func:`dvp_rl.references.ground_truth.value_errors`:
``value_rel_mse = mean (V - V*)^2 / mean V*^2`` and
``gradient_rel_error = sqrt(mean ||Vx - Vx*||^2 / mean ||Vx*||^2)``. The number of epochs is
the fit's best epoch (the one whose parameters are kept: the epochs needed to reach the
reported error), after which an L-BFGS polish may lower it further.

Targets are divided by the mean of the training values before each fit (and predictions
multiplied back, :mod:`dvp_rl.experiments.value_fits`): a change of cost units that leaves both
losses' relative weighting as it is. Without it, plain regression of the unicycle's values (of
order 100-500) with Adam at ``lr = 1e-3`` saturates the tanh units (docs/REPRODUCTION.md), which
would say more about target scaling than about Sobolev descent.

Paper: Sobolev regression reaches a validation error of 1e-3 with about 50 samples, plain
regression needs far more. Outputs under ``runs/reproduce/sobolev/``: ``sobolev_vs_plain.png``
(errors and epochs against the dataset size), ``sobolev_history.png`` (the fit's validation
objective per epoch, first seed), ``table.md``/``table.json`` and tensorboard runs
``tb/<method>__<seed>``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import envs
from dvp_rl.experiments import common
from dvp_rl.experiments.value_fits import Dataset, make_network, network_errors, solved_dataset, target_scale, validation_set
from dvp_rl.value.sobolev import FitConfig, FitResult, SobolevWeights, fit_value_network, torch_threads

NAME = "sobolev"
ENV_ID = "dvp_rl/Unicycle-v0"
#: the two regressions compared: name -> loss weights
METHODS: dict[str, SobolevWeights] = {"plain": SobolevWeights(value=1.0, gradient=0.0), "sobolev": SobolevWeights(value=1.0, gradient=1.0)}


@dataclass(frozen=True)
class Settings:
    """Budget of the experiment.

    ``horizon``: DDP horizon of the targets; ``sizes``: training-set sizes (nested subsets of
    one pool per seed); ``n_validation``: fixed validation states; ``net_arch``/``residual_dim``:
    the Gauss-residual network; ``learning_rate``, ``batch_size``, ``max_epochs``, ``patience``,
    ``polish_steps``: :func:`~dvp_rl.value.sobolev.fit_value_network`'s; ``threshold``: the
    validation ``value_rel_mse`` whose smallest reaching size is reported.
    """

    horizon: int = 50
    sizes: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1000)
    n_validation: int = 500
    net_arch: tuple[int, ...] = (64, 64, 64)
    residual_dim: int = 3
    learning_rate: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 300
    patience: int = 30
    polish_steps: int = 100
    threshold: float = 1e-3


FULL = Settings()
QUICK = Settings(horizon=10, sizes=(10, 20, 40), n_validation=40, net_arch=(16, 16), max_epochs=15, patience=10, polish_steps=5)


class FitRecord(NamedTuple):
    """One fit: its validation errors on the fixed set, best and last epoch, the fit's per-epoch validation objective."""

    value_rel_mse: float
    gradient_rel_error: float
    best_epoch: int
    epochs: int
    history: list[float]


#: ``records[method][size][seed]``
Records = dict[str, dict[int, dict[int, FitRecord]]]


def fit_once(data: Dataset, weights: SobolevWeights, settings: Settings, seed: int, validation: Dataset) -> FitRecord:
    """Fit a fresh Gauss-residual network (init seeded by ``seed``) to ``data`` and measure it on ``validation``."""
    net = make_network(ENV_ID, "gauss_residual", settings.net_arch, settings.residual_dim, seed)
    scale = target_scale(data)
    config = FitConfig(weights=weights, learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                       max_epochs=settings.max_epochs, patience=settings.patience, polish_steps=settings.polish_steps)  # fmt: skip
    result: FitResult = fit_value_network(net, *data.scaled(scale), config=config, seed=seed)
    errors = network_errors(net, scale, validation, settings.horizon)
    return FitRecord(errors.value_rel_mse, errors.gradient_rel_error, result.best_epoch, result.epochs, list(result.history))


@common.experiment(NAME, QUICK, FULL)
def run(settings: Settings, seeds: tuple[int, ...], out: Path) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table."""
    with torch_threads(1):
        records = _run_fits(settings, seeds, out)
    _plot_sizes(records, settings, out / "sobolev_vs_plain.png")
    _plot_history(records, settings, seeds[0], out / "sobolev_history.png")
    return _write_table(records, settings, seeds, out)


def _run_fits(settings: Settings, seeds: Sequence[int], out: Path) -> Records:
    """``records[method][size][seed]``."""
    env = envs.make(ENV_ID).unwrapped
    validation = validation_set(ENV_ID, settings.n_validation, settings.horizon)
    records: Records = {m: {n: {} for n in settings.sizes} for m in METHODS}
    for seed in seeds:
        pool = solved_dataset(ENV_ID, env.sample_states(max(settings.sizes), np.random.default_rng(seed)), settings.horizon)
        for method, weights in METHODS.items():
            tb = common.writer(out, f"{method}__{seed}")
            tb.add_text("settings", json.dumps(asdict(settings) | {"method": method, "weights": asdict(weights), "seed": seed}))
            for n in settings.sizes:
                record = fit_once(pool.head(n), weights, settings, seed, validation)
                records[method][n][seed] = record
                for epoch, value in enumerate(record.history, start=1):
                    tb.add_scalar(f"history/validation_objective_n{n}", value, epoch)
                tb.add_scalar("final/value_rel_mse", record.value_rel_mse, n)
                tb.add_scalar("final/gradient_rel_error", record.gradient_rel_error, n)
                tb.add_scalar("final/best_epoch", record.best_epoch, n)
            tb.close()
    return records


def _per_seed(records: dict[int, FitRecord], field: str) -> list[float]:
    return [float(getattr(r, field)) for r in records.values()]


def _smallest_size(records: Records, method: str, threshold: float) -> int | None:
    for n, by_seed in records[method].items():
        if common.mean_std(_per_seed(by_seed, "value_rel_mse"))[0] <= threshold:
            return int(n)
    return None


def _write_table(records: Records, settings: Settings, seeds: Sequence[int], out: Path) -> dict[str, Any]:
    fields = ("value_rel_mse", "gradient_rel_error", "best_epoch", "epochs")
    results = {
        m: {str(n): {f: common.stats(_per_seed(by_seed, f), per_seed=True) for f in fields} for n, by_seed in by_size.items()} for m, by_size in records.items()
    }
    reached = {m: _smallest_size(records, m, settings.threshold) for m in METHODS}
    columns = ["n", "V rel. MSE plain", "V rel. MSE Sobolev", "Vx rel. error plain", "Vx rel. error Sobolev", "epochs plain",
               "epochs Sobolev"]  # fmt: skip
    rows = []
    for n in settings.sizes:
        p, s = records["plain"][n], records["sobolev"][n]
        rows.append([
            n, common.cell(_per_seed(p, "value_rel_mse")), common.cell(_per_seed(s, "value_rel_mse")),
            common.cell(_per_seed(p, "gradient_rel_error")), common.cell(_per_seed(s, "gradient_rel_error")),
            common.plain_cell(_per_seed(p, "best_epoch"), 0), common.plain_cell(_per_seed(s, "best_epoch"), 0),
        ])  # fmt: skip

    def reach(m: str) -> str:
        return f"n = {reached[m]}" if reached[m] is not None else f"not reached up to n = {max(settings.sizes)}"

    notes = (
        f"Unicycle, targets from T={settings.horizon} DDP solves; {len(seeds)} seed(s); validation on a fixed set of "
        f"{settings.n_validation} solved states. Gauss-residual {list(settings.net_arch)} (residual "
        f"{settings.residual_dim}), Adam lr {settings.learning_rate}, batch {settings.batch_size}, at most {settings.max_epochs} "
        f"epochs, early stopping (patience {settings.patience}) on the fit's 20% split, then {settings.polish_steps} L-BFGS steps. "
        "V rel. MSE = mean (V - V*)^2 / mean V*^2; Vx rel. error = sqrt(mean ||Vx - Vx*||^2 / mean ||Vx*||^2); epochs = best "
        "epoch (mean ± std over seeds). Targets divided by their mean before fitting.\n\n"
        f"Smallest n whose mean V rel. MSE <= {settings.threshold:g}: plain {reach('plain')}, Sobolev {reach('sobolev')} "
        "(paper: Sobolev about 50)."
    )
    table = {
        "experiment": NAME, "env_id": ENV_ID, "seeds": list(seeds), "settings": asdict(settings), "sizes": list(settings.sizes),
        "results": results, "smallest_size_reaching_threshold": reached,
    }  # fmt: skip
    return common.publish_table(out, "Sobolev against plain regression (paper Fig. 7)", columns, rows, table, notes)


def _plot_sizes(records: Records, settings: Settings, path: Path) -> None:
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    sizes = np.array(settings.sizes)
    panels = (
        ("value_rel_mse", "validation V rel. MSE", True), ("gradient_rel_error", "validation Vx rel. error", True),
        ("best_epoch", "epochs (best)", False),
    )  # fmt: skip
    for ax, (field, label, log) in zip(axes, panels):
        for method, color in (("plain", "tab:red"), ("sobolev", "tab:blue")):
            stats_ = np.array([common.mean_std(_per_seed(records[method][n], field)) for n in settings.sizes])
            ax.errorbar(sizes, stats_[:, 0], yerr=stats_[:, 1], marker="o", capsize=3, color=color, label=method)
        if field == "value_rel_mse":
            ax.axhline(settings.threshold, color="gray", linestyle=":", label=f"{settings.threshold:g}")
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("training samples")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"Unicycle V_T (T={settings.horizon}): plain vs Sobolev regression, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _plot_history(records: Records, settings: Settings, seed: int, path: Path) -> None:
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2, sharey=True)
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(settings.sizes)))
    for ax, method in zip(axes, METHODS):
        for n, color in zip(settings.sizes, colors):
            history = records[method][n][seed].history
            ax.plot(np.arange(1, len(history) + 1), history, color=color, label=f"n={n}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(f"{method}: " + ("value term" if METHODS[method].gradient == 0 else "value + gradient terms"))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("fit's validation objective (relative MSE)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Validation objective of the fit's held-out split per epoch (seed {seed})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
