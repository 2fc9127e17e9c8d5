"""The MJCF loader (envs.mjcf.loader): the twin's model is read from the env's own MJCF, checked against
MuJoCo's dynamics, and what it cannot represent is refused."""

import os

import gymnasium as gym
import numpy as np
import pinocchio
import pytest

pytest.importorskip("mujoco")
import mujoco  # noqa: E402

from envs.mjcf.inverted_double_pendulum import InvertedDoublePendulumTwin  # noqa: E402
from envs.mjcf.loader import UnsupportedMJCFError, load_mjcf_system  # noqa: E402
from tests.envs.mjcf.helpers import IDP, relative_error  # noqa: E402

pytestmark = pytest.mark.mujoco


def test_model_is_read_from_the_envs_own_mjcf(idp, reacher):
    import gymnasium.envs.mujoco as gym_mujoco

    assets = os.path.join(os.path.dirname(gym_mujoco.__file__), "assets")
    for side, xml, frame_skip, nu in ((idp, "inverted_double_pendulum.xml", 5, 1), (reacher, "reacher.xml", 2, 2)):
        system = side.twin.system
        assert system.xml_path == side.real.fullpath == os.path.join(assets, xml)  # the installed file, not a copy
        assert (system.timestep, system.frame_skip, side.twin.dt) == (0.01, frame_skip, pytest.approx(0.01 * frame_skip))
        np.testing.assert_array_equal(system.gravity, side.real.model.opt.gravity)
        assert side.twin.action_space == side.env.action_space and side.twin.nu == nu
    np.testing.assert_allclose(idp.twin.system.gravity, [1e-5, 0.0, -9.81])
    np.testing.assert_array_equal(idp.twin.system.damping, [0.05, 0.05, 0.05])
    np.testing.assert_array_equal(idp.twin.system.B, [[500.0], [0.0], [0.0]])
    assert idp.twin.system.joint_names == ("slider", "hinge", "hinge2")
    assert idp.twin.system.unmodelled == ("joint limit slider in [-1, 1] (margin 0.01)",)
    system = reacher.twin.system
    assert system.joint_names == ("target_x", "target_y", "joint0", "joint1")
    np.testing.assert_array_equal(system.damping, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(reacher.twin.pin_model.armature[2:], [1.0, 1.0])
    np.testing.assert_array_equal(system.B[2:], 200.0 * np.eye(2))
    assert system.unmodelled == ("joint limit joint1 in [-3, 3] (margin 0)",)


def test_dynamics_check_refuses_a_model_that_is_not_mujocos():
    """The guard run at construction: pinocchio's accelerations and named frames against MuJoCo's (here with
    the damping doubled, then with the tip site moved by 1 cm)."""
    import dataclasses

    import envs.mjcf.loader as loader

    system = load_mjcf_system(IDP)
    wrong = dataclasses.replace(system, damping=2 * system.damping)
    real = gym.make(IDP).unwrapped
    names = [real.model.joint(j).name for j in range(real.model.njnt)]
    loader._check_dynamics(mujoco, real.model, names, system)  # the right one passes
    with pytest.raises(UnsupportedMJCFError, match="does not reproduce MuJoCo's accelerations"):
        loader._check_dynamics(mujoco, real.model, names, wrong)
    moved = pinocchio.Model(system.pin_model)
    moved.frames[moved.getFrameId("tip")].placement = pinocchio.SE3(np.eye(3), np.array([0.0, 0.0, 0.61]))
    with pytest.raises(UnsupportedMJCFError, match="puts 'tip' 0.01 m away from MuJoCo's"):
        loader._check_dynamics(mujoco, real.model, names, dataclasses.replace(system, pin_model=moved))


UNSUPPORTED = [
    ('integrator="RK4"', 'integrator="Euler"', "integrator mjINT_EULER"),
    ('<geom contype="0"', '<geom contype="1" conaffinity="1"', "contacts between geoms 'floor' and 'cpole'"),
    ('name="hinge2" pos="0 0 0" type="hinge"', 'name="hinge2" pos="0 0 0" type="ball"', "joint 'hinge2' of type mjJNT_BALL"),
    ('<motor ctrllimited="true" ctrlrange="-1 1" gear="500"', '<position ctrllimited="true" ctrlrange="-1 1" kp="50"', "actuator 'slide': only motors"),
    ('<joint damping="0.05"/>', '<joint damping="0.05" stiffness="1"/>', r"joint stiffness \(springs\)"),
    ('<joint damping="0.05"/>', '<joint damping="0.05" frictionloss="0.1"/>', "dof friction loss"),
]


@pytest.mark.parametrize("old, new, message", UNSUPPORTED)
def test_an_mjcf_the_twin_cannot_represent_is_refused(old, new, message, tmp_path):
    source = open(load_mjcf_system(IDP).xml_path).read()
    assert old in source
    path = tmp_path / "model.xml"
    path.write_text(source.replace(old, new))
    with pytest.raises(UnsupportedMJCFError, match=message):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", xml_file=str(path))


def test_a_supported_variant_of_the_mjcf_is_modelled(tmp_path):
    """Armature and a joint reference angle (ref) in another file: the twin still steps as MuJoCo."""
    source = open(load_mjcf_system(IDP).xml_path).read()
    path = tmp_path / "model.xml"
    path.write_text(source.replace('<joint damping="0.05"/>', '<joint damping="0.05" armature="0.1"/>').replace('name="hinge" pos="0 0 0" type="hinge"', 'name="hinge" pos="0 0 0" type="hinge" ref="20"'))
    twin = InvertedDoublePendulumTwin(xml_file=str(path))
    np.testing.assert_array_equal(twin.pin_model.armature, [0.1, 0.1, 0.1])
    real = gym.make(IDP, xml_file=str(path)).unwrapped
    real.model.opt.timestep = twin.dt
    x, u = np.array([0.1, 0.3, -0.2, 0.5, -1.0, 2.0]), np.array([0.4])
    real.set_state(x[:3], x[3:])
    real.data.ctrl[:] = u
    mujoco.mj_step(real.model, real.data)
    assert relative_error(twin.dynamics(x, u), np.r_[real.data.qpos, real.data.qvel]) < 1e-13
