"""The ``dvp-rl`` command line: ``dvp-rl demo | train | benchmark | zoo | reproduce``.

Arguments are checked when they are parsed, before any work; ``benchmark`` and ``zoo`` also check their
folders, every agent's settings (the JSON overrides against the constructors, budgets >= 1) and that
``--out`` holds no earlier run's results (``--overwrite`` removes them) before any reference is solved
or agent trained. A user error (a bad value, an unknown env id, a missing or damaged file) prints one
line ``dvp-rl: error: ...`` and exits with code 2, argparse's convention; ``--traceback`` shows its
traceback too. Other exceptions (bugs) keep their traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dvp_rl.config import merge_settings

#: exit code of a usage error (argparse's own)
USAGE_ERROR = 2


def _integer(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _number(low: float, high: float = math.inf, low_open: bool = True) -> Callable[[str], float]:
    """An argparse ``type``: a float in ``(low, high]`` (``[low, high]`` when ``low_open`` is False)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{']' if high < math.inf else ')'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}") from None
        if not ((value > low if low_open else value >= low) and value <= high):  # False for NaN too
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}")
        return value

    return parse


def _json_object(text: str) -> dict[str, Any]:
    """An argparse ``type``: a JSON object (``{...}``)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"dt\": 0.05}}', got {text!r} ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"dt\": 0.05}}', got a JSON {type(value).__name__}: {text!r}")
    return value


def _check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Build the env once, so that an argument it does not take is a user error before any work."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    try:
        gym.make(env_id, **env_kwargs).close()
    except TypeError as exc:  # the envs' answer to an unknown keyword (envs.base.reject_unknown_kwargs)
        raise ValueError(f"--env-kwargs {json.dumps(env_kwargs)} do not fit {env_id}: {exc}") from exc


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that report a mistake of the user (a value, a file, an env id), not a bug."""
    import gymnasium as gym

    return (ValueError, FileNotFoundError, gym.error.Error)  # CheckpointError is a ValueError


def _demo(args: argparse.Namespace) -> int:
    from dvp_rl.demo import run_demo

    import envs

    run_demo(args.env or envs.ENV_IDS, horizon=args.horizon, n_states=args.n_states, seed=args.seed)
    return 0


#: the folder of ``dvp-rl train``'s final zip when ``--save`` is not given
DEFAULT_SAVE_FOLDER = "runs"


def _check_save_path(save: str | None) -> None:
    """Check ``--save`` (or the default folder when it is ``None``) before any work."""
    from dvp_rl.config import check_writable_folder

    if save is None:
        check_writable_folder(DEFAULT_SAVE_FOLDER, "the default --save folder")
        return
    path = Path(save) if Path(save).suffix == ".zip" else Path(save + ".zip")  # what DVP.save writes
    if path.is_dir():
        raise ValueError(f"--save {save}: {path} is a folder; give the path of the zip to write")
    check_writable_folder(path.parent, f"--save {save}: its folder")


def _default_save_path(env_id: str, seed: Any) -> Path:
    """A new file ``runs/<env id>__DVP__<seed>.zip`` (the id's ``/`` written ``-``), or with ``_1``,
    ``_2``, ... appended when it exists: reserved (created empty, exclusively), so that neither an
    earlier run's file nor a concurrent run's is replaced."""
    stem = f"{re.sub(r'[^A-Za-z0-9._-]+', '-', env_id)}__DVP__{seed}"
    folder = Path(DEFAULT_SAVE_FOLDER)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        path = folder / (f"{stem}.zip" if n == 0 else f"{stem}_{n}.zip")
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            continue
    raise ValueError(f"{folder} holds {stem}.zip and 9999 numbered copies: give --save")


def _train(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from dvp_rl.agent import DVP
    from dvp_rl.callbacks import GroundTruthEvalCallback
    from dvp_rl.config import check_writable_folder
    from dvp_rl.references.ground_truth import ground_truth

    _check_save_path(args.save)  # the paths first: a typo costs seconds, not a training run
    check_writable_folder(args.tensorboard_log, "--tensorboard-log")
    env_kwargs = args.env_kwargs or {}
    if args.resume:
        agent = DVP.load(args.resume, n_workers=args.n_workers, tensorboard_log=args.tensorboard_log, verbose=1)
    else:
        if env_kwargs:
            _check_env_kwargs(args.env, env_kwargs)
        given = {"horizon": args.horizon, "n_samples": args.n_samples, "gamma": args.gamma,
                 "network": {"kind": args.value_net} if args.value_net else None,
                 "fit": {"max_epochs": args.max_epochs} if args.max_epochs else None}  # fmt: skip
        agent = DVP(args.env, n_workers=args.n_workers, env_kwargs=env_kwargs, seed=args.seed, tensorboard_log=args.tensorboard_log,
                    verbose=1, **{k: v for k, v in given.items() if v is not None})  # fmt: skip
    callbacks = []
    if args.eval_states > 0:
        states = agent.system.sample_states(args.eval_states, np.random.default_rng(10_000 + (args.seed or 0)))
        truth = ground_truth(agent.env_id, states, gamma=agent.gamma, env_kwargs=agent.env_kwargs, n_workers=agent.n_workers, progress=True)
        callbacks.append(GroundTruthEvalCallback(truth, verbose=1))
    start = time.perf_counter()
    agent.learn(args.iterations, callback=callbacks, progress_bar=True, reset_num_timesteps=not args.resume, tb_log_name=args.tb_log_name)
    reserved = None if args.save else _default_save_path(agent.user_id, args.seed if agent.seed is None else agent.seed)
    try:
        path = agent.save(args.save or reserved)
    except BaseException:
        if reserved is not None:
            reserved.unlink(missing_ok=True)
        raise
    print(f"trained {agent.iteration} iterations ({agent.model_evaluations:,} model evaluations, "
          f"{agent.failed_solves} failed solves) in {time.perf_counter() - start:.1f} s; saved {path}")
    return 0


def _check_folders(folders: dict[str, Any]) -> None:
    """Check that each folder (option name -> path; ``None``: not used) can be written, before any work."""
    from dvp_rl.config import check_writable_folder

    for what, folder in folders.items():
        if folder is not None:
            check_writable_folder(folder, what)


def _run_preset(run: Callable[[Any], Any], base: Any, given: dict[str, Any], merged: Sequence[str] = (),
                folders: Callable[[Any], dict[str, Any]] | None = None) -> int:  # fmt: skip
    """The glue of every comparison preset: ``base`` (its default config, or ``QUICK``) updated with the options
    given (``None``: not given; the dicts named in ``merged`` update the base's, key by key at every depth,
    instead of replacing them), its folders checked (``folders(config)``: option name -> folder), run with
    one torch thread (the run checks its agents' settings and its output folder before any work),
    ``summary.md`` printed."""
    given = {k: (merge_settings(getattr(base, k), v) if k in merged and v else v) for k, v in given.items()}
    config = dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})
    if folders is not None:
        _check_folders(folders(config))
    from dvp_rl.value.sobolev import torch_threads

    with torch_threads(1):  # the networks are tiny: one thread trains SB3 and the fits faster on a small machine (rl-zoo3: --num-threads 1)
        result = run(config)
    print((result.out / "summary.md").read_text())
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from dvp_rl.compare.benchmark import QUICK, BenchmarkConfig, run_benchmark

    for env_id, env_kwargs in (args.env_kwargs or {}).items():
        if not isinstance(env_kwargs, dict):
            raise ValueError(f"--env-kwargs maps each env id to a JSON object of its arguments, got {env_id!r}: {env_kwargs!r}")
        _check_env_kwargs(env_id, env_kwargs)
    given = {
        "env_ids": tuple(args.env) if args.env else None, "seeds": tuple(args.seeds) if args.seeds else None,
        "gamma": args.gamma, "dvp_iterations": args.dvp_iterations, "ppo_timesteps": args.ppo_timesteps,
        "budget_seconds": args.budget_seconds, "n_eval_states": args.n_eval_states, "n_closed_loop": args.n_closed_loop,
        "closed_loop_steps": args.closed_loop_steps, "closed_loop_every": args.closed_loop_every, "grid_size": args.grid_size,
        "env_kwargs": args.env_kwargs, "dvp_kwargs": args.dvp_kwargs, "ppo_kwargs": args.ppo_kwargs,
        "n_workers": args.n_workers, "ground_truth_horizon": args.ground_truth_horizon, "out": args.out,
        "ground_truth_cache": args.ground_truth_cache, "overwrite": args.overwrite or None,
    }  # fmt: skip

    def folders(config: BenchmarkConfig) -> dict[str, Any]:
        return {"--out": config.out or "runs", "--ground-truth-cache": config.ground_truth_cache}

    return _run_preset(run_benchmark, QUICK if args.quick else BenchmarkConfig(), given, merged=("dvp_kwargs", "ppo_kwargs"), folders=folders)


def _zoo(args: argparse.Namespace) -> int:
    from dvp_rl.compare.zoo import ZooConfig, run_zoo, zoo_config

    base = zoo_config(args.env, args.quick)
    if not args.sb3_kwargs:  # the quick budgets of agents this run does not train are not its settings
        agents = tuple(args.agents) if args.agents else base.agents
        base = dataclasses.replace(base, sb3_kwargs={k: v for k, v in base.sb3_kwargs.items() if k in agents})
    given = {
        "agents": tuple(args.agents) if args.agents else None, "seed": args.seed,
        "budget_seconds": args.budget_seconds, "n_episodes": args.episodes, "episode_seed": args.episode_seed,
        "dvp_kwargs": args.dvp_kwargs, "sb3_kwargs": args.sb3_kwargs, "n_workers": args.n_workers, "cache_dir": args.cache_dir,
        "out": args.out, "reference": False if args.no_reference else None, "oracle_kwargs": args.oracle_kwargs,
        "curve_episodes": args.curve_episodes, "videos": False if args.no_videos else None, "overwrite": args.overwrite or None,
    }  # fmt: skip

    def folders(config: ZooConfig) -> dict[str, Any]:
        out = Path(config.out) if config.out else config.default_out("stamp")
        return {"--out": config.out or out.parent, "--cache-dir": config.cache_dir or out.parent / "reference"}

    return _run_preset(run_zoo, base, given, merged=("dvp_kwargs", "sb3_kwargs", "oracle_kwargs"), folders=folders)


def _reproduce(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dvp_rl.experiments import EXPERIMENTS, get_experiment

    names = list(EXPERIMENTS) if args.name == "all" else [args.name]
    for name in names:
        run = get_experiment(name)
        out = Path(args.out) / name if args.out and len(names) > 1 else (Path(args.out) if args.out else None)
        run(out_dir=out, seeds=tuple(args.seeds), quick=args.quick)
        where = out or Path("runs/reproduce") / name
        print(f"\n== {name} ==")
        print((where / "table.md").read_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dvp-rl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traceback", action="store_true", help="show the traceback of a user error too")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="solve each env with DDP and print V, Vx and solve times")
    demo.add_argument("--env", action="append",
                      help="a dvp_rl env id, or a Gymnasium id with a differentiable twin (solved on its twin); "
                           "repeatable (default: every dvp_rl env of envs.ENV_IDS)")  # fmt: skip
    demo.add_argument("--horizon", type=_integer(1), default=50)
    demo.add_argument("--n-states", type=_integer(1), default=30)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)

    train = sub.add_parser("train", help="train a DVP agent (a checkpoint is written after every iteration)")
    train.add_argument("--env", default="dvp_rl/Unicycle-v0", help="env id")
    train.add_argument("--env-kwargs", type=_json_object, default=None, help='JSON dict of env arguments, e.g. \'{"dt": 0.05}\'')
    train.add_argument("--iterations", type=_integer(1), default=None, help="DVP iterations (default: the env id's tuned count, else 10)")
    train.add_argument("--horizon", type=_integer(1), default=None, help="DDP horizon (default: the env id's tuned one, else 50)")
    train.add_argument("--n-samples", type=_integer(10), default=None, help="solves per iteration (default: the env id's, else 1000)")
    train.add_argument("--gamma", type=_number(0.0, 1.0), default=None, help="discount (default: the env id's, else 1)")
    train.add_argument("--value-net", default=None, choices=["gauss_residual", "feed_forward"], help="network kind (default gauss_residual)")
    train.add_argument("--max-epochs", type=_integer(1), default=None, help="epochs per fit (default: the env id's, else 300)")
    train.add_argument("--n-workers", type=_integer(1), default=None, help="solver processes (default: all cores)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--eval-states", type=_integer(0), default=100, help="ground-truth states for eval/* (0: none)")
    train.add_argument("--tensorboard-log", default="runs/tensorboard", help="folder of the tensorboard runs (default runs/tensorboard)")
    train.add_argument("--tb-log-name", default="DVP")
    train.add_argument("--save", default=None,
                       help="path of the final zip, replaced if it exists (default: a new file runs/<env id>__DVP__<seed>.zip, the id's "
                            "'/' written '-'; when that file exists, _1, _2, ... is appended: an earlier run's file is never replaced)")  # fmt: skip
    train.add_argument("--resume", default=None, help="a checkpoint zip to continue from")
    train.set_defaults(func=_train)

    bench = sub.add_parser(
        "benchmark", help="DVP against PPO: value error vs ground truth, closed-loop cost, transitions, wall-clock",
        description="Train DVP and PPO on the same tasks and seeds, evaluate both against ground truth; writes "
        "tensorboard runs, figures, summary.md and summary.json to --out. Unset options take the defaults of "
        "dvp_rl.compare.benchmark.BenchmarkConfig (or of QUICK with --quick) and the per-env settings of ENV_SETTINGS.",
    )  # fmt: skip
    bench.add_argument("--quick", action="store_true",
                       help="the unicycle, seed 0, small budgets (a few minutes on 2 cores); other options override it")
    bench.add_argument("--env", action="append", help="env id (repeatable; default: pendulum, cart-pole, unicycle)")
    bench.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: 0 1 2)")
    bench.add_argument("--gamma", type=_number(0.0, 1.0), help="discount of both algorithms and the ground truth (default 0.95)")
    bench.add_argument("--dvp-iterations", type=_integer(1), help="DVP iteration budget (default: per env)")
    bench.add_argument("--ppo-timesteps", type=_integer(1), help="PPO timestep budget (default: n_timesteps of baselines/hyperparams.yml)")
    bench.add_argument("--budget-seconds", type=_number(0.0), help="wall-clock cap of each algorithm's training (default 600)")
    bench.add_argument("--n-eval-states", type=_integer(1), help="validation states with ground truth (default 100)")
    bench.add_argument("--n-closed-loop", type=_integer(0), help="closed-loop start states (default 5)")
    bench.add_argument("--closed-loop-steps", type=_integer(1), help="closed-loop length (default: ceil(3 / (1 - gamma)))")
    bench.add_argument("--closed-loop-every", type=_integer(0), help="closed loop at every k-th evaluation; 0: at the end only (default 1)")
    bench.add_argument("--grid-size", type=_integer(2), help="value maps on a G x G grid (default 15)")
    bench.add_argument("--env-kwargs", type=_json_object,
                       help='JSON dict of gymnasium.make arguments per env id, e.g. \'{"dvp_rl/Pendulum-v0": {"max_torque": 6}}\'')
    bench.add_argument("--dvp-kwargs", type=_json_object, help='JSON dict of DVP arguments for every env, e.g. \'{"n_samples": 100}\'')
    bench.add_argument("--ppo-kwargs", type=_json_object, help='JSON dict of PPO settings for every env, e.g. \'{"n_steps": 256}\'')
    bench.add_argument("--n-workers", type=_integer(1), help="solver processes of DVP and the ground truth (default 2)")
    bench.add_argument("--ground-truth-horizon", type=_integer(1), help="ground-truth DDP horizon (default: gamma^T <= 1e-4)")
    bench.add_argument("--ground-truth-cache", help="ground-truth cache folder (default runs/ground_truth)")
    bench.add_argument("--out", help="output folder (default runs/<env>__benchmark__<timestamp>, _1, _2, ... appended if it exists); "
                                     "one that holds an earlier run's results is refused")
    bench.add_argument("--overwrite", action="store_true", help="remove an earlier run's results from --out first")
    bench.set_defaults(func=_benchmark)

    zoo = sub.add_parser(
        "zoo", help="DVP against SB3's SAC, TD3 and PPO on a Gymnasium id or dvp_rl/PandaReach-v0, scored by its own reward "
                    "(rl-zoo3 style)",
        description="Train DVP (from the model, zero env interactions) and SAC, TD3, PPO (rl-zoo3's settings) under the same "
                    "wall-clock cap, then score every agent on the same fixed-seed episodes of the real env, against the "
                    "optimal return of each episode (and its success, where the env reports it). Unset options take the "
                    "env id's settings (dvp_rl.compare.zoo.zoo_config: ZooConfig or QUICK, with the id's ENV_PRESETS entry).",
    )  # fmt: skip
    zoo.add_argument("--env", help="a Gymnasium id with a differentiable twin, or a dvp_rl id such as dvp_rl/PandaReach-v0 "
                                   "(default Pendulum-v1)")  # fmt: skip
    zoo.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run: every output)")
    zoo.add_argument("--agents", nargs="+", choices=["DVP", "SAC", "TD3", "PPO", "MPC"],
                     help="agents to train (default: DVP SAC TD3 PPO; on dvp_rl/PandaReach-v0 also MPC: DVP's controller without "
                          "a learned value)")  # fmt: skip
    zoo.add_argument("--seed", type=_integer(0), help="training seed of every agent (default 0)")
    zoo.add_argument("--budget-seconds", type=_number(0.0), help="wall-clock cap of each agent's training (default 600)")
    zoo.add_argument("--episodes", type=_integer(1), help="evaluation episodes (default 100)")
    zoo.add_argument("--episode-seed", type=_integer(0), help="reset seed of the first episode, the others follow (default 1000)")
    zoo.add_argument("--dvp-kwargs", type=_json_object, help='JSON dict of DVP arguments and "iterations", e.g. \'{"n_samples": 500}\'')
    zoo.add_argument("--sb3-kwargs", type=_json_object, help='JSON dict per agent of hyperparams.yml overrides, e.g. \'{"SAC": {"n_timesteps": 5000}}\'')
    zoo.add_argument("--n-workers", type=_integer(1), help="DVP's solver processes (default 2)")
    zoo.add_argument("--no-reference", action="store_true", help="no optimal reference: regret and critic errors are n/a")
    zoo.add_argument("--oracle-kwargs", type=_json_object, help='JSON dict of DDP oracle settings over the env\'s, e.g. \'{"horizon": 30}\'')
    zoo.add_argument("--cache-dir", help="cache folder of the optimal reference (default <out>/../reference)")
    zoo.add_argument("--curve-episodes", type=_integer(0),
                     help="episodes of the success-rate-vs-wall-clock curve during training (0: none; default: the env id's, 0 but "
                          "on dvp_rl/PandaReach-v0)")  # fmt: skip
    zoo.add_argument("--no-videos", action="store_true", help="no GIF of each agent's first episode")
    zoo.add_argument("--out", help="output folder (default runs/zoo/<env>__<timestamp>, _1, _2, ... appended if it exists); "
                                   "one that holds an earlier run's results is refused")  # fmt: skip
    zoo.add_argument("--overwrite", action="store_true", help="remove an earlier run's results from --out first")
    zoo.set_defaults(func=_zoo)

    reproduce = sub.add_parser("reproduce", help="reproduce one of the paper's experiments (figures, table, tensorboard)")
    reproduce.add_argument("name", help="convergence | horizon | noise | sobolev | architecture | ppo | mpc | all")
    reproduce.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    reproduce.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run: every output, finite numbers)")
    reproduce.add_argument("--out", default=None, help="output folder (default runs/reproduce/<name>)")
    reproduce.set_defaults(func=_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (:data:`USAGE_ERROR` for a user error, see the module docstring)."""
    args = build_parser().parse_args(argv)  # a bad argument exits here with code 2, before any work
    try:
        return int(args.func(args))
    except _user_errors() as exc:
        if args.traceback:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"dvp-rl: error: {message}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
