"""SB3's SAC, TD3 and PPO on Gymnasium's Pendulum-v1 with rl-zoo3's settings, scored as rl-zoo3 scores them.

Each algorithm trains with seed 0 for the ``n_timesteps`` of its ``hyperparams.yml`` entry (or
until ``--max-seconds`` of training wall-clock), then one deterministic episode per seed
``1000 .. 1000 + n - 1`` runs in ``gymnasium.make("Pendulum-v1")``
(:func:`dvp_rl.control.rollout.evaluate_episodes`). The value-iteration optimum of the same
starts and its greedy controller (:func:`dvp_rl.references.value_iteration.solve_pendulum`) are printed
for reference. One torch thread.

    python benchmarks/pendulum_sb3.py [--algos SAC TD3 PPO] [--episodes 100] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dvp_rl.control.rollout import EpisodeResults, evaluate_episodes
from baselines.sb3 import learn_capped, load_hyperparams, make_sb3
from dvp_rl.references.value_iteration import pendulum_start_states, solve_pendulum

ENV_ID = "Pendulum-v1"


def row(name: str, results: EpisodeResults, train_s: float | None, env_steps: int | None) -> str:
    train = "-" if train_s is None else f"{train_s:.0f}"
    steps = "-" if env_steps is None else f"{env_steps}"
    return (
        f"| {name} | {results.mean_return:.1f} +- {results.std_return:.1f} | {results.worst_return:.1f} "
        f"| {results.median_step_ms:.3f} | {train} | {steps} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algos", nargs="+", default=["SAC", "TD3", "PPO"])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="training wall-clock cap per algorithm")
    parser.add_argument("--cache-dir", default="runs/value_iteration")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = list(range(args.first_seed, args.first_seed + args.episodes))

    start = time.perf_counter()
    pendulum = solve_pendulum(cache_dir=args.cache_dir)
    vi_s = time.perf_counter() - start
    optimal = pendulum.optimal_return(pendulum_start_states(seeds))
    rows = [row("value iteration, greedy", evaluate_episodes(pendulum, ENV_ID, seeds), None, None)]
    print(
        f"value iteration {pendulum.values.shape[0]}x{pendulum.values.shape[1]} states, {len(pendulum.torques)} torques "
        f"({vi_s:.1f} s): optimal 200-step return of these starts {optimal.mean():.1f} +- {optimal.std():.1f} "
        f"(worst {optimal.min():.1f}); start distribution {pendulum.start_distribution_return():.1f}",
        flush=True,
    )
    for algo in args.algos:
        budget = int(load_hyperparams(ENV_ID, algo)["n_timesteps"])
        model = make_sb3(algo, ENV_ID, seed=args.seed)
        run = learn_capped(model, budget, args.max_seconds)
        results = evaluate_episodes(model, ENV_ID, seeds)
        cap = " (cap hit)" if run.hit_cap else ""
        print(f"{algo}: {run.env_steps}/{budget} steps in {run.wall_s:.0f} s{cap}: {results.summary()}", flush=True)
        rows.append(row(f"{algo} (seed {args.seed})", results, run.wall_s, run.env_steps))
        regret = results.returns - optimal
        print(f"  return - optimum: mean {regret.mean():.1f}, worst {regret.min():.1f}", flush=True)

    print(f"\n{ENV_ID}, {len(seeds)} episodes (seeds {seeds[0]}..{seeds[-1]}), deterministic policies\n")
    print("| agent | return (mean +- std) | worst | median ms/step | train s | env steps |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"| optimum (value iteration, V_200 of the starts) | {optimal.mean():.1f} +- {optimal.std():.1f} | {np.min(optimal):.1f} | - | - | - |")


if __name__ == "__main__":
    main()
