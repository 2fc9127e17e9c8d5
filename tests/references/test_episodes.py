"""The references of Gymnasium ids' episodes: start states on the twin, reward offsets (MuJoCo ids)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from dvp_rl.references.episodes import REFERENCES, REWARD_OFFSETS, twin_start_states  # noqa: E402
from dvp_rl.references.oracle import ORACLES  # noqa: E402

pytestmark = pytest.mark.mujoco


def test_start_states_are_the_real_envs_resets():
    import gymnasium as gym

    states = twin_start_states("Reacher-v5", np.array([3, 4]))
    env = gym.make("Reacher-v5")
    for seed, state in zip((3, 4), states):
        env.reset(seed=seed)
        np.testing.assert_allclose(state[[2, 3, 6, 7]], np.concatenate([env.unwrapped.data.qpos[:2], env.unwrapped.data.qvel[:2]]))
        np.testing.assert_allclose(state[:2], env.unwrapped.data.qpos[2:])


def test_idp_reward_offset_is_the_upright_reward():
    import gymnasium as gym

    from envs.twins import twin_for

    twin = twin_for("InvertedDoublePendulum-v5").make().unwrapped
    upright = twin.frame_positions(np.zeros(6), "tip")
    assert REWARD_OFFSETS["InvertedDoublePendulum-v5"] == pytest.approx(10.0 - (2.0 - upright[2]) ** 2)
    env = gym.make("InvertedDoublePendulum-v5")
    env.reset(seed=0)
    env.unwrapped.set_state(np.zeros(3), np.zeros(3))
    _, reward, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert reward == pytest.approx(REWARD_OFFSETS["InvertedDoublePendulum-v5"], abs=1e-6)  # the twin's cost there is 0



def test_every_oracle_and_the_pendulum_have_a_reference():
    assert set(REFERENCES) == {"Pendulum-v1", *ORACLES}
