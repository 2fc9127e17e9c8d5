"""The generic SB3 factory (PPO, SAC, TD3 from hyperparams.yml), the wall-clock cap and the shared
critics, with real Stable-Baselines3 training of a few hundred steps."""

import time
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecNormalize

from baselines.sb3 import (
    ALGORITHMS,
    WallClockCap,
    action_noise,
    default_gamma,
    learn_capped,
    load_hyperparams,
    make_sb3,
)

ENV_ID = "Pendulum-v1"
#: settings translated by make_sb3 rather than stored on the model under their own name
TRANSLATED = {"n_timesteps", "policy", "n_envs", "normalize", "noise_type", "noise_std", "policy_kwargs", "train_freq"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _stored(model, key):
    """The model's value of a constructor argument (schedules such as PPO's clip_range called at progress 1)."""
    value = getattr(model, key)
    return value(1.0) if callable(value) else value


def test_unknown_algorithm_or_entry_raises():
    with pytest.raises(ValueError, match="supported: \\['PPO', 'SAC', 'TD3'\\]"):
        make_sb3("DQN", ENV_ID)
    with pytest.raises(ValueError, match="unknown algorithm"):
        load_hyperparams(ENV_ID, "A2C")
    with pytest.raises(KeyError, match="Pendulum-v1"):
        make_sb3("SAC", "dvp_rl/CartPole-v0")
    with pytest.raises(ValueError, match="noise_type"):
        action_noise("uniform", 0.1, 1)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_yml_settings_reach_the_model(algo):
    settings = load_hyperparams(ENV_ID, algo)
    model = make_sb3(algo.lower(), ENV_ID, seed=0)
    assert isinstance(model, ALGORITHMS[algo])
    assert model.gamma == settings.get("gamma", default_gamma(algo))
    for key, value in settings.items():
        if key not in TRANSLATED:
            assert _stored(model, key) == value, key
    assert model.n_envs == settings.get("n_envs", 1)
    assert model.get_vec_normalize_env() is None  # rl-zoo3 does not normalise Pendulum-v1
    assert model.get_env().envs[0].spec.max_episode_steps == gym.spec(ENV_ID).max_episode_steps
    if "policy_kwargs" in settings:
        assert model.policy.net_arch == settings["policy_kwargs"]["net_arch"]
    if "noise_type" in settings:
        assert isinstance(model.action_noise, NormalActionNoise)
        np.testing.assert_array_equal(model.action_noise._sigma, [settings["noise_std"]])
    if "train_freq" in settings:
        n, unit = settings["train_freq"]
        assert model.train_freq == TrainFreq(n, TrainFrequencyUnit(unit))


def test_overrides_and_gamma_replace_the_entry():
    model = make_sb3("PPO", ENV_ID, seed=0, gamma=0.95, n_envs=2, n_steps=64, normalize={"norm_reward": False})
    assert model.gamma == 0.95 and model.n_envs == 2 and model.n_steps == 64
    vec_normalize = model.get_vec_normalize_env()
    assert isinstance(vec_normalize, VecNormalize) and vec_normalize.gamma == 0.95 and not vec_normalize.norm_reward
    td3 = make_sb3("TD3", ENV_ID, noise_type="ornstein-uhlenbeck", noise_std=0.3, train_freq=[2, "step"])
    assert isinstance(td3.action_noise, OrnsteinUhlenbeckActionNoise)
    assert td3.train_freq == TrainFreq(2, TrainFrequencyUnit.STEP)
    with pytest.raises(ValueError, match="gamma"):
        make_sb3("SAC", ENV_ID, gamma=1.5)


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_wall_clock_cap_stops_training(algo):
    # learning_starts 50: gradient steps within the cap (the yml's TD3 waits 10000 steps)
    overrides = {} if algo == "PPO" else {"learning_starts": 50}
    model = make_sb3(algo, ENV_ID, seed=0, **overrides)
    cap = 1.0
    run = learn_capped(model, total_timesteps=1_000_000, max_seconds=cap)
    assert run.hit_cap and run.model is model
    assert 0 < run.env_steps == model.num_timesteps < 1_000_000
    # The cap is checked at env steps: one gradient phase (a PPO update, TD3's 200 steps after an episode) may overshoot it.
    assert cap <= run.wall_s < cap + 15.0


def test_learn_capped_runs_to_the_budget_under_a_loose_cap():
    model = make_sb3("SAC", ENV_ID, seed=0)
    run = learn_capped(model, total_timesteps=300, max_seconds=600)
    assert not run.hit_cap and run.env_steps == 300
    assert model.num_timesteps == 300 and model._n_updates > 0  # learning_starts 100: it trained


def test_the_cap_leaves_out_paused_time_and_stops_at_the_end():
    cap = WallClockCap(0.15)
    cap.model = SimpleNamespace(num_timesteps=0)  # what BaseCallback reads of a model
    assert cap.elapsed() == 0.0  # not started
    cap.on_training_start({}, {})
    with cap.paused():
        time.sleep(0.2)
    assert cap.paused_s >= 0.2 and cap.elapsed() < 0.1 and cap.on_step() and not cap.hit
    time.sleep(0.2)
    assert not cap.on_step() and cap.hit
    cap.on_training_end()
    frozen = cap.elapsed()
    time.sleep(0.05)
    assert cap.elapsed() == frozen  # training time stops with training
    with pytest.raises(ValueError, match="max_seconds"):
        WallClockCap(0.0)
