"""Helpers the tests of the MuJoCo twins share (imported as ``tests.envs.mjcf.helpers``; the modules that
import it first call ``pytest.importorskip("mujoco")``): the real ids, the best IDP reward, a real env next to
its twin (:class:`Side`) and MuJoCo's kinematics at the current state."""

import gymnasium as gym
import mujoco
import numpy as np

from envs.mjcf import InvertedDoublePendulumTwin, ReacherTwin  # the package's re-exports

IDP, REACHER = "InvertedDoublePendulum-v5", "Reacher-v5"
#: the best reward of InvertedDoublePendulum-v5 per step (alive bonus 10, tip at its highest, 1.2: (1.2 - 2)^2)
IDP_BEST_REWARD = 10.0 - 0.64


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))


class Side:
    """A real MuJoCo env and its twin, with the state maps between MuJoCo's (qpos, qvel) and the twin's state."""

    def __init__(self, real_id: str, **twin_kwargs) -> None:
        self.real_id = real_id
        self.env = gym.make(real_id)
        self.real = self.env.unwrapped
        self.twin = (InvertedDoublePendulumTwin if real_id == IDP else ReacherTwin)(**twin_kwargs)
        self.real.reset(seed=0)

    def set(self, x: np.ndarray) -> None:
        """Put the real env in the twin's state ``x`` (Reacher: target first in the twin, last in MuJoCo)."""
        if self.real_id == IDP:
            self.real.set_state(x[:3], x[3:])
        else:
            self.real.set_state(np.r_[x[2:4], x[0:2]], np.r_[x[6:8], x[4:6]])

    def get(self) -> np.ndarray:
        d = self.real.data
        if self.real_id == IDP:
            return np.r_[d.qpos, d.qvel]
        return np.r_[d.qpos[2:], d.qpos[:2], d.qvel[2:], d.qvel[:2]]

    def random_state(self, rng: np.random.Generator, speed: float = 1.0, angle: float = np.pi) -> np.ndarray:
        """A state inside MuJoCo's joint limits (where the twin is meant to agree); IDP's angles in [-angle, angle]."""
        if self.real_id == IDP:
            return np.r_[rng.uniform(-0.9, 0.9), rng.uniform(-angle, angle, 2), speed * rng.normal(size=3)]
        return np.r_[rng.uniform(-0.2, 0.2, 2), rng.uniform(-np.pi, np.pi), rng.uniform(-2.9, 2.9), 0.0, 0.0, 5 * speed * rng.normal(size=2)]

    def step(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """MuJoCo's step from ``x``: (next state, reward, terminated)."""
        self.set(x)
        _, reward, terminated, *_ = self.real.step(u)
        return self.get(), float(reward), bool(terminated)


def kinematics_at(side: Side, name: str, site: bool = False) -> np.ndarray:
    """The world position of a body (or site) at the real env's current qpos, computed afresh.

    After ``mj_step`` MuJoCo's ``xpos``/``site_xpos`` hold the positions of the last RK4 stage of the last
    sub-step (``q + h v_3``), not those of the final ``qpos``: Gymnasium's rewards read those."""
    data = mujoco.MjData(side.real.model)
    data.qpos[:] = side.real.data.qpos
    mujoco.mj_kinematics(side.real.model, data)
    return np.array(data.site(name).xpos if site else data.body(name).xpos)
