"""``dvp-rl zoo``: DVP against Stable-Baselines3's SAC, TD3 and PPO on Gymnasium's own tasks and the
package's arm, scored as the field scores them; a preset of the comparison harness
(:mod:`dvp_rl.compare.harness`).

Every agent trains under the same wall-clock cap (DVP from the model alone: zero env
interactions; SAC, TD3 and PPO with rl-zoo3's hyper-parameters from ``baselines/hyperparams.yml``),
then runs one deterministic episode per fixed seed in the real env
(:class:`~dvp_rl.compare.scorers.ReturnsScorer`), scored by the env's own reward. The table
gives mean ± std return, the success rate (where the env reports ``info["is_success"]``), the
worst episode, the optimal return of the same episodes from a
reference the benchmark computes (:data:`dvp_rl.references.episodes.REFERENCES`) and the regret,
median, 99th-percentile and max ms per control step, training wall-clock, env interactions and
model evaluations (DVP's DDP node evaluations; different things, reported apart), next to
published rows (:data:`PUBLISHED`). A critic comparison (each agent's value estimate at the
episode starts against the reference value of the same discount) follows the headline. An agent
that training left untrained (e.g. an off-policy agent whose ``learning_starts`` its budget did not
pass) is marked so in the table and in ``summary.json``::

    dvp-rl zoo --env Pendulum-v1                    # the full run (100 episodes, 10-minute caps)
    dvp-rl zoo --env Pendulum-v1 --quick            # a smoke run
    dvp-rl zoo --env InvertedDoublePendulum-v5 --episodes 20
    dvp-rl zoo --env Reacher-v5 --no-reference      # no optimum: regret and critic errors are "n/a"
    dvp-rl zoo --env dvp_rl/PandaReach-v0           # the arm: DVP SAC TD3 PPO MPC, 30-minute caps, 100 episodes
    dvp-rl zoo --env dvp_rl/PandaReach-v0 --quick   # its smoke run

The ids: a Gymnasium id with a differentiable twin (DVP learns on the twin), or a dvp_rl id, whose
env is its own model (:func:`dvp_rl.references.episodes.is_own_model`: the observation is the
state). Per id, :func:`zoo_config` gives the full run's and ``--quick``'s settings (:data:`ENV_PRESETS`
where an id has its own, e.g. the arm's). The agents: :data:`AGENTS`; ``"MPC"`` is DVP's own
controller without a learned value (a zero terminal, the same controller settings as the DVP row,
no training, no critic): what the learned value buys. It is in the arm's default list; add it to
any run with ``--agents``.

The references: ``Pendulum-v1``'s is exact (grid value iteration with its step and reward);
the MuJoCo ids' and the arm's is a DDP oracle (:func:`dvp_rl.references.episodes.ddp_oracle_reference`,
settings over :data:`~dvp_rl.references.oracle.ORACLES` with ``oracle_kwargs``), an *estimate* of
each episode's optimal return that an agent can beat (negative regret), not a bound. An env
without a reference (or a run with ``reference=False``) reports no regret and no critic error.

Outputs under ``<out>``: ``summary.md``, ``summary.json``, ``returns.png`` (per-episode
return of every agent against the optimum), the trained agents ``<agent>.zip`` and tensorboard
runs ``tb/<agent>`` (the scores as scalars ``zoo/*``, the per-episode returns as a histogram, the
figure, the settings) beside the agents' own training logs ``tb_internal/<agent>_<n>``; one GIF
per agent of the first episode, ``videos/<agent>.gif``, where the env renders ``rgb_array`` frames
(skipped with a note otherwise, e.g. Pendulum-v1 without pygame). With ``curve_episodes`` (the
arm's presets): success rate and mean return of that many episodes during training, against the
training wall-clock (:class:`~dvp_rl.compare.scorers.CurveScorer`), drawn in
``success_vs_wallclock.png`` and logged as ``zoo_wallclock/success_rate``, ``zoo_wallclock/mean_return``
(step: training milliseconds).
"""

from __future__ import annotations

import dataclasses
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
from dvp_rl.compare.scorers import CriticScorer, CurveScorer, ReturnsScorer, SampleCountScorer, Scorer, StepTimeScorer
from dvp_rl.compare.tb import summary_writer
from dvp_rl.config import as_config, integer
from dvp_rl.references.episodes import REFERENCES, Reference, ddp_oracle_reference, is_own_model, twin_start_states
from dvp_rl.references.oracle import ORACLES, OracleSettings

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
#: the agents a run can train ("MPC": DVP's controller without a learned value, never trained)
AGENTS = ("DVP", "SAC", "TD3", "PPO", "MPC")
#: the agents of a run that names none (:class:`ZooConfig`'s default; an id's preset may add "MPC")
DEFAULT_AGENTS = ("DVP", "SAC", "TD3", "PPO")
#: the agents whose settings are DVP's (``dvp_kwargs``); the others are SB3's (``sb3_kwargs``)
DVP_AGENTS = ("DVP", "MPC")
#: the scores of each agent written to its tensorboard run as ``zoo/<key>`` (keys of ``summary["agents"][name]``;
#: ``None`` ones left out: no regret without a reference, no success rate where the env reports none)
TB_SCALARS = ("mean_return", "std_return", "worst_return", "mean_regret", "median_step_ms", "p99_step_ms", "max_step_ms", "max_step_cpu_ms", "train_s",
              "env_interactions", "model_evaluations", "critic_rel_mse", "success_rate")  # fmt: skip


@dataclass(frozen=True)
class ZooConfig(CompareConfig):
    """What one side-by-side run does (and :class:`~dvp_rl.compare.harness.CompareConfig`'s ``budget_seconds``,
    ``dvp_kwargs``, ``n_workers``, ``out``, ``verbose``).

    :param env_id: a Gymnasium id with a differentiable twin (:data:`envs.twins.TWINS`), or a dvp_rl id
        (its env is its own model)
    :param agents: among :data:`AGENTS`
    :param seed: the training seed of every agent
    :param n_episodes: evaluation episodes, seeds ``episode_seed .. episode_seed + n_episodes - 1``
    :param episode_seed: the first episode seed
    :param sb3_kwargs: per agent, override its ``hyperparams.yml`` entry (e.g. ``{"SAC": {"n_timesteps": 500}}``)
    :param reference: score against the env's optimal reference (:data:`~dvp_rl.references.episodes.REFERENCES`);
        ``False``, or an env without one: no regret and no critic error ("n/a")
    :param cache_dir: folder of the reference's cache (``None``: ``<out>/../reference``)
    :param oracle_kwargs: fields of :class:`~dvp_rl.references.oracle.OracleSettings` over the env's DDP
        oracle (:data:`~dvp_rl.references.oracle.ORACLES`), e.g. ``{"horizon": 30}``
    :param videos: write a GIF of each agent's first episode where the env renders ``rgb_array`` frames
    :param curve_episodes: evaluate each agent during training on the first ``curve_episodes`` episodes
        (:class:`~dvp_rl.compare.scorers.CurveScorer`; 0: no curve)
    :param curve_points: evaluations of the curve over the cap: one every ``budget_seconds / curve_points``
        seconds of training (DVP: after every iteration)

    ``dvp_kwargs`` override DVP's entry in ``dvp_rl/defaults.yml`` (constructor arguments and
    ``iterations``), for the DVP row and the MPC row alike; ``n_workers`` are DVP's solver processes
    and the reference's; ``out`` defaults to ``runs/zoo/<env>__<timestamp>`` (the id's ``/`` written ``-``).

    :raises ValueError: an id that is neither a dvp_rl id nor one with a twin, unknown or no agents,
        ``sb3_kwargs`` of an agent the run does not train or not a dict per agent, ``oracle_kwargs`` for
        an env without an oracle or with an unknown field, ``n_episodes`` or ``curve_points`` < 1,
        ``curve_episodes`` < 0 or above ``n_episodes``, or a bad common setting
    """

    env_id: str = "Pendulum-v1"
    agents: tuple[str, ...] = DEFAULT_AGENTS
    seed: int = 0
    n_episodes: int = 100
    episode_seed: int = 1000
    sb3_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference: bool = True
    cache_dir: str | None = None
    oracle_kwargs: dict[str, Any] = field(default_factory=dict)
    videos: bool = True
    curve_episodes: int = 0
    curve_points: int = 20

    def __post_init__(self) -> None:
        from envs.twins import TWINS

        super().__post_init__()
        if self.env_id not in TWINS and not is_own_model(self.env_id):
            raise ValueError(f"no differentiable twin of {self.env_id!r} (DVP needs one, or a dvp_rl id); supported ids: {sorted(TWINS)} "
                             "and the dvp_rl ids")  # fmt: skip
        unknown = sorted(set(self.agents) - set(AGENTS))
        if unknown or not self.agents:
            raise ValueError(f"agents must be among {list(AGENTS)}, got {list(self.agents)}")
        if not isinstance(self.sb3_kwargs, Mapping) or not all(isinstance(v, Mapping) for v in self.sb3_kwargs.values()):
            raise ValueError(f"sb3_kwargs maps each SB3 agent to a dict of its settings, got {self.sb3_kwargs!r}")
        stray = sorted(set(self.sb3_kwargs) - (set(self.agents) - set(DVP_AGENTS)))
        if stray:
            raise ValueError(f"sb3_kwargs given for {stray}, which are not SB3 agents of this run {list(self.agents)}")
        if self.oracle_kwargs:
            if self.env_id not in ORACLES:
                raise ValueError(f"oracle_kwargs given, but {self.env_id} has no DDP oracle; those of {sorted(ORACLES)} have one")
            self.oracle_settings()  # unknown fields and bad values now
        integer("n_episodes", self.n_episodes, 1)
        integer("curve_points", self.curve_points, 1)
        if not 0 <= integer("curve_episodes", self.curve_episodes, 0) <= int(self.n_episodes):
            raise ValueError(f"curve_episodes must be in 0..n_episodes ({self.n_episodes}), got {self.curve_episodes}")

    @property
    def episode_seeds(self) -> np.ndarray:
        """The evaluation episodes' reset seeds, (n_episodes,)."""
        return np.arange(self.episode_seed, self.episode_seed + int(self.n_episodes))

    def oracle_settings(self) -> OracleSettings | None:
        """The env's DDP oracle with ``oracle_kwargs`` over it (``None``: an env without one)."""
        if self.env_id not in ORACLES:
            return None
        return as_config(OracleSettings, self.oracle_kwargs, "oracle_kwargs", ORACLES[self.env_id])

    def default_out(self, stamp: str) -> Path:
        return Path("runs") / "zoo" / f"{self.env_id.replace('/', '-')}__{stamp}"


#: ``dvp-rl zoo --quick``: tiny budgets, a smoke run of every output
QUICK = ZooConfig(budget_seconds=30.0, n_episodes=5, dvp_kwargs={"iterations": 2, "n_samples": 100, "fit": {"max_epochs": 50}},
                  sb3_kwargs={"SAC": {"n_timesteps": 2000}, "TD3": {"n_timesteps": 2000}, "PPO": {"n_timesteps": 8192}})  # fmt: skip

#: per id, the fields of its full run and of its ``--quick`` run where they are not :class:`ZooConfig`'s and
#: :data:`QUICK`'s (:func:`zoo_config`). ``dvp_rl/PandaReach-v0``: the MPC row, success rate against wall-clock,
#: 30-minute caps (SB3's ``n_timesteps`` are larger: the cap stops them); ``--quick``: a few minutes, budgets
#: that train every agent (SAC's and TD3's ``learning_starts`` below their timesteps, two DVP iterations)
ENV_PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dvp_rl/PandaReach-v0": (
        {"agents": DEFAULT_AGENTS + ("MPC",), "budget_seconds": 1800.0, "curve_episodes": 10},
        {"agents": DEFAULT_AGENTS + ("MPC",), "budget_seconds": 60.0, "n_episodes": 5, "curve_episodes": 3, "curve_points": 6,
         "dvp_kwargs": {"iterations": 2, "n_samples": 200, "fit": {"max_epochs": 50}},
         "sb3_kwargs": {"SAC": {"n_timesteps": 3000, "learning_starts": 1000}, "TD3": {"n_timesteps": 3000, "learning_starts": 1000},
                        "PPO": {"n_timesteps": 4096}}},
    ),
}  # fmt: skip


def zoo_config(env_id: str | None = None, quick: bool = False) -> ZooConfig:
    """The settings of ``dvp-rl zoo --env env_id`` (``--quick``): :class:`ZooConfig`'s defaults (:data:`QUICK`'s)
    on ``env_id`` (``None``: Pendulum-v1), with the id's :data:`ENV_PRESETS` entry over them.

    :raises ValueError: as :class:`ZooConfig`
    """
    base = QUICK if quick else ZooConfig()
    if env_id is None:
        return base
    full, fast = ENV_PRESETS.get(env_id, ({}, {}))
    return dataclasses.replace(base, env_id=env_id, **(fast if quick else full))


# ---------------------------------------------------------------------------- the preset
class ZooPreset(Preset):
    """The zoo as a preset of the harness: one env, one seed; the reference built once; every agent saved
    to ``<agent>.zip`` (but the untrained MPC row) and scored on the same episodes (returns, success and
    regret, step times, samples, critic), a GIF of its first episode; per agent a tensorboard run
    ``tb/<agent>`` written at the end, beside ``tb_internal/``."""

    outputs = ("summary.json", "summary.md", "*.zip", "tb", "tb_internal", "returns.png", "success_vs_wallclock.png", "videos")

    def __init__(self, config: ZooConfig) -> None:
        super().__init__(config)
        self.config: ZooConfig = config
        self.env_ids, self.seeds, self.agents = (config.env_id,), (config.seed,), tuple(config.agents)
        self.reference: Reference | None = None
        self.optimum: np.ndarray | None = None
        self._started = time.perf_counter()
        self._videos: bool | None = None if config.videos else False  # None: whether the env renders is not asked yet

    def run_spec(self, name: str, env_id: str, seed: int) -> RunSpec:
        c = self.config
        overrides = c.dvp_kwargs if name in DVP_AGENTS else c.sb3_kwargs.get(name, {})
        return RunSpec(env_id, seed, None, {}, dict(overrides), None, c.n_workers)

    def scorers(self, env_id: str) -> Sequence[Scorer]:
        """Builds the reference (when there is one) and the episodes' optimum."""
        c, seeds = self.config, self.config.episode_seeds
        if c.reference and env_id in REFERENCES:
            cache = Path(c.cache_dir) if c.cache_dir else self.out.parent / "reference"
            if c.oracle_kwargs:
                self.reference = ddp_oracle_reference(env_id, cache, int(c.n_workers), c.oracle_settings())
            else:
                self.reference = REFERENCES[env_id](cache, int(c.n_workers))
        starts = self.reference.start_states(seeds) if self.reference is not None else twin_start_states(env_id, seeds)
        self.optimum = self.reference.optimal_returns(seeds) if self.reference is not None else None
        if c.verbose and self.optimum is not None:
            print(f"reference ({time.perf_counter() - self._started:.0f} s): {self.reference.name}; "
                  f"optimal mean return {np.mean(self.optimum):.2f}", flush=True)  # fmt: skip
        value = self.reference.value if self.reference is not None else None
        scorers: list[Scorer] = [ReturnsScorer(env_id, seeds, self.optimum), StepTimeScorer(), SampleCountScorer(), CriticScorer(starts, value)]
        if c.curve_episodes:
            scorers.append(CurveScorer(env_id, seeds[: c.curve_episodes], c.budget_seconds / c.curve_points))
        return scorers

    def internal_log(self, name: str, env_id: str, seed: int) -> Path:
        """``tb_internal/<agent>_<n>``, ``n`` one more than the last run of that name (SB3's numbering)."""
        from stable_baselines3.common.utils import get_latest_run_id

        folder = self.out / "tb_internal"
        return folder / f"{name}_{get_latest_run_id(str(folder), name) + 1}"

    def model_path(self, name: str, env_id: str, seed: int) -> Path | None:
        return None if name == "MPC" else self.out / f"{name}.zip"  # the MPC row has nothing learned to keep

    def after_run(self, run: AgentRun, writer: SummaryWriter | None) -> None:
        """A progress line, and the GIF of the agent's first episode."""
        episodes = run.scores["returns"].episodes
        if self.config.verbose:
            cap = " (cap hit)" if run.stopped_by_cap else ""
            success = "" if episodes.success_rate is None else f", success {episodes.success_rate:.0%}"
            untrained = f" {run.untrained}," if run.untrained else ""
            print(f"{run.name}: trained {run.train_s:.0f} s{cap},{untrained} {episodes.summary()}{success}", flush=True)
        self._write_video(run)

    def _write_video(self, run: AgentRun) -> None:
        """``videos/<agent>.gif``: the first episode seed's episode; skipped (a note, once) where the env renders no
        frames here (:func:`~dvp_rl.control.rollout.rendering_problem`, asked before the first GIF)."""
        from dvp_rl.control.rollout import render_episode, rendering_problem

        c = self.config
        if self._videos is None:
            problem = rendering_problem(c.env_id)
            self._videos = problem is None
            if problem is not None and c.verbose:
                print(f"no GIFs: {c.env_id} renders no rgb_array frames here ({problem})", flush=True)
        if not self._videos:
            return
        episode = render_episode(run.agent.predictor(), c.env_id, int(c.episode_seeds[0]))
        reports.save_gif(episode.frames, self.out / "videos" / f"{run.name}.gif", episode.fps)

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
        """``returns.png`` (and ``success_vs_wallclock.png`` with a curve), and per agent its tensorboard run
        ``tb/<agent>`` (replacing an earlier one)."""
        from dvp_rl.compare import plots

        results = {name: r[0] for name, r in runs[self.config.env_id].items()}
        image = reports.save_figure(returns_figure(self.config, self.optimum, results), self.out / "returns.png")
        curves = {name: run.scores["curve"] for name, run in results.items() if "curve" in run.scores}
        curve_image = None
        if curves:
            n = self.config.curve_episodes
            title = f"{self.config.env_id}: {n} episode{'s' * (n != 1)} at points of each agent's training"
            curve_image = reports.save_figure(plots.wallclock_curves(curves, title), self.out / "success_vs_wallclock.png")
        for name, run in results.items():
            with summary_writer(self.out / "tb" / name, replace=True) as writer:
                row = summary["agents"][name]
                reports.log_scalars(writer, "zoo", {key: row[key] for key in TB_SCALARS}, 0)  # no reference: no regret, no critic error
                writer.add_histogram("zoo/episode_returns", run.scores["returns"].episodes.returns, 0)
                writer.add_text("settings", reports.settings_text(run.settings), 0)
                writer.add_image("zoo/returns", image, 0, dataformats="HWC")
                for point in curves.get(name, []):
                    values = {"success_rate": point.success_rate, "mean_return": point.mean_return}
                    reports.log_scalars(writer, "zoo_wallclock", values, int(round(1e3 * point.wallclock_s)))
                if curve_image is not None:
                    writer.add_image("zoo/success_vs_wallclock", curve_image, 0, dataformats="HWC")


def run_zoo(config: ZooConfig) -> ComparisonResult:
    """Train every agent of ``config`` under the cap, score them on the same episodes, write the outputs."""
    return harness.run(ZooPreset(config))


def agent_row(run: AgentRun) -> dict[str, Any]:
    """One agent's entry of ``summary.json``: its returns, success and regret, step times, training time, samples,
    critic (``None`` for an agent without one), whether training left it untrained (``None``: it learned), the
    curve during training (``None`` without one) and settings."""
    returns, steps, critic = run.scores["returns"], run.scores["step_times"], run.scores["critic"]
    row = returns.row()
    curve = run.scores.get("curve")
    return {
        **{k: row[k] for k in ("mean_return", "std_return", "worst_return", "mean_regret", "max_regret", "success_rate")},
        **steps._asdict(), "train_s": run.train_s, "hit_cap": run.stopped_by_cap, "untrained": run.untrained,
        "episode_lengths": row["episode_lengths"], **run.scores["samples"], "critic_gamma": critic.gamma,
        "critic_rel_mse": critic.rel_mse, "returns": row["returns"], "successes": row["successes"],
        "curve": None if curve is None else [point._asdict() for point in curve], "settings": run.settings,
    }  # fmt: skip


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the headline table of returns, then the critics and the protocol."""
    config, agents = summary["config"], summary["agents"]
    n = len(summary["episode_seeds"])
    seeds = summary["episode_seeds"]
    has_reference = summary["optimal_returns"] is not None
    # returns of a few units (Reacher) want more digits than returns of thousands, and returns below 1 (the arm's
    # reaches) enough to tell them apart
    scale = max(abs(a["mean_return"]) for a in agents.values())
    digits = 2 if scale < 100 else 1
    small = min([abs(a["mean_return"]) for a in agents.values()] + [abs(summary["optimal_mean_return"] or 1.0)])
    if 0 < small < 1:
        digits = max(digits, 2 - int(np.floor(np.log10(small))))
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
    # the success column where the env reports success (older summaries have no such key)
    success = any(a.get("success_rate") is not None for a in agents.values())
    header = ["agent", "return (mean ± std)", *["success"] * success, "worst", "shortest episode", "mean regret", "ms / step (median)",
              "ms / step (p99)", "ms / step (max)", "CPU ms / step (max)", "training s", "env interactions", "model evaluations"]  # fmt: skip
    rows = [[agent_label(name, a), f"{a['mean_return']:.{digits}f} ± {a['std_return']:.{digits}f}",
             *[percent(a.get("success_rate"))] * success, f"{a['worst_return']:.{digits}f}",
             min(a["episode_lengths"]), number(a["mean_regret"], digits), f"{a['median_step_ms']:.2f}", f"{a['p99_step_ms']:.1f}",
             f"{a['max_step_ms']:.0f}", number(a.get("max_step_cpu_ms"), 0), f"{a['train_s']:.0f}{' (cap)' if a['hit_cap'] else ''}", f"{a['env_interactions']:,}",
             f"{a['model_evaluations']:,}"] for name, a in agents.items()]  # fmt: skip
    if has_reference:
        optimum = summary["optimal_returns"]
        rows.append(["optimum (reference)", f"{summary['optimal_mean_return']:.{digits}f} ± {np.std(optimum):.{digits}f}",
                     *[""] * success, f"{min(optimum):.{digits}f}", "", 0, *[""] * (len(header) - 5 - success)])  # fmt: skip
    for name, p in summary["published"].items():
        rows.append([f"{p['source']} {name} (published, {p['budget']}, other episodes)", f"{p['mean']:.1f} ± {p['std']:.1f}",
                     *[""] * (len(header) - 2)])  # fmt: skip
    critics = [[agent_label(name, a), NOT_AVAILABLE if a["critic_gamma"] is None else f"{a['critic_gamma']:g}",
                NOT_AVAILABLE if a["critic_rel_mse"] is None else format(a["critic_rel_mse"], ".3g")]
               for name, a in agents.items()]  # fmt: skip
    lines += [
        *reports.markdown_table(header, rows),
        "",
        "Critics: each agent's cost-to-go estimate at the episode starts against the reference value of the same discount "
        "(relative MSE = mean (estimate - truth)^2 / mean truth^2).",
        "",
        *reports.markdown_table(["agent", "discount", "critic relative MSE"], critics),
    ]
    if "MPC" in agents:
        lines += ["", "MPC: DVP's controller with a zero terminal cost (no learned value, no training, no critic), the same controller "
                      "settings as the DVP row: what the learned value buys."]  # fmt: skip
    lines.append("")
    return "\n".join(lines)


def agent_label(name: str, row: Mapping[str, Any]) -> str:
    """The agent's name in the tables, with the reason when training left it untrained (``row["untrained"]``)."""
    untrained = row.get("untrained")
    return f"{name}: {untrained}" if untrained else name


def percent(rate: float | None) -> str:
    """A success rate as a percentage, :data:`~dvp_rl.compare.reports.NOT_AVAILABLE` for ``None``."""
    return NOT_AVAILABLE if rate is None else f"{100.0 * rate:.0f}%"


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


__all__ = ["AGENTS", "DEFAULT_AGENTS", "DVP_AGENTS", "ENV_PRESETS", "PUBLISHED", "QUICK", "TB_SCALARS", "ZooConfig", "ZooPreset",
           "agent_label", "agent_row", "percent", "returns_figure", "run_zoo", "summary_markdown", "zoo_config"]  # fmt: skip
