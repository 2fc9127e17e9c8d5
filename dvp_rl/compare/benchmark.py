"""DVP against PPO on the same tasks (Parag et al., ICRA 2022, Section V): value error
against ground truth, closed-loop cost, samples and wall-clock.

For every env a fixed validation set of states (``sample_states`` with a seed that does
not depend on the training seed) gets a cached long-horizon ground truth
(:func:`dvp_rl.references.ground_truth.ground_truth`, same discount as both learners). For every
seed, DVP and PPO are trained under their own budget (iterations, resp. timesteps) and a
common wall-clock cap, and evaluated regularly by one shared routine:

* value MSE and relative MSE of ``V(x)`` on the validation set (DVP: the learned value;
  PPO: its critic on the cost scale, :func:`baselines.ppo.critic_values`);
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
``summary.md`` and ``summary.json``::

    dvp-rl benchmark --quick
    tensorboard --logdir runs/<out>/tb

Torch is set to one thread by the CLI entry point (:func:`dvp_rl.cli.main`), not here.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from baselines.ppo import critic_values, load_hyperparams, make_ppo, ppo_actions
from dvp_rl.control.rollout import Rollout, discounted_cost, rollout_from_states
from dvp_rl.agent import DVP
from dvp_rl.checkpoint import jsonable
from dvp_rl.config import merge_settings
from dvp_rl.references.ground_truth import GroundTruth, ground_truth, value_errors
from dvp_rl.compare.tb import summary_writer
import envs

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

#: the paper's three systems, the default of ``dvp-rl benchmark``
DEFAULT_ENVS = ("dvp_rl/Pendulum-v0", "dvp_rl/CartPole-v0", "dvp_rl/Unicycle-v0")
#: the metrics reported per algorithm (keys of :class:`RunResult.final`)
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


#: per-env defaults; the value-map planes cover each env's start distribution. With
#: gamma = 0.95 the ground truth needs ~180 steps (0.95^180 = 1e-4); DVP's effective
#: horizon after i iterations is i T, so the budgets reach it (the choices of T are
#: measured in docs/REPRODUCTION.md).
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
class BenchmarkConfig:
    """What one benchmark run does.

    :param env_ids: envs with an entry in :data:`ENV_SETTINGS`
    :param seeds: training seeds (each seeds DVP and PPO alike)
    :param gamma: discount of both algorithms and of the ground truth
    :param dvp_iterations: DVP's iteration budget (``None``: the env's default)
    :param ppo_timesteps: PPO's timestep budget (``None``: ``n_timesteps`` of ``hyperparams.yml``)
    :param budget_seconds: wall-clock cap of each algorithm's training (evaluations excluded);
        checked after every DVP iteration and every PPO env step
    :param n_eval_states: validation states with ground truth
    :param n_closed_loop: closed-loop start states (the first validation states)
    :param closed_loop_steps: closed-loop length (``None``: ``ceil(3 / (1 - gamma))``)
    :param closed_loop_every: closed-loop cost at every ``k``-th evaluation (0: at the end only;
        it is always measured at the end)
    :param grid_size: value maps on a ``grid_size x grid_size`` grid of the env's plane
    :param env_kwargs: per env id, keyword arguments of ``gymnasium.make`` shared by DVP, PPO,
        the ground truth and the closed loop (e.g. ``{"dvp_rl/Pendulum-v0": {"max_torque": 6.0}}``)
    :param dvp_kwargs: override DVP constructor arguments of every env (e.g. ``n_samples``)
    :param ppo_kwargs: override ``hyperparams.yml`` entries of every env (e.g. ``n_steps``)
    :param n_workers: processes of DVP's solves and of the ground truth (PPO runs in one)
    :param ground_truth_horizon: ``None``: :func:`dvp_rl.references.ground_truth.default_horizon`
    :param ground_truth_cache: ground-truth cache folder (``None``: no cache)
    :param eval_seed: seed of the validation states, independent of the training seeds
    :param out: output folder (``None``: ``runs/<env>__benchmark__<timestamp>``, or
        ``runs/benchmark__<timestamp>`` for several envs)
    :param verbose: 0 silent, 1 one line per evaluation
    """

    env_ids: tuple[str, ...] = DEFAULT_ENVS
    seeds: tuple[int, ...] = (0, 1, 2)
    gamma: float = 0.95
    dvp_iterations: int | None = None
    ppo_timesteps: int | None = None
    budget_seconds: float = 600.0
    n_eval_states: int = 100
    n_closed_loop: int = 5
    closed_loop_steps: int | None = None
    closed_loop_every: int = 1
    grid_size: int = 15
    env_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    dvp_kwargs: dict[str, Any] = field(default_factory=dict)
    ppo_kwargs: dict[str, Any] = field(default_factory=dict)
    n_workers: int = 2
    ground_truth_horizon: int | None = None
    ground_truth_cache: str | None = "runs/ground_truth"
    eval_seed: int = 10_000
    out: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
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
        if self.budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be positive, got {self.budget_seconds}")

    @property
    def steps(self) -> int:
        """Closed-loop length: ``closed_loop_steps`` or ``ceil(3 / (1 - gamma))``."""
        return int(self.closed_loop_steps or math.ceil(3.0 / (1.0 - self.gamma)))

    def out_dir(self) -> Path:
        """The output folder (see ``out``)."""
        if self.out is not None:
            return Path(self.out)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        prefix = f"{short_name(self.env_ids[0])}__benchmark" if len(self.env_ids) == 1 else "benchmark"
        return Path("runs") / f"{prefix}__{stamp}"


#: ``dvp-rl benchmark --quick``: the unicycle (ground truth in ~40 s, a clear gap), one seed,
#: PPO's full budget of ``hyperparams.yml`` (100k steps), 5 smaller DVP iterations, 60 s caps
QUICK = BenchmarkConfig(
    env_ids=("dvp_rl/Unicycle-v0",), seeds=(0,), dvp_iterations=5, budget_seconds=60.0,
    dvp_kwargs={"n_samples": 200, "fit": {"max_epochs": 100}},
)


def short_name(env_id: str) -> str:
    """``"dvp_rl/Unicycle-v0"`` -> ``"Unicycle-v0"`` (folder and file names)."""
    return env_id.split("/")[-1]


# ---------------------------------------------------------------------------- records
class EvalRecord(NamedTuple):
    """One evaluation during training.

    ``transitions``: the algorithm's samples so far (see :attr:`Algorithm.samples`); ``wallclock_s``: training time so far
    (evaluations excluded); ``value_mse``, ``value_rel_mse``: against ground truth on the
    validation set; ``closed_loop_cost``: mean discounted cost of the closed loop (NaN where
    it was not measured).
    """

    transitions: int
    wallclock_s: float
    value_mse: float
    value_rel_mse: float
    closed_loop_cost: float


@dataclass
class RunResult:
    """One algorithm trained on one env with one seed.

    :param history: the evaluations, in order; the last one is the final model's, with its
        closed-loop cost
    :param transitions: the algorithm's samples in training (:attr:`Algorithm.samples`)
    :param samples: what ``transitions`` counts: ``"env_interactions"`` or ``"model_evaluations"``
    :param wallclock_s: training wall-clock (evaluations excluded)
    :param eval_s: time spent evaluating
    :param closed_loop: the final closed-loop trajectories (:class:`baselines.ppo.Rollout`)
    :param hyperparameters: what defines the run (for tensorboard and ``summary.json``)
    :param stopped_by_budget: whether the wall-clock cap stopped training before its own budget was spent
    :param model: the trained model (kept for the first seed's figures, else ``None``)
    """

    algo: str
    seed: int
    history: list[EvalRecord]
    transitions: int
    wallclock_s: float
    eval_s: float
    closed_loop: Rollout
    hyperparameters: dict[str, Any]
    stopped_by_budget: bool
    samples: str = "env_interactions"
    model: Any = None

    @property
    def final(self) -> dict[str, float]:
        """The final value of each of :data:`METRICS` (the kind of sample the algorithm does not use is 0)."""
        last = self.history[-1]
        counts = {kind: float(self.transitions) if kind == self.samples else 0.0 for kind in SAMPLE_KINDS}
        return {"value_mse": last.value_mse, "value_rel_mse": last.value_rel_mse, "closed_loop_cost": last.closed_loop_cost,
                **counts, "wallclock_s": self.wallclock_s}


class TrainingClock:
    """Wall-clock of training alone: the time spent inside :meth:`paused` is left out."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.paused_s = 0.0

    def start(self) -> None:
        """Start (or restart) from zero."""
        self._start = time.perf_counter()
        self.paused_s = 0.0

    def elapsed(self) -> float:
        """Seconds since :meth:`start`, less the paused time."""
        return time.perf_counter() - self._start - self.paused_s

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Leave out the time of the ``with`` block."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused_s += time.perf_counter() - t0


# ---------------------------------------------------------------------------- the two algorithms
@dataclass(frozen=True)
class Task:
    """One env's evaluation material, shared by both algorithms and every seed.

    ``truth``: ground truth on the validation states (N, nx); ``starts``: closed-loop start
    states (n_closed_loop, nx), the first validation states; ``env_kwargs``: arguments of
    ``gymnasium.make`` of every env built for this task.
    """

    env_id: str
    settings: EnvSettings
    truth: GroundTruth
    starts: np.ndarray
    env_kwargs: dict[str, Any] = field(default_factory=dict)


#: what an algorithm's ``num_timesteps`` counts: steps of the env itself, or evaluations of its model
SAMPLE_KINDS = ("env_interactions", "model_evaluations")


@dataclass(frozen=True)
class Algorithm:
    """The algorithm-specific parts of the shared training and evaluation loop.

    :param name: ``"DVP"`` or ``"PPO"`` (run names, legends, summary)
    :param build: ``(config, task, seed) -> (model, hyperparameters)``
    :param learn: ``(config, task, model, callback) -> bool``, training until the algorithm's own
        budget is spent (returns True) or the callback stops it at the wall-clock cap (False)
    :param values: ``(model, states (N, nx)) -> V (N,)``, the model's cost-to-go estimate
    :param policy: ``model -> act``, ``act(states (N, nx)) -> actions (N, nu)`` for
        :func:`dvp_rl.control.rollout.rollout_from_states` (one per closed loop)
    :param eval_on_rollout_start: evaluate at SB3's ``on_rollout_start`` (PPO: just after
        each update) rather than at every ``on_step`` (DVP: once per iteration)
    :param samples: what the model's ``num_timesteps`` counts (:data:`SAMPLE_KINDS`): PPO's env
        steps are ``"env_interactions"``, DVP's DDP node evaluations ``"model_evaluations"``
    """

    name: str
    build: Callable[[BenchmarkConfig, Task, int], tuple[Any, dict[str, Any]]]
    learn: Callable[[BenchmarkConfig, Task, Any, BaseCallback], bool]
    values: Callable[[Any, np.ndarray], np.ndarray]
    policy: Callable[[Any], Callable[[np.ndarray], np.ndarray]]
    eval_on_rollout_start: bool
    samples: str


def dvp_actions(agent: DVP) -> Callable[[np.ndarray], np.ndarray]:
    """``states (N, nx) -> actions (N, nu)``: a fresh MPC controller of the agent (:meth:`DVP.controller`),
    one warm start per episode; make one per closed loop."""
    controller = agent.controller()
    return controller.predict


def _build_dvp(config: BenchmarkConfig, task: Task, seed: int) -> tuple[DVP, dict[str, Any]]:
    kwargs = {"n_workers": config.n_workers, "checkpoint_dir": None, **merge_settings(task.settings.dvp, config.dvp_kwargs)}
    agent = DVP(task.env_id, gamma=config.gamma, seed=seed, env_kwargs=task.env_kwargs, **kwargs)
    iterations = config.dvp_iterations or task.settings.dvp_iterations
    return agent, {**agent.hyperparameters(), "iterations": iterations, "n_workers": agent.n_workers}


def _learn_dvp(config: BenchmarkConfig, task: Task, agent: DVP, callback: BaseCallback) -> bool:
    iterations = config.dvp_iterations or task.settings.dvp_iterations
    agent.learn(iterations, callback=callback)
    return agent.iteration >= iterations


def _build_ppo(config: BenchmarkConfig, task: Task, seed: int) -> tuple[Any, dict[str, Any]]:
    model = make_ppo(task.env_id, config.gamma, seed, env_kwargs=task.env_kwargs, **config.ppo_kwargs)
    settings = {**load_hyperparams(task.env_id), **config.ppo_kwargs}
    settings["n_timesteps"] = _ppo_timesteps(config, task.env_id)
    return model, {**settings, "gamma": config.gamma, "seed": seed}


def _learn_ppo(config: BenchmarkConfig, task: Task, model: Any, callback: BaseCallback) -> bool:
    timesteps = _ppo_timesteps(config, task.env_id)
    model.learn(timesteps, callback=callback)
    return model.num_timesteps >= timesteps


def _ppo_timesteps(config: BenchmarkConfig, env_id: str) -> int:
    return int(config.ppo_timesteps or load_hyperparams(env_id)["n_timesteps"])


DVP_ALGORITHM = Algorithm("DVP", _build_dvp, _learn_dvp, lambda agent, x: agent.value(x), dvp_actions, eval_on_rollout_start=False,
                          samples="model_evaluations")  # fmt: skip
PPO_ALGORITHM = Algorithm("PPO", _build_ppo, _learn_ppo, critic_values, ppo_actions, eval_on_rollout_start=True, samples="env_interactions")
ALGORITHMS = (DVP_ALGORITHM, PPO_ALGORITHM)


# ---------------------------------------------------------------------------- evaluation
class Evaluator:
    """The one evaluation routine of both algorithms: value errors, closed loop, tensorboard.

    :param algo: the algorithm's specific parts (:class:`Algorithm`)
    :param model: the model being trained
    :param task: validation states, ground truth and closed-loop starts
    :param config: gamma, closed-loop length and schedule, verbosity
    :param writer: the run's tensorboard writer
    :param clock: the training clock (paused while evaluating)
    :param label: how progress lines name the run
    """

    def __init__(self, algo: Algorithm, model: Any, task: Task, config: BenchmarkConfig, writer: SummaryWriter,
                 clock: TrainingClock, label: str) -> None:  # fmt: skip
        self.algo, self.model, self.task, self.config = algo, model, task, config
        self.writer, self.clock, self.label = writer, clock, label
        self.history: list[EvalRecord] = []
        self.closed_loop: Rollout | None = None

    def closed_loop_cost(self) -> float:
        """Mean discounted cost of the closed loop from ``task.starts``; keeps the trajectories."""
        self.closed_loop = rollout_from_states(self.algo.policy(self.model), self.task.env_id, self.task.starts, self.config.steps,
                                          env_kwargs=self.task.env_kwargs)
        return float(np.mean(discounted_cost(self.closed_loop.costs, self.config.gamma)))

    def evaluate(self, transitions: int, closed_loop: bool | None = None) -> EvalRecord:
        """Evaluate now; ``closed_loop=None`` follows ``closed_loop_every``."""
        wallclock = self.clock.elapsed()
        with self.clock.paused():
            if closed_loop is None:
                every = self.config.closed_loop_every
                closed_loop = every > 0 and len(self.history) % every == 0
            errors = value_errors(self.task.truth, self.algo.values(self.model, self.task.truth.states))
            cost = self.closed_loop_cost() if closed_loop else float("nan")
            record = EvalRecord(int(transitions), wallclock, errors.value_mse, errors.value_rel_mse, cost)
            self.history.append(record)
            self._log(record)
        return record

    def finish(self, transitions: int) -> EvalRecord:
        """The final evaluation: always with the closed loop; reuses the last record if it is of this model."""
        last = self.history[-1] if self.history else None
        if last is None or last.transitions != transitions:
            return self.evaluate(transitions, closed_loop=True)
        if math.isnan(last.closed_loop_cost):
            with self.clock.paused():
                last = last._replace(closed_loop_cost=self.closed_loop_cost())
                self.history[-1] = last
                self._log(last, closed_loop_only=True)
        return last

    def _log(self, record: EvalRecord, closed_loop_only: bool = False) -> None:
        ms = int(round(1e3 * record.wallclock_s))
        scalars = {"closed_loop_cost": record.closed_loop_cost}
        if not closed_loop_only:
            scalars |= {"value_mse": record.value_mse, "value_rel_mse": record.value_rel_mse}
            scalars |= {f"log10_{k}": math.log10(max(getattr(record, k), 1e-300)) for k in ("value_mse", "value_rel_mse")}
        for tag, value in scalars.items():
            if math.isnan(value):
                continue
            self.writer.add_scalar(f"compare/{tag}", value, record.transitions)
            self.writer.add_scalar(f"compare_wallclock/{tag}", value, ms)
        if not closed_loop_only:
            self.writer.add_scalar("compare/wallclock_s", record.wallclock_s, record.transitions)
            self.writer.add_scalar("compare_wallclock/transitions", record.transitions, ms)
        self.writer.flush()
        if self.config.verbose:
            cost = "" if math.isnan(record.closed_loop_cost) else f", closed-loop cost {record.closed_loop_cost:.4g}"
            print(f"  {self.label}: {record.transitions:>11,d} {self.algo.samples.replace('_', ' ')}, {record.wallclock_s:7.1f} s: "
                  f"value MSE {record.value_mse:.3e} (rel. {record.value_rel_mse:.3e}){cost}", flush=True)


class CompareCallback(BaseCallback):
    """SB3 callback of both algorithms: evaluates on schedule and stops at the wall-clock budget.

    An evaluation before training, then one per DVP iteration (``on_step``) or after each
    PPO update (``on_rollout_start``), and a final one at the end. Returns False from
    ``on_step`` once ``clock.elapsed() >= budget_seconds``.
    """

    def __init__(self, evaluator: Evaluator, budget_seconds: float) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.budget_seconds = float(budget_seconds)

    def _transitions(self) -> int:
        return int(self.model.num_timesteps)

    def _evaluate_if_new(self) -> None:
        history = self.evaluator.history
        if not history or history[-1].transitions != self._transitions():
            self.evaluator.evaluate(self._transitions())

    def _on_training_start(self) -> None:
        self._evaluate_if_new()

    def _on_rollout_start(self) -> None:
        if self.evaluator.algo.eval_on_rollout_start:
            self._evaluate_if_new()

    def _on_step(self) -> bool:
        if not self.evaluator.algo.eval_on_rollout_start:
            self._evaluate_if_new()
        return self.evaluator.clock.elapsed() < self.budget_seconds

    def _on_training_end(self) -> None:
        self.evaluator.finish(self._transitions())


def train_and_evaluate(algo: Algorithm, task: Task, seed: int, config: BenchmarkConfig, tb_dir: Path) -> RunResult:
    """Train ``algo`` on ``task`` with ``seed`` under the budgets of ``config``, evaluating as it goes.

    Writes ``tb_dir/<name>_seed<seed>`` (``compare/*``, ``compare_wallclock/*``, hyper-parameters)
    and the algorithm's own logs to ``tb_dir/internal/<name>_seed<seed>``.
    """
    run_name = f"{algo.name}_seed{seed}"
    model, hyperparameters = algo.build(config, task, seed)
    model.set_logger(configure(str(tb_dir / "internal" / run_name), ["tensorboard"]))
    writer = summary_writer(tb_dir / run_name)
    writer.add_custom_scalars(custom_scalars_layout())
    clock = TrainingClock()
    evaluator = Evaluator(algo, model, task, config, writer, clock, f"{short_name(task.env_id)} {run_name}")
    callback = CompareCallback(evaluator, config.budget_seconds)
    clock.start()
    completed = algo.learn(config, task, model, callback)
    wallclock = clock.elapsed()
    if evaluator.closed_loop is None:  # pragma: no cover - finish() always runs the closed loop
        raise RuntimeError(f"{run_name}: training ended without a final evaluation")
    result = RunResult(algo.name, seed, list(evaluator.history), int(model.num_timesteps), wallclock, clock.paused_s,
                       evaluator.closed_loop, hyperparameters, not completed, algo.samples, model)  # fmt: skip
    _log_hyperparameters(writer, result, task, config)
    writer.close()
    return result


def custom_scalars_layout() -> dict[str, dict[str, list]]:
    """Tensorboard's Custom Scalars layout: one chart per compare tag, all runs on it."""
    names = {"log10_value_mse": "log10 value MSE", "log10_value_rel_mse": "log10 value relative MSE",
             "closed_loop_cost": "closed-loop discounted cost"}  # fmt: skip
    return {
        "compare (x: samples: PPO env steps, DVP DDP node evaluations)": {
            title: ["Multiline", [f"^compare/{tag}$"]] for tag, title in names.items()
        },
        "compare (x: training wall-clock, ms)": {title: ["Multiline", [f"^compare_wallclock/{tag}$"]] for tag, title in names.items()},
    }


def _log_hyperparameters(writer: SummaryWriter, result: RunResult, task: Task, config: BenchmarkConfig) -> None:
    hparams = {"algo": result.algo, "env_id": task.env_id, "env_kwargs": dict(task.env_kwargs), "seed": result.seed, "budget_seconds": config.budget_seconds,
               "n_eval_states": config.n_eval_states, "ground_truth_horizon": task.truth.horizon,
               "stopped_by_budget": result.stopped_by_budget}  # fmt: skip
    hparams |= {f"{result.algo.lower()}/{k}": v for k, v in result.hyperparameters.items()}
    hparams = {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(jsonable(v))) for k, v in hparams.items()}
    rows = "\n".join(f"| {k} | {v} |" for k, v in hparams.items())
    writer.add_text("hyperparameters", f"| parameter | value |\n|---|---|\n{rows}", result.transitions)
    metrics = {f"hparams/{k}": v for k, v in result.final.items()}
    writer.add_hparams(hparams, metrics, run_name=".", global_step=result.transitions)


# ---------------------------------------------------------------------------- the benchmark
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


class BenchmarkResult(NamedTuple):
    """``out``: the output folder; ``summary``: what ``summary.json`` holds; ``runs``: env -> algo -> one per seed."""

    out: Path
    summary: dict[str, Any]
    runs: dict[str, dict[str, list[RunResult]]]


def run_benchmark(config: BenchmarkConfig) -> BenchmarkResult:
    """Run the whole benchmark of ``config``; returns where it wrote and what it found."""
    from dvp_rl.compare import plots

    out = config.out_dir()
    (out / "figures").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs: dict[str, dict[str, list[RunResult]]] = {}
    tasks: dict[str, Task] = {}
    for env_id in config.env_ids:
        settings = ENV_SETTINGS[env_id]
        env_kwargs = dict(config.env_kwargs.get(env_id, {}))
        system = envs.make(env_id, env_kwargs).unwrapped
        tb_dir = out / "tb" / short_name(env_id)
        t0 = time.perf_counter()
        states = system.sample_states(config.n_eval_states, np.random.default_rng(config.eval_seed))
        truth = _ground_truth(config, env_id, states)
        grid = slice_grid(settings, system.nx, config.grid_size)
        grid_truth = _ground_truth(config, env_id, grid.states)
        if config.verbose:
            print(f"{env_id}: ground truth (T={truth.horizon}) on {int(truth.converged.sum())}/{len(states)} validation "
                  f"and {int(grid_truth.converged.sum())}/{len(grid.states)} grid states in {time.perf_counter() - t0:.1f} s", flush=True)
        task = tasks[env_id] = Task(env_id, settings, truth, states[: config.n_closed_loop], env_kwargs)
        runs[env_id] = {algo.name: [] for algo in ALGORITHMS}
        for seed in config.seeds:
            for algo in ALGORITHMS:
                result = train_and_evaluate(algo, task, seed, config, tb_dir)
                if seed != config.seeds[0]:
                    result.model = None  # only the first seed's models are drawn
                runs[env_id][algo.name].append(result)
        figures = benchmark_figures(task, runs[env_id], grid, grid_truth, system.dt)
        with summary_writer(tb_dir / "figures") as writer:
            for name, figure in figures.items():
                image = plots.render(figure)  # drawn once for both the PNG and tensorboard
                plots.save_png(image, out / "figures" / f"{short_name(env_id)}__{name}.png")
                writer.add_image(f"figures/{name}", image, dataformats="HWC")
    summary = summarize(runs, tasks, config, time.perf_counter() - started)
    (out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2, allow_nan=True))
    (out / "summary.md").write_text(summary_markdown(summary))
    if config.verbose:
        print(f"wrote {out} ({time.perf_counter() - started:.0f} s); tensorboard --logdir {out / 'tb'}", flush=True)
    return BenchmarkResult(out, summary, runs)


def benchmark_figures(task: Task, runs: dict[str, list[RunResult]], grid: SliceGrid, grid_truth: GroundTruth,
                      dt: float) -> dict[str, Figure]:  # fmt: skip
    """The figures of one env: ``value_maps`` and ``closed_loop`` of the first seed's final
    models, ``value_error`` of every seed (see :mod:`dvp_rl.compare.plots`)."""
    from dvp_rl.compare import plots

    size = len(grid.axes[0]), len(grid.axes[1])
    estimates = {algo.name: algo.values(runs[algo.name][0].model, grid.states).reshape(size) for algo in ALGORITHMS}
    seed = runs[ALGORITHMS[0].name][0].seed
    name = short_name(task.env_id)
    return {
        "value_maps": plots.value_maps(grid.axes, grid.labels, grid_truth.V.reshape(size), estimates,
                                       f"{name}: value over the ({', '.join(grid.labels)}) plane, other coordinates 0 (seed {seed})"),
        "closed_loop": plots.closed_loop_trajectories({a: r[0].closed_loop for a, r in runs.items()}, dt, task.settings.state_labels,
                                                      task.settings.slice_dims, f"{name}: closed loop (seed {seed})"),
        "value_error": plots.value_error_curves({a: [r.history for r in results] for a, results in runs.items()},
                                                f"{name}: value error on {len(task.truth.states)} validation states"),
    }  # fmt: skip


def _ground_truth(config: BenchmarkConfig, env_id: str, states: np.ndarray) -> GroundTruth:
    return ground_truth(env_id, states, gamma=config.gamma, horizon=config.ground_truth_horizon, env_kwargs=config.env_kwargs.get(env_id),
                        cache_dir=config.ground_truth_cache, n_workers=config.n_workers, progress=bool(config.verbose))  # fmt: skip


# ---------------------------------------------------------------------------- summary
def value_at(history: Sequence[EvalRecord], seconds: float) -> EvalRecord:
    """The last evaluation made by ``seconds`` of training (the first one if none)."""
    done = [r for r in history if r.wallclock_s <= seconds + 1e-9]
    return done[-1] if done else history[0]


def compare_targets(dvp: RunResult, ppo: RunResult) -> dict[str, Any]:
    """The target of one seed, at equal wall-clock ``t = min(DVP's, PPO's training time)``.

    ``error_ratio``: PPO's value MSE over DVP's, each from its last evaluation by ``t``
    (target >= :data:`TARGET_ERROR_RATIO`); ``wallclock_to_match``: DVP's training time at its
    first evaluation after training started with a value MSE no higher than PPO's final one
    (``None`` if never), and ``match_ratio``: PPO's training time over that.
    """
    t = min(dvp.wallclock_s, ppo.wallclock_s)
    error_ratio = value_at(ppo.history, t).value_mse / max(value_at(dvp.history, t).value_mse, 1e-300)
    target = ppo.history[-1].value_mse
    matched = next((r.wallclock_s for r in dvp.history if r.transitions > 0 and r.value_mse <= target), None)
    return {"equal_wallclock_s": t, "error_ratio": error_ratio, "wallclock_to_match": matched,
            "match_ratio": None if matched is None else ppo.wallclock_s / max(matched, 1e-9)}  # fmt: skip


def _stats(values: Sequence[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(np.mean(array)), "std": float(np.std(array)), "values": [float(v) for v in array]}


def summarize(runs: dict[str, dict[str, list[RunResult]]], tasks: dict[str, Task], config: BenchmarkConfig,
              total_s: float) -> dict[str, Any]:  # fmt: skip
    """``summary.json``'s content: per env, mean and std over seeds of :data:`METRICS` for each
    algorithm, the ratios PPO/DVP of the means, the targets and every evaluation.

    ``optimal_closed_loop_cost`` is the ground-truth ``V*`` averaged over the closed-loop
    starts: the infinite-horizon optimum, an upper bound of the optimal truncated closed loop."""
    envs: dict[str, Any] = {}
    for env_id, by_algo in runs.items():
        metrics = {algo: {m: _stats([r.final[m] for r in results]) for m in METRICS} for algo, results in by_algo.items()}
        ratios = {m: metrics["PPO"][m]["mean"] / metrics["DVP"][m]["mean"] if metrics["DVP"][m]["mean"] else float("nan") for m in METRICS}
        per_seed = [compare_targets(d, p) for d, p in zip(by_algo["DVP"], by_algo["PPO"])]
        error_met = all(s["error_ratio"] >= TARGET_ERROR_RATIO for s in per_seed)
        truth, starts = tasks[env_id].truth, tasks[env_id].starts
        envs[env_id] = {
            "metrics": metrics,
            "ratios_ppo_over_dvp": ratios,
            "optimal_closed_loop_cost": float(np.nanmean(truth.V[: len(starts)])),
            "targets": {
                "per_seed": per_seed,
                "error_ratio": _stats([s["error_ratio"] for s in per_seed]),
                "met": error_met,
            },
            "ground_truth_horizon": truth.horizon,
            "closed_loop_starts": starts,
            "runs": {algo: [{"seed": r.seed, "hyperparameters": r.hyperparameters, "eval_s": r.eval_s,
                             "stopped_by_budget": r.stopped_by_budget,
                             "history": [r_._asdict() for r_ in r.history]} for r in results]
                     for algo, results in by_algo.items()},
        }  # fmt: skip
    settings = {k: v for k, v in asdict(config).items() if k not in ("out", "verbose")}
    return {"config": settings, "closed_loop_steps": config.steps, "total_s": total_s, "envs": envs,
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
    "ALGORITHMS", "DEFAULT_ENVS", "ENV_SETTINGS", "QUICK", "SAMPLE_KINDS", "Algorithm", "BenchmarkConfig", "BenchmarkResult",
    "CompareCallback", "EnvSettings", "EvalRecord", "Evaluator", "RunResult", "Task", "TrainingClock",
    "compare_targets", "run_benchmark", "summarize", "summary_markdown", "train_and_evaluate",
]  # fmt: skip
