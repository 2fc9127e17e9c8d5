"""Optimal references of an id's episodes: each episode's optimal return, and the optimal value at its start.

An agent scored in the real env (:func:`dvp_rl.control.rollout.evaluate_episodes`, one episode per
reset seed) is compared with the best return of the same episode, and its critic with the optimal
cost-to-go of its discount at the episode's start state::

    reference = REFERENCES["Pendulum-v1"](Path("runs/zoo/reference"), 2)
    optimum = reference.optimal_returns(np.arange(1000, 1100))      # (100,)
    V = reference.value(reference.start_states(np.arange(1000, 1100)), 0.99)

``Pendulum-v1``'s reference is exact (grid value iteration with its step and reward); the MuJoCo
ids' and the arm's (``dvp_rl/PandaReach-v0``) is a DDP oracle (:mod:`dvp_rl.references.oracle`), an
*estimate* an agent can beat. The ids are Gymnasium ids with a twin (:data:`envs.twins.TWINS`) or
dvp_rl ids whose env is its own model (:func:`is_own_model`: the observation is the state). No torch here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dvp_rl.control.rollout import evaluate_episodes
from dvp_rl.references.oracle import ORACLES, OracleSettings, oracle_returns


class Reference(NamedTuple):
    """An env's optimal reference.

    ``name``: what it is, in words; ``optimal_returns(seeds) -> (N,)``: the optimal return of
    those episodes; ``start_states(seeds) -> (N, nx)``: the model's states the episodes start from
    (the twin's; a dvp_rl id's own); ``value(states, gamma) -> (N,)``: the optimal cost-to-go of
    that discount from those states, in the model's cost (see :data:`REWARD_OFFSETS`).
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


def is_own_model(env_id: str) -> bool:
    """Whether ``gymnasium.make(env_id).unwrapped`` is a :class:`envs.base.DifferentiableEnv`: the env is its
    own model (no twin; its observation is the state), as every dvp_rl id.

    :raises ValueError: an unknown id (:func:`envs.make`)
    """
    import envs
    from envs.base import DifferentiableEnv

    env = envs.make(env_id)
    try:
        return isinstance(env.unwrapped, DifferentiableEnv)
    finally:
        env.close()


def model_of(env_id: str) -> tuple[str, dict[str, Any]]:
    """The id and ``gymnasium.make`` arguments of the model of ``env_id``: its twin's for a Gymnasium id with
    a twin, the id itself (no arguments) for a dvp_rl id."""
    from envs.twins import TWINS, twin_for

    if env_id in TWINS:
        twin = twin_for(env_id)
        return twin.twin_id, dict(twin.twin_kwargs)
    return env_id, {}


def twin_start_states(env_id: str, seeds: np.ndarray) -> np.ndarray:
    """The model's states from which ``gymnasium.make(env_id).reset(seed=s)`` starts, for each seed; (N, nx):
    the twin's state of the reset observation, or for a dvp_rl id (its own model) the observation itself."""
    import gymnasium as gym

    from envs.twins import TWINS, twin_for

    to_state = twin_for(env_id).observation_to_state if env_id in TWINS else lambda obs: np.asarray(obs, dtype=np.float64)
    env = gym.make(env_id)
    try:
        return np.array([to_state(env.reset(seed=int(seed))[0]) for seed in seeds])
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


def ddp_oracle_reference(env_id: str, cache_dir: Path, n_workers: int = 1, settings: OracleSettings | None = None) -> Reference:
    """The reference of an env without an exact one: a DDP oracle on its model (:func:`model_of`: the twin
    of a Gymnasium id, a dvp_rl id's own env).

    ``optimal_returns``: :func:`~dvp_rl.references.oracle.oracle_returns` with ``settings``, an
    *estimate* of each episode's optimal return (DDP finds local optima, and a twin is not the real
    env to the last digit): an agent can score above it (negative regret), and it bounds nothing.
    ``value``: :func:`dvp_rl.references.ground_truth.ground_truth` on the model (multi-start DDP of
    its ``value_horizon`` steps, after which its running cost has died out; the same horizon for
    every discount), cached in ``cache_dir``.

    :param settings: the oracle (``None``: the env's :data:`~dvp_rl.references.oracle.ORACLES` entry)
    :raises KeyError: for an id without oracle settings when ``settings`` is ``None``
    """
    import envs
    from dvp_rl.references.ground_truth import ground_truth

    settings = ORACLES[env_id] if settings is None else settings
    model_id, model_kwargs = model_of(env_id)
    horizon = int(envs.make(model_id, model_kwargs).unwrapped.value_horizon)
    model = "the twin" if model_id != env_id else "the env's model"
    multi_start = ", multi-start" if settings.pushes else ""

    def value(states: np.ndarray, gamma: float) -> np.ndarray:
        truth = ground_truth(model_id, states, gamma, horizon, dict(model_kwargs), cache_dir=cache_dir, n_workers=n_workers)
        return truth.V

    return Reference(
        f"DDP oracle: receding-horizon DDP on {model} (H={settings.horizon}{multi_start}) played in the real env, "
        f"an estimate; values: DDP of T={horizon} on {model}",
        lambda seeds: oracle_returns(env_id, seeds, settings, cache_dir, n_workers),
        lambda seeds: twin_start_states(env_id, seeds),
        value,
    )


#: id -> its reference, ``builder(cache_dir, n_workers)`` (build it once per run: it solves)
REFERENCES: dict[str, Callable[[Path, int], Reference]] = {
    "Pendulum-v1": pendulum_reference,
    **{env_id: functools.partial(ddp_oracle_reference, env_id) for env_id in ORACLES},
}


__all__ = ["REFERENCES", "REWARD_OFFSETS", "Reference", "ddp_oracle_reference", "is_own_model", "model_of", "pendulum_reference",
           "twin_start_states"]  # fmt: skip
