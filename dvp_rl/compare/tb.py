"""Tensorboard event writers for the benchmark and the experiments (one place imports the writer).

The writer is torch's ``SummaryWriter`` (what SB3's logger uses too; it needs no TensorFlow),
imported when a writer is made, so modules that only may write import no torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def summary_writer(folder: str | os.PathLike, replace: bool = False) -> SummaryWriter:
    """A tensorboard writer of one run in ``folder``.

    :param replace: delete the folder's earlier event files first, so that a rerun replaces
        the run (tensorboard would otherwise draw the old and the new curves as one run)
    """
    from pathlib import Path

    from torch.utils.tensorboard import SummaryWriter

    if replace:
        for old in Path(folder).glob("events.out.tfevents.*"):
            old.unlink()
    return SummaryWriter(str(folder))
