"""Dataset generation: the same dataset whatever the number of workers; bad input."""

import numpy as np
import pytest

import envs
from dvp_rl.sampling import SolverPool, SolveSpec, solve_states
from dvp_rl.value_networks import make_value_network
from tests.conftest import make_unwrapped


def test_pool_gives_the_same_dataset_as_one_process():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    X = env.sample_states(24, 0)
    net = make_value_network("gauss_residual", 3, net_arch=(8,))
    spec = SolveSpec("dvp_rl/Unicycle-v0", {}, 20, 0.99, net.export())
    local = solve_states(spec, X)
    seen = []
    with SolverPool(2) as pool:
        pooled = solve_states(spec, X, pool, progress=seen.append, chunk_size=5)
    assert sum(seen) == len(X)
    for field in ("cost", "Vx", "Vxx", "iterations", "converged", "n_transitions"):
        np.testing.assert_array_equal(getattr(local, field), getattr(pooled, field), err_msg=field)


def test_terminal_changes_reach_the_cached_problem():
    env = make_unwrapped("dvp_rl/LinearQuadratic-v0")
    X = env.sample_states(3, 0)
    zero = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5, 1.0, None), X)
    with_env = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {"w_terminal": 5.0}, 5, 1.0, "env"), X)
    assert np.all(with_env.cost > zero.cost)
    again = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5, 1.0, None), X)
    np.testing.assert_array_equal(zero.cost, again.cost)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown env id"):
        envs.make("dvp_rl/Nope-v0")
    with pytest.raises(ValueError, match="n_workers"):
        SolverPool(0)
    with pytest.raises(ValueError, match="shape"):
        solve_states(SolveSpec("dvp_rl/Unicycle-v0"), np.zeros(3))
