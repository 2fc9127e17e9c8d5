"""The one closed loop (dvp_rl.control.rollout): episodes in lockstep, the model view, scoring in the
real env one episode per seed (an SB3 model, VecNormalize included; success where the env reports it),
closed loops from given states, an episode as pictures."""

import gymnasium as gym
import numpy as np
import pytest

from baselines.sb3 import make_sb3
from dvp_rl.control.rollout import ModelEnv, discounted_cost, evaluate_episodes, render_episode, run_episode, run_episodes
from tests.helpers import make_unwrapped

ENV_ID = "Pendulum-v1"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def test_lockstep_episodes_are_the_episodes_run_one_by_one():
    seeds = [5, 6, 7]
    policy = lambda obs, first: -0.5 * obs[:, 2:3]  # noqa: E731  (a speed damper on Pendulum-v1's observation)
    together = run_episodes(policy, [gym.make(ENV_ID) for _ in seeds], [{"seed": s} for s in seeds])
    for seed, run in zip(seeds, together):
        alone = run_episode(policy, gym.make(ENV_ID), seed=seed)
        np.testing.assert_array_equal(run.observations, alone.observations)
        np.testing.assert_array_equal(run.rewards, alone.rewards)
        assert run.episode_return == alone.episode_return and len(run.rewards) == 200 and not run.terminated
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=6)
    expected = 0.0
    for _ in range(200):
        obs, reward, *_ = env.step(-0.5 * obs[2:3])
        expected += float(reward)
    assert together[1].episode_return == expected  # the same additions in the same order


def test_first_is_true_at_the_first_step_only_and_max_steps_ends_episodes():
    firsts = []
    policy = lambda obs, first: (firsts.append(first), np.zeros((len(obs), 1)))[1]  # noqa: E731
    run = run_episode(policy, gym.make(ENV_ID), max_steps=4, seed=0)
    assert firsts == [True, False, False, False] and run.actions.shape == (4, 1) and run.observations.shape == (5, 3)
    assert run.step_ns.shape == (4,) and np.all(run.step_ns > 0)
    with pytest.raises(ValueError, match="one reset per env"):
        run_episodes(policy, [gym.make(ENV_ID)], [])
    with pytest.raises(ValueError, match="max_steps"):
        run_episode(policy, gym.make(ENV_ID), max_steps=-1)


def test_model_env_steps_the_model_and_leaves_the_env_alone():
    system = make_unwrapped("dvp_rl/Pendulum-v0")
    system.reset(seed=0)
    kept = system.state.copy()
    model = ModelEnv(system)
    x = np.array([3.0, 7.5])
    obs, _ = model.reset(options={"state": x})
    u = np.array([5.0])  # outside the bounds: not clipped, as the DDP's model
    nxt, reward, terminated, truncated, _ = model.step(u)
    np.testing.assert_array_equal(nxt, system.dynamics(x, u))
    assert reward == -system.cost(x, u) and not terminated and not truncated
    np.testing.assert_array_equal(system.state, kept)
    with pytest.raises(ValueError, match="options"):
        model.reset()


def test_discounted_cost():
    costs = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(discounted_cost(costs, 0.5), [1 + 1 + 0.75, 0.25])
    with pytest.raises(ValueError):
        discounted_cost(costs[0], 0.5)


class ConstantTorque:
    """A controller with SB3's predict signature: always the same torque."""

    def __init__(self, torque: float):
        self.torque = torque

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.array([self.torque], dtype=np.float32), None


def test_evaluate_episodes_sums_the_env_rewards_per_seed():
    seeds = [3, 4, 3]
    results = evaluate_episodes(ConstantTorque(0.5), ENV_ID, seeds)
    assert results.returns.shape == results.lengths.shape == (3,)
    np.testing.assert_array_equal(results.seeds, seeds)
    np.testing.assert_array_equal(results.lengths, 200)
    assert results.step_ms.shape == (600,) and np.all(results.step_ms >= 0)
    starts = results.step_start_ns  # when each step began: in order, each after the previous one ended
    assert starts.shape == (600,) and np.all(starts[1:] >= starts[:-1] + np.rint(results.step_ms[:-1] * 1e6).astype(np.int64) - 1)
    assert results.step_cpu_ms.shape == (600,) and np.all(results.step_cpu_ms >= 0)
    assert results.returns[0] == results.returns[2] != results.returns[1]
    env = gym.make(ENV_ID)
    env.reset(seed=4)
    expected = sum(env.step(np.array([0.5], dtype=np.float32))[1] for _ in range(200))
    assert results.returns[1] == pytest.approx(expected, rel=1e-12)
    assert results.worst_return == results.returns.min() and results.std_return == pytest.approx(np.std(results.returns))
    assert "3 episodes" in results.summary()
    with pytest.raises(ValueError, match="seeds"):
        evaluate_episodes(ConstantTorque(0.0), ENV_ID, [])
    short = evaluate_episodes(ConstantTorque(0.0), ENV_ID, [0], env_kwargs={"max_episode_steps": 7})
    np.testing.assert_array_equal(short.lengths, [7])


def test_evaluate_episodes_is_deterministic_and_normalises_observations():
    """A PPO trained a few updates with VecNormalize (dvp_rl/Pendulum-v0's entry): evaluation sees its statistics."""
    model = make_sb3("PPO", "dvp_rl/Pendulum-v0", seed=0, gamma=0.9, n_steps=64).learn(512)
    vec_normalize = model.get_vec_normalize_env()
    assert not np.allclose(vec_normalize.obs_rms.mean, 0.0)
    seeds = [11, 12]
    first = evaluate_episodes(model, "dvp_rl/Pendulum-v0", seeds)
    second = evaluate_episodes(model, "dvp_rl/Pendulum-v0", seeds)
    np.testing.assert_array_equal(first.returns, second.returns)
    # The same episodes by hand, through VecNormalize's observation normalisation.
    env = gym.make("dvp_rl/Pendulum-v0")
    for seed, expected in zip(seeds, first.returns):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(vec_normalize.normalize_obs(obs), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        assert total == pytest.approx(expected, rel=1e-12)


def test_slowest_steps_are_reported_beside_the_median():
    results = evaluate_episodes(ConstantTorque(0.0), ENV_ID, [0], env_kwargs={"max_episode_steps": 120})
    ms = results.step_ms
    assert results.max_step_ms == ms.max() and results.p99_step_ms == pytest.approx(np.percentile(ms, 99))
    assert results.median_step_ms <= results.p99_step_ms <= results.max_step_ms
    assert "p99" in results.summary() and "max" in results.summary()


# ---------------------------------------------------------------------------- success and pictures
ARM_ID = "dvp_rl/PandaReach-v0"


def test_each_episodes_success_is_its_last_steps_is_success():
    seeds = [3, 4]
    hold = ConstantAction(np.zeros(7, dtype=np.float32))  # no torque: the arm falls away from its goal
    failed = evaluate_episodes(hold, ARM_ID, seeds, env_kwargs={"max_episode_steps": 5})
    wide = evaluate_episodes(hold, ARM_ID, seeds, env_kwargs={"max_episode_steps": 5, "success_distance": 10.0, "success_speed": 1e3})
    np.testing.assert_array_equal(failed.successes, [False, False])
    np.testing.assert_array_equal(wide.successes, [True, True])
    assert failed.success_rate == 0.0 and wide.success_rate == 1.0 and np.array_equal(failed.returns, wide.returns)
    env = gym.make(ARM_ID, max_episode_steps=5, success_distance=0.3)  # the last step's info, by hand
    trajectory = run_episode(lambda obs, first: np.zeros((1, 7), dtype=np.float32), env, seed=3)
    env.reset(seed=3)
    for _ in range(5):
        *_, info = env.step(np.zeros(7, dtype=np.float32))
    assert trajectory.info["is_success"] == info["is_success"] and trajectory.info["distance"] == info["distance"]
    pendulum = evaluate_episodes(ConstantTorque(0.0), ENV_ID, [0], env_kwargs={"max_episode_steps": 3})
    assert pendulum.successes is None and pendulum.success_rate is None  # Pendulum-v1 reports no success


class ConstantAction:
    """SB3's predict signature: always the same action."""

    def __init__(self, action: np.ndarray):
        self.action = action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.action, None


def test_an_episode_as_pictures():
    hold = ConstantAction(np.zeros(7, dtype=np.float32))
    episode = render_episode(hold, ARM_ID, seed=3, max_frames=10, env_kwargs={"max_episode_steps": 25, "width": 200, "height": 100})
    # a frame every ceil(25 / 10) = 3 steps, after the reset and after the last step
    assert len(episode.frames) == 1 + 8 + 1 and all(f.shape == (100, 200, 3) and f.dtype == np.uint8 for f in episode.frames)
    assert episode.fps == pytest.approx(100.0 / 3) and len(episode.trajectory.rewards) == 25
    np.testing.assert_array_equal(episode.trajectory.rewards, run_episode(lambda obs, first: np.zeros((1, 7), dtype=np.float32),
                                                                          gym.make(ARM_ID, max_episode_steps=25), seed=3).rewards)
    with pytest.raises(ValueError, match="max_frames"):
        render_episode(hold, ARM_ID, seed=3, max_frames=0)
    with pytest.warns(UserWarning, match="render_mode"), pytest.raises(ValueError, match="no render modes"):
        render_episode(hold, "dvp_rl/Unicycle-v0", seed=3)


def test_an_env_that_cannot_render_says_so_before_the_policy_acts():
    pytest.importorskip("gymnasium.envs.classic_control")
    try:
        import pygame  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pygame renders Pendulum-v1 here")

    class Refuses:
        def predict(self, *args, **kwargs):
            raise AssertionError("the policy acted")

    with pytest.raises(gym.error.DependencyNotInstalled):
        render_episode(Refuses(), ENV_ID, seed=0)


def test_a_step_that_waits_shows_wall_clock_without_cpu_time():
    """The CPU time of a step tells computing from waiting: a policy that sleeps 20 ms a step spends
    almost no CPU, one that spins for 20 ms spends about all of it."""
    import time

    def sleeping(observations, first):
        time.sleep(0.02)
        return np.zeros((len(observations), 1), dtype=np.float32)

    def spinning(observations, first):
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        return np.zeros((len(observations), 1), dtype=np.float32)

    for act, busy in ((sleeping, False), (spinning, True)):
        run = run_episode(act, gym.make(ENV_ID), seed=0, max_steps=5)
        wall_ms, cpu_ms = run.step_ns / 1e6, run.step_cpu_ns / 1e6
        assert np.all(wall_ms >= 19.0)
        if busy:
            assert np.median(cpu_ms) > 0.5 * np.median(wall_ms)  # a loaded host may take some of it
        else:
            assert np.all(cpu_ms < 5.0)
