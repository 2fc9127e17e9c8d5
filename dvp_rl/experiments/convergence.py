"""Convergence of DVP to the optimal value (the paper's Fig. 1-3).

For the pendulum (``max_torque=6``: at Gymnasium's bound of 2 its value function is
discontinuous, see :class:`envs.PendulumEnv`), the cart-pole and the unicycle (``gamma = 1``), DVP runs a fixed number
of iterations per seed and, after each one, is compared with the ground truth
(:func:`dvp_rl.ground_truth.ground_truth`: long-horizon multi-start DDP) on fixed random
states: value MSE, value MSE relative to the mean squared value, gradient relative error
and the Bellman residual ``mean (V_i - V_{i-1})^2`` on the same states (``V_0 = 0``, the
zero terminal of the first iteration). Value maps over a 2-D slice of the state space
after chosen iterations are drawn next to the ground truth of the slice.

Outputs under ``runs/reproduce/convergence/``: ``value_maps.png``, ``convergence.png``,
``value_maps.npz`` (the maps' arrays), ``table.md``/``table.json`` and tensorboard runs
``tb/<env>__DVP__<seed>`` (every number the agent logs, plus ``eval/*``).

The helpers here (:class:`IterationRecorder`, :func:`train_and_record`, :func:`curves`,
:func:`plot_curves`, :class:`Budget`) are shared with the ``horizon`` and ``noise`` experiments.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from dvp_rl.agent import DVP  # noqa: E402
from dvp_rl.callbacks import GroundTruthEvalCallback  # noqa: E402
from dvp_rl.experiments import common  # noqa: E402
from dvp_rl.ground_truth import GroundTruth, ground_truth  # noqa: E402
from dvp_rl.sampling import make_env  # noqa: E402
from dvp_rl.sobolev import torch_threads  # noqa: E402

NAME = "convergence"

#: seed of the evaluation states (the same for every seed, so the ground truth is computed once
#: and shared with ``benchmarks/dvp_convergence.py``'s cache)
EVAL_SEED = 10_000


# --------------------------------------------------------------------------- shared helpers
class IterationRecord(NamedTuple):
    """Errors after one DVP iteration, on the ground-truth states.

    ``value_mse``, ``value_rel_mse``, ``gradient_rel_error``: see
    :class:`dvp_rl.ground_truth.ValueErrors`; ``bellman_residual``: ``mean (V_i - V_{i-1})^2``
    with ``V_0 = 0``; ``bellman_rel_residual``: that over ``mean V_i^2``.
    """

    iteration: int
    transitions: int
    value_mse: float
    value_rel_mse: float
    gradient_rel_error: float
    bellman_residual: float
    bellman_rel_residual: float


class IterationRecorder(GroundTruthEvalCallback):
    """Evaluate after every iteration, keep :class:`IterationRecord` rows and value snapshots,
    and mirror every number the agent logged in that iteration to a tensorboard writer.

    :param truth: the reference on fixed states
    :param writer: tensorboard writer (``None``: no mirror); scalars are indexed by iteration
    :param map_states: states (M, nx) whose learned value is kept at ``snapshot_iterations``
    :param snapshot_iterations: iterations after which ``snapshots[iteration]`` is stored
    """

    def __init__(
        self,
        truth: GroundTruth,
        writer: SummaryWriter | None = None,
        map_states: np.ndarray | None = None,
        snapshot_iterations: Sequence[int] = (),
    ) -> None:
        super().__init__(truth, eval_freq=1)
        self.writer = writer
        self.map_states = map_states
        self.snapshot_iterations = tuple(int(i) for i in snapshot_iterations)
        self.records: list[IterationRecord] = []
        self.snapshots: dict[int, np.ndarray] = {}
        self._previous = np.zeros(len(truth.states))

    def _on_step(self) -> bool:
        errors = self.evaluate()
        iteration = int(self.model.iteration)
        V = np.asarray(self.model.value(self.truth.states))
        residual = float(np.mean((V - self._previous) ** 2))
        relative = residual / max(float(np.mean(V**2)), 1e-300)
        self._previous = V
        self.logger.record("eval/bellman_residual", residual)
        self.logger.record("eval/bellman_rel_residual", relative)
        self.records.append(
            IterationRecord(iteration, int(self.num_timesteps), errors.value_mse, errors.value_rel_mse, errors.gradient_rel_error, residual, relative)
        )
        if self.map_states is not None and iteration in self.snapshot_iterations:
            self.snapshots[iteration] = np.asarray(self.model.value(self.map_states))
        if self.writer is not None:
            for key, value in self.logger.name_to_value.items():
                if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, float(value), iteration)
        return True


def train_and_record(
    env_id: str,
    seed: int,
    iterations: int,
    truth: GroundTruth,
    writer: SummaryWriter | None,
    dvp_kwargs: dict[str, Any],
    map_states: np.ndarray | None = None,
    snapshot_iterations: Sequence[int] = (),
    agent_class: type[DVP] = DVP,
) -> tuple[DVP, IterationRecorder]:
    """Train ``agent_class(env_id, seed=seed, **dvp_kwargs)`` for ``iterations`` iterations,
    recording every iteration (no checkpoints); the hyper-parameters go to ``writer`` as text."""
    agent = agent_class(env_id, seed=seed, checkpoint_dir=None, **dvp_kwargs)
    recorder = IterationRecorder(truth, writer, map_states, snapshot_iterations)
    if writer is not None:
        hparams = {"env_id": env_id, "agent": type(agent).__name__, **agent.hyperparameters()}
        writer.add_text("hparams", "```\n" + json.dumps(hparams, indent=1) + "\n```")
    agent.learn(iterations, callback=recorder)
    if writer is not None:
        writer.flush()
    return agent, recorder


def curves(recorders: Sequence[IterationRecorder], field: str) -> np.ndarray:
    """``field`` of every recorder's records, (n_seeds, n_iterations) (runs cut to the shortest)."""
    length = min(len(r.records) for r in recorders)
    return np.array([[getattr(rec, field) for rec in r.records[:length]] for r in recorders], dtype=np.float64)


def plot_curves(ax: Any, x: np.ndarray, values: np.ndarray, label: str, color: Any = None) -> None:
    """Mean over seeds (rows of ``values``) on a log axis, with the min-max band across seeds."""
    mean = values.mean(axis=0)
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label, color=color)
    if len(values) > 1:
        ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


# --------------------------------------------------------------------------- this experiment
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
class Budget:
    """What a DVP run and its ground truth cost; the experiments' settings extend it.

    ``iterations``: DVP iterations; ``horizon``, ``n_samples``, ``net_arch``, ``max_epochs``,
    ``patience``, ``polish_steps``, ``n_validation``: :class:`dvp_rl.DVP`'s arguments (gamma is 1);
    ``n_eval``: random states of the error measurements; ``truth_horizon``/``truth_guesses``:
    ``None`` is :func:`ground_truth`'s default (the env's ``value_horizon`` and :func:`dvp_rl.ocp.reference_guesses`).
    """

    iterations: int = 10
    horizon: int = 50
    n_samples: int = 300
    net_arch: tuple[int, ...] = (64, 64, 64)
    max_epochs: int = 300
    patience: int = 30
    polish_steps: int = 200
    n_validation: int = 200
    n_eval: int = 200
    truth_horizon: int | None = None
    truth_guesses: tuple[str, ...] | None = None

    def dvp_kwargs(self, n_workers: int, **overrides: Any) -> dict[str, Any]:
        """:class:`dvp_rl.DVP` keyword arguments (``overrides`` win, e.g. ``horizon``)."""
        kwargs = {
            "horizon": self.horizon, "n_samples": self.n_samples, "gamma": 1.0, "net_arch": self.net_arch,
            "max_epochs": self.max_epochs, "patience": self.patience, "polish_steps": self.polish_steps,
            "n_validation": self.n_validation, "n_workers": n_workers,
        }  # fmt: skip
        return kwargs | overrides

    def reference(self, env_id: str, states: np.ndarray, n_workers: int = 1, env_kwargs: dict[str, Any] | None = None) -> GroundTruth:
        """Ground truth at ``states`` (cached on disk under ``runs/ground_truth``)."""
        return ground_truth(env_id, states, gamma=1.0, horizon=self.truth_horizon, env_kwargs=env_kwargs, guesses=self.truth_guesses,
                            n_workers=n_workers)

    def eval_truth(self, env_id: str, n_workers: int = 1, env_kwargs: dict[str, Any] | None = None) -> GroundTruth:
        """Ground truth on ``n_eval`` states of the env's start box, the same for every seed."""
        states = make_env(env_id, env_kwargs).unwrapped.sample_states(self.n_eval, np.random.default_rng(EVAL_SEED))
        return self.reference(env_id, states, n_workers, env_kwargs)

    def truth_note(self) -> str:
        """How the ground truth was computed, for tables."""
        horizon = self.truth_horizon or "the env's value_horizon"
        guesses = "the env's initial guesses and two continuations" if self.truth_guesses is None else f"guesses {list(self.truth_guesses)}"
        return f"DDP with horizon {horizon}, best of {guesses}, on {self.n_eval} fixed random states of the start box"


#: a quick budget (smoke tests): tiny nets, few samples, short ground-truth horizons
QUICK_BUDGET = Budget(
    iterations=3, horizon=10, n_samples=30, net_arch=(16, 16), max_epochs=10, patience=5, polish_steps=5,
    n_validation=20, n_eval=16, truth_horizon=40, truth_guesses=("hold",),
)  # fmt: skip


@dataclass(frozen=True)
class Settings(Budget):
    """Budget of this experiment: value maps after ``snapshots`` on a ``grid x grid`` slice."""

    snapshots: tuple[int, ...] = (1, 5, 10)
    grid: int = 15


FULL = Settings()
QUICK = Settings(**asdict(QUICK_BUDGET), snapshots=(1, 2, 3), grid=5)


def run(
    out_dir: Path | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    settings: Settings | None = None,
    envs: Sequence[str] | None = None,
    n_workers: int = 1,
) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table.

    :param settings: the budget (default ``QUICK`` or ``FULL`` after ``quick``)
    :param envs: labels of :data:`ENVS` to run (default all)
    :param n_workers: processes solving DDP problems (DVP's and the ground truth's)
    """
    setups = [s for s in ENVS if envs is None or s.label in envs]

    def validate(_: Settings) -> None:
        if not setups:
            raise ValueError(f"no env among {envs}; expected labels from {[s.label for s in ENVS]}")

    settings, out = common.prepare(NAME, out_dir, seeds, quick, settings, QUICK, FULL, validate)
    snapshots = tuple(i for i in settings.snapshots if i <= settings.iterations)
    with torch_threads(1):
        results = {setup.label: _run_env(setup, seeds, settings, snapshots, out, n_workers) for setup in setups}
    _plot_maps(results, snapshots, out / "value_maps.png")
    np.savez(out / "value_maps.npz", **{f"{label}__{key}": value for label, r in results.items() for key, value in r["maps"].items()})
    _plot_convergence(results, out / "convergence.png")
    return _write_table(results, seeds, settings, snapshots, out)


def _run_env(setup: EnvSetup, seeds: Sequence[int], settings: Settings, snapshots: tuple[int, ...], out: Path, n_workers: int) -> dict[str, Any]:
    truth = settings.eval_truth(setup.env_id, n_workers, setup.env_kwargs)
    grid_states, axis_a, axis_b = setup.grid(settings.grid)
    map_truth = settings.reference(setup.env_id, grid_states, n_workers, setup.env_kwargs)
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
    return {"setup": setup, "recorders": recorders, "truth": truth, "map_truth": map_truth, "maps": maps, "seed": seeds[0]}


def _plot_maps(results: dict[str, Any], snapshots: tuple[int, ...], path: Path) -> None:
    columns = [f"iteration_{i}" for i in snapshots] + ["truth"]
    fig, axes = plt.subplots(len(results), len(columns), figsize=(3.2 * len(columns), 2.9 * len(results)), squeeze=False, constrained_layout=True)
    for row, (label, r) in enumerate(results.items()):
        setup, maps = r["setup"], r["maps"]
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
    fig.suptitle(f"Value maps (seed {next(iter(results.values()))['seed']}) against long-horizon DDP")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_convergence(results: dict[str, Any], path: Path) -> None:
    panels = (("value_mse", "value MSE"), ("value_rel_mse", "relative value MSE"), ("gradient_rel_error", "gradient relative error"),
              ("bellman_residual", "Bellman residual  mean (V_i - V_{i-1})^2"))  # fmt: skip
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (field, title) in zip(axes, panels):
        for label, r in results.items():
            values = curves(r["recorders"], field)
            plot_curves(ax, np.arange(1, values.shape[1] + 1), values, label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("DVP iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend()
    fig.suptitle(f"DVP against ground truth (mean and min-max over {len(next(iter(results.values()))['recorders'])} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_table(results: dict[str, Any], seeds: Sequence[int], settings: Settings, snapshots: tuple[int, ...], out: Path) -> dict[str, Any]:
    fields = ("value_mse", "value_rel_mse", "gradient_rel_error", "bellman_residual")
    columns = ["system", "iteration", "value MSE", "relative value MSE", "gradient rel. error", "Bellman residual"]
    rows: list[list[str]] = []
    data: dict[str, Any] = {"experiment": NAME, "seeds": list(seeds), "settings": asdict(settings), "systems": {}}
    for label, r in results.items():
        recorders = r["recorders"]
        table_iterations = sorted(set(snapshots) | {len(recorders[0].records)})
        per_field = {field: curves(recorders, field) for field in fields}
        for iteration in table_iterations:
            if iteration > per_field["value_mse"].shape[1]:
                continue
            rows.append([label, iteration] + [common.cell(per_field[f][:, iteration - 1]) for f in fields])
        best = per_field["value_rel_mse"].min(axis=1)
        data["systems"][label] = {
            "env_id": r["setup"].env_id,
            "truth": {"n_states": int(r["truth"].converged.sum()), "horizon": r["truth"].horizon,
                      "map_states_converged": int(r["map_truth"].converged.sum())},
            "per_iteration": {f: common.curve_stats(v) for f, v in per_field.items()},
            "per_seed": {str(seed): [record._asdict() for record in recorder.records] for seed, recorder in zip(seeds, recorders)},
            "final": {f: common.stats(v[:, -1]) for f, v in per_field.items()},
            "best_value_rel_mse": common.stats(best),
        }  # fmt: skip
    notes = (
        f"DVP with T={settings.horizon}, {settings.n_samples} samples per iteration, gamma=1, net {list(settings.net_arch)}; "
        f"errors against {settings.truth_note()}; Bellman residual = mean (V_i - V_(i-1))^2 on "
        f"the same states, V_0 = 0. Mean ± std over seeds {list(seeds)}. Paper: value MSE ~1e-5 for pendulum and "
        "cart-pole, ~1e-3 for the unicycle (its cost scale, not necessarily ours: compare the relative MSE)."
    )
    return common.publish_table(out, "DVP convergence to the optimal value (paper Fig. 1-3)", columns, rows, data, notes)


__all__ = [
    "ENVS", "FULL", "QUICK", "QUICK_BUDGET", "Budget", "EnvSetup", "IterationRecord", "IterationRecorder", "Settings",
    "curves", "plot_curves", "run", "train_and_record",
]  # fmt: skip
