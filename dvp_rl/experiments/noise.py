"""Robustness of DVP to noise in its first dataset (the paper's Fig. 6).

Gaussian noise is added to the targets of the first iteration's fit only (``V`` and ``Vx``;
:class:`NoisyFirstFitDVP`), at several levels relative to the targets' magnitude; the later
iterations solve with the (noisy) learned terminal and fit the DDP's own values. The
error against the ground truth after every iteration shows how fast the recursion
recovers; the paper finds that a few iterations do.

For a level ``s``: ``V + s * rms(V) * e`` and ``Vx[:, j] + s * rms(Vx[:, j]) * e`` with ``e``
standard normal and ``rms`` over the dataset, so the noisy targets' relative MSE is ``s^2``.
The noise has its own generator, so every level of a seed samples the same states and
differs only by the noise.

Outputs under ``runs/reproduce/noise/``: ``noise.png``, ``table.md``/``table.json`` and
tensorboard runs ``tb/<env>__DVP_noise<s>__<seed>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dvp_rl.agent import DVP
from dvp_rl.experiments import common
from dvp_rl.experiments.dvp_runs import QUICK_BUDGET, Budget, IterationRecorder, curves, plot_curves, train_and_record
from dvp_rl.control.ocp import BatchSolveResult
from dvp_rl.value.sobolev import torch_threads

NAME = "noise"
#: noise levels, relative to the targets' root mean square (1.0: noise as large as the targets,
#: above the error floor of DVP's first iteration, so that the recovery is visible)
LEVELS: tuple[float, ...] = (0.0, 1e-3, 1e-2, 1e-1, 1.0)


class NoisyFirstFitDVP(DVP):
    """:class:`dvp_rl.DVP` whose first fit sees noisy targets (``V`` and ``Vx``; see the module docstring).

    :param env: as :class:`dvp_rl.DVP`
    :param noise_level: ``s``, the noise's standard deviation relative to the targets' RMS (>= 0)
    :param noise_seed: seeds the noise's own generator (``None``: fresh entropy)
    :param kwargs: :class:`dvp_rl.DVP`'s arguments
    """

    def __init__(self, env: str | gym.Env, noise_level: float = 0.0, noise_seed: int | Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        if not (np.isfinite(noise_level) and noise_level >= 0):
            raise ValueError(f"noise_level must be finite and >= 0, got {noise_level}")
        self.noise_level = float(noise_level)
        self._noise_rng = np.random.default_rng(noise_seed)

    def _targets(self, states: np.ndarray, batch: BatchSolveResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        V, Vx, Vxx = super()._targets(states, batch)
        if self.iteration > 0 or self.noise_level == 0.0:
            return V, Vx, Vxx
        rng, s = self._noise_rng, self.noise_level
        V = V + s * np.sqrt(np.mean(V**2)) * rng.standard_normal(V.shape)
        Vx = Vx + s * np.sqrt(np.mean(Vx**2, axis=0)) * rng.standard_normal(Vx.shape)
        return V, Vx, Vxx


@dataclass(frozen=True)
class Settings(Budget):
    """Budget of this experiment: ``env_id`` and the noise ``levels``."""

    env_id: str = "dvp_rl/Unicycle-v0"
    iterations: int = 6
    n_samples: int = 200
    levels: tuple[float, ...] = LEVELS


FULL = Settings()
QUICK = Settings(**asdict(QUICK_BUDGET), levels=(0.0, 1e-1))


@common.experiment(NAME, QUICK, FULL)
def run(settings: Settings, seeds: tuple[int, ...], out: Path, n_workers: int = 1, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment; write the figure, the table and tensorboard logs; return the table.

    :param n_workers: processes solving DDP problems (DVP's and the ground truth's)
    :param cache_dir: folder of the ground-truth cache (default :func:`common.ground_truth_cache`
        of the output folder)
    """
    env_name = settings.env_id.split("/")[-1]
    recorders: dict[float, list[IterationRecorder]] = {level: [] for level in settings.levels}
    with torch_threads(1):
        truth = settings.eval_truth(settings.env_id, n_workers, cache_dir=common.ground_truth_cache(out, cache_dir))
        for index, level in enumerate(settings.levels):
            for seed in seeds:
                writer = common.writer(out, f"{env_name}__DVP_noise{level:g}__{seed}")
                kwargs = settings.dvp_kwargs(n_workers, noise_level=level, noise_seed=(int(seed), index))
                try:
                    _, recorder = train_and_record(settings.env_id, seed, settings.iterations, truth, writer, kwargs, agent_class=NoisyFirstFitDVP)
                finally:
                    writer.close()
                recorders[level].append(recorder)
    _plot(recorders, settings, out / "noise.png")
    return _write_table(recorders, seeds, settings, int(truth.converged.sum()), out)


def _plot(recorders: dict[float, list[IterationRecorder]], settings: Settings, path: Path) -> None:
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    colors = colormaps["plasma"](np.linspace(0, 0.85, len(recorders)))
    for color, (level, recs) in zip(colors, recorders.items()):
        for ax, field in zip(axes, ("value_rel_mse", "gradient_rel_error")):
            values = curves(recs, field)
            plot_curves(ax, np.arange(1, values.shape[1] + 1), values, f"noise {level:g}", color)
    axes[0].set(title="relative value MSE", xlabel="DVP iteration")
    axes[1].set(title="gradient relative error", xlabel="DVP iteration")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{settings.env_id}: noise on the first iteration's targets (mean and min-max over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _write_table(
    recorders: dict[float, list[IterationRecorder]], seeds: Sequence[int], settings: Settings, n_truth: int, out: Path
) -> dict[str, Any]:
    shown = sorted({1, 2, 3, settings.iterations} & set(range(1, settings.iterations + 1)))
    columns = ["noise level"] + [f"rel. value MSE, iter. {i}" for i in shown] + [f"gradient rel. error, iter. {shown[-1]}"]
    rows, per_level = [], {}
    for level, recs in recorders.items():
        rel, grad = curves(recs, "value_rel_mse"), curves(recs, "gradient_rel_error")
        rows.append([f"{level:g}"] + [common.cell(rel[:, i - 1]) for i in shown] + [common.cell(grad[:, -1])])
        per_level[f"{level:g}"] = {
            "value_rel_mse": common.curve_stats(rel),
            "value_mse": {"mean": curves(recs, "value_mse").mean(axis=0).tolist()},
            "gradient_rel_error": common.curve_stats(grad),
            "final_value_rel_mse": common.stats(rel[:, -1]),
        }
    data = {"experiment": NAME, "env_id": settings.env_id, "seeds": list(seeds), "settings": asdict(settings), "levels": per_level}
    notes = (
        f"{settings.env_id}, {settings.dvp_note()}. Noise on iteration 1's targets only: V + s rms(V) e, Vx_j + s rms(Vx_j) e. Errors against "
        f"{settings.truth_note()} ({n_truth} converged); mean ± std over seeds {list(seeds)}. Paper: a few iterations recover "
        "from the noise."
    )
    return common.publish_table(out, "DVP with noise on the first iteration's targets (paper Fig. 6)", columns, rows, data, notes)


__all__ = ["FULL", "LEVELS", "QUICK", "NoisyFirstFitDVP", "Settings", "run"]
