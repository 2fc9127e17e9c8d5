"""The envs: Gymnasium's checker, determinism, derivatives against finite differences, step consistency, bad input."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs
from tests.helpers import ALL_ENV_IDS, NON_REAL_DTYPES, central_difference, make_unwrapped, non_real

# Every env with a non-zero terminal cost, so the terminal derivatives are exercised.
TERMINAL_KWARGS = {"w_terminal": 2.0}


def random_points(env, rng, n=5):
    xs = env.sample_states(n, rng) * 1.3  # also a little outside the start region
    us = rng.uniform(env.action_low, env.action_high, size=(n, env.nu)) * 0.9
    return xs, us


@pytest.mark.parametrize("env_id", ALL_ENV_IDS + list(envs.MUJOCO_TWIN_IDS))  # the MuJoCo twins need the mujoco extra
def test_check_env(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_same_seed_same_episode(env_id):
    def episode(seed):
        env = gym.make(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(20):
            obs, reward, *_ = env.step(env.action_space.sample())
            out.append(np.append(obs, reward))
        return np.concatenate(out)

    np.testing.assert_array_equal(episode(3), episode(3))
    assert not np.array_equal(episode(3), episode(4))


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_dynamics_derivatives_match_finite_differences(env_id, rng):
    env = make_unwrapped(env_id)
    for x, u in zip(*random_points(env, rng)):
        Fx, Fu = env.dynamics_derivatives(x, u)
        assert Fx.shape == (env.nx, env.nx) and Fu.shape == (env.nx, env.nu)
        np.testing.assert_allclose(Fx, central_difference(lambda z: env.dynamics(z, u), x), atol=1e-7, rtol=1e-6)
        np.testing.assert_allclose(Fu, central_difference(lambda w: env.dynamics(x, w), u), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_running_cost_derivatives_match_finite_differences(env_id, rng):
    env = make_unwrapped(env_id)
    for x, u in zip(*random_points(env, rng)):
        Lx, Lu, Lxx, Lxu, Luu = env.cost_derivatives(x, u)
        np.testing.assert_allclose(Lx, central_difference(lambda z: env.cost(z, u), x), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Lu, central_difference(lambda w: env.cost(x, w), u), atol=1e-6, rtol=1e-6)
        if not env.gauss_newton_hessian:  # see test_pendulum_angle_hessian_is_gauss_newton
            np.testing.assert_allclose(Lxx, central_difference(lambda z: env.cost_derivatives(z, u).Lx, x), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Lxu, central_difference(lambda w: env.cost_derivatives(x, w).Lx, u), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Luu, central_difference(lambda w: env.cost_derivatives(x, w).Lu, u), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_terminal_cost_derivatives_match_finite_differences(env_id, rng):
    env = make_unwrapped(env_id, **TERMINAL_KWARGS)
    for x in env.sample_states(5, rng):
        assert env.terminal_cost(x) > 0.0
        Lx, Lxx = env.terminal_cost_derivatives(x)
        np.testing.assert_allclose(Lx, central_difference(env.terminal_cost, x), atol=1e-6, rtol=1e-6)
        if not env.gauss_newton_hessian:
            np.testing.assert_allclose(Lxx, central_difference(lambda z: env.terminal_cost_derivatives(z).Lx, x), atol=1e-6, rtol=1e-6)


def test_pendulum_angle_hessian_is_gauss_newton(rng):
    """Lxx of the tip cost is R_x^T R_x = c l^2 while the true Hessian is c l^2 cos(th); all else is exact."""
    env = make_unwrapped("dvp_rl/Pendulum-v0", l=1.5, w_terminal=2.0)
    assert env.gauss_newton_hessian
    for x in env.sample_states(5, rng):
        u = np.array([0.3])
        Lxx = env.cost_derivatives(x, u).Lxx
        fd = central_difference(lambda z: env.cost_derivatives(z, u).Lx, x)
        c = env.dt * env.weights["angle"] * env.l**2
        np.testing.assert_allclose(fd[0, 0], c * np.cos(x[0]), rtol=1e-6, atol=1e-8)
        assert Lxx[0, 0] == pytest.approx(c, rel=1e-12)
        np.testing.assert_allclose(np.delete(Lxx.ravel(), 0), np.delete(fd.ravel(), 0), atol=1e-7)
        tLxx = env.terminal_cost_derivatives(x).Lxx
        tfd = central_difference(lambda z: env.terminal_cost_derivatives(z).Lx, x)
        assert tLxx[0, 0] == pytest.approx(2.0 * env.weights["angle"] * env.l**2, rel=1e-12)
        np.testing.assert_allclose(tfd[0, 0], tLxx[0, 0] * np.cos(x[0]), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_step_agrees_with_dynamics_and_cost(env_id, rng):
    env = gym.make(env_id)
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        u = rng.uniform(base.action_low, base.action_high)
        x = base.state.copy()
        obs, reward, terminated, truncated, info = env.step(u.astype(np.float32))
        expected = envs.base.wrap_angles(base.dynamics(x, u.astype(np.float32).astype(np.float64)), base.angle_dims)
        np.testing.assert_allclose(obs, expected, rtol=1e-12, atol=1e-12)
        assert reward == pytest.approx(-base.cost(x, u.astype(np.float32).astype(np.float64)), rel=1e-12)
        assert not terminated


def test_step_clips_actions_to_the_action_space():
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    env.reset(seed=0, options={"state": np.array([0.5, 0.0])})
    obs, *_ = env.step(np.array([50.0]))
    np.testing.assert_allclose(obs, env.dynamics(np.array([0.5, 0.0]), np.array([2.0])))


def test_pendulum_matches_gymnasium_pendulum_physics(rng):
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    g, m, length, dt = 10.0, 1.0, 1.0, 0.05
    for _ in range(5):
        th, thdot = rng.uniform(-3, 3, 2)
        u = rng.uniform(-2, 2)
        new_thdot = thdot + (3 * g / (2 * length) * np.sin(th) + 3.0 / (m * length**2) * u) * dt
        new_th = th + new_thdot * dt
        np.testing.assert_allclose(env.dynamics(np.array([th, thdot]), np.array([u])), [new_th, new_thdot], atol=1e-12)


def test_cartpole_matches_gymnasium_cartpole_physics(rng):
    """Gymnasium CartPole's equations (semi-implicit Euler), with a continuous force."""
    env = make_unwrapped("dvp_rl/CartPole-v0")
    gravity, masspole, total_mass, length, tau = 9.8, 0.1, 1.1, 0.5, 0.02
    polemass_length = masspole * length
    for _ in range(5):
        x, theta, x_dot, theta_dot = s = rng.uniform(-1, 1, 4)
        force = rng.uniform(-10, 10)
        temp = (force + polemass_length * theta_dot**2 * np.sin(theta)) / total_mass
        thetaacc = (gravity * np.sin(theta) - np.cos(theta) * temp) / (length * (4.0 / 3.0 - masspole * np.cos(theta) ** 2 / total_mass))
        xacc = temp - polemass_length * thetaacc * np.cos(theta) / total_mass
        x_dot += tau * xacc
        x += tau * x_dot
        theta_dot += tau * thetaacc
        theta += tau * theta_dot
        np.testing.assert_allclose(env.dynamics(s, np.array([force])), [x, theta, x_dot, theta_dot], atol=1e-12)


def test_unicycle_matches_its_closed_form(rng):
    env = make_unwrapped("dvp_rl/Unicycle-v0", w_state=3.0, w_control=0.5)
    x = rng.normal(size=3)
    u = rng.normal(size=2)
    expected = x + 0.1 * np.array([u[0] * np.cos(x[2]), u[0] * np.sin(x[2]), u[1]])
    np.testing.assert_allclose(env.dynamics(x, u), expected, atol=1e-14)
    assert env.cost(x, u) == pytest.approx(0.5 * 9.0 * x @ x + 0.5 * 0.25 * u @ u)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_bad_input_raises_clear_errors(env_id):
    env = make_unwrapped(env_id)
    x = np.zeros(env.nx)
    u = np.zeros(env.nu)
    with pytest.raises(ValueError, match=rf"shape \({env.nx},\)"):
        env.dynamics(np.zeros(env.nx + 1), u)
    with pytest.raises(ValueError, match=rf"shape \({env.nu},\)"):
        env.cost(x, np.zeros((env.nu, 2)))
    with pytest.raises(ValueError, match="finite"):
        env.dynamics(np.full(env.nx, np.nan), u)
    with pytest.raises(ValueError, match="finite"):
        env.terminal_cost(np.full(env.nx, np.inf))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan] * env.nu))
    with pytest.raises(TypeError, match="not_a_parameter"):
        gym.make(env_id, not_a_parameter=1.0)


@settings(max_examples=30, deadline=None)
@given(env_id=st.sampled_from(ALL_ENV_IDS), dtype=st.sampled_from(NON_REAL_DTYPES), seed=st.integers(0, 2**16),
       imaginary=st.sampled_from([0.0, 1e-3, -2.0]))  # fmt: skip
def test_non_real_states_and_controls_are_refused_before_converting(env_id, dtype, seed, imaginary):
    env = make_unwrapped(env_id)
    owner = type(env).__name__
    x, u = env.sample_states(1, seed)[0], np.zeros(env.nu)
    refused = lambda name: pytest.raises(ValueError, match=re.escape(f"{owner}: {name} must hold real numbers, got dtype {dtype}"))  # noqa: E731
    with refused("x"):
        env.dynamics(non_real(x, dtype, imaginary), u)
    with refused("u"):
        env.cost(x, non_real(u, dtype, imaginary))
    with refused("x"):
        env.terminal_cost(non_real(x, dtype, imaginary))
    env.reset(seed=seed)
    with refused("action"):
        env.step(non_real(u, dtype, imaginary))


def test_reset_from_a_given_state():
    env = gym.make("dvp_rl/Unicycle-v0")
    obs, _ = env.reset(seed=1, options={"state": [0.1, 0.2, 0.3]})
    np.testing.assert_array_equal(obs, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_reset_refuses_a_state_the_model_overflows_at(env_id):
    env = gym.make(env_id)
    with pytest.raises(ValueError, match=r"options\['state'\] = .* is out of the model's range"):  # was NaN or inf later
        env.reset(options={"state": np.full(env.unwrapped.nx, 1e300)})
    with pytest.raises(ValueError, match="finite"):
        env.reset(options={"state": np.full(env.unwrapped.nx, np.nan)})


NAN = float("nan")
BAD_ARGUMENTS = [
    ("dvp_rl/Pendulum-v0", {"dt": 0.0}, "dt must be finite and > 0"),  # Crocoddyl warned and used 1e-3
    ("dvp_rl/Pendulum-v0", {"dt": -0.05}, "dt must be finite and > 0"),
    ("dvp_rl/Pendulum-v0", {"dt": NAN}, "dt must be finite and > 0"),
    ("dvp_rl/Pendulum-v0", {"m": 0.0}, "m must be finite and > 0"),
    ("dvp_rl/Pendulum-v0", {"m": -1.0}, "m must be finite and > 0"),  # pinocchio: "The 3d inertia should be positive"
    ("dvp_rl/Pendulum-v0", {"l": 0.0}, "l must be finite and > 0"),
    ("dvp_rl/Pendulum-v0", {"l": -1.0}, "l must be finite and > 0"),  # accepted before
    ("dvp_rl/Pendulum-v0", {"g": NAN}, "g must be finite"),
    ("dvp_rl/Pendulum-v0", {"w_angle": NAN}, "w_angle must be finite and >= 0"),
    ("dvp_rl/Pendulum-v0", {"w_speed": -0.1}, "w_speed must be finite and >= 0"),  # accepted before
    ("dvp_rl/Pendulum-v0", {"max_start_speed": NAN}, "max_start_speed must be finite and >= 0"),  # failed at reset only
    ("dvp_rl/Pendulum-v0", {"max_torque": NAN}, "max_torque must be finite and > 0"),
    ("dvp_rl/CartPole-v0", {"dt": -0.02}, "dt must be finite and > 0"),
    ("dvp_rl/CartPole-v0", {"cart_mass": 0.0}, "cart_mass must be finite and > 0"),
    ("dvp_rl/CartPole-v0", {"pole_mass": -0.1}, "pole_mass must be finite and > 0"),
    ("dvp_rl/CartPole-v0", {"pole_half_length": NAN}, "pole_half_length must be finite and > 0"),
    ("dvp_rl/CartPole-v0", {"g": NAN}, "g must be finite"),
    ("dvp_rl/CartPole-v0", {"w_state": (1.0, NAN, 0.1, 0.1)}, "w_state must be finite and >= 0"),
    ("dvp_rl/CartPole-v0", {"start_bound": (1.0, -0.3, 0.5, 0.5)}, "start_bound must be finite and >= 0"),
    ("dvp_rl/Unicycle-v0", {"dt": 0.0}, "dt must be finite and > 0"),  # was Crocoddyl's bare Exception
    ("dvp_rl/Unicycle-v0", {"w_control": -1.0}, "w_control must be finite and >= 0"),
    ("dvp_rl/Unicycle-v0", {"start_bound": NAN}, "start_bound must be finite and >= 0"),
    ("dvp_rl/Unicycle-v0", {"max_speed": NAN}, "action bounds"),
    ("dvp_rl/LinearQuadratic-v0", {"dt": -1.0}, "dt must be finite and > 0"),
    ("dvp_rl/LinearQuadratic-v0", {"q": (1.0, -1.0)}, "q must be finite and >= 0"),
    ("dvp_rl/LinearQuadratic-v0", {"r": NAN}, "r must be finite and >= 0"),
    ("dvp_rl/LinearQuadratic-v0", {"q": ("a", 1.0)}, "q must be a number or numbers"),
]


@pytest.mark.parametrize("env_id, kwargs, message", BAD_ARGUMENTS)
def test_bad_constructor_arguments_are_clear_value_errors(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        gym.make(env_id, **kwargs)
    assert type(make_unwrapped(env_id)).__name__ in str(info.value)  # the message names the env


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_sample_states_is_seeded_and_shaped(env_id):
    env = make_unwrapped(env_id)
    a = env.sample_states(7, 5)
    assert a.shape == (7, env.nx)
    np.testing.assert_array_equal(a, env.sample_states(7, np.random.default_rng(5)))
    assert np.all(env.observation_space.contains(s) for s in a)


def test_discounted_models_scale_the_cost(rng):
    for env_id in ALL_ENV_IDS:
        env = make_unwrapped(env_id, **TERMINAL_KWARGS)
        x, u = (v[0] for v in random_points(env, rng, 1))
        m, t = env.action_model(0.7), env.terminal_model(0.7)
        d, td = m.createData(), t.createData()
        m.calc(d, x, u)
        t.calc(td, x)
        assert d.cost == pytest.approx(0.7 * env.cost(x, u), rel=1e-12)
        assert td.cost == pytest.approx(0.7 * env.terminal_cost(x), rel=1e-12)
        np.testing.assert_allclose(m.u_lb, env.action_space.low)


def test_pendulum_value_jumps_where_the_motor_cannot_hold_the_rod():
    """Gravity's torque 5 sin(th) beats the bound 2 beyond asin(0.4) = 0.41 rad: the optimal T=50 cost jumps
    there (the rod falls and swings round); with a bound of 6 > 5 it is continuous. Documented in PendulumEnv."""
    from dvp_rl.control.ocp import OptimalControlProblem

    for max_torque, (low, high) in ((2.0, (1.0, None)), (6.0, (None, 0.01))):
        env = make_unwrapped("dvp_rl/Pendulum-v0", max_torque=max_torque)
        ocp = OptimalControlProblem(env, 50)
        below, above = (ocp.solve_best(np.array([th, 0.0]), env.ddp_guesses) for th in (0.40, 0.42))
        assert below.converged and above.converged
        jump = above.cost - below.cost
        assert (low is None or jump > low) and (high is None or abs(jump) < high), (max_torque, below.cost, above.cost)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_goal_state_is_a_zero_cost_equilibrium_of_zero_value(env_id):
    """What DVP's relative value iteration relies on: V*(goal) = 0 and Vx*(goal) = 0 at any horizon."""
    from dvp_rl.collect import checked_goal
    from dvp_rl.control.ocp import solve_ocp

    env = make_unwrapped(env_id)
    goal = checked_goal(env)  # raises if it moves or costs anything
    assert goal is not None
    result = solve_ocp(env, goal, horizon=20)
    assert result.converged and abs(result.cost) < 1e-12
    np.testing.assert_allclose(result.Vx, 0.0, atol=1e-9)
