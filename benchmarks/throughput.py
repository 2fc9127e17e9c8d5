"""DDP throughput of dataset generation: solves per second in this process, over local
worker processes and as Ray tasks, against a plain Crocoddyl loop; and what a learned
terminal value costs inside a unicycle solve.

Prints
* for each env, solves per second at horizon T with 1 worker (in this process, as
  ``DVP(n_workers=1)``), with ``--workers`` local worker processes (``backend="local"``) and
  with Ray tasks on a local Ray of ``--workers`` CPUs (``backend="ray"``, skipped without
  Ray), and the speed-ups over 1 worker (target: >= 1.8x with 2 workers on 2 free cores);
* the speed-up of the same number of processes running a pure-Python busy loop: what the
  machine grants at the time (the ceiling of the rows above);
* a direct native Crocoddyl loop over the same unicycle problems
  (:func:`dvp_rl.demo.native_unicycle_solver`, same solver settings), the limit of the env
  bridge;
* the unicycle solve ending on a freshly initialised Gauss-residual value network
  (:func:`dvp_rl.control.terminal.value_terminal`) against the native solve, per solve and per DDP
  iteration (target: within 1.5x). The terminal changes the problem, hence the iteration
  counts: the time per iteration compares the cost of the models.

A "solve" is one DDP solve from the "hold" initial guess (``--all-guesses``: every guess of
the env's ``ddp_guesses``, as DVP does, for the worker rows). Rates are the best of
``--repeats`` runs; on a machine shared with other jobs they vary with its load, printed
before and after.

    python benchmarks/throughput.py [--horizon 50] [--n-states 120] [--workers 2] [--repeats 3] [--no-ray]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the ids)
from dvp_rl.demo import native_unicycle_solver
from dvp_rl.control.ocp import OptimalControlProblem
from dvp_rl.control.pool import SolverPool, SolveSpec, default_workers, solve_states
from dvp_rl.control.terminal import value_terminal
from dvp_rl.value.networks import make_value_network

ENV_IDS = ("dvp_rl/Pendulum-v0", "dvp_rl/CartPole-v0", "dvp_rl/Unicycle-v0")
UNICYCLE = "dvp_rl/Unicycle-v0"


def best_rate(run: Callable[[], None], n: int, repeats: int) -> float:
    """``n`` divided by the best wall time of ``repeats`` calls of ``run``."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def cpu_seconds(children: bool = False) -> float:
    """CPU time (user + system) of this process, or of its ended child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def in_process_rate(spec: SolveSpec, states: np.ndarray, repeats: int) -> tuple[float, float]:
    """``(solves per second, CPU ms per solve)`` in this process."""
    solve_states(spec, states[:2])  # builds this process's problem
    cpu = cpu_seconds()
    rate = best_rate(lambda: solve_states(spec, states), len(states), repeats)
    return rate, 1e3 * (cpu_seconds() - cpu) / (repeats * len(states))


def pool_rate(spec: SolveSpec, states: np.ndarray, repeats: int, **pool_kwargs) -> tuple[float, float]:
    """``(solves per second, CPU ms per solve)`` over a pool, after a warm-up that starts the workers
    and builds their problems.

    The CPU time (the workers' and this process's) is counted for local workers only (ended
    children of this process; NaN for Ray): that of a second pool that only warms up is
    subtracted, so that starting the workers is not counted.
    """

    def run(timed: bool) -> tuple[float, float, str]:
        cpu = cpu_seconds() + cpu_seconds(children=True)
        rate = float("nan")
        with SolverPool(**pool_kwargs) as pool:
            solve_states(spec, states[: 2 * pool.n_workers], pool, chunk_size=1)
            if timed:
                rate = best_rate(lambda: solve_states(spec, states, pool), len(states), repeats)
        return rate, cpu_seconds() + cpu_seconds(children=True) - cpu, pool.backend

    rate, cpu, backend = run(timed=True)
    if backend != "local":
        return rate, float("nan")
    return rate, 1e3 * (cpu - run(timed=False)[1]) / (repeats * len(states))


def native_unicycle(horizon: int, max_iter: int) -> Callable[[np.ndarray], tuple[int, bool]]:
    """One native solve from ``x0`` (the "hold" guess) -> ``(iterations, converged)``."""
    env = gym.make(UNICYCLE).unwrapped
    return native_unicycle_solver(horizon, env, max_iter).solve  # the solver settings of OptimalControlProblem


def interleaved_times(solvers: dict[str, Callable[[np.ndarray], tuple[int, bool]]], states: np.ndarray, repeats: int) -> dict:
    """Per solver ``(best time (N,), iterations (N,), converged (N,))``, the solvers taking turns per state."""
    times = {name: np.full(len(states), np.inf) for name in solvers}
    iters = {name: np.zeros(len(states), dtype=int) for name in solvers}
    conv = {name: np.zeros(len(states), dtype=bool) for name in solvers}
    for _ in range(repeats):
        for i, x0 in enumerate(states):
            for name, solve in solvers.items():
                start = time.perf_counter()
                iters[name][i], conv[name][i] = solve(x0)
                times[name][i] = min(times[name][i], time.perf_counter() - start)
    return {name: (times[name], iters[name], conv[name]) for name in solvers}


def _busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def machine_speedup(k: int, n: int = 3_000_000, repeats: int = 3) -> float:
    """Speed-up of ``k`` processes over 1 on a pure-Python busy loop: what the machine grants now
    (``k`` on ``k`` free cores; about 1 when other jobs hold them)."""
    with multiprocessing.get_context("fork").Pool(k) as pool:
        pool.map(_busy, [1000] * k)
        one = best_rate(lambda: pool.map(_busy, [n]), 1, repeats)
        many = best_rate(lambda: pool.map(_busy, [n] * k), k, repeats)
    return many / one


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--n-states", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--all-guesses", action="store_true", help="solve from every guess of the env's ddp_guesses")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    T, n, k = args.horizon, args.n_states, args.workers
    guesses = None if args.all_guesses else ("hold",)
    print(f"{default_workers()} cores available to this process; {load()} (a machine shared with other jobs: rates vary)")
    print(f"T={T}, gamma=1, {n} start states per env from env.sample_states, "
          f"{'every ddp_guess' if guesses is None else 'one DDP solve per state (hold guess)'}, best of {args.repeats}")  # fmt: skip

    ray = None
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("Ray is not installed (pip install 'dvp_rl[ray]'): no Ray rows")
        else:
            start = time.perf_counter()
            ray.init(num_cpus=k, include_dashboard=False, log_to_driver=False)
            print(f"local Ray with {k} CPUs started in {time.perf_counter() - start:.1f} s")

    calibration = machine_speedup(k)
    rows = {}
    for env_id in ENV_IDS:
        states = gym.make(env_id).unwrapped.sample_states(n, args.seed)
        spec = SolveSpec(env_id, {}, T, 1.0, None, args.max_iter, 1e-9, guesses)
        row = {"1": in_process_rate(spec, states, args.repeats), "local": pool_rate(spec, states, args.repeats, n_workers=k)}
        if ray is not None:
            row["ray"] = pool_rate(spec, states, args.repeats, n_workers=k, backend="ray")
        rows[env_id] = row
        print(f"  {env_id}: done ({load()})")

    native = native_unicycle(T, args.max_iter)
    states = gym.make(UNICYCLE).unwrapped.sample_states(n, args.seed)
    native(states[0])
    native_rate = best_rate(lambda: [native(x0) for x0 in states], n, args.repeats)

    print(f"\nsolves per second (speed-up over 1 worker; target >= 1.8x with {k} workers on {k} free cores)")
    print("and CPU ms per solve (workers and this process): equal in both columns = no parallel overhead")
    header = f"{'env':24s}{'1 worker':>10s}{f'{k} workers':>12s}{'speed-up':>10s}"
    if ray is not None:
        header += f"{f'ray, {k} CPUs':>14s}{'speed-up':>10s}"
    header += f"{'CPU ms, 1':>11s}{f'CPU ms, {k}':>11s}"
    print(header)
    for env_id, row in rows.items():
        (one, cpu_one), (local, cpu_local) = row["1"], row["local"]
        line = f"{env_id:24s}{one:10.1f}{local:12.1f}{local / one:9.2f}x"
        if ray is not None:
            line += f"{row['ray'][0]:14.1f}{row['ray'][0] / one:9.2f}x"
        print(line + f"{cpu_one:11.2f}{cpu_local:11.2f}")
    print(f"{'busy loop (calibration)':24s}{'':22s}{calibration:9.2f}x   (what {k} processes get now on this machine)")
    print(f"{'native unicycle loop':24s}{native_rate:10.1f}"
          f"   (the env bridge at 1 worker: {rows[UNICYCLE]['1'][0] / native_rate:.2f}x of it)")  # fmt: skip

    env = gym.make(UNICYCLE).unwrapped
    torch.manual_seed(args.seed)
    net = make_value_network("gauss_residual", env.nx, net_arch=(64, 64, 64), residual_dim=3, angle_dims=env.angle_dims)
    net.fit_normalisation(env.sample_states(1000, args.seed))
    ocp = OptimalControlProblem(env, T, 1.0, value_terminal(net.export(), env.nx, env.nu), args.max_iter)
    bridge = OptimalControlProblem(env, T, 1.0, None, args.max_iter)

    def with_terminal(x0: np.ndarray) -> tuple[int, bool]:
        result = ocp.solve(x0)
        return result.iterations, result.converged

    def zero_terminal(x0: np.ndarray) -> tuple[int, bool]:
        result = bridge.solve(x0)
        return result.iterations, result.converged

    solvers = {"native Crocoddyl": native, "env bridge, zero terminal": zero_terminal, "learned terminal (3x64)": with_terminal}
    few = states[: max(10, n // 3)]
    interleaved_times(solvers, few[:3], 1)  # warm-up
    results = interleaved_times(solvers, few, args.repeats)
    base_t, base_it, _ = results["native Crocoddyl"]
    base_solve, base_iter = base_t.mean(), base_t.sum() / max(base_it.sum(), 1)
    print(f"\nunicycle, T={T}: learned terminal vs native solve ({len(few)} states, best of {args.repeats}; target within 1.5x)")
    print(f"{'solve':28s}{'ms/solve':>10s}{'iters':>8s}{'ms/iter':>10s}{'converged':>11s}{'x native/solve':>16s}{'x native/iter':>15s}")
    for name, (t, it, conv) in results.items():
        per_iter = t.sum() / max(it.sum(), 1)
        print(f"{name:28s}{1e3 * t.mean():10.3f}{it.mean():8.1f}{1e3 * per_iter:10.4f}{conv.mean():11.0%}"
              f"{t.mean() / base_solve:15.2f}x{per_iter / base_iter:14.2f}x")  # fmt: skip
    print(f"\n{load()}")
    if ray is not None:
        ray.shutdown()


if __name__ == "__main__":
    main()
