"""The value terminal model: calc/calcDiff against the network, statelessness, inside a real DDP, bad input."""

import pickle

import crocoddyl
import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401  (registers the ids)
from dvp_rl.value import kernel as compiled
from dvp_rl.control.ocp import OptimalControlProblem
from dvp_rl.control.terminal import ValueTerminalModel, value_terminal
from dvp_rl.value.networks import VALUE_NETWORK_KINDS, make_value_network, numpy_value_derivatives

NX, NU = 3, 2
SCALE = 0.8


def unicycle():
    # light state weights, so that the network terminal weighs in the solution (see the end of
    # test_value_terminal_inside_ddp)
    return gym.make("dvp_rl/Unicycle-v0", w_state=1.0).unwrapped


def exported(kind: str, angle_dims=(2,), output_gain: float = 1.0, seed: int = 0):
    """A small network fitted to the unicycle's start states; ``output_gain`` scales the output layer."""
    torch.manual_seed(seed)
    net = make_value_network(kind, NX, net_arch=(16, 16), angle_dims=angle_dims)
    net.fit_normalisation(unicycle().sample_states(256, seed))
    with torch.no_grad():
        net.layers[-1].weight.mul_(output_gain)
    return net, net.export()


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_calc_and_calc_diff_match_the_network(kind, rng):
    net, arrays = exported(kind)
    model = ValueTerminalModel(arrays, NX, NU, cost_scale=SCALE)
    data = model.createData()
    assert model.state.nx == NX and model.nu == NU and model.nr == 0
    for x in rng.normal(size=(4, NX)):
        V, Vx, Vxx = (t.detach().numpy()[0] for t in net.value_derivatives(torch.tensor(x[None])))
        model.calc(data, x)
        model.calcDiff(data, x)
        np.testing.assert_allclose(data.cost, SCALE * V, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(data.xnext).reshape(NX), x)
        np.testing.assert_allclose(np.asarray(data.Lx).reshape(NX), SCALE * Vx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(data.Lxx).reshape(NX, NX), SCALE * Vxx, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(data.Fx).reshape(NX, NX), np.eye(NX))
        model.calc(data, x, np.ones(NU))  # a control, if given, changes nothing
        np.testing.assert_allclose(data.cost, SCALE * V, rtol=1e-12, atol=1e-12)


def test_calc_diff_uses_its_own_state(rng):
    """No derivatives are carried between calls: calcDiff after a calc at another x is right for its x."""
    _, arrays = exported("feed_forward")
    model = ValueTerminalModel(arrays, NX, NU, cost_scale=SCALE)
    data = model.createData()
    x_a, x_b = rng.normal(size=(2, NX))
    model.calc(data, x_a)
    model.calcDiff(data, x_b)
    _, Vx, Vxx = numpy_value_derivatives(arrays, x_b)
    np.testing.assert_allclose(np.asarray(data.Lx).reshape(NX), SCALE * Vx, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(data.Lxx).reshape(NX, NX), SCALE * Vxx, rtol=1e-12)
    other = model.createData()
    model.calcDiff(other, x_a)
    np.testing.assert_allclose(np.asarray(data.Lx).reshape(NX), SCALE * Vx, rtol=1e-12)  # data objects are separate


def test_lx_matches_finite_differences_of_the_cost(rng):
    _, arrays = exported("gauss_residual")
    model = ValueTerminalModel(arrays, NX, NU, cost_scale=SCALE)
    data = model.createData()

    def cost(x):
        model.calc(data, x)
        return data.cost

    x, h = rng.normal(size=NX), 1e-6
    fd = np.array([(cost(x + h * e) - cost(x - h * e)) / (2 * h) for e in np.eye(NX)])
    model.calcDiff(data, x)
    np.testing.assert_allclose(np.asarray(data.Lx).reshape(NX), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", VALUE_NETWORK_KINDS)
def test_value_terminal_inside_ddp(kind):
    """The unicycle DDP with the learned terminal converges; its Vx is the gradient of the optimal cost in x0."""
    env = unicycle()
    horizon, gamma = 20, 0.99
    _, arrays = exported(kind, output_gain=3.0)
    ocp = OptimalControlProblem(env, horizon, gamma=gamma, terminal=value_terminal(arrays, NX, NU), th_stop=1e-16, max_iter=300)
    assert isinstance(ocp.terminal_model, ValueTerminalModel) and ocp.terminal_model.cost_scale == pytest.approx(gamma**horizon)
    x0 = np.array([0.5, -0.3, 0.4])
    result = ocp.solve(x0)
    assert result.converged

    # The backward pass starts from the scaled network derivatives at the final state
    # (of the trajectory before the last, converged step: hence not to round-off).
    xT = np.asarray(ocp.solver.xs[-1])
    _, Vx_T, Vxx_T = numpy_value_derivatives(arrays, xT)
    np.testing.assert_allclose(np.asarray(ocp.solver.Vx[-1]).reshape(NX), gamma**horizon * Vx_T, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(np.asarray(ocp.solver.Vxx[-1]).reshape(NX, NX), gamma**horizon * Vxx_T, rtol=1e-7, atol=1e-10)

    h = 1e-5
    fd = []
    for e in np.eye(NX):
        plus, minus = ocp.solve(x0 + h * e), ocp.solve(x0 - h * e)
        assert plus.converged and minus.converged
        fd.append((plus.cost - minus.cost) / (2 * h))
    np.testing.assert_allclose(result.Vx, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())

    # The terminal matters: without it the start gradient differs by far more than the tolerance above.
    free = OptimalControlProblem(env, horizon, gamma=gamma).solve(x0)
    assert np.abs(free.Vx - result.Vx).max() > 1e-2 * np.abs(result.Vx).max()


def test_factory_pickles_and_builds_fresh_models():
    _, arrays = exported("gauss_residual")
    factory = pickle.loads(pickle.dumps(value_terminal(arrays, NX, NU)))
    a, b = factory(0.5), factory(0.25)
    assert a is not b and isinstance(a, crocoddyl.ActionModelAbstract)
    assert (a.cost_scale, b.cost_scale) == (0.5, 0.25)
    x = np.array([0.1, 0.2, 0.3])
    da, db = a.createData(), b.createData()
    a.calc(da, x)
    b.calc(db, x)
    assert da.cost == pytest.approx(2 * db.cost, rel=1e-14)


def test_bad_input_raises():
    _, arrays = exported("gauss_residual")
    with pytest.raises(ValueError, match="dimension 3, got nx=4"):
        ValueTerminalModel(arrays, 4, NU)
    with pytest.raises(ValueError, match="dimension 3"):
        value_terminal(arrays, 2, NU)
    with pytest.raises(TypeError, match="NetworkArrays"):
        value_terminal({"weights": []}, NX, NU)
    model = ValueTerminalModel(arrays, NX, NU)
    data = model.createData()
    model.calc(data, np.zeros(4))  # inside a solve the error must not cross Crocoddyl's C++: it is kept
    assert np.isnan(data.cost)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        raise model.take_error()
    assert model.take_error() is None


@pytest.mark.parametrize("use_compiled", [False, pytest.param(True, marks=pytest.mark.skipif(not compiled.AVAILABLE, reason="numba missing"))])
def test_fast_gauss_residual_path_equals_the_reference_evaluation(use_compiled):
    """The terminal's single-state paths (precomputed numpy; numba kernel) give numpy_value_derivatives'
    numbers, angles or not, for layers of different widths."""
    rng = np.random.default_rng(4)
    for angle_dims, arch in [((), (16, 16)), ((2,), (16, 16)), ((0, 2), (8, 24, 5))]:
        net = make_value_network("gauss_residual", NX, net_arch=arch, angle_dims=angle_dims)
        net.fit_normalisation(rng.normal(size=(50, NX)))
        arrays = net.export()
        model = ValueTerminalModel(arrays, NX, NU, cost_scale=0.7, use_compiled=use_compiled)
        assert (model._compiled is not None) == use_compiled
        data = model.createData()
        for x in rng.normal(size=(4, NX)):
            V, Vx, Vxx = numpy_value_derivatives(arrays, x)
            model.calc(data, x)
            model.calcDiff(data, x)
            assert data.cost == pytest.approx(0.7 * V, rel=1e-13)
            np.testing.assert_allclose(data.Lx, 0.7 * Vx, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(data.Lxx, 0.7 * Vxx, rtol=1e-12, atol=1e-14)


def test_an_exception_inside_the_terminal_reaches_the_caller_of_the_solve():
    """Raised from Crocoddyl's C++ it would abort the interpreter; the solve re-raises it instead."""

    class Exploding(ValueTerminalModel):
        def _calc_diff(self, data, x, u=None):
            raise RuntimeError("terminal blew up")

    _, arrays = exported("gauss_residual")
    env = gym.make("dvp_rl/Unicycle-v0").unwrapped
    ocp = OptimalControlProblem(env, 5, terminal=Exploding(arrays, NX, NU))
    with pytest.raises(RuntimeError, match="terminal blew up"):
        ocp.solve(np.array([0.3, -0.2, 0.1]))
    assert ocp.terminal_model.error is None  # taken by the solve
