"""The twin registry (envs.twins) on Gymnasium's MuJoCo ids: the observation maps of InvertedDoublePendulum-v5
and Reacher-v5 against MuJoCo's own observations, and ``twin_for`` (the other ids: test_twins.py)."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco")

from envs.twins import twin_for  # noqa: E402
from tests.envs.mjcf.helpers import IDP, REACHER, Side  # noqa: E402

pytestmark = pytest.mark.mujoco


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_observation_maps_round_trip(real_id, rng):
    side = Side(real_id)
    twin = twin_for(real_id)
    observations, states = [], []
    for _ in range(20):
        x = side.random_state(rng)
        side.set(x)
        observations.append(side.real._get_obs())
        states.append(x)
    observations, states = np.array(observations), np.array(states)
    mapped = twin.observation_to_state(observations)
    assert mapped.dtype == np.float64 and mapped.shape == states.shape
    angles = [1, 2] if real_id == IDP else [2, 3]
    np.testing.assert_allclose(np.cos(mapped[:, angles]), np.cos(states[:, angles]), atol=1e-12)
    np.testing.assert_allclose(np.delete(mapped, angles, axis=1), np.delete(states, angles, axis=1), atol=1e-12)
    np.testing.assert_allclose(twin.state_to_observation(mapped), observations, atol=1e-12)
    assert twin.observation_to_state(observations[0]).shape == (states.shape[1],)
    assert all(side.env.observation_space.contains(o) for o in twin.state_to_observation(mapped))


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_observations_along_real_episodes_map_to_the_state(real_id):
    """After ``mj_step`` Reacher's fingertip - target entries are MuJoCo's last RK4 stage's (~1e-6 m off the final
    angles', ~1e-3 m when the elbow hits its limit): the map accepts them and returns MuJoCo's state."""
    side = Side(real_id)
    twin = twin_for(real_id)
    obs, _ = side.env.reset(seed=1)
    side.env.action_space.seed(1)
    worst = 0.0
    for _ in range(40):
        obs, _, terminated, *_ = side.env.step(side.env.action_space.sample())
        if terminated:
            break
        state, expected = twin.observation_to_state(obs), side.get()
        angles = [1, 2] if real_id == IDP else [2, 3]
        np.testing.assert_allclose(np.cos(state[angles]), np.cos(expected[angles]), atol=1e-12)
        np.testing.assert_allclose(np.delete(state, angles), np.delete(expected, angles), atol=1e-12)
        if not np.any(side.real.data.qfrc_constraint):
            worst = max(worst, float(np.abs(twin.state_to_observation(state) - obs).max()))
    assert worst < (1e-12 if real_id == IDP else 1e-4), worst


@pytest.mark.parametrize(
    "real_id, observation, message",
    [
        (IDP, np.zeros(8), r"shape \(9,\)"),
        (IDP, np.r_[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, np.nan, 0.0], "finite"),
        (IDP, np.r_[0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], "unit circle"),
        (IDP, np.r_[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 10.5, 0.0, 0.0], "beyond its clip"),
        (REACHER, np.zeros(9), r"shape \(10,\)"),
        (REACHER, np.r_[1.0, 1.0, 0.3, 0.0, 0.1, 0.1, 0.0, 0.0, 0.11, -0.1], "unit circle"),
        (REACHER, np.r_[1.0, 1.0, 0.0, 0.0, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0], "fingertip - target"),
    ],
)
def test_observations_outside_the_twins_domain_raise(real_id, observation, message):
    with pytest.raises(ValueError, match=message):
        twin_for(real_id).observation_to_state(observation)


def test_twin_for_the_mujoco_ids():
    idp_twin = twin_for(gym.make(IDP, frame_skip=4, reset_noise_scale=0.2))
    assert (idp_twin.twin_id, idp_twin.max_episode_steps) == ("dvp_rl/InvertedDoublePendulum-v0", 1000)
    env = idp_twin.make().unwrapped
    assert (env.system.frame_skip, env.dt, env.reset_noise_scale) == (4, pytest.approx(0.04), 0.2)
    reacher_twin = twin_for(REACHER, reward_control_weight=0.5, width=64)  # rendering arguments are ignored
    assert reacher_twin.max_episode_steps == 50
    assert reacher_twin.make().unwrapped.reward_control_weight == 0.5
    with pytest.raises(ValueError, match=r"does not model .*\['healthy_reward'\]"):
        twin_for(IDP, healthy_reward=5.0)
    with pytest.raises(ValueError, match=r"does not model .*\['xml_file'\]"):
        twin_for(REACHER, xml_file="reacher.xml")
    changed = gym.make(IDP)
    changed.unwrapped._healthy_reward = 5.0
    with pytest.raises(ValueError, match="_healthy_reward=10"):
        twin_for(changed)
