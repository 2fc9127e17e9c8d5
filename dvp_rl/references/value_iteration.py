"""Grid value iteration: an optimal reference for small systems, Gymnasium's ``Pendulum-v1`` first.

The state box is covered by a regular grid (periodic along angle axes); a value table on
the grid is read between its points by multilinear (in 2-D bilinear) interpolation, and
the Bellman backup

    V_{k+1}(x_i) = min_a  cost(x_i, u_a) + gamma * V_k(step(x_i, u_a))

runs over a finite set of actions ``u_a``, vectorised over all grid points. The
interpolation indices and weights of every ``step(x_i, u_a)`` are computed once, so a
backup is ``2^d`` gathers of the table (memory: ``12 * 2^d * n_actions * n_points`` bytes).

For ``Pendulum-v1`` (:func:`solve_pendulum`) the step and the reward are Gymnasium's own,
speed clip included, and ``V_T`` is the optimal cost of the ``T``-step episode::

    pendulum = solve_pendulum(cache_dir="runs/value_iteration")   # 180 x 161 states, 21 torques, T = 200
    pendulum.optimal_return(states)       # (N,): -V_200(x0), the optimal 200-step return from (th, thdot)
    pendulum.predict(obs)                 # the greedy torque from a Pendulum-v1 observation (SB3 signature)
    pendulum.start_distribution_return()  # mean optimal return over the env's start distribution

numpy only: no torch, no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

#: Gymnasium's Pendulum-v1 constants (``gymnasium.envs.classic_control.pendulum.PendulumEnv``)
PENDULUM_DT = 0.05
PENDULUM_MAX_SPEED = 8.0
PENDULUM_MAX_TORQUE = 2.0
PENDULUM_MASS = 1.0
PENDULUM_LENGTH = 1.0
#: half-widths of Pendulum-v1's start box: th ~ U(-pi, pi), thdot ~ U(-1, 1)
PENDULUM_START_HIGH = (math.pi, 1.0)
#: bump when the cached arrays change meaning, so that old cache files are not read
_CACHE_VERSION = 1

#: ``step(states (N, d), action (nu,)) -> (next_states (N, d), costs (N,))``
StepFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


# ---------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Grid:
    """A regular grid over a box, with multilinear interpolation of tables on it.

    Along a periodic axis the ``size`` points are ``low + i * (high - low) / size`` (``high``
    is ``low`` again, not a point); along another axis they are ``size >= 2`` points from
    ``low`` to ``high`` inclusive, and coordinates outside are clamped to the box.
    Tables have shape ``sizes`` (C order: the last axis varies fastest).

    :param low: lower corner, (d,)
    :param high: upper corner, (d,)
    :param sizes: points per axis, (d,)
    :param periodic: whether each axis wraps around, (d,)
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    sizes: tuple[int, ...]
    periodic: tuple[bool, ...]

    def __post_init__(self) -> None:
        d = len(self.sizes)
        if not (len(self.low) == len(self.high) == len(self.periodic) == d >= 1):
            raise ValueError("low, high, sizes and periodic must have the same length >= 1")
        for lo, hi, n, wrap in zip(self.low, self.high, self.sizes, self.periodic):
            if not hi > lo:
                raise ValueError(f"high must exceed low on every axis, got {self.low} and {self.high}")
            if n < (1 if wrap else 2):
                raise ValueError(f"a grid axis needs at least {1 if wrap else 2} points, got {n}")

    @property
    def ndim(self) -> int:
        return len(self.sizes)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def spacing(self) -> np.ndarray:
        """Distance between neighbouring points along each axis, (d,)."""
        return np.array(
            [(hi - lo) / (n if wrap else n - 1) for lo, hi, n, wrap in zip(self.low, self.high, self.sizes, self.periodic)]
        )

    def axes(self) -> list[np.ndarray]:
        """The coordinates of the points along each axis: d arrays of shapes ``(sizes[k],)``."""
        return [lo + h * np.arange(n) for lo, h, n in zip(self.low, self.spacing, self.sizes)]

    def points(self) -> np.ndarray:
        """Every grid point, (n_points, d), in the order of a flattened table."""
        mesh = np.meshgrid(*self.axes(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def interpolation(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat table indices and weights of the multilinear interpolation at ``x`` (M, d).

        ``table.ravel()[index] * weight`` summed over the first axis is the interpolated
        value; weights are >= 0 and sum to 1.

        :return: ``(index, weight)``, both (2^d, M); index int32 (int64 for grids of 2^31 points or more)
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.ndim:
            raise ValueError(f"x must have shape (M, {self.ndim}), got shape {x.shape}")
        index_dtype = np.int32 if self.n_points < 2**31 else np.int64
        lower, upper, frac = [], [], []
        for k, (lo, h, n, wrap) in enumerate(zip(self.low, self.spacing, self.sizes, self.periodic)):
            s = (x[:, k] - lo) / h
            if wrap:
                i0 = np.floor(s)
                f = s - i0
                i0 = np.mod(i0, n).astype(np.int64)
                i1 = (i0 + 1) % n
            else:
                s = np.clip(s, 0.0, n - 1)
                i0 = np.minimum(np.floor(s), n - 2).astype(np.int64)
                f = s - i0
                i1 = i0 + 1
            lower.append(i0)
            upper.append(i1)
            frac.append(f)
        strides = np.cumprod((1,) + tuple(self.sizes[:0:-1]))[::-1]  # C order
        n_corners = 2**self.ndim
        index = np.zeros((n_corners, len(x)), dtype=np.int64)
        weight = np.ones((n_corners, len(x)))
        for corner in range(n_corners):
            for k in range(self.ndim):
                high_side = (corner >> (self.ndim - 1 - k)) & 1
                index[corner] += (upper[k] if high_side else lower[k]) * strides[k]
                weight[corner] *= frac[k] if high_side else 1.0 - frac[k]
        return index.astype(index_dtype), weight

    def interpolate(self, table: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The table (shape ``sizes``) read at ``x`` (M, d) by multilinear interpolation; shape (M,)."""
        table = np.asarray(table, dtype=np.float64)
        if table.shape != tuple(self.sizes):
            raise ValueError(f"table must have shape {tuple(self.sizes)}, got shape {table.shape}")
        index, weight = self.interpolation(x)
        return np.einsum("cm,cm->m", np.take(table.ravel(), index), weight)


# ---------------------------------------------------------------------------- value iteration
class ValueIterationResult(NamedTuple):
    """``values`` (grid sizes): ``V_k`` on the grid after ``iterations`` backups;
    ``residual``: ``max |V_k - V_{k-1}|`` of the last backup (inf when none ran)."""

    values: np.ndarray
    iterations: int
    residual: float


def value_iteration(
    grid: Grid,
    step: StepFunction,
    actions: np.ndarray,
    horizon: int,
    gamma: float = 1.0,
    tol: float = 0.0,
    terminal_values: np.ndarray | None = None,
) -> ValueIterationResult:
    """Backward value iteration of a deterministic system on ``grid``, minimising cost.

    Starting from ``V_0 = terminal_values`` (zero by default), each backup computes
    ``V_{k+1}(x_i) = min_a cost(x_i, u_a) + gamma * V_k(next_i_a)`` at every grid point, with
    ``V_k(next_i_a)`` read by :meth:`Grid.interpolate` (next states outside a non-periodic
    axis are clamped to the box). After ``horizon`` backups ``V_T`` is the optimal cost of
    the ``T``-step problem on the grid (with the actions restricted to ``actions``); with
    ``gamma < 1`` and a large ``horizon`` it approaches the infinite-horizon discounted value.

    :param step: ``step(states (N, d), action (nu,)) -> (next_states (N, d), costs (N,))``,
        vectorised over the states, called once per action
    :param actions: the candidate actions, (n_actions, nu) (or (n_actions,) for nu = 1)
    :param horizon: number of backups T >= 0
    :param gamma: discount in (0, 1]
    :param tol: stop early once a backup changes no value by more than ``tol`` (0: run all T)
    :param terminal_values: ``V_0`` on the grid (shape ``grid.sizes``)
    """
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    actions = np.asarray(actions, dtype=np.float64)
    actions = actions.reshape(len(actions), -1)
    index, weight, costs = _transitions(grid, step, actions)
    values = np.zeros(grid.n_points) if terminal_values is None else np.array(terminal_values, dtype=np.float64).ravel()
    if values.shape != (grid.n_points,):
        raise ValueError(f"terminal_values must have shape {tuple(grid.sizes)}")
    residual, iterations = math.inf, 0
    for iterations in range(1, horizon + 1):
        new_values = _backup(values, index, weight, costs, gamma).min(axis=0)
        residual = float(np.max(np.abs(new_values - values)))
        values = new_values
        if residual <= tol:
            break
    return ValueIterationResult(values.reshape(grid.sizes), iterations, residual)


def _transitions(grid: Grid, step: StepFunction, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolation of every (grid point, action) successor: index, weight (2^d, A, N); costs (A, N)."""
    points = grid.points()
    n_corners, n_actions = 2**grid.ndim, len(actions)
    index = np.empty((n_corners, n_actions, grid.n_points), dtype=np.int32 if grid.n_points < 2**31 else np.int64)
    weight = np.empty((n_corners, n_actions, grid.n_points))
    costs = np.empty((n_actions, grid.n_points))
    for a, u in enumerate(actions):
        next_states, cost = step(points, u)
        index[:, a], weight[:, a] = grid.interpolation(next_states)
        costs[a] = cost
    return index, weight, costs


def _backup(values: np.ndarray, index: np.ndarray, weight: np.ndarray, costs: np.ndarray, gamma: float) -> np.ndarray:
    """``Q(a, x) = cost + gamma * V(next)`` for flat ``values`` (N,); shape (A, N)."""
    expected = np.take(values, index[0]) * weight[0]
    for corner in range(1, len(index)):
        expected += np.take(values, index[corner]) * weight[corner]
    return costs + gamma * expected


# ---------------------------------------------------------------------------- Pendulum-v1
def angle_normalize(theta: np.ndarray) -> np.ndarray:
    """Gymnasium's ``angle_normalize``: the angle in [-pi, pi)."""
    return ((theta + np.pi) % (2 * np.pi)) - np.pi


def pendulum_step(states: np.ndarray, torque: np.ndarray | float, g: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Gymnasium's ``Pendulum-v1`` transition and cost (= -reward), vectorised.

    With ``u = clip(torque, -2, 2)``, from ``states`` (N, 2) of ``(th, thdot)``::

        cost     = angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2
        thdot'   = clip(thdot + (3 g / (2 l) sin(th) + 3 / (m l^2) u) dt, -8, 8)
        th'      = th + thdot' dt                       (not wrapped, as in the env)

    :param torque: a scalar, (1,) or (N,)
    :return: ``(next_states (N, 2), costs (N,))``
    """
    states = np.asarray(states, dtype=np.float64)
    th, thdot = states[:, 0], states[:, 1]
    u = np.clip(np.asarray(torque, dtype=np.float64).reshape(-1), -PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE)
    if u.size == 1:
        u = u[0]
    costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
    new_thdot = thdot + (3 * g / (2 * PENDULUM_LENGTH) * np.sin(th) + 3.0 / (PENDULUM_MASS * PENDULUM_LENGTH**2) * u) * PENDULUM_DT
    new_thdot = np.clip(new_thdot, -PENDULUM_MAX_SPEED, PENDULUM_MAX_SPEED)
    new_th = th + new_thdot * PENDULUM_DT
    return np.stack([new_th, new_thdot], axis=1), costs


def pendulum_grid(n_angles: int = 180, n_speeds: int = 161) -> Grid:
    """The pendulum's grid: ``n_angles`` periodic angles on [-pi, pi), ``n_speeds`` speeds on [-8, 8].

    An even ``n_angles`` puts the upright (th = 0) on a grid point, an odd ``n_speeds`` the rest (thdot = 0).
    """
    return Grid((-math.pi, -PENDULUM_MAX_SPEED), (math.pi, PENDULUM_MAX_SPEED), (n_angles, n_speeds), (True, False))


class PendulumValue:
    """The value of Gymnasium's ``Pendulum-v1`` on a grid, and the greedy controller it defines.

    ``values`` is ``V_T`` (shape (n_angles, n_speeds)): the least cost of a ``T``-step
    episode from each grid state, with the torque restricted to ``torques``; between grid
    points it is read by bilinear interpolation (angles wrap around). Returns are rewards,
    so the optimal return of an episode start is ``-V_T(x0)``.

    The controller (:meth:`greedy_torque`, :meth:`predict`) is stationary: at every step it
    takes ``argmin_u cost(x, u) + V_T(step(x, u))`` over ``torques``, the first action of the
    ``T + 1``-step problem. Once ``V_k`` stops changing with ``k`` (the rod rests upright at
    zero cost), this is the optimal ``T``-step policy up to the grid's error; its return in
    the env is measured by running it, e.g. with ``dvp_rl.control.rollout.evaluate_episodes``.

    :param values: ``V_T`` on ``pendulum_grid(n_angles, n_speeds)``, (n_angles, n_speeds)
    :param torques: the candidate torques, (n_torques,)
    :param horizon: ``T``
    :param g: gravity of the env (Pendulum-v1's ``g`` argument)
    """

    def __init__(self, values: np.ndarray, torques: np.ndarray, horizon: int, g: float = 10.0):
        self.values = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 2:
            raise ValueError(f"values must have shape (n_angles, n_speeds), got shape {self.values.shape}")
        self.grid = pendulum_grid(*self.values.shape)
        self.torques = np.asarray(torques, dtype=np.float64).reshape(-1)
        self.horizon = int(horizon)
        self.g = float(g)

    def value(self, states: np.ndarray) -> np.ndarray:
        """``V_T`` at ``states`` (N, 2) of ``(th, thdot)`` (any angle); shape (N,)."""
        return self.grid.interpolate(self.values, _check_pendulum_states(states))

    def optimal_return(self, states: np.ndarray) -> np.ndarray:
        """The optimal ``T``-step return from episode starts ``states`` (N, 2): ``-V_T(x0)``; shape (N,).

        The value of the finite-horizon problem on the grid, not the return of a rollout.
        """
        return -self.value(states)

    def start_distribution_return(self, resolution: tuple[int, int] = (720, 200)) -> float:
        """Mean of :meth:`optimal_return` over Pendulum-v1's start distribution, U([-pi, pi] x [-1, 1]).

        Midpoint rule on ``resolution`` (angles, speeds) cells of the start box.
        """
        cells = [(np.arange(n) + 0.5) / n * 2 * h - h for n, h in zip(resolution, PENDULUM_START_HIGH)]
        mesh = np.meshgrid(*cells, indexing="ij")
        return float(np.mean(self.optimal_return(np.stack([m.ravel() for m in mesh], axis=1))))

    def greedy_torque(self, states: np.ndarray) -> np.ndarray:
        """``argmin_u cost(x, u) + V_T(step(x, u))`` over ``torques`` at ``states`` (N, 2); shape (N,).

        Ties go to the first torque in ``torques``.
        """
        states = _check_pendulum_states(states)
        n, n_torques = len(states), len(self.torques)
        next_states, costs = pendulum_step(np.tile(states, (n_torques, 1)), np.repeat(self.torques, n), self.g)
        q = (costs + self.value(next_states)).reshape(n_torques, n)
        return self.torques[np.argmin(q, axis=0)]

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict`` on Pendulum-v1 observations ``(cos th, sin th, thdot)``: (3,) or (N, 3).

        The action is :meth:`greedy_torque` (deterministic whatever ``deterministic`` says),
        float32 of shape (1,) or (N, 1); the recurrent state is ``None``.
        """
        obs = np.asarray(observation, dtype=np.float64)
        batch = obs.reshape(-1, 3)
        states = np.stack([np.arctan2(batch[:, 1], batch[:, 0]), batch[:, 2]], axis=1)
        action = self.greedy_torque(states).astype(np.float32)[:, None]
        return (action[0] if obs.ndim == 1 else action), None


def solve_pendulum(
    n_angles: int = 180,
    n_speeds: int = 161,
    n_torques: int = 21,
    horizon: int = 200,
    g: float = 10.0,
    cache_dir: str | Path | None = None,
) -> PendulumValue:
    """Value iteration on Gymnasium's ``Pendulum-v1``: ``V_T`` of the ``horizon``-step episode.

    The grid is :func:`pendulum_grid` (``n_angles`` x ``n_speeds``), the actions
    ``n_torques`` evenly spaced torques from -2 to 2, the step :func:`pendulum_step`
    (undiscounted, zero terminal cost: the episode's return is the plain sum of rewards).
    The grid's error shrinks as the grid is refined (see ``tests/references/test_value_iteration.py``).

    :param cache_dir: folder of a cache file named after the arguments; read when
        present, written otherwise. ``None``: no cache.
    """
    if n_torques < 2:
        raise ValueError(f"n_torques must be >= 2, got {n_torques}")
    torques = np.linspace(-PENDULUM_MAX_TORQUE, PENDULUM_MAX_TORQUE, n_torques)
    path = None
    if cache_dir is not None:
        name = f"pendulum_v1_g{g:g}_{n_angles}x{n_speeds}x{n_torques}_T{horizon}_v{_CACHE_VERSION}.npz"
        path = Path(cache_dir) / name
        if path.exists():
            with np.load(path) as cached:
                return PendulumValue(cached["values"], cached["torques"], int(cached["horizon"]), float(cached["g"]))
    grid = pendulum_grid(n_angles, n_speeds)
    result = value_iteration(grid, lambda x, u: pendulum_step(x, u, g), torques[:, None], horizon)
    pendulum = PendulumValue(result.values, torques, horizon, g)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, values=pendulum.values, torques=torques, horizon=horizon, g=g)
        tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    return pendulum


def pendulum_start_states(seeds: Sequence[int], g: float = 10.0) -> np.ndarray:
    """The ``(th, thdot)`` from which ``gymnasium.make("Pendulum-v1").reset(seed=s)`` starts, for each seed; (N, 2)."""
    import gymnasium as gym  # here: the value iteration itself needs numpy only

    env = gym.make("Pendulum-v1", g=g)
    try:
        starts = []
        for seed in seeds:
            env.reset(seed=int(seed))
            starts.append(np.array(env.unwrapped.state, dtype=np.float64))
    finally:
        env.close()
    return np.array(starts).reshape(-1, 2)


def _check_pendulum_states(states: np.ndarray) -> np.ndarray:
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != 2:
        raise ValueError(f"states must have shape (N, 2) of (th, thdot), got shape {states.shape}")
    return states
