"""How good is the best return on the zoo's episodes? Checks of the references behind the return targets.

``pendulum``: grid value iteration on Gymnasium's ``Pendulum-v1`` at growing resolutions; for each
grid, the mean of its optimum ``-V_200(x0)`` over the episodes and the return of its greedy
controller played in the real env (what a near-exact value function achieves in closed loop).

``reacher``: for each ``Reacher-v5`` episode, whole-episode DDP plans (T = 50, the episode's length)
on the twin from many starts (zero controls, every full-bound push of the zoo's oracle, and random
piecewise-constant controls); the best plan (lowest twin cost) is played open loop in the real env.
If a better local optimum existed near any start, the best return would beat the zoo's DDP oracle.

    python benchmarks/optimum_checks.py pendulum --episodes 100
    python benchmarks/optimum_checks.py reacher --episodes 100 --random-starts 8

Prints tables; not a test. Both use episode reset seeds ``--episode-seed``.. (the zoo's 1000..).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dvp_rl.control.rollout import evaluate_episodes
from dvp_rl.references import value_iteration as vi

#: (angles, speeds, torques) of the pendulum grids, coarse to fine (the zoo's reference is the first)
PENDULUM_GRIDS = ((180, 161, 21), (360, 321, 41), (540, 481, 41))


def pendulum(seeds: np.ndarray, cache_dir: str | None) -> None:
    starts = vi.pendulum_start_states(seeds)
    print(f"Pendulum-v1, {len(seeds)} episodes (seeds {seeds[0]}..{seeds[-1]})")
    print("| grid (angles x speeds x torques) | mean grid optimum | greedy controller's return | worst greedy | s |")
    print("|---|---|---|---|---|")
    best = np.full(len(seeds), -np.inf)
    for n_angles, n_speeds, n_torques in PENDULUM_GRIDS:
        start = time.perf_counter()
        table = vi.solve_pendulum(n_angles, n_speeds, n_torques, cache_dir=cache_dir)
        greedy = evaluate_episodes(table, "Pendulum-v1", seeds).returns
        best = np.maximum(best, greedy)
        print(f"| {n_angles} x {n_speeds} x {n_torques} | {table.optimal_return(starts).mean():.2f} | {greedy.mean():.2f} "
              f"| {greedy.min():.1f} | {time.perf_counter() - start:.0f} |", flush=True)  # fmt: skip
    print(f"best greedy return per episode, averaged: {best.mean():.2f}")


def reacher(seeds: np.ndarray, random_starts: int, seed: int) -> None:
    import gymnasium as gym

    from dvp_rl.control.ocp import OptimalControlProblem
    from dvp_rl.references.oracle import ORACLES
    from envs.twins import twin_for

    twin = twin_for("Reacher-v5")
    model = twin.make().unwrapped
    settings = ORACLES["Reacher-v5"]
    T = settings.horizon
    problem = OptimalControlProblem(model, T, 1.0, None, 300, 1e-8)
    rng = np.random.default_rng(seed)
    segments = 5
    print(f"Reacher-v5, {len(seeds)} episodes (seeds {seeds[0]}..{seeds[-1]}), T = {T}, "
          f"starts: zero controls, {3 ** model.nu} pushes, {random_starts} random")  # fmt: skip
    print("| seed | best plan's return | converged starts | spread of plan costs |")
    print("|---|---|---|---|")
    returns = []
    for episode_seed in seeds:
        real = gym.make("Reacher-v5")
        try:
            obs, _ = real.reset(seed=int(episode_seed))
            x0 = twin.observation_to_state(obs)
            guesses: list[list[np.ndarray] | None] = [None, *(us for _, us in problem.initial_guesses(x0, "pushes"))]
            for _ in range(random_starts):
                values = rng.uniform(model.action_low, model.action_high, (segments, model.nu))
                guesses.append([values[k * segments // T].copy() for k in range(T)])
            plans = [problem.solve(x0) if us is None else problem.solve(x0, us_init=us) for us in guesses]
            converged = [p for p in plans if p.converged]
            if not converged:
                print(f"| {episode_seed} | no start converged | 0/{len(plans)} | |")
                continue
            best = min(converged, key=lambda p: p.cost)
            total = 0.0
            for u in best.us:
                obs, reward, terminated, truncated, _ = real.step(np.clip(u, model.action_low, model.action_high).astype(np.float32))
                total += float(reward)
        finally:
            real.close()
        returns.append(total)
        costs = [p.cost for p in converged]
        print(f"| {episode_seed} | {total:.3f} | {len(converged)}/{len(plans)} | {min(costs):.3f}..{max(costs):.3f} |", flush=True)
    print(f"mean return of the best plans: {np.mean(returns):.3f} over {len(returns)} episodes")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", choices=("pendulum", "reacher"))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--episode-seed", type=int, default=1000, help="reset seed of the first episode")
    parser.add_argument("--random-starts", type=int, default=8, help="reacher: random control guesses per episode")
    parser.add_argument("--seed", type=int, default=0, help="reacher: seed of the random guesses")
    parser.add_argument("--cache-dir", default=None, help="pendulum: cache folder of the grid values")
    args = parser.parse_args(argv)
    seeds = np.arange(args.episode_seed, args.episode_seed + args.episodes)
    if args.env == "pendulum":
        pendulum(seeds, args.cache_dir)
    else:
        reacher(seeds, args.random_starts, args.seed)


if __name__ == "__main__":
    main()
