"""Cart-pole balancing with Gymnasium CartPole's physics and a continuous force."""

from __future__ import annotations

from typing import Any

import crocoddyl
import numpy as np
import pinocchio

from envs.base import check_parameters, reject_unknown_kwargs, uniform_box
from envs.multibody import CostTerm, MultibodyEnv, SelectedJointsActuation, add_body, rod_inertia


class CartPoleEnv(MultibodyEnv):
    r"""Balance a pole on a cart around the upright, with a continuous cart force.

    ## Description
    Gymnasium CartPole's physics (cart 1 kg, pole 0.1 kg uniform rod of
    half-length 0.5 m hinged on the cart, g=9.8, dt=0.02, no friction), i.e. the
    exact Lagrangian dynamics of Gymnasium's equations, computed by pinocchio's ABA
    on a prismatic + revolute model and integrated with Crocoddyl's semi-implicit
    Euler (Gymnasium's ``kinematics_integrator="semi-implicit euler"``). The force
    is continuous in ``[-max_force, max_force]`` (Gymnasium's ``force_mag`` = 10).
    Only the cart is actuated. Episodes never terminate on the angle: the task is
    the paper's balance around the upright.

    ## State / observation, shape (4,)
    | idx | meaning |
    |-----|---------|
    | 0 | cart position (m) |
    | 1 | pole angle from the upright (rad), positive towards +x |
    | 2 | cart speed (m/s) |
    | 3 | pole angular speed (rad/s) |

    ## Action, shape (1,)
    Horizontal force on the cart (N), clipped to ``[-max_force, max_force]``.

    ## Cost (reward = -cost)
    ``cost = dt * 0.5 * (sum_i w_state[i] * x_i^2 + w_force * u^2)``.
    Terminal cost ``w_terminal * 0.5 * sum_i w_state[i] x_i^2`` (zero by default).

    ## Starting state
    Uniform over the box ``|x_i| <= start_bound[i]``; default
    ``start_bound = (1.0, 0.3, 0.5, 0.5)``: cart within 1 m, pole within 0.3 rad
    (17 deg) of the upright, speeds within 0.5.

    ## Arguments
    ``gymnasium.make("dvp_rl/CartPole-v0", cart_mass=1., pole_mass=0.1,
    pole_half_length=0.5, g=9.8, dt=0.02, max_force=10., w_state=(1., 5., 0.1, 0.1),
    w_force=0.01, w_terminal=0., start_bound=(1., .3, .5, .5))``

    ## Version history
    * v0: initial version.
    """

    nx = 4
    nu = 1
    value_horizon = 500  # 10 s
    goal_state = (0.0, 0.0, 0.0, 0.0)  # centred, upright, at rest: zero cost, an equilibrium with zero force

    def __init__(
        self,
        cart_mass: float = 1.0,
        pole_mass: float = 0.1,
        pole_half_length: float = 0.5,
        g: float = 9.8,
        dt: float = 0.02,
        max_force: float = 10.0,
        w_state: tuple[float, float, float, float] = (1.0, 5.0, 0.1, 0.1),
        w_force: float = 0.01,
        w_terminal: float = 0.0,
        start_bound: tuple[float, float, float, float] = (1.0, 0.3, 0.5, 0.5),
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "positive", cart_mass=cart_mass, pole_mass=pole_mass, pole_half_length=pole_half_length)
        check_parameters(self, "finite", g=g)
        check_parameters(self, "non_negative", w_state=w_state, w_force=w_force, w_terminal=w_terminal, start_bound=start_bound)
        self.cart_mass, self.pole_mass = float(cart_mass), float(pole_mass)
        self.pole_half_length, self.g, self.dt = float(pole_half_length), float(g), float(dt)
        self.w_state = np.asarray(w_state, dtype=np.float64).reshape(4)
        self.w_force = float(w_force)
        self.w_terminal = float(w_terminal)
        self.start_bound = np.asarray(start_bound, dtype=np.float64).reshape(4)
        self.pin_model = self._build_pinocchio_model()
        super().__init__([-max_force], [max_force], np.full(4, np.inf), render_mode)

    def _build_pinocchio_model(self) -> pinocchio.Model:
        model = pinocchio.Model()
        model.gravity.linear = np.array([0.0, 0.0, -self.g])
        cart = add_body(model, 0, pinocchio.JointModelPX(), "cart", self.cart_mass, np.zeros(3), np.zeros((3, 3)))
        length = 2.0 * self.pole_half_length
        add_body(model, cart, pinocchio.JointModelRY(), "pole", self.pole_mass, np.array([0.0, 0.0, self.pole_half_length]), rod_inertia(self.pole_mass, length))
        return model

    def _terms(self, running: bool) -> list[CostTerm]:
        terms = [CostTerm("state", lambda s, nu: crocoddyl.ResidualModelState(s, np.zeros(4), nu), 1.0, self.w_state)]
        if running:
            terms.append(CostTerm("force", lambda s, nu: crocoddyl.ResidualModelControl(s, nu), self.w_force))
        return terms

    def _actuation(self, state: crocoddyl.StateMultibody) -> crocoddyl.ActuationModelAbstract:
        return SelectedJointsActuation(state, [0])  # only the cart is driven

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        return uniform_box(n, -self.start_bound, self.start_bound, rng)

