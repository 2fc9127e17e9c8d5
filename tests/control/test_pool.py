"""The solver pool (dvp_rl.control.pool): the same dataset whatever the number of workers; bad input.
Parallel and distributed solving: local workers and Ray give the in-process dataset; dead
workers and hung solves are reported, counted and resampled without losing finished work."""

import os
import signal
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

import envs
from dvp_rl.agent import DVP
from dvp_rl.references.ground_truth import ground_truth
from dvp_rl.control.pool import ParallelConfig, SolverPool, SolveSpec, default_workers, solve_states
from dvp_rl.value.networks import make_value_network
from envs.linear_quadratic import LinearQuadraticEnv
from tests.helpers import make_unwrapped

CRASH = (0.5, 0.5)
HANG = (-0.5, -0.5)
TIMEOUT = 1.0  # s; a healthy solve here takes about a millisecond


class FaultyLinearQuadraticEnv(LinearQuadraticEnv):
    """The LQ env with start states on a grid; its dynamics end the process (``os._exit(3)``)
    when evaluated at a state of ``crash_at``, hang at a state of ``hang_at``, raise a
    ``ValueError`` (a bug of the user's env) at a state of ``raise_at``, and have the process
    killed by ``SIGKILL`` (as the OOM killer does) at a state of ``kill_at``."""

    def __init__(self, crash_at=(), hang_at=(), raise_at=(), kill_at=(), grid: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.crash_at = [np.asarray(x, dtype=np.float64) for x in crash_at]
        self.hang_at = [np.asarray(x, dtype=np.float64) for x in hang_at]
        self.raise_at = [np.asarray(x, dtype=np.float64) for x in raise_at]
        self.kill_at = [np.asarray(x, dtype=np.float64) for x in kill_at]
        self.grid = float(grid)

    def sample_states(self, n, rng=None):
        return np.round(super().sample_states(n, rng) / self.grid) * self.grid

    def _dynamics(self, x, u):
        if any(np.array_equal(x, c) for c in self.crash_at):
            os._exit(3)
        if any(np.array_equal(x, h) for h in self.hang_at):
            time.sleep(3600)
        if any(np.array_equal(x, r) for r in self.raise_at):
            raise ValueError(f"user bug in _dynamics at {x}")
        if any(np.array_equal(x, k) for k in self.kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._dynamics(x, u)


if "dvp_test/FaultyLQ-v0" not in gym.registry:
    gym.register(id="dvp_test/FaultyLQ-v0", entry_point=f"{__name__}:FaultyLinearQuadraticEnv", max_episode_steps=200)
#: "module:id" so that fresh worker processes (Ray) import this module, which registers the id
FAULTY_ID = f"{__name__}:dvp_test/FaultyLQ-v0"
FAULTS = {"crash_at": (CRASH,), "hang_at": (HANG,)}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join(p for p in (here, os.path.dirname(here), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


def faulty_states() -> np.ndarray:
    """12 grid states, the crashing one in the second chunk of 4 and the hanging one in the third."""
    states = np.array([[x, v] for x in (-1.0, 0.0, 1.0) for v in (-1.0, 0.0, 1.0, 0.5)])
    states[5], states[9] = CRASH, HANG
    return states


def check_lost_and_resampled(pool: SolverPool, chunk_size: int) -> None:
    states = faulty_states()
    fresh = np.array([[0.25, -0.75], [-0.25, 0.75]])
    lost, seen, asked = [], [], []

    def resample(k):
        asked.append(k)
        return fresh[:k]

    batch = solve_states(SolveSpec(FAULTY_ID, FAULTS, 5), states, pool, seen.append, chunk_size, resample, lost.append)
    assert asked == [2] and sum(seen) == len(states)
    assert [tuple(x.state) for x in lost] == [CRASH, HANG]
    assert "died" in lost[0].reason  # the local pool adds "(exit code 3)"
    assert "solve_timeout" in lost[1].reason
    expected = states.copy()
    expected[[5, 9]] = fresh
    np.testing.assert_array_equal(batch.x0, expected)
    # every other state kept its own result, equal to an in-process solve
    reference = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), expected)
    for field in ("cost", "Vx", "Vxx", "iterations", "converged", "model_evaluations"):
        np.testing.assert_array_equal(getattr(batch, field), getattr(reference, field), err_msg=field)


def test_local_pool_isolates_reports_and_resamples_lost_solves(caplog):
    with SolverPool(2, solve_timeout=TIMEOUT) as pool:
        check_lost_and_resampled(pool, chunk_size=4)  # the faulty states share chunks with healthy ones
        # the pool goes on after replacing its dead workers
        X = faulty_states()[:4]
        np.testing.assert_array_equal(solve_states(SolveSpec(FAULTY_ID, FAULTS, 5), X, pool).cost,
                                      solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), X).cost)
    assert sum("lost the solve" in r.getMessage() for r in caplog.records if r.levelname == "WARNING") == 2


def test_ground_truth_keeps_lost_states_unconverged_and_uncached(tmp_path):
    states = faulty_states()
    truth = ground_truth(FAULTY_ID, states, horizon=10, env_kwargs=FAULTS, cache_dir=tmp_path,
                         parallel=ParallelConfig(2, solve_timeout=TIMEOUT))
    lost = np.zeros(len(states), dtype=bool)
    lost[[5, 9]] = True
    assert np.array_equal(~truth.converged, lost)
    assert np.all(np.isnan(truth.V[lost])) and np.all(np.isfinite(truth.V[~lost]))
    assert list(tmp_path.iterdir()) == []  # a rerun solves them again


def test_worker_exceptions_are_raised_not_counted():
    states = faulty_states()
    with SolverPool(2) as pool:
        with pytest.raises(ValueError, match="unknown env id"):
            solve_states(SolveSpec("dvp_rl/Nope-v0"), states, pool)
        bad = states.copy()
        bad[1], bad[6] = HANG, np.nan  # the first task hangs (no timeout) while the second raises
        with pytest.raises(ValueError, match="finite"):
            solve_states(SolveSpec(FAULTY_ID, {"hang_at": (HANG,)}, 5), bad, pool, chunk_size=4)
        # the hung task was stopped with the call: the next call gets its own replies
        batch = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), states[::-1], pool, chunk_size=2)
    np.testing.assert_array_equal(batch.cost, solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), states[::-1]).cost)


class RecordLostSolves(BaseCallback):
    """Reads ``ddp/lost_solves`` at each iteration's end, before the logger's dump."""

    def __init__(self) -> None:
        super().__init__()
        self.values = []

    def _on_step(self) -> bool:
        self.values.append(self.model.logger.name_to_value["ddp/lost_solves"])
        return True


def faulty_agent(**kwargs) -> DVP:
    """Crashes only: a hang costs ``TIMEOUT`` per try, and its handling is the crash's (tested above)."""
    return DVP(FAULTY_ID, env_kwargs={"crash_at": (CRASH,)}, horizon=5, n_samples=40, collect={"n_validation": 10}, network={"net_arch": (8,)},
               fit={"max_epochs": 10, "polish_steps": 5}, parallel=ParallelConfig(solve_timeout=TIMEOUT), seed=3, checkpoint_dir=None, **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def local_faulty_run() -> tuple[DVP, list]:
    record = RecordLostSolves()
    return faulty_agent(n_workers=2).learn(1, callback=record), record.values


def test_agent_counts_and_resamples_lost_solves(local_faulty_run):
    agent, logged = local_faulty_run
    assert agent.iteration == 1
    assert logged == [agent.lost_solves] and agent.lost_solves > 0


def test_defaults_and_bad_settings():
    agent = DVP("dvp_rl/LinearQuadratic-v0", n_samples=10, checkpoint_dir=None)
    assert agent.parallel == ParallelConfig(default_workers(), "local", None, None) and agent.n_workers == default_workers()
    with pytest.raises(ValueError, match="backend"):
        SolverPool(2, backend="spark")
    with pytest.raises(ValueError, match="ray_address"):
        SolverPool(2, ray_address="auto")
    with pytest.raises(ValueError, match="solve_timeout"):
        SolverPool(2, solve_timeout=0)
    with pytest.raises(ValueError, match="backend"):
        DVP("dvp_rl/LinearQuadratic-v0", n_samples=10, parallel=ParallelConfig(backend="threads"))
    with pytest.raises(ValueError, match="n_workers"):
        DVP("dvp_rl/LinearQuadratic-v0", n_samples=10, n_workers=0)
    with pytest.raises(ValueError, match="conflicts"):
        DVP("dvp_rl/LinearQuadratic-v0", n_samples=10, n_workers=2, parallel=ParallelConfig(n_workers=3))
    assert ParallelConfig(1).in_process and ParallelConfig(1).make_pool() is None
    assert not ParallelConfig(1, solve_timeout=5.0).in_process


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'dvp_rl\[ray\]'"):
        SolverPool(2, backend="ray")


@pytest.mark.ray
def test_ray_gives_the_in_process_dataset(ray_session):
    X = gym.make("dvp_rl/Unicycle-v0").unwrapped.sample_states(16, 0)
    net = make_value_network("gauss_residual", 3, net_arch=(8,))
    spec = SolveSpec("dvp_rl/Unicycle-v0", {}, 20, 0.99, net.export())
    seen = []
    with SolverPool(backend="ray") as pool:
        assert pool.n_workers == 2  # the CPUs of the cluster
        distributed = solve_states(spec, X, pool, progress=seen.append, chunk_size=3)
    assert sum(seen) == len(X) and ray_session.is_initialized()  # a Ray it did not start stays up
    local = solve_states(spec, X)
    for field in ("cost", "Vx", "Vxx", "iterations", "converged", "model_evaluations"):
        np.testing.assert_array_equal(getattr(local, field), getattr(distributed, field), err_msg=field)


@pytest.mark.ray
def test_ray_isolates_reports_and_resamples_lost_solves(ray_session):
    # one state per task: every death costs a Ray worker restart (seconds), and the chunk
    # isolation above does not depend on the backend
    with SolverPool(2, backend="ray", solve_timeout=TIMEOUT) as pool:
        check_lost_and_resampled(pool, chunk_size=1)
    with SolverPool(2, backend="ray") as pool, pytest.raises(ValueError, match="unknown env id"):
        solve_states(SolveSpec("dvp_rl/Nope-v0"), np.zeros((3, 2)), pool)


@pytest.mark.ray
def test_agent_on_ray_learns_what_it_learns_locally(ray_session):
    settings = dict(horizon=5, n_samples=60, collect={"n_validation": 10}, network={"net_arch": (8,)}, fit={"max_epochs": 20}, seed=0, checkpoint_dir=None)
    local = DVP("dvp_rl/LinearQuadratic-v0", n_workers=2, **settings).learn(2)
    distributed = DVP("dvp_rl/LinearQuadratic-v0", parallel=ParallelConfig(backend="ray"), **settings).learn(2, progress_bar=True)
    assert distributed.num_timesteps == local.num_timesteps
    X = local.system.sample_states(10, 7)
    np.testing.assert_allclose(distributed.value(X), local.value(X), rtol=1e-9)


RAISE = KILL = (0.5, -0.5)  # a grid state that faulty_states() lacks


def check_env_exception_reaches_the_caller(pool: SolverPool) -> None:
    """A ``ValueError`` raised by the env's ``_dynamics`` in a worker reaches the caller with the
    worker's traceback; it is neither lost nor resampled, and the pool goes on."""
    states = faulty_states()
    states[6] = RAISE
    lost = []
    with pytest.raises(ValueError, match="user bug in _dynamics") as info:  # before: the state was lost and resampled
        solve_states(SolveSpec(FAULTY_ID, {"raise_at": (RAISE,)}, 5), states, pool, None, 4, lambda k: np.zeros((k, 2)), lost.append)
    assert lost == []
    cause = info.value.__cause__  # the local pool's _WorkerTraceback; Ray's own RayTaskError shows it in its message
    assert "in _dynamics" in (str(cause) if cause is not None else str(info.value))
    np.testing.assert_array_equal(solve_states(SolveSpec(FAULTY_ID, {}, 5), states[:4], pool).cost,
                                  solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), states[:4]).cost)


def test_an_exception_of_the_env_in_a_worker_reaches_the_caller():
    # Before: the worker aborted (signal 6) and the state was silently resampled as lost
    with SolverPool(2) as pool:
        check_env_exception_reaches_the_caller(pool)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_learn_raises_the_exception_of_the_env(n_workers):
    agent = DVP(FAULTY_ID, env_kwargs={"raise_at": (RAISE,)}, horizon=5, n_samples=40, collect={"n_validation": 10}, network={"net_arch": (8,)},
                fit={"max_epochs": 10}, seed=3, checkpoint_dir=None, n_workers=n_workers)  # fmt: skip
    with pytest.raises(ValueError, match="user bug in _dynamics"):
        agent.learn(1)


def check_killed_worker(pool: SolverPool, died: str) -> None:
    """A worker killed (SIGKILL) in the middle of a chunk: the state at fault is reported lost and
    resampled, every other state keeps its own result (its chunk-mates are solved again)."""
    states = faulty_states()
    states[6] = KILL
    fresh = np.array([[0.25, -0.75]])
    lost = []
    batch = solve_states(SolveSpec(FAULTY_ID, {"kill_at": (KILL,)}, 5), states, pool, None, 4, lambda k: fresh[:k], lost.append)
    assert [tuple(x.state) for x in lost] == [KILL] and died in lost[0].reason
    states[6] = fresh[0]
    np.testing.assert_array_equal(batch.x0, states)
    reference = solve_states(SolveSpec("dvp_rl/LinearQuadratic-v0", {}, 5), states)
    for field in ("cost", "Vx", "Vxx", "iterations", "converged", "model_evaluations"):
        np.testing.assert_array_equal(getattr(batch, field), getattr(reference, field), err_msg=field)


def test_local_worker_killed_mid_task_loses_only_its_state():
    with SolverPool(2) as pool:
        check_killed_worker(pool, "killed by signal 9")


@pytest.mark.ray
def test_ray_worker_killed_mid_task_loses_only_its_state(ray_session):
    with SolverPool(2, backend="ray") as pool:
        check_killed_worker(pool, "Ray worker died")
        check_env_exception_reaches_the_caller(pool)  # an exception of the env is no fault: raised, not lost


def test_a_run_whose_solves_are_lost_names_the_losses_not_max_iter():
    """Every state crashes its worker: the iteration fails with the reason, not with advice about max_iter."""
    grid = [(x, v) for x in np.arange(-2.0, 2.01, 0.5) for v in np.arange(-2.0, 2.01, 0.5) if (x, v) != (0.0, 0.0)]  # the goal is checked here
    agent = DVP(FAULTY_ID, env_kwargs={"crash_at": grid}, horizon=5, n_samples=10, collect={"n_validation": 5}, network={"net_arch": (8,)}, fit={"max_epochs": 3},
                n_workers=2, seed=0, checkpoint_dir=None)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"solves were lost \(its worker process died \(exit code 3\)\); raise the solve timeout"):
        agent.learn(1)

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
    for field in ("cost", "Vx", "Vxx", "iterations", "converged", "model_evaluations"):
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
