"""Which wrappers an agent acts through (envs.wrappers): the action map composed exactly, the others refused."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import ClipAction, NormalizeObservation, RescaleAction, TransformObservation, TransformReward

import envs  # noqa: F401
from envs.wrappers import action_map


def test_rescale_action_is_inverted_exactly_through_layers():
    base = gym.make("Pendulum-v1")  # torque in [-2, 2]
    wrapped = ClipAction(RescaleAction(RescaleAction(base, -1.0, 1.0), np.array([0.0], dtype=np.float32), np.array([10.0], dtype=np.float32)))
    to_env = action_map(wrapped)
    torques = np.linspace(-2.0, 2.0, 9)[:, None]
    actions = to_env(torques)
    assert np.all(actions >= 0.0) and np.all(actions <= 10.0)
    inner = wrapped.env  # the outer RescaleAction
    # the wrappers' own maps take the actions back to the torques
    back = np.array([inner.env.action(inner.action(a.astype(np.float32))) for a in actions])
    np.testing.assert_allclose(back, torques, atol=1e-6)
    assert to_env(np.array([5.0]))[0] == 10.0  # a control beyond the bounds is clipped to the env's action space
    assert action_map(gym.make("Pendulum-v1")).identity and not to_env.identity


def test_the_arm_env_acts_in_normalised_torques():
    env = gym.make("dvp_rl/PandaReach-v0")
    to_env = action_map(env)
    effort = env.unwrapped.action_high
    np.testing.assert_allclose(to_env(effort / 2), 0.5)
    np.testing.assert_allclose(to_env(-effort), -1.0)


@pytest.mark.parametrize(
    "wrap, name",
    [(lambda e: TransformObservation(e, lambda o: o * np.array([1, 1, 0.5], dtype=np.float32), e.observation_space), "TransformObservation"),
     (lambda e: NormalizeObservation(e), "NormalizeObservation"), (lambda e: TransformReward(e, lambda r: 2 * r), "TransformReward")],
)  # fmt: skip
def test_wrappers_that_change_what_the_agent_sees_or_is_scored_by_are_refused(wrap, name):
    with pytest.raises(ValueError, match=rf"the wrapper {name} .* may change what the agent sees, does or is scored by"):
        action_map(wrap(gym.make("Pendulum-v1")))
