"""DVP convergence benchmark (issue 3): error against ground truth after each iteration.

For each env: relative value MSE and gradient error against long-horizon multi-start
DDP after every iteration, the time split between solving and fitting, and the cost of
the learned terminal node against the native solve. Prints tables; not a test.

    python benchmarks/dvp_convergence.py --iterations 10
    python benchmarks/dvp_convergence.py --env dvp_rl/Pendulum-v0 --env-kwargs '{"max_torque": 6}'

At the pendulum's default torque bound its value is discontinuous (see ``envs.PendulumEnv``).
The ground truth is cached in ``--cache-dir`` (default: ``ground_truth`` next to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from dvp_rl.agent import DVP
from dvp_rl.callbacks import GroundTruthEvalCallback
from dvp_rl.references.ground_truth import ground_truth
from dvp_rl.control.ocp import OptimalControlProblem

ENVS = ("dvp_rl/Pendulum-v0", "dvp_rl/CartPole-v0", "dvp_rl/Unicycle-v0")


class Timings(BaseCallback):
    """Reads the solve/fit times the agent logged for each iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[float, float]] = []

    def _on_step(self) -> bool:
        values = self.logger.name_to_value
        self.rows.append((float(values["time/solve_s"]), float(values["time/fit_s"])))
        return True


def terminal_overhead(agent: DVP, n_states: int = 30, seed: int = 1) -> tuple[float, float]:
    """Median solve time (ms) without and with the learned terminal, same start states, same horizon."""
    env = agent.system
    states = env.sample_states(n_states, seed)
    plain = OptimalControlProblem(env, agent.horizon, agent.gamma)
    learned = OptimalControlProblem(env, agent.horizon, agent.gamma, agent.value_arrays)
    times: dict[str, list[float]] = {"plain": [], "learned": []}
    for x0 in states:
        for name, ocp in (("plain", plain), ("learned", learned)):
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                r = ocp.solve(x0)
                best = min(best, (time.perf_counter() - t0) / max(r.iterations, 1))
            times[name].append(best)
    return 1e3 * float(np.median(times["plain"])), 1e3 * float(np.median(times["learned"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", help="env id (repeatable; default: pendulum, cart-pole, unicycle)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--n-eval", type=int, default=200)
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=60)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", type=json.loads, default={},
                        help='JSON kwargs of every env, e.g. \'{"max_torque": 6}\' (the pendulum that can hold any angle)')
    parser.add_argument("--out", default="runs/benchmarks/dvp_convergence.json")
    parser.add_argument("--cache-dir", default=None, help="ground-truth cache folder (default: ground_truth next to --out)")
    args = parser.parse_args()
    cache_dir = Path(args.cache_dir) if args.cache_dir is not None else Path(args.out).resolve().parent / "ground_truth"

    report = {}
    for env_id in args.env or ENVS:
        agent = DVP(env_id, horizon=args.horizon, n_samples=args.n_samples, fit={"max_epochs": args.max_epochs, "patience": args.patience},
                    n_workers=args.n_workers, seed=args.seed, checkpoint_dir=None, env_kwargs=args.env_kwargs)
        states = agent.system.sample_states(args.n_eval, np.random.default_rng(10_000 + args.seed))
        t0 = time.perf_counter()
        truth = ground_truth(env_id, states, gamma=agent.gamma, env_kwargs=args.env_kwargs, cache_dir=cache_dir, n_workers=args.n_workers,
                             progress=True)
        print(f"\n{env_id} {args.env_kwargs or ''}: ground truth on {truth.converged.sum()}/{len(states)} converged states "
              f"(T={truth.horizon}, {time.perf_counter() - t0:.1f} s)")
        evaluation, timings = GroundTruthEvalCallback(truth, verbose=1), Timings()  # verbose: a line per iteration
        agent.learn(args.iterations, callback=[evaluation, timings], progress_bar=True)
        print(f"{'iter':>4} {'eff. T':>7} {'value rel. MSE':>15} {'grad rel. err':>14} {'solve s':>8} {'fit s':>7} {'transitions':>12}")
        rows = []
        for (it, steps, err), (solve_s, fit_s) in zip(evaluation.history, timings.rows):
            print(f"{it:>4} {it * args.horizon:>7} {err.value_rel_mse:>15.3e} {err.gradient_rel_error:>14.3e} {solve_s:>8.1f} {fit_s:>7.1f} {steps:>12}")
            rows.append({"iteration": it, "value_rel_mse": err.value_rel_mse, "gradient_rel_error": err.gradient_rel_error,
                         "solve_s": solve_s, "fit_s": fit_s, "transitions": steps})
        plain_ms, learned_ms = terminal_overhead(agent)
        total_solve = sum(r["solve_s"] for r in rows)
        total_fit = sum(r["fit_s"] for r in rows)
        best = min(r["value_rel_mse"] for r in rows)
        print(f"time split: solving {total_solve:.0f} s ({100 * total_solve / (total_solve + total_fit):.0f}%), fitting {total_fit:.0f} s; "
              f"failed solves {agent.failed_solves}")
        print(f"per DDP iteration at T={args.horizon}: native {plain_ms:.3f} ms, with learned terminal {learned_ms:.3f} ms "
              f"(x{learned_ms / plain_ms:.2f}; target <= 1.5)")
        print(f"best value rel. MSE {best:.2e} (target <= 1e-5: {'met' if best <= 1e-5 else 'NOT met'})")
        report[env_id] = {"env_kwargs": args.env_kwargs, "rows": rows, "terminal_ms": [plain_ms, learned_ms], "failed_solves": agent.failed_solves}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
