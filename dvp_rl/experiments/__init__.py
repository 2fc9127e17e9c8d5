"""Reproductions of the paper's experiments, one module each (``dvp-rl reproduce <name>``).

Every experiment module (:data:`EXPERIMENTS`) exposes ``run(out_dir: Path, seeds: Sequence[int],
quick: bool) -> dict`` that writes its figure(s) as PNG, a table (``table.md`` and ``table.json``)
and tensorboard logs under ``out_dir`` (default ``runs/reproduce/<name>/``), and returns the
table. Those that compare with a ground truth (``convergence``, ``horizon``, ``noise``) also take
``cache_dir``, its cache folder (default ``ground_truth`` next to ``out_dir``, so that the
experiments of one ``dvp-rl reproduce all`` share it). Experiments do not import one another: the
pieces they share are in :mod:`~dvp_rl.experiments.common` (plumbing: output folders, tables,
tensorboard), :mod:`~dvp_rl.experiments.dvp_runs` (DVP runs recorded against a ground truth) and
:mod:`~dvp_rl.experiments.value_fits` (networks fitted to fixed DDP targets).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: experiment name -> module implementing it
EXPERIMENTS: dict[str, str] = {
    "convergence": "dvp_rl.experiments.convergence",
    "horizon": "dvp_rl.experiments.horizon",
    "noise": "dvp_rl.experiments.noise",
    "sobolev": "dvp_rl.experiments.sobolev_regression",
    "architecture": "dvp_rl.experiments.architecture",
    "ppo": "dvp_rl.experiments.ppo",
    "mpc": "dvp_rl.experiments.mpc",
}


def get_experiment(name: str) -> Callable[..., dict[str, Any]]:
    """The ``run`` function of experiment ``name``; a clear error for unknown names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name]).run
