"""The arm-reaching envs (envs/arms.py) against independent references: finite differences, pinocchio's
ABA, forward kinematics and gravity of the arm alone (without the goal's root joint), a DDP solve,
Gymnasium's checker, and clear errors for bad input."""

import functools
import warnings

import crocoddyl
import gymnasium as gym
import numpy as np
import pinocchio
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from dvp_rl.control.ocp import OptimalControlProblem
from envs.arms import ARMS, ArmReachEnv, ArmSpec
from tests.helpers import assert_first_derivatives, central_difference

example_robot_data = pytest.importorskip("example_robot_data")


@functools.lru_cache(maxsize=4)
def arm_alone(robot: str) -> pinocchio.Model:
    """The arm straight from example-robot-data (locked joints removed), without the goal's root joint."""
    spec = ARMS[robot]
    full = example_robot_data.load(spec.loader).model
    locked = [full.getJointId(j) for j in spec.locked_joints]
    return pinocchio.buildReducedModel(full, locked, pinocchio.neutral(full)) if locked else full


@pytest.fixture(scope="module")
def panda() -> ArmReachEnv:
    return ArmReachEnv("panda")


def random_points(env: ArmReachEnv, rng: np.random.Generator, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """States with random speeds (one beyond the barriers' margins) and torques around gravity compensation."""
    xs = env.sample_states(n, rng)
    k = env.n_joints
    xs[:, 6 + k :] = rng.uniform(-1.0, 1.0, size=(n, k))
    xs[0, 3 + 3] = env.arm.upper[3] - 0.5 * env.position_margin  # inside the position margin: barrier acting
    xs[0, 6 + k] = env.arm.velocity[0] - 0.5 * env.velocity_margin  # and the velocity one
    us = np.array([env.gravity_torques(x) for x in xs]) + rng.uniform(-0.3, 0.3, size=(n, k)) * env.effort
    return xs, us


def test_derivatives_match_finite_differences(panda, rng):
    env = panda
    nv = 3 + env.n_joints
    for x, u in zip(*random_points(env, rng)):
        Lx, Lu, Lxx, Lxu, Luu = assert_first_derivatives(env, x, u, atol_dynamics=1e-7, atol_cost=1e-6, rtol=1e-5)
        np.testing.assert_allclose(Lxu, central_difference(lambda w: env.cost_derivatives(x, w).Lx, u), atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(Luu, central_difference(lambda w: env.cost_derivatives(x, w).Lu, u), atol=1e-6, rtol=1e-5)
        # Lxx is Gauss-Newton (gauss_newton_hessian) except in the speeds, where every term is quadratic
        assert env.gauss_newton_hessian
        fd = central_difference(lambda z: env.cost_derivatives(z, u).Lx, x)
        np.testing.assert_allclose(Lxx[nv:, nv:], fd[nv:, nv:], atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(Lxx, Lxx.T, atol=1e-12)
        assert np.linalg.eigvalsh(Lxx).min() > -1e-9


def test_dynamics_are_pinocchio_aba_under_semi_implicit_euler(panda, rng):
    """Against ABA of the env's model, and of the arm alone (the goal's joints change the arm's accelerations by ~1e-10)."""
    env, k = panda, panda.n_joints
    arm = arm_alone("panda")
    for x, u in zip(*random_points(env, rng)):
        q, v = x[: 3 + k], x[3 + k :]
        a = pinocchio.aba(env.pin_model, env.pin_model.createData(), q, v, np.concatenate([np.zeros(3), u]))
        v_next = v + env.dt * a
        np.testing.assert_allclose(env.dynamics(x, u), np.concatenate([q + env.dt * v_next, v_next]), rtol=1e-12, atol=1e-12)
        a_arm = pinocchio.aba(arm, arm.createData(), q[3:], v[3:], u)
        np.testing.assert_allclose(a[3:], a_arm, rtol=1e-8, atol=1e-8)
        assert np.abs(a[:3]).max() < 1e-8  # the goal's acceleration: the arm's forces over the armature 1e12


def test_cost_is_the_documented_sum_of_terms(rng):
    """The cost against a hand computation with the arm alone's kinematics and gravity (distinct weights, barriers acting)."""
    w = {"w_distance": 3.0, "w_velocity": 0.7, "w_torque": 2.0, "w_limit": 50.0}
    env = ArmReachEnv("panda", **w)
    arm = arm_alone("panda")
    data = arm.createData()
    ee = arm.getFrameId(ARMS["panda"].ee_frame)
    k = env.n_joints
    low, high = env.arm.lower + env.position_margin, env.arm.upper - env.position_margin
    vmax = env.arm.velocity - env.velocity_margin
    for x, u in zip(*random_points(env, rng)):
        goal, q, v = x[:3], x[3 : 3 + k], x[6 + k :]
        pinocchio.framesForwardKinematics(arm, data, q)
        distance = w["w_distance"] * np.sum((data.oMf[ee].translation - goal) ** 2)
        torque = w["w_torque"] * np.sum(((u - pinocchio.computeGeneralizedGravity(arm, data, q)) / env.effort) ** 2)
        speed = w["w_velocity"] * v @ v
        limits = w["w_limit"] * (np.sum((q - np.clip(q, low, high)) ** 2) + np.sum((v - np.clip(v, -vmax, vmax)) ** 2))
        assert env.cost(x, u) == pytest.approx(env.dt * (distance + speed + torque + limits), rel=1e-10)
    assert limits == 0.0 and env.cost(x, u) > 0  # the last state lies inside the margins; the first did not


def test_terminal_cost_is_the_state_part(rng):
    env = ArmReachEnv("panda", w_terminal=2.0)
    x = env.sample_states(1, rng)[0]
    x[-env.n_joints :] = 0.3
    assert env.terminal_cost(x) == pytest.approx(2.0 * (env.W_DISTANCE * env.distance(x) ** 2 + env.W_VELOCITY * 0.09 * env.n_joints), rel=1e-10)
    Lx, _ = env.terminal_cost_derivatives(x)
    np.testing.assert_allclose(Lx, central_difference(env.terminal_cost, x), atol=1e-6, rtol=1e-5)


def test_rest_at_the_goal_with_gravity_compensation_is_a_zero_cost_equilibrium(panda):
    env = panda
    x = env.sample_states(1, 3)[0]
    x[:3] = 0.0
    x[:3] = env.ee_position(x)  # the goal at the end effector
    u = env.gravity_torques(x)
    assert env.cost(x, u) < 1e-25  # 0 up to the rounding of p_ee - goal (1e-16 m)
    np.testing.assert_allclose(env.dynamics(x, u), x, rtol=0, atol=1e-9)
    assert np.abs(env.dynamics(x, np.zeros(env.nu)) - x).max() > 1e-3  # zero torque does not hold the arm
    # the goal state the env names is such an equilibrium under its goal control (DVP's anchor checks it)
    from dvp_rl.collect import checked_goal

    goal, held = np.array(env.goal_state), np.array(env.goal_control)
    np.testing.assert_allclose(held, env.gravity_torques(goal))
    assert env.cost(goal, held) < 1e-25 and env.distance(goal) < 1e-12
    np.testing.assert_array_equal(checked_goal(env), goal)


def checker_warnings(env: gym.Env) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", envs.ARM_IDS)
def test_check_env(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    # render modes included (through the spec's entry point); the torque-level env is not normalised
    (message,) = checker_warnings(env.unwrapped)
    assert "symmetric and normalized space" in message
    (message,) = checker_warnings(env.env.env.env)  # the RescaleAction level, what agents see
    assert "different from the unwrapped version" in message
    env.close()


def test_registered_ids_act_in_unit_box_and_rescale_to_torques(rng):
    env = gym.make("dvp_rl/PandaReach-v0")
    base = env.unwrapped
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
    effort = base.effort.astype(np.float32)
    assert isinstance(base, ArmReachEnv) and base.action_space == gym.spaces.Box(-effort, effort, (7,), np.float32)
    assert env.spec.max_episode_steps == 300 and base.observation_space.shape == (20,) and base.observation_space.dtype == np.float64
    rescale = env.env.env.env
    assert isinstance(rescale, gym.wrappers.RescaleAction)
    env.reset(seed=0)
    a = (base.gravity_torques(base.state) / base.effort + rng.uniform(-0.02, 0.02, size=7)).astype(np.float32)  # inside the limits
    torque = rescale.action(a)
    np.testing.assert_allclose(torque, base.effort * a, rtol=1e-6, atol=1e-5)
    x = base.state.copy()
    obs, reward, *_ = env.step(a)
    np.testing.assert_allclose(obs, base.dynamics(x, torque.astype(np.float64)), rtol=1e-12, atol=1e-12)
    assert reward == pytest.approx(-base.cost(x, torque.astype(np.float64)), rel=1e-12)
    assert gym.make(env.spec).action_space == env.action_space  # the spec re-makes it without a second rescale


def test_make_passes_kwargs_and_render_mode_through_the_entry_point():
    env = gym.make("dvp_rl/UR5Reach-v0", render_mode="rgb_array", w_distance=3.0, success_distance=0.02)
    base = env.unwrapped
    assert base.arm.name == "ur5" and base.nu == 6 and base.nx == 18
    assert base.render_mode == "rgb_array" and base.weights["distance"] == 3.0 and base.success_distance == 0.02
    assert env.metadata["render_fps"] == pytest.approx(100.0)
    assert isinstance(gym.make("dvp_rl/PandaReach-v0", render_mode="rgb_array_list"), gym.wrappers.RenderCollection)
    with pytest.raises(TypeError, match="not_a_parameter"):
        gym.make("dvp_rl/PandaReach-v0", not_a_parameter=1.0)


def test_box_fddp_reaches_the_goal_and_the_plan_succeeds_in_the_env(panda):
    env = panda
    x0 = env.sample_states(1, 7)[0]
    result = OptimalControlProblem(env, 150).solve(x0)
    assert result.converged and result.iterations < 50
    assert env.distance(result.xs[-1]) < 0.01 < env.distance(x0)
    assert np.all(np.abs(result.us) <= env.effort + 1e-9)
    env.reset(options={"state": x0})
    for u in result.us:  # the plan replayed in the env: the same model, the same states
        obs, _, terminated, truncated, info = env.step(u)
    np.testing.assert_allclose(obs, result.xs[-1], atol=1e-12)
    assert info["is_success"] and info["distance"] < 0.01 and not (terminated or truncated)


def test_ur5_reaches_the_goal():
    env = ArmReachEnv("ur5")
    assert (env.nu, env.nx, env.arm.ee_frame) == (6, 18, env.pin_model.getFrameId("tool0"))
    x0 = env.sample_states(1, 1)[0]
    result = OptimalControlProblem(env, 150).solve(x0)
    assert result.converged and env.distance(result.xs[-1]) < 0.01 < env.distance(x0)


def test_info_reports_distance_and_success(panda):
    env = panda
    obs, info = env.reset(seed=1)
    assert info["distance"] == pytest.approx(np.linalg.norm(env.ee_position(obs) - obs[:3])) and not info["is_success"]
    at_goal = obs.copy()
    at_goal[:3] = env.ee_position(obs)
    env.reset(options={"state": at_goal})
    _, _, _, _, info = env.step(env.gravity_torques(at_goal))
    assert info["is_success"] and info["distance"] < 1e-9
    moving = at_goal.copy()
    moving[-1] = 2 * env.success_speed  # on the goal, but too fast
    env.reset(options={"state": moving})
    _, _, _, _, info = env.step(env.gravity_torques(moving))
    assert info["distance"] < env.success_distance and not info["is_success"]


def test_the_goal_stays_put_over_an_episode():
    env = gym.make("dvp_rl/PandaReach-v0")
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    goal = obs[:3].copy()
    truncated, steps = False, 0
    while not truncated:
        obs, _, _, truncated, _ = env.step(env.action_space.sample())  # random torques: the largest reactions
        steps += 1
    assert steps == 300
    assert np.abs(obs[:3] - goal).max() < 1e-6


def test_step_is_the_model_inside_the_limits_and_stops_joints_at_them(panda, rng):
    env = panda
    nv = 3 + panda.n_joints
    x = env.sample_states(1, rng)[0]
    u = env.gravity_torques(x) + 0.01 * env.effort  # the light wrist gains 0.2 rad/s in one step
    env.reset(options={"state": x})
    obs, reward, _, _, info = env.step(u)
    np.testing.assert_array_equal(obs, env.dynamics(x, u))
    assert reward == -env.cost(x, u) and not info["hard_stop"]
    x[3 + 3] = env.arm.upper[3] - 1e-4  # the Panda's elbow at its upper limit, moving up
    x[nv + 3 + 3] = 1.0
    env.reset(options={"state": x})
    obs, _, _, _, info = env.step(u)
    assert info["hard_stop"] and env.dynamics(x, u)[3 + 3] > env.arm.upper[3]
    assert obs[3 + 3] == env.arm.upper[3] and obs[nv + 3 + 3] == 0.0
    x[nv + 3 + 3] = 0.0
    x[-1] = env.arm.velocity[-1]  # the wrist at its velocity limit, pushed faster
    env.reset(options={"state": x})
    u = env.gravity_torques(x)
    u[-1] = env.effort[-1]
    obs, _, _, _, info = env.step(u)
    assert info["hard_stop"] and obs[-1] == env.arm.velocity[-1] < env.dynamics(x, u)[-1]
    x[-1] = 1.01 * env.arm.velocity[-1]
    with pytest.raises(ValueError, match=r"start speeds exceed the velocity limits at \['panda_joint7'\]"):
        env.reset(options={"state": x})


def test_starts_are_seeded_reachable_and_inside_the_limits(panda):
    env = panda
    xs = env.sample_states(50, 5)
    np.testing.assert_array_equal(xs, env.sample_states(50, np.random.default_rng(5)))
    k = env.n_joints
    q = xs[:, 3 : 3 + k]
    assert np.all(q >= env.arm.lower + env.position_margin) and np.all(q <= env.arm.upper - env.position_margin)
    assert np.all(xs[:, 3 + k :] == 0.0)
    assert np.all(np.linalg.norm(xs[:, :3], axis=1) < env.arm.reach)
    distances = [env.distance(x) for x in xs]
    assert 0.02 < np.median(distances) < 0.6
    obs, _ = env.reset(options={"goal": [0.4, 0.1, 0.5]})
    np.testing.assert_array_equal(obs[:3], [0.4, 0.1, 0.5])
    arm_state = np.concatenate([ARMS["panda"].nominal, np.zeros(k)])
    obs, _ = env.reset(options={"state": arm_state, "goal": [0.3, 0.0, 0.4]})
    np.testing.assert_array_equal(obs, np.concatenate([[0.3, 0.0, 0.4], ARMS["panda"].nominal, np.zeros(3 + k)]))


def test_bad_input_raises_clear_value_errors(panda):
    env = panda
    x = env.sample_states(1, 0)[0]
    with pytest.raises(ValueError, match=r"unknown robot 'kuka'.*\['panda', 'ur5'\]"):
        ArmReachEnv("kuka")
    with pytest.raises(ValueError, match="lacks finite effort limits"):
        ArmReachEnv(ArmSpec(loader="double_pendulum", ee_frame="link2", nominal=(0.0, 0.0), start_range=(0.1, 0.1)))
    with pytest.raises(ValueError, match="out of reach"):
        env.reset(options={"goal": [2.0, 0.0, 0.5]})
    with pytest.raises(ValueError, match=r"options\['goal'\] must have shape \(3,\)"):
        env.reset(options={"goal": [0.3, 0.2]})
    with pytest.raises(ValueError, match=r"options\['goal'\] must be finite"):
        env.reset(options={"goal": [0.3, np.nan, 0.2]})
    outside = x.copy()
    outside[3 + 3] = 0.5  # the Panda's elbow (joint 4) only bends to -0.07 rad
    with pytest.raises(ValueError, match=r"outside the joint limits at \['panda_joint4'\]"):
        env.reset(options={"state": outside})
    with pytest.raises(ValueError, match="finite"):
        env.reset(options={"state": np.full(env.nx, np.nan)})
    with pytest.raises(ValueError, match=r"shape \(20,\)"):
        env.reset(options={"state": x[:-1]})
    moving_goal = x.copy()
    moving_goal[3 + env.n_joints] = 0.1
    with pytest.raises(ValueError, match="goal's velocity"):
        env.reset(options={"state": moving_goal})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"target": [0.3, 0.0, 0.4]})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.full(env.nu, np.nan))
    with pytest.raises(ValueError, match=r"action must have shape \(7,\)"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="render_mode"):
        ArmReachEnv("panda", render_mode="human")


def test_render_draws_the_arm_and_changes_when_it_moves():
    env = gym.make("dvp_rl/PandaReach-v0", render_mode="rgb_array", width=320, height=160)
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (160, 320, 3) and first.dtype == np.uint8 and first.std() > 0
    for _ in range(20):
        env.step(np.full(7, 0.5, dtype=np.float32))
    second = env.render()
    assert second.shape == first.shape and np.abs(second.astype(int) - first).sum() > 0
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert gym.make("dvp_rl/PandaReach-v0").unwrapped.render() is None


def test_models_are_native_crocoddyl(panda):
    """No Python model in the DDP's hot path (a Python action, actuation or activation model is a crocoddyl
    subclass defined in Python)."""
    model = panda.action_model()
    assert type(model) is crocoddyl.IntegratedActionModelEuler
    assert type(model.differential) is crocoddyl.DifferentialActionModelFreeFwdDynamics
    assert type(model.differential.actuation) is crocoddyl.ActuationModelFloatingBase
    for name, item in model.differential.costs.costs.todict().items():
        assert type(item.cost.activation).__module__.startswith("crocoddyl"), name


@pytest.mark.parametrize("env_id", ["dvp_rl/PandaReach-v0", "dvp_rl/UR5Reach-v0"])
def test_dvp_learns_on_an_arm_and_acts_in_its_normalised_actions(env_id):
    """Another arm is one registry entry: a short DVP run on it, then predict in the env's [-1, 1] actions."""
    from dvp_rl.agent import DVP

    agent = DVP(env_id, horizon=10, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)},
                fit={"max_epochs": 3, "polish_steps": 0}, mpc={"time_budget": None}, n_workers=1, seed=0,
                checkpoint_dir=None).learn(1)  # fmt: skip
    env = gym.make(env_id)
    obs, _ = env.reset(seed=1)
    action, _ = agent.predict(obs, episode_start=np.array([True]))
    assert env.action_space.contains(action)
    torques = agent.controller().step(obs).action  # a fresh controller with the same settings: the same plan
    np.testing.assert_allclose(action, np.clip(torques / env.unwrapped.action_high, -1, 1), rtol=1e-5, atol=1e-6)
    assert agent.value(obs) > 0 and agent.model_evaluations > 0
