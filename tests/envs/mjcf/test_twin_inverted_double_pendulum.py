"""The twin of InvertedDoublePendulum-v5 (envs.mjcf.inverted_double_pendulum): its cost against the reward,
its Hessian at the upright, and what it does not model (the slider's limit, the termination)."""

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco")

from envs.mjcf.inverted_double_pendulum import InvertedDoublePendulumTwin  # noqa: E402
from envs.twins import IDP_SPEED_CLIP, twin_for  # noqa: E402
from tests.envs.mjcf.helpers import IDP, IDP_BEST_REWARD, kinematics_at  # noqa: E402
from tests.helpers import central_difference  # noqa: E402

pytestmark = pytest.mark.mujoco


def test_idp_cost_is_the_rewards_regret_at_the_steps_end(idp, rng):
    """With w_terminal=1 the terminal cost is the reward's state part s(x): at MuJoCo's post-step state it is
    ``9.36 - reward`` to 1e-12 (the reward computed at that state) where the tip stays above the margin.
    Gymnasium's own reward reads the tip where MuJoCo's last RK4 stage put it: within 1e-3 of that."""
    twin = InvertedDoublePendulumTwin(w_terminal=1.0, w_limit=0.0)  # the limit barrier: tested below
    checked, stale = 0, 0.0
    for k in range(200):
        x, u = idp.random_state(rng, angle=0.4 if k % 2 else np.pi), rng.uniform(-1, 1, 1)
        x_next, reward, terminated = idp.step(x, u)
        tip = kinematics_at(idp, "tip", site=True)
        np.testing.assert_allclose(twin.tip_position(x_next), tip[[0, 2]], atol=1e-14)
        exact = 10.0 * (tip[2] > 1.0) - (0.01 * tip[0] ** 2 + (tip[2] - 2.0) ** 2) - (1e-3 * x_next[4] ** 2 + 5e-3 * x_next[5] ** 2)
        if (tip[2] > 1.0) == (idp.real.data.site_xpos[0][2] > 1.0):  # else the stale tip crossed the height
            stale = max(stale, abs(exact - reward))
        if tip[2] > 1.0 + twin.termination_margin:
            checked += 1
            assert twin.terminal_cost(x_next) == pytest.approx(IDP_BEST_REWARD - exact, abs=1e-12)
        else:  # the barrier; Gymnasium's episode ends at 1.0
            assert twin.terminal_cost(x_next) > IDP_BEST_REWARD - exact - (10.0 if tip[2] <= 1.0 else 0.0)
    assert checked > 50
    assert stale < 1e-3, stale
    assert twin.cost(np.zeros(6), np.zeros(1)) == pytest.approx(0.0, abs=1e-15)  # the upright at rest
    assert twin.terminal_cost(np.zeros(6)) == pytest.approx(0.0, abs=1e-15)


def test_idp_hessian_is_exact_at_the_upright():
    """The cost's residuals all vanish at the upright, so Crocoddyl's Gauss-Newton Lxx is the exact Hessian there;
    DDP converges in a few full Newton steps from Gymnasium's start states."""
    from dvp_rl.control.ocp import OptimalControlProblem

    twin = InvertedDoublePendulumTwin(w_terminal=1.0, gravity=(0.0, 0.0, -9.81))
    goal = np.zeros(6)
    Lxx = twin.terminal_cost_derivatives(goal).Lxx
    np.testing.assert_allclose(Lxx, central_difference(lambda z: twin.terminal_cost_derivatives(z).Lx, goal), atol=1e-6)
    assert np.linalg.eigvalsh(Lxx[1:3, 1:3]).min() > 0.3  # curvature in the angles (none with the tip residual against 2)
    ocp = OptimalControlProblem(InvertedDoublePendulumTwin(), 20)
    iterations = [ocp.solve(x0).iterations for x0 in twin.sample_states(5, 0)]
    assert max(iterations) <= 20, iterations


def test_idp_slider_limit_and_constraint_force_are_not_modelled(idp):
    """Beyond |x| = 0.99 MuJoCo's limit pushes the cart back and the observation's last entry shows the force;
    the twin's cart goes on, and its observation map reads the force as 0."""
    x, u = np.array([0.995, 0.0, 0.0, 2.0, 0.0, 0.0]), np.array([1.0])
    x_next, *_ = idp.step(x, u)
    assert idp.real._get_obs()[8] != 0.0
    twin_next = idp.twin.dynamics(x, u)
    assert twin_next[0] > 1.05 and x_next[0] < 1.02 and twin_next[0] - x_next[0] > 0.05
    assert twin_for(IDP).state_to_observation(twin_next)[8] == 0.0


def test_idp_termination_is_a_penalty_in_the_twin(idp):
    """A falling pole: Gymnasium ends the episode (tip height <= 1); the twin goes on and charges the barrier."""
    env = gym.make("dvp_rl/InvertedDoublePendulum-v0")
    x = np.array([0.0, 0.9, 0.0, 0.0, 2.0, 0.0])
    env.reset(options={"state": x})
    _, reward, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
    assert not terminated and not truncated
    _, real_reward, real_terminated = idp.step(x, np.zeros(1))
    assert real_terminated and real_reward < 0.0
    assert -reward > 100.0  # the barrier: tip about 0.3 below the margin, w_termination 1e4


def test_idp_observation_clips_speeds(idp):
    """Gymnasium clips the observed speeds to +-10: the map returns 10 where the state was faster."""
    x = np.array([0.0, 0.1, -0.1, 0.0, 12.0, -15.0])
    idp.set(x)
    state = twin_for(IDP).observation_to_state(idp.real._get_obs())
    np.testing.assert_array_equal(state[4:], [IDP_SPEED_CLIP, -IDP_SPEED_CLIP])
