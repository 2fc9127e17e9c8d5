"""How much a learned terminal value costs: per evaluation, and inside a unicycle DDP.

Prints
* the time per single-state ``numpy_value_derivatives`` call (what the terminal model
  evaluates at every ``calcDiff``), ``numpy_value`` (every ``calc``), the torch
  ``value_derivatives`` and a torch.autograd.functional jacobian + hessian of the same
  network, for both architectures;
* the time of a horizon-T unicycle DDP solve with no terminal against the same
  problem ending on a zero cost written in Python (the floor of any Python terminal:
  same iterations, only the callbacks into Python added) and on a
  :class:`dvp_rl.control.terminal.ValueTerminalModel`, over start states
  from ``env.sample_states`` (best of 3 per start, the problems interleaved).

The networks are freshly initialised (feature statistics fitted to the start
states), so the terminal changes the problem and the iteration counts: the time per
iteration is printed next to the time per solve.

    python benchmarks/terminal_speed.py [--n-states 50] [--horizon 50] [--net-arch 64 64 64] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import functools
import timeit

import crocoddyl
import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the ids)
from dvp_rl.control.ocp import OptimalControlProblem
from dvp_rl.value import kernel as compiled
from dvp_rl.control.terminal import ValueTerminalModel
from dvp_rl.value.networks import VALUE_NETWORK_KINDS, ValueNetwork, make_value_network, numpy_value, numpy_value_derivatives


def per_call_us(fn, min_time: float = 0.3) -> float:
    """Best-of-5 time of one call of ``fn`` in microseconds."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(number, int(number * min_time / 0.2))
    return 1e6 * min(timer.repeat(repeat=5, number=number)) / number


def evaluation_times(net: ValueNetwork, x: np.ndarray) -> dict[str, float]:
    arrays = net.export()
    xt = torch.tensor(x[None])
    x1 = torch.tensor(x)
    one = lambda z: net(z[None])[0]  # noqa: E731

    def autograd_functional() -> None:
        torch.autograd.functional.jacobian(one, x1)
        torch.autograd.functional.hessian(one, x1)

    return {
        "numpy V,Vx,Vxx": per_call_us(lambda: numpy_value_derivatives(arrays, x)),
        "numpy V": per_call_us(lambda: numpy_value(arrays, x)),
        "torch value_derivatives": per_call_us(lambda: net.value_derivatives(xt, create_graph=False)),
        "torch autograd jac+hess": per_call_us(autograd_functional),
    }


class PythonZeroTerminal(crocoddyl.ActionModelAbstract):
    """A zero terminal cost written in Python: the same problem as no terminal, so its
    extra time per iteration is the floor that any Python terminal model pays (Crocoddyl
    calling back into Python for ``calc``/``calcDiff``)."""

    def __init__(self, nx: int, nu: int) -> None:
        crocoddyl.ActionModelAbstract.__init__(self, crocoddyl.StateVector(nx), nu, 0)

    def calc(self, data, x, u=None) -> None:
        data.cost = 0.0
        data.xnext[:] = x

    def calcDiff(self, data, x, u=None) -> None:
        pass


def solve_times(ocps: dict[str, OptimalControlProblem], x0s: np.ndarray, repeats: int = 3) -> dict[str, tuple]:
    """Per-terminal ``(times (N,) in s, iterations (N,), converged (N,))``, best of ``repeats`` per start.

    The problems are solved in turn from each start, so that a change of machine load
    between them affects them alike.
    """
    times = {name: np.full(len(x0s), np.inf) for name in ocps}
    iters = {name: np.zeros(len(x0s), dtype=int) for name in ocps}
    conv = {name: np.zeros(len(x0s), dtype=bool) for name in ocps}
    for _ in range(repeats):
        for i, x0 in enumerate(x0s):
            for name, ocp in ocps.items():
                start = timeit.default_timer()
                result = ocp.solve(x0)
                times[name][i] = min(times[name][i], timeit.default_timer() - start)
                iters[name][i], conv[name][i] = result.iterations, result.converged
    return {name: (times[name], iters[name], conv[name]) for name in ocps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-states", type=int, default=50)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (single-state calls gain nothing from more, and slow down badly on busy cores)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)

    env = gym.make("dvp_rl/Unicycle-v0").unwrapped
    torch.manual_seed(args.seed)
    sample = env.sample_states(1024, args.seed)
    nets = {}
    for kind in VALUE_NETWORK_KINDS:
        net = make_value_network(kind, env.nx, net_arch=tuple(args.net_arch), angle_dims=env.angle_dims)
        net.fit_normalisation(sample)
        nets[kind] = net

    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads; net_arch={tuple(args.net_arch)}, nx={env.nx}")
    print("\nsingle-state evaluation, microseconds per call")
    x = sample[0]
    rows = {kind: evaluation_times(net, x) for kind, net in nets.items()}
    columns = list(next(iter(rows.values())))
    print(f"{'':16s}" + "".join(f"{c:>26s}" for c in columns))
    for kind, row in rows.items():
        print(f"{kind:16s}" + "".join(f"{row[c]:26.1f}" for c in columns))

    print(f"\nunicycle DDP, T={args.horizon}, gamma={args.gamma}, {args.n_states} starts from env.sample_states")
    x0s = env.sample_states(args.n_states, args.seed + 1)
    terminals = {"none": None, "python zero": PythonZeroTerminal(env.nx, env.nu)}
    for kind, net in nets.items():
        arrays = net.export()
        terminals[f"{kind} (numpy)"] = functools.partial(ValueTerminalModel, arrays, env.nx, env.nu, use_compiled=False)
        if kind == "gauss_residual" and compiled.AVAILABLE:
            terminals[f"{kind} (numba)"] = functools.partial(ValueTerminalModel, arrays, env.nx, env.nu, use_compiled=True)
    ocps = {name: OptimalControlProblem(env, args.horizon, gamma=args.gamma, terminal=t) for name, t in terminals.items()}
    solve_times(ocps, x0s[:3], repeats=1)  # warm-up
    results = solve_times(ocps, x0s)
    base_t, base_it, _ = results["none"]
    base = (base_t.mean(), base_t.sum() / max(base_it.sum(), 1))
    print(f"{'terminal':24s}{'ms/solve':>12s}{'iters':>8s}{'ms/iter':>10s}{'converged':>11s}{'solve ratio':>13s}{'iter ratio':>12s}")
    for name, (t, it, conv) in results.items():
        per_iter = t.sum() / max(it.sum(), 1)
        print(
            f"{name:24s}{1e3 * t.mean():12.3f}{it.mean():8.1f}{1e3 * per_iter:10.4f}{conv.mean():11.0%}"
            f"{t.mean() / base[0]:13.2f}{per_iter / base[1]:12.2f}"
        )

if __name__ == "__main__":
    main()
