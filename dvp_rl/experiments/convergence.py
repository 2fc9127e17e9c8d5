"""Convergence of DVP to the optimal value (the paper's Fig. 1-3).

For the pendulum (``max_torque=6``: at Gymnasium's bound of 2 its value function is
discontinuous, see :class:`envs.PendulumEnv`), the cart-pole and the unicycle (``gamma = 1``), DVP runs a fixed number
of iterations per seed and, after each one, is compared with the ground truth
(:func:`dvp_rl.references.ground_truth.ground_truth`: long-horizon multi-start DDP) on fixed random
states: value MSE, value MSE relative to the mean squared value, gradient relative error
and the Bellman residual ``mean (V_i - V_{i-1})^2`` on the same states (``V_0 = 0``, the
zero terminal of the first iteration). Value maps over a 2-D slice of the state space
after chosen iterations are drawn next to the ground truth of the slice.

Outputs under ``runs/reproduce/convergence/``: ``value_maps.png``, ``convergence.png``,
``value_maps.npz`` (the maps' arrays), ``table.md``/``table.json`` and tensorboard runs
``tb/<env>__DVP__<seed>`` (every number the agent logs, plus ``eval/*``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dvp_rl.experiments import common
from dvp_rl.experiments.dvp_runs import QUICK_BUDGET, Budget, IterationRecorder, curves, plot_curves, train_and_record
from dvp_rl.references.ground_truth import GroundTruth
from dvp_rl.value.sobolev import torch_threads

NAME = "convergence"


@dataclass(frozen=True)
class EnvSetup:
    """One system of the figure: its id, the 2-D slice of the value map (two state indices,
    their ranges, the other coordinates fixed at ``base``), axis labels and the env's kwargs."""

    env_id: str
    label: str
    dims: tuple[int, int]
    ranges: tuple[tuple[float, float], tuple[float, float]]
    axis_labels: tuple[str, str]
    base: tuple[float, ...]
    env_kwargs: dict[str, Any] = dataclass_field(default_factory=dict)

    def grid(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(states (n*n, nx), axis 0 values, axis 1 values)`` of an ``n x n`` grid on the slice
        (row-major: the first dimension varies along columns)."""
        a = np.linspace(*self.ranges[0], n)
        b = np.linspace(*self.ranges[1], n)
        A, B = np.meshgrid(a, b)  # (n_b, n_a)
        states = np.tile(np.asarray(self.base, dtype=np.float64), (A.size, 1))
        states[:, self.dims[0]] = A.ravel()
        states[:, self.dims[1]] = B.ravel()
        return states, a, b


#: the systems, their slices inside the envs' default start boxes (the training distribution)
ENVS: tuple[EnvSetup, ...] = (
    EnvSetup("dvp_rl/Pendulum-v0", "pendulum", (0, 1), ((-math.pi, math.pi), (-1.0, 1.0)), ("theta (rad)", "theta dot (rad/s)"), (0.0, 0.0),
             dict(common.CONTINUOUS_PENDULUM)),
    EnvSetup("dvp_rl/CartPole-v0", "cart-pole", (0, 1), ((-1.0, 1.0), (-0.3, 0.3)), ("x (m)", "theta (rad)"), (0.0, 0.0, 0.0, 0.0)),
    EnvSetup("dvp_rl/Unicycle-v0", "unicycle", (0, 1), ((-1.0, 1.0), (-1.0, 1.0)), ("x (m)", "y (m)"), (0.0, 0.0, 0.0)),
)


@dataclass(frozen=True)
class Settings(Budget):
    """Budget of this experiment: value maps after ``snapshots`` on a ``grid x grid`` slice."""

    snapshots: tuple[int, ...] = (1, 5, 10)
    grid: int = 15


FULL = Settings()
QUICK = Settings(**asdict(QUICK_BUDGET), snapshots=(1, 2, 3), grid=5)


class EnvRun(NamedTuple):
    """One system's runs: its ``setup``, the recorders of every seed (in seed order), the ground
    truth of the error measurements and of the value map's grid, the ``maps`` (``axis0``,
    ``axis1``, ``truth`` and ``iteration_<i>`` of the first seed) and that first ``seed``."""

    setup: EnvSetup
    recorders: list[IterationRecorder]
    truth: GroundTruth
    map_truth: GroundTruth
    maps: dict[str, np.ndarray]
    seed: int


def run(
    out_dir: Path | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    settings: Settings | None = None,
    envs: Sequence[str] | None = None,
    n_workers: int = 1,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table.

    :param settings: the budget (default ``QUICK`` or ``FULL`` after ``quick``)
    :param envs: labels of :data:`ENVS` to run (default all)
    :param n_workers: processes solving DDP problems (DVP's and the ground truth's)
    :param cache_dir: folder of the ground-truth cache (default :func:`common.ground_truth_cache`
        of the output folder)
    """
    setups = [s for s in ENVS if envs is None or s.label in envs]

    def validate(_: Settings) -> None:
        if not setups:
            raise ValueError(f"no env among {envs}; expected labels from {[s.label for s in ENVS]}")

    settings, out = common.prepare(NAME, out_dir, seeds, quick, settings, QUICK, FULL, validate)
    cache = common.ground_truth_cache(out, cache_dir)
    snapshots = tuple(i for i in settings.snapshots if i <= settings.iterations)
    with torch_threads(1):
        results = {setup.label: _run_env(setup, seeds, settings, snapshots, out, n_workers, cache) for setup in setups}
    _plot_maps(results, snapshots, out / "value_maps.png")
    np.savez(out / "value_maps.npz", **{f"{label}__{key}": value for label, r in results.items() for key, value in r.maps.items()})
    _plot_convergence(results, out / "convergence.png")
    return _write_table(results, seeds, settings, snapshots, out)


def _run_env(
    setup: EnvSetup, seeds: Sequence[int], settings: Settings, snapshots: tuple[int, ...], out: Path, n_workers: int, cache: Path
) -> EnvRun:
    truth = settings.eval_truth(setup.env_id, n_workers, setup.env_kwargs, cache)
    grid_states, axis_a, axis_b = setup.grid(settings.grid)
    map_truth = settings.reference(setup.env_id, grid_states, n_workers, setup.env_kwargs, cache)
    recorders = []
    maps: dict[str, np.ndarray] = {"axis0": axis_a, "axis1": axis_b, "truth": map_truth.V.reshape(len(axis_b), len(axis_a))}
    for seed in seeds:
        writer = common.writer(out, f"{setup.env_id.split('/')[-1]}__DVP__{seed}")
        try:
            _, recorder = train_and_record(setup.env_id, seed, settings.iterations, truth, writer, settings.dvp_kwargs(n_workers, env_kwargs=setup.env_kwargs),
                                          grid_states, snapshots)
        finally:
            writer.close()
        recorders.append(recorder)
        if seed == seeds[0]:
            for iteration, values in recorder.snapshots.items():
                maps[f"iteration_{iteration}"] = values.reshape(len(axis_b), len(axis_a))
    return EnvRun(setup, recorders, truth, map_truth, maps, seeds[0])


def _plot_maps(results: dict[str, EnvRun], snapshots: tuple[int, ...], path: Path) -> None:
    columns = [f"iteration_{i}" for i in snapshots] + ["truth"]
    fig = Figure(figsize=(3.2 * len(columns), 2.9 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), len(columns), squeeze=False)
    for row, (label, r) in enumerate(results.items()):
        setup, maps = r.setup, r.maps
        finite = np.concatenate([maps[c][np.isfinite(maps[c])] for c in columns])
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        extent = (maps["axis0"][0], maps["axis0"][-1], maps["axis1"][0], maps["axis1"][-1])
        for col, key in enumerate(columns):
            ax = axes[row, col]
            image = ax.imshow(np.ma.masked_invalid(maps[key]), origin="lower", extent=extent, aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis")
            title = "ground truth" if key == "truth" else f"DVP iteration {key.split('_')[1]}"
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xlabel(setup.axis_labels[0], fontsize=8)
            if col == 0:
                ax.set_ylabel(setup.axis_labels[1], fontsize=8)
        fig.colorbar(image, ax=axes[row, :].tolist(), shrink=0.9, label="V")
    fig.suptitle(f"Value maps (seed {next(iter(results.values())).seed}) against long-horizon DDP")
    fig.savefig(path, dpi=110)


def _plot_convergence(results: dict[str, EnvRun], path: Path) -> None:
    panels = (("value_mse", "value MSE"), ("value_rel_mse", "relative value MSE"), ("gradient_rel_error", "gradient relative error"),
              ("bellman_residual", "Bellman residual  mean (V_i - V_{i-1})^2"))  # fmt: skip
    fig = Figure(figsize=(4.2 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels))
    for ax, (field, title) in zip(axes, panels):
        for label, r in results.items():
            values = curves(r.recorders, field)
            plot_curves(ax, np.arange(1, values.shape[1] + 1), values, label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("DVP iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend()
    fig.suptitle(f"DVP against ground truth (mean and min-max over {len(next(iter(results.values())).recorders)} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _write_table(results: dict[str, EnvRun], seeds: Sequence[int], settings: Settings, snapshots: tuple[int, ...], out: Path) -> dict[str, Any]:
    fields = ("value_mse", "value_rel_mse", "gradient_rel_error", "bellman_residual")
    columns = ["system", "iteration", "value MSE", "relative value MSE", "gradient rel. error", "Bellman residual"]
    rows: list[list[str]] = []
    data: dict[str, Any] = {"experiment": NAME, "seeds": list(seeds), "settings": asdict(settings), "systems": {}}
    for label, r in results.items():
        recorders = r.recorders
        table_iterations = sorted(set(snapshots) | {len(recorders[0].records)})
        per_field = {field: curves(recorders, field) for field in fields}
        for iteration in table_iterations:
            if iteration > per_field["value_mse"].shape[1]:
                continue
            rows.append([label, iteration] + [common.cell(per_field[f][:, iteration - 1]) for f in fields])
        best = per_field["value_rel_mse"].min(axis=1)
        data["systems"][label] = {
            "env_id": r.setup.env_id,
            "truth": {"n_states": int(r.truth.converged.sum()), "horizon": r.truth.horizon,
                      "map_states_converged": int(r.map_truth.converged.sum())},
            "per_iteration": {f: common.curve_stats(v) for f, v in per_field.items()},
            "per_seed": {str(seed): [record._asdict() for record in recorder.records] for seed, recorder in zip(seeds, recorders)},
            "final": {f: common.stats(v[:, -1]) for f, v in per_field.items()},
            "best_value_rel_mse": common.stats(best),
        }  # fmt: skip
    notes = (
        f"{settings.dvp_note()}; errors against {settings.truth_note()}; Bellman residual = mean (V_i - V_(i-1))^2 on "
        f"the same states, V_0 = 0. Mean ± std over seeds {list(seeds)}. Paper: value MSE ~1e-5 for pendulum and "
        "cart-pole, ~1e-3 for the unicycle (its cost scale, not necessarily ours: compare the relative MSE)."
    )
    return common.publish_table(out, "DVP convergence to the optimal value (paper Fig. 1-3)", columns, rows, data, notes)


__all__ = ["ENVS", "FULL", "QUICK", "EnvRun", "EnvSetup", "Settings", "run"]
