"""Differentiable twins of Gymnasium environments.

A twin is a dvp_rl env (a Crocoddyl model) with the same transition and ``-reward`` as a
Gymnasium env a user runs, so that DVP can be trained on the twin and judged in the real
env. The registry maps the real env's id to the twin's id and keyword arguments, and
converts observations of the real env to states of the twin and back::

    import gymnasium as gym
    from envs.twins import twin_for

    real = gym.make("Pendulum-v1")
    twin = twin_for(real)                    # or twin_for("Pendulum-v1", g=9.81)
    model = twin.make()                      # gym.make(twin.twin_id, **twin.twin_kwargs)
    obs, _ = real.reset(seed=0)
    x = twin.observation_to_state(obs)       # the twin's state, float64

Adding a twin is one :class:`TwinSpec` in :data:`TWINS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

#: Gymnasium Pendulum-v1's speed bound (``max_speed``), rad/s
PENDULUM_MAX_SPEED = 8.0
#: tolerance on ``cos^2 + sin^2 - 1`` of a Pendulum-v1 observation (float32 rounding gives ~1e-7)
UNIT_CIRCLE_TOLERANCE = 1e-4


def _as_observations(observation: Any, size: int, real_id: str) -> np.ndarray:
    """``observation`` as float64 of shape (size,) or (n, size), finite, or a ``ValueError``."""
    obs = np.asarray(observation, dtype=np.float64)
    if obs.ndim not in (1, 2) or obs.shape[-1] != size:
        raise ValueError(f"a {real_id} observation has shape ({size},) or (n, {size}), got shape {obs.shape}")
    if not np.all(np.isfinite(obs)):
        raise ValueError(f"a {real_id} observation must be finite, got {observation}")
    return obs


def pendulum_observation_to_state(observation: Any) -> np.ndarray:
    """Pendulum-v1 observation ``(cos th, sin th, thdot)`` -> twin state ``(th, thdot)``, th in [-pi, pi].

    :param observation: shape (3,) or (n, 3)
    :return: float64, shape (2,) or (n, 2)
    :raises ValueError: on a wrong shape, a non-finite entry, ``|cos^2 + sin^2 - 1| >``
        :data:`UNIT_CIRCLE_TOLERANCE` or ``|thdot| >`` :data:`PENDULUM_MAX_SPEED` (outside the
        set of observations Pendulum-v1 can produce)
    """
    obs = _as_observations(observation, 3, "Pendulum-v1")
    cos, sin, speed = obs[..., 0], obs[..., 1], obs[..., 2]
    radius_error = np.abs(cos * cos + sin * sin - 1.0)
    if np.any(radius_error > UNIT_CIRCLE_TOLERANCE):
        raise ValueError(
            f"Pendulum-v1 observation (cos th, sin th, thdot) off the unit circle: |cos^2 + sin^2 - 1| = "
            f"{radius_error.max():.3g} > {UNIT_CIRCLE_TOLERANCE:g}, got {observation}"
        )
    if np.any(np.abs(speed) > PENDULUM_MAX_SPEED):
        raise ValueError(f"Pendulum-v1 observation speed beyond its bound {PENDULUM_MAX_SPEED:g}: got {observation}")
    return np.stack([np.arctan2(sin, cos), speed], axis=-1)


def pendulum_state_to_observation(state: Any) -> np.ndarray:
    """Twin state ``(th, thdot)`` (2,) or (n, 2) -> Pendulum-v1 observation ``(cos th, sin th, thdot)``, float32.

    The speed is not clipped: a state beyond Pendulum-v1's speed bound gives an observation
    outside its observation space.
    """
    x = _as_observations(state, 2, "twin pendulum state")
    return np.stack([np.cos(x[..., 0]), np.sin(x[..., 0]), x[..., 1]], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class TwinSpec:
    """A registry entry: how a Gymnasium env's twin is made.

    :param twin_id: the dvp_rl id of the twin
    :param twin_kwargs: ``gymnasium.make`` arguments of the twin that make it the real env's twin
    :param attributes: physical attributes of the real env (``env.unwrapped.<name>``) -> the twin's
        argument that models it, read from a real env instance
    :param make_kwargs: ``gymnasium.make`` arguments of the real env -> the twin's argument that
        models it, passed through when the twin is asked for by id
    :param fixed_attributes: attributes of the real env that the twin assumes at these values
        (not modelled: a real env with another value is refused)
    :param ignored_kwargs: ``gymnasium.make`` arguments of the real env without effect on the
        transition or the reward (rendering)
    :param observation_to_state: real observation (..., n_obs) -> twin state (..., nx)
    :param state_to_observation: twin state (..., nx) -> real observation (..., n_obs)
    """

    twin_id: str
    twin_kwargs: Mapping[str, Any]
    attributes: Mapping[str, str]
    make_kwargs: Mapping[str, str]
    observation_to_state: Callable[[Any], np.ndarray]
    state_to_observation: Callable[[Any], np.ndarray]
    fixed_attributes: Mapping[str, float] = field(default_factory=dict)
    ignored_kwargs: tuple[str, ...] = ("render_mode",)


#: Gymnasium id -> its twin
TWINS: dict[str, TwinSpec] = {
    "Pendulum-v1": TwinSpec(
        twin_id="dvp_rl/Pendulum-v0",
        twin_kwargs={"cost": "gymnasium"},
        attributes={"g": "g", "m": "m", "l": "l", "dt": "dt", "max_torque": "max_torque"},
        make_kwargs={"g": "g"},
        fixed_attributes={"max_speed": PENDULUM_MAX_SPEED},
        observation_to_state=pendulum_observation_to_state,
        state_to_observation=pendulum_state_to_observation,
    ),
}


@dataclass(frozen=True)
class Twin:
    """The twin of one real env (its id and arguments resolved).

    :param real_id: the Gymnasium id of the real env
    :param twin_id: the dvp_rl id of the twin
    :param twin_kwargs: ``gymnasium.make`` arguments of the twin (the real env's physics included)
    :param observation_to_state: real observation (n_obs,) or (n, n_obs) -> twin state, float64;
        raises ``ValueError`` outside the twin's domain
    :param state_to_observation: twin state (nx,) or (n, nx) -> real observation
    :param max_episode_steps: the real env's time limit (``None``: none known)
    """

    real_id: str
    twin_id: str
    twin_kwargs: Mapping[str, Any]
    observation_to_state: Callable[[Any], np.ndarray]
    state_to_observation: Callable[[Any], np.ndarray]
    max_episode_steps: int | None = None

    def make(self, **kwargs: Any) -> gym.Env:
        """``gymnasium.make(twin_id, **twin_kwargs, **kwargs)``, with the real env's time limit."""
        if self.max_episode_steps is not None:
            kwargs.setdefault("max_episode_steps", self.max_episode_steps)
        return gym.make(self.twin_id, **{**self.twin_kwargs, **kwargs})


def twin_for(real: str | gym.Env, **make_kwargs: Any) -> Twin:
    """The twin of a Gymnasium env, given its id and ``gymnasium.make`` arguments, or the env itself.

    From an env, its ``spec`` gives the id and arguments, and its unwrapped physical attributes
    (e.g. Pendulum-v1's ``g``, ``m``, ``l``, ``dt``, ``max_torque``) are read and passed to the twin.

    :raises TypeError: for ``make_kwargs`` given with an env (they belong to an id)
    :raises ValueError: for an id without a twin (the message lists the supported ids), an env
        without a spec, a ``gymnasium.make`` argument the twin does not model, or an attribute the
        twin assumes fixed (e.g. Pendulum-v1's ``max_speed``) at another value
    """
    if isinstance(real, str):
        real_id, kwargs, env, max_steps = real, dict(make_kwargs), None, None
    elif make_kwargs:
        raise TypeError(f"twin_for takes gymnasium.make arguments with an id only, got an env and {sorted(make_kwargs)}")
    else:
        spec = getattr(real, "spec", None) or getattr(real.unwrapped, "spec", None)
        if spec is None:
            raise ValueError(f"twin_for needs an env made with gymnasium.make (it reads env.spec); got {type(real).__name__}")
        real_id, kwargs, env, max_steps = spec.id, dict(spec.kwargs), real.unwrapped, spec.max_episode_steps
    entry = TWINS.get(real_id)
    if entry is None:
        raise ValueError(f"no differentiable twin of {real_id!r}; supported ids: {sorted(TWINS)}")
    unknown = sorted(set(kwargs) - set(entry.make_kwargs) - set(entry.ignored_kwargs))
    if unknown:
        raise ValueError(
            f"the twin of {real_id} does not model the gymnasium.make argument(s) {unknown}; "
            f"it models {sorted(entry.make_kwargs)} (and ignores {list(entry.ignored_kwargs)})"
        )
    twin_kwargs = dict(entry.twin_kwargs)
    twin_kwargs.update({entry.make_kwargs[name]: value for name, value in kwargs.items() if name in entry.make_kwargs})
    if env is not None:  # the instance's own values, which its make arguments have set
        twin_kwargs.update({twin_name: float(getattr(env, name)) for name, twin_name in entry.attributes.items()})
        for name, expected in entry.fixed_attributes.items():
            if float(getattr(env, name)) != expected:
                raise ValueError(f"the twin of {real_id} assumes {name}={expected:g} (not modelled), got {getattr(env, name)}")
    if max_steps is None and real_id in gym.registry:
        max_steps = gym.registry[real_id].max_episode_steps
    return Twin(real_id, entry.twin_id, twin_kwargs, entry.observation_to_state, entry.state_to_observation, max_steps)
