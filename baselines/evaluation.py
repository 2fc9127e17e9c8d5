"""rl-zoo3-style scoring of any controller in the real Gymnasium env: one episode per seed.

Every agent of a comparison (SB3's PPO, SAC and TD3, DVP's MPC, a value-iteration
reference) is scored by the same loop: a fresh ``gymnasium.make(env_id)``, ``reset(seed=s)``
for each episode seed, the deterministic action ``policy.predict(obs, deterministic=True)``
at each step, the env's own reward summed until the episode ends::

    results = evaluate_episodes(model, "Pendulum-v1", seeds=range(1000, 1100))
    print(results.summary())          # mean +- std (worst w, 100 episodes), median ms/step
    results.returns                   # (100,)

No torch and no SB3 here: ``policy`` is anything with SB3's ``predict`` signature.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the dvp_rl/ ids)


class Predictor(Protocol):
    """What :func:`evaluate_episodes` needs of a controller: SB3's ``predict``."""

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


class EpisodeResults(NamedTuple):
    """Scores of ``n`` episodes, one per seed.

    ``seeds`` (n,): the reset seeds; ``returns`` (n,): the undiscounted sum of the env's
    rewards; ``lengths`` (n,): steps per episode; ``step_ms`` (sum(lengths),): wall-clock of
    each control step in milliseconds (observation normalisation + ``predict``, not the
    env's ``step``), the episodes one after the other.
    """

    seeds: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    step_ms: np.ndarray

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        """Population standard deviation of the returns (numpy's and rl-zoo3's ``std``)."""
        return float(np.std(self.returns))

    @property
    def worst_return(self) -> float:
        return float(np.min(self.returns))

    @property
    def median_step_ms(self) -> float:
        return float(np.median(self.step_ms))

    @property
    def max_step_ms(self) -> float:
        return float(np.max(self.step_ms))

    def summary(self) -> str:
        """One line: ``mean +- std (worst w, n episodes), m ms/step`` (median step time)."""
        return (
            f"{self.mean_return:.1f} +- {self.std_return:.1f} (worst {self.worst_return:.1f}, "
            f"{len(self.returns)} episodes), {self.median_step_ms:.3f} ms/step"
        )


def evaluate_episodes(
    policy: Predictor,
    env_id: str,
    seeds: Iterable[int],
    env_kwargs: dict[str, Any] | None = None,
) -> EpisodeResults:
    """Run one deterministic episode of ``policy`` per seed in ``gymnasium.make(env_id, **env_kwargs)``.

    Each episode starts from ``env.reset(seed=s)`` and lasts until the env terminates or
    truncates it (the registration's ``max_episode_steps`` unless ``env_kwargs`` sets one).
    When ``policy`` has SB3's ``get_vec_normalize_env()`` and it returns a ``VecNormalize``,
    observations pass through its ``normalize_obs`` (its statistics are not updated), as
    rl-zoo3 loads the saved statistics for evaluation. ``predict`` receives one
    unbatched observation, ``episode_start`` (true at an episode's first step, so a controller
    with memory, e.g. an MPC's warm start, starts afresh) and ``deterministic=True``; its
    action goes to ``env.step`` as it is.

    :param policy: any object with SB3's ``predict(obs, state, episode_start, deterministic)``
    :param env_id: a registered Gymnasium id
    :param seeds: one reset seed per episode
    :param env_kwargs: keyword arguments of ``gymnasium.make``
    :return: :class:`EpisodeResults`; the same seeds give the same returns for a
        deterministic policy
    :raises ValueError: for no seeds
    """
    seeds = np.asarray(list(seeds), dtype=np.int64)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    get_vec_normalize = getattr(policy, "get_vec_normalize_env", None)
    vec_normalize = get_vec_normalize() if callable(get_vec_normalize) else None
    env = gym.make(env_id, **(env_kwargs or {}))
    returns = np.zeros(len(seeds))
    lengths = np.zeros(len(seeds), dtype=np.int64)
    step_ns: list[int] = []
    try:
        for i, seed in enumerate(seeds):
            obs, _ = env.reset(seed=int(seed))
            done = False
            while not done:
                start = time.perf_counter_ns()
                policy_obs = obs if vec_normalize is None else vec_normalize.normalize_obs(obs)
                action, _ = policy.predict(policy_obs, episode_start=np.array([lengths[i] == 0]), deterministic=True)
                step_ns.append(time.perf_counter_ns() - start)
                obs, reward, terminated, truncated, _ = env.step(action)
                returns[i] += float(reward)
                lengths[i] += 1
                done = terminated or truncated
    finally:
        env.close()
    return EpisodeResults(seeds, returns, lengths, np.asarray(step_ns, dtype=np.float64) / 1e6)
