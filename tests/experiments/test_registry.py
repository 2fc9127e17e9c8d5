"""The `ppo` reproduction (reuses the benchmark) and the `dvp-rl reproduce` command."""

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dvp_rl.cli import main
from dvp_rl.experiments import EXPERIMENTS, get_experiment


def test_reproduce_ppo_quick_writes_table_and_benchmark_outputs(tmp_path):
    assert main(["reproduce", "ppo", "--quick", "--seeds", "0", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    for algo in ("DVP", "PPO"):
        values = table["dvp_rl/Unicycle-v0"][algo]
        assert set(values) == {"value_mse", "value_rel_mse", "closed_loop_cost", "env_interactions", "model_evaluations", "wallclock_s"}
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


def test_experiments_import_no_sibling_experiment():
    """Experiments share code through common.py, dvp_runs.py and value_fits.py, never through another experiment."""
    folder = Path(__file__).resolve().parents[1] / "dvp_rl" / "experiments"
    experiments = set(EXPERIMENTS.values())
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not imported & experiments, f"{path.name} imports {sorted(imported & experiments)}"


def test_importing_the_experiments_sets_no_global_matplotlib_state():
    """No backend switch and no pyplot at import: the experiments draw on matplotlib.figure.Figure."""
    code = (
        "import sys, matplotlib; raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend'); before = raw(); "
        "from dvp_rl.experiments import EXPERIMENTS; import importlib; "
        "[importlib.import_module(m) for m in EXPERIMENTS.values()]; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
        "assert raw() == before, 'backend changed'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
