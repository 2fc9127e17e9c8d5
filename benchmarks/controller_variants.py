"""Evaluate a saved DVP agent with changed controller settings on fixed episodes; print one JSON line.

The learned value is the file's; only ``predict``'s controller changes (fields of
:class:`dvp_rl.MPCConfig` over the file's), so controller settings can be compared on one
trained network. Step times are ``predict`` calls, one torch thread: quote them with the
machine's load.

    python benchmarks/controller_variants.py runs/Pendulum-v1__DVP__0.zip Pendulum-v1 --mpc '{"time_budget": null}'
    python benchmarks/controller_variants.py DVP.zip dvp_rl/PandaReach-v0 --mpc '{"max_iter": 3}' \
        --oracle runs/zoo/reference/oracle__dvp_rl-PandaReach-v0__7aa02dae70e5.json

With ``--oracle`` (a reference file the zoo cached: per-episode returns by reset seed) the line
adds the oracle's mean return and the regret, also relative to the oracle's mean. With ``--probe``
a sleeping process beside the evaluation (:class:`dvp_rl.compare.probe.HostProbe`) reports how
late it woke (``probe_max_late_ms``, ``probe_late_wakeups`` over 2 ms), and each of the five
slowest steps comes with its CPU time and the longest stall the probe saw during it
(``slowest_steps_wall_cpu_stall_ms``): a step whose wall-clock far exceeds its CPU time waited
for a CPU (the host's or another process's doing), it did not compute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import torch

from dvp_rl.agent import DVP
from dvp_rl.checkpoint import read_checkpoint, saved_settings
from dvp_rl.compare.probe import HostProbe
from dvp_rl.control.rollout import evaluate_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a DVP checkpoint (agent.save)")
    parser.add_argument("env_id", help="the env the episodes run in (gymnasium.make)")
    parser.add_argument("--mpc", default="{}", help="JSON dict of MPCConfig fields over the file's (default: none)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes, reset seeds --seed, --seed + 1, ... (default 100)")
    parser.add_argument("--seed", type=int, default=1000, help="reset seed of the first episode (default 1000)")
    parser.add_argument("--oracle", default=None, help="a cached reference file with per-seed returns (optional)")
    parser.add_argument("--probe", action="store_true", help="report a sleeping probe's late wake-ups beside the evaluation (host stalls)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    variant = json.loads(args.mpc)
    data, _, _ = read_checkpoint(args.path)  # the file's controller settings, without building an agent for them
    saved = saved_settings(data).get("mpc") or {}
    agent = DVP.load(args.path, n_workers=1, mpc={**saved, **variant})
    seeds = list(range(args.seed, args.seed + args.episodes))
    started = time.perf_counter()
    probe = HostProbe(threshold=0.002) if args.probe else None  # stalls over 2 ms: a sleep itself wakes within ~1 ms
    with probe or contextlib.nullcontext():
        res = evaluate_episodes(agent, args.env_id, seeds)
    line = {
        "mpc": variant, "mean": round(res.mean_return, 4), "std": round(res.std_return, 4), "worst": round(res.worst_return, 4),
        "success": res.success_rate, "median_ms": round(res.median_step_ms, 2), "p99_ms": round(res.p99_step_ms, 1),
        "max_ms": round(res.max_step_ms, 1), "seconds": round(time.perf_counter() - started),
    }  # fmt: skip
    if probe is not None:
        line.update(probe.report.as_dict())
        slowest = np.argsort(res.step_ms)[::-1][:5]  # the five slowest steps: wall-clock, CPU time, the longest probe stall during it
        line["slowest_steps_wall_cpu_stall_ms"] = [
            [round(float(res.step_ms[i]), 1), round(float(res.step_cpu_ms[i]), 1),
             round(probe.report.stall_within(int(res.step_start_ns[i]), int(res.step_ms[i] * 1e6)), 1)] for i in slowest
        ]  # fmt: skip
    if args.oracle:
        returns = json.load(open(args.oracle))["returns"]
        reference = np.array([returns[str(s)] for s in seeds])
        regret = float((reference - res.returns).mean())
        line.update(oracle=round(float(reference.mean()), 4), regret=round(regret, 4), relative_regret=round(regret / abs(reference.mean()), 4))
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
