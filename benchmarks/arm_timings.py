"""What a DDP step of the arm-reaching envs costs: the budget of an MPC at 250 Hz is 4 ms.

Prints, for one arm of :mod:`envs.arms` (box-FDDP as every solve of the package runs it:
:func:`dvp_rl.control.ocp.box_fddp`, one thread):

* the wall-clock of one box-FDDP iteration at horizons T (default 10, 20, 30, 50, 70), warm-started
  as an MPC would be: from a converged plan, shifted by one step (the plan's second state as the
  new start, the last control repeated), median and max over the starts of the best of
  ``--repeats`` timings each;
* cold solves to convergence at T = 70 and 150 from the ``hold`` guess (every state at the start,
  zero torques): iterations and milliseconds, median and max over the starts.

    python benchmarks/arm_timings.py [--robot panda] [--n-starts 10] [--repeats 20]
"""

from __future__ import annotations

import argparse
import platform
import time

import crocoddyl
import numpy as np

from dvp_rl.control.ocp import OptimalControlProblem
from envs.arms import ARMS, ArmReachEnv


def warm_iteration_ms(ocp: OptimalControlProblem, x0: np.ndarray, repeats: int) -> float:
    """Best-of-``repeats`` time (ms) of one box-FDDP iteration from the converged plan of ``x0`` shifted by one step."""
    plan = ocp.solve(x0)
    if not plan.converged:
        raise RuntimeError(f"the T={ocp.horizon} solve from {x0} did not converge")
    xs = [x.copy() for x in plan.xs[1:]] + [plan.xs[-1].copy()]
    us = [u.copy() for u in plan.us[1:]] + [plan.us[-1].copy()]
    solver = ocp.solver
    solver.problem.x0 = xs[0]
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        solver.solve(xs, us, 1, False)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="panda", choices=sorted(ARMS))
    parser.add_argument("--n-starts", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--horizons", type=int, nargs="+", default=[10, 20, 30, 50, 70])
    parser.add_argument("--cold-horizons", type=int, nargs="+", default=[70, 150])
    args = parser.parse_args()

    env = ArmReachEnv(args.robot)
    starts = env.sample_states(args.n_starts, 0)
    print(f"{args.robot}: nx={env.nx}, nu={env.nu}, dt={env.dt}; crocoddyl {crocoddyl.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.n_starts} starts (sample_states(n, 0)), one thread")  # fmt: skip
    print("\nwarm start (converged plan shifted by one step), one box-FDDP iteration:")
    print("   T | median ms | max ms")
    for T in args.horizons:
        ocp = OptimalControlProblem(env, T)
        assert ocp.problem.nthreads == 1
        times = [warm_iteration_ms(ocp, x0, args.repeats) for x0 in starts]
        print(f"{T:4d} | {np.median(times):9.2f} | {np.max(times):6.2f}")
    print("\ncold solve to convergence (hold guess):")
    print("   T | iterations median (max) | ms median (max) | ms per iteration | converged")
    for T in args.cold_horizons:
        ocp = OptimalControlProblem(env, T)
        its, ms, converged = [], [], 0
        for x0 in starts:
            start = time.perf_counter()
            result = ocp.solve(x0)
            ms.append(1e3 * (time.perf_counter() - start))
            its.append(result.iterations)
            converged += result.converged
        per = np.array(ms) / np.maximum(its, 1)
        print(f"{T:4d} | {np.median(its):6.0f} ({np.max(its):3d})            | {np.median(ms):6.1f} ({np.max(ms):6.1f})  | "
              f"{np.median(per):16.2f} | {converged}/{len(starts)}")  # fmt: skip


if __name__ == "__main__":
    main()
