"""PPO (Stable-Baselines3) on the dvp_rl tasks: construction, critic on the cost scale, rollouts.

The baseline of the comparison in Parag et al., "Value learning from trajectory
optimization and Sobolev descent: A step toward reinforcement learning with
superlinear convergence properties", ICRA 2022. Nothing of PPO is re-implemented:
this module builds SB3's ``PPO`` from ``hyperparams.yml`` and translates between
its normalised world and the tasks' cost scale::

    model = make_ppo("dvp_rl/Pendulum-v0", gamma=0.99, seed=0)
    model.learn(load_hyperparams("dvp_rl/Pendulum-v0")["n_timesteps"])
    V = critic_values(model, xs)                      # (N,), a cost-to-go like DVP's V(x)
    states, actions, costs = rollout(model, "dvp_rl/Pendulum-v0", xs, n_steps=200)
    J = discounted_cost(costs, gamma=0.99)            # (N,)
    save_ppo(model, "runs/ppo")                       # runs/ppo.zip + runs/ppo_vecnormalize.pkl

Speed: the networks are tiny, so one torch thread (``torch.set_num_threads(1)``, rl-zoo3's
``--num-threads 1``) trains several times faster than the default on a small machine.
That global setting is left to the caller (CLI, benchmark); this module changes none.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (registers the dvp_rl/ ids)
from baselines import sb3
from baselines.sb3 import HYPERPARAMS_PATH  # noqa: F401  (kept for callers of baselines.ppo)

#: episodes last at least this many effective horizons 1 / (1 - gamma): gamma^T <= e^-5 < 1%
DISCOUNT_HORIZONS = 5.0


class Rollout(NamedTuple):
    """Closed-loop trajectories of ``N`` episodes of ``n_steps`` steps.

    ``states`` (N, n_steps + 1, nx): ``x_0 .. x_n`` as observed (angles wrapped by the env);
    ``actions`` (N, n_steps, nu): the controls applied (within the action bounds);
    ``costs`` (N, n_steps): ``cost(x_t, u_t)``, the negative rewards.
    """

    states: np.ndarray
    actions: np.ndarray
    costs: np.ndarray


# ---------------------------------------------------------------------------- settings
def load_hyperparams(env_id: str) -> dict[str, Any]:
    """The PPO settings of ``env_id`` from ``hyperparams.yml`` (a fresh dict; see that file for the keys).

    ``sb3.load_hyperparams(env_id, "PPO")``.

    :raises KeyError: if ``env_id`` has no entry; the message lists the known ids
    """
    return sb3.load_hyperparams(env_id, "PPO")


def episode_steps(env_id: str, gamma: float) -> int:
    """Default training episode length for discount ``gamma``.

    ``max(registration max_episode_steps, ceil(DISCOUNT_HORIZONS / (1 - gamma)))``, so that
    an episode covers the states that matter to a discounted return (the tail weighs
    ``gamma^T <= e^-5``); the registration default alone where ``gamma == 1``.
    The episode only ends by truncation, on which SB3 bootstraps with the critic, so the
    length shapes the visited states rather than the value targets: an entry of
    ``hyperparams.yml`` may therefore fix a shorter ``max_episode_steps`` where long
    episodes let exploration noise carry the state far from the task's region.
    """
    _check_gamma(gamma)
    default = gym.spec(env_id).max_episode_steps or 1
    if gamma >= 1.0:
        return int(default)
    return max(int(default), math.ceil(DISCOUNT_HORIZONS / (1.0 - gamma)))


# ---------------------------------------------------------------------------- construction
def make_ppo(
    env_id: str,
    gamma: float,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tensorboard_log: str | Path | None = None,
    verbose: int = 0,
    device: str = "cpu",
    **overrides: Any,
) -> PPO:
    """An untrained SB3 ``PPO`` on ``env_id`` with the settings of ``hyperparams.yml``.

    The training env is a ``DummyVecEnv`` of ``n_envs`` copies (each ``Monitor``-wrapped,
    seeded ``seed + i``) of ``gymnasium.make(env_id, max_episode_steps=T, **env_kwargs)``,
    wrapped in ``VecNormalize(gamma=gamma, ...)`` when ``normalize`` is set. ``T`` is the
    entry's ``max_episode_steps`` when it sets one, else :func:`episode_steps`.

    :param env_id: a registered id with an entry in ``hyperparams.yml``
    :param gamma: discount factor of PPO and of VecNormalize's return statistics, in (0, 1]
    :param seed: seed of the envs and of PPO (torch, numpy, action space)
    :param env_kwargs: keyword arguments of ``gymnasium.make`` (env arguments; a
        ``max_episode_steps`` here replaces ``T``)
    :param tensorboard_log: folder of the tensorboard runs, or None
    :param verbose: SB3 verbosity
    :param device: torch device of the policy
    :param overrides: replace entries of ``hyperparams.yml`` (``n_envs``, ``normalize``,
        ``policy``, ``max_episode_steps``, or any ``PPO`` keyword argument such as ``n_steps``)
    :raises KeyError: for an env id without settings

    ``sb3.make_sb3("PPO", ...)`` with ``gamma`` required and the episode length above.
    """
    _check_gamma(gamma)
    if not overrides.get("max_episode_steps", load_hyperparams(env_id).get("max_episode_steps")):
        overrides["max_episode_steps"] = episode_steps(env_id, gamma)
    model = sb3.make_sb3(
        "PPO",
        env_id,
        seed=seed,
        gamma=gamma,
        env_kwargs=env_kwargs,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        device=device,
        **overrides,
    )
    return cast(PPO, model)


def _check_gamma(gamma: float) -> None:
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")


# ---------------------------------------------------------------------------- evaluation
def normalize_observations(model: PPO, states: np.ndarray) -> np.ndarray:
    """The policy's input for ``states`` (N, nx): VecNormalize's ``clip((x - mean) / sqrt(var + eps), +-clip_obs)``.

    Uses the running statistics of ``model.get_vec_normalize_env()`` (not updated
    here); ``states`` unchanged (as float32) when the model has no VecNormalize.
    Returns shape (N, nx), float32.
    """
    states = _check_states(model, states)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is None:
        return states.astype(np.float32)
    return np.asarray(vec_normalize.normalize_obs(states), dtype=np.float32)


def critic_values(model: PPO, states: np.ndarray) -> np.ndarray:
    """PPO's critic at ``states`` (N, nx), on the cost scale of a cost-to-go ``V(x)``; shape (N,).

    With ``vn = model.get_vec_normalize_env()`` and ``v_psi`` SB3's value head
    (``model.policy.predict_values``)::

        o_i = clip((x_i - vn.obs_rms.mean) / sqrt(vn.obs_rms.var + vn.epsilon), -vn.clip_obs, vn.clip_obs)
        V_i = -v_psi(o_i) * sqrt(vn.ret_rms.var + vn.epsilon)

    The first line is VecNormalize's observation normalisation (the identity when
    ``norm_obs`` is off). PPO trained on rewards divided by
    ``sqrt(ret_rms.var + epsilon)`` (no mean shift; ``clip_reward`` only clips
    single rewards, not values), so the critic is multiplied back by that factor
    (only when ``norm_reward`` is on); the minus sign turns the reward-to-go into a
    cost-to-go (reward = -cost). Without VecNormalize, ``V_i = -v_psi(x_i)``.

    ``V`` estimates the discounted (``model.gamma``) cost of the *stochastic*
    training policy, with the statistics as they are now; it is not the cost of
    the deterministic :func:`rollout`.
    """
    obs = normalize_observations(model, states)
    model.policy.set_training_mode(False)
    with torch.no_grad():
        obs_tensor, _ = model.policy.obs_to_tensor(obs)
        values = model.policy.predict_values(obs_tensor).cpu().numpy().reshape(-1).astype(np.float64)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None and vec_normalize.norm_reward:
        values = values * float(np.sqrt(vec_normalize.ret_rms.var + vec_normalize.epsilon))
    return -values


def rollout(
    model: PPO,
    env_id: str,
    start_states: np.ndarray,
    n_steps: int,
    env_kwargs: dict[str, Any] | None = None,
) -> Rollout:
    """Deterministic closed-loop rollouts of the policy from ``start_states`` (N, nx).

    :func:`policy_rollout` of :func:`ppo_actions`: at each step the observations are
    normalised with the model's VecNormalize statistics (:func:`normalize_observations`)
    and ``model.predict(..., deterministic=True)`` gives the actions of all episodes at once.

    :param n_steps: number of steps, >= 0
    :param env_kwargs: env arguments; must match those of training for a meaningful result
    :return: :class:`Rollout` of states (N, n_steps + 1, nx), actions (N, n_steps, nu),
        costs (N, n_steps)
    """
    start_states = _check_states(model, start_states)
    return policy_rollout(ppo_actions(model), env_id, start_states, n_steps, env_kwargs)


def ppo_actions(model: PPO) -> Callable[[np.ndarray], np.ndarray]:
    """``states (N, nx) -> actions (N, nu)``: the deterministic policy on normalised observations."""

    def act(states: np.ndarray) -> np.ndarray:
        return model.predict(normalize_observations(model, states), deterministic=True)[0]

    return act


def policy_rollout(
    act: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    start_states: np.ndarray,
    n_steps: int,
    env_kwargs: dict[str, Any] | None = None,
) -> Rollout:
    """Closed-loop rollouts of a controller from ``start_states`` (N, nx), in the env itself.

    One env per start state (``gymnasium.make(env_id, max_episode_steps=n_steps, **env_kwargs)``,
    reset with ``options={"state": x0}``); at each step ``act(states)`` maps the current
    states (N, nx) of all episodes to their actions (N, nu).

    :param n_steps: number of steps, >= 0
    :param env_kwargs: env arguments
    :return: :class:`Rollout` of states (N, n_steps + 1, nx), actions (N, n_steps, nu),
        costs (N, n_steps)
    """
    start_states = np.asarray(start_states, dtype=np.float64)
    if start_states.ndim != 2:
        raise ValueError(f"start_states must have shape (N, nx), got {start_states.shape}")
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    n, nx = start_states.shape
    make_kwargs = {**(env_kwargs or {}), "max_episode_steps": max(int(n_steps), 1)}
    episode_envs = [gym.make(env_id, **make_kwargs) for _ in range(max(n, 1))]  # one at least, for the action space
    try:
        nu = int(np.prod(episode_envs[0].action_space.shape))
        states = np.empty((n, n_steps + 1, nx))
        actions = np.empty((n, n_steps, nu))
        costs = np.empty((n, n_steps))
        for i, (env, x0) in enumerate(zip(episode_envs, start_states)):
            states[i, 0], _ = env.reset(options={"state": x0})
        for t in range(n_steps):
            actions[:, t] = np.asarray(act(states[:, t]), dtype=np.float64).reshape(n, nu)
            for i, env in enumerate(episode_envs[:n]):
                states[i, t + 1], reward, _, _, _ = env.step(actions[i, t])
                costs[i, t] = -reward
    finally:
        for env in episode_envs:
            env.close()
    return Rollout(states, actions, costs)


def discounted_cost(costs: np.ndarray, gamma: float) -> np.ndarray:
    """``sum_t gamma^t costs[:, t]`` of costs (N, n); shape (N,)."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ValueError(f"costs must have shape (N, n_steps), got shape {costs.shape}")
    _check_gamma(gamma)
    return costs @ gamma ** np.arange(costs.shape[1])


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

    The env is rebuilt as in :func:`make_ppo` (episode length from ``hyperparams.yml``
    or :func:`episode_steps`) from the saved ``gamma`` and ``n_envs``, unseeded. The
    statistics, when saved, are restored with all their flags (``norm_reward`` included),
    so :func:`critic_values` and :func:`rollout` see what the model was trained with.

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
    max_episode_steps = load_hyperparams(env_id).get("max_episode_steps") or episode_steps(env_id, gamma)
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
