"""The twins of Gymnasium's MuJoCo envs (envs.mjcf): built from the env's own MJCF, stepped next to MuJoCo.

Measured figures these tests bound (one step from random states inside the joint limits):

* the continuous dynamics (accelerations) equal MuJoCo's to ~1e-14 (IDP) and ~2e-12 (Reacher), and
  one twin step equals one MuJoCo RK4 step of ``frame_skip * timestep`` to ~2e-15 and ~3e-14
  (relative to ``1 + |x|``);
* against MuJoCo's ``frame_skip`` RK4 steps of ``timestep`` (the real env), the twin's single RK4
  step is off by the integrator's error: InvertedDoublePendulum ~9e-5 median, 4-5e-3 at worst,
  Reacher ~2e-9 median, ~1e-7 at worst (armature and damping make it slow);
* the reward's state part at the step's end, ``s(x')``, is the twin's terminal cost (``w_terminal=1``)
  to ~1e-12 (Reacher: up to the norm's smoothing ``eps``); the twin's step cost is the mean of ``s``
  along the step, and over an episode the returns agree once the trapezoidal end terms are added.
"""

import os

import gymnasium as gym
import numpy as np
import pinocchio
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("mujoco")
import mujoco  # noqa: E402

import envs  # noqa: E402
from envs.mjcf import InvertedDoublePendulumTwin, ReacherTwin, UnsupportedMJCFError, load_mjcf_system  # noqa: E402
from envs.twins import IDP_SPEED_CLIP, twin_for  # noqa: E402
from tests.envs import test_envs as generic  # noqa: E402
from tests.envs.test_envs import central_difference  # noqa: E402

pytestmark = pytest.mark.mujoco

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


@pytest.fixture(scope="module")
def idp() -> Side:
    return Side(IDP)


@pytest.fixture(scope="module")
def reacher() -> Side:
    return Side(REACHER)


# ---------------------------------------------------------------------------------------- the model
@pytest.mark.parametrize("env_id", envs.MUJOCO_TWIN_IDS)
def test_registered_twins_pass_gymnasiums_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == {"dvp_rl/InvertedDoublePendulum-v0": 1000, "dvp_rl/Reacher-v0": 50}[env_id]


@pytest.mark.parametrize("env_id", envs.MUJOCO_TWIN_IDS)
def test_generic_env_checks_hold_for_the_twins(env_id, rng):
    """tests/test_envs.py's checks of every dvp_rl env: seeding, step = dynamics + cost, bad input, reset."""
    generic.test_same_seed_same_episode(env_id)
    generic.test_step_agrees_with_dynamics_and_cost(env_id, rng)
    generic.test_bad_input_raises_clear_errors(env_id)
    generic.test_reset_refuses_a_state_the_model_overflows_at(env_id)
    generic.test_sample_states_is_seeded_and_shaped(env_id)


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


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_continuous_dynamics_are_mujocos(real_id, rng):
    """The differential model's accelerations (pinocchio's ABA, armature, damping, gear) are MuJoCo's qacc."""
    side = Side(real_id)
    model = side.twin.action_model()
    data = model.createData()
    worst = 0.0
    for _ in range(30):
        x, u = side.random_state(rng), rng.uniform(-1, 1, side.twin.nu)
        side.set(x)
        side.real.data.ctrl[:] = u
        mujoco.mj_forward(side.real.model, side.real.data)
        assert side.real.data.nefc == 0  # no limit active: the twin should agree
        model.differential.calc(data.differential[0], x, u)
        nv = side.twin.nx // 2
        qacc = side.real.data.qacc if real_id == IDP else np.r_[side.real.data.qacc[2:], side.real.data.qacc[:2]]
        worst = max(worst, relative_error(data.differential[0].xout[:nv], qacc))
    assert worst < 1e-11, worst


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_one_twin_step_is_one_mujoco_rk4_step_of_the_env_step(real_id, rng):
    """MuJoCo set to one RK4 step of ``frame_skip * timestep`` steps exactly as the twin: the twin's only
    difference from the real env is the integrator's step size."""
    side = Side(real_id)
    model, data = side.real.model, side.real.data
    model.opt.timestep = side.twin.dt
    worst = 0.0
    for _ in range(50):
        x, u = side.random_state(rng, speed=2.0), rng.uniform(-1, 1, side.twin.nu)
        side.set(x)
        data.ctrl[:] = u
        mujoco.mj_step(model, data)
        if data.nefc:  # a joint limit reached during the step
            continue
        worst = max(worst, relative_error(side.twin.dynamics(x, u), side.get()))
    assert worst < 1e-13, worst


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_rk_order_2_is_the_midpoint_step_of_mujocos_dynamics(real_id, rng):
    """``rk_order=2`` (a cheaper model to plan with): one step is the explicit midpoint rule over
    MuJoCo's own accelerations (``mj_forward``'s qacc at the start and at the midpoint)."""
    side = Side(real_id, rk_order=2)
    rk4 = Side(real_id).twin
    model, data = side.real.model, side.real.data
    nv = side.twin.nx // 2

    def rate(x: np.ndarray, u: np.ndarray) -> np.ndarray:  # (v, qacc) from MuJoCo, in the twin's order
        side.set(x)
        data.ctrl[:] = u
        mujoco.mj_forward(model, data)
        qacc = data.qacc if real_id == IDP else np.r_[data.qacc[2:], data.qacc[:2]]
        return np.r_[x[nv:], qacc]

    worst, gap = 0.0, 0.0
    for _ in range(50):
        x, u = side.random_state(rng, speed=2.0), rng.uniform(-1, 1, side.twin.nu)
        k1 = rate(x, u)
        if data.nefc:
            continue
        midpoint = x + side.twin.dt * rate(x + 0.5 * side.twin.dt * k1, u)
        if data.nefc:
            continue
        worst = max(worst, relative_error(side.twin.dynamics(x, u), midpoint))
        gap = max(gap, relative_error(side.twin.dynamics(x, u), rk4.dynamics(x, u)))
    assert worst < 1e-11, worst
    assert gap > 1e-9, gap  # another model (max over these states: IDP 0.11, Reacher 2e-4:
    # the cheap model suits Reacher's controller, not the IDP's)
    with pytest.raises(ValueError, match=r"rk_order must be one of \[2, 3, 4\]"):
        gym.make("dvp_rl/Reacher-v0", rk_order=1)


@pytest.mark.parametrize("real_id, median_bound, max_bound", [(IDP, 3e-4, 1e-2), (REACHER, 1e-8, 3e-7)])
def test_one_step_error_against_the_real_env(real_id, median_bound, max_bound, rng):
    """The real env takes ``frame_skip`` RK4 steps of 0.01 s, the twin one of ``frame_skip * 0.01`` s. From
    1000 states inside the limits (IDP: any angles, speeds N(0, 1); Reacher: speeds N(0, 25)), measured over
    three seeds: InvertedDoublePendulum median 0.8-0.9e-4, p90 6e-4, max 3.6-5.0e-3; Reacher median 2.3e-9,
    max 0.7-1.1e-7 (relative to 1 + |x|)."""
    side = Side(real_id)
    errors = []
    for _ in range(300):
        x, u = side.random_state(rng), rng.uniform(-1, 1, side.twin.nu)
        x_next, *_ = side.step(x, u)
        if np.any(side.real.data.qfrc_constraint):
            continue
        errors.append(relative_error(side.twin.dynamics(x, u), x_next))
    assert len(errors) > 250
    assert np.median(errors) < median_bound and max(errors) < max_bound, (np.median(errors), max(errors))


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


def test_dynamics_check_refuses_a_model_that_is_not_mujocos():
    """The guard run at construction: pinocchio's accelerations and named frames against MuJoCo's (here with
    the damping doubled, then with the tip site moved by 1 cm)."""
    import dataclasses

    import envs.mjcf as mjcf

    system = load_mjcf_system(IDP)
    wrong = dataclasses.replace(system, damping=2 * system.damping)
    real = gym.make(IDP).unwrapped
    names = [real.model.joint(j).name for j in range(real.model.njnt)]
    mjcf._check_dynamics(mujoco, real.model, names, system)  # the right one passes
    with pytest.raises(UnsupportedMJCFError, match="does not reproduce MuJoCo's accelerations"):
        mjcf._check_dynamics(mujoco, real.model, names, wrong)
    moved = pinocchio.Model(system.pin_model)
    moved.frames[moved.getFrameId("tip")].placement = pinocchio.SE3(np.eye(3), np.array([0.0, 0.0, 0.61]))
    with pytest.raises(UnsupportedMJCFError, match="puts 'tip' 0.01 m away from MuJoCo's"):
        mjcf._check_dynamics(mujoco, real.model, names, dataclasses.replace(system, pin_model=moved))


# ---------------------------------------------------------------------------------------- rewards
def kinematics_at(side: Side, name: str, site: bool = False) -> np.ndarray:
    """The world position of a body (or site) at the real env's current qpos, computed afresh.

    After ``mj_step`` MuJoCo's ``xpos``/``site_xpos`` hold the positions of the last RK4 stage of the last
    sub-step (``q + h v_3``), not those of the final ``qpos``: Gymnasium's rewards read those."""
    data = mujoco.MjData(side.real.model)
    data.qpos[:] = side.real.data.qpos
    mujoco.mj_kinematics(side.real.model, data)
    return np.array(data.site(name).xpos if site else data.body(name).xpos)


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


@pytest.mark.parametrize("real_id, index, limit", [(IDP, 0, 0.99), (REACHER, 3, 3.0)])
def test_joint_limits_are_barriers_in_the_cost(real_id, index, limit):
    """Zero inside ``limit - limit_margin`` (where MuJoCo's constraint starts acting, less the margin), then
    ``0.5 w_limit (q - limit + limit_margin)^2`` on either side."""
    side = Side(real_id)
    with_barrier, without = type(side.twin)(w_terminal=1.0), type(side.twin)(w_terminal=1.0, w_limit=0.0)
    assert with_barrier.system.limits[0][1:] == (-limit, limit)
    x = np.zeros(with_barrier.nx) if real_id == IDP else np.array(with_barrier.goal_state)
    for q in (0.5 * limit, limit - 0.06, limit - 0.04, limit + 0.1, -limit - 0.2):
        x[index] = q
        beyond = max(0.0, abs(q) - (limit - with_barrier.limit_margin))
        assert with_barrier.terminal_cost(x) - without.terminal_cost(x) == pytest.approx(0.5 * 1e3 * beyond**2, abs=1e-9)


def lqr_gain(twin: InvertedDoublePendulumTwin, weights: np.ndarray, r: float = 1.0) -> np.ndarray:
    """Infinite-horizon discrete LQR gain of the twin's linearisation at the upright at rest."""
    A, B = twin.dynamics_derivatives(np.zeros(6), np.zeros(1))
    P, Q, R = np.diag(weights), np.diag(weights), np.array([[r]])
    for _ in range(2000):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ (A - B @ K)
    return K


@pytest.mark.parametrize("real_id, step_bound, episode_bound", [(IDP, 5e-3, 2e-3), (REACHER, 0.03, 5e-3)])
def test_step_costs_and_episode_returns_against_the_real_env(real_id, step_bound, episode_bound):
    """One episode of MuJoCo (IDP balanced by an LQR of the twin, Reacher under smooth controls). Per step the
    twin charges the mean of s along the step (its RK4 quadrature), Gymnasium s at the step's end; summed over
    the episode the difference is the trapezoidal end terms ``(s(x_T) - s(x_0)) / 2`` up to O(dt). The norm's
    smoothing is set to 1e-9 here (its own bias, up to eps per step, is tested above). Measured: IDP (200
    balanced steps, regret 0.025 in all) worst step 6.9e-4, episode 4e-4; Reacher worst step 1.2e-2, episode
    0.145 without the end terms, 9e-4 with them."""
    side = Side(real_id)
    kwargs = {} if real_id == IDP else {"distance_smoothing": 1e-9}
    twin, end = type(side.twin)(**kwargs), type(side.twin)(w_terminal=1.0, **kwargs)
    gain = lqr_gain(twin, np.array([1.0, 10.0, 10.0, 0.1, 0.1, 0.1])) if real_id == IDP else None
    side.env.reset(seed=3)
    x0 = side.get()
    x, twin_total, real_total, worst_step = x0, 0.0, 0.0, 0.0
    for k in range(200 if real_id == IDP else 50):
        u = np.clip(-gain @ x, -1.0, 1.0) if real_id == IDP else 0.2 * np.sin(0.2 * k + np.arange(2))
        _, reward, terminated, *_ = side.env.step(u)
        assert not terminated and not np.any(side.real.data.qfrc_constraint)
        regret = IDP_BEST_REWARD - reward if real_id == IDP else -reward
        cost = twin.cost(x, u)
        worst_step = max(worst_step, abs(cost - regret))
        twin_total, real_total = twin_total + cost, real_total + regret
        x = side.get()
    trapezoid = 0.5 * (end.terminal_cost(x) - end.terminal_cost(x0))
    assert worst_step < step_bound, worst_step
    assert abs(real_total - (twin_total + trapezoid)) < episode_bound, (real_total, twin_total, trapezoid)


# ---------------------------------------------------------------------------------------- derivatives, goal
@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_derivatives_match_finite_differences(real_id, rng):
    side = Side(real_id)
    twin = type(side.twin)(w_terminal=2.0)
    for _ in range(4):
        x, u = side.random_state(rng), rng.uniform(-0.9, 0.9, twin.nu)
        Fx, Fu = twin.dynamics_derivatives(x, u)
        np.testing.assert_allclose(Fx, central_difference(lambda z: twin.dynamics(z, u), x), atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(Fu, central_difference(lambda w: twin.dynamics(x, w), u), atol=1e-6, rtol=1e-5)
        Lx, Lu, Lxx, Lxu, Luu = twin.cost_derivatives(x, u)
        np.testing.assert_allclose(Lx, central_difference(lambda z: twin.cost(z, u), x), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(Lu, central_difference(lambda w: twin.cost(x, w), u), atol=1e-5, rtol=1e-5)
        tLx, _ = twin.terminal_cost_derivatives(x)
        np.testing.assert_allclose(tLx, central_difference(twin.terminal_cost, x), atol=1e-5, rtol=1e-5)


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


def test_smooth_norm_activation_has_exact_derivatives(rng):
    """Exact value and gradient, the exact Hessian's diagonal (Crocoddyl keeps activation Hessians diagonal; its
    Smooth2Norm's diag(1/s^3) is 10-1e4x too stiff here), and Reacher's DDP converges in a few iterations."""
    from dvp_rl.control.ocp import OptimalControlProblem
    from envs.mjcf import SmoothNormActivation

    activation = SmoothNormActivation(3, 1e-3)
    data = activation.createData()

    def value(r):
        activation.calc(data, r)
        return data.a_value

    def gradient(r):
        activation.calc(data, r)
        activation.calcDiff(data, r)
        return data.Ar.copy()

    for r in (rng.normal(size=3) * 0.2, rng.normal(size=3) * 1e-3, np.zeros(3)):
        assert value(r) == pytest.approx(np.sqrt(1e-6 + r @ r) - 1e-3, abs=1e-15)
        np.testing.assert_allclose(gradient(r), central_difference(value, r, h=1e-8), atol=1e-6)
        activation.calcDiff(data, r)
        np.testing.assert_allclose(np.diag(data.Arr), np.diag(central_difference(gradient, r, h=1e-8)), rtol=1e-5, atol=1e-3)
        assert np.count_nonzero(data.Arr - np.diag(np.diag(data.Arr))) == 0
    ocp = OptimalControlProblem(ReacherTwin(), 20)
    results = [ocp.solve(x0) for x0 in ReacherTwin().sample_states(4, 1)]
    assert all(r.converged and r.iterations <= 30 for r in results), [r.iterations for r in results]


def test_goals():
    """IDP: MuJoCo's lateral gravity (1e-5) leaves no equilibrium, so no goal; with vertical gravity the upright
    at rest is a zero-cost equilibrium of zero value. Reacher: the fingertip on the target, at rest."""
    from dvp_rl.agent import checked_goal
    from dvp_rl.control.ocp import solve_ocp

    assert InvertedDoublePendulumTwin().goal_state is None
    drift = InvertedDoublePendulumTwin().dynamics(np.zeros(6), np.zeros(1))
    assert 1e-8 < np.abs(drift).max() < 1e-6  # the sideways drift of one step
    for twin in (InvertedDoublePendulumTwin(gravity=(0.0, 0.0, -9.81)), ReacherTwin()):
        goal = checked_goal(twin)
        assert goal is not None
        result = solve_ocp(twin, goal, horizon=20)
        assert result.converged and abs(result.cost) < 1e-10
        np.testing.assert_allclose(result.Vx, 0.0, atol=1e-8)
    reacher = ReacherTwin()
    np.testing.assert_allclose(reacher.fingertip_minus_target(np.array(reacher.goal_state)), 0.0, atol=1e-15)


# ---------------------------------------------------------------------------------------- resets, maps, registry
@pytest.mark.parametrize("real_id, twin_id", [(IDP, "dvp_rl/InvertedDoublePendulum-v0"), (REACHER, "dvp_rl/Reacher-v0")])
def test_same_seed_same_start_state(real_id, twin_id):
    side = Side(real_id)
    twin_env = gym.make(twin_id)
    for seed in range(5):
        x, _ = twin_env.reset(seed=seed)
        side.env.reset(seed=seed)
        np.testing.assert_array_equal(x, side.get())


def test_training_start_ranges_widen_only_what_they_name():
    """The twins' ``training_kwargs`` (what DVP learns over) widen the start draws they name and
    nothing else; bad values are refused."""
    idp = gym.make("dvp_rl/InvertedDoublePendulum-v0", **twin_for(IDP).training_kwargs).unwrapped
    x = idp.sample_states(4000, rng=0)
    cart = twin_for(IDP).training_kwargs["cart_start_range"]
    assert 0.95 * cart < np.abs(x[:, 0]).max() <= cart and np.abs(x[:, 1:3]).max() <= 0.1
    np.testing.assert_allclose(x[:, 3:].std(axis=0), twin_for(IDP).training_kwargs["start_speed"], rtol=0.05)
    reacher_kwargs = twin_for(REACHER).training_kwargs
    y = gym.make("dvp_rl/Reacher-v0", **reacher_kwargs).unwrapped.sample_states(4000, rng=0)
    for column, bound in ((2, reacher_kwargs["arm_start_range"]), (3, reacher_kwargs["elbow_start_range"]),
                          (6, reacher_kwargs["start_speed"]), (7, reacher_kwargs["start_speed"])):  # fmt: skip
        assert 0.95 * bound < np.abs(y[:, column]).max() <= bound
    assert np.linalg.norm(y[:, :2], axis=1).max() < ReacherTwin.TARGET_RADIUS  # the targets stay Gymnasium's
    np.testing.assert_array_equal(y[:, 4:6], 0.0)  # a static target
    with pytest.raises(ValueError, match="cart_start_range must be finite and >= 0"):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", cart_start_range=-1.0)
    with pytest.raises(ValueError, match="start_speed must be finite and >= 0"):
        gym.make("dvp_rl/Reacher-v0", start_speed=float("nan"))


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


def test_twin_arguments_are_checked():
    with pytest.raises(TypeError, match="not_a_parameter"):
        gym.make("dvp_rl/Reacher-v0", not_a_parameter=1)
    with pytest.raises(ValueError, match="frame_skip must be an integer >= 1"):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", frame_skip=2.5)
    with pytest.raises(ValueError, match="distance_smoothing must be finite and > 0"):
        gym.make("dvp_rl/Reacher-v0", distance_smoothing=0.0)
    with pytest.raises(ValueError, match="w_termination must be finite and >= 0"):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", w_termination=-1.0)


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


# ---------------------------------------------------------------------------------------- what is not modelled
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


def test_reacher_elbow_limit_is_not_modelled(reacher):
    """MuJoCo's (soft) limit stops the elbow past |q1| = 3; the twin's elbow goes on (and wraps at pi)."""
    x, u = np.array([0.1, 0.1, 0.0, 2.95, 0.0, 0.0, 0.0, 8.0]), np.array([0.0, 1.0])
    x_next, *_ = reacher.step(x, u)
    assert reacher.real.data.qfrc_constraint[1] < -100.0
    twin_next = reacher.twin.dynamics(x, u)
    assert x_next[7] < 3.0 and twin_next[7] > 10.0  # MuJoCo brakes the elbow, the twin speeds it up
    assert twin_next[3] - x_next[3] > 0.05


def test_dvp_plans_with_the_model_of_mpc_env_kwargs(tmp_path):
    """``DVP(mpc_env_kwargs={"rk_order": 2})``: learning stays on the RK4 twin, ``predict``'s controller
    plans on the midpoint model (the same actions as a controller made on that model by hand); saved
    and loaded with the agent; a model of other sizes or a bad argument is refused when made."""
    from dvp_rl.agent import DVP
    from dvp_rl.control.mpc import MPCController

    agent = DVP("Reacher-v5", mpc={"env_kwargs": {"rk_order": 2}, "horizon": 5}, horizon=3, n_samples=10, collect={"n_validation": 5},
                network={"net_arch": (8,)}, n_workers=1, checkpoint_dir=None, seed=0)  # fmt: skip
    assert agent.system.rk_order == 4 and agent.controller().ocp.env.rk_order == 2
    by_hand = MPCController(gym.make("dvp_rl/Reacher-v0", **agent.env_kwargs, rk_order=2), 5, None, max_iter=agent.mpc.max_iter, th_stop=agent.mpc.th_stop, retry_cold=False)
    rk4 = MPCController(agent.system, 5, None, max_iter=agent.mpc.max_iter, th_stop=agent.mpc.th_stop, retry_cold=False)
    obs, _ = gym.make("Reacher-v5").reset(seed=3)
    action, _ = agent.predict(obs)
    x = twin_for("Reacher-v5").observation_to_state(obs)
    planned = by_hand.step(x).action
    np.testing.assert_allclose(action, planned, atol=1e-6)  # float32 action
    assert np.abs(rk4.step(x).action - planned).max() > 1e-6  # another plan than RK4's
    agent.save(tmp_path / "agent.zip")
    assert DVP.load(tmp_path / "agent.zip").controller().ocp.env.rk_order == 2
    with pytest.raises(ValueError, match="rk_order must be one of"):
        DVP("Reacher-v5", mpc={"env_kwargs": {"rk_order": 5}}, n_workers=1, checkpoint_dir=None)
