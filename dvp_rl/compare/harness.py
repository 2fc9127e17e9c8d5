"""The one comparison harness: agents trained under one wall-clock cap, scored, summarised.

A comparison is a :class:`Preset`: which agents (:mod:`dvp_rl.compare.adapters`), on which env ids,
with which seeds and settings, scored how (:mod:`dvp_rl.compare.scorers`), and what its summary
holds. :func:`run` does the rest, the same for every preset::

    preset.check()      every run's settings (the adapters' checks), before any work
    the output folder   refused if it holds an earlier run's results (config.overwrite: removed first);
                        a dated default one never collides with an existing folder
    for env_id:         scorers = preset.scorers(env_id)       (ground truth, references: once per env)
      for seed, agent:  build -> learn under a WallClockCap (the scorers' callbacks watching)
                        -> untrained? -> save -> score -> preset.after_run
      preset.after_env  (per-env figures)
    summary.json, summary.md (preset.summarize, preset.markdown), preset.report (more outputs)

``dvp-rl benchmark`` (:mod:`dvp_rl.compare.benchmark`) and ``dvp-rl zoo`` (:mod:`dvp_rl.compare.zoo`)
are presets. Why one harness: a new comparison is a preset, not a module with its own caps,
summaries and tensorboard writing (rl-zoo3's ``ExperimentManager`` serves every algorithm the same way).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import configure

from baselines.sb3 import WallClockCap
from dvp_rl.compare.adapters import Adapter, Agent, RunSpec, get_adapter
from dvp_rl.compare.reports import write_summary
from dvp_rl.compare.scorers import Scorer
from dvp_rl.compare.tb import summary_writer

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """The settings every comparison has (a preset's config adds its own).

    :param budget_seconds: the wall-clock cap of each agent's training (evaluations during training excluded)
    :param dvp_kwargs: DVP's settings over ``dvp_rl/defaults.yml`` (and the preset's): constructor
        arguments and ``iterations``
    :param n_workers: DVP's solver processes (and those of the references)
    :param out: output folder (``None``: the preset's :meth:`default_out`, dated, with ``_1``, ``_2``, ...
        appended when that folder exists)
    :param overwrite: remove an earlier run's results from ``out`` before the run (otherwise :func:`run`
        refuses an ``out`` that holds any, :attr:`Preset.outputs`)
    :param verbose: 0 silent, 1 progress lines
    :raises ValueError: ``budget_seconds <= 0`` or ``n_workers < 1``
    """

    budget_seconds: float = 600.0
    dvp_kwargs: dict[str, Any] = field(default_factory=dict)
    n_workers: int = 2
    out: str | None = None
    overwrite: bool = False
    verbose: int = 1

    def __post_init__(self) -> None:
        if not self.budget_seconds > 0:
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds}")
        if int(self.n_workers) < 1:
            raise ValueError(f"n_workers must be >= 1, got {self.n_workers}")

    def default_out(self, stamp: str) -> Path:
        """The output folder when ``out`` is ``None``, for a run started at ``stamp`` (``%Y%m%d-%H%M%S``)."""
        return Path("runs") / f"compare__{stamp}"

    def dated_out(self) -> Path:
        """:meth:`default_out` of now."""
        return self.default_out(datetime.now().strftime("%Y%m%d-%H%M%S"))

    def out_dir(self) -> Path:
        """The output folder (see ``out``): the given one, or the dated default (:meth:`dated_out`), with ``_1``,
        ``_2``, ... appended when a folder of that name exists (:func:`run` creates it, with the next free name
        should another run take this one first)."""
        return Path(self.out) if self.out is not None else free_name(self.dated_out())

    def settings(self) -> dict[str, Any]:
        """What defines the run, for ``summary.json``: every field but ``out``, ``overwrite`` and ``verbose``."""
        return {k: v for k, v in asdict(self).items() if k not in ("out", "overwrite", "verbose")}


def free_name(folder: Path) -> Path:
    """``folder``, or ``folder`` with ``_1``, ``_2``, ... appended to its name: the first that does not exist."""
    n = 0
    while True:
        path = folder if n == 0 else folder.with_name(f"{folder.name}_{n}")
        if not path.exists():
            return path
        n += 1


@dataclass
class AgentRun:
    """One agent trained on one env with one seed, and scored.

    :param agent: the built agent (``agent.model`` is ``None`` where the preset dropped it)
    :param train_s: training wall-clock, evaluations during training excluded (:meth:`WallClockCap.elapsed`)
    :param paused_s: time the scorers spent evaluating during and at the end of training
    :param stopped_by_cap: the wall-clock cap stopped training before the agent's own budget was spent
    :param sample_count: the agent's ``num_timesteps`` after training (``agent.adapter.samples`` says what it counts)
    :param scores: scorer name -> its result
    :param untrained: why training left the agent untrained (:meth:`~dvp_rl.compare.adapters.Adapter.untrained`),
        ``None`` when it learned
    """

    agent: Agent
    train_s: float
    paused_s: float
    stopped_by_cap: bool
    sample_count: int
    scores: dict[str, Any]
    untrained: str | None = None

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def seed(self) -> int:
        return self.agent.spec.seed

    @property
    def settings(self) -> dict[str, Any]:
        return self.agent.settings


#: env id -> agent name -> one run per seed
Runs = dict[str, dict[str, list[AgentRun]]]


class ComparisonResult(NamedTuple):
    """``out``: the output folder; ``summary``: what ``summary.json`` holds; ``runs``: every run (:data:`Runs`)."""

    out: Path
    summary: dict[str, Any]
    runs: Runs


class Preset:
    """A comparison for :func:`run`: subclasses set ``env_ids``, ``seeds``, ``agents``, ``outputs`` and implement
    the abstract methods; the others are hooks that do nothing by default.

    ``outputs``: glob patterns of what the preset writes into its folder (the results that :func:`run`
    refuses to mix with, or with ``overwrite`` removes first).

    :param config: its settings (``out_dir()``, ``budget_seconds``, ``overwrite``, ``verbose``)
    """

    env_ids: tuple[str, ...]
    seeds: tuple[int, ...]
    agents: tuple[str, ...]
    outputs: tuple[str, ...] = ("summary.json", "summary.md", "tb")

    def __init__(self, config: CompareConfig) -> None:
        self.config = config
        self._dated = None if config.out is not None else config.dated_out()  # the default's name before any suffix
        self.out = Path(config.out) if self._dated is None else free_name(self._dated)

    def adapter(self, name: str) -> Adapter:
        """The adapter of agent ``name`` (default: :func:`dvp_rl.compare.adapters.get_adapter`)."""
        return get_adapter(name)

    def check(self) -> None:
        """Raise ``ValueError`` before any work for settings that would fail later: by default every agent's
        run spec on every env, checked by its adapter (:meth:`~dvp_rl.compare.adapters.Adapter.check`; the
        first seed's: the seeds share the settings; a check already passed with the same spec is not repeated)."""
        passed: list[tuple[Any, RunSpec]] = []
        for env_id in self.env_ids:
            for name in self.agents:
                adapter, spec = self.adapter(name), self.run_spec(name, env_id, self.seeds[0])
                check = type(adapter).check  # the same function: the same check (DVP's and MPC's)
                if (check, spec) not in passed:
                    adapter.check(spec)
                    passed.append((check, spec))

    def earlier_results(self) -> list[Path]:
        """What of :attr:`outputs` the output folder holds already, sorted."""
        return sorted({path for pattern in self.outputs for path in self.out.glob(pattern)})

    def run_spec(self, name: str, env_id: str, seed: int) -> RunSpec:
        """How agent ``name`` is built on ``env_id`` with ``seed``."""
        raise NotImplementedError

    def scorers(self, env_id: str) -> Sequence[Scorer]:
        """The scorers of every run on ``env_id``, in order (built once per env: ground truth, references)."""
        raise NotImplementedError

    def internal_log(self, name: str, env_id: str, seed: int) -> Path:
        """The folder of the agent's own tensorboard logs (its SB3 logger's)."""
        raise NotImplementedError

    def run_log(self, name: str, env_id: str, seed: int) -> Path | None:
        """The folder of the run's comparison writer, handed to the scorers and :meth:`after_run` (``None``: none)."""
        return None

    def model_path(self, name: str, env_id: str, seed: int) -> Path | None:
        """Where the trained agent is saved (its own ``save``) before it is scored (``None``: not saved)."""
        return None

    def after_run(self, run: AgentRun, writer: SummaryWriter | None) -> None:
        """Called once a run is scored, before its writer closes."""

    def after_env(self, env_id: str, runs: Mapping[str, list[AgentRun]]) -> None:
        """Called once every run on ``env_id`` is done."""

    def summarize(self, runs: Runs, total_s: float) -> dict[str, Any]:
        """``summary.json``'s content."""
        raise NotImplementedError

    def markdown(self, summary: Mapping[str, Any]) -> str:
        """``summary.md`` of ``summary``."""
        raise NotImplementedError

    def report(self, summary: Mapping[str, Any], runs: Runs) -> None:
        """Outputs written after the summary (figures and tensorboard of the whole comparison)."""


def train_and_score(
    adapter: Adapter,
    spec: RunSpec,
    budget_seconds: float,
    scorers: Sequence[Scorer],
    internal_log: Path,
    run_log: Path | None = None,
    model_path: Path | None = None,
    after_run: Callable[[AgentRun, SummaryWriter | None], None] | None = None,
) -> AgentRun:
    """Build one agent, train it under a :class:`~baselines.sb3.WallClockCap` of ``budget_seconds`` with the
    scorers' callbacks, save it, score it.

    :param internal_log: the folder of the agent's SB3 logger (tensorboard)
    :param run_log: the folder of a tensorboard writer handed to the scorers and ``after_run`` (``None``: none)
    :param model_path: where to save the trained agent before scoring (``None``: not saved)
    :param after_run: called with the scored run and the writer, before the writer closes
    """
    agent = adapter.build(spec)
    agent.model.set_logger(configure(str(internal_log), ["tensorboard"]))
    writer = summary_writer(run_log) if run_log is not None else None
    try:
        cap = WallClockCap(budget_seconds)
        watching = [(scorer, scorer.callback(agent, cap, writer)) for scorer in scorers]
        completed = agent.learn(CallbackList([cap, *(callback for _, callback in watching if callback is not None)]))
        untrained = agent.untrained()
        if model_path is not None:
            agent.model.save(model_path)  # DVP: dvp_rl's checkpoint; SB3: its own format (a pickle: load only your own files)
        scores: dict[str, Any] = {}
        for scorer, callback in watching:
            scores[scorer.name] = scorer.score(agent, callback, scores)
        run = AgentRun(agent, cap.elapsed(), cap.paused_s, cap.hit and not completed, agent.sample_count, scores, untrained)
        if after_run is not None:
            after_run(run, writer)
    finally:
        if writer is not None:
            writer.close()
    return run


def prepare_out(preset: Preset) -> Path:
    """Make the preset's output folder ready, before any work, and return it (``preset.out``).

    A given folder that holds an earlier run's results (:meth:`Preset.earlier_results`) is refused, or
    with ``config.overwrite`` emptied of them first (so that no result of the earlier run lies beside
    the new ones); a dated default folder is created under the next free name (:func:`free_name`)
    should another run have taken it since :meth:`CompareConfig.out_dir` chose it.

    :raises ValueError: the folder holds results and ``overwrite`` is false (naming them)
    """
    if preset._dated is not None:
        while True:
            try:
                preset.out.mkdir(parents=True)
                return preset.out
            except FileExistsError:
                preset.out = free_name(preset._dated)
    found = preset.earlier_results()
    if found and not preset.config.overwrite:
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise ValueError(f"the output folder {preset.out} holds an earlier run's results ({names}): choose another one (--out) "
                         "or remove them first (--overwrite)")  # fmt: skip
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    preset.out.mkdir(parents=True, exist_ok=True)
    return preset.out


def run(preset: Preset) -> ComparisonResult:
    """Run ``preset`` (see the module docstring); writes ``summary.json`` and ``summary.md`` into ``preset.out``.

    :raises ValueError: before any work, for a setting an adapter refuses (:meth:`Preset.check`) or an output
        folder with an earlier run's results (:func:`prepare_out`)
    """
    preset.check()
    out, verbose = prepare_out(preset), preset.config.verbose
    started = time.perf_counter()
    runs: Runs = {}
    for env_id in preset.env_ids:
        scorers = preset.scorers(env_id)
        runs[env_id] = {name: [] for name in preset.agents}
        for seed in preset.seeds:
            for name in preset.agents:
                result = train_and_score(preset.adapter(name), preset.run_spec(name, env_id, seed), preset.config.budget_seconds, scorers,
                                         preset.internal_log(name, env_id, seed), preset.run_log(name, env_id, seed),
                                         preset.model_path(name, env_id, seed), preset.after_run)  # fmt: skip
                runs[env_id][name].append(result)
        preset.after_env(env_id, runs[env_id])
    summary = preset.summarize(runs, time.perf_counter() - started)
    write_summary(out, summary, preset.markdown(summary))
    preset.report(summary, runs)
    if verbose:
        print(f"wrote {out} ({time.perf_counter() - started:.0f} s); tensorboard --logdir {out / 'tb'}", flush=True)
    return ComparisonResult(out, summary, runs)


__all__ = ["AgentRun", "CompareConfig", "ComparisonResult", "Preset", "Runs", "free_name", "prepare_out", "run", "train_and_score"]
