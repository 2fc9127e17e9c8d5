"""Effect of the DDP horizon ``T`` on DVP (the paper's Fig. 4-5), on the unicycle.

DVP runs with each horizon ``T`` in :data:`HORIZONS` and is compared with the ground truth
after every iteration (as in :mod:`dvp_rl.experiments.convergence`). Iteration ``i`` sees an
effective horizon ``i T``, so short horizons need more iterations; the paper finds proper
convergence for ``T >= 40``. Then, for ``T`` in :data:`MPC_HORIZONS`, closed-loop model-predictive
control from fixed start states with the learned value as terminal cost is compared with the
same MPC without it (zero terminal cost), next to one long (``T = 1000``) open-loop solve
from each start as reference. Both MPC arms use the same controller as :meth:`dvp_rl.DVP.predict`
(box-FDDP warm-started from the previous plan shifted by one step, retried cold when a warm
start stalls); the learned terminal is :func:`dvp_rl.terminal.value_terminal` of the final network.

Outputs under ``runs/reproduce/horizon/``: ``horizon_errors.png`` (error against iteration
and against the effective horizon), ``horizon_mpc.png`` (x-y paths of the first seed's MPC),
``table.md``/``table.json`` and tensorboard runs ``tb/Unicycle-v0__DVP_T<T>__<seed>``
(training curves) and ``tb/mpc`` (closed-loop costs against ``T``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dvp_rl.experiments import common  # noqa: E402
from dvp_rl.experiments.convergence import QUICK_BUDGET, Budget, curves, plot_curves, train_and_record  # noqa: E402
from dvp_rl.ocp import OptimalControlProblem, reference_guesses  # noqa: E402
from dvp_rl.sampling import make_env  # noqa: E402
from dvp_rl.sobolev import torch_threads  # noqa: E402
from dvp_rl.terminal import value_terminal  # noqa: E402

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


class ClosedLoop(NamedTuple):
    """A closed-loop run: ``xs`` (n+1, nx), ``us`` (n, nu), ``cost`` (sum of running costs),
    ``unconverged`` (solves that missed the stopping criterion; their plan is still applied)."""

    xs: np.ndarray
    us: np.ndarray
    cost: float
    unconverged: int


def mpc_controller(ocp: OptimalControlProblem) -> Callable[[np.ndarray, bool], tuple[np.ndarray, bool]]:
    """``policy(x, first) -> (u, converged)``: solve ``ocp`` from ``x`` and apply the first control,
    warm-started from the previous plan shifted by one step (dropped when ``first``), retried
    cold when a warm start does not converge (what :meth:`dvp_rl.DVP.predict` does)."""
    env = ocp.env
    warm: list[np.ndarray | None] = [None]

    def policy(x: np.ndarray, first: bool) -> tuple[np.ndarray, bool]:
        start = None if first else warm[0]
        result = ocp.solve(x, us_init=start)
        if start is not None and not result.converged:
            cold = ocp.solve(x)
            if cold.converged or not np.all(np.isfinite(result.us)):
                result = cold
        if not np.all(np.isfinite(result.us)):
            raise RuntimeError(f"MPC solve failed from {x}")
        warm[0] = np.concatenate([result.us[1:], result.us[-1:]])
        return np.clip(result.us[0], env.action_low, env.action_high), result.converged

    return policy


def closed_loop(ocp: OptimalControlProblem, x0: np.ndarray, n_steps: int) -> ClosedLoop:
    """Run :func:`mpc_controller` of ``ocp`` for ``n_steps`` on the env's dynamics from ``x0``."""
    env, policy = ocp.env, mpc_controller(ocp)
    xs, us, cost, unconverged = [np.asarray(x0, dtype=np.float64)], [], 0.0, 0
    for k in range(n_steps):
        u, converged = policy(xs[-1], k == 0)
        unconverged += int(not converged)
        cost += env.cost(xs[-1], u)
        us.append(u)
        xs.append(env.dynamics(xs[-1], u))
    return ClosedLoop(np.array(xs), np.array(us), float(cost), unconverged)


def window_cost(env: Any, xs: np.ndarray, us: np.ndarray, n_steps: int) -> float:
    """Sum of the running costs of the first ``n_steps`` steps of a trajectory."""
    return float(sum(env.cost(x, u) for x, u in zip(xs[:n_steps], us[:n_steps])))


def run(
    out_dir: Path | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    quick: bool = False,
    settings: Settings | None = None,
    n_workers: int = 1,
) -> dict[str, Any]:
    """Run the experiment; write the figures, the table and tensorboard logs; return the table.

    :param settings: the budget (default ``QUICK`` or ``FULL`` after ``quick``)
    :param n_workers: processes solving DDP problems (DVP's and the ground truth's)
    """
    settings, out = common.prepare(NAME, out_dir, seeds, quick, settings, QUICK, FULL, _validate)
    env = make_env(ENV_ID).unwrapped
    starts = np.array(settings.starts, dtype=np.float64).reshape(-1, env.nx)
    with torch_threads(1):
        truth = settings.eval_truth(ENV_ID, n_workers)
        references = [OptimalControlProblem(env, settings.reference_horizon).solve_best(x0, reference_guesses(env)) for x0 in starts]
        recorders: dict[int, list] = {T: [] for T in settings.horizons}
        loops: dict[int, dict[str, list[list[ClosedLoop]]]] = {T: {"learned": [], "zero": []} for T in settings.mpc_horizons}
        for T in settings.horizons:
            for seed in seeds:
                writer = common.writer(out, f"{ENV_ID.split('/')[-1]}__DVP_T{T}__{seed}")
                try:
                    agent, recorder = train_and_record(ENV_ID, seed, settings.iterations, truth, writer, settings.dvp_kwargs(n_workers, horizon=T))
                finally:
                    writer.close()
                recorders[T].append(recorder)
                if T in settings.mpc_horizons:
                    terminal = value_terminal(agent.policy_net.export(), env.nx, env.nu)
                    ocp = OptimalControlProblem(env, T, 1.0, terminal, agent.max_iter, agent.th_stop)
                    loops[T]["learned"].append([closed_loop(ocp, x0, settings.mpc_steps) for x0 in starts])
            if T in settings.mpc_horizons:  # without terminal cost: the same for every seed
                ocp = OptimalControlProblem(env, T, 1.0)
                loops[T]["zero"].append([closed_loop(ocp, x0, settings.mpc_steps) for x0 in starts])
    ref_costs = np.array([window_cost(env, r.xs, r.us, settings.mpc_steps) for r in references])
    _plot_errors(recorders, settings, out / "horizon_errors.png")
    _plot_paths(loops, references, starts, settings, seeds[0], out / "horizon_mpc.png")
    _log_mpc(loops, ref_costs, out)
    return _write_table(recorders, loops, references, ref_costs, seeds, settings, truth.converged.sum(), out)


def _validate(settings: Settings) -> None:
    """Reject settings whose MPC horizons are not among the DVP horizons (their agents are the MPC's terminals)."""
    if not set(settings.mpc_horizons) <= set(settings.horizons):
        raise ValueError(f"mpc_horizons {settings.mpc_horizons} must be among horizons {settings.horizons}")


def _cost_ratio(runs: list[list[ClosedLoop]], ref_costs: np.ndarray) -> np.ndarray:
    """Per seed: mean over starts of closed-loop cost / reference cost over the same window."""
    return np.array([np.mean([loop.cost / ref for loop, ref in zip(per_start, ref_costs)]) for per_start in runs])


def _final_distance(runs: list[list[ClosedLoop]]) -> np.ndarray:
    """Per seed: mean over starts of the final distance ``||x_N||`` to the goal pose."""
    return np.array([np.mean([np.linalg.norm(loop.xs[-1]) for loop in per_start]) for per_start in runs])


def _plot_errors(recorders: dict[int, list], settings: Settings, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(recorders)))
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
    plt.close(fig)


def _plot_paths(loops: dict[int, dict[str, list]], references: list, starts: np.ndarray, settings: Settings, seed: int, path: Path) -> None:
    n = len(loops)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, (T, arms) in zip(axes.ravel(), loops.items()):
        for i, ref in enumerate(references):
            ax.plot(ref.xs[:, 0], ref.xs[:, 1], "k--", linewidth=1.2, label=f"T={settings.reference_horizon} (open loop)" if i == 0 else None)
        for i, loop in enumerate(arms["zero"][0]):
            ax.plot(loop.xs[:, 0], loop.xs[:, 1], color="tab:red", alpha=0.8, label="MPC, zero terminal" if i == 0 else None)
        for i, loop in enumerate(arms["learned"][0]):
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
    plt.close(fig)


def _log_mpc(loops: dict[int, dict[str, list]], ref_costs: np.ndarray, out: Path) -> None:
    writer = common.writer(out, "mpc")
    try:
        for T, arms in loops.items():
            writer.add_scalar("mpc/cost_ratio_learned_terminal", float(_cost_ratio(arms["learned"], ref_costs).mean()), T)
            writer.add_scalar("mpc/cost_ratio_zero_terminal", float(_cost_ratio(arms["zero"], ref_costs).mean()), T)
            writer.add_scalar("mpc/final_distance_learned_terminal", float(_final_distance(arms["learned"]).mean()), T)
            writer.add_scalar("mpc/final_distance_zero_terminal", float(_final_distance(arms["zero"]).mean()), T)
    finally:
        writer.close()


def _write_table(
    recorders: dict[int, list], loops: dict[int, dict[str, list]], references: list, ref_costs: np.ndarray, seeds: Sequence[int],
    settings: Settings, n_truth: int, out: Path,
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
            arms = loops[T]
            ratios = {arm: _cost_ratio(arms[arm], ref_costs) for arm in ("learned", "zero")}
            dists = {arm: _final_distance(arms[arm]) for arm in ("learned", "zero")}
            entry["mpc"] = {
                "cost_ratio": {arm: common.stats(v) for arm, v in ratios.items()},
                "final_distance": {arm: common.stats(v) for arm, v in dists.items()},
                "cost": {arm: [[loop.cost for loop in per_start] for per_start in arms[arm]] for arm in arms},
                "unconverged_solves": {arm: int(sum(loop.unconverged for per_start in arms[arm] for loop in per_start)) for arm in arms},
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


__all__ = ["FULL", "HORIZONS", "MPC_HORIZONS", "QUICK", "ClosedLoop", "Settings", "closed_loop", "mpc_controller", "run"]
