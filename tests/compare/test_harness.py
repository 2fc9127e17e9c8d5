"""The harness's run of one agent: built by its adapter, trained under the wall-clock cap with the
scorers watching, scored; and its common settings."""

import math

import numpy as np
import pytest

from dvp_rl.compare.adapters import RunSpec, get_adapter
from dvp_rl.compare.benchmark import BenchmarkConfig
from dvp_rl.compare.harness import train_and_score
from dvp_rl.compare.scorers import SampleCountScorer, ValueErrorScorer
from dvp_rl.compare.zoo import ZooConfig
from dvp_rl.references.ground_truth import ground_truth
from tests.helpers import make_unwrapped

ENV_ID = "dvp_rl/Unicycle-v0"




def test_wall_clock_cap_stops_training(tmp_path, one_torch_thread):
    """PPO with a 100k-step budget and a 1 s cap stops after about a second, then is evaluated once more."""
    states = make_unwrapped(ENV_ID).sample_states(4, 0)
    truth = ground_truth(ENV_ID, states, gamma=0.9, horizon=20, cache_dir=None)
    scorer = ValueErrorScorer(truth, states[:1], gamma=0.9, steps=5, closed_loop_every=0)
    spec = RunSpec(ENV_ID, 0, gamma=0.9, overrides={"n_steps": 64}, budget=100_000)
    run = train_and_score(get_adapter("PPO"), spec, 1.0, [scorer, SampleCountScorer()], tmp_path / "internal", tmp_path / "run")
    assert run.stopped_by_cap
    assert 1.0 <= run.train_s < 5.0 and 0 < run.sample_count < 100_000
    assert run.scores["samples"] == {"env_interactions": run.sample_count, "model_evaluations": 0}
    history = run.scores["value_error"].history
    assert history[0].transitions == 0 and history[-1].transitions == run.sample_count
    # closed loop at the end only
    assert math.isnan(history[1].closed_loop_cost) and math.isfinite(history[-1].closed_loop_cost)
    assert run.scores["value_error"].closed_loop.states.shape == (1, 6, 3)
    assert run.paused_s > 0 and list((tmp_path / "internal").glob("events.out.tfevents.*"))


def test_dvp_runs_to_its_budget_and_counts_model_evaluations(tmp_path, one_torch_thread):
    spec = RunSpec(ENV_ID, 0, gamma=0.9, overrides={"n_samples": 10, "horizon": 5, "fit": {"max_epochs": 2, "polish_steps": 0}}, budget=1)
    run = train_and_score(get_adapter("DVP"), spec, 600.0, [SampleCountScorer()], tmp_path / "internal", model_path=tmp_path / "DVP.zip")
    assert not run.stopped_by_cap and run.agent.model.iteration == 1 and (tmp_path / "DVP.zip").exists()
    assert run.scores["samples"] == {"env_interactions": 0, "model_evaluations": run.sample_count} and run.sample_count > 0
    assert run.settings["iterations"] == 1 and run.settings["gamma"] == 0.9 and run.settings["n_workers"] == 1


def test_common_settings_are_checked_by_every_preset():
    for config in (BenchmarkConfig, ZooConfig):
        with pytest.raises(ValueError, match="budget_seconds"):
            config(budget_seconds=0.0)
        with pytest.raises(ValueError, match="n_workers"):
            config(n_workers=0)
    assert "out" not in BenchmarkConfig().settings() and "verbose" not in ZooConfig().settings()
    assert str(ZooConfig(out="x").out_dir()) == "x"
    assert BenchmarkConfig(env_ids=(ENV_ID,)).out_dir().name.startswith("Unicycle-v0__benchmark__")
    assert np.array_equal(ZooConfig(n_episodes=2, episode_seed=5).episode_seeds, [5, 6])
