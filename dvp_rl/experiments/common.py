"""Shared plumbing of the experiments: output folders, tables (markdown + JSON), seeds, tensorboard."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

DEFAULT_ROOT = Path("runs/reproduce")


def out_dir_for(name: str, out: str | Path | None = None) -> Path:
    """``out`` or ``runs/reproduce/<name>``, created."""
    path = Path(out) if out is not None else DEFAULT_ROOT / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds; NaN-free input expected."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def fmt(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``1.23e-04 ± 5.0e-06`` style cell."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None:
        return f"{mean:.{digits}e}"
    return f"{mean:.{digits}e} ± {std:.1e}"


def write_table(out_dir: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], data: dict[str, Any], notes: str = "") -> None:
    """Write ``table.md`` (a markdown table with a title and notes) and ``table.json`` (``data``)."""
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    (out_dir / "table.json").write_text(json.dumps(data, indent=2, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def writer(out_dir: Path, run: str) -> SummaryWriter:
    """A tensorboard writer for one run of an experiment, under ``out_dir/tb/<run>``."""
    return SummaryWriter(str(out_dir / "tb" / run))


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
