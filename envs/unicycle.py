"""Kinematic unicycle reaching the origin (the paper's eq. 13), Crocoddyl's native model."""

from __future__ import annotations

from typing import Any

import crocoddyl
import numpy as np

from envs.base import CrocoddylEnv, check_parameters, reject_unknown_kwargs, uniform_box


class UnicycleEnv(CrocoddylEnv):
    r"""Drive a kinematic unicycle to the origin.

    ## Description
    ``x' = x + dt v cos(th)``, ``y' = y + dt v sin(th)``, ``th' = th + dt w``: Crocoddyl's
    native ``ActionModelUnicycle``. The heading is *not* wrapped: the cost
    penalises ``th`` itself, so the goal is the pose (0, 0, 0).

    ## State / observation, shape (3,)
    ``(x, y, th)``: position (m) and heading (rad).

    ## Action, shape (2,)
    ``(v, w)``: forward speed (m/s) and turn rate (rad/s), each clipped to
    ``[-max_speed, max_speed]`` and ``[-max_turn, max_turn]``.

    ## Cost (reward = -cost)
    ``cost = 0.5 * ||w_state * q||^2 + 0.5 * ||w_control * u||^2`` (the paper's eq. 13 in
    Crocoddyl's convention and default weights ``(10, 1)``; not multiplied by ``dt``). Terminal cost
    ``0.5 * ||w_terminal * q||^2`` (zero by default).

    ## Starting state
    Uniform over ``x, y in [-start_bound, start_bound]``, ``th in [-pi/2, pi/2]``
    (default ``start_bound = 1``, i.e. the paper's square around the goal).

    ## Arguments
    ``gymnasium.make("dvp_rl/Unicycle-v0", dt=0.1, w_state=10., w_control=1.,
    w_terminal=0., max_speed=5., max_turn=5., start_bound=1.)``

    ## Version history
    * v0: initial version.
    """

    nx = 3
    nu = 2
    # At the origin the unicycle is not linearly controllable (no sideways motion), so the cost
    # of an optimal trajectory decays slowly: V_300 differs from V_600 by 8e-7 relative MSE
    # (w_state = 10), V_1000 is the reference.
    value_horizon = 1000  # 100 s
    goal_state = (0.0, 0.0, 0.0)  # the origin: zero cost, an equilibrium with zero control
    ddp_guesses = ("hold", "zero_rollout", "push_plus", "push_minus")  # local optima

    def __init__(
        self,
        dt: float = 0.1,
        w_state: float = 10.0,
        w_control: float = 1.0,
        w_terminal: float = 0.0,
        max_speed: float = 5.0,
        max_turn: float = 5.0,
        start_bound: float = 1.0,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "non_negative", w_state=w_state, w_control=w_control, w_terminal=w_terminal, start_bound=start_bound)
        self.dt = float(dt)
        self.w_state, self.w_control, self.w_terminal = float(w_state), float(w_control), float(w_terminal)
        self.start_bound = float(start_bound)
        super().__init__([-max_speed, -max_turn], [max_speed, max_turn], np.full(3, np.inf), render_mode)

    def _unicycle(self, w_state: float, w_control: float) -> crocoddyl.ActionModelUnicycle:
        model = crocoddyl.ActionModelUnicycle()
        model.dt = self.dt
        model.costWeights = np.array([w_state, w_control])
        return model

    def _make_action_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        # Crocoddyl's cost is 0.5 * ||w * r||^2: scaling it by s scales the weights by sqrt(s).
        root = np.sqrt(cost_scale)
        return self._unicycle(root * self.w_state, root * self.w_control)

    def _make_terminal_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        return self._unicycle(np.sqrt(cost_scale) * self.w_terminal, 0.0)

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        b = self.start_bound
        return uniform_box(n, [-b, -b, -np.pi / 2], [b, b, np.pi / 2], rng)
