"""The quick runs of the Sobolev, architecture and MPC reproductions write every output, with finite numbers."""

from pathlib import Path

import pytest
import torch

from dvp_rl.experiments import get_experiment
from dvp_rl.experiments.common import check_finite
from tests.helpers import check_experiment_outputs

#: experiment -> the figures it writes
FIGURES = {
    "sobolev": ("sobolev_vs_plain.png", "sobolev_history.png"),
    "architecture": ("training_curves.png", "gradient_field.png"),
    "mpc": ("mpc.png",),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_quick_run_writes_outputs(name: str, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    table = get_experiment(name)(out_dir=tmp_path, seeds=(0, 1), quick=True)
    assert torch.get_num_threads() == threads  # restored
    markdown, saved = check_experiment_outputs(tmp_path, table, FIGURES[name])
    check_finite(saved)
    assert saved["seeds"] == [0, 1]
    if name == "mpc":  # the settings' target is checked and reported
        assert "Target" in markdown
        for check in saved["target"].values():
            assert isinstance(check["met_wall"], bool) and isinstance(check["met_nodes"], bool)
    if name == "architecture":  # the fit's hook recorded every epoch (nothing stopped it early)
        for curves in saved["mean_curves"].values():
            assert all(len(values) == saved["settings"]["epochs"] for values in curves.values())


def test_rerun_replaces_a_runs_tensorboard_events(tmp_path: Path) -> None:
    """Writing a run again leaves only the new scalars (as the rerun table replaces the old one)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dvp_rl.experiments.common import writer

    for values in ((1.0, 2.0, 3.0), (7.0,)):
        with writer(tmp_path, "run__0") as tb:
            for step, value in enumerate(values):
                tb.add_scalar("eval/x", value, step)
        (tmp_path / "tb" / "run__0" / "notes.txt").write_text("kept")
    events = EventAccumulator(str(tmp_path / "tb" / "run__0"))
    events.Reload()
    assert [e.value for e in events.Scalars("eval/x")] == [7.0]
    assert (tmp_path / "tb" / "run__0" / "notes.txt").read_text() == "kept"
