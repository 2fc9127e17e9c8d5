"""The one MPC controller: first control of the DDP plan, warm starts per env, resets, the closed
loop, DVP.predict running it, and the solver side importing without torch."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dvp_rl.agent import DVP
from dvp_rl.control.mpc import NEW_EPISODE_THRESHOLD, SPREAD_SAMPLES, MPCController, closed_loop
from dvp_rl.control.ocp import solve_ocp
from dvp_rl.value.arrays import numpy_value
from tests.helpers import BAD_SOLVER_SETTINGS, make_unwrapped


def test_step_applies_the_first_control_of_the_cold_plan_then_warm_starts():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    x0 = env.sample_states(1, 3)[0]
    controller = MPCController(env, 20)
    first = controller.step(x0)
    reference = solve_ocp(env, x0, 20)
    np.testing.assert_array_equal(first.action, np.clip(reference.us[0], env.action_low, env.action_high))
    assert first.plan.cost == reference.cost and first.solves == 1 and first.seconds > 0
    x1 = env.dynamics(x0, first.action)
    warm = controller.step(x1)
    cold = solve_ocp(env, x1, 20)
    assert warm.plan.converged and warm.iterations < cold.iterations  # the shifted plan is a better start
    np.testing.assert_allclose(warm.action, cold.us[0], atol=1e-6)


def test_warm_starts_are_per_env_index_and_reset_drops_them():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    states = env.sample_states(2, 5)
    controller = MPCController(env, 15)
    controller.predict(states)
    assert set(controller._warm_starts) == {0, 1}
    controller.predict(states[:1], episode_start=np.array([True]))
    cold = MPCController(env, 15).step(states[0])
    assert controller._warm_starts[0].shape == (15, env.nu)
    np.testing.assert_allclose(controller._warm_starts[0][:-1], cold.plan.us[1:], atol=1e-12)
    controller.reset()
    assert controller._warm_starts == {}
    with pytest.raises(ValueError, match="episode_start must have 2 entries"):
        controller.predict(states, episode_start=np.array([True, False, True]))
    with pytest.raises(ValueError):
        controller.step(np.array([np.nan, 0.0, 0.0]))


def test_closed_loop_steps_the_env_model_and_sums_its_costs():
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0")
    x0 = env.sample_states(1, 0)[0]
    loop = closed_loop(MPCController(env, 10, terminal="env"), x0, 6)
    assert loop.xs.shape == (7, env.nx) and loop.us.shape == (6, env.nu) and loop.converged.all()
    for k in range(6):
        np.testing.assert_array_equal(loop.xs[k + 1], env.dynamics(loop.xs[k], loop.us[k]))
        assert loop.costs[k] == env.cost(loop.xs[k], loop.us[k])
    assert np.linalg.norm(loop.xs[-1]) < np.linalg.norm(x0)


def test_dvp_predict_runs_the_agents_controller():
    agent = DVP("dvp_rl/Unicycle-v0", horizon=10, n_samples=40, fit={"max_epochs": 5, "polish_steps": 0}, collect={"n_validation": 10},
                network={"net_arch": (8,)}, n_workers=1, seed=0, checkpoint_dir=None).learn(1)  # fmt: skip
    states = agent.system.sample_states(3, 11)
    controller = agent.controller()
    assert controller.horizon == agent.horizon and controller.ocp.terminal_model.arrays is agent.value_arrays
    for _ in range(3):  # warm-started calls stay equal
        expected = controller.predict(states).astype(np.float32)
        np.testing.assert_array_equal(agent.predict(states)[0], expected)
        states = np.array([agent.system.dynamics(x, u) for x, u in zip(states, expected)])


def test_the_solver_side_imports_and_solves_without_torch():
    """What a solver worker runs (sampling, ocp, terminal, value arrays, numba kernel) needs no torch."""
    code = textwrap.dedent(
        """
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is not available")

        sys.meta_path.insert(0, NoTorch())
        import numpy as np
        from dvp_rl.control.pool import SolveSpec, solve_states
        from dvp_rl.control.mpc import MPCController
        from dvp_rl.value.arrays import NetworkArrays

        rng = np.random.default_rng(0)
        sizes = (3, 8, 2)
        arrays = NetworkArrays("gauss_residual", 3, (), np.zeros(3), np.ones(3),
                               tuple(0.3 * rng.standard_normal((b, a)) for a, b in zip(sizes[:-1], sizes[1:])),
                               tuple(np.zeros(b) for b in sizes[1:]))
        batch = solve_states(SolveSpec("dvp_rl/Unicycle-v0", {}, 10, 1.0, arrays), rng.uniform(-1, 1, (3, 3)))
        assert batch.converged.all(), batch.converged
        import envs
        action = MPCController(envs.make("dvp_rl/Unicycle-v0").unwrapped, 10, arrays).step(np.array([0.5, 0.2, 0.1])).action
        assert "torch" not in sys.modules
        print("ok", action.shape)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok (2,)"


def test_multi_start_guesses_never_give_a_worse_plan_and_the_margin_skips_them_where_plan_and_value_agree():
    import torch

    from dvp_rl.value.networks import make_value_network

    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    bottom = np.array([np.pi - 0.1, 0.0])
    single = MPCController(env, 10).step(bottom)
    multi = MPCController(env, 10, guesses=("push_plus", "push_minus")).step(bottom)
    assert multi.solves == 3 and multi.plan.cost <= single.plan.cost + 1e-9
    torch.manual_seed(0)
    net = make_value_network("gauss_residual", 2, net_arch=(8,), angle_dims=(0,))
    arrays = net.export()
    always = MPCController(env, 10, arrays, guesses=("hold", "push_plus"))
    assert always.step(bottom).solves == 3
    trusting = MPCController(env, 10, arrays, guesses=("hold", "push_plus"), guess_margin=1e9)
    assert trusting.step(bottom).solves == 1  # a plan is never 1e9 above the value: no guesses
    first_plan = MPCController(env, 10, arrays).step(bottom).plan  # the same first solve as below
    doubting = MPCController(env, 10, arrays, guesses=("hold", "push_plus"), guess_margin=0.0)
    assert doubting.step(bottom).solves == (3 if first_plan.cost > numpy_value(arrays, bottom) else 1)
    with pytest.raises(ValueError, match="needs a network terminal"):
        MPCController(env, 10, None, guesses=("hold",), guess_margin=1.0)
    with pytest.raises(ValueError, match="unknown initial guesses"):
        MPCController(env, 10, guesses=("bang",))


def test_dvp_controller_settings_are_checked_saved_and_loaded(tmp_path):
    settings = dict(horizon=5, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)}, fit={"max_epochs": 3, "polish_steps": 0}, n_workers=1, seed=0,
                    checkpoint_dir=None)  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown MPCConfig field\(s\) \['bogus'\]"):
        DVP("dvp_rl/Pendulum-v0", mpc={"bogus": 1}, **settings)
    agent = DVP("dvp_rl/Pendulum-v0", mpc={"guesses": ["hold"], "guess_margin": 2.0, "max_iter": 40}, **settings).learn(1)
    controller = agent.controller()
    assert controller.guesses == ("hold",) and controller.guess_margin == 2.0 and controller.ocp.max_iter == 40
    loaded = DVP.load(agent.save(tmp_path / "agent"))
    assert loaded.controller().guesses == ("hold",) and loaded.mpc.guess_margin == 2.0


def test_a_twin_trains_over_the_real_envs_whole_speed_range():
    agent = DVP("Pendulum-v1", n_samples=10, n_workers=1, checkpoint_dir=None)
    speeds = agent.system.sample_states(2000, 0)[:, 1]
    assert agent.env_kwargs["max_start_speed"] == 8.0 and 7.5 < np.abs(speeds).max() <= 8.0
    real_starts = agent.twin.make().unwrapped.sample_states(2000, 0)[:, 1]  # the twin as a model of the env: Pendulum-v1's resets
    assert np.abs(real_starts).max() <= 1.0


def test_a_shorter_horizon_plans_to_the_episodes_end_from_the_cut_warm_start():
    from dvp_rl.control.ocp import OptimalControlProblem

    env = make_unwrapped("dvp_rl/Unicycle-v0")
    controller = MPCController(env, 20)
    x0 = env.sample_states(1, 5)[0]
    first = controller.step(x0)
    x1 = env.dynamics(x0, first.action)
    short = controller.step(x1, horizon=5)
    reference = OptimalControlProblem(env, 5).solve(x1, us_init=first.plan.us[1:6])
    assert short.plan.us.shape == (5, env.nu) and short.plan.cost == reference.cost
    np.testing.assert_array_equal(short.plan.us, reference.us)
    longer = controller.step(env.dynamics(x1, short.action))  # back to T: the 5-step warm start is extended by its last control
    assert longer.plan.us.shape == (20, env.nu) and longer.plan.converged
    with pytest.raises(ValueError, match="horizon must be an integer in 1..20"):
        controller.step(x1, horizon=21)


def test_restart_guesses_only_where_the_plan_starts_afresh():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    x0 = env.sample_states(1, 2)[0]
    restart = MPCController(env, 20, guesses=("pushes",), guess_when="restart")
    every = MPCController(env, 20, guesses=("pushes",))
    first = restart.step(x0)
    assert first.solves == 1 + 3**env.nu  # no warm start: the cold plan and every push
    x1 = env.dynamics(x0, first.action)
    assert restart.step(x1).solves == 1  # the warm start converged: one solve
    every.step(x0)
    assert every.step(x1).solves == 1 + 3**env.nu
    with pytest.raises(ValueError, match="guess_when"):
        MPCController(env, 20, guess_when="sometimes")


def test_a_time_budget_stops_the_solve_and_says_so():
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    x0 = np.array([np.pi - 0.2, 0.0])
    unlimited = MPCController(env, 60, max_iter=200, th_stop=1e-12, retry_cold=False).step(x0)
    assert unlimited.plan.converged and unlimited.iterations > 3 and not unlimited.over_budget
    tight = MPCController(env, 60, max_iter=200, th_stop=1e-12, retry_cold=False, time_budget=1e-6).step(x0)
    assert tight.iterations == 1 and tight.over_budget and not tight.plan.converged  # a solve always makes one iteration
    assert np.all(np.abs(tight.action) <= env.action_high)  # the plan so far, clipped: a safe action
    generous = MPCController(env, 60, max_iter=200, th_stop=1e-12, retry_cold=False, time_budget=30.0)
    step = generous.step(x0)  # the deadline never comes: the same optimum
    assert step.plan.converged and not step.over_budget
    assert generous._first_iteration_s[60] > 0  # what decides whether a retry or a guess may still start
    np.testing.assert_allclose(step.plan.cost, unlimited.plan.cost, rtol=1e-6)
    with pytest.raises(ValueError, match="time_budget must be a finite number of seconds > 0"):
        MPCController(env, 10, time_budget=0.0)


@pytest.mark.parametrize("kwargs, message", BAD_SOLVER_SETTINGS)
def test_controller_settings_are_checked_when_the_controller_is_made(kwargs, message):
    """Before: horizon=2.5 planned over 2 steps, max_iter=0 applied unsolved plans, th_stop=-1
    raised Crocoddyl's bare Exception at the first step."""
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    with pytest.raises(ValueError, match=re.escape(message)):
        MPCController(env, **{"horizon": 5, **kwargs})


def test_a_state_far_from_the_models_prediction_starts_a_new_episode():
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    spread = env.sample_states(SPREAD_SAMPLES, 0).std(axis=0)
    controller = MPCController(env, 10)
    x0 = np.array([1.0, 0.5])
    assert not controller.is_new_episode(x0)  # no step yet: nothing to tell
    x1 = env.dynamics(x0, controller.step(x0).action)
    assert not controller.is_new_episode(x1) and not controller.is_new_episode(x1 + [2 * np.pi, 0.0])  # angles wrapped
    for dim in range(env.nx):
        offset = np.eye(env.nx)[dim] * spread[dim]
        assert not controller.is_new_episode(x1 + 0.9 * NEW_EPISODE_THRESHOLD * offset)
        assert controller.is_new_episode(x1 - 1.1 * NEW_EPISODE_THRESHOLD * offset)
    assert not controller.is_new_episode(x1 + [3.0, 0.0], index=1)  # per env index
    controller.reset(0)
    assert not controller.is_new_episode(x1 + [3.0, 0.0])  # reset: a fresh start, as at construction
    controller.step(x0)
    with pytest.raises(ValueError, match=r"x must have shape \(2,\)"):
        controller.is_new_episode(np.zeros(3))


def test_predict_without_episode_start_resets_an_env_whose_state_starts_a_new_episode():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    plain, marked, continued = (MPCController(env, 15) for _ in range(3))
    states = env.sample_states(2, 7)
    for t in range(3):  # two envs going on with their episodes are not reset: the same actions as with episode_start
        actions = plain.predict(states)
        np.testing.assert_array_equal(actions, marked.predict(states, episode_start=np.array([t == 0] * 2)))
        np.testing.assert_array_equal(actions, continued.predict(states, episode_start=np.array([t == 0] * 2)))
        states = np.array([env.dynamics(x, u) for x, u in zip(states, actions)])
    new = np.array([[1.5, -1.0, 0.5], states[1]])  # env 0 starts a new episode, env 1 goes on
    actions = plain.predict(new)
    np.testing.assert_array_equal(actions, marked.predict(new, episode_start=np.array([True, False])))
    np.testing.assert_array_equal(actions[0], MPCController(env, 15).step(new[0]).action)  # a cold start
    before = continued.predict(new, episode_start=np.array([False, False]))  # what predict(new) did before: a warm start
    assert not np.array_equal(actions[0], before[0]) and np.array_equal(actions[1], before[1])


@pytest.mark.parametrize("bad", [0, 1.5, True])
def test_line_search_steps_are_checked_by_the_controller_and_its_config(bad):
    from dvp_rl.control.config import MPCConfig

    env = make_unwrapped("dvp_rl/Pendulum-v0")
    with pytest.raises(ValueError, match="line_search_steps must be an integer >= 1"):
        MPCController(env, 10, line_search_steps=bad)
    with pytest.raises(ValueError, match="mpc.line_search_steps must be an integer >= 1"):
        MPCConfig(line_search_steps=bad)
    controller = MPCConfig(line_search_steps=3).make(env, None, 1.0, 10, 50, 1e-6)
    assert list(controller.ocp.solver.alphas) == [1.0, 0.5, 0.25] and controller.settings()["line_search_steps"] == 3
    assert list(controller._problem(4).solver.alphas) == [1.0, 0.5, 0.25]  # the shortened problems too
