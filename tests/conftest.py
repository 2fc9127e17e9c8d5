"""Shared fixtures: the registered env ids and a seeded generator."""

import gymnasium as gym
import numpy as np
import pytest

import envs

ALL_ENV_IDS = list(envs.ENV_IDS)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def make_unwrapped(env_id: str, **kwargs):
    return gym.make(env_id, **kwargs).unwrapped
