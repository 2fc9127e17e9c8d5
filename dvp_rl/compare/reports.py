"""What a comparison writes: ``summary.json`` and ``summary.md``, markdown tables, tensorboard scalars
and text, figures as PNG and as tensorboard images, episodes as GIF; shared by every preset.

The presets decide what a summary holds and how its tables read; this module writes them, the same
way for all, so that a run's outputs are laid out alike whatever compared what.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dvp_rl.checkpoint import jsonable

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

#: what a table shows where there is no number (no reference: no regret)
NOT_AVAILABLE = "n/a"


def write_summary(out: str | os.PathLike, summary: Mapping[str, Any], markdown: str) -> None:
    """Write ``summary.json`` (``summary``, NaN allowed, numpy values as JSON) and ``summary.md`` (``markdown``) into ``out``."""
    out = Path(out)
    (out / "summary.json").write_text(json.dumps(jsonable(summary), indent=2, allow_nan=True))
    (out / "summary.md").write_text(markdown)


def stats(values: Iterable[float]) -> dict[str, Any]:
    """``{"mean", "std" (population), "values"}`` of ``values`` over seeds."""
    array = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(np.mean(array)), "std": float(np.std(array)), "values": [float(v) for v in array]}


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The lines of a markdown table: ``| a | b |``, ``|---|---|``, then one line per row (cells as ``str``)."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header)] + [f"| {' | '.join(str(c) for c in row)} |" for row in rows]


def number(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals, :data:`NOT_AVAILABLE` for ``None``."""
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def log_scalars(writer: SummaryWriter, prefix: str, values: Mapping[str, float | None], step: int) -> None:
    """``writer.add_scalar(f"{prefix}/{key}", value, step)`` for each value that is not ``None``."""
    for key, value in values.items():
        if value is not None:
            writer.add_scalar(f"{prefix}/{key}", float(value), step)


def settings_text(settings: Mapping[str, Any]) -> str:
    """Settings as a JSON code block (tensorboard's Text tab renders markdown)."""
    return "```\n" + json.dumps(jsonable(dict(settings)), indent=1) + "\n```"


def hparams_text(hparams: Mapping[str, Any]) -> str:
    """Hyper-parameters as a markdown table ``| parameter | value |``."""
    return "\n".join(markdown_table(["parameter", "value"], hparams.items()))


def save_figure(figure: Figure, path: str | os.PathLike) -> np.ndarray:
    """Draw ``figure`` once (:func:`dvp_rl.compare.plots.render`), write it as a PNG at ``path``; returns the image (H, W, 3)."""
    from dvp_rl.compare import plots

    image = plots.render(figure)
    plots.save_png(image, path)
    return image


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float, max_width: int = 480) -> Path:
    """Write frames (H, W, 3) ``uint8`` as a looping GIF at ``path`` (its folder created), played at ``fps``
    frames per second, scaled down to at most ``max_width`` pixels wide; returns the path.

    :raises ValueError: no frame, or ``fps <= 0``
    """
    from PIL import Image

    if not len(frames) or not fps > 0:
        raise ValueError(f"a GIF needs frames and fps > 0, got {len(frames)} frames at {fps} fps")
    images = [Image.fromarray(np.asarray(frame, dtype=np.uint8)) for frame in frames]
    width, height = images[0].size
    if width > max_width:
        size = (int(max_width), max(1, round(height * max_width / width)))
        images = [image.resize(size, Image.Resampling.LANCZOS) for image in images]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(1000.0 / fps)), loop=0,
                   optimize=True)  # fmt: skip
    return path


__all__ = ["NOT_AVAILABLE", "hparams_text", "log_scalars", "markdown_table", "number", "save_figure", "save_gif", "settings_text",
           "stats", "write_summary"]  # fmt: skip
