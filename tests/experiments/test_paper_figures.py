"""Experiments of the paper's Fig. 1-6 (convergence, horizon, noise): quick runs produce every output."""

import numpy as np
import pytest

from dvp_rl.experiments import get_experiment
from dvp_rl.experiments.common import ground_truth_cache
from dvp_rl.experiments.noise import NoisyFirstFitDVP
from dvp_rl.control.ocp import BatchSolveResult
from tests.helpers import check_experiment_outputs

FIGURES = {
    "convergence": ("value_maps.png", "convergence.png"),
    "horizon": ("horizon_errors.png", "horizon_mpc.png"),
    "noise": ("noise.png",),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_quick_run_writes_every_output(name, tmp_path):
    out = tmp_path / name
    table = get_experiment(name)(out, seeds=(0,), quick=True)
    markdown, _ = check_experiment_outputs(out, table, FIGURES[name])
    assert "| --- |" not in markdown and "n/a" not in markdown
    assert list((tmp_path / "ground_truth").glob("*.npz"))  # the default cache: next to the output folder


def test_ground_truth_cache_folder(tmp_path):
    assert ground_truth_cache(tmp_path / "runs" / "convergence") == tmp_path / "runs" / "ground_truth"
    assert ground_truth_cache(tmp_path / "out", tmp_path / "elsewhere") == tmp_path / "elsewhere"


def _fake_batch(rng, n=4000, nx=3):
    return BatchSolveResult(
        x0=rng.normal(size=(n, nx)), cost=rng.uniform(1.0, 3.0, n), Vx=rng.normal(size=(n, nx)) * [1.0, 10.0, 0.1],
        Vxx=np.zeros((n, nx, nx)), iterations=np.ones(n, dtype=int), converged=np.ones(n, dtype=bool),
        us=np.zeros((n, 1, 2)), model_evaluations=np.ones(n, dtype=int), x_final=np.zeros((n, nx)),
    )  # fmt: skip


def test_noise_only_on_the_first_fit_at_the_requested_level(rng):
    batch = _fake_batch(rng)
    agent = NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=0.1, noise_seed=0, n_samples=10, collect={"n_validation": 2}, n_workers=1, checkpoint_dir=None)
    V, Vx, Vxx = agent._targets(batch.x0, batch)
    rel_V = np.mean((V - batch.cost) ** 2) / np.mean(batch.cost**2)
    rel_Vx = np.mean((Vx - batch.Vx) ** 2, axis=0) / np.mean(batch.Vx**2, axis=0)
    assert rel_V == pytest.approx(0.01, rel=0.1)
    np.testing.assert_allclose(rel_Vx, 0.01, rtol=0.1)  # each component relative to its own scale
    assert Vxx is batch.Vxx

    agent.iteration = 1  # later iterations fit the DDP's own values
    V, Vx, _ = agent._targets(batch.x0, batch)
    assert V is batch.cost and Vx is batch.Vx
    clean = NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=0.0, n_samples=10, collect={"n_validation": 2}, n_workers=1, checkpoint_dir=None)
    assert clean._targets(batch.x0, batch)[0] is batch.cost
    with pytest.raises(ValueError, match="noise_level"):
        NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=-1.0, n_samples=10, collect={"n_validation": 2}, n_workers=1)
