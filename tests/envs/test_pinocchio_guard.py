"""Guard against the silent wrong-dynamics combination of Crocoddyl and pinocchio.

crocoddyl 3.2.1 next to pinocchio 4.1.0 computes wrong free forward dynamics
(10-40 off) without any error; pinocchio 4.0.0 is exact. This test compares
Crocoddyl's multibody forward dynamics with ``pinocchio.aba`` directly.
"""

import crocoddyl
import numpy as np
import pinocchio
import pytest

from envs.cartpole import CartPoleEnv
from envs.pendulum import PendulumEnv


def crocoddyl_accelerations(model: pinocchio.Model, q, v, tau) -> np.ndarray:
    state = crocoddyl.StateMultibody(model)
    actuation = crocoddyl.ActuationModelFull(state)
    dam = crocoddyl.DifferentialActionModelFreeFwdDynamics(state, actuation, crocoddyl.CostModelSum(state, actuation.nu))
    data = dam.createData()
    dam.calc(data, np.concatenate([q, v]), tau)
    return np.array(data.xout)


@pytest.mark.parametrize("seed", range(3))
def test_crocoddyl_free_forward_dynamics_equal_pinocchio_aba_on_the_sample_manipulator(seed):
    model = pinocchio.buildSampleModelManipulator()
    pinocchio.seed(seed)
    rng = np.random.default_rng(seed)
    q = pinocchio.randomConfiguration(model)
    v = rng.normal(size=model.nv)
    tau = rng.normal(size=model.nv)
    expected = pinocchio.aba(model, model.createData(), q, v, tau)
    np.testing.assert_allclose(crocoddyl_accelerations(model, q, v, tau), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("env_cls", [PendulumEnv, CartPoleEnv])
def test_env_models_equal_pinocchio_aba(env_cls):
    model = env_cls().pin_model
    rng = np.random.default_rng(0)
    q, v, tau = rng.normal(size=model.nq), rng.normal(size=model.nv), rng.normal(size=model.nv)
    expected = pinocchio.aba(model, model.createData(), q, v, tau)
    np.testing.assert_allclose(crocoddyl_accelerations(model, q, v, tau), expected, rtol=1e-12, atol=1e-12)


def test_pinned_versions():
    """The pair known to be exact; update both this test and pyproject.toml together, after the guards above pass."""
    assert pinocchio.__version__ == "4.0.0"
    assert crocoddyl.__version__ == "3.2.1"
