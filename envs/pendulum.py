"""Pendulum swing-up with the physics of Gymnasium's Pendulum-v1."""

from __future__ import annotations

from typing import Any

import crocoddyl
import numpy as np
import pinocchio

from envs.base import check_parameters, reject_unknown_kwargs, uniform_box
from envs.multibody import CostTerm, MultibodyEnv, add_body, rod_inertia

#: default weights (angle, speed, torque) of each ``cost`` of :class:`PendulumEnv`
COST_DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "tip": {"angle": 1.0, "speed": 0.1, "torque": 0.01},
    "gymnasium": {"angle": 1.0, "speed": 0.1, "torque": 0.001},  # Pendulum-v1's reward
}


class PendulumEnv(MultibodyEnv):
    r"""Swing a pendulum up to the upright and keep it there.

    ## Description
    A uniform rod of mass ``m`` and length ``l`` hinged at one end, with
    Gymnasium Pendulum-v1's physics (g=10, m=1, l=1, dt=0.05, torque bound 2):
    ``thdot' = thdot + dt * (3 g / (2 l) sin(th) + 3 / (m l^2) u)``, ``th' = th + dt * thdot'``.
    The dynamics are pinocchio's ABA on a one-joint model, integrated by
    Crocoddyl's semi-implicit Euler, which is exactly that update. Unlike
    Gymnasium there is no clip of the speed at 8 rad/s (it would make the
    dynamics non-smooth for DDP). The torque bound (2 < m g l / 2) forces pumping.

    ## State / observation, shape (2,)
    | idx | meaning | range |
    |-----|---------|-------|
    | 0 | ``th``: angle from the upright (rad), wrapped to [-pi, pi) after each step | [-pi, pi) |
    | 1 | ``thdot``: angular speed (rad/s) | unbounded |

    ## Action, shape (1,)
    Torque at the hinge, in ``[-max_torque, max_torque]`` (clipped by ``step``).

    ## Cost (reward = -cost), ``cost="tip"`` (default)
    ``cost = dt * (w_angle * (1 - cos th) * l^2 + 0.5 * w_speed * thdot^2 + 0.5 * w_torque * u^2)``
    where the angle term is Crocoddyl's frame-translation residual of the rod's tip
    (``0.5 * ||p_tip - p_upright||^2 = l^2 (1 - cos th)``): smooth, 2*pi-periodic and
    ``~ th^2 / 2`` near the upright. As for every Crocoddyl residual cost, ``Lxx`` of that
    term is the Gauss-Newton ``R_x^T R_x = dt * w_angle * l^2`` (the exact second derivative
    is ``dt * w_angle * l^2 * cos th``); gradients are exact. No terminal cost unless ``w_terminal > 0``
    (then ``w_terminal`` times the same state cost, without ``dt``). Default weights
    ``w_angle=1, w_speed=0.1, w_torque=0.01``.

    ## Cost, ``cost="gymnasium"``: Gymnasium Pendulum-v1's reward
    ``cost = w_angle * angle_normalize(th)^2 + w_speed * thdot^2 + w_torque * u^2`` per step, at the
    pre-step state and the clipped torque; with the default weights ``w_angle=1, w_speed=0.1,
    w_torque=0.001`` it is exactly ``-reward`` of Pendulum-v1. The angle term is Crocoddyl's
    frame-rotation residual ``log3(R_rod) = (0, angle_normalize(th), 0)`` (the rod turns about
    ``y``): native, 2*pi-periodic, smooth except for a kink at ``th = +-pi`` (the hanging rod),
    where its gradient jumps from ``+2 pi w_angle`` to ``-2 pi w_angle``. Away from the kink every
    derivative, ``Lxx`` included, is exact (the residual is linear in ``th`` there). The weights
    are divided by ``dt`` inside the model because Crocoddyl's Euler integrator multiplies the
    running cost by ``dt``. No terminal cost unless ``w_terminal > 0`` (then
    ``w_terminal * (w_angle * angle_normalize(th)^2 + w_speed * thdot^2)``: ``w_terminal`` steps of
    the state cost). Pendulum-v1 clips the new speed to ``[-8, 8]``; this model does not (the clip
    is not smooth), so one step equals Pendulum-v1's exactly when
    ``|thdot + dt * (3 g / (2 l) sin th + 3 / (m l^2) u)| <= 8`` and differs in the speed (and
    the angle) otherwise. ``envs.twins`` maps Pendulum-v1's observations to this env's state.

    ## The value function is discontinuous at the default torque bound
    Gravity's torque about the hinge is ``m g l / 2 * sin(th)``; beyond ``|th| = asin(2 max_torque /
    (m g l))`` (0.41 rad by default) the motor cannot hold the rod, which falls and must swing
    round: the T=50 value jumps from 0.09 at ``th=0.40`` to 2.52 at ``th=0.42`` (``thdot=0``), and
    similar cliffs separate the numbers of pumps. A smooth network cannot fit a jump, and the DDP
    gradients near one reach 1e3. With ``max_torque > m g l / 2`` (e.g. 6) the value is continuous
    (0.041 -> 0.045 across the same step); DVP's accuracy benchmark uses that variant as well.

    ## Starting state
    Uniform over ``th in [-pi, pi)``, ``thdot in [-max_start_speed, max_start_speed]``.

    ## Arguments
    ``gymnasium.make("dvp_rl/Pendulum-v0", g=10., m=1., l=1., dt=0.05, max_torque=2.,
    cost="tip", w_angle=None, w_speed=None, w_torque=None, w_terminal=0., max_start_speed=1.)``;
    a weight left at ``None`` takes the default of the chosen ``cost`` (see above). An unknown
    ``cost`` raises ``ValueError``.

    ## Version history
    * v0: initial version; ``cost="gymnasium"`` added later (the default is unchanged).
    """

    nx = 2
    nu = 1
    angle_dims = (0,)
    gauss_newton_hessian = True
    value_horizon = 300  # 15 s: swing-ups take under 5 s
    goal_state = (0.0, 0.0)  # upright at rest: zero cost, an equilibrium with zero torque
    # local optima: the swing direction and the number of pumps (docs/REPRODUCTION.md measures the guesses)
    ddp_guesses = ("hold", "zero_rollout", "push_plus", "push_minus", "continuation")

    def __init__(
        self,
        g: float = 10.0,
        m: float = 1.0,
        l: float = 1.0,  # noqa: E741 (the physics name)
        dt: float = 0.05,
        max_torque: float = 2.0,
        cost: str = "tip",
        w_angle: float | None = None,
        w_speed: float | None = None,
        w_torque: float | None = None,
        w_terminal: float = 0.0,
        max_start_speed: float = 1.0,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        if cost not in COST_DEFAULT_WEIGHTS:
            raise ValueError(f"cost must be one of {sorted(COST_DEFAULT_WEIGHTS)}, got {cost!r}")
        check_parameters(self, "positive", m=m, l=l, dt=dt, max_torque=max_torque)
        check_parameters(self, "finite", g=g)
        check_parameters(self, "non_negative", w_terminal=w_terminal, max_start_speed=max_start_speed,
                         **{f"w_{k}": w for k, w in {"angle": w_angle, "speed": w_speed, "torque": w_torque}.items() if w is not None})
        self.g, self.m, self.l, self.dt = float(g), float(m), float(l), float(dt)
        self.cost_kind = cost
        given = {"angle": w_angle, "speed": w_speed, "torque": w_torque}
        self.weights = {k: float(COST_DEFAULT_WEIGHTS[cost][k] if w is None else w) for k, w in given.items()}
        # the frame-rotation residual is linear in th away from the kink: its Gauss-Newton Hessian is exact
        self.gauss_newton_hessian = cost == "tip"
        self.w_terminal = float(w_terminal)
        self.max_start_speed = float(max_start_speed)
        self.pin_model = self._build_pinocchio_model()
        self._tip = self.pin_model.getFrameId("tip")
        super().__init__([-max_torque], [max_torque], np.array([np.pi, np.inf]), render_mode)

    def _build_pinocchio_model(self) -> pinocchio.Model:
        model = pinocchio.Model()
        model.gravity.linear = np.array([0.0, 0.0, -self.g])
        # q = 0 is upright: the rod's centre is at +z l/2 of the hinge (rotation about y).
        jid = add_body(model, 0, pinocchio.JointModelRY(), "hinge", self.m, np.array([0.0, 0.0, self.l / 2]), rod_inertia(self.m, self.l))
        model.addFrame(pinocchio.Frame("tip", jid, 0, pinocchio.SE3(np.eye(3), np.array([0.0, 0.0, self.l])), pinocchio.FrameType.OP_FRAME))
        return model

    def _terms(self, running: bool) -> list[CostTerm]:
        speed = lambda s, nu: crocoddyl.ResidualModelState(s, np.zeros(2), nu)  # noqa: E731
        select_speed = np.array([0.0, 1.0])
        if self.cost_kind == "tip":
            tip_up = np.array([0.0, 0.0, self.l])
            angle = lambda s, nu: crocoddyl.ResidualModelFrameTranslation(s, self._tip, tip_up, nu)  # noqa: E731
            scale = 1.0
        else:
            angle = lambda s, nu: crocoddyl.ResidualModelFrameRotation(s, self._tip, np.eye(3), nu)  # noqa: E731
            # 0.5 * weight * r^2 must give weight' * r^2 per step: x2, and /dt against the integrator's dt
            scale = 2.0 / self.dt if running else 2.0
        w = {k: scale * v for k, v in self.weights.items()}
        terms = [CostTerm("angle", angle, w["angle"]), CostTerm("speed", speed, w["speed"], select_speed)]
        if running:
            terms.append(CostTerm("torque", lambda s, nu: crocoddyl.ResidualModelControl(s, nu), w["torque"]))
        return terms

    def _actuation(self, state: crocoddyl.StateMultibody) -> crocoddyl.ActuationModelAbstract:
        return crocoddyl.ActuationModelFull(state)

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        high = np.array([np.pi, self.max_start_speed])
        return uniform_box(n, -high, high, rng)

