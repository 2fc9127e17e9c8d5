"""Pluggable scorers of the comparison harness: what is measured of a trained (or training) agent.

A scorer may watch training through an SB3 callback (:meth:`Scorer.callback`, given the run's
wall-clock cap, whose clock it pauses while it evaluates) and scores the agent once training is
over (:meth:`Scorer.score`, given the scores of the scorers before it). A preset picks its scorers:

* :class:`ValueErrorScorer`: value error against ground truth and closed-loop cost during training
  (the benchmark's; tensorboard ``compare/*`` and ``compare_wallclock/*``);
* :class:`ReturnsScorer`: returns (and success, where the env reports it) of deterministic episodes
  in the real env, one per reset seed, and the regret against a per-episode reference (the zoo's);
* :class:`CurveScorer`: success rate and mean return of a few such episodes during training, against
  the training wall-clock;
* :class:`StepTimeScorer`: median, 99th percentile and max milliseconds per control step of those episodes;
* :class:`SampleCountScorer`: env interactions and model evaluations of training;
* :class:`CriticScorer`: the agent's critic at the episode starts against the reference value.

Every closed loop runs through :mod:`dvp_rl.control.rollout` (``rollout_from_states``,
``evaluate_episodes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from baselines.sb3 import WallClockCap
from dvp_rl.callbacks import GroundTruthEvalCallback
from dvp_rl.compare.adapters import SAMPLE_KINDS, Agent
from dvp_rl.control.rollout import EpisodeResults, Rollout, discounted_cost, evaluate_episodes, rollout_from_states
from dvp_rl.references.ground_truth import GroundTruth, ValueErrors

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class Scorer:
    """A measurement of the harness (see the module docstring); ``name`` keys its result in a run's scores."""

    name: str = ""

    def callback(self, agent: Agent, cap: WallClockCap, writer: SummaryWriter | None) -> BaseCallback | None:
        """An SB3 callback watching the training of ``agent`` (``None``: this scorer does not watch).

        :param cap: the run's wall-clock cap; evaluate inside ``cap.paused()`` so that it is not training time
        :param writer: the run's own tensorboard writer, if the preset keeps one
        """
        return None

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> Any:
        """The result, after training (``callback``: this scorer's, ``scores``: those of the scorers before it)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------- value error during training
class EvalRecord(NamedTuple):
    """One evaluation during training.

    ``transitions``: the agent's samples so far (its ``num_timesteps``: env interactions or model
    evaluations); ``wallclock_s``: training time so far (evaluations excluded); ``value_mse``,
    ``value_rel_mse``: against ground truth on the validation states; ``closed_loop_cost``: mean
    discounted cost of the closed loop (NaN where it was not measured).
    """

    transitions: int
    wallclock_s: float
    value_mse: float
    value_rel_mse: float
    closed_loop_cost: float


class ValueErrorScore(NamedTuple):
    """``history``: the evaluations in order, the last one the final model's (with its closed-loop
    cost); ``closed_loop``: the final closed-loop trajectories."""

    history: list[EvalRecord]
    closed_loop: Rollout


#: tags of :class:`ValueErrorScorer` with a chart each in tensorboard's Custom Scalars, and their titles
CHARTS = {"log10_value_mse": "log10 value MSE", "log10_value_rel_mse": "log10 value relative MSE",
          "closed_loop_cost": "closed-loop discounted cost"}  # fmt: skip


def custom_scalars_layout() -> dict[str, dict[str, list]]:
    """Tensorboard's Custom Scalars layout: one chart per compare tag, all runs on it."""
    return {
        "compare (x: samples: PPO env steps, DVP DDP node evaluations)": {
            title: ["Multiline", [f"^compare/{tag}$"]] for tag, title in CHARTS.items()
        },
        "compare (x: training wall-clock, ms)": {title: ["Multiline", [f"^compare_wallclock/{tag}$"]] for tag, title in CHARTS.items()},
    }


@dataclass(frozen=True, eq=False)
class ValueErrorScorer(Scorer):
    """Value error against ground truth and closed-loop cost, during training.

    An evaluation of the untrained agent, then one per DVP iteration or after each PPO update, and
    a final one with the closed loop (see :class:`ValueErrorCallback`).

    :param truth: ground truth at the validation states (N, nx)
    :param starts: closed-loop start states (n, nx)
    :param gamma: discount of the closed-loop cost
    :param steps: closed-loop length
    :param closed_loop_every: the closed loop at every ``k``-th evaluation (0: at the end only; always at the end)
    :param env_kwargs: ``gymnasium.make`` arguments of the closed loop's envs
    :param verbose: 1: a line per evaluation
    """

    truth: GroundTruth
    starts: np.ndarray
    gamma: float
    steps: int
    closed_loop_every: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    verbose: int = 0
    name: str = "value_error"

    def callback(self, agent: Agent, cap: WallClockCap, writer: SummaryWriter | None) -> ValueErrorCallback:
        if writer is not None:
            writer.add_custom_scalars(custom_scalars_layout())
        label = f"{agent.spec.env_id.split('/')[-1]} {agent.name}_seed{agent.spec.seed}"
        return ValueErrorCallback(self, agent, cap, writer, label)

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> ValueErrorScore:
        if not isinstance(callback, ValueErrorCallback) or callback.closed_loop is None:  # pragma: no cover - the end always runs it
            raise RuntimeError(f"{agent.name}: training ended without a final evaluation")
        return ValueErrorScore(list(callback.records), callback.closed_loop)


class ValueErrorCallback(GroundTruthEvalCallback):
    """:class:`ValueErrorScorer`'s watch: :class:`~dvp_rl.callbacks.GroundTruthEvalCallback` on the
    agent's values (at SB3's ``on_rollout_start`` for an on-policy agent), the untrained agent
    included, plus the closed loop; every evaluation inside ``cap.paused()``, written to ``writer``
    as ``compare/<tag>`` (step: samples) and ``compare_wallclock/<tag>`` (step: training milliseconds).

    :param scorer: the settings
    :param agent: the agent being trained
    :param cap: the run's cap (its clock dates the evaluations)
    :param writer: the run's tensorboard writer (``None``: none)
    :param label: how progress lines name the run
    """

    def __init__(self, scorer: ValueErrorScorer, agent: Agent, cap: WallClockCap, writer: SummaryWriter | None, label: str) -> None:
        super().__init__(scorer.truth, values=lambda _model, states: agent.values(states), at_training_start=True,
                         at_rollout_start=agent.adapter.eval_at_rollout_start(agent.model))  # fmt: skip
        self.scorer, self.agent, self.cap, self.writer, self.label = scorer, agent, cap, writer, label
        self.records: list[EvalRecord] = []
        self.closed_loop: Rollout | None = None

    def closed_loop_cost(self) -> float:
        """Mean discounted cost of a fresh closed loop from the scorer's starts; keeps the trajectories."""
        s, env_id = self.scorer, self.agent.spec.env_id
        self.closed_loop = rollout_from_states(self.agent.state_policy(), env_id, s.starts, s.steps, env_kwargs=s.env_kwargs)
        return float(np.mean(discounted_cost(self.closed_loop.costs, s.gamma)))

    def evaluate(self, closed_loop: bool | None = None) -> ValueErrors:  # type: ignore[override]
        """Evaluate now; ``closed_loop=None`` follows ``closed_loop_every``."""
        wallclock = self.cap.elapsed()
        with self.cap.paused():
            if closed_loop is None:
                every = self.scorer.closed_loop_every
                closed_loop = every > 0 and len(self.records) % every == 0
            errors = super().evaluate()
            cost = self.closed_loop_cost() if closed_loop else float("nan")
            record = EvalRecord(int(self.model.num_timesteps), wallclock, errors.value_mse, errors.value_rel_mse, cost)
            self.records.append(record)
            self._write(record)
        return errors

    def _record(self, errors: ValueErrors) -> None:
        """Nothing in the model's logger: :meth:`_write` reports the evaluation with its closed loop."""

    def _on_training_end(self) -> None:
        """The final evaluation, always with the closed loop; the last record's if it is of this model."""
        last = self.records[-1] if self.records else None
        if last is None or last.transitions != int(self.model.num_timesteps):
            self.evaluate(closed_loop=True)
        elif math.isnan(last.closed_loop_cost):
            with self.cap.paused():
                self.records[-1] = last._replace(closed_loop_cost=self.closed_loop_cost())
                self._write(self.records[-1], closed_loop_only=True)

    def _write(self, record: EvalRecord, closed_loop_only: bool = False) -> None:
        if self.writer is not None:
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
        if self.scorer.verbose:
            cost = "" if math.isnan(record.closed_loop_cost) else f", closed-loop cost {record.closed_loop_cost:.4g}"
            samples = self.agent.adapter.samples.replace("_", " ")
            print(f"  {self.label}: {record.transitions:>11,d} {samples}, {record.wallclock_s:7.1f} s: "
                  f"value MSE {record.value_mse:.3e} (rel. {record.value_rel_mse:.3e}){cost}", flush=True)


# ---------------------------------------------------------------------------- episodes during training
class CurvePoint(NamedTuple):
    """One evaluation of :class:`CurveScorer`: ``wallclock_s`` of training so far (evaluations excluded),
    ``transitions`` (the agent's ``num_timesteps``), ``mean_return`` and ``success_rate`` (``None`` where the
    env does not report success) of the episodes."""

    wallclock_s: float
    transitions: int
    mean_return: float
    success_rate: float | None


@dataclass(frozen=True, eq=False)
class CurveScorer(Scorer):
    """Deterministic episodes in the real env during training (:func:`~dvp_rl.control.rollout.evaluate_episodes`,
    one per reset seed), against the training wall-clock: before training, then at every ``every_s`` seconds of
    training (the cap's clock, the evaluations paused out; checked at every callback step: an SB3 env
    step, so a point can come one gradient phase late) or, for an agent whose callback steps are
    iterations (DVP), after every iteration; and at the end. The score: the :class:`CurvePoint` list.

    :param env_id: the env the agent acts in
    :param seeds: the reset seeds (n,)
    :param every_s: seconds of training between two evaluations, > 0
    :param env_kwargs: ``gymnasium.make`` arguments
    :raises ValueError: ``every_s <= 0`` or no seeds
    """

    env_id: str
    seeds: np.ndarray
    every_s: float
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = "curve"

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ValueError(f"every_s must be > 0, got {self.every_s}")
        if len(self.seeds) == 0:
            raise ValueError("the curve needs at least one episode seed")

    def callback(self, agent: Agent, cap: WallClockCap, writer: SummaryWriter | None) -> CurveCallback:
        return CurveCallback(self, agent, cap)

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> list[CurvePoint]:
        if not isinstance(callback, CurveCallback):  # pragma: no cover - the harness hands back its own callback
            raise RuntimeError(f"{agent.name}: the curve's callback did not watch training")
        return list(callback.points)


class CurveCallback(BaseCallback):
    """:class:`CurveScorer`'s watch of one agent's training (see there); ``points``: the evaluations so far."""

    def __init__(self, scorer: CurveScorer, agent: Agent, cap: WallClockCap) -> None:
        super().__init__()
        self.scorer, self.agent, self.cap = scorer, agent, cap
        self.points: list[CurvePoint] = []
        self._next_s = scorer.every_s

    def evaluate(self) -> CurvePoint:
        """Evaluate now, inside ``cap.paused()``."""
        wallclock = self.cap.elapsed()
        with self.cap.paused():
            s = self.scorer
            episodes = evaluate_episodes(self.agent.predictor(), s.env_id, s.seeds, s.env_kwargs or None)
            point = CurvePoint(wallclock, int(self.agent.model.num_timesteps), episodes.mean_return, episodes.success_rate)
            self.points.append(point)
        self._next_s = (math.floor(wallclock / self.scorer.every_s) + 1) * self.scorer.every_s
        return point

    def _on_training_start(self) -> None:
        self.evaluate()

    def _on_step(self) -> bool:
        if self.agent.adapter.steps_are_iterations or self.cap.elapsed() >= self._next_s:
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        last = self.points[-1] if self.points else None
        if last is None or last.transitions != int(self.agent.model.num_timesteps):
            self.evaluate()


# ---------------------------------------------------------------------------- after training
class ReturnsScore(NamedTuple):
    """``episodes``: one per seed (:class:`~dvp_rl.control.rollout.EpisodeResults`); ``regret``: the
    reference's optimal return less the return, per episode (N,) (``None`` without a reference)."""

    episodes: EpisodeResults
    regret: np.ndarray | None

    def row(self) -> dict[str, Any]:
        """Mean, std and worst return, mean and max regret (``None`` without a reference), episode lengths, returns,
        success rate and per-episode successes (``None`` where the env does not report success)."""
        returns, regret, successes = self.episodes.returns, self.regret, self.episodes.successes
        return {
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "worst_return": float(np.min(returns)),
            "mean_regret": None if regret is None else float(np.mean(regret)),
            "max_regret": None if regret is None else float(np.max(regret)),
            "episode_lengths": self.episodes.lengths.tolist(), "returns": returns.tolist(),
            "success_rate": self.episodes.success_rate, "successes": None if successes is None else successes.tolist(),
        }  # fmt: skip


@dataclass(frozen=True, eq=False)
class ReturnsScorer(Scorer):
    """One deterministic episode per reset seed in the real env, scored by its own reward, against
    ``optimum`` (the reference's optimal return of each episode, (N,); ``None``: no regret).

    :param env_id: the env the agent acts in (``gymnasium.make(env_id, **env_kwargs)``)
    :param seeds: the reset seeds (N,)
    """

    env_id: str
    seeds: np.ndarray
    optimum: np.ndarray | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = "returns"

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> ReturnsScore:
        episodes = evaluate_episodes(agent.predictor(), self.env_id, self.seeds, self.env_kwargs or None)
        return ReturnsScore(episodes, None if self.optimum is None else self.optimum - episodes.returns)


class StepTimes(NamedTuple):
    """Milliseconds per control step: ``median_step_ms``, ``p99_step_ms`` (99th percentile), ``max_step_ms``
    (wall-clock), and ``max_step_cpu_ms``: the most CPU time of a step (the controller's own worst work)."""

    median_step_ms: float
    p99_step_ms: float
    max_step_ms: float
    max_step_cpu_ms: float = float("nan")


@dataclass(frozen=True)
class StepTimeScorer(Scorer):
    """The step times of the episodes another scorer played (``episodes_from``, a :class:`ReturnsScorer`'s name).

    :raises KeyError: at scoring, when that scorer did not score before this one
    """

    episodes_from: str = "returns"
    name: str = "step_times"

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> StepTimes:
        if self.episodes_from not in scores:
            raise KeyError(f"{self.name} reads the episodes of scorer {self.episodes_from!r}, which must come before it")
        episodes = scores[self.episodes_from].episodes
        return StepTimes(episodes.median_step_ms, episodes.p99_step_ms, episodes.max_step_ms, episodes.max_step_cpu_ms)


@dataclass(frozen=True)
class SampleCountScorer(Scorer):
    """What training spent: ``{"env_interactions": n, "model_evaluations": m}``, the kind the agent does not use 0."""

    name: str = "samples"

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> dict[str, int]:
        return {kind: agent.sample_count if kind == agent.adapter.samples else 0 for kind in SAMPLE_KINDS}


class CriticScore(NamedTuple):
    """``values``: the critic at the starts (N,), in the differentiable env's cost; ``gamma``: its
    discount; ``rel_mse``: mean (values - reference)^2 / mean reference^2 (``None`` without a reference).
    All three ``None`` for an agent without a critic."""

    values: np.ndarray | None
    gamma: float | None
    rel_mse: float | None


@dataclass(frozen=True, eq=False)
class CriticScorer(Scorer):
    """The agent's cost-to-go estimate at ``starts`` (N, nx) against ``reference(starts, gamma)`` of its own discount.

    :param reference: ``(states, gamma) -> V (N,)``, e.g. :attr:`dvp_rl.references.episodes.Reference.value`
        (``None``: no error)
    """

    starts: np.ndarray
    reference: Callable[[np.ndarray, float], np.ndarray] | None = None
    name: str = "critic"

    def score(self, agent: Agent, callback: BaseCallback | None, scores: Mapping[str, Any]) -> CriticScore:
        if not agent.adapter.has_critic:
            return CriticScore(None, None, None)
        values, gamma = agent.values(self.starts), agent.gamma
        error = None
        if self.reference is not None:
            truth = self.reference(self.starts, gamma)
            error = float(np.mean((values - truth) ** 2) / np.mean(truth**2))
        return CriticScore(values, gamma, error)


__all__ = ["CHARTS", "CriticScore", "CriticScorer", "CurveCallback", "CurvePoint", "CurveScorer", "EvalRecord", "ReturnsScore", "ReturnsScorer", "SampleCountScorer", "Scorer",
           "StepTimeScorer", "StepTimes", "ValueErrorCallback", "ValueErrorScore", "ValueErrorScorer", "custom_scalars_layout"]  # fmt: skip
