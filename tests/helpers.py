"""Helpers the tests share (imported as ``tests.helpers``): the registered env ids, an unwrapped env,
the check of an experiment's quick-run outputs, a ``dvp-rl zoo`` run, and derivatives against
central differences."""

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs

ALL_ENV_IDS = list(envs.ENV_IDS)


#: solver settings that OptimalControlProblem and MPCController refuse when made, with the message
#: (before: see each comment)
BAD_SOLVER_SETTINGS = [
    ({"horizon": 2.5}, "horizon must be an integer >= 1, got 2.5"),  # was truncated to 2
    ({"horizon": True}, "horizon must be an integer >= 1, got True"),  # was a horizon of 1
    ({"horizon": 0}, "horizon must be an integer >= 1, got 0"),
    ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),  # was: every solve returned the guess unsolved
    ({"max_iter": 10.5}, "max_iter must be an integer >= 1, got 10.5"),  # was truncated to 10
    ({"th_stop": -1.0}, "th_stop must be a finite number > 0, got -1.0"),  # was Crocoddyl's bare Exception at the first solve
    ({"th_stop": 0.0}, "th_stop must be a finite number > 0, got 0.0"),
    ({"th_stop": float("nan")}, "th_stop must be a finite number > 0, got nan"),
]


#: dtypes that are not real numbers, which every array argument refuses (before: a complex one lost its
#: imaginary part with a ComplexWarning at most, an object or a string one was converted)
NON_REAL_DTYPES = (np.dtype(np.complex128), np.dtype(np.complex64), np.dtype(object), np.dtype("U32"), np.dtype("S32"))


def non_real(array: Any, dtype: np.dtype, imaginary: float = 0.0) -> np.ndarray:
    """``array`` as ``dtype`` (plus ``imaginary * 1j`` for a complex one): the same numbers, a non-real dtype."""
    array = np.asarray(array, dtype=np.float64)
    return array.astype(dtype) + imaginary * 1j if dtype.kind == "c" else array.astype(dtype)


def make_unwrapped(env_id: str, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped


def _numbers(value: Any) -> Iterator[int | float]:
    """Every number (not bool) in a nested JSON value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def check_experiment_outputs(out: Path, table: dict[str, Any], figures: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Assert that an experiment's run wrote every output under ``out``: the ``figures`` (PNGs over
    1 kB), ``table.md`` (a titled markdown table, no NaN), ``table.json`` (the returned ``table``,
    with numbers only finite ones) and non-empty tensorboard event files.

    :return: ``(markdown, saved)``: the text of ``table.md`` and the content of ``table.json``, for
        the caller's own checks
    """
    from dvp_rl.experiments import common  # here: torch and tensorboard load only for the tests that need them

    for figure in figures:
        assert (out / figure).stat().st_size > 1000, figure
    markdown = (out / "table.md").read_text()
    assert markdown.startswith("# ") and "|---|" in markdown and "nan" not in markdown.lower()
    saved = json.loads((out / "table.json").read_text())
    assert saved == json.loads(json.dumps(table, default=common._json_default))
    numbers = list(_numbers(saved))
    assert numbers and all(math.isfinite(x) for x in numbers)
    events = list((out / "tb").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    return markdown, saved


def run_zoo(out: Path, *args: str) -> Path:
    """``dvp-rl zoo ARGS --n-workers 1`` into ``out/run`` with its reference cached in ``out/reference``, through
    ``dvp_rl.cli.main`` (torch's thread count restored afterwards: the CLI sets one thread); asserts exit code 0."""
    import torch

    from dvp_rl.cli import main

    threads = torch.get_num_threads()
    try:
        code = main(["zoo", *args, "--n-workers", "1", "--cache-dir", str(out / "reference"), "--out", str(out / "run")])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return out


def central_difference(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Jacobian of f (R^n -> R^m, or a scalar) at x by central differences, shape (m, n) or (n,)."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(cols, axis=-1)


def assert_first_derivatives(model: Any, x: np.ndarray, u: np.ndarray, atol_dynamics: float, atol_cost: float, rtol: float) -> Any:
    """``Fx, Fu`` (``dynamics_derivatives``) and ``Lx, Lu`` (``cost_derivatives``) of an env or twin at ``x`` (nx,),
    ``u`` (nu,) against central differences of ``dynamics`` and ``cost``; returns ``cost_derivatives(x, u)``."""
    Fx, Fu = model.dynamics_derivatives(x, u)
    np.testing.assert_allclose(Fx, central_difference(lambda z: model.dynamics(z, u), x), atol=atol_dynamics, rtol=rtol)
    np.testing.assert_allclose(Fu, central_difference(lambda w: model.dynamics(x, w), u), atol=atol_dynamics, rtol=rtol)
    derivatives = model.cost_derivatives(x, u)
    np.testing.assert_allclose(derivatives[0], central_difference(lambda z: model.cost(z, u), x), atol=atol_cost, rtol=rtol)
    np.testing.assert_allclose(derivatives[1], central_difference(lambda w: model.cost(x, w), u), atol=atol_cost, rtol=rtol)
    return derivatives
