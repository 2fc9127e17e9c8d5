"""The Crocoddyl bridge: value gradients against finite differences, the LQ closed form, bounds, failures."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvp_rl.control.ocp import ModelSolver, OptimalControlProblem, solve_ocp
from envs.linear_quadratic import LinearQuadraticEnv
from tests.helpers import BAD_SOLVER_SETTINGS, make_unwrapped


def riccati(env, horizon: int, gamma: float):
    """Finite-horizon discounted Riccati recursion of the LQ env: V_0(x) = 0.5 x^T P x, returns P (2, 2)."""
    A, B, Q, R = env.A, env.B, env.Q, env.R
    P = gamma**horizon * env.QT
    for k in reversed(range(horizon)):
        Qk, Rk = gamma**k * Q, gamma**k * R
        K = np.linalg.solve(Rk + B.T @ P @ B, B.T @ P @ A)
        P = Qk + A.T @ P @ (A - B @ K)
    return P


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("w_terminal", [0.0, 3.0])
def test_linear_quadratic_value_equals_riccati(gamma, w_terminal, rng):
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0", w_terminal=w_terminal)
    horizon = 30
    P = riccati(env, horizon, gamma)
    ocp = OptimalControlProblem(env, horizon, gamma, terminal="env")
    for x0 in env.sample_states(4, rng):
        r = ocp.solve(x0)
        assert r.converged
        np.testing.assert_allclose(r.cost, 0.5 * x0 @ P @ x0, rtol=1e-8)
        np.testing.assert_allclose(r.Vx, P @ x0, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r.Vxx, P, rtol=1e-8)


@pytest.mark.parametrize(
    "env_id, gamma",
    [("dvp_rl/Unicycle-v0", 1.0), ("dvp_rl/Unicycle-v0", 0.95), ("dvp_rl/CartPole-v0", 0.99), ("dvp_rl/Pendulum-v0", 1.0)],
)
def test_value_gradient_matches_finite_difference_of_optimal_cost(env_id, gamma):
    env = make_unwrapped(env_id)
    ocp = OptimalControlProblem(env, 50, gamma, th_stop=1e-10, max_iter=500)
    x0 = {"dvp_rl/Pendulum-v0": np.array([0.4, -0.3])}.get(env_id, env.sample_states(1, 7)[0])
    r = ocp.solve(x0)
    assert r.converged
    h = 1e-4  # smaller steps drown in the solver's own tolerance (seen: 1e-5 gave 6e-5 noise once)
    fd = np.empty(env.nx)
    for i in range(env.nx):
        e = np.zeros(env.nx)
        e[i] = h
        # warm-start from the solution so every perturbed solve lands in the same local optimum
        # (Crocoddyl's box-FDDP can stall when warm-started on saturated controls: then start cold)
        plus, minus = (ocp.solve(x, us_init=r.us) for x in (x0 + e, x0 - e))
        plus, minus = (p if p.converged else ocp.solve(x) for p, x in ((plus, x0 + e), (minus, x0 - e)))
        assert plus.converged and minus.converged
        fd[i] = (plus.cost - minus.cost) / (2 * h)
    np.testing.assert_allclose(r.Vx, fd, rtol=1e-5, atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_discount_weights_nodes_by_gamma_power():
    env = make_unwrapped("dvp_rl/Unicycle-v0", w_terminal=2.0)
    gamma, horizon = 0.8, 10
    x0 = np.array([0.5, -0.3, 0.2])
    r = solve_ocp(env, x0, horizon, terminal="env", gamma=gamma)
    recomputed = sum(gamma**k * env.cost(r.xs[k], r.us[k]) for k in range(horizon)) + gamma**horizon * env.terminal_cost(r.xs[-1])
    assert r.cost == pytest.approx(recomputed, rel=1e-10)
    for k in range(horizon):  # the plan is dynamically feasible
        np.testing.assert_allclose(r.xs[k + 1], env.dynamics(r.xs[k], r.us[k]), atol=1e-8)


def test_plans_respect_the_action_space():
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    r = solve_ocp(env, np.array([np.pi - 0.1, 0.0]), 60)
    assert np.all(r.us <= env.action_high + 1e-9) and np.all(r.us >= env.action_low - 1e-9)
    assert np.isclose(np.abs(r.us).max(), 2.0)  # the swing-up saturates the torque


def test_non_convergence_is_reported_not_raised():
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    r = OptimalControlProblem(env, 50, max_iter=1).solve(np.array([3.0, 0.0]))
    assert not r.converged
    assert r.iterations == 1


def test_batch_solve_and_bad_input():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    X = env.sample_states(3, 0)
    batch = solve_ocp(env, X, 20)
    assert batch.cost.shape == (3,) and batch.Vx.shape == (3, 3) and batch.Vxx.shape == (3, 3, 3)
    assert batch.converged.all()
    single = solve_ocp(env, X[1], 20)
    assert single.cost == pytest.approx(batch.cost[1], rel=1e-12)
    for x0, us, x_final in zip(X, batch.us, batch.x_final):  # x_final: the plan rolled out by the env's own step
        for u in us:
            x0 = env.dynamics(x0, u)
        np.testing.assert_allclose(x_final, x0, atol=1e-8)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        solve_ocp(env, np.zeros(4), 20)
    with pytest.raises(ValueError, match="finite"):
        solve_ocp(env, np.array([np.nan, 0.0, 0.0]), 20)
    with pytest.raises(ValueError, match="horizon"):
        OptimalControlProblem(env, 0)
    with pytest.raises(ValueError, match="gamma"):
        OptimalControlProblem(env, 10, gamma=1.5)
    with pytest.raises(TypeError, match="differentiable env"):
        OptimalControlProblem(object(), 10)


@pytest.mark.parametrize("max_control, max_iter", [(100.0, 300), (0.5, 300), (0.5, 5)])
def test_transition_count_bounds_the_real_node_evaluations(max_control, max_iter):
    """model_evaluations >= the running-model calc calls, counted on the Python LQ model, and within 20%."""
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0", max_control=max_control)
    ocp = OptimalControlProblem(env, 20, max_iter=max_iter)
    calls = [0]
    dynamics = env._dynamics

    def counted(x, u):
        calls[0] += 1
        return dynamics(x, u)

    env._dynamics = counted
    for x0 in env.sample_states(3, 0) * 3:
        calls[0] = 0
        r = ocp.solve(x0)
        assert calls[0] <= r.model_evaluations <= 1.2 * calls[0]


def test_continuation_guess_escapes_the_long_horizon_local_optimum():
    """At T=100 the named guesses land the pendulum in a poor swing (V ~7.0 from 0.86 rad); solving
    T=50 first and holding its end state finds a plan that costs about a third, and that plan is real:
    rolling its controls out through the env's own step equations gives the same cost."""
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    ocp = OptimalControlProblem(env, 100)
    x0 = np.array([0.86055566, -0.46042657])
    named = ocp.solve_best(x0, ("hold", "zero_rollout", "push_plus", "push_minus"))
    cont = ocp.solve_best(x0, ("continuation",))
    assert named.converged and cont.converged
    assert cont.cost < 0.5 * named.cost
    x, rollout = x0.copy(), 0.0
    for u in cont.us:
        rollout += env.cost(x, u)
        x = env.dynamics(x, u)
    assert cont.cost == pytest.approx(rollout, rel=1e-9)
    # the short solve (T=50) is a lower bound of the T=100 value (running costs are >= 0)
    short = OptimalControlProblem(env, 50).solve_best(x0, env.ddp_guesses)
    assert short.cost <= cont.cost + 1e-9
    # its transitions are counted: more than the long solve's own
    assert cont.model_evaluations > ocp.solve(x0, *ocp.initial_guess(x0, "continuation")).model_evaluations


class RaisingLinearQuadraticEnv(LinearQuadraticEnv):
    """The LQ env whose hook ``hook`` misbehaves from states with position above 0.5: it raises
    ``error`` (an exception instance), or returns ``bad`` instead of its value when ``error`` is None."""

    def __init__(self, hook: str, error: BaseException | None = None, bad: object = None) -> None:
        super().__init__(w_terminal=1.0)
        self.hook, self.error, self.bad = hook, error, bad

    def _misbehaving(self, name: str, x: np.ndarray, value: object) -> object:
        if name != self.hook or x[0] <= 0.5:
            return value
        if self.error is not None:
            raise self.error
        return self.bad

    def _dynamics(self, x, u):
        return self._misbehaving("_dynamics", x, super()._dynamics(x, u))

    def _cost(self, x, u):
        return self._misbehaving("_cost", x, super()._cost(x, u))

    def _dynamics_derivatives(self, x, u):
        return self._misbehaving("_dynamics_derivatives", x, super()._dynamics_derivatives(x, u))

    def _cost_derivatives(self, x, u):
        return self._misbehaving("_cost_derivatives", x, super()._cost_derivatives(x, u))

    def _terminal_cost(self, x):
        return self._misbehaving("_terminal_cost", x, super()._terminal_cost(x))


HOOKS = ("_dynamics", "_cost", "_dynamics_derivatives", "_cost_derivatives", "_terminal_cost")


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("error", [ValueError("user bug"), RuntimeError("user bug"), ZeroDivisionError("user bug"), KeyError("user bug")])
def test_an_exception_of_the_env_reaches_the_caller_with_its_traceback(hook, error):
    # Before: the exception crossed Crocoddyl's C++ and aborted the interpreter (exit code 134)
    env = RaisingLinearQuadraticEnv(hook, error)
    ocp = OptimalControlProblem(env, 10, terminal="env")
    with pytest.raises(type(error), match="user bug") as info:
        ocp.solve(np.array([0.8, 0.0]))
    assert info.value is error
    frames = [entry.name for entry in info.traceback]
    assert frames[-1] == "_misbehaving" and hook in frames  # the user's own frames are kept
    # the problem stays usable: a later solve that does not reach the bad states is a normal one
    assert ocp.solve(np.array([-0.5, 0.0])).converged
    with pytest.raises(type(error)):
        solve_ocp(env, np.array([[-0.5, 0.0], [0.8, 0.0]]), 10)


@pytest.mark.parametrize("hook, bad, message", [
    ("_dynamics", np.zeros(3), r"RaisingLinearQuadraticEnv._dynamics\(x, u\) must have 2 entries"),
    ("_dynamics_derivatives", (np.eye(2),), r"_dynamics_derivatives\(x, u\) must return 2 arrays"),
    ("_cost_derivatives", (np.zeros(2), np.zeros(1), np.eye(3), np.zeros((2, 1)), np.eye(1)), r"\[2\] \(Lxx\) must have 4 entries"),
])  # fmt: skip
def test_a_wrong_shape_from_the_env_is_a_clear_error(hook, bad, message):
    with pytest.raises(ValueError, match=message):
        solve_ocp(RaisingLinearQuadraticEnv(hook, bad=bad), np.array([0.8, 0.0]), 10)


@pytest.mark.parametrize("hook, bad", [("_dynamics", np.full(2, np.nan)), ("_cost", np.nan), ("_dynamics_derivatives", (np.eye(2), np.full((2, 1), np.nan)))])
def test_nan_from_the_env_is_a_failed_solve_not_an_error(hook, bad):
    assert not solve_ocp(RaisingLinearQuadraticEnv(hook, bad=bad), np.array([0.8, 0.0]), 10).converged


@pytest.mark.parametrize("kwargs, message", BAD_SOLVER_SETTINGS)
def test_settings_are_checked_when_the_problem_is_made(kwargs, message):
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0")
    with pytest.raises(ValueError, match=re.escape(message)):
        OptimalControlProblem(env, **{"horizon": 5, **kwargs})
    with pytest.raises(ValueError, match=re.escape(message)):
        solve_ocp(env, np.zeros(2), **{"horizon": 5, **kwargs})
    if "horizon" not in kwargs:
        ocp = OptimalControlProblem(env, 5)
        with pytest.raises(ValueError, match=re.escape(message)):
            ModelSolver(ocp.running_models, ocp.terminal_model, **kwargs)


@settings(max_examples=25, deadline=None)
@given(horizon=st.floats(0.0, 1e4).filter(lambda h: not h.is_integer()))
def test_a_fractional_horizon_is_never_truncated(horizon):
    with pytest.raises(ValueError, match=re.escape(f"horizon must be an integer >= 1, got {horizon!r}")):
        OptimalControlProblem(make_unwrapped("dvp_rl/LinearQuadratic-v0"), horizon)


def test_a_deadline_stops_the_solve_between_iterations():
    """A past deadline stops the solve after its first iteration with that iteration's iterate (the
    same as ``max_iter=1``); a far one changes nothing; the solver runs normally afterwards."""
    import time

    env = make_unwrapped("dvp_rl/Pendulum-v0")
    ocp = OptimalControlProblem(env, 60, max_iter=200, th_stop=1e-12)
    x0 = np.array([np.pi - 0.2, 0.0])
    free = ocp.solve(x0)
    assert free.converged and free.iterations > 3 and not free.interrupted
    one = ocp.solve(x0, max_iter=1)
    stopped = ocp.solve(x0, deadline=time.perf_counter() - 1.0)
    assert stopped.interrupted and not stopped.converged and stopped.iterations == 1
    np.testing.assert_array_equal(stopped.us, one.us)
    np.testing.assert_array_equal(stopped.xs, one.xs)
    assert stopped.cost == one.cost and stopped.model_evaluations == one.model_evaluations
    far = ocp.solve(x0, deadline=time.perf_counter() + 3600.0)
    assert not far.interrupted and far.iterations == free.iterations
    assert ocp.deadline.first_iteration > 0  # kept after the solve, for a caller deciding whether another fits
    np.testing.assert_array_equal(far.us, free.us)
    again = ocp.solve(x0)  # the deadline does not outlive its solve
    assert not again.interrupted and again.iterations == free.iterations


def test_line_search_steps_set_the_step_lengths_tried_and_keep_the_optimum(rng):
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0", w_terminal=3.0)
    ocp = OptimalControlProblem(env, 30, 0.9, terminal="env", line_search_steps=3)
    assert list(ocp.solver.alphas) == [1.0, 0.5, 0.25]
    P = riccati(env, 30, 0.9)
    for x0 in env.sample_states(3, rng):
        r = ocp.solve(x0)
        assert r.converged
        np.testing.assert_allclose(r.cost, 0.5 * x0 @ P @ x0, rtol=1e-8)
    pendulum = make_unwrapped("dvp_rl/Pendulum-v0")
    x0 = np.array([np.pi - 0.2, 0.0])
    short = OptimalControlProblem(pendulum, 60, max_iter=300, th_stop=1e-12, line_search_steps=4).solve(x0)
    full = OptimalControlProblem(pendulum, 60, max_iter=300, th_stop=1e-12).solve(x0)
    assert short.converged and full.converged
    np.testing.assert_allclose(short.cost, full.cost, rtol=1e-6)  # the same swing-up, found with fewer trials per iteration
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match="line_search_steps"):
            OptimalControlProblem(env, 10, line_search_steps=bad)
