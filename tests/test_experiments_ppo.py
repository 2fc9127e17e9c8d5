"""The `ppo` reproduction (reuses the benchmark) and the `dvp-rl reproduce` command."""

import json
import math

import pytest

from dvp_rl.cli import main
from dvp_rl.experiments import EXPERIMENTS, get_experiment


def test_reproduce_ppo_quick_writes_table_and_benchmark_outputs(tmp_path):
    assert main(["reproduce", "ppo", "--quick", "--seeds", "0", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    for algo in ("DVP", "PPO"):
        values = table["dvp_rl/Unicycle-v0"][algo]
        assert set(values) == {"value_mse", "value_rel_mse", "closed_loop_cost", "transitions"}
        assert all(math.isfinite(v) for v in values.values())
    assert "PPO / DVP" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "summary.md").exists()
    assert all(p.stat().st_size > 0 for p in (tmp_path / "figures").glob("*.png"))
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_every_experiment_is_registered_and_importable():
    for name in EXPERIMENTS:
        assert callable(get_experiment(name))
    with pytest.raises(ValueError, match="unknown experiment"):
        get_experiment("nope")
