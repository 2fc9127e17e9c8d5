"""The side-by-side run on the package's arm, ``dvp_rl/PandaReach-v0`` (its own model: no twin), with tiny
budgets: DVP, SAC, TD3, PPO and the MPC row (DVP's controller without a learned value) scored on the same
episodes against the arm's DDP oracle, with their success rates, a GIF each and the success rate
against the training wall-clock."""

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dvp_rl.compare.zoo import ZooConfig, zoo_config
from dvp_rl.references.oracle import ORACLES, oracle_returns
from tests.helpers import run_zoo

ARM_ID = "dvp_rl/PandaReach-v0"
AGENTS = ["DVP", "SAC", "TD3", "PPO", "MPC"]
TINY_DVP = {"iterations": 1, "n_samples": 30, "horizon": 20, "fit": {"max_epochs": 5, "polish_steps": 0}, "network": {"net_arch": [8]}}
#: SAC trains (learning_starts below its budget), TD3 does not (at or above it)
TINY_SB3 = {"SAC": {"n_timesteps": 300, "learning_starts": 100}, "TD3": {"n_timesteps": 300, "learning_starts": 300},
            "PPO": {"n_timesteps": 256, "n_steps": 128}}  # fmt: skip


@pytest.fixture(scope="module")
def arm(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo_arm")
    return run_zoo(
        out, "--env", ARM_ID, "--quick", "--episodes", "2", "--budget-seconds", "10", "--dvp-kwargs", json.dumps(TINY_DVP),
        "--sb3-kwargs", json.dumps(TINY_SB3), "--oracle-kwargs", '{"horizon": 20}', "--curve-episodes", "1",
    )  # fmt: skip


def test_every_agent_and_the_mpc_row_on_the_same_episodes_with_their_success(arm):
    summary = json.loads((arm / "run" / "summary.json").read_text())
    assert summary["env_id"] == ARM_ID and summary["episode_seeds"] == [1000, 1001] and list(summary["agents"]) == AGENTS
    settings = dataclasses.replace(ORACLES[ARM_ID], horizon=20)  # --oracle-kwargs over the arm's oracle; cached per episode
    np.testing.assert_array_equal(summary["optimal_returns"], oracle_returns(ARM_ID, np.array([1000, 1001]), settings, arm / "reference"))
    for row in summary["agents"].values():
        assert len(row["successes"]) == 2 and row["success_rate"] == np.mean(row["successes"])
        assert row["episode_lengths"] == [300, 300] and row["mean_regret"] == pytest.approx(np.mean(summary["optimal_returns"]) - row["mean_return"])
    mpc = summary["agents"]["MPC"]
    assert mpc["train_s"] < 0.5 and mpc["env_interactions"] == mpc["model_evaluations"] == 0 and mpc["untrained"] is None
    assert mpc["critic_gamma"] is None and mpc["critic_rel_mse"] is None and mpc["settings"]["terminal"] is None
    assert mpc["settings"]["mpc"]["time_budget"] == summary["agents"]["DVP"]["settings"]["mpc"]["time_budget"]  # the same controller
    assert summary["agents"]["TD3"]["untrained"] == "untrained (learning_starts 300 >= 300 steps)"
    assert summary["agents"]["SAC"]["untrained"] is None and summary["agents"]["DVP"]["untrained"] is None
    text = (arm / "run" / "summary.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| agent | return"))
    assert header.split(" | ")[2] == "success"
    assert "| MPC | " in text and "| TD3: untrained (learning_starts 300 >= 300 steps) |" in text and "MPC: DVP's controller" in text
    assert not (arm / "run" / "MPC.zip").exists() and all((arm / "run" / f"{name}.zip").exists() for name in AGENTS[:4])


def test_a_gif_per_agent_and_the_success_rate_against_wall_clock(arm):
    for name in AGENTS:
        gif = Image.open(arm / "run" / "videos" / f"{name}.gif")
        assert gif.format == "GIF" and 10 < gif.n_frames <= 61 and gif.size[0] <= 480  # a frame every 5 steps (identical ones merged)
    assert (arm / "run" / "success_vs_wallclock.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((arm / "run" / "summary.json").read_text())
    curves = {name: row["curve"] for name, row in summary["agents"].items()}
    assert len(curves["MPC"]) == 1 and curves["MPC"][0]["wallclock_s"] < 0.5
    assert len(curves["DVP"]) == 2 and curves["DVP"][0]["transitions"] == 0 < curves["DVP"][1]["transitions"]  # before and after its iteration
    assert all(len(points) >= 2 for name, points in curves.items() if name != "MPC")
    events = EventAccumulator(str(arm / "run" / "tb" / "SAC"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert {"zoo/success_rate", "zoo_wallclock/success_rate", "zoo_wallclock/mean_return"} <= set(events.Tags()["scalars"])
    steps = [e.step for e in events.Scalars("zoo_wallclock/mean_return")]
    assert steps == [round(1e3 * p["wallclock_s"]) for p in curves["SAC"]]  # training milliseconds
    assert "zoo/success_vs_wallclock" in events.Tags()["images"]


def test_the_arms_presets():
    full, quick = zoo_config(ARM_ID), zoo_config(ARM_ID, quick=True)
    assert full.agents == quick.agents == tuple(AGENTS) and full.budget_seconds == 1800.0 and full.n_episodes == 100
    assert full.curve_episodes > 0 and quick.curve_episodes > 0
    for algo in ("SAC", "TD3"):  # the smoke run trains them
        assert quick.sb3_kwargs[algo]["learning_starts"] < quick.sb3_kwargs[algo]["n_timesteps"]
    pendulum = zoo_config("Pendulum-v1")
    assert pendulum.agents == ("DVP", "SAC", "TD3", "PPO") and pendulum.curve_episodes == 0 and pendulum == ZooConfig()
    with pytest.raises(ValueError, match="has no DDP oracle"):
        ZooConfig(oracle_kwargs={"horizon": 3})
    with pytest.raises(ValueError, match="unknown OracleSettings field"):
        ZooConfig(env_id=ARM_ID, oracle_kwargs={"steps": 3})
    with pytest.raises(ValueError, match="no differentiable twin of 'CartPole-v1'"):
        ZooConfig(env_id="CartPole-v1")
