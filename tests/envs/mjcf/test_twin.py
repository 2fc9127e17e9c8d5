"""The twins of Gymnasium's MuJoCo envs, both of them (envs.mjcf.twin, the base class): built from the env's
own MJCF, stepped next to MuJoCo.

Measured figures these tests bound (with the cost tests of test_twin_inverted_double_pendulum.py and
test_twin_reacher.py; one step from random states inside the joint limits):

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

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("mujoco")
import mujoco  # noqa: E402

import envs  # noqa: E402
from envs.mjcf.inverted_double_pendulum import InvertedDoublePendulumTwin  # noqa: E402
from envs.mjcf.reacher import ReacherTwin  # noqa: E402
from envs.twins import twin_for  # noqa: E402
from tests.envs import test_envs as generic  # noqa: E402
from tests.envs.mjcf.helpers import IDP, IDP_BEST_REWARD, REACHER, Side, relative_error  # noqa: E402
from tests.helpers import assert_first_derivatives, central_difference  # noqa: E402

pytestmark = pytest.mark.mujoco


@pytest.mark.parametrize("env_id", envs.MUJOCO_TWIN_IDS)
def test_registered_twins_pass_gymnasiums_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == {"dvp_rl/InvertedDoublePendulum-v0": 1000, "dvp_rl/Reacher-v0": 50}[env_id]


@pytest.mark.parametrize("env_id", envs.MUJOCO_TWIN_IDS)
def test_generic_env_checks_hold_for_the_twins(env_id, rng):
    """tests/envs/test_envs.py's checks of every dvp_rl env: seeding, step = dynamics + cost, bad input, reset."""
    generic.test_same_seed_same_episode(env_id)
    generic.test_step_agrees_with_dynamics_and_cost(env_id, rng)
    generic.test_bad_input_raises_clear_errors(env_id)
    generic.test_reset_refuses_a_state_the_model_overflows_at(env_id)
    generic.test_sample_states_is_seeded_and_shaped(env_id)


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


@pytest.mark.parametrize("real_id", [IDP, REACHER])
def test_derivatives_match_finite_differences(real_id, rng):
    side = Side(real_id)
    twin = type(side.twin)(w_terminal=2.0)
    for _ in range(4):
        x, u = side.random_state(rng), rng.uniform(-0.9, 0.9, twin.nu)
        assert_first_derivatives(twin, x, u, atol_dynamics=1e-6, atol_cost=1e-5, rtol=1e-5)
        tLx, _ = twin.terminal_cost_derivatives(x)
        np.testing.assert_allclose(tLx, central_difference(twin.terminal_cost, x), atol=1e-5, rtol=1e-5)


def test_goals():
    """IDP: MuJoCo's lateral gravity (1e-5) leaves no equilibrium, so no goal; with vertical gravity the upright
    at rest is a zero-cost equilibrium of zero value. Reacher: the fingertip on the target, at rest."""
    from dvp_rl.collect import checked_goal
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


def test_twin_arguments_are_checked():
    with pytest.raises(TypeError, match="not_a_parameter"):
        gym.make("dvp_rl/Reacher-v0", not_a_parameter=1)
    with pytest.raises(ValueError, match="frame_skip must be an integer >= 1"):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", frame_skip=2.5)
    with pytest.raises(ValueError, match="distance_smoothing must be finite and > 0"):
        gym.make("dvp_rl/Reacher-v0", distance_smoothing=0.0)
    with pytest.raises(ValueError, match="w_termination must be finite and >= 0"):
        gym.make("dvp_rl/InvertedDoublePendulum-v0", w_termination=-1.0)


def test_dvp_plans_with_the_model_of_mpc_env_kwargs(tmp_path):
    """``DVP(mpc={"env_kwargs": {"rk_order": 2}})``: learning stays on the RK4 twin, ``predict``'s controller
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
