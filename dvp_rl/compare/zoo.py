"""DVP against Stable-Baselines3's SAC, TD3 and PPO on Gymnasium's own tasks, scored as the field scores them.

Every agent trains under the same wall-clock cap (DVP from the model alone: zero env
interactions; SAC, TD3 and PPO with rl-zoo3's hyper-parameters from ``baselines/hyperparams.yml``),
then runs one deterministic episode per fixed seed in the real Gymnasium env
(:func:`dvp_rl.control.rollout.evaluate_episodes`), scored by the env's own reward. The table
gives mean ± std return, the worst episode, the optimal return of the same episodes from a
reference the benchmark computes (:data:`REFERENCES`) and the regret, median ms per control
step, training wall-clock, env interactions and model evaluations (DVP's DDP node evaluations;
different things, reported apart), next to published rows (:data:`PUBLISHED`). A critic
comparison (each agent's value estimate at the episode starts against the reference value of
the same discount) follows the headline::

    dvp-rl zoo --env Pendulum-v1                    # the full run (100 episodes, 10-minute caps)
    dvp-rl zoo --env Pendulum-v1 --quick            # a smoke run
    dvp-rl zoo --env InvertedDoublePendulum-v5 --episodes 20
    dvp-rl zoo --env Reacher-v5 --no-reference      # no optimum: regret and critic errors are "n/a"

The references: ``Pendulum-v1``'s is exact (grid value iteration with its step and reward);
the MuJoCo ids' is a DDP oracle (:func:`ddp_oracle_reference`), an *estimate* of each
episode's optimal return that an agent can beat (negative regret), not a bound. An env
without a reference (or a run with ``reference=False``) reports no regret and no critic error.

Outputs under ``<out>``: ``summary.md``, ``summary.json``, ``returns.png`` (per-episode
return of every agent against the optimum), the trained agents ``<agent>.zip`` and tensorboard
runs ``tb/<agent>`` (the scores as scalars, the per-episode returns as a histogram, the figure,
the settings) beside the agents' own training logs ``tb_internal/``.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from dvp_rl.control.rollout import EpisodeResults, evaluate_episodes
from dvp_rl.references.oracle import ORACLES, OracleEpisode, OracleSettings, oracle_episode, oracle_returns
from dvp_rl.checkpoint import jsonable

#: published rows (deterministic policy, mean ± std return; budget; source), the reference column.
#: Other episodes than the run's, and other statistics: rl-zoo3 scores one trained model over many
#: episodes; Tianshou's MuJoCo benchmark reports the best test average seen during training (1M
#: steps), averaged over 10 seeds, on the -v3/-v4 envs (whose Reacher reward was taken before the step).
PUBLISHED: dict[str, dict[str, tuple[float, float, str, str]]] = {
    "Pendulum-v1": {
        "TQC": (-151.3, 87.9, "20k steps", "rl-zoo3"),
        "TD3": (-151.9, 90.2, "20k steps", "rl-zoo3"),
        "SAC": (-157.0, 88.7, "20k steps", "rl-zoo3"),
        "PPO": (-172.2, 104.2, "100k steps", "rl-zoo3"),
    },
    "InvertedDoublePendulum-v5": {
        "SAC": (9359.5, 0.4, "1M steps, max average over 10 seeds", "Tianshou"),
        "TD3": (9349.2, 14.3, "1M steps, max average over 10 seeds", "Tianshou"),
        "PPO": (9231.3, 270.4, "1M steps, max average over 10 seeds", "Tianshou"),
    },
    "Reacher-v5": {
        "SAC": (-2.6, 0.2, "1M steps, max average over 10 seeds", "Tianshou"),
        "TD3": (-2.7, 0.2, "1M steps, max average over 10 seeds", "Tianshou"),
        "PPO": (-4.1, 0.3, "1M steps, max average over 10 seeds", "Tianshou"),
    },
}
#: the agents a run can train
AGENTS = ("DVP", "SAC", "TD3", "PPO")


@dataclass(frozen=True)
class ZooConfig:
    """What one side-by-side run does.

    :param env_id: a Gymnasium id with a differentiable twin (:data:`envs.twins.TWINS`)
    :param agents: among :data:`AGENTS`
    :param seed: the training seed of every agent
    :param budget_seconds: the wall-clock cap of each agent's training
    :param n_episodes: evaluation episodes, seeds ``episode_seed .. episode_seed + n_episodes - 1``
    :param episode_seed: the first episode seed
    :param dvp_kwargs: override DVP's entry in ``dvp_rl/defaults.yml`` (constructor arguments
        and ``iterations``)
    :param sb3_kwargs: per agent, override its ``hyperparams.yml`` entry (e.g. ``{"SAC": {"n_timesteps": 500}}``)
    :param n_workers: DVP's solver processes
    :param reference: score against the env's optimal reference (:data:`REFERENCES`); ``False``, or
        an env without one: no regret and no critic error ("n/a")
    :param cache_dir: folder of the reference's cache (``None``: ``<out>/../reference``)
    :param out: output folder (``None``: ``runs/zoo/<env>__<timestamp>``)
    :param verbose: 0 silent, 1 a line per agent
    """

    env_id: str = "Pendulum-v1"
    agents: tuple[str, ...] = AGENTS
    seed: int = 0
    budget_seconds: float = 600.0
    n_episodes: int = 100
    episode_seed: int = 1000
    dvp_kwargs: dict[str, Any] = field(default_factory=dict)
    sb3_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_workers: int = 2
    reference: bool = True
    cache_dir: str | None = None
    out: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        from envs.twins import TWINS

        if self.env_id not in TWINS:
            raise ValueError(f"no differentiable twin of {self.env_id!r} (DVP needs one); supported ids: {sorted(TWINS)}")
        unknown = sorted(set(self.agents) - set(AGENTS))
        if unknown or not self.agents:
            raise ValueError(f"agents must be among {list(AGENTS)}, got {list(self.agents)}")
        stray = sorted(set(self.sb3_kwargs) - (set(self.agents) - {"DVP"}))
        if stray:
            raise ValueError(f"sb3_kwargs given for {stray}, which are not SB3 agents of this run {list(self.agents)}")
        if not self.budget_seconds > 0:
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds}")
        if int(self.n_episodes) < 1:
            raise ValueError(f"n_episodes must be >= 1, got {self.n_episodes}")
        if int(self.n_workers) < 1:
            raise ValueError(f"n_workers must be >= 1, got {self.n_workers}")

    @property
    def episode_seeds(self) -> np.ndarray:
        """The evaluation episodes' reset seeds, (n_episodes,)."""
        return np.arange(self.episode_seed, self.episode_seed + int(self.n_episodes))

    def out_dir(self) -> Path:
        """The output folder (see ``out``)."""
        if self.out is not None:
            return Path(self.out)
        return Path("runs") / "zoo" / f"{self.env_id}__{datetime.now().strftime('%Y%m%d-%H%M%S')}"


# ---------------------------------------------------------------------------- references
class Reference(NamedTuple):
    """An env's optimal reference.

    ``name``: what it is, in words; ``optimal_returns(seeds) -> (N,)``: the optimal return of
    those episodes; ``start_states(seeds) -> (N, nx)``: the twin's states the episodes start from;
    ``value(states, gamma) -> (N,)``: the optimal cost-to-go of that discount from those twin
    states, in the twin's cost (see :data:`REWARD_OFFSETS`).
    """

    name: str
    optimal_returns: Callable[[np.ndarray], np.ndarray]
    start_states: Callable[[np.ndarray], np.ndarray]
    value: Callable[[np.ndarray, float], np.ndarray]


#: Gymnasium id -> ``c`` where its reward per step is ``c - twin cost`` (absent: 0, the twin's cost is
#: ``-reward``). InvertedDoublePendulum-v5: the alive bonus 10 less the distance penalty (2 - 1.2)^2
#: of the upright tip (the twin's cost is the regret against the best reward,
#: :class:`envs.mjcf.inverted_double_pendulum.InvertedDoublePendulumTwin`). A critic of the reward's discounted return ``Q``
#: is a cost-to-go ``c / (1 - gamma) - Q`` in the twin's cost.
REWARD_OFFSETS: dict[str, float] = {"InvertedDoublePendulum-v5": 10.0 - (2.0 - 1.2) ** 2}


def twin_start_states(env_id: str, seeds: np.ndarray) -> np.ndarray:
    """The twin's states from which ``gymnasium.make(env_id).reset(seed=s)`` starts, for each seed; (N, nx)."""
    import gymnasium as gym

    from envs.twins import twin_for

    twin = twin_for(env_id)
    env = gym.make(env_id)
    try:
        return np.array([twin.observation_to_state(env.reset(seed=int(seed))[0]) for seed in seeds])
    finally:
        env.close()


def pendulum_reference(cache_dir: Path, n_workers: int = 1) -> Reference:
    """Grid value iteration with Pendulum-v1's exact step and reward (:mod:`dvp_rl.references.value_iteration`).

    ``optimal_returns``: the best known return of each episode, the larger of the grid's
    optimum ``-V_200(x0)`` and the return of the grid's greedy controller played in the real env
    (:meth:`~dvp_rl.references.value_iteration.PendulumValue.predict`). The grid's value is interpolated, so
    near the cliffs (starts from which one more swing is or is not needed) it can be pessimistic
    by tens: its own greedy controller then scores above it. ``value``: the grid's value.
    """
    from dvp_rl.references import value_iteration as vi

    episode = vi.solve_pendulum(cache_dir=cache_dir)
    tables: dict[float, vi.PendulumValue] = {1.0: episode}

    def value(states: np.ndarray, gamma: float) -> np.ndarray:
        if gamma not in tables:  # the discounted infinite-horizon value, to 1e-4 of its tail
            horizon = int(math.ceil(math.log(1e-4) / math.log(gamma)))
            result = vi.value_iteration(episode.grid, vi.pendulum_step, episode.torques[:, None], horizon, gamma, tol=1e-6)
            tables[gamma] = vi.PendulumValue(result.values, episode.torques, horizon)
        return tables[gamma].value(states)

    return Reference(
        f"grid value iteration ({episode.values.shape[0]}x{episode.values.shape[1]} states, {len(episode.torques)} torques, T={episode.horizon}); "
        "per episode the better of its optimum and its greedy controller's return in the real env",
        lambda seeds: np.maximum(episode.optimal_return(vi.pendulum_start_states(seeds)),
                                 evaluate_episodes(episode, "Pendulum-v1", seeds).returns),
        vi.pendulum_start_states,
        value,
    )


def ddp_oracle_reference(env_id: str, cache_dir: Path, n_workers: int = 1) -> Reference:
    """The reference of an env without an exact one: a DDP oracle on its twin.

    ``optimal_returns``: :func:`oracle_returns` with the env's :data:`ORACLES` settings, an
    *estimate* of each episode's optimal return (DDP finds local optima, and the twin is not the
    real env to the last digit): an agent can score above it (negative regret), and it bounds
    nothing. ``value``: :func:`dvp_rl.references.ground_truth.ground_truth` on the twin (multi-start DDP of the
    twin's ``value_horizon`` steps, after which its running cost has died out; the same horizon for
    every discount), cached in ``cache_dir``.
    """
    from dvp_rl.references.ground_truth import ground_truth
    from envs.twins import twin_for

    settings = ORACLES[env_id]
    twin = twin_for(env_id)
    horizon = int(twin.make().unwrapped.value_horizon)

    def value(states: np.ndarray, gamma: float) -> np.ndarray:
        truth = ground_truth(twin.twin_id, states, gamma, horizon, dict(twin.twin_kwargs), cache_dir=cache_dir, n_workers=n_workers)
        return truth.V

    return Reference(
        f"DDP oracle: receding-horizon DDP on the twin (H={settings.horizon}, multi-start) played in the real env, "
        f"an estimate; values: DDP of T={horizon} on the twin",
        lambda seeds: oracle_returns(env_id, seeds, settings, cache_dir, n_workers),
        lambda seeds: twin_start_states(env_id, seeds),
        value,
    )


#: Gymnasium id -> its reference, ``builder(cache_dir, n_workers)`` (built once per run)
REFERENCES: dict[str, Callable[[Path, int], Reference]] = {
    "Pendulum-v1": pendulum_reference,
    **{env_id: functools.partial(ddp_oracle_reference, env_id) for env_id in ORACLES},
}

#: ``dvp-rl zoo --quick``: tiny budgets, a smoke run of every output
QUICK = ZooConfig(budget_seconds=30.0, n_episodes=5, dvp_kwargs={"iterations": 2, "n_samples": 100, "fit": {"max_epochs": 50}},
                  sb3_kwargs={"SAC": {"n_timesteps": 2000}, "TD3": {"n_timesteps": 2000}, "PPO": {"n_timesteps": 8192}})  # fmt: skip


# ---------------------------------------------------------------------------- agents
class AgentResult(NamedTuple):
    """One trained agent, scored.

    ``episodes``: its evaluation; ``train_s``: training wall-clock; ``env_interactions``:
    env steps of training (DVP: 0); ``model_evaluations``: DDP node evaluations (SB3: 0);
    ``hit_cap``: the wall-clock cap stopped training; ``critic``: its cost-to-go estimate at
    the episode starts (N,), in the twin's cost (:data:`REWARD_OFFSETS`); ``gamma``: the discount
    that estimate is of; ``settings``: what built it.
    """

    name: str
    episodes: EpisodeResults
    train_s: float
    env_interactions: int
    model_evaluations: int
    hit_cap: bool
    critic: np.ndarray
    gamma: float
    settings: dict[str, Any]


def train_dvp(config: ZooConfig, out: Path) -> tuple[Any, float, int, bool, dict[str, Any]]:
    """DVP on the env's twin under the cap: ``(agent, seconds, model evaluations, hit cap, settings)``.

    ``DVP(env_id)`` starts from the id's tuned settings (``dvp_rl/defaults.yml``); ``config.dvp_kwargs``
    override them (sections merged field by field), ``iterations`` the length of ``learn``."""
    from baselines.sb3 import WallClockCap
    from dvp_rl.agent import DVP

    kwargs = dict(config.dvp_kwargs)
    iterations = kwargs.pop("iterations", None)
    agent = DVP(config.env_id, seed=config.seed, n_workers=config.n_workers, checkpoint_dir=None,
                tensorboard_log=str(out / "tb_internal"), **kwargs)  # fmt: skip
    iterations = agent.default_iterations if iterations is None else int(iterations)
    cap = WallClockCap(config.budget_seconds)
    start = time.perf_counter()
    agent.learn(iterations, callback=cap, tb_log_name="DVP")
    stopped = cap.hit and agent.iteration < iterations  # the cap is checked after each iteration, the last one included
    return agent, time.perf_counter() - start, int(agent.num_timesteps), stopped, {**agent.hyperparameters(), "iterations": iterations}


def train_sb3(name: str, config: ZooConfig, out: Path) -> tuple[Any, float, int, bool, dict[str, Any]]:
    """An SB3 agent with rl-zoo3's settings under the cap: ``(model, seconds, env steps, hit cap, settings)``."""
    from baselines.sb3 import learn_capped, load_hyperparams, make_sb3

    overrides = dict(config.sb3_kwargs.get(name, {}))
    settings = {**load_hyperparams(config.env_id, name), **overrides}
    timesteps = int(overrides.pop("n_timesteps", settings["n_timesteps"]))
    model = make_sb3(name, config.env_id, seed=config.seed, tensorboard_log=str(out / "tb_internal"), **overrides)
    run = learn_capped(model, timesteps, config.budget_seconds, tb_log_name=name)
    return model, run.wall_s, run.env_steps, run.hit_cap, {**settings, "n_timesteps": timesteps, "gamma": model.gamma}


def _critic(name: str, model: Any, states: np.ndarray, env_id: str) -> tuple[np.ndarray, float]:
    """The agent's cost-to-go estimate at the twin states ``states`` (N, nx), in the twin's cost, and its discount."""
    if name == "DVP":
        return np.asarray(model.value(states)), float(model.gamma)
    from baselines.sb3 import critic_costs
    from envs.twins import TWINS

    gamma = float(model.gamma)
    costs = critic_costs(model, TWINS[env_id].state_to_observation(states))
    return costs + REWARD_OFFSETS.get(env_id, 0.0) / (1.0 - gamma), gamma


# ---------------------------------------------------------------------------- the run
class ZooResult(NamedTuple):
    """``out``: the output folder; ``summary``: what ``summary.json`` holds; ``agents``: by name."""

    out: Path
    summary: dict[str, Any]
    agents: dict[str, AgentResult]


def run_zoo(config: ZooConfig) -> ZooResult:
    """Train every agent of ``config`` under the cap, score them on the same episodes, write the outputs."""
    from dvp_rl.compare.tb import summary_writer

    out = config.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    reference = None
    if config.reference and config.env_id in REFERENCES:
        cache = Path(config.cache_dir) if config.cache_dir else out.parent / "reference"
        reference = REFERENCES[config.env_id](cache, int(config.n_workers))
    seeds = config.episode_seeds
    starts = reference.start_states(seeds) if reference is not None else twin_start_states(config.env_id, seeds)
    optimum = reference.optimal_returns(seeds) if reference is not None else None
    if config.verbose and optimum is not None:
        print(f"reference ({time.perf_counter() - started:.0f} s): {reference.name}; optimal mean return {np.mean(optimum):.2f}", flush=True)
    results: dict[str, AgentResult] = {}
    for name in config.agents:
        train = train_dvp if name == "DVP" else (lambda c, o, n=name: train_sb3(n, c, o))
        model, seconds, count, hit, settings = train(config, out)
        model.save(out / f"{name}.zip")  # DVP: dvp_rl's checkpoint; SB3: its own format (a pickle: load only your own files)
        episodes = evaluate_episodes(model, config.env_id, seeds)
        critic, gamma = _critic(name, model, starts, config.env_id)
        env_steps, evaluations = (0, count) if name == "DVP" else (count, 0)
        results[name] = AgentResult(name, episodes, seconds, env_steps, evaluations, hit, critic, gamma, settings)
        if config.verbose:
            print(f"{name}: trained {seconds:.0f} s{' (cap hit)' if hit else ''}, {episodes.summary()}", flush=True)
    summary = summarize(config, reference, optimum, results, time.perf_counter() - started, starts)
    (out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2, allow_nan=True))
    (out / "summary.md").write_text(summary_markdown(summary))
    image = _returns_figure(config, optimum, results, out / "returns.png")
    for name, result in results.items():
        with summary_writer(out / "tb" / name, replace=True) as writer:
            row = summary["agents"][name]
            for key in ("mean_return", "std_return", "worst_return", "mean_regret", "median_step_ms", "max_step_ms", "train_s",
                        "env_interactions", "model_evaluations", "critic_rel_mse"):  # fmt: skip
                if row[key] is not None:  # no reference: no regret, no critic error
                    writer.add_scalar(f"zoo/{key}", float(row[key]), 0)
            writer.add_histogram("zoo/episode_returns", result.episodes.returns, 0)
            writer.add_text("settings", "```\n" + json.dumps(jsonable(result.settings), indent=1) + "\n```", 0)
            writer.add_image("zoo/returns", image, 0, dataformats="HWC")
    if config.verbose:
        print(f"wrote {out} ({time.perf_counter() - started:.0f} s); tensorboard --logdir {out / 'tb'}", flush=True)
    return ZooResult(out, summary, results)


def summarize(config: ZooConfig, reference: Reference | None, optimum: np.ndarray | None, results: dict[str, AgentResult],
              total_s: float, starts: np.ndarray | None = None) -> dict[str, Any]:  # fmt: skip
    """``summary.json``'s content: per agent its scores, regret against the reference and critic error
    (``None`` for both without a reference). ``starts``: the episodes' start states (default: the reference's)."""
    agents = {}
    if starts is None:
        starts = reference.start_states(config.episode_seeds) if reference is not None else twin_start_states(config.env_id, config.episode_seeds)
    for name, r in results.items():
        returns = r.episodes.returns
        regret = None if optimum is None else optimum - returns
        critic_error = None
        if reference is not None:
            truth = reference.value(starts, r.gamma)
            critic_error = float(np.mean((r.critic - truth) ** 2) / np.mean(truth**2))
        agents[name] = {
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "worst_return": float(np.min(returns)),
            "mean_regret": None if regret is None else float(np.mean(regret)),
            "max_regret": None if regret is None else float(np.max(regret)),
            "median_step_ms": r.episodes.median_step_ms, "max_step_ms": r.episodes.max_step_ms, "train_s": r.train_s, "hit_cap": r.hit_cap,
            "episode_lengths": r.episodes.lengths.tolist(),
            "env_interactions": r.env_interactions, "model_evaluations": r.model_evaluations,
            "critic_gamma": r.gamma, "critic_rel_mse": critic_error,
            "returns": returns.tolist(), "settings": r.settings,
        }  # fmt: skip
    settings = {k: v for k, v in asdict(config).items() if k not in ("out", "verbose")}
    return {
        "config": settings, "env_id": config.env_id, "episode_seeds": config.episode_seeds.tolist(),
        "reference": None if reference is None else reference.name,
        "optimal_returns": None if optimum is None else optimum.tolist(),
        "optimal_mean_return": None if optimum is None else float(np.mean(optimum)), "agents": agents,
        "published": {k: {"mean": m, "std": s, "budget": b, "source": src} for k, (m, s, b, src) in PUBLISHED.get(config.env_id, {}).items()},
        "total_s": total_s,
    }  # fmt: skip


#: what a table shows where there is no reference
NOT_AVAILABLE = "n/a"


def _number(value: float | None, digits: int) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def summary_markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the headline table of returns, then the critics and the protocol."""
    config, agents = summary["config"], summary["agents"]
    n = len(summary["episode_seeds"])
    seeds = summary["episode_seeds"]
    has_reference = summary["optimal_returns"] is not None
    # returns of a few units (Reacher) want more digits than returns of thousands
    scale = max(abs(a["mean_return"]) for a in agents.values())
    digits = 2 if scale < 100 else 1
    if has_reference:
        about = (f"Optimal return of these episodes ({summary['reference']}): {summary['optimal_mean_return']:.{digits}f} on average; "
                 "regret = optimal return - return, per episode.")  # fmt: skip
    else:
        about = f"No optimal reference for this run: regret and critic errors are {NOT_AVAILABLE}."
    lines = [
        f"# {summary['env_id']}: DVP against SB3, scored by the env's own reward",
        "",
        f"{n} deterministic episodes, reset seeds {seeds[0]}..{seeds[-1]}, the same for every agent; training seed "
        f"{config['seed']}; wall-clock cap {config['budget_seconds']:g} s per agent (total run {summary['total_s']:.0f} s). {about}",
        "",
        "| agent | return (mean ± std) | worst | shortest episode | mean regret | ms / step (median) | ms / step (max) | training s | env interactions | model evaluations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in agents.items():
        cap = " (cap)" if a["hit_cap"] else ""
        lines.append(f"| {name} | {a['mean_return']:.{digits}f} ± {a['std_return']:.{digits}f} | {a['worst_return']:.{digits}f} | "
                     f"{min(a['episode_lengths'])} | {_number(a['mean_regret'], digits)} | "
                     f"{a['median_step_ms']:.2f} | {a['max_step_ms']:.0f} | {a['train_s']:.0f}{cap} | {a['env_interactions']:,} | {a['model_evaluations']:,} |")  # fmt: skip
    if has_reference:
        lines.append(f"| optimum (reference) | {summary['optimal_mean_return']:.{digits}f} ± {np.std(summary['optimal_returns']):.{digits}f} | "
                     f"{min(summary['optimal_returns']):.{digits}f} | | 0 | | | | | |")  # fmt: skip
    for name, p in summary["published"].items():
        lines.append(f"| {p['source']} {name} (published, {p['budget']}, other episodes) | {p['mean']:.1f} ± {p['std']:.1f} | | | | | | | | |")
    lines += [
        "",
        "Critics: each agent's cost-to-go estimate at the episode starts against the reference value of the same discount "
        "(relative MSE = mean (estimate - truth)^2 / mean truth^2).",
        "",
        "| agent | discount | critic relative MSE |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {a['critic_gamma']:g} | {NOT_AVAILABLE if a['critic_rel_mse'] is None else format(a['critic_rel_mse'], '.3g')} |"
              for name, a in agents.items()]  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def _returns_figure(config: ZooConfig, optimum: np.ndarray | None, results: dict[str, AgentResult], path: Path) -> np.ndarray:
    """Per-episode return of every agent against the episode's optimum, or against the episode seed without
    a reference (PNG at ``path``); the image (H, W, 3)."""
    from matplotlib.figure import Figure

    from dvp_rl.compare import plots

    figure = Figure(figsize=(11, 4.2))
    scatter, box = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    x = optimum if optimum is not None else config.episode_seeds
    for (name, r), color in zip(results.items(), plots.COLORS):
        scatter.scatter(x, r.episodes.returns, s=12, color=color, alpha=0.7, label=f"{name} ({r.episodes.mean_return:.2f})")
    if optimum is not None:
        every = np.concatenate([optimum, *(r.episodes.returns for r in results.values())])
        scatter.plot([every.min(), every.max()], [every.min(), every.max()], color="black", linewidth=0.8, label="optimal return")
        scatter.set_xlabel("optimal return of the episode (reference)")
        box.boxplot([optimum - r.episodes.returns for r in results.values()])
        box.set_ylabel("regret (optimal - return)")
        box.set_yscale("symlog", linthresh=1.0 if np.max(np.abs(optimum)) > 100 else 0.1)
    else:
        scatter.set_xlabel("episode seed")
        box.boxplot([r.episodes.returns for r in results.values()])
        box.set_ylabel("return (no reference)")
    scatter.set_ylabel("return")
    scatter.legend(fontsize=8)
    scatter.grid(True, alpha=0.3)
    box.set_xticks(range(1, len(results) + 1), list(results))
    box.grid(True, alpha=0.3)
    figure.suptitle(f"{config.env_id}: {len(config.episode_seeds)} episodes, cap {config.budget_seconds:g} s per agent")
    figure.tight_layout()
    image = plots.render(figure)
    plots.save_png(image, path)
    return image


__all__ = ["AGENTS", "ORACLES", "PUBLISHED", "QUICK", "REFERENCES", "REWARD_OFFSETS", "AgentResult", "OracleEpisode",
           "OracleSettings", "Reference", "ZooConfig", "ZooResult", "ddp_oracle_reference", "oracle_episode", "oracle_returns",
           "run_zoo", "summarize", "summary_markdown", "twin_start_states"]  # fmt: skip
