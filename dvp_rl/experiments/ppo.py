"""Paper Fig. 10-11: DVP against PPO on the three systems, through ``dvp-rl benchmark``.

The benchmark (:mod:`dvp_rl.compare.benchmark`) does the work (value maps and error maps,
closed-loop trajectories, error against transitions and wall-clock, tensorboard
dashboards); this module runs it into ``runs/reproduce/ppo/`` and condenses its
``summary.json`` into the experiment table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dvp_rl.compare.benchmark import QUICK, BenchmarkConfig, run_benchmark
from dvp_rl.experiments.common import CONTINUOUS_PENDULUM, fmt, out_dir_for, publish_table
from dvp_rl.value.sobolev import torch_threads

NAME = "ppo"


def config_for(out: Path, seeds: Sequence[int], quick: bool) -> BenchmarkConfig:
    """The benchmark settings: the three systems, the pendulum as :data:`CONTINUOUS_PENDULUM` (the unicycle
    only, tiny budgets, with ``quick``)."""
    if quick:
        return dataclasses.replace(
            QUICK, seeds=tuple(seeds)[:1], out=str(out), dvp_iterations=2, budget_seconds=20.0, ppo_timesteps=4096,
            n_eval_states=20, n_closed_loop=2, closed_loop_steps=20, grid_size=5, ground_truth_horizon=60,
            dvp_kwargs={"n_samples": 40, "fit": {"max_epochs": 10}, "horizon": 10}, ppo_kwargs={"n_steps": 256}, verbose=0,
        )  # fmt: skip
    pendulum = {"dvp_rl/Pendulum-v0": dict(CONTINUOUS_PENDULUM)}  # a continuous value: a fair test of value accuracy
    return BenchmarkConfig(seeds=tuple(seeds), out=str(out), budget_seconds=300.0, closed_loop_every=0, env_kwargs=pendulum)


def run(out_dir: Path | None = None, seeds: Sequence[int] = (0, 1, 2), quick: bool = False) -> dict[str, Any]:
    """Run the DVP-vs-PPO benchmark and write ``table.md``/``table.json`` next to its outputs."""
    out = out_dir_for(NAME, out_dir)  # no seed check or settings here: the benchmark's config checks and holds them
    with torch_threads(1):
        result = run_benchmark(config_for(out, seeds, quick))
    rows, table = [], {}
    for env_id, entry in result.summary["envs"].items():
        metrics = entry["metrics"]
        reported = ("value_mse", "value_rel_mse", "closed_loop_cost", "env_interactions", "model_evaluations", "wallclock_s")
        table[env_id] = {algo: {m: metrics[algo][m]["mean"] for m in reported} for algo in ("DVP", "PPO")}
        for metric in ("value_rel_mse", "closed_loop_cost", "env_interactions", "model_evaluations", "wallclock_s"):
            d, p = metrics["DVP"][metric], metrics["PPO"][metric]
            rows.append([env_id, metric, fmt(d["mean"], d["std"]), fmt(p["mean"], p["std"]), fmt(p["mean"] / d["mean"]) if d["mean"] else "n/a"])
    return publish_table(
        out, "DVP vs PPO (paper Fig. 10-11)", ["env", "metric", "DVP", "PPO", "PPO / DVP"], rows, table,
        notes=f"Seeds {result.summary['config']['seeds']}; full benchmark outputs (figures, tensorboard, summary.md) in {out}.",
    )
