"""DVP runs recorded against a ground truth, shared by the ``convergence``, ``horizon`` and ``noise`` experiments.

:class:`Budget` holds what a run and its ground truth cost (the experiments' settings extend it);
:func:`train_and_record` trains one seed with an :class:`IterationRecorder`, which keeps an
:class:`IterationRecord` after every iteration; :func:`curves` stacks a field over seeds and
:func:`plot_curves` draws it (mean and min-max band on a log axis).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

import envs
from dvp_rl.agent import DVP
from dvp_rl.callbacks import GroundTruthEvalCallback
from dvp_rl.references.ground_truth import GroundTruth, ground_truth

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from torch.utils.tensorboard import SummaryWriter

#: seed of the evaluation states (the same for every seed, so the ground truth is computed once)
EVAL_SEED = 10_000


class IterationRecord(NamedTuple):
    """Errors after one DVP iteration, on the ground-truth states.

    ``value_mse``, ``value_rel_mse``, ``gradient_rel_error``: see
    :class:`dvp_rl.references.ground_truth.ValueErrors`; ``bellman_residual``: ``mean (V_i - V_{i-1})^2``
    with ``V_0 = 0``; ``bellman_rel_residual``: that over ``mean V_i^2``.
    """

    iteration: int
    transitions: int
    value_mse: float
    value_rel_mse: float
    gradient_rel_error: float
    bellman_residual: float
    bellman_rel_residual: float


class IterationRecorder(GroundTruthEvalCallback):
    """Evaluate after every iteration, keep :class:`IterationRecord` rows and value snapshots,
    and mirror every number the agent logged in that iteration to a tensorboard writer.

    :param truth: the reference on fixed states
    :param writer: tensorboard writer (``None``: no mirror); scalars are indexed by iteration
    :param map_states: states (M, nx) whose learned value is kept at ``snapshot_iterations``
    :param snapshot_iterations: iterations after which ``snapshots[iteration]`` is stored
    """

    def __init__(
        self,
        truth: GroundTruth,
        writer: SummaryWriter | None = None,
        map_states: np.ndarray | None = None,
        snapshot_iterations: Sequence[int] = (),
    ) -> None:
        super().__init__(truth, eval_freq=1)
        self.writer = writer
        self.map_states = map_states
        self.snapshot_iterations = tuple(int(i) for i in snapshot_iterations)
        self.records: list[IterationRecord] = []
        self.snapshots: dict[int, np.ndarray] = {}
        self._previous = np.zeros(len(truth.states))

    def _on_step(self) -> bool:
        errors = self.evaluate()
        iteration = int(self.model.iteration)
        V = np.asarray(self.model.value(self.truth.states))
        residual = float(np.mean((V - self._previous) ** 2))
        relative = residual / max(float(np.mean(V**2)), 1e-300)
        self._previous = V
        self.logger.record("eval/bellman_residual", residual)
        self.logger.record("eval/bellman_rel_residual", relative)
        self.records.append(
            IterationRecord(iteration, int(self.num_timesteps), errors.value_mse, errors.value_rel_mse, errors.gradient_rel_error, residual, relative)
        )
        if self.map_states is not None and iteration in self.snapshot_iterations:
            self.snapshots[iteration] = np.asarray(self.model.value(self.map_states))
        if self.writer is not None:
            for key, value in self.logger.name_to_value.items():
                if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, float(value), iteration)
        return True


def train_and_record(
    env_id: str,
    seed: int,
    iterations: int,
    truth: GroundTruth,
    writer: SummaryWriter | None,
    dvp_kwargs: dict[str, Any],
    map_states: np.ndarray | None = None,
    snapshot_iterations: Sequence[int] = (),
    agent_class: type[DVP] = DVP,
) -> tuple[DVP, IterationRecorder]:
    """Train ``agent_class(env_id, seed=seed, **dvp_kwargs)`` for ``iterations`` iterations,
    recording every iteration (no checkpoints); the hyper-parameters go to ``writer`` as text."""
    agent = agent_class(env_id, seed=seed, checkpoint_dir=None, **dvp_kwargs)
    recorder = IterationRecorder(truth, writer, map_states, snapshot_iterations)
    if writer is not None:
        hparams = {"env_id": env_id, "agent": type(agent).__name__, **agent.hyperparameters()}
        writer.add_text("hparams", "```\n" + json.dumps(hparams, indent=1) + "\n```")
    agent.learn(iterations, callback=recorder)
    if writer is not None:
        writer.flush()
    return agent, recorder


def curves(recorders: Sequence[IterationRecorder], field: str) -> np.ndarray:
    """``field`` of every recorder's records, (n_seeds, n_iterations) (runs cut to the shortest)."""
    length = min(len(r.records) for r in recorders)
    return np.array([[getattr(rec, field) for rec in r.records[:length]] for r in recorders], dtype=np.float64)


def plot_curves(ax: Axes, x: np.ndarray, values: np.ndarray, label: str, color: Any = None) -> None:
    """Mean over seeds (rows of ``values``) on a log axis, with the min-max band across seeds."""
    mean = values.mean(axis=0)
    (line,) = ax.plot(x, mean, marker="o", markersize=3, label=label, color=color)
    if len(values) > 1:
        ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


@dataclass(frozen=True)
class Budget:
    """What a DVP run and its ground truth cost; the experiments' settings extend it.

    ``iterations``: DVP iterations; ``horizon``, ``n_samples``, ``net_arch``, ``max_epochs``,
    ``patience``, ``polish_steps``, ``n_validation``: :class:`dvp_rl.DVP`'s arguments (gamma is 1);
    ``n_eval``: random states of the error measurements; ``truth_horizon``/``truth_guesses``:
    ``None`` is :func:`~dvp_rl.references.ground_truth.ground_truth`'s default (the env's ``value_horizon``
    and :func:`dvp_rl.control.ocp.reference_guesses`).
    """

    iterations: int = 10
    horizon: int = 50
    n_samples: int = 300
    net_arch: tuple[int, ...] = (64, 64, 64)
    max_epochs: int = 300
    patience: int = 30
    polish_steps: int = 200
    n_validation: int = 200
    n_eval: int = 200
    truth_horizon: int | None = None
    truth_guesses: tuple[str, ...] | None = None

    def dvp_kwargs(self, n_workers: int, **overrides: Any) -> dict[str, Any]:
        """:class:`dvp_rl.DVP` keyword arguments (``overrides`` win, e.g. ``horizon``)."""
        kwargs = {
            "horizon": self.horizon, "n_samples": self.n_samples, "gamma": 1.0, "network": {"net_arch": self.net_arch},
            "fit": {"max_epochs": self.max_epochs, "patience": self.patience, "polish_steps": self.polish_steps},
            "collect": {"n_validation": self.n_validation}, "n_workers": n_workers,
        }  # fmt: skip
        return kwargs | overrides

    def reference(
        self,
        env_id: str,
        states: np.ndarray,
        n_workers: int = 1,
        env_kwargs: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> GroundTruth:
        """Ground truth at ``states`` (N, nx), cached in ``cache_dir`` (``None``: no cache)."""
        return ground_truth(env_id, states, gamma=1.0, horizon=self.truth_horizon, env_kwargs=env_kwargs, guesses=self.truth_guesses,
                            cache_dir=cache_dir, n_workers=n_workers)  # fmt: skip

    def eval_truth(
        self, env_id: str, n_workers: int = 1, env_kwargs: dict[str, Any] | None = None, cache_dir: str | os.PathLike | None = None
    ) -> GroundTruth:
        """Ground truth on ``n_eval`` states of the env's start box (seed :data:`EVAL_SEED`, the same for every seed)."""
        states = envs.make(env_id, env_kwargs).unwrapped.sample_states(self.n_eval, np.random.default_rng(EVAL_SEED))
        return self.reference(env_id, states, n_workers, env_kwargs, cache_dir)

    def dvp_note(self) -> str:
        """DVP's settings, for tables."""
        return f"DVP with T={self.horizon}, {self.n_samples} samples per iteration, gamma=1, net {list(self.net_arch)}"

    def truth_note(self) -> str:
        """How the ground truth was computed, for tables."""
        horizon = self.truth_horizon or "the env's value_horizon"
        guesses = "the env's initial guesses and two continuations" if self.truth_guesses is None else f"guesses {list(self.truth_guesses)}"
        return f"DDP with horizon {horizon}, best of {guesses}, on {self.n_eval} fixed random states of the start box"


#: a quick budget (smoke tests): tiny nets, few samples, short ground-truth horizons
QUICK_BUDGET = Budget(
    iterations=3, horizon=10, n_samples=30, net_arch=(16, 16), max_epochs=10, patience=5, polish_steps=5,
    n_validation=20, n_eval=16, truth_horizon=40, truth_guesses=("hold",),
)  # fmt: skip
