"""Differentiable Gymnasium environments of dvp_rl.

Importing this package registers the environments::

    import gymnasium as gym
    import envs  # noqa: F401

    env = gym.make("dvp_rl/Pendulum-v0")
    env.unwrapped.dynamics_derivatives(x, u)
"""

from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import register

from envs.arms import ArmReachEnv, ArmSpec
from envs.base import CrocoddylEnv, DifferentiableEnv, NumpySystemEnv
from envs.cartpole import CartPoleEnv
from envs.linear_quadratic import LinearQuadraticEnv
from envs.pendulum import PendulumEnv
from envs.unicycle import UnicycleEnv

register(id="dvp_rl/Pendulum-v0", entry_point="envs.pendulum:PendulumEnv", max_episode_steps=200)
register(id="dvp_rl/CartPole-v0", entry_point="envs.cartpole:CartPoleEnv", max_episode_steps=500)
register(id="dvp_rl/Unicycle-v0", entry_point="envs.unicycle:UnicycleEnv", max_episode_steps=100)
register(id="dvp_rl/LinearQuadratic-v0", entry_point="envs.linear_quadratic:LinearQuadraticEnv", max_episode_steps=200)
# twins of Gymnasium's MuJoCo envs, built from their MJCF files (the mujoco extra); time limits as theirs
register(
    id="dvp_rl/InvertedDoublePendulum-v0",
    entry_point="envs.mjcf.inverted_double_pendulum:InvertedDoublePendulumTwin",
    max_episode_steps=1000,
)
register(id="dvp_rl/Reacher-v0", entry_point="envs.mjcf.reacher:ReacherTwin", max_episode_steps=50)
# torque-controlled arms of example-robot-data reaching a goal; actions rescaled to [-1, 1] (envs.arms.make_arm_reach)
register(id="dvp_rl/PandaReach-v0", entry_point="envs.arms:make_arm_reach", kwargs={"robot": "panda"}, max_episode_steps=300)
register(id="dvp_rl/UR5Reach-v0", entry_point="envs.arms:make_arm_reach", kwargs={"robot": "ur5"}, max_episode_steps=300)

#: the ids registered by this package
ENV_IDS = ("dvp_rl/Pendulum-v0", "dvp_rl/CartPole-v0", "dvp_rl/Unicycle-v0", "dvp_rl/LinearQuadratic-v0")
#: the twins of Gymnasium's MuJoCo envs (need the mujoco extra; not in ENV_IDS, which the demo runs)
MUJOCO_TWIN_IDS = ("dvp_rl/InvertedDoublePendulum-v0", "dvp_rl/Reacher-v0")
#: the arm-reaching envs (example-robot-data's Panda and UR5; not in ENV_IDS, which the demo runs)
ARM_IDS = ("dvp_rl/PandaReach-v0", "dvp_rl/UR5Reach-v0")


def make(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gymnasium.make(env_id, **env_kwargs)`` with a clear ``ValueError`` for an unknown id."""
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ValueError(f"unknown env id {env_id!r}; dvp_rl registers {list(ENV_IDS + MUJOCO_TWIN_IDS + ARM_IDS)} ({exc})") from exc


__all__ = [
    "ARM_IDS",
    "ENV_IDS",
    "MUJOCO_TWIN_IDS",
    "ArmReachEnv",
    "ArmSpec",
    "CartPoleEnv",
    "CrocoddylEnv",
    "DifferentiableEnv",
    "LinearQuadraticEnv",
    "NumpySystemEnv",
    "PendulumEnv",
    "UnicycleEnv",
    "make",
]
