"""Shared fixtures (helpers that tests import live in :mod:`tests.helpers`)."""

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the benchmarks and the CLI run them (tiny networks), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
