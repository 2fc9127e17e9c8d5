"""Value networks: derivatives against torch autograd, periodic features, the numpy export, bad input."""

import json
import pickle

import numpy as np
import pytest
import torch
from torch.func import functional_call

from dvp_rl.value.networks import (
    VALUE_NETWORK_KINDS,
    FeedForwardNet,
    GaussResidualNet,
    NetworkArrays,
    fit_normalisation,
    make_value_network,
    numpy_value,
    numpy_value_derivatives,
    raw_features,
)

NX = 3
SMALL = (8, 8)
ANGLE_CASES = [(), (0,), (0, 2)]


def small_net(kind: str, angle_dims=(0,), net_arch=SMALL, seed: int = 0):
    """A small network with non-trivial feature statistics (so the normalisation is exercised)."""
    torch.manual_seed(seed)
    net = make_value_network(kind, NX, net_arch=net_arch, angle_dims=angle_dims)
    rng = np.random.default_rng(seed)
    net.fit_normalisation(rng.normal(0.3, 2.0, size=(64, NX)))
    return net


def states(rng, n=6):
    return rng.normal(0.0, 1.5, size=(n, NX))


def autograd_jacobian(f, x: torch.Tensor) -> torch.Tensor:
    """Per-row Jacobian of ``f`` (one state (nx,) -> (m,) or scalar) by torch autograd, stacked over rows of x."""
    return torch.stack([torch.autograd.functional.jacobian(f, xi) for xi in x])


# ---------------------------------------------------------------------------- torch derivatives
@pytest.mark.parametrize("angle_dims", ANGLE_CASES)
def test_gauss_residual_derivatives_match_autograd(angle_dims, rng):
    net = small_net("gauss_residual", angle_dims)
    x = torch.tensor(states(rng))
    r, J = net.residual_and_jacobian(x)
    J_ref = autograd_jacobian(lambda z: net.residual(z[None])[0], x)
    torch.testing.assert_close(J, J_ref, atol=1e-12, rtol=1e-10)
    V, Vx, Vxx = net.value_derivatives(x)
    torch.testing.assert_close(V, net(x), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(Vx, autograd_jacobian(lambda z: net(z[None])[0], x), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(Vx, 2 * torch.einsum("nr,nri->ni", r, J_ref), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(Vxx, 2 * J_ref.transpose(1, 2) @ J_ref, atol=1e-12, rtol=1e-10)
    assert torch.all(torch.linalg.eigvalsh(Vxx) > -1e-12)  # Gauss-Newton: positive semi-definite
    torch.testing.assert_close(net.value_and_gradient(x)[1], Vx)


@pytest.mark.parametrize("angle_dims", ANGLE_CASES)
def test_feed_forward_derivatives_match_autograd(angle_dims, rng):
    net = small_net("feed_forward", angle_dims)
    x = torch.tensor(states(rng))
    V, Vx, Vxx = net.value_derivatives(x)
    one = lambda z: net(z[None])[0]  # noqa: E731
    torch.testing.assert_close(V, net(x))
    torch.testing.assert_close(Vx, autograd_jacobian(one, x), atol=1e-12, rtol=1e-10)
    hessians = torch.stack([torch.autograd.functional.hessian(one, xi) for xi in x])
    torch.testing.assert_close(Vxx, hessians, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(net.value_and_gradient(x)[1], Vx)


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_sobolev_terms_are_differentiable_in_the_parameters(kind, rng):
    """V and Vx carry gradients to the parameters, and those gradients are right (gradcheck on one weight)."""
    net = small_net(kind, (0,), net_arch=(4,))
    x = torch.tensor(states(rng, 3))
    V, Vx = net.value_and_gradient(x)
    ((V**2).sum() + (Vx**2).sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name

    class SobolevTerms(torch.nn.Module):
        """``[V, Vx]`` flattened, as a module so that ``functional_call`` can swap the network's weights."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            V, Vx = self.net.value_and_gradient(z)
            return torch.cat([V, Vx.reshape(-1)])

    terms = SobolevTerms()
    w0 = net.layers[0].weight.detach().clone().requires_grad_(True)
    f = lambda w: functional_call(terms, {"net.layers.0.weight": w}, (x,), strict=False)  # noqa: E731
    assert torch.autograd.gradcheck(f, (w0,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_create_graph_false_detaches(kind, rng):
    net = small_net(kind)
    for out in (net.value_derivatives(states(rng), create_graph=False), net.value_and_gradient(states(rng), create_graph=False)):
        assert all(not t.requires_grad for t in out)


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_value_is_periodic_in_the_angles_only(kind, rng):
    net = small_net(kind, angle_dims=(0, 2))
    arrays = net.export()
    x = states(rng)
    for dim in range(NX):
        shifted = x.copy()
        shifted[:, dim] += 2 * np.pi
        torch_same = torch.allclose(net(torch.tensor(shifted)), net(torch.tensor(x)), atol=1e-12, rtol=1e-12)
        numpy_same = np.allclose(numpy_value(arrays, shifted), numpy_value(arrays, x), atol=1e-12, rtol=1e-12)
        assert torch_same == numpy_same == (dim in (0, 2)), dim
    shifted = x + 2 * np.pi * np.array([1.0, 0.0, -3.0])
    for a, b in zip(numpy_value_derivatives(arrays, shifted), numpy_value_derivatives(arrays, x)):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=1e-10)


# ---------------------------------------------------------------------------- numpy export
@pytest.mark.parametrize("net_arch", [(), (5,), (8, 8, 8)])
@pytest.mark.parametrize("angle_dims", ANGLE_CASES)
@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_numpy_matches_torch(kind, angle_dims, net_arch, rng):
    net = small_net(kind, angle_dims, net_arch)
    arrays = net.export()
    x = states(rng)
    ref = [t.detach().numpy() for t in net.value_derivatives(torch.tensor(x))]
    batch = numpy_value_derivatives(arrays, x)
    assert batch.V.shape == (len(x),) and batch.Vx.shape == x.shape and batch.Vxx.shape == (len(x), NX, NX)
    for got, want in zip(batch, ref):
        np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-10)
    np.testing.assert_allclose(numpy_value(arrays, x), ref[0], atol=1e-10, rtol=1e-10)
    for i, xi in enumerate(x):
        V, Vx, Vxx = numpy_value_derivatives(arrays, xi)
        assert isinstance(V, float) and Vx.shape == (NX,) and Vxx.shape == (NX, NX)
        np.testing.assert_allclose(V, ref[0][i], atol=1e-10, rtol=1e-10)
        np.testing.assert_allclose(Vx, ref[1][i], atol=1e-10, rtol=1e-10)
        np.testing.assert_allclose(Vxx, ref[2][i], atol=1e-10, rtol=1e-10)
        assert isinstance(numpy_value(arrays, xi), float)


def test_numpy_feed_forward_hessian_matches_finite_differences(rng):
    arrays = small_net("feed_forward", (0,)).export()
    x = states(rng, 1)[0]
    h = 1e-6
    gradient = lambda z: numpy_value_derivatives(arrays, z).Vx  # noqa: E731
    fd = np.stack([(gradient(x + h * e) - gradient(x - h * e)) / (2 * h) for e in np.eye(NX)])
    np.testing.assert_allclose(numpy_value_derivatives(arrays, x).Vxx, fd, atol=1e-7, rtol=1e-6)


def test_export_is_a_read_only_picklable_snapshot(rng):
    net = small_net("gauss_residual")
    arrays = net.export()
    assert isinstance(arrays, NetworkArrays) and arrays.kind == "gauss_residual" and arrays.nx == NX
    assert all(a.dtype == np.float64 and not a.flags.writeable for a in (*arrays.weights, *arrays.biases, arrays.feature_std))
    x = states(rng)
    before = numpy_value(arrays, x)
    with torch.no_grad():
        net.layers[0].weight.add_(1.0)
    np.testing.assert_array_equal(numpy_value(arrays, x), before)
    np.testing.assert_array_equal(numpy_value(pickle.loads(pickle.dumps(arrays)), x), before)


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_rebuild_from_json_config_and_state_dict(kind, rng):
    net = small_net(kind, (1,))
    config = json.loads(json.dumps(net.config))
    assert config["kind"] == kind
    rebuilt = make_value_network(**config)
    assert type(rebuilt) is type(net)
    rebuilt.load_state_dict(net.state_dict())
    x = torch.tensor(states(rng))
    torch.testing.assert_close(rebuilt(x), net(x), atol=0, rtol=0)


def test_fit_normalisation_standardises_the_features(rng):
    x = states(rng, 200)
    x[:, 1] = 0.7  # a constant entry: centred, not divided by zero
    mean, std = fit_normalisation(x, angle_dims=(2,))
    assert mean.shape == std.shape == (NX + 1,)
    z = (raw_features(x, (2,)) - mean) / std
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 0.0, 1.0, 1.0], atol=1e-12)
    assert std[1] == 1.0


def test_default_constructors():
    assert GaussResidualNet(2).config == {"kind": "gauss_residual", "nx": 2, "net_arch": [64, 64, 64], "angle_dims": [], "residual_dim": 3}
    assert FeedForwardNet(2, angle_dims=(0,)).nf == 3


# ---------------------------------------------------------------------------- bad input
def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown value network kind 'mlp'"):
        make_value_network("mlp", NX)
    arrays = small_net("feed_forward").export()._replace(kind="mlp")
    with pytest.raises(ValueError, match="unknown value network kind"):
        numpy_value_derivatives(arrays, np.zeros(NX))


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_wrong_state_shape_raises(kind):
    net = small_net(kind)
    arrays = net.export()
    for bad in (np.zeros(NX + 1), np.zeros((2, NX - 1)), np.zeros((2, 2, NX)), np.zeros(())):
        with pytest.raises(ValueError, match=rf"\(N, {NX}\)"):
            net(torch.tensor(bad))
        with pytest.raises(ValueError, match=rf"\({NX},\) or \(N, {NX}\)"):
            numpy_value_derivatives(arrays, bad)
        with pytest.raises(ValueError, match=rf"\({NX},\)"):
            numpy_value(arrays, bad)
    with pytest.raises(ValueError, match=rf"\(N, {NX}\)"):
        net.value_derivatives(torch.zeros(NX))


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="angle_dims"):
        GaussResidualNet(NX, angle_dims=(3,))
    with pytest.raises(ValueError, match="angle_dims"):
        FeedForwardNet(NX, angle_dims=(1, 1))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        GaussResidualNet(NX, angle_dims=(0,), feature_mean=np.zeros(3))
    with pytest.raises(ValueError, match="positive"):
        FeedForwardNet(NX, feature_std=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="residual_dim"):
        GaussResidualNet(NX, residual_dim=0)
