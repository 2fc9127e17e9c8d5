"""The side-by-side run on Gymnasium's own Pendulum-v1 (tiny budgets): every agent scored on the same
episodes by the env's reward, against the value-iteration optimum of each episode."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dvp_rl.cli import main
from dvp_rl.compare.zoo import ZooConfig
from dvp_rl.references.value_iteration import pendulum_start_states, solve_pendulum
from tests.helpers import run_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    return run_zoo(
        out, "--agents", "DVP", "SAC", "--budget-seconds", "20", "--episodes", "2", "--episode-seed", "7",
        "--dvp-kwargs", '{"iterations": 1, "n_samples": 40, "horizon": 10, "fit": {"max_epochs": 5, "polish_steps": 0}, "network": {"net_arch": [8]}}',
        "--sb3-kwargs", '{"SAC": {"n_timesteps": 150, "learning_starts": 50}}',
    )  # fmt: skip


def test_every_agent_is_scored_on_the_same_episodes_against_their_optimum(zoo):
    summary = json.loads((zoo / "run" / "summary.json").read_text())
    assert summary["episode_seeds"] == [7, 8] and set(summary["agents"]) == {"DVP", "SAC"}
    reference = solve_pendulum(cache_dir=zoo / "reference")
    # the best known return of each episode: the grid's optimum, or its greedy controller's return where
    # that is higher (the interpolated value is pessimistic near the cliffs), played here by hand
    greedy = []
    env = gym.make("Pendulum-v1")
    for seed in (7, 8):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = reference.predict(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        greedy.append(total)
    optimum = np.maximum(reference.optimal_return(pendulum_start_states([7, 8])), greedy)
    np.testing.assert_allclose(summary["optimal_returns"], optimum)
    for name, row in summary["agents"].items():
        returns = np.array(row["returns"])
        assert returns.shape == (2,) and np.all(returns < 0)
        assert row["mean_regret"] == pytest.approx(np.mean(optimum - returns))
        assert row["mean_return"] == pytest.approx(returns.mean()) and row["worst_return"] == returns.min()
        assert 0 < row["median_step_ms"] <= row["p99_step_ms"] <= row["max_step_ms"] and math.isfinite(row["critic_rel_mse"])
        assert 0 < row["max_step_cpu_ms"] and math.isfinite(row["max_step_cpu_ms"])
    assert summary["agents"]["DVP"]["env_interactions"] == 0 < summary["agents"]["DVP"]["model_evaluations"]
    assert summary["agents"]["SAC"]["model_evaluations"] == 0 < summary["agents"]["SAC"]["env_interactions"] <= 150
    assert summary["agents"]["SAC"]["critic_gamma"] == 0.99 and summary["agents"]["DVP"]["critic_gamma"] == 1.0
    text = (zoo / "run" / "summary.md").read_text()
    assert "rl-zoo3 TQC (published" in text and "| DVP |" in text and "optimum (reference)" in text and "ms / step (p99)" in text
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| agent |"))
    table = lines[first : next(i for i in range(first, len(lines)) if not lines[i].startswith("|"))]
    assert len({line.count("|") for line in table}) == 1  # every row (agents, optimum, published) has the header's cells


def test_outputs_for_people_who_would_rather_look(zoo):
    assert (zoo / "run" / "returns.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from dvp_rl.agent import DVP

    agent = DVP.load(zoo / "run" / "DVP.zip")  # the trained agent, on disk
    assert agent.user_id == "Pendulum-v1" and agent.iteration == 1 and (zoo / "run" / "SAC.zip").exists()
    events = EventAccumulator(str(zoo / "run" / "tb" / "DVP"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"zoo/mean_return", "zoo/mean_regret", "zoo/median_step_ms", "zoo/p99_step_ms", "zoo/max_step_ms"} <= scalars
    assert sorted((zoo / "run" / "tb_internal").iterdir()) == [zoo / "run" / "tb_internal" / "DVP_1", zoo / "run" / "tb_internal" / "SAC_1"]
    assert "zoo/returns" in events.Tags()["images"] and "zoo/episode_returns" in events.Tags()["histograms"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="supported ids"):
        ZooConfig(env_id="CartPole-v1")
    with pytest.raises(ValueError, match="agents must be among"):
        ZooConfig(agents=("DQN",))
    with pytest.raises(ValueError, match="not SB3 agents"):
        ZooConfig(agents=("DVP", "SAC"), sb3_kwargs={"PPO": {}})
    assert main(["zoo", "--env", "CartPole-v1"]) == 2
