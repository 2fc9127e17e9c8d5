"""The agents' adapters: settings from the package's and SB3's files updated by the run's, the budget,
the discount's episode length, observations of twin states, critics in the twin's cost."""

import gymnasium as gym
import numpy as np
import pytest

from baselines.sb3 import episode_steps
from baselines.sb3 import critic_costs, default_gamma, load_hyperparams
from dvp_rl.compare.adapters import ADAPTERS, DVPAdapter, RunSpec, SB3Adapter, get_adapter, observations_of
from dvp_rl.defaults import dvp_defaults
from envs.twins import TWINS


def test_every_agent_has_one_adapter():
    assert list(ADAPTERS) == ["DVP", "PPO", "SAC", "TD3", "MPC"]
    assert all(ADAPTERS[a].samples == "model_evaluations" for a in ("DVP", "MPC"))
    assert all(ADAPTERS[a].samples == "env_interactions" for a in ("PPO", "SAC", "TD3"))
    assert [a for a, adapter in ADAPTERS.items() if not adapter.has_critic] == ["MPC"]
    with pytest.raises(ValueError, match="known agents"):
        get_adapter("DQN")


def test_dvp_starts_from_its_defaults_and_the_run_overrides_them():
    defaults = dvp_defaults("Pendulum-v1")
    agent = DVPAdapter().build(RunSpec("Pendulum-v1", 3, overrides={"n_samples": 20, "horizon": 4}, n_workers=1))
    assert agent.budget == defaults["iterations"] and agent.settings["iterations"] == defaults["iterations"]
    assert agent.model.n_samples == 20 and agent.model.horizon == 4 and agent.model.mpc.horizon == defaults["mpc"]["horizon"]
    assert agent.model.gamma == 1.0 and agent.model.seed == 3 and agent.model.checkpoint_dir is None
    budgeted = DVPAdapter().build(RunSpec("dvp_rl/Unicycle-v0", 0, gamma=0.9, overrides={"n_samples": 10, "iterations": 4}, budget=2))
    assert budgeted.budget == 2 and budgeted.gamma == 0.9 and budgeted.settings["n_workers"] == 1


def test_sb3_takes_its_entry_and_the_discounts_episode_length():
    ppo = SB3Adapter("ppo").build(RunSpec("dvp_rl/Unicycle-v0", 0, gamma=0.95, overrides={"n_steps": 64}, budget=128))
    assert ppo.name == "PPO" and ppo.budget == 128 and ppo.model.gamma == 0.95 and ppo.model.n_steps == 64
    assert ppo.model.get_env().envs[0].spec.max_episode_steps == episode_steps("dvp_rl/Unicycle-v0", 0.95)
    assert ppo.settings == {**load_hyperparams("dvp_rl/Unicycle-v0", "PPO"), "n_steps": 64, "n_timesteps": 128, "gamma": 0.95, "seed": 0}
    sac = SB3Adapter("SAC").build(RunSpec("Pendulum-v1", 1, overrides={"n_timesteps": 500}))
    assert sac.budget == 500 and sac.gamma == load_hyperparams("Pendulum-v1", "SAC").get("gamma", default_gamma("SAC"))
    # the entry's discount: the registration's episodes
    assert sac.model.get_env().envs[0].spec.max_episode_steps == gym.spec("Pendulum-v1").max_episode_steps


def test_sb3_sees_twin_states_as_observations():
    states = np.array([[0.3, -1.0], [np.pi, 2.0]])
    observations = observations_of("Pendulum-v1", states, 3)
    np.testing.assert_allclose(observations, TWINS["Pendulum-v1"].state_to_observation(states))
    td3 = SB3Adapter("TD3").build(RunSpec("Pendulum-v1", 0))
    np.testing.assert_array_equal(td3.values(states), critic_costs(td3.model, observations))  # Pendulum-v1: reward = -cost
    assert td3.state_policy()(states).shape == (2, 1)
    with pytest.raises(ValueError, match="shape"):
        observations_of("dvp_rl/Unicycle-v0", states, 3)
