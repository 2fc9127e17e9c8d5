"""The twin of Reacher-v5 (envs.mjcf.reacher): its static target, its cost against the reward, and what it
does not model (the elbow's limit)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from envs.mjcf.reacher import ReacherTwin  # noqa: E402
from tests.envs.mjcf.helpers import kinematics_at  # noqa: E402

pytestmark = pytest.mark.mujoco


def test_reacher_target_is_static(reacher, rng):
    """The arm's reaction moves the target (armature 1e12) by < 1e-12 over an episode of full torques."""
    twin = reacher.twin
    x = twin.sample_states(1, rng)[0]
    target = x[:2].copy()
    for _ in range(50):
        x = twin.dynamics(x, np.array([1.0, -1.0]))
    assert np.abs(x[:2] - target).max() < 1e-12 and np.abs(x[4:6]).max() < 1e-12
    Fx, Fu = twin.dynamics_derivatives(x, np.array([0.3, 0.2]))
    np.testing.assert_allclose(Fx[:2, :2], np.eye(2), atol=1e-12)
    assert np.abs(Fu[[0, 1, 4, 5]]).max() < 1e-12


def test_reacher_cost_is_the_reward_at_the_steps_end_up_to_the_smoothing(reacher, rng):
    """``s(x') + ||u||^2`` (terminal cost with w_terminal=1, plus the control term) is ``-reward`` at the
    post-step state up to the norm's smoothing: ``d - eps <= sqrt(d^2 + eps^2) - eps <= d``. Gymnasium's reward
    reads the fingertip where MuJoCo's last RK4 stage put it: within 1e-4 of that."""
    twin = ReacherTwin(w_terminal=1.0, w_limit=0.0)  # the limit barrier: tested below
    eps = twin.distance_smoothing
    stale = 0.0
    for _ in range(100):
        x, u = reacher.random_state(rng), rng.uniform(-1, 1, 2)
        x_next, reward, _ = reacher.step(x, u)
        distance = np.linalg.norm(twin.fingertip_minus_target(x_next))
        assert distance == pytest.approx(np.linalg.norm(kinematics_at(reacher, "fingertip") - kinematics_at(reacher, "target")), abs=1e-14)
        stale = max(stale, abs(reward + distance + u @ u))
        smooth = twin.terminal_cost(x_next)
        assert smooth == pytest.approx(np.sqrt(distance**2 + eps**2) - eps, abs=1e-12)
        assert distance - eps <= smooth + 1e-12 and smooth <= distance + 1e-12
    assert stale < 1e-4, stale
    control_only = ReacherTwin(reward_dist_weight=0.0)
    u = np.array([0.3, -0.7])
    assert control_only.cost(reacher.random_state(rng), u) == pytest.approx(u @ u, rel=1e-12)  # exact: no quadrature error
    np.testing.assert_allclose(control_only.cost_derivatives(reacher.random_state(rng), u).Luu, 2.0 * np.eye(2), rtol=1e-12)


def test_reacher_elbow_limit_is_not_modelled(reacher):
    """MuJoCo's (soft) limit stops the elbow past |q1| = 3; the twin's elbow goes on (and wraps at pi)."""
    x, u = np.array([0.1, 0.1, 0.0, 2.95, 0.0, 0.0, 0.0, 8.0]), np.array([0.0, 1.0])
    x_next, *_ = reacher.step(x, u)
    assert reacher.real.data.qfrc_constraint[1] < -100.0
    twin_next = reacher.twin.dynamics(x, u)
    assert x_next[7] < 3.0 and twin_next[7] > 10.0  # MuJoCo brakes the elbow, the twin speeds it up
    assert twin_next[3] - x_next[3] > 0.05
