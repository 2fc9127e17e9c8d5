"""Ground truth: the infinite-horizon Riccati solution, multi-start, the cache, the eval callback."""

import sys

import numpy as np
import pytest
import scipy.linalg

from dvp_rl.agent import DVP
from dvp_rl.callbacks import GroundTruthEvalCallback
from dvp_rl.references.ground_truth import GroundTruth, default_horizon, ground_truth, value_errors
from dvp_rl.control.ocp import OptimalControlProblem, reference_guesses
from tests.helpers import make_unwrapped


def test_lq_ground_truth_equals_infinite_horizon_riccati(tmp_path):
    gamma = 0.9
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0")
    P = scipy.linalg.solve_discrete_are(np.sqrt(gamma) * env.A, np.sqrt(gamma) * env.B, env.Q, env.R)
    X = env.sample_states(6, 0)
    truth = ground_truth("dvp_rl/LinearQuadratic-v0", X, gamma=gamma, cache_dir=tmp_path)
    assert truth.horizon == default_horizon(env, gamma) and gamma**truth.horizon <= 1e-4
    assert truth.converged.all()
    np.testing.assert_allclose(truth.V, 0.5 * np.einsum("ni,ij,nj->n", X, P, X), rtol=1e-6)
    np.testing.assert_allclose(truth.Vx, X @ P, rtol=1e-6, atol=1e-9)


def test_cache_returns_the_stored_values_without_solving(tmp_path, monkeypatch):
    X = make_unwrapped("dvp_rl/Unicycle-v0").sample_states(4, 0)
    first = ground_truth("dvp_rl/Unicycle-v0", X, horizon=60, cache_dir=tmp_path)
    files = list(tmp_path.glob("Unicycle-v0__*.npz"))
    assert len(files) == 1

    def no_solving(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(sys.modules["dvp_rl.references.ground_truth"], "solve_states", no_solving)
    again = ground_truth("dvp_rl/Unicycle-v0", X, horizon=60, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.V, again.V)
    with pytest.raises(AssertionError, match="cache"):  # other states are another key
        ground_truth("dvp_rl/Unicycle-v0", X[:2], horizon=60, cache_dir=tmp_path)


def test_multistart_keeps_the_best_local_optimum():
    """On the pendulum the default guess can land in a much worse swing-up than another guess."""
    env = make_unwrapped("dvp_rl/Pendulum-v0")
    X = env.sample_states(3, 0)
    truth = ground_truth("dvp_rl/Pendulum-v0", X, horizon=150, cache_dir=None)
    ocp = OptimalControlProblem(env, 150, max_iter=500)
    for i, x0 in enumerate(X):
        single = [ocp.solve_best(x0, (name,)) for name in reference_guesses(env)]
        best = min(r.cost for r in single if r.converged)
        assert truth.V[i] == pytest.approx(best, rel=1e-9)  # equal up to the solver's tolerance
        assert truth.V[i] < max(r.cost for r in single if r.converged) - 0.1  # and the guesses do differ


def test_value_errors_definitions():
    truth = GroundTruth(np.zeros((3, 2)), np.array([1.0, 2.0, 5.0]), np.ones((3, 2)), np.array([True, True, False]), 10, 1.0)
    errors = value_errors(truth, np.array([1.5, 2.0, 100.0]), np.ones((3, 2)) * 2.0)
    assert errors.value_mse == pytest.approx(0.125)
    assert errors.value_rel_mse == pytest.approx(0.125 / 2.5)
    assert errors.gradient_rel_error == pytest.approx(1.0)
    assert errors.n == 2
    with pytest.raises(ValueError, match="shape"):
        value_errors(truth, np.zeros(4))


def test_eval_callback_logs_errors_that_shrink(tmp_path):
    X = make_unwrapped("dvp_rl/Unicycle-v0").sample_states(30, 11)
    truth = ground_truth("dvp_rl/Unicycle-v0", X, horizon=100, cache_dir=tmp_path)
    agent = DVP("dvp_rl/Unicycle-v0", horizon=20, n_samples=150, fit={"max_epochs": 40, "polish_steps": 50}, seed=0, checkpoint_dir=None)
    callback = GroundTruthEvalCallback(truth)
    agent.learn(3, callback=callback)
    errors = [h[2].value_rel_mse for h in callback.history]
    assert len(errors) == 3 and all(np.isfinite(errors))
    assert errors[-1] < errors[0]
