"""Shared fixtures (helpers that tests import live in :mod:`tests.helpers`)."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
