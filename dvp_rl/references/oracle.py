"""The DDP oracle: a long-horizon receding-horizon DDP on an env's model, played in the real env.

The reference return of each episode of an id without an exact optimum (the MuJoCo ids, the
arms): :class:`~dvp_rl.control.mpc.MPCController` on the env's model (no terminal cost,
undiscounted, multi-start where its plan starts afresh), played by the one rollout loop
(:func:`dvp_rl.control.rollout.run_episode`) in the real env. The model is the twin of a Gymnasium
id (:data:`envs.twins.TWINS`), or a fresh instance of a dvp_rl id's own differentiable env
(``gymnasium.make(id).unwrapped``: the observation is the state; the controller's torques reach
the real env through its wrappers' :func:`envs.wrappers.action_map`, e.g. the arms' ``RescaleAction``)::

    oracle_returns("Reacher-v5", seeds=range(1000, 1100), settings=ORACLES["Reacher-v5"], cache_dir="runs/reference")
    oracle_returns("dvp_rl/PandaReach-v0", seeds=range(1000, 1010), settings=ORACLES["dvp_rl/PandaReach-v0"])

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

from dvp_rl.config import integer
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
    :raises ValueError: ``horizon`` or ``max_iter`` not an integer >= 1, ``th_stop`` not > 0
    """

    horizon: int = 50
    max_iter: int = 200
    th_stop: float = 1e-8
    pushes: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizon", integer("oracle horizon", self.horizon, 1))
        object.__setattr__(self, "max_iter", integer("oracle max_iter", self.max_iter, 1))
        if not float(self.th_stop) > 0:
            raise ValueError(f"oracle th_stop must be > 0, got {self.th_stop!r}")

    def controller(self, model: object) -> MPCController:
        """The oracle's controller on ``model`` (a twin): undiscounted, no terminal cost, cold retry,
        the pushes where the plan starts afresh."""
        return MPCController(model, self.horizon, None, 1.0, self.max_iter, self.th_stop, retry_cold=True,
                             guesses=("pushes",) if self.pushes else (), guess_when="restart")  # fmt: skip


#: the DDP oracles of the MuJoCo ids and the arm; docs/REPRODUCTION.md ("MuJoCo twins", "PandaReach-v0")
#: has how the horizons were chosen. Reacher-v5: the whole episode, with pushes (its local optima:
#: which way the arm turns). InvertedDoublePendulum-v5: 1.5 s, no pushes (it starts near its upright).
#: dvp_rl/PandaReach-v0: 1.5 s ahead at every step (a reach's cost dies out within the env's
#: ``value_horizon``), each solve to convergence, no pushes (full-torque pushes of a 7-joint arm are
#: no candidate reaches).
ORACLES: dict[str, OracleSettings] = {
    "InvertedDoublePendulum-v5": OracleSettings(horizon=30, pushes=False),
    "Reacher-v5": OracleSettings(horizon=50),
    "dvp_rl/PandaReach-v0": OracleSettings(horizon=150, max_iter=200, pushes=False),
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
    """Play one episode of ``env_id`` (reset seed ``seed``) with the oracle's controller on its model.

    At each step the real observation is mapped to the model's state (the twin's map; a dvp_rl id's
    observation is the state) and the controller plans over ``min(H, steps left)`` steps
    (:meth:`~dvp_rl.control.mpc.MPCController.step`'s ``horizon``), warm-started from its previous
    plan; its first control is applied in the real env (a twin's control as it is; a dvp_rl id's
    through :func:`envs.wrappers.action_map` of the real env: always inside its action space).

    :raises RuntimeError: the controller found no finite plan (the step and episode are named)
    :raises ValueError: an id that is neither a Gymnasium id with a twin nor a dvp_rl id
    """
    from envs.base import DifferentiableEnv
    from envs.twins import TWINS, twin_for
    from envs.wrappers import action_map

    real = gym.make(env_id)
    if env_id in TWINS:
        twin = twin_for(env_id)
        model, to_state = twin.make().unwrapped, twin.observation_to_state
        to_action = lambda u: u  # noqa: E731  (the twin's controls are the real env's actions)
    elif isinstance(real.unwrapped, DifferentiableEnv):
        model, to_state, to_action = gym.make(env_id).unwrapped, lambda obs: obs, action_map(real)  # a fresh instance: its own state
    else:
        real.close()
        raise ValueError(f"no model of {env_id!r} for the DDP oracle: neither a twin ({sorted(TWINS)}) nor a dvp_rl id")
    controller = settings.controller(model)
    limit = int(real.spec.max_episode_steps)
    steps = 0

    def act(observations: np.ndarray, first: bool) -> np.ndarray:
        nonlocal steps
        if first:
            controller.reset()
            steps = 0
        x = to_state(observations[0])
        try:
            step = controller.step(x, horizon=min(settings.horizon, limit - steps))
        except RuntimeError as exc:
            raise RuntimeError(f"the DDP oracle of {env_id} found no finite plan at step {steps} of episode {seed}: {exc}") from exc
        steps += 1
        return np.asarray(to_action(step.action)).astype(real.action_space.dtype)[None]

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
    per episode in ``cache_dir`` (a JSON file per env and settings, ``oracle__<env id, '/' written '-'>__<hash>.json``)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    cached: dict[str, float] = {}
    path = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps({"env": env_id, "settings": asdict(settings), "format": 2}, sort_keys=True).encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"oracle__{env_id.replace('/', '-')}__{key}.json"
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
