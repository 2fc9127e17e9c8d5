"""``dvp-rl zoo``: DVP against Stable-Baselines3's SAC, TD3 and PPO on Gymnasium's own tasks, scored as
the field scores them; a preset of the comparison harness (:mod:`dvp_rl.compare.harness`).

Every agent trains under the same wall-clock cap (DVP from the model alone: zero env
interactions; SAC, TD3 and PPO with rl-zoo3's hyper-parameters from ``baselines/hyperparams.yml``),
then runs one deterministic episode per fixed seed in the real Gymnasium env
(:class:`~dvp_rl.compare.scorers.ReturnsScorer`), scored by the env's own reward. The table
gives mean ± std return, the worst episode, the optimal return of the same episodes from a
reference the benchmark computes (:data:`dvp_rl.references.episodes.REFERENCES`) and the regret,
median, 99th-percentile and max ms per control step, training wall-clock, env interactions and
model evaluations (DVP's DDP node evaluations; different things, reported apart), next to
published rows (:data:`PUBLISHED`). A critic comparison (each agent's value estimate at the
episode starts against the reference value of the same discount) follows the headline::

    dvp-rl zoo --env Pendulum-v1                    # the full run (100 episodes, 10-minute caps)
    dvp-rl zoo --env Pendulum-v1 --quick            # a smoke run
    dvp-rl zoo --env InvertedDoublePendulum-v5 --episodes 20
    dvp-rl zoo --env Reacher-v5 --no-reference      # no optimum: regret and critic errors are "n/a"

The references: ``Pendulum-v1``'s is exact (grid value iteration with its step and reward);
the MuJoCo ids' is a DDP oracle (:func:`dvp_rl.references.episodes.ddp_oracle_reference`), an
*estimate* of each episode's optimal return that an agent can beat (negative regret), not a bound.
An env without a reference (or a run with ``reference=False``) reports no regret and no critic error.

Outputs under ``<out>``: ``summary.md``, ``summary.json``, ``returns.png`` (per-episode
return of every agent against the optimum), the trained agents ``<agent>.zip`` and tensorboard
runs ``tb/<agent>`` (the scores as scalars ``zoo/*``, the per-episode returns as a histogram, the
figure, the settings) beside the agents' own training logs ``tb_internal/<agent>_<n>``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dvp_rl.compare import harness, reports
from dvp_rl.compare.adapters import RunSpec
from dvp_rl.compare.harness import AgentRun, CompareConfig, ComparisonResult, Preset, Runs
from dvp_rl.compare.reports import NOT_AVAILABLE, number
from dvp_rl.compare.scorers import CriticScorer, ReturnsScorer, SampleCountScorer, Scorer, StepTimeScorer
from dvp_rl.compare.tb import summary_writer
from dvp_rl.references.episodes import REFERENCES, Reference, twin_start_states

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

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
#: the scores of each agent written to its tensorboard run as ``zoo/<key>`` (keys of ``summary["agents"][name]``)
TB_SCALARS = ("mean_return", "std_return", "worst_return", "mean_regret", "median_step_ms", "p99_step_ms", "max_step_ms", "train_s",
              "env_interactions", "model_evaluations", "critic_rel_mse")  # fmt: skip


@dataclass(frozen=True)
class ZooConfig(CompareConfig):
    """What one side-by-side run does (and :class:`~dvp_rl.compare.harness.CompareConfig`'s ``budget_seconds``,
    ``dvp_kwargs``, ``n_workers``, ``out``, ``verbose``).

    :param env_id: a Gymnasium id with a differentiable twin (:data:`envs.twins.TWINS`)
    :param agents: among :data:`AGENTS`
    :param seed: the training seed of every agent
    :param n_episodes: evaluation episodes, seeds ``episode_seed .. episode_seed + n_episodes - 1``
    :param episode_seed: the first episode seed
    :param sb3_kwargs: per agent, override its ``hyperparams.yml`` entry (e.g. ``{"SAC": {"n_timesteps": 500}}``)
    :param reference: score against the env's optimal reference (:data:`~dvp_rl.references.episodes.REFERENCES`);
        ``False``, or an env without one: no regret and no critic error ("n/a")
    :param cache_dir: folder of the reference's cache (``None``: ``<out>/../reference``)

    ``dvp_kwargs`` override DVP's entry in ``dvp_rl/defaults.yml`` (constructor arguments and
    ``iterations``); ``n_workers`` are DVP's solver processes and the reference's; ``out`` defaults
    to ``runs/zoo/<env>__<timestamp>``.

    :raises ValueError: an id without a twin, unknown or no agents, ``sb3_kwargs`` of an agent the run
        does not train, ``n_episodes < 1``, or a bad common setting
    """

    env_id: str = "Pendulum-v1"
    agents: tuple[str, ...] = AGENTS
    seed: int = 0
    n_episodes: int = 100
    episode_seed: int = 1000
    sb3_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        from envs.twins import TWINS

        super().__post_init__()
        if self.env_id not in TWINS:
            raise ValueError(f"no differentiable twin of {self.env_id!r} (DVP needs one); supported ids: {sorted(TWINS)}")
        unknown = sorted(set(self.agents) - set(AGENTS))
        if unknown or not self.agents:
            raise ValueError(f"agents must be among {list(AGENTS)}, got {list(self.agents)}")
        stray = sorted(set(self.sb3_kwargs) - (set(self.agents) - {"DVP"}))
        if stray:
            raise ValueError(f"sb3_kwargs given for {stray}, which are not SB3 agents of this run {list(self.agents)}")
        if int(self.n_episodes) < 1:
            raise ValueError(f"n_episodes must be >= 1, got {self.n_episodes}")

    @property
    def episode_seeds(self) -> np.ndarray:
        """The evaluation episodes' reset seeds, (n_episodes,)."""
        return np.arange(self.episode_seed, self.episode_seed + int(self.n_episodes))

    def default_out(self, stamp: str) -> Path:
        return Path("runs") / "zoo" / f"{self.env_id}__{stamp}"


#: ``dvp-rl zoo --quick``: tiny budgets, a smoke run of every output
QUICK = ZooConfig(budget_seconds=30.0, n_episodes=5, dvp_kwargs={"iterations": 2, "n_samples": 100, "fit": {"max_epochs": 50}},
                  sb3_kwargs={"SAC": {"n_timesteps": 2000}, "TD3": {"n_timesteps": 2000}, "PPO": {"n_timesteps": 8192}})  # fmt: skip


# ---------------------------------------------------------------------------- the preset
class ZooPreset(Preset):
    """The zoo as a preset of the harness: one env, one seed; the reference built once; every agent saved
    to ``<agent>.zip`` and scored on the same episodes (returns and regret, step times, samples, critic);
    per agent a tensorboard run ``tb/<agent>`` written at the end, beside ``tb_internal/``."""

    def __init__(self, config: ZooConfig) -> None:
        super().__init__(config)
        self.config: ZooConfig = config
        self.env_ids, self.seeds, self.agents = (config.env_id,), (config.seed,), tuple(config.agents)
        self.reference: Reference | None = None
        self.optimum: np.ndarray | None = None
        self._started = time.perf_counter()

    def run_spec(self, name: str, env_id: str, seed: int) -> RunSpec:
        c = self.config
        overrides = c.dvp_kwargs if name == "DVP" else c.sb3_kwargs.get(name, {})
        return RunSpec(env_id, seed, None, {}, dict(overrides), None, c.n_workers)

    def scorers(self, env_id: str) -> Sequence[Scorer]:
        """Builds the reference (when there is one) and the episodes' optimum."""
        c, seeds = self.config, self.config.episode_seeds
        if c.reference and env_id in REFERENCES:
            cache = Path(c.cache_dir) if c.cache_dir else self.out.parent / "reference"
            self.reference = REFERENCES[env_id](cache, int(c.n_workers))
        starts = self.reference.start_states(seeds) if self.reference is not None else twin_start_states(env_id, seeds)
        self.optimum = self.reference.optimal_returns(seeds) if self.reference is not None else None
        if c.verbose and self.optimum is not None:
            print(f"reference ({time.perf_counter() - self._started:.0f} s): {self.reference.name}; "
                  f"optimal mean return {np.mean(self.optimum):.2f}", flush=True)  # fmt: skip
        value = self.reference.value if self.reference is not None else None
        return [ReturnsScorer(env_id, seeds, self.optimum), StepTimeScorer(), SampleCountScorer(), CriticScorer(starts, value)]

    def internal_log(self, name: str, env_id: str, seed: int) -> Path:
        """``tb_internal/<agent>_<n>``, ``n`` one more than the last run of that name (SB3's numbering)."""
        from stable_baselines3.common.utils import get_latest_run_id

        folder = self.out / "tb_internal"
        return folder / f"{name}_{get_latest_run_id(str(folder), name) + 1}"

    def model_path(self, name: str, env_id: str, seed: int) -> Path:
        return self.out / f"{name}.zip"

    def after_run(self, run: AgentRun, writer: SummaryWriter | None) -> None:
        if self.config.verbose:
            cap = " (cap hit)" if run.stopped_by_cap else ""
            print(f"{run.name}: trained {run.train_s:.0f} s{cap}, {run.scores['returns'].episodes.summary()}", flush=True)

    def summarize(self, runs: Runs, total_s: float) -> dict[str, Any]:
        """``summary.json``'s content: per agent its scores, regret against the reference and critic error
        (``None`` for both without a reference)."""
        c, optimum = self.config, self.optimum
        agents = {name: agent_row(results[0]) for name, results in runs[c.env_id].items()}
        return {
            "config": c.settings(), "env_id": c.env_id, "episode_seeds": c.episode_seeds.tolist(),
            "reference": None if self.reference is None else self.reference.name,
            "optimal_returns": None if optimum is None else optimum.tolist(),
            "optimal_mean_return": None if optimum is None else float(np.mean(optimum)), "agents": agents,
            "published": {k: {"mean": m, "std": s, "budget": b, "source": src}
                          for k, (m, s, b, src) in PUBLISHED.get(c.env_id, {}).items()},
            "total_s": total_s,
        }  # fmt: skip

    def markdown(self, summary: Mapping[str, Any]) -> str:
        return summary_markdown(summary)

    def report(self, summary: Mapping[str, Any], runs: Runs) -> None:
        """``returns.png``, and per agent its tensorboard run ``tb/<agent>`` (replacing an earlier one)."""
        results = {name: r[0] for name, r in runs[self.config.env_id].items()}
        image = reports.save_figure(returns_figure(self.config, self.optimum, results), self.out / "returns.png")
        for name, run in results.items():
            with summary_writer(self.out / "tb" / name, replace=True) as writer:
                row = summary["agents"][name]
                reports.log_scalars(writer, "zoo", {key: row[key] for key in TB_SCALARS}, 0)  # no reference: no regret, no critic error
                writer.add_histogram("zoo/episode_returns", run.scores["returns"].episodes.returns, 0)
                writer.add_text("settings", reports.settings_text(run.settings), 0)
                writer.add_image("zoo/returns", image, 0, dataformats="HWC")


def run_zoo(config: ZooConfig) -> ComparisonResult:
    """Train every agent of ``config`` under the cap, score them on the same episodes, write the outputs."""
    return harness.run(ZooPreset(config))


def agent_row(run: AgentRun) -> dict[str, Any]:
    """One agent's entry of ``summary.json``: its returns and regret, step times, training time, samples,
    critic and settings."""
    returns, steps, critic = run.scores["returns"], run.scores["step_times"], run.scores["critic"]
    row = returns.row()
    return {
        **{k: row[k] for k in ("mean_return", "std_return", "worst_return", "mean_regret", "max_regret")},
        **steps._asdict(), "train_s": run.train_s, "hit_cap": run.stopped_by_cap, "episode_lengths": row["episode_lengths"],
        **run.scores["samples"], "critic_gamma": critic.gamma, "critic_rel_mse": critic.rel_mse,
        "returns": row["returns"], "settings": run.settings,
    }  # fmt: skip


def summary_markdown(summary: Mapping[str, Any]) -> str:
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
    ]
    header = ["agent", "return (mean ± std)", "worst", "shortest episode", "mean regret", "ms / step (median)", "ms / step (p99)",
              "ms / step (max)", "training s", "env interactions", "model evaluations"]  # fmt: skip
    rows = [[name, f"{a['mean_return']:.{digits}f} ± {a['std_return']:.{digits}f}", f"{a['worst_return']:.{digits}f}",
             min(a["episode_lengths"]), number(a["mean_regret"], digits), f"{a['median_step_ms']:.2f}", f"{a['p99_step_ms']:.1f}",
             f"{a['max_step_ms']:.0f}", f"{a['train_s']:.0f}{' (cap)' if a['hit_cap'] else ''}", f"{a['env_interactions']:,}",
             f"{a['model_evaluations']:,}"] for name, a in agents.items()]  # fmt: skip
    if has_reference:
        optimum = summary["optimal_returns"]
        rows.append(["optimum (reference)", f"{summary['optimal_mean_return']:.{digits}f} ± {np.std(optimum):.{digits}f}",
                     f"{min(optimum):.{digits}f}", "", 0, "", "", "", "", "", ""])  # fmt: skip
    for name, p in summary["published"].items():
        rows.append([f"{p['source']} {name} (published, {p['budget']}, other episodes)", f"{p['mean']:.1f} ± {p['std']:.1f}", *[""] * 9])
    critics = [[name, f"{a['critic_gamma']:g}", NOT_AVAILABLE if a["critic_rel_mse"] is None else format(a["critic_rel_mse"], ".3g")]
               for name, a in agents.items()]  # fmt: skip
    lines += [
        *reports.markdown_table(header, rows),
        "",
        "Critics: each agent's cost-to-go estimate at the episode starts against the reference value of the same discount "
        "(relative MSE = mean (estimate - truth)^2 / mean truth^2).",
        "",
        *reports.markdown_table(["agent", "discount", "critic relative MSE"], critics),
    ]
    lines.append("")
    return "\n".join(lines)


def returns_figure(config: ZooConfig, optimum: np.ndarray | None, runs: Mapping[str, AgentRun]) -> Figure:
    """Per-episode return of every agent against the episode's optimum (left; against the episode seed
    without a reference) and the regret of each (right; the returns without a reference)."""
    from matplotlib.figure import Figure

    from dvp_rl.compare import plots

    episodes = {name: run.scores["returns"].episodes for name, run in runs.items()}
    figure = Figure(figsize=(11, 4.2))
    scatter, box = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    x = optimum if optimum is not None else config.episode_seeds
    for (name, e), color in zip(episodes.items(), plots.COLORS):
        scatter.scatter(x, e.returns, s=12, color=color, alpha=0.7, label=f"{name} ({e.mean_return:.2f})")
    if optimum is not None:
        every = np.concatenate([optimum, *(e.returns for e in episodes.values())])
        scatter.plot([every.min(), every.max()], [every.min(), every.max()], color="black", linewidth=0.8, label="optimal return")
        scatter.set_xlabel("optimal return of the episode (reference)")
        box.boxplot([optimum - e.returns for e in episodes.values()])
        box.set_ylabel("regret (optimal - return)")
        box.set_yscale("symlog", linthresh=1.0 if np.max(np.abs(optimum)) > 100 else 0.1)
    else:
        scatter.set_xlabel("episode seed")
        box.boxplot([e.returns for e in episodes.values()])
        box.set_ylabel("return (no reference)")
    scatter.set_ylabel("return")
    scatter.legend(fontsize=8)
    scatter.grid(True, alpha=0.3)
    box.set_xticks(range(1, len(episodes) + 1), list(episodes))
    box.grid(True, alpha=0.3)
    figure.suptitle(f"{config.env_id}: {len(config.episode_seeds)} episodes, cap {config.budget_seconds:g} s per agent")
    figure.tight_layout()
    return figure


__all__ = ["AGENTS", "PUBLISHED", "QUICK", "TB_SCALARS", "ZooConfig", "ZooPreset", "agent_row", "returns_figure", "run_zoo",
           "summary_markdown"]  # fmt: skip
