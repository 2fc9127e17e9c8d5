"""The side-by-side run on Gymnasium's MuJoCo ids (tiny budgets): Reacher-v5 against its DDP oracle,
InvertedDoublePendulum-v5 without a reference ("n/a" instead of numbers)."""

import json
import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytest.importorskip("mujoco")

from dvp_rl.cli import main  # noqa: E402
from dvp_rl.compare.zoo import PUBLISHED, ZooConfig  # noqa: E402
from dvp_rl.references.oracle import ORACLES, oracle_returns  # noqa: E402

pytestmark = pytest.mark.mujoco

TINY_DVP = {"iterations": 1, "n_samples": 30, "horizon": 5, "fit": {"max_epochs": 5, "polish_steps": 0}, "network": {"net_arch": [8]}, "mpc": {"horizon": 3}}


def run(argv):
    threads = torch.get_num_threads()
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo_reacher")
    code = run([
        "zoo", "--env", "Reacher-v5", "--agents", "DVP", "SAC", "--budget-seconds", "20", "--episodes", "1", "--episode-seed", "7",
        "--dvp-kwargs", json.dumps(TINY_DVP), "--sb3-kwargs", '{"SAC": {"n_timesteps": 120, "learning_starts": 50}}',
        "--n-workers", "1", "--cache-dir", str(out / "reference"), "--out", str(out / "run"),
    ])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def pendulum_without_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo_idp")
    code = run([
        "zoo", "--env", "InvertedDoublePendulum-v5", "--agents", "DVP", "PPO", "--no-reference", "--budget-seconds", "20",
        "--episodes", "1", "--episode-seed", "3", "--dvp-kwargs", json.dumps(TINY_DVP),
        "--sb3-kwargs", '{"PPO": {"n_timesteps": 128}}', "--n-workers", "1", "--out", str(out / "run"),
    ])  # fmt: skip
    assert code == 0
    return out


def test_reacher_is_scored_against_its_ddp_oracle(reacher):
    summary = json.loads((reacher / "run" / "summary.json").read_text())
    assert summary["env_id"] == "Reacher-v5" and summary["episode_seeds"] == [7] and "DDP oracle" in summary["reference"]
    # the oracle's returns are cached per episode: asking again reads them
    cached = oracle_returns("Reacher-v5", np.array([7]), ORACLES["Reacher-v5"], reacher / "reference")
    np.testing.assert_allclose(summary["optimal_returns"], cached)
    assert -10.0 < cached[0] < 0.0  # Reacher's reward is minus a distance and a control cost
    for name, row in summary["agents"].items():
        returns = np.array(row["returns"])
        assert returns.shape == (1,) and np.all(returns < 0) and row["episode_lengths"] == [50]
        assert row["mean_regret"] == pytest.approx(cached[0] - returns[0])
        assert 0 < row["median_step_ms"] <= row["p99_step_ms"] <= row["max_step_ms"] and math.isfinite(row["critic_rel_mse"])
    assert summary["agents"]["DVP"]["env_interactions"] == 0 < summary["agents"]["DVP"]["model_evaluations"]
    assert summary["agents"]["SAC"]["model_evaluations"] == 0 < summary["agents"]["SAC"]["env_interactions"] <= 120
    assert set(summary["published"]) == set(PUBLISHED["Reacher-v5"]) and summary["published"]["SAC"]["source"] == "Tianshou"
    text = (reacher / "run" / "summary.md").read_text()
    assert "| DVP |" in text and "optimum (reference)" in text and "Tianshou SAC (published" in text and "n/a" not in text
    from dvp_rl.agent import DVP

    agent = DVP.load(reacher / "run" / "DVP.zip")
    assert agent.user_id == "Reacher-v5" and agent.iteration == 1


def test_an_env_run_without_reference_reports_na(pendulum_without_reference):
    run_dir = pendulum_without_reference / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reference"] is None and summary["optimal_returns"] is None and summary["optimal_mean_return"] is None
    for row in summary["agents"].values():
        assert row["mean_regret"] is None and row["max_regret"] is None and row["critic_rel_mse"] is None
        assert len(row["returns"]) == 1 and 1 <= row["episode_lengths"][0] <= 1000 and row["median_step_ms"] > 0
    text = (run_dir / "summary.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| DVP |") or line.startswith("| PPO |")]
    assert len(table) == 4 and all("n/a" in line for line in table)  # regret in the returns table, error in the critics'
    assert "optimum (reference)" not in text and "Tianshou PPO (published" in text
    assert (run_dir / "returns.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(run_dir / "tb" / "DVP"), size_guidance={"scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert "zoo/mean_return" in scalars and "zoo/mean_regret" not in scalars and "zoo/critic_rel_mse" not in scalars


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="supported ids"):
        ZooConfig(env_id="HalfCheetah-v5")
    with pytest.raises(ValueError, match="n_workers"):
        ZooConfig(env_id="Reacher-v5", n_workers=0)
