"""PPO (Stable-Baselines3) on the dvp_rl tasks: its critic on the cost scale, its policy on states, save and load.

The baseline of the comparison in Parag et al., "Value learning from trajectory
optimization and Sobolev descent: A step toward reinforcement learning with
superlinear convergence properties", ICRA 2022. Nothing of PPO is re-implemented:
:func:`baselines.sb3.make_sb3` builds SB3's ``PPO`` from ``hyperparams.yml`` and this module
translates between its normalised world and the tasks' cost scale::

    model = make_sb3("PPO", "dvp_rl/Pendulum-v0", gamma=0.99, seed=0)
    model.learn(load_hyperparams("dvp_rl/Pendulum-v0", "PPO")["n_timesteps"])
    V = critic_values(model, xs)                      # (N,), a cost-to-go like DVP's V(x)
    act = ppo_actions(model)                          # states (N, nx) -> actions (N, nu), for closed loops
    save_ppo(model, "runs/ppo")                       # runs/ppo.zip + runs/ppo_vecnormalize.pkl

Speed: the networks are tiny, so one torch thread (``torch.set_num_threads(1)``, rl-zoo3's
``--num-threads 1``) trains several times faster than the default on a small machine.
That global setting is left to the caller (CLI, benchmark); this module changes none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (registers the dvp_rl/ ids)
from baselines import sb3

# ---------------------------------------------------------------------------- evaluation
def critic_values(model: PPO, states: np.ndarray) -> np.ndarray:
    """PPO's critic at ``states`` (N, nx), on the cost scale of a cost-to-go ``V(x)``; shape (N,).

    :func:`baselines.sb3.critic_costs` (VecNormalize's observation normalisation in, its reward
    scaling back out, the sign of a cost) with the shape checked against the model's observations.
    ``V`` estimates the discounted (``model.gamma``) cost of the *stochastic* training policy, with
    the statistics as they are now; it is not the cost of the deterministic policy's closed loop.
    """
    return sb3.critic_costs(model, _check_states(model, states))


def ppo_actions(model: PPO) -> Callable[[np.ndarray], np.ndarray]:
    """``states (N, nx) -> actions (N, nu)``: the deterministic policy on normalised observations
    (a policy for :func:`dvp_rl.control.rollout.rollout_from_states`)."""

    def act(states: np.ndarray) -> np.ndarray:
        return model.predict(sb3.normalize_observations(model, _check_states(model, states)), deterministic=True)[0]

    return act


def _check_states(model: PPO, states: np.ndarray) -> np.ndarray:
    states = np.asarray(states, dtype=np.float64)
    nx = model.observation_space.shape[0]
    if states.ndim != 2 or states.shape[1] != nx:
        raise ValueError(f"states must have shape (N, {nx}), got shape {states.shape}")
    return states


# ---------------------------------------------------------------------------- persistence
def vecnormalize_path(path: str | Path) -> Path:
    """Where the VecNormalize statistics of the model saved at ``path`` live: ``{stem}_vecnormalize.pkl``."""
    zip_path = _zip_path(path)
    return zip_path.with_name(f"{zip_path.stem}_vecnormalize.pkl")


def save_ppo(model: PPO, path: str | Path) -> Path:
    """Save ``model`` to ``{path}.zip`` and its VecNormalize statistics to :func:`vecnormalize_path`.

    A stale statistics file of an earlier save is removed when ``model`` has no
    VecNormalize. Returns the path of the zip.
    """
    zip_path = _zip_path(path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(zip_path)
    stats_path = vecnormalize_path(zip_path)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(stats_path)
    elif stats_path.exists():
        stats_path.unlink()
    return zip_path


def load_ppo(
    path: str | Path,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    training: bool = False,
) -> PPO:
    """Load a model saved by :func:`save_ppo` with a fresh training env and its VecNormalize statistics.

    The env is rebuilt as :func:`baselines.sb3.make_sb3` builds it (episode length from ``hyperparams.yml``
    or :func:`baselines.sb3.episode_steps`) from the saved ``gamma`` and ``n_envs``, unseeded. The
    statistics, when saved, are restored with all their flags (``norm_reward`` included),
    so :func:`critic_values` and :func:`ppo_actions` see what the model was trained with.

    .. warning:: **Loading a file runs code from it: load only files you wrote yourself.**
       This is Stable-Baselines3's format: the zip's ``data`` entry holds cloudpickled objects
       and the ``_vecnormalize.pkl`` sidecar is a pickle, so a crafted zip or sidecar executes
       arbitrary code in this process as soon as it is loaded. No check here can make an
       untrusted file safe; treat a PPO file like a Python script. (The benchmark never loads
       one: it evaluates the model it trained in the same run, in memory.)

    :param training: whether VecNormalize keeps updating its statistics (continue ``learn``)
    """
    zip_path = _zip_path(path)
    model = PPO.load(zip_path, device=device)
    gamma, n_envs = model.gamma, model.n_envs
    max_episode_steps = sb3.load_hyperparams(env_id, "PPO").get("max_episode_steps") or sb3.episode_steps(env_id, gamma)
    vec_env = sb3.make_training_env(env_id, n_envs, None, env_kwargs, False, gamma, max_episode_steps)
    stats_path = vecnormalize_path(zip_path)
    if stats_path.exists():
        vec_env = VecNormalize.load(str(stats_path), vec_env)
        vec_env.training = training
    model.set_env(vec_env)
    return model


def _zip_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".zip" else path.with_name(path.name + ".zip")
