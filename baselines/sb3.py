"""Stable-Baselines3's PPO, SAC and TD3 from ``hyperparams.yml``, trained under a wall-clock cap.

One factory for every algorithm: the settings of ``(algo, env_id)`` in ``hyperparams.yml``
(rl-zoo3's where the entry comes from rl-zoo3), translated into SB3 constructor
arguments the way rl-zoo3 does it (``n_envs``, ``normalize``, ``noise_type``/``noise_std``,
``policy_kwargs``, ``train_freq``), without evaluating any string::

    model = make_sb3("TD3", "Pendulum-v1", seed=0)
    run = learn_capped(model, load_hyperparams("Pendulum-v1", "TD3")["n_timesteps"], max_seconds=600)
    run.env_steps, run.wall_s, run.hit_cap
    critic_costs(model, observations)          # the critic as a cost-to-go, (N,)

Nothing here changes torch's global settings; with these tiny networks one torch thread
(``torch.set_num_threads(1)``, rl-zoo3's ``--num-threads 1``) is faster on a small machine,
and that choice is left to the caller.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium
import numpy as np
import torch
import yaml
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

import envs  # noqa: F401  (registers the dvp_rl/ ids)

__all__ = [
    "ALGORITHMS",
    "TrainingRun",
    "WallClockCap",
    "action_noise",
    "check_algo",
    "check_hyperparams",
    "critic_costs",
    "default_gamma",
    "learn_capped",
    "load_hyperparams",
    "make_sb3",
    "make_training_env",
    "episode_steps",
    "normalize_observations",
    "resolve_policy_kwargs",
]

#: the per-algorithm, per-env settings file, rl-zoo3 style
HYPERPARAMS_PATH = Path(__file__).with_name("hyperparams.yml")

#: the algorithms :func:`make_sb3` builds, by the name of their section in ``hyperparams.yml``
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "TD3": TD3}

#: training episodes last at least this many effective horizons 1 / (1 - gamma): gamma^T <= e^-5 < 1%
DISCOUNT_HORIZONS = 5.0

#: settings that shape the env or are translated here, not passed to the SB3 constructor as they are
_ENV_KEYS = ("n_timesteps", "n_envs", "normalize", "max_episode_steps", "policy", "noise_type", "noise_std")
#: arguments of the SB3 constructors that :func:`make_sb3`'s caller sets, not the settings
_CALLER_KEYS = ("self", "env", "seed", "tensorboard_log", "verbose", "device", "_init_setup_model")


class TrainingRun(NamedTuple):
    """What :func:`learn_capped` spent.

    ``model``: the trained model (the one given); ``env_steps``: env interactions,
    ``model.num_timesteps`` (all ``n_envs`` copies counted); ``wall_s``: training wall-clock
    in seconds (:meth:`WallClockCap.elapsed`); ``hit_cap``: whether the wall-clock cap stopped it before
    ``total_timesteps``.
    """

    model: BaseAlgorithm
    env_steps: int
    wall_s: float
    hit_cap: bool


# ---------------------------------------------------------------------------- settings
def check_algo(algo: str) -> str:
    """The canonical name (``"PPO"``, ``"SAC"``, ``"TD3"``) of ``algo``, any case.

    :raises ValueError: for an algorithm :func:`make_sb3` does not build; the message lists those it does
    """
    name = str(algo).upper()
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; supported: {sorted(ALGORITHMS)}")
    return name


def load_hyperparams(env_id: str, algo: str) -> dict[str, Any]:
    """The settings of ``algo`` on ``env_id`` from ``hyperparams.yml`` (a fresh dict; see that file for the keys).

    :raises ValueError: for an unknown algorithm
    :raises KeyError: if ``env_id`` has no entry in the algorithm's section; the message lists its ids
    """
    name = check_algo(algo)
    with HYPERPARAMS_PATH.open() as f:
        section = yaml.safe_load(f).get(name) or {}
    if env_id not in section:
        raise KeyError(f"no {name} hyper-parameters for {env_id!r} in {HYPERPARAMS_PATH.name}; known ids: {sorted(section)}")
    return dict(section[env_id])


def action_noise(noise_type: str, noise_std: float, n_actions: int) -> ActionNoise:
    """rl-zoo3's exploration noise: ``"normal"`` or ``"ornstein-uhlenbeck"``, zero mean, ``noise_std`` per dimension.

    SB3's off-policy algorithms add it to the action scaled to [-1, 1], so ``noise_std`` is a
    fraction of half the action range.

    :raises ValueError: for another ``noise_type``
    """
    mean, sigma = np.zeros(n_actions), float(noise_std) * np.ones(n_actions)
    kind = noise_type.strip()
    if kind == "normal":
        return NormalActionNoise(mean=mean, sigma=sigma)
    if kind == "ornstein-uhlenbeck":
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    raise ValueError(f"noise_type must be 'normal' or 'ornstein-uhlenbeck', got {noise_type!r}")


def resolve_policy_kwargs(policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Turn an ``activation_fn`` given by name in the YAML (``"ReLU"``) into the ``torch.nn`` class.

    :raises ValueError: for a name that is not a ``torch.nn`` class
    """
    kwargs = dict(policy_kwargs)
    name = kwargs.get("activation_fn")
    if isinstance(name, str):
        if not hasattr(torch.nn, name):
            raise ValueError(f"policy_kwargs.activation_fn={name!r} is not a torch.nn class")
        kwargs["activation_fn"] = getattr(torch.nn, name)
    return kwargs


def _whole(value: Any) -> bool:
    """Whether ``value`` is an integer (an integral float too, as YAML and JSON may write it), not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer()


def check_hyperparams(algo: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings :func:`make_sb3` would build ``algo`` on ``env_id`` with (the ``hyperparams.yml`` entry updated
    with ``overrides``), checked without building anything: every key is one :func:`make_sb3` translates
    (``n_timesteps``, ``n_envs``, ``normalize``, ``max_episode_steps``, ``policy``, ``noise_type``, ``noise_std``)
    or a keyword argument of the SB3 class (not one the caller sets: ``env``, ``seed``, ``device``, ...);
    ``n_timesteps``, ``n_envs`` and ``max_episode_steps`` are integers >= 1; ``noise_type`` and
    ``policy_kwargs.activation_fn`` are known.

    :raises ValueError: naming the algorithm, the env id and the problem; for an unknown algorithm or an id
        without an entry too
    """
    name = check_algo(algo)
    try:
        settings = {**load_hyperparams(env_id, name), **(overrides or {})}
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    where = f"{name} settings for {env_id}"
    accepted = set(inspect.signature(ALGORITHMS[name].__init__).parameters) - set(_CALLER_KEYS)
    unknown = sorted(set(settings) - accepted - set(_ENV_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; the keys are make_sb3's {list(_ENV_KEYS)} and keyword arguments of "
                         f"stable_baselines3.{name}: {sorted(accepted)}")  # fmt: skip
    for key in ("n_timesteps", "n_envs", "max_episode_steps"):
        value = settings.get(key)
        if (key == "n_timesteps" or value is not None) and not (_whole(value) and value >= 1):
            raise ValueError(f"{where}: {key} must be an integer >= 1, got {value!r}")
    if settings.get("noise_type") is not None:
        try:
            action_noise(settings["noise_type"], settings.get("noise_std", 0.1), 1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if isinstance(settings.get("policy_kwargs"), dict):
        try:
            resolve_policy_kwargs(settings["policy_kwargs"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return settings


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
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    default = gymnasium.spec(env_id).max_episode_steps or 1
    if gamma >= 1.0:
        return int(default)
    return max(int(default), math.ceil(DISCOUNT_HORIZONS / (1.0 - gamma)))


def default_gamma(algo: str) -> float:
    """SB3's default discount of ``algo`` (its constructor's ``gamma``)."""
    return float(inspect.signature(ALGORITHMS[check_algo(algo)].__init__).parameters["gamma"].default)


# ---------------------------------------------------------------------------- construction
def make_training_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    normalize: bool | dict[str, Any] | None = False,
    gamma: float = 0.99,
    max_episode_steps: int | None = None,
) -> VecEnv:
    """A ``DummyVecEnv`` of ``n_envs`` Monitor-wrapped copies (seeded ``seed + i``), ``VecNormalize``-d when asked.

    :param env_kwargs: keyword arguments of ``gymnasium.make``; a ``max_episode_steps`` here
        replaces the argument
    :param normalize: ``True`` (observations and rewards), a mapping of ``VecNormalize``
        keyword arguments, or ``False``/``None`` for no normalisation
    :param gamma: discount of ``VecNormalize``'s return statistics
    :param max_episode_steps: training episode length; ``None`` keeps the registration's
    """
    # render_mode=None: SB3's make_vec_env asks for "rgb_array" by default, which the dvp_rl envs reject.
    make_kwargs: dict[str, Any] = {"render_mode": None}
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = int(max_episode_steps)
    make_kwargs.update(env_kwargs or {})
    vec_env = make_vec_env(env_id, n_envs=int(n_envs), seed=seed, env_kwargs=make_kwargs, vec_env_cls=DummyVecEnv)
    if normalize is False or normalize is None:
        return vec_env
    normalize_kwargs = {} if normalize is True else dict(normalize)
    return VecNormalize(vec_env, gamma=gamma, **normalize_kwargs)


def make_sb3(
    algo: str,
    env_id: str,
    seed: int | None = None,
    gamma: float | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tensorboard_log: str | Path | None = None,
    verbose: int = 0,
    device: str = "cpu",
    **overrides: Any,
) -> BaseAlgorithm:
    """An untrained SB3 ``algo`` on ``env_id`` with the settings of ``hyperparams.yml``.

    The entry of ``(algo, env_id)``, updated with ``overrides``, becomes:

    - the training env of :func:`make_training_env`: ``n_envs`` copies (default 1),
      ``VecNormalize(gamma=gamma)`` when ``normalize`` is set, episodes of
      ``max_episode_steps`` (default: :func:`episode_steps` of a ``gamma`` the caller gives, long
      enough for that discount; else the registration's);
    - ``action_noise``: :func:`action_noise` of ``noise_type`` / ``noise_std`` (off-policy
      algorithms);
    - ``policy_kwargs`` through :func:`resolve_policy_kwargs`; ``train_freq: [n, unit]`` as
      the tuple SB3 expects;
    - every other key as a keyword argument of the SB3 class (``n_timesteps`` is the
      caller's budget and is dropped).

    :param algo: ``"PPO"``, ``"SAC"`` or ``"TD3"`` (any case)
    :param env_id: a registered id with an entry in the algorithm's section
    :param seed: seed of the envs and of the algorithm (torch, numpy, action space)
    :param gamma: discount of the algorithm and of ``VecNormalize``; ``None``: the entry's,
        else SB3's default (:func:`default_gamma`)
    :param env_kwargs: keyword arguments of ``gymnasium.make``
    :param tensorboard_log: folder of the tensorboard runs, or None
    :param verbose: SB3 verbosity
    :param device: torch device of the policy
    :param overrides: replace entries of ``hyperparams.yml`` (any of its keys)
    :raises ValueError: for an unknown algorithm, ``gamma`` outside (0, 1], or an unknown ``noise_type``
    :raises KeyError: for an env id without settings for ``algo``
    """
    name = check_algo(algo)
    hyperparams = {**load_hyperparams(env_id, name), **overrides}
    entry_gamma = hyperparams.pop("gamma", default_gamma(name))
    if gamma is not None and not hyperparams.get("max_episode_steps"):  # a discount of the caller's: episodes that cover it
        hyperparams["max_episode_steps"] = episode_steps(env_id, float(gamma))
    gamma = float(entry_gamma if gamma is None else gamma)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    settings = {key: hyperparams.pop(key) for key in _ENV_KEYS if key in hyperparams}
    vec_env = make_training_env(
        env_id,
        n_envs=settings.get("n_envs", 1),
        seed=seed,
        env_kwargs=env_kwargs,
        normalize=settings.get("normalize", False),
        gamma=gamma,
        max_episode_steps=settings.get("max_episode_steps"),
    )
    if settings.get("noise_type") is not None:
        n_actions = int(np.prod(vec_env.action_space.shape))
        hyperparams["action_noise"] = action_noise(settings["noise_type"], settings.get("noise_std", 0.1), n_actions)
    if "policy_kwargs" in hyperparams:
        hyperparams["policy_kwargs"] = resolve_policy_kwargs(hyperparams["policy_kwargs"])
    if isinstance(hyperparams.get("train_freq"), list):
        hyperparams["train_freq"] = tuple(hyperparams["train_freq"])
    return ALGORITHMS[name](
        settings.get("policy", "MlpPolicy"),
        vec_env,
        gamma=gamma,
        seed=seed,
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        verbose=verbose,
        device=device,
        **hyperparams,
    )


# ---------------------------------------------------------------------------- training
class WallClockCap(BaseCallback):
    """Stops ``learn`` once ``max_seconds`` of training wall-clock have passed; time spent inside
    :meth:`paused` (evaluations during training) is left out.

    The clock starts at ``on_training_start`` and stops at ``on_training_end``; it is checked at
    every ``on_step``: every env step of SB3's rollouts (SB3 calls callbacks there, not inside the
    gradient phase, so a run can overshoot the cap by one gradient phase: one PPO update, or the
    gradient steps an off-policy algorithm runs between two collections), once per iteration of
    DVP (which overshoots by at most one iteration). Put it first in a ``CallbackList``, so that
    its clock runs before the other callbacks' ``on_training_start`` evaluates anything.

    Why one class: every comparison caps SB3's agents and DVP alike, with the same clock.

    :param max_seconds: the cap, > 0
    :raises ValueError: for ``max_seconds <= 0`` (or NaN)

    Attributes: ``hit`` (whether the cap stopped the run), ``paused_s`` (seconds spent inside
    :meth:`paused`, the evaluations after the end of training included).
    """

    def __init__(self, max_seconds: float, verbose: int = 0):
        super().__init__(verbose)
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        self.max_seconds = float(max_seconds)
        self.hit = False
        self.paused_s = 0.0
        self._start: float | None = None
        self._final: float | None = None

    def elapsed(self) -> float:
        """Training seconds so far, less the paused time: 0 before training starts, frozen once it ends."""
        if self._final is not None:
            return self._final
        if self._start is None:
            return 0.0
        return time.perf_counter() - self._start - self.paused_s

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time of the ``with`` block out of :meth:`elapsed`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.paused_s += time.perf_counter() - start

    def _on_training_start(self) -> None:
        self._start, self._final = time.perf_counter(), None
        self.hit = False
        self.paused_s = 0.0

    def _on_step(self) -> bool:
        if self.elapsed() >= self.max_seconds:
            self.hit = True
            return False
        return True

    def _on_training_end(self) -> None:
        self._final = self.elapsed()


def learn_capped(
    model: BaseAlgorithm,
    total_timesteps: int,
    max_seconds: float,
    callback: BaseCallback | None = None,
    **learn_kwargs: Any,
) -> TrainingRun:
    """``model.learn(total_timesteps)`` stopped by a :class:`WallClockCap` of ``max_seconds``.

    :param callback: another callback run alongside the cap (the cap goes first)
    :param learn_kwargs: more keyword arguments of ``model.learn`` (``tb_log_name``,
        ``progress_bar``, ``reset_num_timesteps``, ...)
    :return: :class:`TrainingRun`; ``env_steps`` is ``model.num_timesteps`` afterwards
        (cumulative when ``reset_num_timesteps=False``), ``wall_s`` the cap's :meth:`~WallClockCap.elapsed`
    """
    cap = WallClockCap(max_seconds)
    callbacks = cap if callback is None else CallbackList([cap, callback])
    model.learn(int(total_timesteps), callback=callbacks, **learn_kwargs)
    return TrainingRun(model, int(model.num_timesteps), cap.elapsed(), cap.hit)


# ---------------------------------------------------------------------------- critics
def normalize_observations(model: BaseAlgorithm, observations: np.ndarray) -> np.ndarray:
    """The policy's input for ``observations`` (N, n_obs): VecNormalize's ``clip((o - mean) / sqrt(var + eps), +-clip_obs)``
    with the model's running statistics (not updated here), or the observations themselves; float32."""
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is None:
        return np.asarray(observations, dtype=np.float32)
    return np.asarray(vec_normalize.normalize_obs(np.asarray(observations, dtype=np.float64)), dtype=np.float32)


def critic_costs(model: BaseAlgorithm, observations: np.ndarray) -> np.ndarray:
    """The model's critic as a cost-to-go at ``observations`` (N, n_obs), on the env's reward scale; (N,).

    PPO: ``-V(o)`` (SB3's value head); SAC and TD3: ``-min_k Q_k(o, pi(o))`` over the critic heads,
    ``pi`` the deterministic actor (SB3's target uses that minimum). Observations pass through the
    model's VecNormalize statistics when it has them (:func:`normalize_observations`), and when it
    trained on normalised rewards (divided by ``sqrt(ret_rms.var + epsilon)``, no mean shift) the
    critic is multiplied back by that factor. Each estimates the discounted return of its own ``model.gamma``.
    """
    obs = normalize_observations(model, observations)
    model.policy.set_training_mode(False)
    with torch.no_grad():
        obs_tensor, _ = model.policy.obs_to_tensor(obs)
        if isinstance(model, PPO):
            values = model.policy.predict_values(obs_tensor).reshape(-1)
        else:
            actions = model.policy._predict(obs_tensor, deterministic=True)
            values = torch.cat(model.critic(obs_tensor, actions), dim=1).min(dim=1).values
    values = values.cpu().numpy().astype(np.float64)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None and vec_normalize.norm_reward:
        values = values * float(np.sqrt(vec_normalize.ret_rms.var + vec_normalize.epsilon))
    return -values
