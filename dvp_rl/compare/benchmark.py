"""``dvp-rl benchmark``: DVP against PPO on the package's own tasks (Parag et al., ICRA 2022, Section V),
a preset of the comparison harness (:mod:`dvp_rl.compare.harness`): value error against ground truth,
closed-loop cost, samples and wall-clock.

For every env a fixed validation set of states (``sample_states`` with a seed that does not
depend on the training seed) gets a cached long-horizon ground truth
(:func:`dvp_rl.references.ground_truth.ground_truth`, same discount as both learners). For every
seed, DVP and PPO (:mod:`dvp_rl.compare.adapters`) are trained under their own budget (iterations,
resp. timesteps) and a common wall-clock cap, and evaluated regularly by one scorer
(:class:`dvp_rl.compare.scorers.ValueErrorScorer`):

* value MSE and relative MSE of ``V(x)`` on the validation set (DVP: the learned value;
  PPO: its critic on the cost scale, :func:`baselines.sb3.critic_costs`);
* the mean discounted closed-loop cost from a few validation states, over
  ``ceil(3 / (1 - gamma))`` steps (DVP: MPC with the learned terminal value; PPO: its
  deterministic policy), both stepped by :func:`dvp_rl.control.rollout.rollout_from_states`;
* samples, counted separately because they are different things: env interactions (PPO's
  env steps; DVP uses none) and model evaluations (DVP's DDP node evaluations); and training
  wall-clock (time spent evaluating is paused out), at which the two are compared.

Everything lands in ``<out>``: tensorboard runs ``tb/<env>/<ALGO>_seed<k>`` with the same
``compare/*`` tags (step = the algorithm's samples) and ``compare_wallclock/*`` (step =
milliseconds of training), value errors also as ``log10_*`` (on a linear axis DVP's curve is
a flat line at zero next to PPO's), one chart per tag in the Custom Scalars tab; the algorithms' own logs under
``tb/<env>/internal/``; figures (PNG in ``figures/`` and in tensorboard's Images tab);
``summary.md`` and ``summary.json`` (a run whose agent its budget left untrained says so there)::

    dvp-rl benchmark --quick
    tensorboard --logdir runs/<out>/tb

Torch is set to one thread by the CLI entry point (:func:`dvp_rl.cli.main`), not here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from dvp_rl.checkpoint import jsonable
from dvp_rl.config import merge_settings
from dvp_rl.compare import harness, reports
from dvp_rl.compare.adapters import SAMPLE_KINDS, RunSpec
from dvp_rl.compare.harness import AgentRun, CompareConfig, ComparisonResult, Preset, Runs
from dvp_rl.compare.scorers import EvalRecord, SampleCountScorer, Scorer, ValueErrorScorer
from dvp_rl.compare.tb import summary_writer
from dvp_rl.references.ground_truth import GroundTruth, ground_truth
import envs

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

#: the paper's three systems, the default of ``dvp-rl benchmark``
DEFAULT_ENVS = ("dvp_rl/Pendulum-v0", "dvp_rl/CartPole-v0", "dvp_rl/Unicycle-v0")
#: the agents compared, in this order (the first seed's of each are drawn)
AGENTS = ("DVP", "PPO")
#: the metrics reported per algorithm (keys of :func:`final_metrics`)
METRICS = ("value_mse", "value_rel_mse", "closed_loop_cost", "env_interactions", "model_evaluations", "wallclock_s")
#: target of the comparison: DVP's value error this many times below PPO's at equal wall-clock
TARGET_ERROR_RATIO = 100.0


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class EnvSettings:
    """Per-env defaults of the benchmark.

    :param dvp: ``DVP`` constructor arguments (``horizon``, ``n_samples``, ...)
    :param dvp_iterations: DVP's iteration budget
    :param state_labels: names of the state coordinates, (nx,)
    :param slice_dims: the two state coordinates of the value-map plane (the others are 0)
    :param slice_low: lower corner of the plane, (2,)
    :param slice_high: upper corner of the plane, (2,)
    """

    dvp: dict[str, Any]
    dvp_iterations: int
    state_labels: tuple[str, ...]
    slice_dims: tuple[int, int] = (0, 1)
    slice_low: tuple[float, float] = (-1.0, -1.0)
    slice_high: tuple[float, float] = (1.0, 1.0)


#: per-env defaults; the value-map planes cover each env's start distribution. With gamma = 0.95 the
#: ground truth needs ~180 steps (0.95^180 = 1e-4); DVP's effective horizon after i iterations is
#: i T, so the budgets reach it (docs/REPRODUCTION.md, "Design measurements behind defaults", has how T was chosen).
ENV_SETTINGS: dict[str, EnvSettings] = {
    "dvp_rl/Pendulum-v0": EnvSettings(
        dvp={"horizon": 20, "n_samples": 300, "fit": {"max_epochs": 200}}, dvp_iterations=8,
        state_labels=("th", "thdot"), slice_low=(-math.pi, -1.0), slice_high=(math.pi, 1.0),
    ),
    "dvp_rl/CartPole-v0": EnvSettings(
        dvp={"horizon": 60, "n_samples": 500, "fit": {"max_epochs": 200}}, dvp_iterations=6,
        state_labels=("x", "th", "xdot", "thdot"), slice_low=(-1.0, -0.3), slice_high=(1.0, 0.3),
    ),
    "dvp_rl/Unicycle-v0": EnvSettings(
        dvp={"horizon": 20, "n_samples": 300, "fit": {"max_epochs": 200}}, dvp_iterations=6,
        state_labels=("x", "y", "th"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class BenchmarkConfig(CompareConfig):
    """What one benchmark run does (and :class:`~dvp_rl.compare.harness.CompareConfig`'s ``budget_seconds``,
    ``dvp_kwargs``, ``n_workers``, ``out``, ``verbose``).

    :param env_ids: envs with an entry in :data:`ENV_SETTINGS`
    :param seeds: training seeds (each seeds DVP and PPO alike)
    :param gamma: discount of both algorithms and of the ground truth
    :param dvp_iterations: DVP's iteration budget (``None``: the env's default)
    :param ppo_timesteps: PPO's timestep budget (``None``: ``n_timesteps`` of ``ppo_kwargs``, else of ``hyperparams.yml``)
    :param n_eval_states: validation states with ground truth
    :param n_closed_loop: closed-loop start states (the first validation states)
    :param closed_loop_steps: closed-loop length (``None``: ``ceil(3 / (1 - gamma))``)
    :param closed_loop_every: closed-loop cost at every ``k``-th evaluation (0: at the end only;
        it is always measured at the end)
    :param grid_size: value maps on a ``grid_size x grid_size`` grid of the env's plane
    :param env_kwargs: per env id, keyword arguments of ``gymnasium.make`` shared by DVP, PPO,
        the ground truth and the closed loop (e.g. ``{"dvp_rl/Pendulum-v0": {"max_torque": 6.0}}``)
    :param ppo_kwargs: override ``hyperparams.yml`` entries of every env (e.g. ``n_steps``)
    :param ground_truth_horizon: ``None``: :func:`dvp_rl.references.ground_truth.default_horizon`
    :param ground_truth_cache: ground-truth cache folder (``None``: no cache)
    :param eval_seed: seed of the validation states, independent of the training seeds

    ``dvp_kwargs`` override DVP's settings of every env; ``n_workers`` are the processes of DVP's
    solves and of the ground truth (PPO runs in one); ``out`` defaults to
    ``runs/<env>__benchmark__<timestamp>``, or ``runs/benchmark__<timestamp>`` for several envs.

    :raises ValueError: an env without settings, no env or seed, ``gamma`` outside (0, 1), more
        closed-loop starts than validation states, ``env_kwargs`` of another env, a shared setting
        (``gamma``, ``seed``, ``env``, ``env_id``) set for one algorithm, or a bad common setting
    """

    env_ids: tuple[str, ...] = DEFAULT_ENVS
    seeds: tuple[int, ...] = (0, 1, 2)
    gamma: float = 0.95
    dvp_iterations: int | None = None
    ppo_timesteps: int | None = None
    n_eval_states: int = 100
    n_closed_loop: int = 5
    closed_loop_steps: int | None = None
    closed_loop_every: int = 1
    grid_size: int = 15
    env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ppo_kwargs: dict[str, Any] = field(default_factory=dict)
    ground_truth_horizon: int | None = None
    ground_truth_cache: str | None = "runs/ground_truth"
    eval_seed: int = 10_000

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [e for e in self.env_ids if e not in ENV_SETTINGS]
        if unknown:
            raise ValueError(f"no benchmark settings for {unknown}; known envs: {sorted(ENV_SETTINGS)}")
        if not self.env_ids or not self.seeds:
            raise ValueError("the benchmark needs at least one env and one seed")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1) (discounted ground truth and closed loop), got {self.gamma}")
        if self.n_closed_loop > self.n_eval_states:
            raise ValueError(f"n_closed_loop ({self.n_closed_loop}) must not exceed n_eval_states ({self.n_eval_states})")
        stray = sorted(set(self.env_kwargs) - set(self.env_ids))
        if stray:
            raise ValueError(f"env_kwargs given for {stray}, which are not among env_ids {list(self.env_ids)}")
        shared = {"gamma", "seed", "env", "env_id"} & (set(self.dvp_kwargs) | set(self.ppo_kwargs))
        if shared:
            raise ValueError(f"{sorted(shared)} must not be set per algorithm: both share the env, gamma and the seeds")

    @property
    def steps(self) -> int:
        """Closed-loop length: ``closed_loop_steps`` or ``ceil(3 / (1 - gamma))``."""
        return int(self.closed_loop_steps or math.ceil(3.0 / (1.0 - self.gamma)))

    def default_out(self, stamp: str) -> Path:
        prefix = f"{short_name(self.env_ids[0])}__benchmark" if len(self.env_ids) == 1 else "benchmark"
        return Path("runs") / f"{prefix}__{stamp}"


#: ``dvp-rl benchmark --quick``: the unicycle (the ground truth of its validation states is the
#: quickest of the three, and the gap between the agents clear), one seed, PPO's full budget of
#: ``hyperparams.yml``, 5 smaller DVP iterations, 60 s caps
QUICK = BenchmarkConfig(
    env_ids=("dvp_rl/Unicycle-v0",), seeds=(0,), dvp_iterations=5, budget_seconds=60.0,
    dvp_kwargs={"n_samples": 200, "fit": {"max_epochs": 100}},
)


def short_name(env_id: str) -> str:
    """``"dvp_rl/Unicycle-v0"`` -> ``"Unicycle-v0"`` (folder and file names)."""
    return env_id.split("/")[-1]


class SliceGrid(NamedTuple):
    """States on a plane of state space: ``states`` (G*G, nx) with ``states[i * G + j]`` at
    ``(axes[0][i], axes[1][j])`` on coordinates ``dims``, the other coordinates 0."""

    states: np.ndarray
    axes: tuple[np.ndarray, np.ndarray]
    dims: tuple[int, int]
    labels: tuple[str, str]


def slice_grid(settings: EnvSettings, nx: int, size: int) -> SliceGrid:
    """The ``size x size`` grid of the env's value-map plane."""
    xs = np.linspace(settings.slice_low[0], settings.slice_high[0], size)
    ys = np.linspace(settings.slice_low[1], settings.slice_high[1], size)
    grid_x, grid_y = np.meshgrid(xs, ys, indexing="ij")
    states = np.zeros((size * size, nx))
    states[:, settings.slice_dims[0]] = grid_x.reshape(-1)
    states[:, settings.slice_dims[1]] = grid_y.reshape(-1)
    labels = (settings.state_labels[settings.slice_dims[0]], settings.state_labels[settings.slice_dims[1]])
    return SliceGrid(states, (xs, ys), settings.slice_dims, labels)


# ---------------------------------------------------------------------------- the preset
class BenchmarkPreset(Preset):
    """The benchmark as a preset of the harness: per env a ground truth (validation states and the
    value-map grid), every seed's DVP and PPO scored by :class:`~dvp_rl.compare.scorers.ValueErrorScorer`
    during training, per env figures; tensorboard runs ``tb/<env>/<ALGO>_seed<k>`` (``compare/*``,
    ``compare_wallclock/*``, hyper-parameters) beside the agents' own logs ``tb/<env>/internal/``."""

    agents = AGENTS
    outputs = ("summary.json", "summary.md", "tb", "figures")

    def __init__(self, config: BenchmarkConfig) -> None:
        super().__init__(config)
        self.config: BenchmarkConfig = config
        self.env_ids, self.seeds = tuple(config.env_ids), tuple(config.seeds)
        self.truths: dict[str, GroundTruth] = {}
        self.starts: dict[str, np.ndarray] = {}
        self._grids: dict[str, tuple[SliceGrid, GroundTruth, float]] = {}

    def _env_kwargs(self, env_id: str) -> dict[str, Any]:
        return dict(self.config.env_kwargs.get(env_id, {}))

    def run_spec(self, name: str, env_id: str, seed: int) -> RunSpec:
        c = self.config
        if name == "DVP":
            settings = ENV_SETTINGS[env_id]
            overrides, budget = merge_settings({**settings.dvp, "iterations": settings.dvp_iterations}, c.dvp_kwargs), c.dvp_iterations
        else:
            overrides, budget = dict(c.ppo_kwargs), c.ppo_timesteps
        return RunSpec(env_id, seed, c.gamma, self._env_kwargs(env_id), overrides, budget, c.n_workers)

    def scorers(self, env_id: str) -> Sequence[Scorer]:
        import time

        c = self.config
        system = envs.make(env_id, self._env_kwargs(env_id)).unwrapped
        t0 = time.perf_counter()
        states = system.sample_states(c.n_eval_states, np.random.default_rng(c.eval_seed))
        truth = self._ground_truth(env_id, states)
        grid = slice_grid(ENV_SETTINGS[env_id], system.nx, c.grid_size)
        grid_truth = self._ground_truth(env_id, grid.states)
        if c.verbose:
            print(f"{env_id}: ground truth (T={truth.horizon}) on {int(truth.converged.sum())}/{len(states)} validation "
                  f"and {int(grid_truth.converged.sum())}/{len(grid.states)} grid states in {time.perf_counter() - t0:.1f} s", flush=True)
        self.truths[env_id], self.starts[env_id] = truth, states[: c.n_closed_loop]
        self._grids[env_id] = (grid, grid_truth, system.dt)
        starts, env_kwargs = self.starts[env_id], self._env_kwargs(env_id)
        return [ValueErrorScorer(truth, starts, c.gamma, c.steps, c.closed_loop_every, env_kwargs, c.verbose), SampleCountScorer()]

    def _ground_truth(self, env_id: str, states: np.ndarray) -> GroundTruth:
        c = self.config
        return ground_truth(env_id, states, gamma=c.gamma, horizon=c.ground_truth_horizon, env_kwargs=c.env_kwargs.get(env_id),
                            cache_dir=c.ground_truth_cache, n_workers=c.n_workers, progress=bool(c.verbose))  # fmt: skip

    def internal_log(self, name: str, env_id: str, seed: int) -> Path:
        return self.out / "tb" / short_name(env_id) / "internal" / f"{name}_seed{seed}"

    def run_log(self, name: str, env_id: str, seed: int) -> Path:
        return self.out / "tb" / short_name(env_id) / f"{name}_seed{seed}"

    def after_run(self, run: AgentRun, writer: SummaryWriter | None) -> None:
        """The run's hyper-parameters and final metrics in its tensorboard run (text and hparams); only the
        first seed's models are kept (they are drawn)."""
        c, env_id = self.config, run.agent.spec.env_id
        final = final_metrics(run)
        hparams = {"algo": run.name, "env_id": env_id, "env_kwargs": self._env_kwargs(env_id), "seed": run.seed,
                   "budget_seconds": c.budget_seconds, "n_eval_states": c.n_eval_states,
                   "ground_truth_horizon": self.truths[env_id].horizon, "stopped_by_budget": run.stopped_by_cap}  # fmt: skip
        hparams |= {f"{run.name.lower()}/{k}": v for k, v in run.settings.items()}
        hparams = {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(jsonable(v))) for k, v in hparams.items()}
        if writer is not None:
            writer.add_text("hyperparameters", reports.hparams_text(hparams), run.sample_count)
            writer.add_hparams(hparams, {f"hparams/{k}": v for k, v in final.items()}, run_name=".", global_step=run.sample_count)
        if run.seed != self.seeds[0]:
            run.agent.model = None

    def after_env(self, env_id: str, runs: Mapping[str, list[AgentRun]]) -> None:
        """The env's figures: PNG in ``figures/`` and images in ``tb/<env>/figures``."""
        grid, grid_truth, dt = self._grids[env_id]
        (self.out / "figures").mkdir(parents=True, exist_ok=True)
        figures = benchmark_figures(env_id, self.truths[env_id], runs, grid, grid_truth, dt)
        with summary_writer(self.out / "tb" / short_name(env_id) / "figures") as writer:
            for name, figure in figures.items():
                image = reports.save_figure(figure, self.out / "figures" / f"{short_name(env_id)}__{name}.png")
                writer.add_image(f"figures/{name}", image, dataformats="HWC")

    def summarize(self, runs: Runs, total_s: float) -> dict[str, Any]:
        return summarize(runs, self.truths, self.starts, self.config, total_s)

    def markdown(self, summary: Mapping[str, Any]) -> str:
        return summary_markdown(summary)


def run_benchmark(config: BenchmarkConfig) -> ComparisonResult:
    """Run the whole benchmark of ``config``; returns where it wrote, what it found and every run."""
    return harness.run(BenchmarkPreset(config))


def benchmark_figures(env_id: str, truth: GroundTruth, runs: Mapping[str, list[AgentRun]], grid: SliceGrid, grid_truth: GroundTruth,
                      dt: float) -> dict[str, Figure]:  # fmt: skip
    """The figures of one env: ``value_maps`` and ``closed_loop`` of the first seed's final
    models, ``value_error`` of every seed (see :mod:`dvp_rl.compare.plots`)."""
    from dvp_rl.compare import plots

    settings = ENV_SETTINGS[env_id]
    size = len(grid.axes[0]), len(grid.axes[1])
    estimates = {name: results[0].agent.values(grid.states).reshape(size) for name, results in runs.items()}
    seed = next(iter(runs.values()))[0].seed
    name = short_name(env_id)
    return {
        "value_maps": plots.value_maps(grid.axes, grid.labels, grid_truth.V.reshape(size), estimates,
                                       f"{name}: value over the ({', '.join(grid.labels)}) plane, other coordinates 0 (seed {seed})"),
        "closed_loop": plots.closed_loop_trajectories({a: r[0].scores["value_error"].closed_loop for a, r in runs.items()}, dt,
                                                      settings.state_labels, settings.slice_dims, f"{name}: closed loop (seed {seed})"),
        "value_error": plots.value_error_curves({a: [r.scores["value_error"].history for r in results] for a, results in runs.items()},
                                                f"{name}: value error on {len(truth.states)} validation states"),
    }  # fmt: skip


# ---------------------------------------------------------------------------- summary
def final_metrics(run: AgentRun) -> dict[str, float]:
    """The final value of each of :data:`METRICS` (the kind of sample the agent does not use is 0)."""
    last = run.scores["value_error"].history[-1]
    counts = {kind: float(count) for kind, count in run.scores["samples"].items()}
    return {"value_mse": last.value_mse, "value_rel_mse": last.value_rel_mse, "closed_loop_cost": last.closed_loop_cost,
            **counts, "wallclock_s": run.train_s}  # fmt: skip


def value_at(history: Sequence[EvalRecord], seconds: float) -> EvalRecord:
    """The last evaluation made by ``seconds`` of training (the first one if none)."""
    done = [r for r in history if r.wallclock_s <= seconds + 1e-9]
    return done[-1] if done else history[0]


def compare_targets(dvp: AgentRun, ppo: AgentRun) -> dict[str, Any]:
    """The target of one seed, at equal wall-clock ``t = min(DVP's, PPO's training time)``.

    ``error_ratio``: PPO's value MSE over DVP's, each from its last evaluation by ``t``
    (target >= :data:`TARGET_ERROR_RATIO`); ``wallclock_to_match``: DVP's training time at its
    first evaluation after training started with a value MSE no higher than PPO's final one
    (``None`` if never), and ``match_ratio``: PPO's training time over that.
    """
    dvp_history, ppo_history = dvp.scores["value_error"].history, ppo.scores["value_error"].history
    t = min(dvp.train_s, ppo.train_s)
    error_ratio = value_at(ppo_history, t).value_mse / max(value_at(dvp_history, t).value_mse, 1e-300)
    target = ppo_history[-1].value_mse
    matched = next((r.wallclock_s for r in dvp_history if r.transitions > 0 and r.value_mse <= target), None)
    return {"equal_wallclock_s": t, "error_ratio": error_ratio, "wallclock_to_match": matched,
            "match_ratio": None if matched is None else ppo.train_s / max(matched, 1e-9)}  # fmt: skip


def summarize(runs: Runs, truths: Mapping[str, GroundTruth], starts: Mapping[str, np.ndarray], config: BenchmarkConfig,
              total_s: float) -> dict[str, Any]:  # fmt: skip
    """``summary.json``'s content: per env, mean and std over seeds of :data:`METRICS` for each
    algorithm, the ratios PPO/DVP of the means, the targets and every evaluation.

    ``optimal_closed_loop_cost`` is the ground-truth ``V*`` averaged over the closed-loop
    starts: the infinite-horizon optimum, an upper bound of the optimal truncated closed loop."""
    by_env: dict[str, Any] = {}
    for env_id, by_algo in runs.items():
        finals = {algo: [final_metrics(r) for r in results] for algo, results in by_algo.items()}
        metrics = {algo: {m: reports.stats(f[m] for f in finals[algo]) for m in METRICS} for algo in by_algo}
        ratios = {m: metrics["PPO"][m]["mean"] / metrics["DVP"][m]["mean"] if metrics["DVP"][m]["mean"] else float("nan") for m in METRICS}
        per_seed = [compare_targets(d, p) for d, p in zip(by_algo["DVP"], by_algo["PPO"])]
        truth, env_starts = truths[env_id], starts[env_id]
        by_env[env_id] = {
            "metrics": metrics,
            "ratios_ppo_over_dvp": ratios,
            "optimal_closed_loop_cost": float(np.nanmean(truth.V[: len(env_starts)])),
            "targets": {
                "per_seed": per_seed,
                "error_ratio": reports.stats(s["error_ratio"] for s in per_seed),
                "met": all(s["error_ratio"] >= TARGET_ERROR_RATIO for s in per_seed),
            },
            "ground_truth_horizon": truth.horizon,
            "closed_loop_starts": env_starts,
            "runs": {algo: [{"seed": r.seed, "hyperparameters": r.settings, "eval_s": r.paused_s, "stopped_by_budget": r.stopped_by_cap,
                             "untrained": r.untrained, "history": [e._asdict() for e in r.scores["value_error"].history]}
                            for r in results]
                     for algo, results in by_algo.items()},
        }  # fmt: skip
    return {"config": config.settings(), "closed_loop_steps": config.steps, "total_s": total_s, "envs": by_env,
            "targets": {"error_ratio": TARGET_ERROR_RATIO}}  # fmt: skip


def _fmt(stats: dict[str, Any], integer: bool = False) -> str:
    if integer:
        return f"{stats['mean']:,.0f} ± {stats['std']:,.0f}"
    return f"{stats['mean']:.3g} ± {stats['std']:.2g}"


def summary_markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the protocol, then per env a table of the final metrics, the budgets and the targets."""
    config = summary["config"]
    names = {"value_mse": "final value MSE", "value_rel_mse": "final value relative MSE",
             "closed_loop_cost": "closed-loop discounted cost", "env_interactions": "env interactions (env steps)",
             "model_evaluations": "model evaluations (DDP node evaluations)", "wallclock_s": "training wall-clock (s)"}  # fmt: skip
    every = config["closed_loop_every"]
    when = "at every evaluation" if every == 1 else "at the end only" if every == 0 else f"every {every} evaluations and at the end"
    lines = [
        "# DVP vs PPO benchmark",
        "",
        f"Seeds {list(config['seeds'])}, gamma {config['gamma']} for both algorithms and the ground truth. Mean ± std over seeds "
        f"(total run time {summary['total_s']:.0f} s).",
        "",
        f"- Value error: MSE of V(x) against long-horizon multi-start DDP on {config['n_eval_states']} fixed validation "
        "states (DVP: the learned value; PPO: its critic on the cost scale); relative MSE = MSE / mean V*^2.",
        f"- Closed loop: mean discounted cost over {summary['closed_loop_steps']} steps from the first {config['n_closed_loop']} "
        f"validation states (DVP: MPC with the learned terminal value; PPO: its deterministic policy), measured {when}.",
        "- Samples: env interactions (PPO's env steps; DVP learns from the model and uses none) and model evaluations "
        "(DVP's DDP node evaluations: derivative sweeps and line-search rollouts) are different things and are reported apart; "
        "the algorithms are compared at equal training wall-clock.",
        f"- Wall-clock: training time only (evaluations paused out), capped at {config['budget_seconds']:g} s per algorithm; "
        "the cap is checked after every DVP iteration (DVP may overrun it by one iteration) and at every PPO step. "
        f"DVP solves on {config['n_workers']} processes, PPO runs in one.",
        f"- Target: at equal wall-clock t = min(DVP's, PPO's training time), PPO's value MSE >= {TARGET_ERROR_RATIO:g} x DVP's "
        "(each from its last evaluation by t, the untrained model's if none); met when every seed meets it.",
        "",
    ]  # fmt: skip
    for env_id, env in summary["envs"].items():
        metrics, ratios, targets = env["metrics"], env["ratios_ppo_over_dvp"], env["targets"]
        kwargs = config.get("env_kwargs", {}).get(env_id)
        title = f"{env_id} ({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if kwargs else env_id
        lines += [f"## {title}", "", "| metric | DVP | PPO | PPO / DVP |", "|---|---|---|---|"]
        for key, name in names.items():
            integer = key in SAMPLE_KINDS
            lines.append(f"| {name} | {_fmt(metrics['DVP'][key], integer)} | {_fmt(metrics['PPO'][key], integer)} | {ratios[key]:.3g} |")
        dvp, ppo = env["runs"]["DVP"], env["runs"]["PPO"]
        hp_dvp, hp_ppo = dvp[0]["hyperparameters"], ppo[0]["hyperparameters"]
        capped = {algo: sum(r["stopped_by_budget"] for r in runs) for algo, runs in env["runs"].items()}
        lines += [
            "",
            f"Budgets: DVP {hp_dvp['iterations']} iterations of {hp_dvp['n_samples']} DDP solves (horizon {hp_dvp['horizon']}, "
            f"fits of up to {hp_dvp['fit']['max_epochs']} epochs), PPO {hp_ppo['n_timesteps']:,} timesteps; stopped by the wall-clock "
            f"cap: DVP {capped['DVP']}/{len(dvp)}, PPO {capped['PPO']}/{len(ppo)} seeds. Ground truth: horizon "
            f"{env['ground_truth_horizon']}; optimal closed-loop reference (V* averaged over the closed-loop starts, "
            f"infinite horizon): {env['optimal_closed_loop_cost']:.4g}.",
        ]  # fmt: skip
        untrained = [f"{algo} seed {r['seed']}: {r['untrained']}" for algo, runs in env["runs"].items() for r in runs if r.get("untrained")]
        if untrained:
            lines.append(f"**Untrained** (their rows are those of untrained agents): {'; '.join(untrained)}.")
        error = targets["error_ratio"]
        t_equal = np.mean([s["equal_wallclock_s"] for s in targets["per_seed"]])
        verdict = "met" if targets["met"] else "NOT met"
        lines += [
            "",
            f"**Target {verdict}** ({env_id}): at equal wall-clock (t = {t_equal:.1f} s), PPO's value MSE is "
            f"{error['mean']:.3g} ± {error['std']:.2g} times DVP's (target >= {TARGET_ERROR_RATIO:g}).",
        ]  # fmt: skip
        matches = [s["wallclock_to_match"] for s in targets["per_seed"]]
        if all(m is not None for m in matches):
            ratio = np.mean([s["match_ratio"] for s in targets["per_seed"]])
            lines.append(f"DVP's value MSE was already below PPO's final one after {np.mean(matches):.1f} s of training "
                         f"(its first evaluation that low; PPO trained {ratio:.3g} times as long).")  # fmt: skip
        else:
            lines.append("DVP's value MSE did not get below PPO's final one in every seed.")
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "AGENTS", "DEFAULT_ENVS", "ENV_SETTINGS", "METRICS", "QUICK", "TARGET_ERROR_RATIO", "BenchmarkConfig", "BenchmarkPreset",
    "EnvSettings", "SliceGrid", "benchmark_figures", "compare_targets", "final_metrics", "run_benchmark", "slice_grid", "summarize",
    "summary_markdown", "value_at",
]  # fmt: skip
