"""Fixtures of the MuJoCo twins' tests: a real env next to its twin, one per test module (helpers that
tests import live in :mod:`tests.envs.mjcf.helpers`, imported here inside the fixtures, after a test
module's ``pytest.importorskip("mujoco")``)."""

import pytest


@pytest.fixture(scope="module")
def idp():
    from tests.envs.mjcf.helpers import IDP, Side

    return Side(IDP)


@pytest.fixture(scope="module")
def reacher():
    from tests.envs.mjcf.helpers import REACHER, Side

    return Side(REACHER)
