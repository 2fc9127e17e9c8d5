"""Dataset generation: many independent DDP solves, in this process, over local worker
processes, or as Ray tasks on a cluster.

Crocoddyl objects cannot be pickled, so a worker receives a :class:`SolveSpec` (env id,
kwargs, horizon, discount, the terminal as plain arrays) and rebuilds the problem once,
caching it between tasks. Start states are drawn by the caller, so the dataset of a
seed is the same whatever the number of workers and the backend. A :class:`SolverPool`
survives dead workers and hung solves (see its docstring).
"""

from __future__ import annotations

import faulthandler
import hashlib
import logging
import multiprocessing
import os
import pickle
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as connection_wait
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple

import numpy as np

import envs
from dvp_rl.control.ocp import BatchSolveResult, OptimalControlProblem, SolveResult, stack_results
from dvp_rl.value.arrays import NetworkArrays

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolveSpec:
    """Everything a worker needs to rebuild and solve the problem.

    :param env_id: a registered Gymnasium id (``envs`` is imported by workers); an id that your own
        module registers reaches fresh worker processes (Ray) as ``"my_module:my/System-v0"``
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


# Per-process cache: problem_key -> (OptimalControlProblem, terminal_key)
_PROBLEMS: dict[tuple, list] = {}


def problem_for(spec: SolveSpec) -> OptimalControlProblem:
    """The (cached) problem of ``spec`` in this process, with its terminal up to date."""
    key = spec.problem_key()
    entry = _PROBLEMS.get(key)
    if entry is None:
        env = envs.make(spec.env_id, spec.env_kwargs).unwrapped
        entry = [OptimalControlProblem(env, spec.horizon, spec.gamma, None, spec.max_iter, spec.th_stop), "None"]
        _PROBLEMS.clear()  # one problem per process is enough; keeps memory flat
        _PROBLEMS[key] = entry
    ocp, current = entry
    wanted = spec.terminal_key()
    if wanted != current:
        ocp.set_terminal(spec.terminal)
        entry[1] = wanted
    return ocp


def _solve_chunk(spec: SolveSpec, states: np.ndarray, solve_timeout: float | None = None) -> list[SolveResult]:
    """Solve from each row of ``states``; the task that workers run.

    With ``solve_timeout`` (worker processes only, never the caller's), a watchdog is armed
    around each solve: :func:`faulthandler.dump_traceback_later` runs in a C thread, so it
    fires even while Crocoddyl holds the GIL; it prints where the solve hung and ends the
    process, which the pool then reports as a lost solve.
    """
    ocp = problem_for(spec)
    guesses = spec.guesses if spec.guesses is not None else ocp.env.ddp_guesses
    results = []
    for x0 in states:
        if solve_timeout is not None:
            faulthandler.dump_traceback_later(solve_timeout, exit=True)
        try:
            results.append(ocp.solve_best(x0, guesses))
        finally:
            if solve_timeout is not None:
                faulthandler.cancel_dump_traceback_later()
    return results


def default_workers() -> int:
    """All cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LostSolve(NamedTuple):
    """A solve that never came back: its start ``state`` (nx,) and the ``reason`` (worker died, timed out)."""

    state: np.ndarray
    reason: str


class _WorkerLost(Exception):
    """A task whose worker died or was stopped: its states have no result."""


class _WorkerTraceback(Exception):
    """The traceback of an exception raised in a worker process (shown as the cause)."""


def _local_worker(conn: Connection, inherited: list[Connection]) -> None:
    """Loop of a forked worker: receive ``(spec, states, solve_timeout)``, send ``("ok", results)``
    or ``("error", (exception, traceback))``; ``None`` or a closed pipe ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # on Ctrl-C the parent stops its workers
    for other in inherited:  # the parent's ends of the other workers' pipes, copied by fork
        other.close()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", _solve_chunk(*task))
        except Exception as exc:  # a bug or bad input: the caller re-raises it
            reply = ("error", (exc, traceback.format_exc()))
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an exception that cannot be pickled
            conn.send(("error", (RuntimeError(f"{type(exc).__name__}: {exc}"), traceback.format_exc())))


class _LocalWorkers:
    """One forked process per slot, each with a pipe: the parent knows which task every
    process runs, so a death or a hang costs that task only and is answered by replacing
    that process. The pool runs no thread of its own (forking next to threads risks deadlocks)."""

    backstop = True  # the parent stops a task that overruns its deadline

    def __init__(self, n_workers: int) -> None:
        self.n_slots = int(n_workers)
        self._context = multiprocessing.get_context("fork")
        self._workers: list[tuple[Connection, BaseProcess] | None] = [None] * self.n_slots
        for slot in range(self.n_slots):
            self._start(slot)

    def _start(self, slot: int) -> tuple[Connection, BaseProcess]:
        parent_end, child_end = self._context.Pipe()
        inherited = [worker[0] for worker in self._workers if worker is not None] + [parent_end]
        process = self._context.Process(
            target=_local_worker, args=(child_end, inherited), name=f"dvp_rl-solver-{slot}", daemon=True
        )
        process.start()
        child_end.close()
        self._workers[slot] = (parent_end, process)
        return parent_end, process

    def submit(self, slot: int, spec: SolveSpec, states: np.ndarray, solve_timeout: float | None) -> None:
        worker = self._workers[slot]
        if worker is None or not worker[1].is_alive():
            self.stop(slot)
            worker = self._start(slot)
        try:
            worker[0].send((spec, states, solve_timeout))
        except OSError:  # died since the check: once more on a fresh process
            self.stop(slot)
            self._start(slot)[0].send((spec, states, solve_timeout))

    def wait(self, slots: list[int], timeout: float | None) -> list[int]:
        """The slots among ``slots`` whose task has finished (a reply, or the process's end)."""
        waitables: dict[Any, int] = {}
        for slot in slots:
            conn, process = self._workers[slot]  # type: ignore[misc]
            waitables[conn] = waitables[process.sentinel] = slot
        ready = connection_wait(list(waitables), timeout)
        return sorted({waitables[w] for w in ready})

    def result(self, slot: int) -> list[SolveResult]:
        conn, process = self._workers[slot]  # type: ignore[misc]
        try:
            status, payload = conn.recv() if conn.poll() else (None, None)
        except (EOFError, OSError, pickle.UnpicklingError):
            status, payload = None, None
        if status == "ok":
            return payload
        if status == "error":
            exc, text = payload
            raise exc from _WorkerTraceback(text)
        process.join(timeout=5)
        code = process.exitcode
        self.stop(slot)
        if code is not None and code < 0:
            raise _WorkerLost(f"its worker process was killed by signal {-code}")
        raise _WorkerLost(f"its worker process died (exit code {code})")

    def stop(self, slot: int) -> None:
        worker = self._workers[slot]
        self._workers[slot] = None
        if worker is None:
            return
        conn, process = worker
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        conn.close()

    def close(self) -> None:
        for worker in self._workers:
            if worker is not None and worker[1].is_alive():
                try:
                    worker[0].send(None)
                except OSError:
                    pass  # already gone: stop() below reaps it
        for worker in self._workers:
            if worker is not None:
                worker[1].join(timeout=1)
        for slot in range(self.n_slots):
            self.stop(slot)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("backend='ray' needs Ray: pip install 'dvp_rl[ray]' (or 'ray[default]>=2.9')") from exc
    return ray


class _RayWorkers:
    """Chunks as Ray tasks (one CPU each, never retried by Ray: the pool decides).

    Joins the Ray instance already initialised in this process, else ``ray.init(address)``
    (and shuts down, on :meth:`close`, what it started). Only ``n_slots`` tasks are in
    flight at once so that the progress bar and a failure's cost stay per chunk.
    """

    backstop = False  # a task may queue on a busy cluster: only the workers' own watchdog times solves

    def __init__(self, n_workers: int | None, address: str | None) -> None:
        ray = self._ray = _import_ray()
        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address)
        elif address is not None:
            logger.info("Ray is already initialised in this process: ray_address=%r is not used", address)
        self.n_slots = int(n_workers) if n_workers is not None else max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_solve_chunk)
        self._refs: dict[int, Any] = {}
        self._spec: tuple[SolveSpec, Any] | None = None

    def submit(self, slot: int, spec: SolveSpec, states: np.ndarray, solve_timeout: float | None) -> None:
        if self._spec is None or self._spec[0] is not spec:
            self._spec = (spec, self._ray.put(spec))  # shipped once, not with every chunk
        self._refs[slot] = self._remote.remote(self._spec[1], states, solve_timeout)

    def wait(self, slots: list[int], timeout: float | None) -> list[int]:
        refs = {self._refs[slot]: slot for slot in slots}
        ready, _ = self._ray.wait(list(refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(list(refs), num_returns=len(refs), timeout=0)
        return sorted(refs[ref] for ref in ready)

    def result(self, slot: int) -> list[SolveResult]:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(self._refs.pop(slot))
        except exceptions.RayTaskError:  # raised by the solve itself (also an instance of the original class)
            raise
        except exceptions.RayError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise _WorkerLost(f"its Ray worker died ({type(exc).__name__}: {first_line})") from exc

    def stop(self, slot: int) -> None:
        ref = self._refs.pop(slot, None)
        if ref is not None:
            self._ray.cancel(ref, force=True)

    def close(self) -> None:
        for slot in list(self._refs):
            self.stop(slot)
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


#: where the solves run: forked processes on this machine, or Ray tasks (a local Ray or a cluster)
BACKENDS = ("local", "ray")
#: times lost states are resampled and solved again before they are given up as failed solves
RESAMPLE_ROUNDS = 3
#: seconds a local task may take beyond ``len(chunk) * solve_timeout`` (building the problem)
#: before the parent stops its process; the workers' own watchdog normally acts first
BACKSTOP_GRACE_S = 30.0


class SolverPool:
    """Workers that solve chunks of start states: forked processes on this machine or Ray tasks.

    Results do not depend on the backend nor on the number of workers: the caller draws
    the states, and a state's solve is the same wherever it runs.

    **Failures.** A worker that dies (a crash, the OOM killer) or a solve that runs past
    ``solve_timeout`` loses its task, never the results of other tasks. The states of a
    lost chunk are retried one per task, so that only the state at fault is lost; a lost
    state is reported (a logged warning and ``on_lost``) and, when :meth:`solve` is given
    ``resample``, replaced by a fresh state which is solved in turn (up to
    :data:`RESAMPLE_ROUNDS` times), else returned as a failed solve (``converged=False``).

    :param n_workers: processes (``"local"``) or Ray tasks in flight (``"ray"``); ``None``: all
        cores of this machine, or all CPUs of the Ray cluster
    :param backend: ``"local"`` (forked processes) or ``"ray"`` (needs ``pip install 'dvp_rl[ray]'``)
    :param ray_address: the Ray cluster to join: ``None`` joins the Ray already initialised in
        this process, else starts a local one (or joins ``$RAY_ADDRESS``); ``"auto"`` joins the
        cluster this machine belongs to (``ray start --head``); ``"ray://host:10001"`` a remote one
    :param solve_timeout: seconds one start state's solve (all its initial guesses) may take
        (``None``: no limit)
    """

    def __init__(
        self,
        n_workers: int | None = None,
        backend: str = "local",
        ray_address: str | None = None,
        solve_timeout: float | None = None,
    ) -> None:
        config = ParallelConfig(n_workers, backend, ray_address, solve_timeout)  # validates
        self.backend = config.backend
        self.solve_timeout = config.solve_timeout
        self._workers: _LocalWorkers | _RayWorkers
        if backend == "ray":
            self._workers = _RayWorkers(n_workers, ray_address)
        else:
            self._workers = _LocalWorkers(default_workers() if n_workers is None else int(n_workers))
        self.n_workers: int = self._workers.n_slots

    def __enter__(self) -> "SolverPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (and the Ray instance this pool started)."""
        self._workers.close()

    def solve(
        self,
        spec: SolveSpec,
        states: np.ndarray,
        progress: Callable[[int], None] | None = None,
        chunk_size: int | None = None,
        resample: Callable[[int], np.ndarray] | None = None,
        on_lost: Callable[[LostSolve], None] | None = None,
    ) -> BatchSolveResult:
        """Solve from every row of ``states`` (N, nx); see :func:`solve_states`."""
        states = np.array(states, dtype=np.float64)  # a copy: lost rows may be replaced
        n = len(states)
        size = int(chunk_size) if chunk_size else max(1, int(np.ceil(n / (4 * self.n_workers))))
        rows = np.arange(n)
        results, lost = self._run(spec, states, [rows[i : i + size] for i in range(0, n, size)], progress)
        for round_ in range(RESAMPLE_ROUNDS + 1):
            if not lost:
                break
            indices = sorted(lost)
            give_up = resample is None or round_ == RESAMPLE_ROUNDS
            for i in indices:
                what = "returned as a failed solve" if give_up else "resampled"
                logger.warning("lost the solve from x0=%s: %s; %s", np.array2string(states[i], precision=4), lost[i], what)
                if on_lost is not None:
                    on_lost(LostSolve(states[i].copy(), lost[i]))
            if give_up:
                if progress is not None:
                    progress(len(indices))
                break
            fresh = np.asarray(resample(len(indices)), dtype=np.float64)  # type: ignore[misc]
            if fresh.shape != (len(indices), states.shape[1]):
                raise ValueError(f"resample({len(indices)}) must return shape {(len(indices), states.shape[1])}, got {fresh.shape}")
            states[indices] = fresh
            size = max(1, int(np.ceil(len(indices) / self.n_workers)))
            again, lost = self._run(spec, states, [np.array(indices[i : i + size]) for i in range(0, len(indices), size)], progress)
            results.update(again)
        if len(results) < n:
            failed = _failed_result(spec, states, results)
            results.update({i: failed for i in range(n) if i not in results})
        nu = results[0].us.shape[1] if n else 0
        return stack_results(states, [results[i] for i in range(n)], spec.horizon, nu)

    def _run(
        self,
        spec: SolveSpec,
        states: np.ndarray,
        chunks: list[np.ndarray],
        progress: Callable[[int], None] | None,
    ) -> tuple[dict[int, SolveResult], dict[int, str]]:
        """Solve the chunks of row indices, at most one task per slot: ``(results, lost reasons)`` by row."""
        workers, timeout = self._workers, self.solve_timeout
        tasks = deque(chunks)
        results: dict[int, SolveResult] = {}
        lost: dict[int, str] = {}
        running: dict[int, tuple[np.ndarray, float]] = {}
        free = list(range(workers.n_slots))[::-1]

        def task_lost(rows: np.ndarray, reason: str, elapsed: float) -> None:
            if len(rows) > 1:  # find the state at fault: its chunk-mates are solved again one by one
                logger.info("a chunk of %d solves was lost (%s); solving its states one by one", len(rows), reason)
                tasks.extendleft(rows[i : i + 1] for i in reversed(range(len(rows))))
            else:
                if timeout is not None and elapsed >= timeout:
                    reason = f"the solve ran past solve_timeout={timeout:g} s ({reason} after {elapsed:.1f} s)"
                lost[int(rows[0])] = reason

        try:
            while tasks or running:
                while tasks and free:
                    slot, rows = free.pop(), tasks.popleft()
                    workers.submit(slot, spec, states[rows], timeout)
                    running[slot] = (rows, time.monotonic())
                deadline = None
                if timeout is not None and workers.backstop:
                    deadline = min(start + len(rows) * timeout + BACKSTOP_GRACE_S for rows, start in running.values())
                for slot in workers.wait(list(running), None if deadline is None else max(0.0, deadline - time.monotonic())):
                    rows, start = running.pop(slot)
                    free.append(slot)
                    try:
                        chunk = workers.result(slot)
                    except _WorkerLost as exc:
                        task_lost(rows, str(exc), time.monotonic() - start)
                        continue
                    results.update(zip(rows.tolist(), chunk))
                    if progress is not None:
                        progress(len(rows))
                if deadline is not None:
                    now = time.monotonic()
                    for slot, (rows, start) in list(running.items()):
                        if now >= start + len(rows) * timeout + BACKSTOP_GRACE_S:  # type: ignore[operator]
                            workers.stop(slot)
                            del running[slot]
                            free.append(slot)
                            task_lost(rows, "its worker process did not answer and was stopped", now - start)
        except BaseException:  # a worker's exception, Ctrl-C: the other tasks' replies must not reach the next call
            for slot in running:
                workers.stop(slot)
            raise
        return results, lost


def _failed_result(spec: SolveSpec, states: np.ndarray, results: dict[int, SolveResult]) -> SolveResult:
    """A failed :class:`SolveResult` (NaN everywhere, ``converged=False``) shaped like the others."""
    if results:
        nu = next(iter(results.values())).us.shape[1]
    else:
        nu = envs.make(spec.env_id, spec.env_kwargs).unwrapped.nu
    T, nx = spec.horizon, states.shape[1]
    return SolveResult(
        xs=np.full((T + 1, nx), np.nan), us=np.full((T, nu), np.nan), cost=float("nan"), Vx=np.full(nx, np.nan),
        Vxx=np.full((nx, nx), np.nan), iterations=0, converged=False, model_evaluations=0,
    )  # fmt: skip


def check_backend(backend: str, ray_address: str | None = None, solve_timeout: float | None = None) -> None:
    """Validate the parallel settings early, with clear messages (Ray itself is imported only when used)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if ray_address is not None and backend != "ray":
        raise ValueError(f"ray_address is for backend='ray', got backend={backend!r}")
    if solve_timeout is not None and not float(solve_timeout) > 0:
        raise ValueError(f"solve_timeout must be > 0 seconds or None, got {solve_timeout}")


@dataclass(frozen=True)
class ParallelConfig:
    """Where and how the solves of :func:`solve_states` run, as one value.

    :param n_workers: processes (``"local"``) or Ray tasks in flight (``"ray"``); ``None``: all
        cores of this machine, or all CPUs of the Ray cluster
    :param backend: ``"local"`` (forked processes) or ``"ray"`` (needs ``pip install 'dvp_rl[ray]'``)
    :param ray_address: the Ray cluster of ``backend="ray"`` (see :class:`SolverPool`)
    :param solve_timeout: seconds one start state's solve may take (``None``: no limit); a solve
        past it is lost (reported, and resampled where the caller can)

    With the local backend, one worker and no timeout the solves run in the calling process
    (:meth:`make_pool` returns ``None``): a timeout needs a worker process to stop.
    """

    n_workers: int | None = None
    backend: str = "local"
    ray_address: str | None = None
    solve_timeout: float | None = None

    def __post_init__(self) -> None:
        check_backend(self.backend, self.ray_address, self.solve_timeout)
        if self.n_workers is not None:
            if isinstance(self.n_workers, bool) or int(self.n_workers) != self.n_workers or self.n_workers < 1:
                raise ValueError(f"n_workers must be an integer >= 1 or None, got {self.n_workers!r}")
            object.__setattr__(self, "n_workers", int(self.n_workers))
        if self.solve_timeout is not None:
            object.__setattr__(self, "solve_timeout", float(self.solve_timeout))

    @classmethod
    def resolve(cls, n_workers: int | None = None, parallel: "ParallelConfig | None" = None) -> "ParallelConfig":
        """The configuration of ``parallel`` with ``n_workers`` (a shortcut) filled in; local
        ``n_workers=None`` becomes all cores. Conflicting worker counts raise ``ValueError``."""
        config = parallel if parallel is not None else cls()
        if not isinstance(config, ParallelConfig):
            raise TypeError(f"parallel must be a ParallelConfig, got {type(config).__name__}")
        if n_workers is not None:
            if config.n_workers is not None and config.n_workers != n_workers:
                raise ValueError(f"n_workers={n_workers} conflicts with parallel.n_workers={config.n_workers}")
            config = replace(config, n_workers=n_workers)
        if config.n_workers is None and config.backend == "local":
            config = replace(config, n_workers=default_workers())
        return config

    @property
    def in_process(self) -> bool:
        """Whether the solves run in the calling process (local backend, one worker, no timeout)."""
        return self.backend == "local" and self.n_workers == 1 and self.solve_timeout is None

    def make_pool(self) -> "SolverPool | None":
        """A :class:`SolverPool` (close it, or use it as a context manager); ``None`` when :attr:`in_process`.

        Local workers are forked: fork starts in milliseconds and needs no importable
        ``__main__``; it is safe here because workers run numpy and single-threaded Crocoddyl
        only (``problem.nthreads = 1``: Crocoddyl's OpenMP threads hang forked workers), never
        torch, and the pool forks with no threads of its own running.
        """
        if self.in_process:
            return None
        return SolverPool(self.n_workers, self.backend, self.ray_address, self.solve_timeout)


def solve_states(
    spec: SolveSpec,
    states: np.ndarray,
    pool: SolverPool | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int | None = None,
    resample: Callable[[int], np.ndarray] | None = None,
    on_lost: Callable[[LostSolve], None] | None = None,
) -> BatchSolveResult:
    """Solve from every row of ``states`` (N, nx); in this process, or over ``pool``.

    :param pool: a :class:`SolverPool` (e.g. from :meth:`ParallelConfig.make_pool`); ``None``: solve here
    :param progress: called with the number of newly finished solves (N in all)
    :param chunk_size: states per task (default: about 4 tasks per worker)
    :param resample: ``resample(k)`` returns ``k`` fresh states (k, nx) to replace lost ones
        (``None``: a lost state is returned as a failed solve); pools only
    :param on_lost: called with a :class:`LostSolve` for each lost solve; pools only
    :return: the stacked results in the order of ``states``; ``x0`` holds the states solved,
        which differ from ``states`` where a lost state was resampled
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ValueError(f"states must have shape (N, nx), got {states.shape}")
    if pool is not None:
        return pool.solve(spec, states, progress, chunk_size, resample, on_lost)
    results = []
    for x0 in states:
        results.extend(_solve_chunk(spec, x0[None]))
        if progress is not None:
            progress(1)
    return stack_results(states, results, spec.horizon, problem_for(spec).env.nu)
