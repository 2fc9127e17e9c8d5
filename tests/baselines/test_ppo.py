"""The PPO baseline: settings, critic on the cost scale, rollouts, save/load (a few seconds of training)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecNormalize

from baselines.ppo import critic_values, load_ppo, ppo_actions, save_ppo, vecnormalize_path
from baselines.sb3 import episode_steps, make_sb3
from baselines.sb3 import load_hyperparams as sb3_hyperparams
from dvp_rl.control.rollout import rollout_from_states
from tests.helpers import ALL_ENV_IDS, make_unwrapped

ENV_ID = "dvp_rl/Pendulum-v0"


def sb3_hyperparams_ppo(env_id):
    return sb3_hyperparams(env_id, "PPO")
GAMMA = 0.95


@pytest.fixture(scope="module")
def model():
    """PPO trained for 2 updates of 4 x 256 steps: enough to move the VecNormalize statistics.

    One torch thread: with these tiny networks more threads only slow training down
    on a small shared machine (4-10x measured on 2 cores); restored afterwards.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_sb3("PPO", ENV_ID, gamma=GAMMA, seed=0, n_steps=256).learn(2048)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def states(rng):
    return make_unwrapped(ENV_ID).sample_states(7, rng)


def test_unknown_env_id_raises_and_lists_known_ids():
    with pytest.raises(KeyError, match="dvp_rl/Pendulum-v0"):
        sb3_hyperparams_ppo("dvp_rl/NoSuchEnv-v0")
    with pytest.raises(KeyError):
        make_sb3("PPO", "dvp_rl/NoSuchEnv-v0", gamma=GAMMA)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_every_env_has_settings_that_build(env_id):
    hyperparams = sb3_hyperparams_ppo(env_id)
    assert "gamma" not in hyperparams
    ppo = make_sb3("PPO", env_id, gamma=0.99, seed=0)
    assert ppo.gamma == 0.99
    assert ppo.n_envs == hyperparams["n_envs"]
    assert isinstance(ppo.get_env(), VecNormalize) and ppo.get_env().gamma == 0.99


def test_episode_length_covers_the_discount():
    default = gym.spec(ENV_ID).max_episode_steps
    assert episode_steps(ENV_ID, 0.9) == default
    assert episode_steps(ENV_ID, 0.999) == 5000
    assert episode_steps(ENV_ID, 1.0) == default
    with pytest.raises(ValueError):
        episode_steps(ENV_ID, 0.0)
    ppo = make_sb3("PPO", ENV_ID, gamma=0.999, n_envs=1)
    assert ppo.get_env().venv.envs[0].spec.max_episode_steps == 5000
    # An entry of hyperparams.yml may fix the length instead; env_kwargs win over both.
    lq = "dvp_rl/LinearQuadratic-v0"
    fixed = sb3_hyperparams_ppo(lq)["max_episode_steps"]
    assert make_sb3("PPO", lq, gamma=0.999, n_envs=1).get_env().venv.envs[0].spec.max_episode_steps == fixed
    ppo = make_sb3("PPO", lq, gamma=0.999, n_envs=1, env_kwargs={"max_episode_steps": 7})
    assert ppo.get_env().venv.envs[0].spec.max_episode_steps == 7


def test_critic_values_are_the_unnormalised_negated_critic(model, states):
    vec_normalize = model.get_vec_normalize_env()
    assert vec_normalize.norm_obs and vec_normalize.norm_reward
    assert not np.allclose(vec_normalize.ret_rms.var, 1.0)  # the scale factor is really exercised
    # The documented transformation, computed here from the statistics themselves.
    obs_rms, eps = vec_normalize.obs_rms, vec_normalize.epsilon
    obs = np.clip((states - obs_rms.mean) / np.sqrt(obs_rms.var + eps), -vec_normalize.clip_obs, vec_normalize.clip_obs)
    with torch.no_grad():
        v_normalised = model.policy.predict_values(torch.as_tensor(obs, dtype=torch.float32)).numpy().ravel()
    expected = -v_normalised * np.sqrt(vec_normalize.ret_rms.var + eps)

    values = critic_values(model, states)
    assert values.shape == (len(states),) and values.dtype == np.float64
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_critic_values_rejects_bad_shapes(model):
    with pytest.raises(ValueError, match="shape"):
        critic_values(model, np.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        critic_values(model, np.zeros((3, 4)))


def test_rollout_shapes_and_costs_match_the_env(model, states):
    n_steps = 30
    xs, us, costs = rollout_from_states(ppo_actions(model), ENV_ID, states, n_steps)
    nx, nu = states.shape[1], 1
    assert xs.shape == (len(states), n_steps + 1, nx)
    assert us.shape == (len(states), n_steps, nu)
    assert costs.shape == (len(states), n_steps)
    np.testing.assert_array_equal(xs[:, 0], states)

    env = make_unwrapped(ENV_ID)
    assert np.all(us >= env.action_low) and np.all(us <= env.action_high)
    for i in range(len(states)):
        for t in range(n_steps):
            assert costs[i, t] == pytest.approx(env.cost(xs[i, t], us[i, t]), rel=1e-12, abs=1e-15)
            np.testing.assert_allclose(xs[i, t + 1], _step(env, xs[i, t], us[i, t]), rtol=1e-12)


def _step(env, x, u):
    """The env's next state from ``x`` under ``u``."""
    env.reset(options={"state": x})
    return env.step(u)[0]


def test_rollout_is_deterministic_and_follows_the_policy(model, states):
    first = rollout_from_states(ppo_actions(model), ENV_ID, states, 5)
    second = rollout_from_states(ppo_actions(model), ENV_ID, states, 5)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    obs = model.get_vec_normalize_env().normalize_obs(states)
    u0, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(first.actions[:, 0], u0)


def test_save_load_keeps_the_normalisation(model, states, tmp_path):
    zip_path = save_ppo(model, tmp_path / "ppo")
    assert zip_path.exists() and vecnormalize_path(zip_path).exists()
    loaded = load_ppo(tmp_path / "ppo", ENV_ID)
    assert loaded.gamma == GAMMA
    assert not loaded.get_vec_normalize_env().training
    np.testing.assert_allclose(critic_values(loaded, states), critic_values(model, states), rtol=1e-6)
    np.testing.assert_array_equal(rollout_from_states(ppo_actions(loaded), ENV_ID, states, 5).actions, rollout_from_states(ppo_actions(model), ENV_ID, states, 5).actions)
