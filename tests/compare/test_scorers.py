"""The scorers after training: returns and regret in the real env, step times, samples, critics."""

import numpy as np
import pytest
import torch

from dvp_rl.compare.adapters import RunSpec, SB3Adapter
from dvp_rl.compare.scorers import CriticScorer, ReturnsScorer, SampleCountScorer, StepTimeScorer
from dvp_rl.control.rollout import evaluate_episodes
from dvp_rl.references.episodes import twin_start_states


@pytest.fixture(scope="module")
def ppo():
    """An untrained PPO on Pendulum-v1 (its deterministic policy is enough to score)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield SB3Adapter("PPO").build(RunSpec("Pendulum-v1", 0))
    torch.set_num_threads(threads)


def test_scorers_read_the_same_episodes(ppo):
    seeds = np.array([3, 4])
    optimum = np.array([-100.0, -200.0])
    scores = {}
    for scorer in (ReturnsScorer("Pendulum-v1", seeds, optimum), StepTimeScorer(), SampleCountScorer()):
        scores[scorer.name] = scorer.score(ppo, None, scores)
    episodes = scores["returns"].episodes
    np.testing.assert_array_equal(episodes.returns, evaluate_episodes(ppo.model, "Pendulum-v1", seeds).returns)
    np.testing.assert_array_equal(scores["returns"].regret, optimum - episodes.returns)
    row = scores["returns"].row()
    assert row["mean_regret"] == pytest.approx(np.mean(optimum - episodes.returns)) and row["episode_lengths"] == [200, 200]
    times = scores["step_times"]
    assert times.median_step_ms == episodes.median_step_ms and times.p99_step_ms == pytest.approx(np.percentile(episodes.step_ms, 99))
    assert times.median_step_ms <= times.p99_step_ms <= times.max_step_ms == episodes.max_step_ms
    assert times.max_step_cpu_ms == episodes.max_step_cpu_ms == np.max(episodes.step_cpu_ms) > 0  # the controller's own worst work
    assert scores["samples"] == {"env_interactions": 0, "model_evaluations": 0}  # untrained
    without = ReturnsScorer("Pendulum-v1", seeds).score(ppo, None, {})
    assert without.regret is None and without.row()["mean_regret"] is None


def test_step_times_need_the_episodes_first(ppo):
    with pytest.raises(KeyError, match="must come before"):
        StepTimeScorer().score(ppo, None, {})


def test_the_critic_against_a_reference_of_its_own_discount(ppo):
    starts = twin_start_states("Pendulum-v1", np.array([3, 4]))
    seen = []

    def reference(states, gamma):
        seen.append(gamma)
        return np.ones(len(states))

    score = CriticScorer(starts, reference).score(ppo, None, {})
    assert seen == [ppo.gamma] and score.gamma == ppo.gamma
    np.testing.assert_array_equal(score.values, ppo.values(starts))
    assert score.rel_mse == pytest.approx(np.mean((score.values - 1.0) ** 2))
    assert CriticScorer(starts).score(ppo, None, {}).rel_mse is None
