"""Shared plumbing of the experiments: the preamble of ``run`` (seeds, budget, output folder),
the ground-truth cache folder, per-seed statistics and table cells, tables (markdown + JSON),
tensorboard.

Shared runners and records live next to it: :mod:`dvp_rl.experiments.dvp_runs` (DVP runs recorded
against a ground truth) and :mod:`dvp_rl.experiments.value_fits` (networks fitted to fixed DDP
targets). No experiment imports another.
"""

from __future__ import annotations

import functools

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from dvp_rl.compare.tb import summary_writer

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

#: the default output root (relative to the working directory): ``<root>/<name>`` per experiment
DEFAULT_ROOT = Path("runs/reproduce")
#: the ground-truth cache's folder name, next to an experiment's output folder
GROUND_TRUTH_FOLDER = "ground_truth"
#: the pendulum whose motor can hold the rod at any angle (``max_torque`` 6 > m g l / 2 = 5): at
#: Gymnasium's bound (2) the value jumps where the motor cannot (see ``PendulumEnv``), which no
#: smooth network fits, so the experiments that measure value accuracy use this variant
CONTINUOUS_PENDULUM: dict[str, Any] = {"max_torque": 6.0}

#: an experiment's settings (budget) class
S = TypeVar("S")


def out_dir_for(name: str, out: str | Path | None = None) -> Path:
    """``out`` or ``runs/reproduce/<name>``, created."""
    path = Path(out) if out is not None else DEFAULT_ROOT / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare(
    name: str,
    out_dir: str | Path | None,
    seeds: Sequence[int],
    quick: bool,
    settings: S | None,
    quick_settings: S,
    full_settings: S,
    validate: Callable[[S], None] | None = None,
) -> tuple[S, Path]:
    """The preamble of an experiment's ``run``: reject an empty ``seeds``, pick the budget
    (``settings``, default ``quick_settings`` or ``full_settings`` after ``quick``), let
    ``validate`` check it (raise to reject it) and make the output folder (:func:`out_dir_for`).

    :return: ``(settings, out)``
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    chosen = settings or (quick_settings if quick else full_settings)
    if validate is not None:
        validate(chosen)
    return chosen, out_dir_for(name, out_dir)


def experiment(name: str, quick_settings: S, full_settings: S, validate: Callable[[S], None] | None = None) -> Callable[..., Any]:
    """Decorator: an experiment's ``body(settings, seeds, out, **options)`` becomes its ``run``.

    ``run(out_dir=None, seeds=(0, 1, 2), quick=False, settings=None, **options) -> table``: the
    preamble of :func:`prepare` (``settings``: the budget, default ``quick_settings`` or
    ``full_settings`` after ``quick``; ``out_dir``: default ``runs/reproduce/<name>``), then the
    body, whose docstring documents its ``options`` (e.g. ``n_workers``, ``cache_dir``).
    """

    def wrap(body: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(body)
        def run(out_dir: str | Path | None = None, seeds: Sequence[int] = (0, 1, 2), quick: bool = False,
                settings: S | None = None, **options: Any) -> dict[str, Any]:  # fmt: skip
            chosen, out = prepare(name, out_dir, seeds, quick, settings, quick_settings, full_settings, validate)
            return body(chosen, tuple(seeds), out, **options)

        return run

    return wrap


def ground_truth_cache(out: Path, cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, or the folder :data:`GROUND_TRUTH_FOLDER` next to the output folder ``out``
    (``runs/reproduce/ground_truth`` by default), so that the experiments of one
    ``dvp-rl reproduce all`` share their ground truth."""
    return Path(cache_dir) if cache_dir is not None else Path(out).resolve().parent / GROUND_TRUTH_FOLDER


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds; NaN-free input expected."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def stats(values: Sequence[float] | np.ndarray, per_seed: bool = False) -> dict[str, Any]:
    """``{"mean", "std"}`` of per-seed values (JSON), plus ``"per_seed"`` (the values) with ``per_seed``."""
    mean, std = mean_std(values)
    if per_seed:
        return {"mean": mean, "std": std, "per_seed": [float(v) for v in values]}
    return {"mean": mean, "std": std}


def curve_stats(values: np.ndarray) -> dict[str, list[float]]:
    """``{"mean", "std"}`` over seeds of per-seed curves (rows of ``values``), per column (JSON)."""
    return {"mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist()}


def fmt(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``1.23e-04 ± 5.0e-06`` style cell."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None:
        return f"{mean:.{digits}e}"
    return f"{mean:.{digits}e} ± {std:.1e}"


def cell(values: Sequence[float] | np.ndarray) -> str:
    """``mean ± std`` cell of per-seed values (:func:`fmt`)."""
    return fmt(*mean_std(values))


def plain_cell(values: Sequence[float] | np.ndarray, digits: int) -> str:
    """``mean ± std`` cell of per-seed values in fixed-point notation with ``digits`` decimals."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_table(out_dir: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], data: dict[str, Any], notes: str = "") -> None:
    """Write ``table.md`` (a markdown table with a title and notes) and ``table.json`` (``data``)."""
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    (out_dir / "table.json").write_text(json.dumps(data, indent=2, default=_json_default))


def publish_table(
    out_dir: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], data: dict[str, Any], notes: str = ""
) -> dict[str, Any]:
    """:func:`check_finite` on ``data``, then :func:`write_table`; return ``data`` (the experiment's result)."""
    check_finite(data)
    write_table(out_dir, title, columns, rows, data, notes)
    return data


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def writer(out_dir: Path, run: str) -> SummaryWriter:
    """A tensorboard writer for one run of an experiment, under ``out_dir/tb/<run>``.

    A rerun replaces the run, as it replaces the table (:func:`dvp_rl.compare.tb.summary_writer`'s ``replace``).
    """
    return summary_writer(out_dir / "tb" / run, replace=True)


def check_finite(table: dict[str, Any]) -> None:
    """Raise if a number in the (nested) table is NaN or inf: experiments report, never hide."""

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif isinstance(value, (float, np.floating)) and not math.isfinite(value):
            raise FloatingPointError(f"non-finite number at {path}")

    walk(table, "table")
