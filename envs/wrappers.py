"""Which Gymnasium wrappers an agent that plans on a model may act through, and the action map they compose.

A model-based agent plans in the units of the unwrapped env (the model's controls) and sees the
state through the unwrapped env's observation. Between it and the env a user steps there may be
wrappers: those that change neither the observations nor the actions (time limits, checkers,
monitors, recorders) are exact; ``ClipAction`` is exact too (a plan's controls lie inside the
bounds); ``RescaleAction`` is an affine map of the actions, inverted exactly here. Every other
wrapper (observation, action or reward transforms, unknown wrappers) would make the model describe
something else than what the agent sees and does, and is refused by :func:`action_map`::

    to_env = action_map(gym.make("dvp_rl/PandaReach-v0"))     # torques -> the env's [-1, 1] actions
    env.step(to_env(u))
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

#: wrappers that change neither observations, actions nor rewards (by class name, with their modules'
#: prefixes: Gymnasium's own and SB3's ``Monitor``)
NEUTRAL_WRAPPERS: dict[str, tuple[str, ...]] = {
    "gymnasium.wrappers": ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker", "RecordEpisodeStatistics", "RecordVideo",
                           "RenderCollection", "HumanRendering", "Autoreset"),
    "stable_baselines3.common.monitor": ("Monitor",),
}  # fmt: skip


@dataclass(frozen=True)
class ActionMap:
    """``a = offset + scale * u``: from the unwrapped env's controls ``u`` (nu,) to the actions ``a`` of
    the wrapped env, clipped to the bounds ``low``..``high`` (nu,) of the actions it executes as they
    are (float64; under a ``ClipAction``, whose own space is unbounded, the bounds it clips to)."""

    scale: np.ndarray
    offset: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def __call__(self, controls: np.ndarray) -> np.ndarray:
        """Actions of controls (nu,) or (n, nu), inside the wrapped env's action space, float64."""
        return np.clip(self.offset + self.scale * np.asarray(controls, dtype=np.float64), self.low, self.high)

    @property
    def identity(self) -> bool:
        """Whether the wrappers leave the controls as they are (but the clip to the bounds)."""
        return bool(np.all(self.scale == 1.0) and np.all(self.offset == 0.0))


def _is_neutral(wrapper: gym.Wrapper) -> bool:
    cls = type(wrapper)
    return any(cls.__module__.startswith(module) and cls.__name__ in names for module, names in NEUTRAL_WRAPPERS.items())


def _bounds(space: gym.Space, what: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(space, spaces.Box) or not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f"{what} must be a bounded Box, got {space}")
    return np.asarray(space.low, dtype=np.float64).reshape(-1), np.asarray(space.high, dtype=np.float64).reshape(-1)


def action_map(env: gym.Env) -> ActionMap:
    """The map from ``env.unwrapped``'s controls to ``env``'s actions, through its wrappers.

    :raises ValueError: naming the first wrapper (from the outside in) that is neither neutral
        (:data:`NEUTRAL_WRAPPERS`), ``ClipAction`` nor ``RescaleAction``: an agent that plans on the
        unwrapped env's model would see or do something else than the wrapped env
    """
    chain = []
    layer = env
    while isinstance(layer, gym.Wrapper):
        chain.append(layer)
        layer = layer.env
    low, high = _bounds(layer.action_space, f"{type(layer).__name__}'s action space")
    scale, offset = np.ones_like(low), np.zeros_like(low)
    for wrapper in reversed(chain):  # from the inside out; (low, high): the actions the layer accepts as they are
        name = type(wrapper).__name__
        if isinstance(wrapper, gym.wrappers.RescaleAction):
            outer_low, outer_high = _bounds(wrapper.action_space, f"{name}'s action space")
            ratio = (outer_high - outer_low) / (high - low)
            scale, offset = ratio * scale, outer_low + ratio * (offset - low)
            low, high = outer_low, outer_high
        elif isinstance(wrapper, gym.wrappers.ClipAction) or _is_neutral(wrapper):
            pass
        else:
            raise ValueError(
                f"the wrapper {name} ({type(wrapper).__module__}) may change what the agent sees, does or is scored by, which "
                f"its model would not know: act in the env without it, or through wrappers that keep observations and rewards "
                f"(RescaleAction, ClipAction, TimeLimit, Monitor, RecordVideo, ...)"
            )
    return ActionMap(scale, offset, low, high)
