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


def _train(args: argparse.Namespace) -> int:
    import json
    import time

    import numpy as np

    from dvp_rl.agent import DVP
    from dvp_rl.callbacks import GroundTruthEvalCallback
    from dvp_rl.ground_truth import ground_truth

    env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    if args.resume:
        agent = DVP.load(args.resume, n_workers=args.n_workers, tensorboard_log=args.tensorboard_log, verbose=1)
    else:
        agent = DVP(
            args.env, horizon=args.horizon, n_samples=args.n_samples, gamma=args.gamma, value_net=args.value_net,
            max_epochs=args.max_epochs, n_workers=args.n_workers, env_kwargs=env_kwargs, seed=args.seed,
            tensorboard_log=args.tensorboard_log, verbose=1,
        )
    callbacks = []
    if args.eval_states > 0:
        states = agent.system.sample_states(args.eval_states, np.random.default_rng(10_000 + (args.seed or 0)))
        truth = ground_truth(agent.env_id, states, gamma=agent.gamma, env_kwargs=agent.env_kwargs, n_workers=agent.n_workers, progress=True)
        callbacks.append(GroundTruthEvalCallback(truth, verbose=1))
    start = time.perf_counter()
    agent.learn(args.iterations, callback=callbacks, progress_bar=True, reset_num_timesteps=not args.resume, tb_log_name=args.tb_log_name)
    path = agent.save(args.save or f"runs/{agent.env_id.split('/')[-1]}__DVP__{args.seed}.zip")
    print(f"trained {agent.iteration} iterations ({agent.num_timesteps} simulator transitions, "
          f"{agent.failed_solves} failed solves) in {time.perf_counter() - start:.1f} s; saved {path}")
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

    train = sub.add_parser("train", help="train a DVP agent (a checkpoint is written after every iteration)")
    train.add_argument("--env", default="dvp_rl/Unicycle-v0", help="env id")
    train.add_argument("--env-kwargs", default="", help='JSON dict of env arguments, e.g. \'{"dt": 0.05}\'')
    train.add_argument("--iterations", type=int, default=10)
    train.add_argument("--horizon", type=int, default=50)
    train.add_argument("--n-samples", type=int, default=1000)
    train.add_argument("--gamma", type=float, default=1.0)
    train.add_argument("--value-net", default="gauss_residual", choices=["gauss_residual", "feed_forward"])
    train.add_argument("--max-epochs", type=int, default=300)
    train.add_argument("--n-workers", type=int, default=None, help="solver processes (default: all cores)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--eval-states", type=int, default=100, help="ground-truth states for eval/* (0: none)")
    train.add_argument("--tensorboard-log", default="runs/tensorboard")
    train.add_argument("--tb-log-name", default="DVP")
    train.add_argument("--save", default=None, help="path of the final zip (default runs/<env>__DVP__<seed>.zip)")
    train.add_argument("--resume", default=None, help="a checkpoint zip to continue from")
    train.set_defaults(func=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
