"""Optimal references of a Gymnasium id's episodes: each episode's optimal return, and the optimal value at its start.

An agent scored in the real env (:func:`dvp_rl.control.rollout.evaluate_episodes`, one episode per
reset seed) is compared with the best return of the same episode, and its critic with the optimal
cost-to-go of its discount at the episode's start state::

    reference = REFERENCES["Pendulum-v1"](Path("runs/zoo/reference"), 2)
    optimum = reference.optimal_returns(np.arange(1000, 1100))      # (100,)
    V = reference.value(reference.start_states(np.arange(1000, 1100)), 0.99)

``Pendulum-v1``'s reference is exact (grid value iteration with its step and reward); the MuJoCo
ids' is a DDP oracle (:mod:`dvp_rl.references.oracle`), an *estimate* an agent can beat. No torch here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dvp_rl.control.rollout import evaluate_episodes
from dvp_rl.references.oracle import ORACLES, oracle_returns


class Reference(NamedTuple):
    """An env's optimal reference.

    ``name``: what it is, in words; ``optimal_returns(seeds) -> (N,)``: the optimal return of
    those episodes; ``start_states(seeds) -> (N, nx)``: the twin's states the episodes start from;
    ``value(states, gamma) -> (N,)``: the optimal cost-to-go of that discount from those twin
    states, in the twin's cost (see :data:`REWARD_OFFSETS`).
    """

    name: str
    optimal_returns: Callable[[np.ndarray], np.ndarray]
    start_states: Callable[[np.ndarray], np.ndarray]
    value: Callable[[np.ndarray, float], np.ndarray]


#: Gymnasium id -> ``c`` where its reward per step is ``c - twin cost`` (absent: 0, the twin's cost is
#: ``-reward``). InvertedDoublePendulum-v5: the alive bonus 10 less the distance penalty (2 - 1.2)^2
#: of the upright tip (the twin's cost is the regret against the best reward,
#: :class:`envs.mjcf.InvertedDoublePendulumTwin`). A critic of the reward's discounted return ``Q``
#: is a cost-to-go ``c / (1 - gamma) - Q`` in the twin's cost.
REWARD_OFFSETS: dict[str, float] = {"InvertedDoublePendulum-v5": 10.0 - (2.0 - 1.2) ** 2}


def twin_start_states(env_id: str, seeds: np.ndarray) -> np.ndarray:
    """The twin's states from which ``gymnasium.make(env_id).reset(seed=s)`` starts, for each seed; (N, nx)."""
    import gymnasium as gym

    from envs.twins import twin_for

    twin = twin_for(env_id)
    env = gym.make(env_id)
    try:
        return np.array([twin.observation_to_state(env.reset(seed=int(seed))[0]) for seed in seeds])
    finally:
        env.close()


def pendulum_reference(cache_dir: Path, n_workers: int = 1) -> Reference:
    """Grid value iteration with Pendulum-v1's exact step and reward (:mod:`dvp_rl.references.value_iteration`).

    ``optimal_returns``: the best known return of each episode, the larger of the grid's
    optimum ``-V_200(x0)`` and the return of the grid's greedy controller played in the real env
    (:meth:`~dvp_rl.references.value_iteration.PendulumValue.predict`). The grid's value is interpolated, so
    near the cliffs (starts from which one more swing is or is not needed) it can be pessimistic:
    its own greedy controller then scores above it. ``value``: the grid's value, the discounted
    infinite-horizon one (to 1e-4 of its tail) for ``gamma < 1``, computed once per discount.

    :param cache_dir: where the solved grid is cached
    :param n_workers: unused (the grid is solved in this process); the signature of :data:`REFERENCES`
    """
    from dvp_rl.references import value_iteration as vi

    episode = vi.solve_pendulum(cache_dir=cache_dir)
    tables: dict[float, vi.PendulumValue] = {1.0: episode}

    def value(states: np.ndarray, gamma: float) -> np.ndarray:
        if gamma not in tables:
            horizon = int(math.ceil(math.log(1e-4) / math.log(gamma)))
            result = vi.value_iteration(episode.grid, vi.pendulum_step, episode.torques[:, None], horizon, gamma, tol=1e-6)
            tables[gamma] = vi.PendulumValue(result.values, episode.torques, horizon)
        return tables[gamma].value(states)

    return Reference(
        f"grid value iteration ({episode.values.shape[0]}x{episode.values.shape[1]} states, {len(episode.torques)} torques, "
        f"T={episode.horizon}); "
        "per episode the better of its optimum and its greedy controller's return in the real env",
        lambda seeds: np.maximum(episode.optimal_return(vi.pendulum_start_states(seeds)),
                                 evaluate_episodes(episode, "Pendulum-v1", seeds).returns),
        vi.pendulum_start_states,
        value,
    )  # fmt: skip


def ddp_oracle_reference(env_id: str, cache_dir: Path, n_workers: int = 1) -> Reference:
    """The reference of an env without an exact one: a DDP oracle on its twin.

    ``optimal_returns``: :func:`~dvp_rl.references.oracle.oracle_returns` with the env's
    :data:`~dvp_rl.references.oracle.ORACLES` settings, an *estimate* of each episode's optimal
    return (DDP finds local optima, and the twin is not the real env to the last digit): an agent
    can score above it (negative regret), and it bounds nothing. ``value``:
    :func:`dvp_rl.references.ground_truth.ground_truth` on the twin (multi-start DDP of the twin's
    ``value_horizon`` steps, after which its running cost has died out; the same horizon for every
    discount), cached in ``cache_dir``.

    :raises KeyError: for an id without oracle settings
    """
    from dvp_rl.references.ground_truth import ground_truth
    from envs.twins import twin_for

    settings = ORACLES[env_id]
    twin = twin_for(env_id)
    horizon = int(twin.make().unwrapped.value_horizon)

    def value(states: np.ndarray, gamma: float) -> np.ndarray:
        truth = ground_truth(twin.twin_id, states, gamma, horizon, dict(twin.twin_kwargs), cache_dir=cache_dir, n_workers=n_workers)
        return truth.V

    return Reference(
        f"DDP oracle: receding-horizon DDP on the twin (H={settings.horizon}, multi-start) played in the real env, "
        f"an estimate; values: DDP of T={horizon} on the twin",
        lambda seeds: oracle_returns(env_id, seeds, settings, cache_dir, n_workers),
        lambda seeds: twin_start_states(env_id, seeds),
        value,
    )


#: Gymnasium id -> its reference, ``builder(cache_dir, n_workers)`` (build it once per run: it solves)
REFERENCES: dict[str, Callable[[Path, int], Reference]] = {
    "Pendulum-v1": pendulum_reference,
    **{env_id: functools.partial(ddp_oracle_reference, env_id) for env_id in ORACLES},
}


__all__ = ["REFERENCES", "REWARD_OFFSETS", "Reference", "ddp_oracle_reference", "pendulum_reference", "twin_start_states"]
