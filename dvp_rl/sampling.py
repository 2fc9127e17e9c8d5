"""Dataset generation: many independent DDP solves, in-process or over a local process pool.

Crocoddyl objects cannot be pickled, so a worker receives a :class:`SolveSpec` (env id,
kwargs, horizon, discount, the terminal as plain arrays) and rebuilds the problem once,
caching it between tasks. Start states are drawn by the caller, so the dataset of a
seed is the same whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from dvp_rl.ocp import BatchSolveResult, OptimalControlProblem, SolveResult, stack_results
from dvp_rl.value_networks import NetworkArrays


@dataclass(frozen=True)
class SolveSpec:
    """Everything a worker needs to rebuild and solve the problem.

    :param env_id: a registered Gymnasium id (``envs`` is imported by workers)
    :param env_kwargs: keyword arguments of ``gymnasium.make``
    :param horizon: number of running nodes T
    :param gamma: discount
    :param terminal: ``None`` (zero), ``"env"``, or a value network as :class:`NetworkArrays`
    :param max_iter: DDP iteration budget
    :param th_stop: Crocoddyl's stopping threshold
    :param guesses: initial guesses tried per state, best converged kept (``None``: the env's ``ddp_guesses``)
    """

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    horizon: int = 50
    gamma: float = 1.0
    terminal: None | str | NetworkArrays = None
    max_iter: int = 300
    th_stop: float = 1e-9
    guesses: tuple[str, ...] | None = None

    def problem_key(self) -> tuple:
        """Identifies the running models (everything but the terminal)."""
        return (self.env_id, repr(sorted(self.env_kwargs.items())), self.horizon, self.gamma, self.max_iter, self.th_stop)

    def terminal_key(self) -> str:
        if self.terminal is None or isinstance(self.terminal, str):
            return repr(self.terminal)
        digest = hashlib.sha1()
        for array in (*self.terminal.weights, *self.terminal.biases, self.terminal.feature_mean, self.terminal.feature_std):
            digest.update(np.ascontiguousarray(array).tobytes())
        return self.terminal.kind + digest.hexdigest()


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gymnasium.make`` with the dvp_rl ids registered; a clear error for unknown ids."""
    import envs  # noqa: F401  (registers the ids)

    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ValueError(f"unknown env id {env_id!r}; dvp_rl registers {list(envs.ENV_IDS)} ({exc})") from exc


# Per-process cache: problem_key -> (OptimalControlProblem, terminal_key)
_PROBLEMS: dict[tuple, list] = {}


def problem_for(spec: SolveSpec) -> OptimalControlProblem:
    """The (cached) problem of ``spec`` in this process, with its terminal up to date."""
    from dvp_rl.terminal import value_terminal

    key = spec.problem_key()
    entry = _PROBLEMS.get(key)
    if entry is None:
        env = make_env(spec.env_id, spec.env_kwargs).unwrapped
        entry = [OptimalControlProblem(env, spec.horizon, spec.gamma, None, spec.max_iter, spec.th_stop), "None"]
        _PROBLEMS.clear()  # one problem per process is enough; keeps memory flat
        _PROBLEMS[key] = entry
    ocp, current = entry
    wanted = spec.terminal_key()
    if wanted != current:
        terminal = spec.terminal
        if isinstance(terminal, NetworkArrays):
            terminal = value_terminal(terminal, ocp.env.nx, ocp.env.nu)
        ocp.set_terminal(terminal)
        entry[1] = wanted
    return ocp


def _solve_chunk(spec: SolveSpec, states: np.ndarray) -> list[SolveResult]:
    ocp = problem_for(spec)
    guesses = spec.guesses if spec.guesses is not None else ocp.env.ddp_guesses
    return [ocp.solve_best(x0, guesses) for x0 in states]


def default_workers() -> int:
    """All cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_pool(n_workers: int) -> ProcessPoolExecutor:
    """A pool of ``n_workers`` forked processes.

    Fork starts in milliseconds and needs no importable ``__main__``; it is safe here
    because workers run numpy and single-threaded Crocoddyl only (``problem.nthreads = 1``:
    Crocoddyl's OpenMP threads hang a forked pool), never torch.
    """
    if int(n_workers) < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    return ProcessPoolExecutor(max_workers=int(n_workers), mp_context=multiprocessing.get_context("fork"))


def solve_states(
    spec: SolveSpec,
    states: np.ndarray,
    pool: Executor | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
) -> BatchSolveResult:
    """Solve from every row of ``states`` (N, nx); in this process, or over ``pool``.

    :param pool: an executor from :func:`make_pool` (``None``: solve here)
    :param progress: called with the number of newly finished solves
    :param chunk_size: states per task (default: about 4 tasks per worker)
    :return: the stacked results, in the order of ``states``
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(f"states must have shape (N, nx), got {states.shape}")
    n = len(states)
    if pool is None:
        results = []
        for x0 in states:
            results.extend(_solve_chunk(spec, x0[None]))
            if progress is not None:
                progress(1)
        return stack_results(states, results, spec.horizon, problem_for(spec).env.nu)
    workers = getattr(pool, "_max_workers", 1)
    size = chunk_size or max(1, int(np.ceil(n / (4 * workers))))
    chunks = [states[i : i + size] for i in range(0, n, size)]
    futures = [pool.submit(_solve_chunk, spec, chunk) for chunk in chunks]
    results: list[SolveResult] = []
    for future, chunk in zip(futures, chunks):
        results.extend(future.result())
        if progress is not None:
            progress(len(chunk))
    nu = results[0].us.shape[1] if results else 0
    return stack_results(states, results, spec.horizon, nu)


def split_counts(n: int, parts: Sequence[float]) -> list[int]:
    """Split ``n`` into integer counts proportional to ``parts``."""
    raw = np.asarray(parts, dtype=np.float64) / np.sum(parts) * n
    counts = np.floor(raw).astype(int)
    counts[: n - counts.sum()] += 1
    return counts.tolist()
