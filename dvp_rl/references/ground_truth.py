"""Ground-truth values: very long horizon DDP, best of several initial guesses, cached on disk.

The pendulum and the unicycle have local optima, so each state is solved from several
initial guesses and the lowest converged cost is kept. Results can be cached in a folder
the caller names, keyed by the env, its kwargs, the discount, the horizon, the solver
settings and the states themselves, so a benchmark pays for them once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dvp_rl.control.ocp import reference_guesses
import envs
from dvp_rl.control.pool import LostSolve, ParallelConfig, SolveSpec, solve_states

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


class GroundTruth(NamedTuple):
    """Reference values: ``states`` (N, nx), ``V`` (N,), ``Vx`` (N, nx), ``converged`` (N,) bool,
    and the ``horizon`` and ``gamma`` they were computed with."""

    states: np.ndarray
    V: np.ndarray
    Vx: np.ndarray
    converged: np.ndarray
    horizon: int
    gamma: float


def default_horizon(env: Any, gamma: float) -> int:
    """Horizon after which the tail is negligible.

    ``gamma < 1``: the smallest T with ``gamma**T <= 1e-4`` (at most 2000); ``gamma = 1``:
    the env's ``value_horizon`` (steps after which its running cost has died out).
    """
    if gamma < 1.0:
        return int(min(2000, math.ceil(math.log(1e-4) / math.log(gamma))))
    return int(getattr(env.unwrapped, "value_horizon", 400))


def cache_key(spec: SolveSpec, states: np.ndarray) -> str:
    """A hash of everything the values depend on."""
    payload = json.dumps(
        {"format": CACHE_FORMAT, "env": spec.env_id, "kwargs": sorted((k, repr(v)) for k, v in spec.env_kwargs.items()),
         "horizon": spec.horizon, "gamma": spec.gamma, "max_iter": spec.max_iter, "th_stop": spec.th_stop,
         "terminal": repr(spec.terminal), "guesses": list(spec.guesses or ())},
        sort_keys=True,
    ).encode()
    return hashlib.sha1(payload + np.ascontiguousarray(states, dtype=np.float64).tobytes()).hexdigest()[:16]


def ground_truth(
    env_id: str,
    states: np.ndarray,
    gamma: float = 1.0,
    horizon: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    guesses: tuple[str, ...] | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_workers: int | None = None,
    max_iter: int = 500,
    progress: bool = False,
    parallel: ParallelConfig | None = None,
) -> GroundTruth:
    """Optimal cost-to-go and its gradient at ``states`` (N, nx), from long-horizon multi-start DDP.

    :param horizon: default :func:`default_horizon`
    :param guesses: initial guesses tried per state, best converged kept (default:
        :func:`dvp_rl.control.ocp.reference_guesses`, the env's ``ddp_guesses`` plus both continuations)
    :param cache_dir: folder of the on-disk cache (``None``: no cache)
    :param n_workers: processes (or Ray tasks) solving in parallel (default: ``parallel``'s, else 1:
        in this process)
    :param parallel: backend, Ray cluster, worker count and per-solve timeout
        (:class:`dvp_rl.control.pool.ParallelConfig`; ``n_workers`` fills in its worker count)
    :return: a :class:`GroundTruth`; states where no guess converged, or whose solve was lost
        (worker died, timed out), have ``converged=False``; a result with lost solves is not cached
    """
    config = ParallelConfig.resolve(n_workers, parallel if parallel is not None else ParallelConfig(None if n_workers else 1))
    env_kwargs = dict(env_kwargs or {})
    env = envs.make(env_id, env_kwargs)
    base = env.unwrapped
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != base.nx:
        raise ValueError(f"states must have shape (N, {base.nx}), got {states.shape}")
    T = int(horizon) if horizon is not None else default_horizon(env, gamma)
    spec = SolveSpec(env_id, env_kwargs, T, float(gamma), None, max_iter, 1e-9, tuple(guesses or reference_guesses(base)))
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{env_id.split('/')[-1]}__{cache_key(spec, states)}.npz"
        if path.exists():
            with np.load(path) as cached:
                return GroundTruth(cached["states"], cached["V"], cached["Vx"], cached["converged"], T, float(gamma))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(states), desc=f"ground truth {env_id} (T={T})", unit="state")
    pool = config.make_pool()
    lost: list[LostSolve] = []
    try:
        # the reference states are given: a lost solve is not resampled, it stays unconverged
        batch = solve_states(spec, states, pool, progress=None if bar is None else bar.update, on_lost=lost.append)
    finally:
        if pool is not None:
            pool.close()
        if bar is not None:
            bar.close()
    ok = batch.converged
    truth = GroundTruth(states, np.where(ok, batch.cost, np.nan), np.where(ok[:, None], batch.Vx, np.nan), ok, T, float(gamma))
    if path is not None and lost:
        logger.warning("%d ground-truth solves were lost; not caching %s so that a rerun solves them again", len(lost), path)
    elif path is not None:
        _save_atomic(path, truth)
    return truth


def _save_atomic(path: Path, truth: GroundTruth) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, states=truth.states, V=truth.V, Vx=truth.Vx, converged=truth.converged)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ValueErrors(NamedTuple):
    """Errors of a value estimate against ground truth, on the converged reference states.

    ``value_mse``: mean (V - V*)^2; ``value_rel_mse``: that over mean V*^2;
    ``gradient_rel_error``: sqrt(mean ||Vx - Vx*||^2 / mean ||Vx*||^2) (NaN without gradients);
    ``n``: states used.
    """

    value_mse: float
    value_rel_mse: float
    gradient_rel_error: float
    n: int


def value_errors(truth: GroundTruth, V: np.ndarray, Vx: np.ndarray | None = None) -> ValueErrors:
    """Compare estimates ``V`` (N,) and optionally ``Vx`` (N, nx) at ``truth.states`` with the reference."""
    ok = truth.converged
    if not ok.any():
        raise ValueError("no ground-truth state converged; nothing to compare with")
    V = np.asarray(V, dtype=np.float64).reshape(-1)
    if V.shape != truth.V.shape:
        raise ValueError(f"V must have shape {truth.V.shape}, got {V.shape}")
    mse = float(np.mean((V[ok] - truth.V[ok]) ** 2))
    rel = mse / float(np.mean(truth.V[ok] ** 2))
    grad = float("nan")
    if Vx is not None:
        Vx = np.asarray(Vx, dtype=np.float64)
        err = np.sum((Vx[ok] - truth.Vx[ok]) ** 2, axis=1).mean()
        grad = float(np.sqrt(err / np.sum(truth.Vx[ok] ** 2, axis=1).mean()))
    return ValueErrors(mse, rel, grad, int(ok.sum()))
