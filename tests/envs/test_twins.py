"""Differentiable twins (envs.twins): the twin of Gymnasium's Pendulum-v1 steps and rewards like it."""

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.base import wrap_angles
from envs.twins import PENDULUM_MAX_SPEED, TWINS, twin_for
from tests.helpers import NON_REAL_DTYPES, make_unwrapped, non_real
from tests.helpers import central_difference

#: float32 observations carry ~1e-7 relative rounding (speeds up to 8: 4.8e-7 absolute)
OBS_ATOL = 1e-6


def angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of angles, modulo 2 pi."""
    return np.abs(wrap_angles(np.atleast_1d(a - b)[:, None], (0,))[:, 0])


def clip_acts(env, x: np.ndarray, u: float) -> bool:
    """Whether Pendulum-v1 clips the speed of the step from ``x`` under torque ``u``."""
    new_speed = x[1] + env.dt * (3 * env.g / (2 * env.l) * np.sin(x[0]) + 3.0 / (env.m * env.l**2) * u)
    return abs(new_speed) > PENDULUM_MAX_SPEED


@pytest.fixture
def real():
    env = gym.make("Pendulum-v1")
    yield env
    env.close()


def test_twin_of_pendulum_v1_is_the_gymnasium_cost_pendulum(real):
    twin = twin_for(real)
    assert (twin.real_id, twin.twin_id, twin.max_episode_steps) == ("Pendulum-v1", "dvp_rl/Pendulum-v0", 200)
    model = twin.make()
    assert model.spec.max_episode_steps == 200
    assert model.unwrapped.cost_kind == "gymnasium"
    assert (model.unwrapped.g, model.unwrapped.dt, model.unwrapped.action_high[0]) == (10.0, 0.05, 2.0)
    check_env(model.unwrapped, skip_render_check=True)


def test_twin_step_equals_pendulum_v1_where_the_speed_clip_does_not_act(real, rng):
    """Random states (angles beyond [-pi, pi) too) and torques (beyond the bound too): same next state
    and reward, directly and through the observation maps; where the clip acts, Pendulum-v1's speed is
    the twin's clipped to +-8."""
    twin = twin_for(real)
    system = twin.make().unwrapped
    real.reset(seed=0)
    n_clipped = 0
    for _ in range(400):
        x = rng.uniform([-2 * np.pi, -PENDULUM_MAX_SPEED], [2 * np.pi, PENDULUM_MAX_SPEED])
        action = rng.uniform(-2.5, 2.5, size=1).astype(np.float32)
        real.unwrapped.state = x.copy()
        obs, reward, *_ = real.step(action)
        u = np.clip(action, -2.0, 2.0).astype(np.float64)
        x_next = system.dynamics(x, u)
        assert -system.cost(x, u) == pytest.approx(reward, abs=1e-8)
        if clip_acts(system, x, float(u[0])):
            n_clipped += 1
            assert abs(x_next[1]) > PENDULUM_MAX_SPEED
            assert real.unwrapped.state[1] == pytest.approx(np.clip(x_next[1], -8, 8), abs=1e-7)
            continue
        np.testing.assert_allclose(real.unwrapped.state[1], x_next[1], atol=1e-7)
        assert angle_gap(real.unwrapped.state[0], x_next[0]).max() < 1e-8
        from_obs = twin.observation_to_state(obs)
        assert angle_gap(from_obs[0], x_next[0]).max() < OBS_ATOL
        assert from_obs[1] == pytest.approx(x_next[1], abs=OBS_ATOL)
        np.testing.assert_allclose(twin.state_to_observation(x_next), obs, atol=OBS_ATOL)
    assert 0 < n_clipped < 40  # both cases exercised


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_whole_episodes_agree_with_the_same_seed(real, seed):
    """Same seed: same start state, then 200 steps of the same random torques give the same states and
    rewards. Where Pendulum-v1's speed clip acts (seed 1 reaches it) its speed is the twin's clipped,
    and the twin is restarted from the real state. The torques are float64: with float32 ones
    Gymnasium computes ``3 u`` and ``0.001 u^2`` in float32 (1e-8 per step, amplified along an episode)."""
    twin = twin_for(real)
    model = twin.make()
    real.reset(seed=seed)
    x, _ = model.reset(seed=seed)
    np.testing.assert_array_equal(x, real.unwrapped.state)  # the same draws of the same generator
    torques = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(200, 1))
    steps, clipped = 0, 0
    for action in torques:
        clip = clip_acts(model.unwrapped, x, float(action[0]))
        obs, reward, terminated, truncated, _ = real.step(action)
        x, twin_reward, twin_terminated, twin_truncated, _ = model.step(action)
        steps += 1
        assert twin_reward == pytest.approx(reward, abs=1e-9)
        assert (terminated, truncated) == (twin_terminated, twin_truncated)
        real_x = real.unwrapped.state
        if clip:
            clipped += 1
            assert real_x[1] == pytest.approx(np.clip(x[1], -8.0, 8.0), abs=1e-9) and abs(x[1]) > 8.0
            x = wrap_angles(real_x, (0,))
            model.unwrapped.state = x.copy()
            continue
        assert angle_gap(real_x[0], x[0]).max() < 1e-9 and abs(real_x[1] - x[1]) < 1e-9
        from_obs = twin.observation_to_state(obs)
        assert angle_gap(from_obs[0], x[0]).max() < OBS_ATOL and abs(from_obs[1] - x[1]) < OBS_ATOL
    assert steps == 200 and truncated
    assert (clipped > 0) == (seed == 1)


def test_gymnasium_cost_formula_and_terminal(rng):
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium", w_terminal=3.0)
    for _ in range(5):
        x = rng.uniform([-3 * np.pi, -10.0], [3 * np.pi, 10.0])
        u = rng.uniform(-2.0, 2.0, size=1)
        th = (x[0] + np.pi) % (2 * np.pi) - np.pi  # Gymnasium's angle_normalize
        assert env.cost(x, u) == pytest.approx(th**2 + 0.1 * x[1] ** 2 + 0.001 * u[0] ** 2, rel=1e-12)
        assert env.terminal_cost(x) == pytest.approx(3.0 * (th**2 + 0.1 * x[1] ** 2), rel=1e-12)
    weighted = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium", w_angle=2.0, w_torque=0.5)
    assert weighted.cost(np.array([0.5, 1.0]), np.array([1.0])) == pytest.approx(2.0 * 0.25 + 0.1 + 0.5, rel=1e-12)
    with pytest.raises(ValueError, match="cost must be one of"):
        gym.make("dvp_rl/Pendulum-v0", cost="reward")


def test_gymnasium_cost_derivatives_match_finite_differences(rng):
    """All derivatives exact away from the kink at th = +-pi (Lxx too: the residual is linear in th there)."""
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium", w_terminal=2.0)
    assert not env.gauss_newton_hessian
    for _ in range(8):
        x = np.array([rng.uniform(-np.pi + 0.1, np.pi - 0.1) + 2 * np.pi * rng.integers(-1, 2), rng.uniform(-8, 8)])
        u = rng.uniform(-2.0, 2.0, size=1)
        Lx, Lu, Lxx, Lxu, Luu = env.cost_derivatives(x, u)
        np.testing.assert_allclose(Lx, central_difference(lambda z: env.cost(z, u), x), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Lu, central_difference(lambda w: env.cost(x, w), u), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Lxx, central_difference(lambda z: env.cost_derivatives(z, u).Lx, x), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Lxu, central_difference(lambda w: env.cost_derivatives(x, w).Lx, u), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(Luu, central_difference(lambda w: env.cost_derivatives(x, w).Lu, u), atol=1e-6, rtol=1e-6)
        tLx, tLxx = env.terminal_cost_derivatives(x)
        np.testing.assert_allclose(tLx, central_difference(env.terminal_cost, x), atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(tLxx, central_difference(lambda z: env.terminal_cost_derivatives(z).Lx, x), atol=1e-6, rtol=1e-6)


def test_gymnasium_cost_kink_at_the_hanging_rod():
    """The cost is continuous across th = pi, its gradient jumps from +2 pi to -2 pi (angle term)."""
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    u = np.zeros(1)
    below, above = np.array([np.pi - 1e-7, 0.0]), np.array([np.pi + 1e-7, 0.0])
    assert env.cost(below, u) == pytest.approx(env.cost(above, u), abs=1e-5)
    assert env.cost_derivatives(below, u).Lx[0] == pytest.approx(2 * np.pi, abs=1e-5)
    assert env.cost_derivatives(above, u).Lx[0] == pytest.approx(-2 * np.pi, abs=1e-5)


def test_goal_is_a_zero_cost_equilibrium_of_the_twin():
    from dvp_rl.control.ocp import solve_ocp

    env = twin_for("Pendulum-v1").make().unwrapped
    goal, zero = np.asarray(env.goal_state, dtype=np.float64), np.zeros(1)
    np.testing.assert_array_equal(goal, [0.0, 0.0])
    np.testing.assert_array_equal(env.dynamics(goal, zero), goal)
    assert env.cost(goal, zero) == 0.0
    result = solve_ocp(env, goal, horizon=20)
    assert result.converged and abs(result.cost) < 1e-12
    np.testing.assert_allclose(result.Vx, 0.0, atol=1e-9)


def test_observation_maps(real):
    twin = twin_for("Pendulum-v1")
    states = np.array([[0.0, 0.0], [3.0, -8.0], [-3.1, 7.5], [1.0, 0.3]])
    obs = twin.state_to_observation(states)
    assert obs.dtype == np.float32 and obs.shape == (4, 3)
    assert all(real.observation_space.contains(o) for o in obs)
    back = twin.observation_to_state(obs)
    assert back.dtype == np.float64 and back.shape == (4, 2)
    np.testing.assert_allclose(back, states, atol=OBS_ATOL)
    assert twin.observation_to_state(obs[1]).shape == (2,)


@pytest.mark.parametrize(
    "observation, message",
    [
        (np.zeros(2), r"shape \(3,\)"),
        (np.zeros((2, 2, 3)), r"shape \(3,\)"),
        (np.array([1.0, 0.0, np.nan]), "finite"),
        (np.array([1.0, 0.0, np.inf]), "finite"),
        (np.array([0.9, 0.0, 0.0]), "unit circle"),
        (np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]), "unit circle"),
        (np.array([1.0, 0.0, 8.01]), "speed"),
        (np.array([0.0, -1.0, -9.0]), "speed"),
    ],
)
def test_observations_outside_the_twin_domain_raise(observation, message):
    with pytest.raises(ValueError, match=message):
        twin_for("Pendulum-v1").observation_to_state(observation)


#: every map of the twin registry: (function, the size of its argument, the name its errors give it)
TWIN_MAPS = [(spec.observation_to_state, n_obs, real_id) for real_id, spec, n_obs in
             (("Pendulum-v1", TWINS["Pendulum-v1"], 3), ("InvertedDoublePendulum-v5", TWINS["InvertedDoublePendulum-v5"], 9),
              ("Reacher-v5", TWINS["Reacher-v5"], 10))]  # fmt: skip
TWIN_MAPS += [(TWINS["Pendulum-v1"].state_to_observation, 2, "twin pendulum state"),
              (TWINS["InvertedDoublePendulum-v5"].state_to_observation, 6, "twin inverted double pendulum state"),
              (TWINS["Reacher-v5"].state_to_observation, 8, "twin reacher state")]  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(index=st.integers(0, len(TWIN_MAPS) - 1), dtype=st.sampled_from(NON_REAL_DTYPES), batch=st.sampled_from([None, 1, 3]),
       imaginary=st.sampled_from([0.0, 1e-3]))  # fmt: skip
def test_a_non_real_observation_or_state_is_refused_before_converting(index, dtype, batch, imaginary):
    """Before: a complex Pendulum-v1 observation lost its imaginary part (a ComplexWarning at most)."""
    to_other, size, name = TWIN_MAPS[index]
    argument = np.zeros(size if batch is None else (batch, size))
    argument[..., 0] = 1.0  # (cos, sin) on the unit circle where the map checks it
    with pytest.raises(ValueError, match=re.escape(f"a {name} observation must hold real numbers, got dtype {dtype}")):
        to_other(non_real(argument, dtype, imaginary))


def test_unknown_ids_list_the_supported_ones():
    supported = "supported ids: \\['Pendulum-v1', 'InvertedDoublePendulum-v5', 'Reacher-v5'\\]"
    for env_id in ("CartPole-v1", "dvp_rl/Pendulum-v0", "Pendulum-v0"):
        with pytest.raises(ValueError, match=supported):
            twin_for(env_id)
    with pytest.raises(ValueError, match="CartPole-v1"):
        twin_for(gym.make("CartPole-v1"))
    assert sorted(TWINS) == ["InvertedDoublePendulum-v5", "Pendulum-v1", "Reacher-v5"]  # the MuJoCo ones: tests/envs/test_twins_mujoco.py


def test_real_env_arguments_are_modelled_or_refused():
    twin = twin_for(gym.make("Pendulum-v1", g=9.81))
    assert twin.twin_kwargs["g"] == 9.81
    assert twin.make().unwrapped.g == 9.81
    assert twin_for("Pendulum-v1", g=9.81).make().unwrapped.g == 9.81
    assert twin_for("Pendulum-v1", render_mode="rgb_array").twin_kwargs == {"cost": "gymnasium"}
    with pytest.raises(ValueError, match=r"does not model .*\['max_speed'\].*models \['g'\]"):
        twin_for("Pendulum-v1", max_speed=10.0)
    changed = gym.make("Pendulum-v1")
    changed.unwrapped.max_speed = 12
    with pytest.raises(ValueError, match="max_speed=8"):
        twin_for(changed)
    heavier = gym.make("Pendulum-v1")
    heavier.unwrapped.m = 2.0  # read from the instance: modelled
    assert twin_for(heavier).make().unwrapped.m == 2.0
    with pytest.raises(TypeError, match="with an id only"):
        twin_for(gym.make("Pendulum-v1"), g=3.0)


def test_twin_with_other_gravity_still_matches(rng):
    real = gym.make("Pendulum-v1", g=9.81)
    twin = twin_for(real)
    system = twin.make().unwrapped
    real.reset(seed=0)
    for _ in range(20):
        x = rng.uniform([-np.pi, -4.0], [np.pi, 4.0])
        action = rng.uniform(-2.0, 2.0, size=1).astype(np.float32)
        real.unwrapped.state = x.copy()
        _, reward, *_ = real.step(action)
        u = action.astype(np.float64)
        np.testing.assert_allclose(real.unwrapped.state, system.dynamics(x, u), atol=1e-7)
        assert -system.cost(x, u) == pytest.approx(reward, abs=1e-8)
