"""The DVP agent: LQR closed form, SB3 interface, persistence, resume, callbacks, bad input."""

import re
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import scipy.linalg
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.evaluation import evaluate_policy

import envs
from dvp_rl.agent import DVP
from dvp_rl.checkpoint import CheckpointError
from dvp_rl.control.ocp import OptimalControlProblem
from dvp_rl.value.networks import numpy_value
from tests.helpers import NON_REAL_DTYPES, non_real

TINY = dict(horizon=10, n_samples=60, fit={"max_epochs": 15, "polish_steps": 10}, collect={"n_validation": 20}, network={"net_arch": (16, 16)})


def tiny_agent(**kwargs) -> DVP:
    return DVP("dvp_rl/Unicycle-v0", **{**TINY, "seed": 0, "checkpoint_dir": None, **kwargs})


def test_learned_value_matches_discounted_riccati_on_the_lq_env():
    """T=5 with gamma=0.8 truncates 0.8^5 = 33% of the cost; iterating recovers the infinite horizon."""
    gamma = 0.8
    agent = DVP("dvp_rl/LinearQuadratic-v0", horizon=5, gamma=gamma, n_samples=300, fit={"max_epochs": 200}, seed=0, checkpoint_dir=None)
    env = agent.system
    P = scipy.linalg.solve_discrete_are(np.sqrt(gamma) * env.A, np.sqrt(gamma) * env.B, env.Q, env.R)
    X = env.sample_states(200, 1)
    V_star = 0.5 * np.einsum("ni,ij,nj->n", X, P, X)
    Vx_star = X @ P

    def rel(v, ref):
        return np.sqrt(np.mean((v - ref) ** 2) / np.mean(ref**2))

    agent.learn(1)
    assert rel(agent.value(X), V_star) > 0.2  # one horizon alone is far off
    agent.learn(5, reset_num_timesteps=False)
    V, Vx, _ = agent.value_derivatives(X)
    assert rel(V, V_star) < 1e-3
    assert rel(Vx, Vx_star) < 1e-2
    assert agent.iteration == 6


def test_save_load_gives_identical_predict_and_value(tmp_path):
    agent = tiny_agent().learn(1)
    X = agent.system.sample_states(5, 3)
    path = agent.save(tmp_path / "agent")
    assert path.name == "agent.zip"
    loaded = DVP.load(path)
    np.testing.assert_array_equal(loaded.value(X), agent.value(X))
    for a, b in zip(agent.value_derivatives(X), loaded.value_derivatives(X)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(X[0])[0], agent.predict(X[0])[0])
    assert loaded.iteration == 1 and loaded.num_timesteps == agent.num_timesteps > 0
    with zipfile.ZipFile(path) as archive:
        assert {"data", "value_net.pth", "dvp_rl_version", "system_info.txt"} <= set(archive.namelist())


class CrashAfter(BaseCallback):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def _on_step(self) -> bool:
        if self.n_calls >= self.n:
            raise KeyboardInterrupt("simulated crash")
        return True


def test_resume_after_a_crash_loses_no_finished_iteration(tmp_path):
    reference = tiny_agent().learn(3)
    agent = tiny_agent(checkpoint_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        agent.learn(3, callback=CrashAfter(2))
    resumed = DVP.load(tmp_path / "dvp_checkpoint.zip", checkpoint_dir=str(tmp_path))
    assert resumed.iteration == 2
    resumed.learn(1, reset_num_timesteps=False)
    assert resumed.iteration == 3
    assert resumed.num_timesteps == reference.num_timesteps
    X = reference.system.sample_states(10, 9)
    np.testing.assert_allclose(resumed.value(X), reference.value(X), rtol=1e-9)


class StopAfter(BaseCallback):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.started = False

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        return self.n_calls < self.n


def test_callback_returning_false_stops_learn():
    stop, other = StopAfter(1), StopAfter(100)
    agent = tiny_agent().learn(5, callback=CallbackList([stop, other]))
    assert agent.iteration == 1
    assert stop.started and other.n_calls == 1 and other.num_timesteps == agent.num_timesteps


def test_evaluate_policy_runs_mpc():
    agent = tiny_agent(mpc={"horizon": 5}).learn(1)
    env = envs.make("dvp_rl/Unicycle-v0", {"max_episode_steps": 10})
    mean, std = evaluate_policy(agent, env, n_eval_episodes=2)
    assert np.isfinite(mean) and mean < 0


def test_predict_batches_and_respects_bounds():
    agent = tiny_agent()
    X = agent.system.sample_states(3, 0) * 5
    actions, state = agent.predict(X, episode_start=np.ones(3, dtype=bool))
    assert actions.shape == (3, 2) and actions.dtype == np.float32 and state is None
    assert np.all(actions <= agent.system.action_high) and np.all(actions >= agent.system.action_low)


def test_bad_inputs_raise_clear_errors(tmp_path):
    agent = tiny_agent()
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(n_envs, 3\)"):
        agent.predict(np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        agent.predict(np.array([np.nan, 0.0, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        agent.value(np.array([[0.0, np.inf, 0.0]]))
    with pytest.raises(ValueError, match="unknown env id"):
        DVP("dvp_rl/NoSuchEnv-v0")
    with pytest.raises(ValueError, match="initial_terminal"):
        tiny_agent(collect={"initial_terminal": "bogus"})
    with pytest.raises(ValueError, match="unknown value network kind"):
        tiny_agent(network={"kind": "transformer"})
    path = agent.save(tmp_path / "ok.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        DVP.load(truncated)
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError):
        DVP.load(garbage)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        DVP.load(tmp_path / "missing.zip")
    with pytest.raises(CheckpointError):
        DVP.load(path, env="dvp_rl/Pendulum-v0")  # another system: incompatible network


def test_tensorboard_logging_and_auto_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    agent = tiny_agent(tensorboard_log=str(tmp_path), checkpoint_dir="auto").learn(2, tb_log_name="run")
    run_dir = tmp_path / "run_1"
    assert (run_dir / "dvp_checkpoint.zip").exists()
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ["train/value_loss", "train/gradient_loss", "dvp/bellman_residual", "ddp/mean_iterations", "ddp/failed_solves",
                "time/solve_s", "time/fit_s", "time/iteration"]:
        assert tag in tags, tag
    steps = [e.step for e in acc.Scalars("train/value_loss")]
    assert steps[-1] == agent.num_timesteps


def test_later_iterations_also_start_from_the_previous_plans_end_states():
    agent = tiny_agent(collect={"final_state_fraction": 0.4}).learn(1)
    ends = agent._final_states
    assert ends is not None and ends.shape[1] == agent.system.nx
    states, n_final = agent._start_states()
    assert n_final == round(0.4 * agent.n_samples) and len(states) == agent.n_samples
    # the last n_final rows are plan ends, the others fresh samples from the start box
    assert all(np.any(np.all(ends == row, axis=1)) for row in states[-n_final:])
    assert not any(np.any(np.all(ends == row, axis=1)) for row in states[:-n_final])
    assert tiny_agent(collect={"final_state_fraction": 0.0}).learn(1)._start_states()[1] == 0
    with pytest.raises(ValueError, match="final_state_fraction"):
        tiny_agent(collect={"final_state_fraction": 1.0})


class RecordingDVP(DVP):
    """DVP that keeps the last fit's targets."""

    def _targets(self, states, batch):
        self.recorded = (states.copy(), batch)
        return super()._targets(states, batch)


def test_value_targets_are_relative_to_the_goal_under_the_same_terminal():
    """Relative value iteration: iteration 2's value targets are the DDP costs with the first network as
    terminal, less the lower of the goal's two plan costs (holding still, DDP), all solved here again."""
    agent = RecordingDVP("dvp_rl/Unicycle-v0", **{**TINY, "seed": 0, "checkpoint_dir": None, "n_workers": 1})
    agent.learn(1)
    first, arrays = agent.recorded[1].cost, agent.value_net.export()
    agent.learn(1, reset_num_timesteps=False)
    states, batch = agent.recorded
    env = agent.system
    ocp = OptimalControlProblem(env, agent.horizon, agent.gamma, arrays, agent.collect.max_iter, agent.collect.th_stop)
    goal = np.zeros(env.nx)
    hold = agent.gamma**agent.horizon * float(numpy_value(arrays, goal[None])[0])
    from_goal = ocp.solve_best(goal, env.ddp_guesses)
    anchor = min(hold, from_goal.cost) if from_goal.converged else hold
    assert anchor > 1e-2  # the first (tiny) network is not 0 at the goal
    raw = np.array([ocp.solve_best(x, env.ddp_guesses).cost for x in states[:8]])
    np.testing.assert_allclose(batch.cost[:8], raw - anchor, rtol=1e-7, atol=1e-7)
    assert np.all(first >= 0)  # iteration 1 (zero terminal) is not shifted: costs of a nonnegative cost
    # without the anchor the same iteration fits the raw costs
    plain = RecordingDVP("dvp_rl/Unicycle-v0", **{**TINY, "seed": 0, "checkpoint_dir": None, "n_workers": 1, "collect": {**TINY["collect"], "anchor_goal": False}})
    plain.learn(2)
    assert np.allclose(plain.recorded[1].cost[:8], raw, rtol=1e-7, atol=1e-7)


def test_collect_guesses_choose_the_initial_guesses_of_the_training_solves():
    """``collect.guesses`` replaces the env's ``ddp_guesses``: each target is the cheapest converged solve
    over the named guesses, as ``OptimalControlProblem.solve_best`` gives it here; more guesses never
    cost more, and on the pendulum (swing-ups have local optima) the pushes find cheaper plans somewhere."""
    costs = {}
    for names in (("hold",), ("hold", "pushes")):
        collect = {**TINY["collect"], "anchor_goal": False, "guesses": list(names)}
        agent = RecordingDVP("dvp_rl/Pendulum-v0", **{**TINY, "horizon": 20, "n_samples": 24, "seed": 0, "checkpoint_dir": None,
                                                     "n_workers": 1, "collect": collect})
        assert agent.collect.guesses == names
        agent.collect_dataset()
        states, batch = agent.recorded
        ocp = OptimalControlProblem(agent.system, agent.horizon, agent.gamma, None, agent.collect.max_iter, agent.collect.th_stop)
        np.testing.assert_allclose(batch.cost, [ocp.solve_best(x, names).cost for x in states], rtol=1e-7, atol=1e-7)
        costs[names] = dict(zip(map(tuple, states), batch.cost))
    common = sorted(set(costs[("hold",)]) & set(costs[("hold", "pushes")]))  # both converged
    gain = np.array([costs[("hold",)][x] - costs[("hold", "pushes")][x] for x in common])
    assert len(common) >= 20 and np.all(gain >= -1e-7) and np.max(gain) > 1e-3
    with pytest.raises(ValueError, match="collect.guesses"):
        tiny_agent(collect={"guesses": ["hold", "no_such_guess"]})
    with pytest.raises(ValueError, match="collect.guesses"):
        tiny_agent(collect={"guesses": []})


def test_a_goal_state_that_is_not_a_zero_cost_equilibrium_is_rejected():
    env = envs.make("dvp_rl/Unicycle-v0")
    env.unwrapped.goal_state = (1.0, 0.0, 0.0)  # costs 50 per step
    with pytest.raises(ValueError, match="not a zero-cost equilibrium"):
        DVP(env, **{**TINY, "checkpoint_dir": None})
    assert DVP(env, **{**TINY, "checkpoint_dir": None, "collect": {"anchor_goal": False}}).collect.anchor_goal is False


def test_a_gymnasium_id_with_a_twin_trains_on_the_twin_and_acts_in_the_real_env(tmp_path):
    import gymnasium as gym

    agent = DVP("Pendulum-v1", horizon=10, n_samples=30, fit={"max_epochs": 5, "polish_steps": 0}, collect={"n_validation": 10},
                network={"net_arch": (8,)}, mpc={"search": None}, n_workers=1, seed=0, checkpoint_dir=None).learn(1)  # fmt: skip
    assert (agent.env_id, agent.user_id) == ("dvp_rl/Pendulum-v0", "Pendulum-v1") and agent.env_kwargs["cost"] == "gymnasium"
    real = gym.make("Pendulum-v1")
    obs, _ = real.reset(seed=3)
    action, _ = agent.predict(obs)
    state = np.array([np.arctan2(obs[1], obs[0]), obs[2]])
    assert action.shape == (1,) and action.dtype == np.float32
    np.testing.assert_array_equal(action, agent.controller().predict(state[None])[0].astype(np.float32))
    mean, _ = evaluate_policy(agent, real, n_eval_episodes=1)
    assert np.isfinite(mean) and agent.get_env().observation_space.shape == (3,)
    loaded = DVP.load(agent.save(tmp_path / "pendulum"))
    assert loaded.user_id == "Pendulum-v1" and loaded.twin.real_id == "Pendulum-v1"
    with pytest.raises(ValueError, match="unit circle"):
        agent.predict(np.array([2.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"supported ids: \['Pendulum-v1'"):
        DVP("CartPole-v1", checkpoint_dir=None)
    with pytest.raises(ValueError, match="max_speed"):
        DVP(_fast_pendulum(), checkpoint_dir=None)


def _fast_pendulum():
    """A Pendulum-v1 whose speed bound differs from the twin's (the twin does not model it)."""
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    env.unwrapped.max_speed = 20.0
    return env


def tiny_pendulum_v1(env, **kwargs) -> DVP:
    settings = dict(horizon=5, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)}, fit={"max_epochs": 3, "polish_steps": 0},
                    mpc={"search": None, "horizon": 5}, n_workers=1, seed=0, checkpoint_dir=None)  # fmt: skip
    return DVP(env, **{**settings, **kwargs})


def test_an_agent_acts_through_rescale_action_in_the_wrappers_units():
    import gymnasium as gym
    from gymnasium.wrappers import RescaleAction

    real = RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)
    agent = tiny_pendulum_v1(real).learn(1)
    obs, _ = real.reset(seed=4)
    action, _ = agent.predict(obs)
    x = agent.twin.observation_to_state(obs)
    torque = agent.controller().step(x).action
    np.testing.assert_allclose(action, torque / 2.0, rtol=1e-6)  # before: the torque itself, on a Box(-1, 1)
    assert real.action_space.contains(action)


def test_a_planning_model_with_wider_bounds_never_acts_outside_the_env():
    import gymnasium as gym

    agent = tiny_pendulum_v1("Pendulum-v1", mpc={"search": None, "horizon": 5, "env_kwargs": {"max_torque": 5.0}})
    real = gym.make("Pendulum-v1")
    obs, _ = real.reset(seed=0)
    for _ in range(5):
        action, _ = agent.predict(obs)
        assert real.action_space.contains(action)  # before: -5.0 on Pendulum-v1's Box(-2, 2)
        obs, *_ = real.step(action)


def test_wrappers_that_change_observations_are_refused_by_name():
    import gymnasium as gym
    from gymnasium.wrappers import NormalizeObservation, TransformObservation

    real = gym.make("Pendulum-v1")
    halved = TransformObservation(real, lambda o: o * np.array([1, 1, 0.5], dtype=np.float32), real.observation_space)
    with pytest.raises(ValueError, match="the wrapper TransformObservation"):
        tiny_pendulum_v1(halved)
    with pytest.raises(ValueError, match="the wrapper NormalizeObservation"):
        tiny_pendulum_v1(NormalizeObservation(gym.make("Pendulum-v1")))


def test_loading_onto_another_model_is_refused_and_another_episode_length_warned(tmp_path, caplog):
    import gymnasium as gym

    path = tiny_pendulum_v1("Pendulum-v1").learn(1).save(tmp_path / "v1.zip")
    with pytest.raises(CheckpointError, match=r"another model than this env's.*the cost"):  # before: loaded onto the tip cost
        DVP.load(path, env="dvp_rl/Pendulum-v0", n_workers=1)
    with pytest.raises(CheckpointError, match=r"another model than this env's.*the dynamics"):  # before: loaded at g=9.81
        DVP.load(path, env=gym.make("Pendulum-v1", g=9.81), n_workers=1)
    with caplog.at_level("WARNING"):
        loaded = DVP.load(path, env=gym.make("Pendulum-v1", max_episode_steps=50), n_workers=1)
    assert "episodes of 200 steps; this env's last 50" in caplog.text
    assert loaded.get_env().envs[0].spec.max_episode_steps == 50  # before: the registration's 200


def test_get_env_keeps_the_time_limit_of_the_env_given():
    import gymnasium as gym

    agent = tiny_pendulum_v1(gym.make("Pendulum-v1", max_episode_steps=50))
    assert agent.twin.max_episode_steps == 50 and agent.get_env().envs[0].spec.max_episode_steps == 50


def test_integer_settings_of_learn_and_controller_are_integers():
    agent = tiny_agent()
    with pytest.raises(ValueError, match=re.escape("total_iterations must be an integer >= 1, got 1.5")):
        agent.learn(1.5)
    with pytest.raises(ValueError, match=re.escape("total_iterations must be an integer >= 1, got True")):
        agent.learn(True)
    with pytest.raises(ValueError, match=re.escape("mpc.horizon must be an integer >= 1, got 2.5")):
        agent.controller(horizon=2.5)
    with pytest.raises(ValueError, match=re.escape("mpc.max_iter must be an integer >= 1, got 0")):
        agent.controller(max_iter=0)
    with pytest.raises(ValueError, match=re.escape("mpc.th_stop must be finite and > 0, got -1")):
        agent.controller(th_stop=-1)
    assert agent.iteration == 0 and agent.controller(horizon=4.0).horizon == 4  # an integral float is an integer


@pytest.mark.parametrize("dtype", NON_REAL_DTYPES, ids=str)
def test_a_non_real_observation_is_refused_before_converting(dtype):
    """Before: a complex observation lost its imaginary part (a ComplexWarning at most)."""
    agent = tiny_agent()
    x = agent.system.sample_states(2, 0)
    for bad, call, name in [(x[0], agent.predict, "observation"), (x, agent.predict, "observation"), (x, agent.value, "states"),
                            (x[0], agent.value_derivatives, "states")]:  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(f"{name} must hold real numbers, got dtype {dtype}")):
            call(non_real(bad, dtype, 1e-3))
    twin = DVP("Pendulum-v1", horizon=5, n_samples=10, collect={"n_validation": 5}, network={"net_arch": (8,)}, n_workers=1, checkpoint_dir=None)
    with pytest.raises(ValueError, match=re.escape(f"a Pendulum-v1 observation must hold real numbers, got dtype {dtype}")):
        twin.predict(non_real([1.0, 0.0, 0.0], dtype))


def pendulum_agent(**mpc) -> DVP:
    return DVP("dvp_rl/Pendulum-v0", horizon=5, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)},
               fit={"max_epochs": 3, "polish_steps": 0}, mpc=mpc or None, n_workers=1, seed=0, checkpoint_dir=None).learn(1)  # fmt: skip


def reset_predict_loop(agent: DVP, episode_start: str, seeds=(1, 2), steps: int = 8) -> np.ndarray:
    """The actions of SB3's habit ``obs, _ = env.reset(); action, _ = agent.predict(obs)`` over one
    episode per seed; ``episode_start``: ``"none"`` (not passed), ``"marked"`` (true at each reset)
    or ``"never"`` (always false: what the loop without it got before)."""
    env, actions = gym.make("dvp_rl/Pendulum-v0"), []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        for t in range(steps):
            kwargs = {} if episode_start == "none" else {"episode_start": np.array([t == 0 and episode_start == "marked"])}
            action, _ = agent.predict(obs, **kwargs)
            actions.append(action)
            obs, *_ = env.step(action)
    return np.array(actions)


@pytest.mark.parametrize("mpc", [{}, {"search": {"steps": [2], "rollout": 3}}], ids=["mpc", "search"])
def test_a_reset_predict_loop_without_episode_start_gets_the_controller_of_evaluate_policy(mpc):
    """Before: without episode_start the second episode was planned from the first one's warm start,
    and the first-step search never ran again."""
    plain = reset_predict_loop(pendulum_agent(**mpc), "none")
    marked = reset_predict_loop(pendulum_agent(**mpc), "marked")
    np.testing.assert_array_equal(plain, marked)
    assert not np.array_equal(reset_predict_loop(pendulum_agent(**mpc), "never")[8:], marked[8:])  # the test can tell
    one_episode = reset_predict_loop(pendulum_agent(**mpc), "none", seeds=(1,), steps=30)  # an episode going on is never reset
    np.testing.assert_array_equal(one_episode, reset_predict_loop(pendulum_agent(**mpc), "marked", seeds=(1,), steps=30))
