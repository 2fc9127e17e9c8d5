"""The Sobolev fit: a smooth target is learned to high accuracy, the fit configuration, its epoch
hook, separate validation data and bad settings."""

import numpy as np
import pytest

from dvp_rl.value.sobolev import EpochInfo, FitConfig, SobolevWeights, fit_value_network
from dvp_rl.value.networks import make_value_network


def quadratic_dataset(n: int, rng: np.random.Generator):
    """``V = x^T P x`` on (n, 2) states with its exact gradient (a Gauss-residual net can represent it)."""
    P = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = rng.uniform(-1.0, 1.0, (n, 2))
    return x, np.einsum("ni,ij,nj->n", x, P, x), 2.0 * x @ P


def test_fit_learns_a_quadratic_value_and_its_gradient(rng):
    x, V, Vx = quadratic_dataset(400, rng)
    net = make_value_network("gauss_residual", 2, net_arch=(32, 32), residual_dim=2)
    net.fit_normalisation(x)
    result = fit_value_network(net, x, V, Vx, config=FitConfig(max_epochs=200, polish_steps=100), seed=0)
    xt, Vt, Vxt = quadratic_dataset(200, np.random.default_rng(1))
    pV, pVx = (t.detach().numpy() for t in net.value_and_gradient(xt, create_graph=False))
    assert np.mean((pV - Vt) ** 2) / np.mean(Vt**2) < 1e-4
    assert np.mean(np.sum((pVx - Vxt) ** 2, 1)) / np.mean(np.sum(Vxt**2, 1)) < 1e-3
    assert result.value_loss < 1e-3 and len(result.history) == result.epochs


def test_on_epoch_sees_every_epoch_and_can_stop_the_fit(rng):
    x, V, Vx = quadratic_dataset(100, rng)
    seen: list[EpochInfo] = []

    def hook(info: EpochInfo) -> bool:
        seen.append(info)
        return info.epoch < 4  # stop after the fourth epoch

    net = make_value_network("feed_forward", 2, net_arch=(8,))
    result = fit_value_network(net, x, V, Vx, config=FitConfig(max_epochs=50, on_epoch=hook), seed=0)
    assert [i.epoch for i in seen] == [1, 2, 3, 4] and result.epochs == 4
    assert [i.validation_objective for i in seen] == result.history
    assert all(i.net is net and i.learning_rate == 1e-3 and 1 <= i.best_epoch <= i.epoch for i in seen)


def test_separate_validation_data_trains_on_every_sample(rng):
    x, V, Vx = quadratic_dataset(60, rng)
    xv, Vv, Vxv = quadratic_dataset(30, np.random.default_rng(2))
    net = make_value_network("gauss_residual", 2, net_arch=(8,))
    seen = []
    config = FitConfig(max_epochs=3, patience=10, on_epoch=lambda info: seen.append(info.validation_objective))
    result = fit_value_network(net, x, V, Vx, config=config, seed=0, validation=(xv, Vv, Vxv))
    pV, pVx = (t.detach().numpy() for t in net.value_and_gradient(xv, create_graph=False))
    # the reported validation losses are those of the given data
    np.testing.assert_allclose(result.value_loss, np.mean((pV - Vv) ** 2), rtol=1e-10)
    np.testing.assert_allclose(result.gradient_loss, np.mean(np.sum((pVx - Vxv) ** 2, 1)), rtol=1e-10)
    assert len(seen) == 3
    with pytest.raises(ValueError, match="Vx must have shape"):
        fit_value_network(net, x, V, Vx, config=config, validation=(xv, Vv, Vxv[:, :1]))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"batch_size": 0}, "batch_size"), ({"learning_rate": -1e-3}, "learning_rate"), ({"learning_rate": float("nan")}, "learning_rate"),
     ({"validation_fraction": 1.0}, "validation_fraction"), ({"max_epochs": 2.5}, "max_epochs"), ({"patience": 0}, "patience"),
     ({"polish_steps": -1}, "polish_steps")],
)  # fmt: skip
def test_bad_fit_settings_are_rejected_when_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FitConfig(**kwargs)
    with pytest.raises(TypeError, match="SobolevWeights"):
        FitConfig(weights=(1.0, 1.0))
    assert FitConfig(weights=SobolevWeights(1.0, 0.0)).weights.gradient == 0.0
