"""The quick runs of the Sobolev, architecture and MPC reproductions write every output, with finite numbers."""

import json
import math
from pathlib import Path

import pytest
import torch

from dvp_rl.experiments import get_experiment
from dvp_rl.experiments.common import check_finite

#: experiment -> the figures it writes
FIGURES = {
    "sobolev": ("sobolev_vs_plain.png", "sobolev_history.png"),
    "architecture": ("training_curves.png", "gradient_field.png"),
    "mpc": ("mpc.png",),
}


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_quick_run_writes_outputs(name: str, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    table = get_experiment(name)(out_dir=tmp_path, seeds=(0, 1), quick=True)
    assert torch.get_num_threads() == threads  # restored
    for figure in FIGURES[name]:
        assert (tmp_path / figure).stat().st_size > 1000, figure
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("# ") and "|---|" in markdown and "nan" not in markdown.lower()
    saved = json.loads((tmp_path / "table.json").read_text())
    check_finite(saved)
    numbers = list(_numbers(saved))
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert saved["seeds"] == [0, 1] and saved == json.loads(json.dumps(table, default=float))
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    if name == "mpc":  # the target is checked and reported
        assert "Target" in markdown
        for check in saved["target"].values():
            assert isinstance(check["met_wall"], bool) and isinstance(check["met_nodes"], bool)

