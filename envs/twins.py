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

Adding a twin is one :class:`TwinSpec` in :data:`TWINS`. The twins of Gymnasium's MuJoCo envs
(``InvertedDoublePendulum-v5``, ``Reacher-v5``) are built from the env's own MJCF file
(:mod:`envs.mjcf`) and need the ``mujoco`` extra.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

#: Gymnasium Pendulum-v1's speed bound (``max_speed``), rad/s
PENDULUM_MAX_SPEED = 8.0
#: tolerance on ``cos^2 + sin^2 - 1`` of a Pendulum-v1 observation (float32 rounding gives ~1e-7)
UNIT_CIRCLE_TOLERANCE = 1e-4
#: InvertedDoublePendulum-v5 clips the velocities of its observation to this bound
IDP_SPEED_CLIP = 10.0
#: tolerance on Reacher-v5's fingertip - target entries against its angles and target (m): Gymnasium
#: reads the fingertip where MuJoCo's last RK4 stage put it, ~1e-6 m from the final angles' position,
#: ~1e-3 m when the elbow hits its limit
REACHER_VECTOR_TOLERANCE = 1e-2
#: ``gymnasium.make`` arguments of the MuJoCo envs that only concern rendering
MUJOCO_RENDER_KWARGS = ("render_mode", "width", "height", "camera_id", "camera_name", "default_camera_config", "max_geom", "visual_options")


def _as_observations(observation: Any, size: int, real_id: str) -> np.ndarray:
    """``observation`` as float64 of shape (size,) or (n, size), finite, of real numbers (checked
    before converting: a complex one is refused, not cut to its real part), or a ``ValueError``."""
    from envs.base import as_real_array

    obs = as_real_array(observation, f"a {real_id} observation")
    if obs.ndim not in (1, 2) or obs.shape[-1] != size:
        raise ValueError(f"a {real_id} observation has shape ({size},) or (n, {size}), got shape {obs.shape}")
    if not np.all(np.isfinite(obs)):
        raise ValueError(f"a {real_id} observation must be finite, got {observation}")
    return obs


def _check_unit_circle(cos: np.ndarray, sin: np.ndarray, real_id: str, what: str, observation: Any) -> None:
    radius_error = np.abs(cos * cos + sin * sin - 1.0)
    if np.any(radius_error > UNIT_CIRCLE_TOLERANCE):
        raise ValueError(
            f"{real_id} observation {what} off the unit circle: |cos^2 + sin^2 - 1| = {radius_error.max():.3g} > "
            f"{UNIT_CIRCLE_TOLERANCE:g}, got {observation}"
        )


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
    _check_unit_circle(cos, sin, "Pendulum-v1", "(cos th, sin th, thdot)", observation)
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


def idp_observation_to_state(observation: Any) -> np.ndarray:
    """InvertedDoublePendulum-v5 observation -> twin state ``(x, q1, q2, xdot, q1dot, q2dot)``.

    The observation is ``(x, sin q1, sin q2, cos q1, cos q2, xdot, q1dot, q2dot, f)``, speeds clipped to
    ``[-10, 10]`` by Gymnasium (a clipped speed maps to 10: the twin's state then underestimates it) and
    ``f`` the slider's constraint force, which the twin does not model (ignored).

    :param observation: shape (9,) or (n, 9)
    :return: float64, shape (6,) or (n, 6), angles in [-pi, pi]
    :raises ValueError: on a wrong shape, a non-finite entry, a (sin, cos) pair off the unit circle or
        a speed beyond :data:`IDP_SPEED_CLIP`
    """
    obs = _as_observations(observation, 9, "InvertedDoublePendulum-v5")
    _check_unit_circle(obs[..., 3:5], obs[..., 1:3], "InvertedDoublePendulum-v5", "(sin q, cos q)", observation)
    if np.any(np.abs(obs[..., 5:8]) > IDP_SPEED_CLIP):
        raise ValueError(f"InvertedDoublePendulum-v5 observation speed beyond its clip {IDP_SPEED_CLIP:g}: got {observation}")
    return np.concatenate([obs[..., :1], np.arctan2(obs[..., 1:3], obs[..., 3:5]), obs[..., 5:8]], axis=-1)


def idp_state_to_observation(state: Any) -> np.ndarray:
    """Twin state (6,) or (n, 6) -> InvertedDoublePendulum-v5 observation, float64: speeds clipped to
    ``[-10, 10]`` as Gymnasium does, the constraint force 0 (the twin has no slider limit)."""
    x = _as_observations(state, 6, "twin inverted double pendulum state")
    zeros = np.zeros_like(x[..., :1])
    return np.concatenate([x[..., :1], np.sin(x[..., 1:3]), np.cos(x[..., 1:3]), np.clip(x[..., 3:6], -IDP_SPEED_CLIP, IDP_SPEED_CLIP), zeros], axis=-1)


@functools.lru_cache(maxsize=1)
def _reacher_twin() -> Any:
    from envs.mjcf.reacher import ReacherTwin  # the mujoco extra: imported when a Reacher observation is mapped

    return ReacherTwin()


def reacher_observation_to_state(observation: Any) -> np.ndarray:
    """Reacher-v5 observation -> goal-conditioned twin state ``(target_x, target_y, q0, q1, 0, 0, q0dot, q1dot)``.

    The observation is ``(cos q0, cos q1, sin q0, sin q1, target_x, target_y, q0dot, q1dot, dx, dy)``
    with ``(dx, dy)`` = fingertip - target, which is checked against the angles and the target.

    :param observation: shape (10,) or (n, 10)
    :return: float64, shape (8,) or (n, 8), angles in [-pi, pi]
    :raises ValueError: on a wrong shape, a non-finite entry, a (cos, sin) pair off the unit circle,
        or ``(dx, dy)`` further than :data:`REACHER_VECTOR_TOLERANCE` from the twin's fingertip - target
        (an observation Reacher-v5's arm cannot produce)
    """
    obs = _as_observations(observation, 10, "Reacher-v5")
    _check_unit_circle(obs[..., 0:2], obs[..., 2:4], "Reacher-v5", "(cos q, sin q)", observation)
    zeros = np.zeros_like(obs[..., :2])
    state = np.concatenate([obs[..., 4:6], np.arctan2(obs[..., 2:4], obs[..., 0:2]), zeros, obs[..., 6:8]], axis=-1)
    gap = np.abs(_reacher_twin().fingertip_minus_target(state) - obs[..., 8:10])
    if np.any(gap > REACHER_VECTOR_TOLERANCE):
        raise ValueError(
            f"Reacher-v5 observation: its fingertip - target entries differ from the arm's by {gap.max():.3g} > "
            f"{REACHER_VECTOR_TOLERANCE:g} m, got {observation}"
        )
    return state


def reacher_state_to_observation(state: Any) -> np.ndarray:
    """Twin state (8,) or (n, 8) -> Reacher-v5 observation, float64 (the target's velocities are dropped)."""
    x = _as_observations(state, 8, "twin reacher state")
    angles = x[..., 2:4]
    vector = _reacher_twin().fingertip_minus_target(x)
    return np.concatenate([np.cos(angles), np.sin(angles), x[..., 0:2], x[..., 6:8], vector], axis=-1)


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
    :param training_kwargs: twin arguments for *learning* on it, added to ``twin_kwargs``: they
        widen its start distribution to the states a controller visits in the real env (a value
        is only trustworthy where it was fitted), without changing its physics or cost
    """

    twin_id: str
    twin_kwargs: Mapping[str, Any]
    attributes: Mapping[str, str]
    make_kwargs: Mapping[str, str]
    observation_to_state: Callable[[Any], np.ndarray]
    state_to_observation: Callable[[Any], np.ndarray]
    fixed_attributes: Mapping[str, float] = field(default_factory=dict)
    ignored_kwargs: tuple[str, ...] = ("render_mode",)
    training_kwargs: Mapping[str, Any] = field(default_factory=dict)


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
        # Pendulum-v1 resets with |thdot| <= 1, but a swing-up passes through speeds up to its bound
        training_kwargs={"max_start_speed": PENDULUM_MAX_SPEED},
    ),
    "InvertedDoublePendulum-v5": TwinSpec(
        twin_id="dvp_rl/InvertedDoublePendulum-v0",
        twin_kwargs={},
        attributes={"frame_skip": "frame_skip", "_reset_noise_scale": "reset_noise_scale"},
        make_kwargs={"frame_skip": "frame_skip", "reset_noise_scale": "reset_noise_scale"},
        fixed_attributes={"_healthy_reward": 10.0},
        ignored_kwargs=MUJOCO_RENDER_KWARGS,
        observation_to_state=idp_observation_to_state,
        state_to_observation=idp_state_to_observation,
        # Gymnasium starts the cart within 0.1 of the centre, nearly at rest; the value is learned a little
        # wider, where a balancing controller goes, not so wide that falling starts dominate the fit
        # (docs/REPRODUCTION.md, "MuJoCo twins", has the ranges tried)
        training_kwargs={"cart_start_range": 0.3, "start_speed": 0.1},
    ),
    "Reacher-v5": TwinSpec(
        twin_id="dvp_rl/Reacher-v0",
        twin_kwargs={},
        attributes={"frame_skip": "frame_skip", "_reward_dist_weight": "reward_dist_weight", "_reward_control_weight": "reward_control_weight"},
        make_kwargs={"frame_skip": "frame_skip", "reward_dist_weight": "reward_dist_weight", "reward_control_weight": "reward_control_weight"},
        ignored_kwargs=MUJOCO_RENDER_KWARGS,
        observation_to_state=reacher_observation_to_state,
        state_to_observation=reacher_state_to_observation,
        # Gymnasium starts the arm within 0.1 rad of stretched, at rest; reaching a target turns the
        # shoulder by up to pi and the elbow up to its limit 3, at up to ~8 rad/s
        training_kwargs={"arm_start_range": float(np.pi), "elbow_start_range": 2.9, "start_speed": 3.0},
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
    :param training_kwargs: twin arguments added to ``twin_kwargs`` for learning on it (see
        :class:`TwinSpec`)
    """

    real_id: str
    twin_id: str
    twin_kwargs: Mapping[str, Any]
    observation_to_state: Callable[[Any], np.ndarray]
    state_to_observation: Callable[[Any], np.ndarray]
    max_episode_steps: int | None = None
    training_kwargs: Mapping[str, Any] = field(default_factory=dict)

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
        raise ValueError(f"no differentiable twin of {real_id!r}; supported ids: {list(TWINS)}")
    if "max_episode_steps" in kwargs:  # a time limit of gymnasium.make: the twin's episodes last as long
        max_steps = kwargs.pop("max_episode_steps")
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
    return Twin(real_id, entry.twin_id, twin_kwargs, entry.observation_to_state, entry.state_to_observation, max_steps,
                dict(entry.training_kwargs))


@dataclass(frozen=True)
class ResolvedEnv:
    """What an agent learns on and acts in, from the env (or id) a user gives it.

    :param env: the env the agent acts in (made from the id when an id was given)
    :param env_id: the id of the differentiable env the agent learns on (the twin's for a Gymnasium env)
    :param env_kwargs: its ``gymnasium.make`` arguments (for a twin: its arguments plus its training
        arguments, :attr:`TwinSpec.training_kwargs`)
    :param user_id: the id of the env the agent acts in
    :param user_kwargs: its ``gymnasium.make`` arguments, its time limit included when it is not the registration's
    :param action_map: the env's actions of the model's controls, through its wrappers (:func:`envs.wrappers.action_map`)
    :param twin: the twin, when the agent acts in a Gymnasium env of its own (``None`` for a dvp_rl env)
    """

    env: gym.Env
    env_id: str
    env_kwargs: Mapping[str, Any]
    user_id: str
    user_kwargs: Mapping[str, Any]
    action_map: Any
    twin: Twin | None = None


def resolve_env(env: str | gym.Env, env_kwargs: Mapping[str, Any] | None = None) -> ResolvedEnv:
    """Resolve an agent's ``env`` argument: a dvp_rl id or env (learned on directly), or a Gymnasium
    id or env with a twin (learned on the twin, acted in as it is), through exact wrappers only.

    :param env: an id (made with ``env_kwargs``) or an env made with ``gymnasium.make`` (its spec
        gives the id and arguments, which the agent's solver workers rebuild it from), possibly
        wrapped (:func:`envs.wrappers.action_map` says which wrappers are exact)
    :param env_kwargs: ``gymnasium.make`` arguments of an id; with an env instance only for a
        dvp_rl env (they are added to its spec's)
    :raises ValueError: an unknown id, an env without a spec, ``env_kwargs`` with a Gymnasium env
        instance, a Gymnasium env without a twin (see :func:`twin_for`), or a wrapper that changes
        what the agent sees, does or is scored by
    """
    from envs import make
    from envs.base import DifferentiableEnv
    from envs.wrappers import action_map

    if isinstance(env, str):
        made, env_id, kwargs = make(env, dict(env_kwargs or {})), env, dict(env_kwargs or {})
    else:
        spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", env), "spec", None)
        if spec is None:
            raise ValueError("an agent rebuilds the env in its solvers from env.spec: make it with gymnasium.make(id, **kwargs)")
        made, env_id, kwargs = env, spec.id, {**dict(spec.kwargs), **dict(env_kwargs or {})}
        registered = gym.registry[spec.id].max_episode_steps if spec.id in gym.registry else None
        if spec.max_episode_steps is not None and spec.max_episode_steps != registered:
            kwargs["max_episode_steps"] = spec.max_episode_steps
    if isinstance(made.unwrapped, DifferentiableEnv):
        model_kwargs = {k: v for k, v in kwargs.items() if k != "max_episode_steps"}
        return ResolvedEnv(made, env_id, model_kwargs, env_id, kwargs, action_map(made))
    if env_kwargs and not isinstance(env, str):
        raise ValueError("env_kwargs go with an env id; the twin of an env instance takes its arguments from the env")
    twin = twin_for(made)
    return ResolvedEnv(made, twin.twin_id, {**twin.twin_kwargs, **twin.training_kwargs}, env_id, kwargs, action_map(made), twin)
