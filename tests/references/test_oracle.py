"""The DDP oracle and the references of a dvp_rl id, its own model (the arm): the controller plans on a fresh
instance of the model, its torques reach the real env through the env's action map; values are the
ground truth on the env itself."""

import gymnasium as gym
import numpy as np
import pytest

from dvp_rl.references import oracle
from dvp_rl.references.episodes import REFERENCES, ddp_oracle_reference, is_own_model, model_of, twin_start_states
from dvp_rl.references.ground_truth import ground_truth
from dvp_rl.references.oracle import ORACLES, OracleSettings, oracle_episode, oracle_returns
from envs.wrappers import action_map

ARM_ID = "dvp_rl/PandaReach-v0"
#: a short oracle: every step's plan 0.1 s ahead, few iterations (the arm's own is 1.5 s, to convergence)
SHORT = OracleSettings(horizon=10, max_iter=20, pushes=False)


def test_the_arm_is_its_own_model_and_has_an_oracle():
    assert is_own_model(ARM_ID) and is_own_model("dvp_rl/Unicycle-v0") and not is_own_model("Pendulum-v1")
    assert model_of(ARM_ID) == (ARM_ID, {}) and model_of("Pendulum-v1") == ("dvp_rl/Pendulum-v0", {"cost": "gymnasium"})
    assert ORACLES[ARM_ID] == OracleSettings(horizon=150, max_iter=200, pushes=False) and ARM_ID in REFERENCES
    with pytest.raises(ValueError, match="oracle horizon must be an integer >= 1"):
        OracleSettings(horizon=0)


def test_start_states_are_the_reset_observations():
    env = gym.make(ARM_ID)
    np.testing.assert_array_equal(twin_start_states(ARM_ID, np.array([3, 4])), [env.reset(seed=s)[0] for s in (3, 4)])


def test_the_oracles_torques_reach_the_env_in_its_action_space(monkeypatch):
    played = []
    monkeypatch.setattr(oracle, "run_episode", _recorder(played))
    episode = oracle_episode(ARM_ID, 3, SHORT)
    ((_, trajectory),) = played
    actions = trajectory.actions
    assert actions.shape == (300, 7) and actions.dtype == np.float32 and episode.length == 300
    assert np.all(actions >= -1.0) and np.all(actions <= 1.0) and np.abs(actions).max() > 0.01  # [-1, 1], not torques
    assert episode.episode_return == pytest.approx(trajectory.episode_return) and not episode.terminated
    # each action is the map of a torque within the effort limits: the map's inverse gives them back
    to_env = action_map(gym.make(ARM_ID))
    torques = (actions.astype(np.float64) - to_env.offset) / to_env.scale
    effort = gym.make(ARM_ID).unwrapped.effort
    assert np.all(np.abs(torques) <= effort * (1 + 1e-6))
    with pytest.raises(ValueError, match="no model of 'CartPole-v1'"):
        oracle_episode("CartPole-v1", 0, SHORT)


def _recorder(played):
    original = oracle.run_episode

    def recording(act, env, max_steps=None, **reset):
        trajectory = original(act, env, max_steps, **reset)
        played.append((env, trajectory))
        return trajectory

    return recording


def test_the_arms_reference_values_are_the_ground_truth_on_the_env(tmp_path):
    reference = ddp_oracle_reference(ARM_ID, tmp_path, 1, SHORT)
    assert reference.name == ("DDP oracle: receding-horizon DDP on the env's model (H=10) played in the real env, an estimate; "
                              "values: DDP of T=200 on the env's model")  # fmt: skip
    seeds = np.array([3])
    starts = reference.start_states(seeds)
    truth = ground_truth(ARM_ID, starts, 0.99, 200, {}, cache_dir=None)
    np.testing.assert_allclose(reference.value(starts, 0.99), truth.V)
    optimum = reference.optimal_returns(seeds)
    np.testing.assert_array_equal(optimum, oracle_returns(ARM_ID, seeds, SHORT, tmp_path))  # cached per episode
    assert len(list(tmp_path.glob("oracle__dvp_rl-PandaReach-v0__*.json"))) == 1
    assert -1.0 < optimum[0] < 0.0  # a reach's cost, well below the cost of a fall
