"""The DDP oracle: a long-horizon receding-horizon DDP on an env's twin, played in the real env.

The reference return of each episode of a Gymnasium id without an exact optimum (the MuJoCo
ids): :class:`~dvp_rl.control.mpc.MPCController` on the twin (no terminal cost, undiscounted,
multi-start where its plan starts afresh), played by the one rollout loop
(:func:`dvp_rl.control.rollout.run_episode`) in the real env::

    oracle_returns("Reacher-v5", seeds=range(1000, 1100), settings=ORACLES["Reacher-v5"], cache_dir="runs/reference")

It is an *estimate* of each episode's optimal return (DDP finds local optima, and the twin is
not the real env to the last digit): an agent can score above it, and it bounds nothing.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from dvp_rl.control.mpc import MPCController
from dvp_rl.control.rollout import run_episode


@dataclass(frozen=True)
class OracleSettings:
    """A DDP oracle (:func:`oracle_episode`).

    :param horizon: planning horizon ``H`` (steps); near the episode's end it shrinks to the steps left
    :param max_iter: DDP iteration budget per solve
    :param th_stop: DDP stopping threshold
    :param pushes: multi-start: where the plan starts afresh (the first step, a warm start that did
        not converge) also solve from every full-bound push (the ``pushes`` guesses of
        :meth:`dvp_rl.control.ocp.OptimalControlProblem.initial_guesses`)
    """

    horizon: int = 50
    max_iter: int = 200
    th_stop: float = 1e-8
    pushes: bool = True

    def controller(self, model: object) -> MPCController:
        """The oracle's controller on ``model`` (a twin): undiscounted, no terminal cost, cold retry,
        the pushes where the plan starts afresh."""
        return MPCController(model, self.horizon, None, 1.0, self.max_iter, self.th_stop, retry_cold=True,
                             guesses=("pushes",) if self.pushes else (), guess_when="restart")  # fmt: skip


#: the DDP oracles of the MuJoCo ids; docs/REPRODUCTION.md ("MuJoCo twins") has how the horizons
#: were chosen. Reacher-v5: the whole episode, with pushes (its local optima: which way the arm
#: turns). InvertedDoublePendulum-v5: 1.5 s, no pushes (it starts near its upright).
ORACLES: dict[str, OracleSettings] = {
    "InvertedDoublePendulum-v5": OracleSettings(horizon=30, pushes=False),
    "Reacher-v5": OracleSettings(horizon=50),
}


class OracleEpisode(NamedTuple):
    """One episode of the DDP oracle: its ``seed``, ``episode_return`` (the real env's reward),
    ``length`` (steps), ``terminated`` and wall-clock ``seconds``."""

    seed: int
    episode_return: float
    length: int
    terminated: bool
    seconds: float


def oracle_episode(env_id: str, seed: int, settings: OracleSettings) -> OracleEpisode:
    """Play one episode of ``env_id`` (reset seed ``seed``) with the oracle's controller on its twin.

    At each step the real observation is mapped to the twin's state and the controller plans over
    ``min(H, steps left)`` steps (:meth:`~dvp_rl.control.mpc.MPCController.step`'s ``horizon``),
    warm-started from its previous plan; its first control is applied in the real env.

    :raises RuntimeError: the controller found no finite plan (the step and episode are named)
    """
    from envs.twins import twin_for

    twin = twin_for(env_id)
    controller = settings.controller(twin.make().unwrapped)
    real = gym.make(env_id)
    limit = int(real.spec.max_episode_steps)
    steps = 0

    def act(observations: np.ndarray, first: bool) -> np.ndarray:
        nonlocal steps
        if first:
            controller.reset()
            steps = 0
        x = twin.observation_to_state(observations[0])
        try:
            step = controller.step(x, horizon=min(settings.horizon, limit - steps))
        except RuntimeError as exc:
            raise RuntimeError(f"the DDP oracle of {env_id} found no finite plan at step {steps} of episode {seed}: {exc}") from exc
        steps += 1
        return step.action.astype(real.action_space.dtype)[None]

    start = time.perf_counter()
    try:
        run = run_episode(act, real, seed=int(seed))
    finally:
        real.close()
    return OracleEpisode(int(seed), run.episode_return, len(run.rewards), run.terminated, time.perf_counter() - start)


def _oracle_task(task: tuple[str, int, OracleSettings]) -> OracleEpisode:
    return oracle_episode(*task)


def oracle_returns(env_id: str, seeds: np.ndarray, settings: OracleSettings, cache_dir: Path | None = None,
                   n_workers: int = 1) -> np.ndarray:  # fmt: skip
    """The DDP oracle's return of each episode (N,), played in ``n_workers`` forked processes and cached
    per episode in ``cache_dir`` (a JSON file per env and settings)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    cached: dict[str, float] = {}
    path = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps({"env": env_id, "settings": asdict(settings), "format": 2}, sort_keys=True).encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"oracle__{env_id}__{key}.json"
        if path.exists():
            cached = json.loads(path.read_text())["returns"]
    missing = [int(s) for s in dict.fromkeys(seeds.tolist()) if str(int(s)) not in cached]
    if missing:
        tasks = [(env_id, s, settings) for s in missing]
        if n_workers > 1 and len(tasks) > 1:
            with multiprocessing.get_context("fork").Pool(min(n_workers, len(tasks))) as pool:
                episodes = pool.map(_oracle_task, tasks, chunksize=1)
        else:
            episodes = [_oracle_task(t) for t in tasks]
        cached.update({str(e.seed): e.episode_return for e in episodes})
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"env": env_id, "settings": asdict(settings), "returns": cached}, indent=1))
            tmp.replace(path)
    return np.array([cached[str(int(s))] for s in seeds], dtype=np.float64)
