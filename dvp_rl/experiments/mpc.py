"""Short-horizon MPC with a learned terminal value against long-horizon MPC (the paper's motivation).

A DVP agent is trained on the unicycle (horizon ``dvp_horizon``, so that its value approximates
the cost-to-go over ``dvp_iterations * dvp_horizon`` steps, longer than ``reference_horizon`` by
default). Then, from the same start states, closed-loop model-predictive control runs with
horizons ``T`` in ``horizons``, each with a zero terminal cost (``MPCController(env, T)``) and
with the learned value as terminal cost (``agent.controller(horizon=T)``), against the reference:
MPC with the long horizon ``reference_horizon`` and a zero terminal cost. Every controller is
:class:`dvp_rl.control.mpc.MPCController`, the controller of :meth:`dvp_rl.DVP.predict` (box-FDDP
warm-started from the previous plan shifted by one step), run by :func:`dvp_rl.control.mpc.closed_loop`.

Two iteration budgets per control step are compared: ``None`` solves every step to
convergence (``max_iter = 300``, ``th_stop = 1e-9``, a cold retry when a warm start stalls, as
``DVP.predict`` does), an integer caps the DDP iterations of each step (real-time MPC; the
capped plan is applied as it is, no cold retry). Every row's cost gap and compute speed-up are
measured against one reference: the long-horizon MPC under the first budget (solved to
convergence), so that a capped controller is not compared with an equally capped, weaker reference.

Closed-loop cost: the running costs of ``n_steps`` steps plus the optimal cost-to-go of the
final state (a ``tail_horizon`` multi-start DDP solve), so that a controller that has not
reached the goal after the episode is not credited with the cost it has not yet paid.
Compute per control step: wall-clock seconds of the controller's step on one core, DDP
iterations, and node evaluations (:attr:`dvp_rl.control.mpc.MPCStep.model_evaluations`: running-node
evaluations; it does not count the terminal network, whose cost the wall-clock time includes).

The table checks the target of the settings: the learned-value MPC of horizon
``target_horizon`` within ``target_gap`` of the reference's closed-loop cost at
``target_speedup`` times less compute per step (in wall-clock and in node evaluations), and
names the shortest horizon whose learned-value MPC is within the gap.

The unicycle rather than the pendulum: warm-started MPC of the pendulum can stay in a local
optimum even without a learned terminal (docs/REPRODUCTION.md), which would mix the solver's
failures into the comparison.

Outputs under ``runs/reproduce/mpc/``: ``mpc.png`` (gap to the reference, time per step and
x-y paths against the horizon), ``table.md``/``table.json``, the trained agents
``dvp_unicycle__<seed>.zip`` and tensorboard runs ``tb/dvp__<seed>_1`` (DVP training) and
``tb/mpc__<seed>`` (closed-loop results against the horizon).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

import envs
from dvp_rl.agent import DVP
from dvp_rl.experiments import common
from dvp_rl.control.mpc import MPCController, closed_loop
from dvp_rl.control.ocp import OptimalControlProblem, reference_guesses
from dvp_rl.value.sobolev import torch_threads

NAME = "mpc"
ENV_ID = "dvp_rl/Unicycle-v0"
#: seed offset of the start states (seed ``s`` uses ``START_SEED + s``)
START_SEED = 20_000
#: DDP iterations per step when a step is solved to convergence
CONVERGED_MAX_ITER = 300


@dataclass(frozen=True)
class Settings:
    """Budget of the experiment.

    ``horizons``: MPC horizons compared; ``reference_horizon``: the long-horizon reference;
    ``n_starts``: start states per seed; ``n_steps``: closed-loop steps; ``tail_horizon``:
    horizon of the cost-to-go solve of the final state; ``iteration_budgets``: DDP iterations per
    control step (``None``: to convergence); ``dvp_*``: the DVP agent's horizon, samples per
    iteration, iterations, epochs and L-BFGS steps per fit; ``target_horizon``,
    ``target_gap``, ``target_speedup``: the issue's target.
    """

    horizons: tuple[int, ...] = (5, 10, 20, 50, 100)
    reference_horizon: int = 300
    n_starts: int = 6
    n_steps: int = 100
    tail_horizon: int = 300
    iteration_budgets: tuple[int | None, ...] = (None, 5)
    dvp_horizon: int = 50
    dvp_samples: int = 400
    dvp_iterations: int = 8
    dvp_max_epochs: int = 300
    dvp_polish_steps: int = 200
    target_horizon: int = 10
    target_gap: float = 0.01
    target_speedup: float = 20.0


FULL = Settings()
QUICK = Settings(
    horizons=(5, 10), reference_horizon=30, n_starts=2, n_steps=8, tail_horizon=30, dvp_horizon=10, dvp_samples=20, dvp_iterations=1,
    dvp_max_epochs=5, dvp_polish_steps=5,
)  # fmt: skip


class LoopResult(NamedTuple):
    """One closed-loop run: ``xs`` (n+1, nx); ``cost`` = ``running_cost`` + ``tail`` (optimal cost-to-go of
    ``xs[-1]``); per control step (means over the run): ``seconds``, DDP ``iterations``, node evaluations
    ``nodes``; ``unconverged``: steps whose applied plan missed the stopping criterion."""

    xs: np.ndarray
    cost: float
    running_cost: float
    tail: float
    seconds: float
    iterations: float
    nodes: float
    unconverged: int


#: ``loops[budget][(controller, horizon)][seed]``: one run per start state
Loops = dict[str, dict[tuple[str, int], dict[int, list[LoopResult]]]]


def scored_loop(controller: MPCController, x0: np.ndarray, n_steps: int, tail: OptimalControlProblem) -> LoopResult:
    """:func:`dvp_rl.control.mpc.closed_loop` of ``controller`` for ``n_steps`` steps from ``x0`` (nx,), scored
    with the tail cost of its final state.

    :param tail: the problem whose multi-start solve from the final state gives the tail cost
    :raises RuntimeError: the tail solve gave no finite cost
    """
    loop = closed_loop(controller, x0, n_steps)
    final = tail.solve_best(loop.xs[-1], reference_guesses(tail.env))
    if not np.isfinite(final.cost):
        raise RuntimeError(f"the tail solve (T={tail.horizon}) failed from the final state {loop.xs[-1]}")
    running = float(loop.costs.sum())
    n = max(int(n_steps), 1)
    return LoopResult(loop.xs, running + final.cost, running, final.cost, float(loop.seconds.sum()) / n, float(loop.iterations.sum()) / n,
                      float(loop.model_evaluations.sum()) / n, int((~loop.converged).sum()))  # fmt: skip


def train_agent(settings: Settings, seed: int, out: Path) -> DVP:
    """The DVP agent of ``seed`` (tensorboard under ``out/tb``, saved to ``out/dvp_unicycle__<seed>.zip``)."""
    agent = DVP(
        ENV_ID, horizon=settings.dvp_horizon, n_samples=settings.dvp_samples, fit={"max_epochs": settings.dvp_max_epochs,
        "polish_steps": settings.dvp_polish_steps}, seed=seed, n_workers=1, tensorboard_log=str(out / "tb"), checkpoint_dir=None,
    )  # fmt: skip
    agent.learn(settings.dvp_iterations, tb_log_name=f"dvp__{seed}")
    agent.save(out / f"dvp_unicycle__{seed}.zip")
    return agent


def controllers(settings: Settings, agent: DVP, budget: int | None) -> list[tuple[str, int, MPCController]]:
    """``(name, horizon, controller)`` of every controller under one iteration budget, the reference first.

    :param budget: DDP iterations per control step (``None``: to convergence, with the cold retry)
    """
    kwargs: dict[str, Any] = {"max_iter": CONVERGED_MAX_ITER if budget is None else int(budget), "retry_cold": budget is None}
    rows = [("reference", settings.reference_horizon, MPCController(agent.system, settings.reference_horizon, **kwargs))]
    for horizon in settings.horizons:
        rows += [("zero", horizon, MPCController(agent.system, horizon, **kwargs)),
                 ("learned", horizon, agent.controller(horizon=horizon, **kwargs))]
    return rows


def budget_name(budget: int | None) -> str:
    return "converged" if budget is None else f"{budget}_iterations"


@common.experiment(NAME, QUICK, FULL)
def run(settings: Settings, seeds: tuple[int, ...], out: Path) -> dict[str, Any]:
    """Run the experiment; write the figure, the table and tensorboard logs; return the table."""
    env = envs.make(ENV_ID).unwrapped
    tail = OptimalControlProblem(env, settings.tail_horizon, 1.0)
    loops: Loops = {}
    with torch_threads(1):
        for seed in seeds:
            agent = train_agent(settings, seed, out)
            starts = env.sample_states(settings.n_starts, np.random.default_rng(START_SEED + seed))
            for budget in settings.iteration_budgets:
                rows = controllers(settings, agent, budget)
                by_controller = loops.setdefault(budget_name(budget), {})
                for x0 in starts:  # start states outside, so that load on a shared machine spreads over the controllers
                    for name, horizon, controller in rows:
                        loop = scored_loop(controller, x0, settings.n_steps, tail)
                        by_controller.setdefault((name, horizon), {}).setdefault(seed, []).append(loop)
            _log_seed(out, seed, settings, loops)
    summary = _summarise(loops, seeds)
    _plot(summary, loops, settings, seeds[0], out / "mpc.png")
    return _write_table(summary, settings, seeds, out)


def _log_seed(out: Path, seed: int, settings: Settings, loops: Loops) -> None:
    tb = common.writer(out, f"mpc__{seed}")
    tb.add_text("settings", json.dumps(asdict(settings) | {"seed": seed, "env_id": ENV_ID}))
    for budget, by_controller in loops.items():
        for (name, horizon), by_seed in by_controller.items():
            runs = by_seed[seed]
            tb.add_scalar(f"{budget}/closed_loop_cost/{name}", float(np.mean([r.cost for r in runs])), horizon)
            tb.add_scalar(f"{budget}/ms_per_step/{name}", 1e3 * float(np.mean([r.seconds for r in runs])), horizon)
            tb.add_scalar(f"{budget}/nodes_per_step/{name}", float(np.mean([r.nodes for r in runs])), horizon)
    tb.close()


class SummaryRow(NamedTuple):
    """One controller under one budget, per seed (arrays (n_seeds,), means over the start states):
    ``cost``, ``tail``, ``seconds``, ``iterations``, ``nodes`` of :class:`LoopResult`, ``unconverged``
    steps (summed over the starts), the ``gap`` to the reference's cost and the speed-ups of its
    per-step compute (``speedup_wall``: seconds, ``speedup_nodes``: node evaluations)."""

    controller: str
    horizon: int
    cost: np.ndarray
    tail: np.ndarray
    seconds: np.ndarray
    iterations: np.ndarray
    nodes: np.ndarray
    unconverged: np.ndarray
    gap: np.ndarray
    speedup_wall: np.ndarray
    speedup_nodes: np.ndarray


#: ``summary[budget][(controller, horizon)]``
Summary = dict[str, dict[tuple[str, int], SummaryRow]]


def _summarise(loops: Loops, seeds: Sequence[int]) -> Summary:
    """Per budget and controller: per-seed means over the start states, gaps and speed-ups against the reference.

    The reference of every row is the long-horizon MPC under the first budget (default: solved to
    convergence), so that a capped budget is not measured against an equally capped, weaker reference.
    """
    fields = ("cost", "tail", "seconds", "iterations", "nodes")
    per_seed: dict[str, dict[tuple[str, int], dict[str, np.ndarray]]] = {}
    for budget, by_controller in loops.items():
        per_seed[budget] = {}
        for key, by_seed in by_controller.items():
            values = {f: np.array([np.mean([getattr(r, f) for r in by_seed[s]]) for s in seeds]) for f in fields}
            values["unconverged"] = np.array([sum(r.unconverged for r in by_seed[s]) for s in seeds], dtype=np.float64)
            per_seed[budget][key] = values
    first = next(iter(per_seed.values()))
    ref = first[next(key for key in first if key[0] == "reference")]
    summary: Summary = {}
    for budget, by_controller in per_seed.items():
        summary[budget] = {
            key: SummaryRow(
                key[0], key[1], **values, gap=values["cost"] / ref["cost"] - 1.0,
                speedup_wall=ref["seconds"] / np.maximum(values["seconds"], 1e-12),
                speedup_nodes=ref["nodes"] / np.maximum(values["nodes"], 1e-12),
            )  # fmt: skip
            for key, values in by_controller.items()
        }
    return summary


def _target(summary: Summary, settings: Settings) -> dict[str, dict[str, Any]]:
    """Per budget: the target horizon's gap and speed-ups, whether the target is met, and the shortest
    horizon whose learned-terminal MPC is within the target gap (``None``: none is)."""
    checks = {}
    for budget, rows in summary.items():
        row = rows.get(("learned", settings.target_horizon))
        if row is None:
            continue
        within = [h for h in settings.horizons if common.mean_std(rows[("learned", h)].gap)[0] <= settings.target_gap]
        gap = common.mean_std(row.gap)[0]
        wall = common.mean_std(row.speedup_wall)[0]
        nodes = common.mean_std(row.speedup_nodes)[0]
        checks[budget] = {
            "gap": gap, "speedup_wall": wall, "speedup_nodes": nodes, "gap_met": bool(gap <= settings.target_gap),
            "met_wall": bool(gap <= settings.target_gap and wall >= settings.target_speedup),
            "met_nodes": bool(gap <= settings.target_gap and nodes >= settings.target_speedup),
            "shortest_learned_horizon_within_gap": min(within) if within else None,
        }  # fmt: skip
    return checks


def _write_table(summary: Summary, settings: Settings, seeds: Sequence[int], out: Path) -> dict[str, Any]:
    columns = ["budget / step", "controller", "T", "closed-loop cost", "gap to reference (%)", "ms / step", "DDP iterations / step",
               "node evals / step", "speed-up (wall)", "speed-up (nodes)", "unconverged steps"]  # fmt: skip
    label = {"reference": "reference (zero terminal)", "zero": "zero terminal", "learned": "learned terminal"}
    rows = []
    for budget, by_controller in summary.items():
        for row in by_controller.values():
            gap_mean, gap_std = common.mean_std(100.0 * row.gap)
            rows.append([
                budget.replace("_", " "), label[row.controller], row.horizon, common.fmt(*common.mean_std(row.cost)),
                f"{gap_mean:+.2f} ± {gap_std:.2f}", common.plain_cell(1e3 * row.seconds, 2), common.plain_cell(row.iterations, 1),
                common.plain_cell(row.nodes, 0), common.plain_cell(row.speedup_wall, 1), common.plain_cell(row.speedup_nodes, 1),
                common.plain_cell(row.unconverged, 0),
            ])  # fmt: skip
    checks = _target(summary, settings)
    verdicts = []
    for budget, c in checks.items():
        verdicts.append(
            f"- {budget.replace('_', ' ')}: T={settings.target_horizon} with the learned value is {100 * c['gap']:+.2f}% from the "
            "reference "
            f"({'within' if c['gap_met'] else 'not within'} {100 * settings.target_gap:g}%); per-step compute of the reference over "
            f"its own: {c['speedup_wall']:.1f}x in wall time, {c['speedup_nodes']:.1f}x in node evaluations: target "
            f"{'met' if c['met_wall'] else 'not met'} in wall time, {'met' if c['met_nodes'] else 'not met'} in node evaluations. "
            f"Shortest horizon with the learned value within {100 * settings.target_gap:g}%: "
            + (f"T={c['shortest_learned_horizon_within_gap']}." if c["shortest_learned_horizon_within_gap"] is not None else "none.")
        )
    notes = (
        f"Unicycle, {len(seeds)} seed(s) (mean ± std over seeds of the mean over {settings.n_starts} start states; each seed has its "
        f"own start states and DVP agent: horizon {settings.dvp_horizon}, {settings.dvp_samples} samples, {settings.dvp_iterations} "
        f"iterations). Closed-loop cost = running costs of {settings.n_steps} steps + optimal cost-to-go of the final state "
        f"(T={settings.tail_horizon} multi-start DDP). Reference of every row (gap and speed-up): MPC with "
        f"T={settings.reference_horizon} and zero terminal cost under the first budget ({budget_name(settings.iteration_budgets[0])}). "
        "'converged': every step solved to convergence (max 300 iterations, th_stop 1e-9, cold retry when a warm "
        "start stalls, as DVP.predict); 'N iterations': at most N DDP iterations per step. Node evaluations count running nodes only; "
        "wall time (one core of a shared machine) also includes the learned terminal network. Speed-up: reference per-step compute over "
        "the controller's.\n\n"
        f"Target (T={settings.target_horizon} with the learned value within {100 * settings.target_gap:g}% of the long-horizon "
        f"closed-loop cost at {settings.target_speedup:g}x less compute per step):\n" + "\n".join(verdicts)
    )
    fields = ("cost", "gap", "tail", "seconds", "iterations", "nodes", "speedup_wall", "speedup_nodes", "unconverged")
    data = {budget: {f"{row.controller}_T{row.horizon}": {"controller": row.controller, "horizon": row.horizon,
                                                         **{f: common.stats(getattr(row, f), per_seed=True) for f in fields}}
                     for row in by_controller.values()}
            for budget, by_controller in summary.items()}  # fmt: skip
    table = {"experiment": NAME, "env_id": ENV_ID, "seeds": list(seeds), "settings": asdict(settings), "results": data, "target": checks}
    return common.publish_table(out, "MPC with and without the learned terminal value against long-horizon MPC", columns, rows, table, notes)


def _plot(summary: Summary, loops: Loops, settings: Settings, seed: int, path: Path) -> None:
    budgets = list(summary)
    fig = Figure(figsize=(14, 3.9 * len(budgets)))
    axes = np.atleast_2d(fig.subplots(len(budgets), 3))
    horizons = np.array(settings.horizons)
    styles = {"zero": ("tab:red", "zero terminal"), "learned": ("tab:blue", "learned terminal")}
    reference_key = ("reference", settings.reference_horizon)
    reference_ms = 1e3 * common.mean_std(summary[budgets[0]][reference_key].seconds)[0]
    for (ax_gap, ax_time, ax_path), budget in zip(axes, budgets):
        rows = summary[budget]
        lowest = 0.0
        for kind, (color, label) in styles.items():
            gap = np.array([common.mean_std(100.0 * rows[(kind, h)].gap) for h in horizons])
            ms = np.array([common.mean_std(1e3 * rows[(kind, h)].seconds) for h in horizons])
            ax_gap.errorbar(horizons, gap[:, 0], yerr=gap[:, 1], marker="o", capsize=3, color=color, label=label)
            ax_time.errorbar(horizons, ms[:, 0], yerr=ms[:, 1], marker="o", capsize=3, color=color, label=label)
            lowest = min(lowest, float((gap[:, 0] - gap[:, 1]).min()))
        reference_label = f"T={settings.reference_horizon}, {budget_name(settings.iteration_budgets[0]).replace('_', ' ')} (reference)"
        ax_gap.axhline(0.0, color="black", linewidth=0.8, label=reference_label)
        ax_time.axhline(reference_ms, color="black", linewidth=0.8, label=reference_label)
        if budget != budgets[0]:  # the long horizon under this budget
            own_gap = 100.0 * common.mean_std(rows[reference_key].gap)[0]
            own_ms = 1e3 * common.mean_std(rows[reference_key].seconds)[0]
            ax_gap.axhline(own_gap, color="black", linestyle="--", linewidth=0.8, label=f"T={settings.reference_horizon}, this budget")
            ax_time.axhline(own_ms, color="black", linestyle="--", linewidth=0.8, label=f"T={settings.reference_horizon}, this budget")
            lowest = min(lowest, own_gap)
        ax_gap.axhline(100 * settings.target_gap, color="gray", linestyle=":", label=f"+{100 * settings.target_gap:g}%")
        ax_gap.set_yscale("symlog", linthresh=1.0)
        ax_gap.set_ylim(bottom=min(-0.5, 1.5 * lowest))
        ax_gap.set_ylabel("closed-loop cost gap (%)")
        speedup = settings.target_speedup
        ax_time.axhline(reference_ms / speedup, color="gray", linestyle=":", label=f"reference / {speedup:g}")
        ax_time.set_yscale("log")
        ax_time.set_ylabel("ms per control step")
        for ax in (ax_gap, ax_time):
            ax.set_xscale("log")
            ax.set_xticks(horizons, [str(h) for h in horizons])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("MPC horizon T")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(budget.replace("_", " ") + " per step")
        ax_gap.legend(fontsize=7)
        by_controller = loops[budget]
        paths = [(("reference", settings.reference_horizon), "black", f"reference T={settings.reference_horizon}")]
        target = settings.target_horizon
        paths += [((kind, target), color, f"T={target} {label}") for kind, (color, label) in styles.items()]
        for key, color, label in paths:
            for i, loop in enumerate(by_controller[key][seed][:3]):
                ax_path.plot(loop.xs[:, 0], loop.xs[:, 1], color=color, label=label if i == 0 else None)
                ax_path.plot(loop.xs[0, 0], loop.xs[0, 1], "o", color="gray")
        ax_path.plot(0.0, 0.0, "k*", markersize=10)
        ax_path.set_xlabel("x")
        ax_path.set_ylabel("y")
        ax_path.set_aspect("equal", adjustable="datalim")
        ax_path.set_title(f"closed-loop paths (seed {seed}, first starts)")
        ax_path.legend(fontsize=7)
    fig.suptitle(f"Unicycle MPC, {settings.n_steps} steps: learned terminal value vs zero terminal vs T={settings.reference_horizon}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
