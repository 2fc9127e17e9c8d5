"""The ``dvp-rl`` command line: ``dvp-rl demo | train | benchmark | reproduce``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from dvp_rl.demo import run_demo

    import envs

    run_demo(args.env or envs.ENV_IDS, horizon=args.horizon, n_states=args.n_states, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvp-rl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="solve each env with DDP and print V, Vx and solve times")
    demo.add_argument("--env", action="append", help="env id (repeatable; default: all)")
    demo.add_argument("--horizon", type=int, default=50)
    demo.add_argument("--n-states", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
