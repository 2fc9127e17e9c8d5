"""The twins' Crocoddyl models in Python (envs.mjcf.models): Reacher's smooth norm activation (the damped
actuation is the continuous dynamics' part, tested in test_twin.py)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from envs.mjcf.reacher import ReacherTwin  # noqa: E402
from tests.helpers import central_difference  # noqa: E402

pytestmark = pytest.mark.mujoco


def test_smooth_norm_activation_has_exact_derivatives(rng):
    """Exact value and gradient, the exact Hessian's diagonal (Crocoddyl keeps activation Hessians diagonal; its
    Smooth2Norm's diag(1/s^3) is 10-1e4x too stiff here), and Reacher's DDP converges in a few iterations."""
    from dvp_rl.control.ocp import OptimalControlProblem
    from envs.mjcf.models import SmoothNormActivation

    activation = SmoothNormActivation(3, 1e-3)
    data = activation.createData()

    def value(r):
        activation.calc(data, r)
        return data.a_value

    def gradient(r):
        activation.calc(data, r)
        activation.calcDiff(data, r)
        return data.Ar.copy()

    for r in (rng.normal(size=3) * 0.2, rng.normal(size=3) * 1e-3, np.zeros(3)):
        assert value(r) == pytest.approx(np.sqrt(1e-6 + r @ r) - 1e-3, abs=1e-15)
        np.testing.assert_allclose(gradient(r), central_difference(value, r, h=1e-8), atol=1e-6)
        activation.calcDiff(data, r)
        np.testing.assert_allclose(np.diag(data.Arr), np.diag(central_difference(gradient, r, h=1e-8)), rtol=1e-5, atol=1e-3)
        assert np.count_nonzero(data.Arr - np.diag(np.diag(data.Arr))) == 0
    ocp = OptimalControlProblem(ReacherTwin(), 20)
    results = [ocp.solve(x0) for x0 in ReacherTwin().sample_states(4, 1)]
    assert all(r.converged and r.iterations <= 30 for r in results), [r.iterations for r in results]
