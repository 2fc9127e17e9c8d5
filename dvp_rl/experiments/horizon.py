"""Effect of the DDP horizon ``T`` on DVP (the paper's Fig. 4-5), on the unicycle.

DVP runs with each horizon ``T`` in :data:`HORIZONS` and is compared with the ground truth
after every iteration (:mod:`dvp_rl.experiments.dvp_runs`, as in the ``convergence``
experiment). Iteration ``i`` sees an effective horizon ``i T``, so short horizons need more
iterations; the paper finds proper convergence for ``T >= 40``. Then, for ``T`` in
:data:`MPC_HORIZONS`, closed-loop model-predictive control from fixed start states with the
learned value as terminal cost (``agent.controller(horizon=T)``) is compared with the same MPC
without it (``MPCController(env, T)``, zero terminal cost), next to one long (``T = 1000``)
open-loop solve from each start as reference. Both arms run :class:`dvp_rl.control.mpc.MPCController`,
the controller of :meth:`dvp_rl.DVP.predict`, through :func:`dvp_rl.control.mpc.closed_loop`.

Outputs under ``runs/reproduce/horizon/``: ``horizon_errors.png`` (error against iteration
and against the effective horizon), ``horizon_mpc.png`` (x-y paths of the first seed's MPC),
``table.md``/``table.json`` and tensorboard runs ``tb/Unicycle-v0__DVP_T<T>__<seed>``
(training curves) and ``tb/mpc`` (closed-loop costs against ``T``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

import envs
from dvp_rl.experiments import common
from dvp_rl.experiments.dvp_runs import QUICK_BUDGET, Budget, IterationRecorder, curves, plot_curves, train_and_record
from dvp_rl.control.mpc import ClosedLoop, MPCController, closed_loop
from dvp_rl.control.ocp import OptimalControlProblem, SolveResult, reference_guesses
from dvp_rl.value.sobolev import torch_threads

NAME = "horizon"
ENV_ID = "dvp_rl/Unicycle-v0"
#: the paper's DDP horizons
HORIZONS: tuple[int, ...] = (5, 10, 15, 20, 40, 50, 60, 80, 100)
#: the horizons of the closed-loop comparison
MPC_HORIZONS: tuple[int, ...] = (20, 40, 50, 60, 80, 100)


@dataclass(frozen=True)
class Settings(Budget):
    """Budget of this experiment.

    ``horizons``: DVP horizons; ``mpc_horizons``: those whose MPC is run (a subset);
    ``starts``: closed-loop start states; ``mpc_steps``: closed-loop steps;
    ``reference_horizon``: horizon of the open-loop reference solve.
    """

    iterations: int = 8
    n_samples: int = 200
    horizons: tuple[int, ...] = HORIZONS
    mpc_horizons: tuple[int, ...] = MPC_HORIZONS
    starts: tuple[tuple[float, float, float], ...] = ((-0.4, 0.9, 0.0), (0.9, -0.6, 1.2))
    mpc_steps: int = 300
    reference_horizon: int = 1000


FULL = Settings()
QUICK = Settings(
    **(asdict(QUICK_BUDGET) | {"iterations": 2}), horizons=(5, 20), mpc_horizons=(20,), starts=((-0.4, 0.9, 0.0),), mpc_steps=15,
    reference_horizon=60,
)  # fmt: skip


class MPCArms(NamedTuple):
    """The closed loops of one MPC horizon, ``[seed][start]``: with the learned value as terminal
    cost (one agent per seed) and with a zero terminal cost (the same for every seed: one entry)."""

    learned: list[list[ClosedLoop]]
    zero: list[list[ClosedLoop]]


def loop_cost(loop: ClosedLoop) -> float:
    """The sum of a closed loop's running costs."""
    return float(loop.costs.sum())


def unconverged_steps(loop: ClosedLoop) -> int:
    """Steps whose applied plan missed the stopping criterion."""
    return int((~loop.converged).sum())


def window_cost(env: Any, xs: np.ndarray, us: np.ndarray, n_steps: int) -> float:
    """Sum of the running costs of the first ``n_steps`` steps of a trajectory."""
    return float(sum(env.cost(x, u) for x, u in zip(xs[:n_steps], us[:n_steps])))


def _validate(settings: Settings) -> None:
    """Reject settings whose MPC horizons are not among the DVP horizons (their agents are the MPC's terminals)."""
    if not set(settings.mpc_horizons) <= set(settings.horizons):
        raise ValueError(f"mpc_horizons {settings.mpc_horizons} must be among horizons {settings.horizons}")


@common.experiment(NAME, QUICK, FULL, _validate)
def run(settings: Settings, seeds: tuple[int, ...], out: Path, n_workers: int = 1, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table.

    :param n_workers: processes solving DDP problems (DVP's and the ground truth's)
    :param cache_dir: folder of the ground-truth cache (default :func:`common.ground_truth_cache`
        of the output folder)
    """
    env = envs.make(ENV_ID).unwrapped
    starts = np.array(settings.starts, dtype=np.float64).reshape(-1, env.nx)
    with torch_threads(1):
        truth = settings.eval_truth(ENV_ID, n_workers, cache_dir=common.ground_truth_cache(out, cache_dir))
        references = [OptimalControlProblem(env, settings.reference_horizon).solve_best(x0, reference_guesses(env)) for x0 in starts]
        recorders: dict[int, list[IterationRecorder]] = {T: [] for T in settings.horizons}
        loops = {T: MPCArms([], []) for T in settings.mpc_horizons}
        for T in settings.horizons:
            for seed in seeds:
                writer = common.writer(out, f"{ENV_ID.split('/')[-1]}__DVP_T{T}__{seed}")
                try:
                    agent, recorder = train_and_record(ENV_ID, seed, settings.iterations, truth, writer, settings.dvp_kwargs(n_workers, horizon=T))
                finally:
                    writer.close()
                recorders[T].append(recorder)
                if T in settings.mpc_horizons:
                    learned = agent.controller(horizon=T)
                    loops[T].learned.append([closed_loop(learned, x0, settings.mpc_steps) for x0 in starts])
            if T in settings.mpc_horizons:  # without terminal cost: the same for every seed
                zero = MPCController(env, T)
                loops[T].zero.append([closed_loop(zero, x0, settings.mpc_steps) for x0 in starts])
    ref_costs = np.array([window_cost(env, r.xs, r.us, settings.mpc_steps) for r in references])
    _plot_errors(recorders, settings, out / "horizon_errors.png")
    _plot_paths(loops, references, starts, settings, seeds[0], out / "horizon_mpc.png")
    _log_mpc(loops, ref_costs, out)
    return _write_table(recorders, loops, references, ref_costs, seeds, settings, truth.converged.sum(), out)


def _cost_ratio(runs: list[list[ClosedLoop]], ref_costs: np.ndarray) -> np.ndarray:
    """Per seed: mean over starts of closed-loop cost / reference cost over the same window."""
    return np.array([np.mean([loop_cost(loop) / ref for loop, ref in zip(per_start, ref_costs)]) for per_start in runs])


def _final_distance(runs: list[list[ClosedLoop]]) -> np.ndarray:
    """Per seed: mean over starts of the final distance ``||x_N||`` to the goal pose."""
    return np.array([np.mean([np.linalg.norm(loop.xs[-1]) for loop in per_start]) for per_start in runs])


def _plot_errors(recorders: dict[int, list[IterationRecorder]], settings: Settings, path: Path) -> None:
    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    colors = colormaps["viridis"](np.linspace(0, 0.95, len(recorders)))
    for color, (T, recs) in zip(colors, recorders.items()):
        rel = curves(recs, "value_rel_mse")
        iterations = np.arange(1, rel.shape[1] + 1)
        plot_curves(axes[0], iterations, rel, f"T={T}", color)
        plot_curves(axes[1], iterations * T, rel, f"T={T}", color)
        plot_curves(axes[2], iterations, curves(recs, "gradient_rel_error"), f"T={T}", color)
    axes[0].set(title="relative value MSE", xlabel="DVP iteration")
    axes[1].set(title="relative value MSE against effective horizon", xlabel="iteration x T (steps)")
    axes[2].set(title="gradient relative error", xlabel="DVP iteration")
    axes[1].set_xscale("log")
    for ax in (axes[0], axes[2]):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Unicycle: DVP with DDP horizon T (mean and min-max over seeds; {settings.n_samples} samples per iteration)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_paths(
    loops: dict[int, MPCArms], references: list[SolveResult], starts: np.ndarray, settings: Settings, seed: int, path: Path
) -> None:
    n = len(loops)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4.2 * cols, 4.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (T, arms) in zip(axes.ravel(), loops.items()):
        for i, ref in enumerate(references):
            ax.plot(ref.xs[:, 0], ref.xs[:, 1], "k--", linewidth=1.2, label=f"T={settings.reference_horizon} (open loop)" if i == 0 else None)
        for i, loop in enumerate(arms.zero[0]):
            ax.plot(loop.xs[:, 0], loop.xs[:, 1], color="tab:red", alpha=0.8, label="MPC, zero terminal" if i == 0 else None)
        for i, loop in enumerate(arms.learned[0]):
            ax.plot(loop.xs[:, 0], loop.xs[:, 1], color="tab:blue", alpha=0.8, label="MPC, learned terminal V" if i == 0 else None)
        ax.plot(starts[:, 0], starts[:, 1], "ko", markersize=4)
        ax.plot([0], [0], "k*", markersize=10)
        ax.set(title=f"T = {T}", xlabel="x (m)", ylabel="y (m)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Unicycle closed loop, {settings.mpc_steps} steps (DVP seed {seed}, {settings.iterations} iterations)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _log_mpc(loops: dict[int, MPCArms], ref_costs: np.ndarray, out: Path) -> None:
    writer = common.writer(out, "mpc")
    try:
        for T, arms in loops.items():
            writer.add_scalar("mpc/cost_ratio_learned_terminal", float(_cost_ratio(arms.learned, ref_costs).mean()), T)
            writer.add_scalar("mpc/cost_ratio_zero_terminal", float(_cost_ratio(arms.zero, ref_costs).mean()), T)
            writer.add_scalar("mpc/final_distance_learned_terminal", float(_final_distance(arms.learned).mean()), T)
            writer.add_scalar("mpc/final_distance_zero_terminal", float(_final_distance(arms.zero).mean()), T)
    finally:
        writer.close()


def _write_table(
    recorders: dict[int, list[IterationRecorder]], loops: dict[int, MPCArms], references: list[SolveResult], ref_costs: np.ndarray,
    seeds: Sequence[int], settings: Settings, n_truth: int, out: Path,
) -> dict[str, Any]:  # fmt: skip
    columns = [
        "T", "rel. value MSE (last iter.)", "best rel. value MSE", "gradient rel. error (last)", "MPC cost / ref., learned V",
        "MPC cost / ref., zero terminal", "final distance to goal, learned V", "final distance to goal, zero terminal",
    ]  # fmt: skip
    rows, per_T = [], {}
    for T, recs in recorders.items():
        rel, grad = curves(recs, "value_rel_mse"), curves(recs, "gradient_rel_error")
        entry: dict[str, Any] = {
            "value_rel_mse": common.curve_stats(rel),
            "value_mse": {"mean": curves(recs, "value_mse").mean(axis=0).tolist()},
            "gradient_rel_error": common.curve_stats(grad),
            "final_value_rel_mse": common.stats(rel[:, -1]),
            "best_value_rel_mse": common.stats(rel.min(axis=1)),
            "final_gradient_rel_error": common.stats(grad[:, -1]),
        }
        row = [T, common.cell(rel[:, -1]), common.cell(rel.min(axis=1)), common.cell(grad[:, -1])]
        if T in loops:
            arms = loops[T]._asdict()  # {"learned": ..., "zero": ...}
            ratios = {arm: _cost_ratio(runs, ref_costs) for arm, runs in arms.items()}
            dists = {arm: _final_distance(runs) for arm, runs in arms.items()}
            entry["mpc"] = {
                "cost_ratio": {arm: common.stats(v) for arm, v in ratios.items()},
                "final_distance": {arm: common.stats(v) for arm, v in dists.items()},
                "cost": {arm: [[loop_cost(loop) for loop in per_start] for per_start in runs] for arm, runs in arms.items()},
                "unconverged_solves": {arm: sum(unconverged_steps(loop) for per_start in runs for loop in per_start)
                                       for arm, runs in arms.items()},
            }
            row += [f"{ratios['learned'].mean():.3f} ± {ratios['learned'].std():.3f}", f"{ratios['zero'][0]:.3f}",
                    f"{dists['learned'].mean():.2e} ± {dists['learned'].std():.1e}", f"{dists['zero'][0]:.2e}"]  # fmt: skip
        else:
            row += ["-"] * 4
        rows.append(row)
        per_T[str(T)] = entry
    data = {
        "experiment": NAME, "env_id": ENV_ID, "seeds": list(seeds), "settings": asdict(settings), "horizons": per_T,
        "reference": {"horizon": settings.reference_horizon, "starts": [list(map(float, r.xs[0])) for r in references],
                      "cost": [float(r.cost) for r in references], "window_cost": ref_costs.tolist(),
                      "converged": [bool(r.converged) for r in references]},
    }  # fmt: skip
    notes = (
        f"Unicycle, DVP {settings.iterations} iterations of {settings.n_samples} samples, gamma=1, net {list(settings.net_arch)}; "
        f"errors against {settings.truth_note()} ({n_truth} converged); mean ± std over seeds {list(seeds)}. "
        f"MPC: {settings.mpc_steps} closed-loop steps from {len(references)} start states; cost / ref. = closed-loop cost over "
        f"the reference's cost in the same steps (T={settings.reference_horizon} open-loop multi-start solve), mean over starts; "
        "final distance to goal: norm of the last state (the goal pose is (0, 0, 0)). The zero-terminal MPC does not depend on the seed. "
        "Paper: proper convergence for T >= 40, slower or failing below; MPC with the learned value stays near the long-horizon "
        "trajectory where MPC without it does not."
    )
    return common.publish_table(out, "DVP against the DDP horizon T, unicycle (paper Fig. 4-5)", columns, rows, data, notes)


__all__ = ["FULL", "HORIZONS", "MPC_HORIZONS", "QUICK", "MPCArms", "Settings", "loop_cost", "run", "unconverged_steps", "window_cost"]
