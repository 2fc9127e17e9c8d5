"""Experiments of the paper's Fig. 1-6 (convergence, horizon, noise): quick runs produce every output."""

import json
import math

import numpy as np
import pytest

from dvp_rl.experiments import common, get_experiment
from dvp_rl.experiments.noise import NoisyFirstFitDVP
from dvp_rl.ocp import BatchSolveResult

FIGURES = {
    "convergence": ("value_maps.png", "convergence.png"),
    "horizon": ("horizon_errors.png", "horizon_mpc.png"),
    "noise": ("noise.png",),
}


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_quick_run_writes_every_output(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the ground-truth cache (runs/ground_truth) lands in tmp_path
    out = tmp_path / name
    table = get_experiment(name)(out, seeds=(0,), quick=True)

    for figure in FIGURES[name]:
        assert (out / figure).stat().st_size > 1000, figure
    markdown = (out / "table.md").read_text()
    assert markdown.startswith("# ") and "| --- |" not in markdown and "|---|" in markdown
    assert "n/a" not in markdown and "nan" not in markdown.lower()
    data = json.loads((out / "table.json").read_text())
    assert data == json.loads(json.dumps(table, default=common._json_default))
    numbers = list(_numbers(data))
    assert numbers and all(math.isfinite(x) for x in numbers)
    events = list((out / "tb").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def _fake_batch(rng, n=4000, nx=3):
    return BatchSolveResult(
        x0=rng.normal(size=(n, nx)), cost=rng.uniform(1.0, 3.0, n), Vx=rng.normal(size=(n, nx)) * [1.0, 10.0, 0.1],
        Vxx=np.zeros((n, nx, nx)), iterations=np.ones(n, dtype=int), converged=np.ones(n, dtype=bool),
        us=np.zeros((n, 1, 2)), n_transitions=np.ones(n, dtype=int),
    )  # fmt: skip


def test_noise_only_on_the_first_fit_at_the_requested_level(rng):
    batch = _fake_batch(rng)
    agent = NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=0.1, noise_seed=0, n_samples=10, n_validation=2, n_workers=1, checkpoint_dir=None)
    V, Vx, Vxx = agent._targets(batch.x0, batch)
    rel_V = np.mean((V - batch.cost) ** 2) / np.mean(batch.cost**2)
    rel_Vx = np.mean((Vx - batch.Vx) ** 2, axis=0) / np.mean(batch.Vx**2, axis=0)
    assert rel_V == pytest.approx(0.01, rel=0.1)
    np.testing.assert_allclose(rel_Vx, 0.01, rtol=0.1)  # each component relative to its own scale
    assert Vxx is batch.Vxx

    agent.iteration = 1  # later iterations fit the DDP's own values
    V, Vx, _ = agent._targets(batch.x0, batch)
    assert V is batch.cost and Vx is batch.Vx
    clean = NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=0.0, n_samples=10, n_validation=2, n_workers=1, checkpoint_dir=None)
    assert clean._targets(batch.x0, batch)[0] is batch.cost
    with pytest.raises(ValueError, match="noise_level"):
        NoisyFirstFitDVP("dvp_rl/Unicycle-v0", noise_level=-1.0, n_samples=10, n_validation=2, n_workers=1)
