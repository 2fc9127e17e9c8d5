"""The base class of the twins of Gymnasium's MuJoCo envs (:class:`MJCFTwinEnv`) and the helpers
their costs are built with (:class:`CostTerm`, :func:`frame_translation`, :func:`add_mirror_frame`,
:func:`one_minus_cosine_terms`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import crocoddyl
import numpy as np
import pinocchio

from envs.base import CrocoddylEnv, check_parameters
from envs.mjcf.loader import load_mjcf_system
from envs.mjcf.models import JointActuation


class CostTerm(NamedTuple):
    """One term ``weight * a(r(x, u))`` of a twin's cost per env step.

    ``make_residual(state, nu)`` builds the Crocoddyl residual, ``make_activation(nr)`` its activation
    (``None``: ``0.5 ||r||^2``). ``running_only`` terms (control costs) are left out of the terminal cost.
    """

    name: str
    make_residual: Callable[[crocoddyl.StateMultibody, int], Any]
    weight: float
    make_activation: Callable[[int], Any] | None = None
    running_only: bool = False


#: Runge-Kutta orders of the twins (``rk_order``) -> Crocoddyl's type
RK_TYPES = {2: crocoddyl.RKType.two, 3: crocoddyl.RKType.three, 4: crocoddyl.RKType.four}


class MJCFTwinEnv(CrocoddylEnv):
    """Base class of the twins of Gymnasium MuJoCo envs (see :mod:`envs.mjcf`).

    A subclass sets :attr:`real_id` and :attr:`goal_joints`, implements :meth:`_cost_terms` (the
    cost per env step) and ``sample_states``, and calls ``super().__init__(real_kwargs, ...)``.
    The state is pinocchio's ``(q, v)`` in :attr:`MJCFSystem.joint_names` order. The cost also has
    ``0.5 w_limit (q - (high - limit_margin))^2`` per step beyond each joint limit (and below the low
    one, :attr:`MJCFSystem.limits`), zero inside.

    :param real_kwargs: ``gymnasium.make`` arguments of the real env (``None`` values left out)
    :param gravity: replaces MuJoCo's gravity (``None``: MuJoCo's)
    :param w_limit: weight of the joint-limit barriers
    :param limit_margin: how far inside MuJoCo's limits the barriers start
    :param w_terminal: terminal cost weight (the state part of the cost)
    :param rk_order: order of Crocoddyl's Runge-Kutta step (4: MuJoCo's RK4; 2 or 3: a cheaper, less
        exact model, e.g. for a controller that plans with it: each stage costs one evaluation of
        the dynamics and the cost)
    """

    #: the Gymnasium id of the real env
    real_id: str
    #: MuJoCo joints of a static target (see :func:`load_mjcf_system`)
    goal_joints: tuple[str, ...] = ()

    def __init__(
        self,
        real_kwargs: dict[str, Any],
        gravity: Sequence[float] | None = None,
        w_limit: float = 1e3,
        limit_margin: float = 0.05,
        w_terminal: float = 0.0,
        render_mode: str | None = None,
        rk_order: int = 4,
    ) -> None:
        check_parameters(self, "non_negative", w_limit=w_limit, limit_margin=limit_margin, w_terminal=w_terminal)
        if rk_order not in RK_TYPES:  # (True == 1 is not among them)
            raise ValueError(f"{type(self).__name__}: rk_order must be one of {sorted(RK_TYPES)}, got {rk_order!r}")
        self.rk_order = int(rk_order)
        self.w_limit, self.limit_margin = float(w_limit), float(limit_margin)
        if gravity is not None:
            check_parameters(self, "finite", gravity=gravity)
        kwargs = {k: v for k, v in real_kwargs.items() if v is not None}
        if "frame_skip" in kwargs:
            frame_skip = kwargs["frame_skip"]
            if isinstance(frame_skip, bool) or not float(frame_skip).is_integer() or frame_skip < 1:
                raise ValueError(f"{type(self).__name__}: frame_skip must be an integer >= 1, got {frame_skip!r}")
            kwargs["frame_skip"] = int(frame_skip)
        self.system = load_mjcf_system(self.real_id, self.goal_joints, gravity, **kwargs)
        #: this env's pinocchio model: the system's, plus the frames its cost adds (:meth:`_extend_model`)
        self.pin_model = self._extend_model(pinocchio.Model(self.system.pin_model))
        self.w_terminal = float(w_terminal)
        self.dt = self.system.dt
        self.nx = 2 * self.system.pin_model.nv
        self.nu = self.system.B.shape[1]
        super().__init__(self.system.ctrl_low, self.system.ctrl_high, np.inf, render_mode)

    # ------------------------------------------------------------------ model
    def _extend_model(self, pin_model: pinocchio.Model) -> pinocchio.Model:
        """Add what the cost needs (frames) to this env's copy of the model; no change by default."""
        return pin_model

    def frame_id(self, name: str) -> int:
        """Pinocchio frame id of a MuJoCo site or body ``name`` (or a frame the cost added), or a ``ValueError``."""
        if not self.pin_model.existFrame(name):
            raise ValueError(f"{type(self).__name__} has no frame {name!r} (frames: {[f.name for f in self.pin_model.frames]})")
        return self.pin_model.getFrameId(name)

    def _cost_terms(self) -> list[CostTerm]:
        """The cost of one env step (before the rate conversion and the terminal selection)."""
        raise NotImplementedError

    def _limit_terms(self) -> list[CostTerm]:
        """The joint-limit barriers (none without limits)."""
        if not self.system.limits:
            return []
        nq = self.pin_model.nq
        low, high, weights = np.full(2 * nq, -np.inf), np.full(2 * nq, np.inf), np.zeros(2 * nq)
        for name, lower, upper in self.system.limits:
            k = self.system.joint_names.index(name)
            low[k], high[k], weights[k] = lower + self.limit_margin, upper - self.limit_margin, 1.0
        bounds = crocoddyl.ActivationBounds(low, high)
        return [
            CostTerm(
                "joint_limits",
                lambda s, nu: crocoddyl.ResidualModelState(s, np.zeros(s.nx), nu),
                self.w_limit,
                lambda nr: crocoddyl.ActivationModelWeightedQuadraticBarrier(bounds, weights),
            )
        ]

    def _build_model(self, dt: float, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        state = crocoddyl.StateMultibody(self.pin_model)
        actuation = JointActuation(state, self.system.B, self.system.damping)
        costs = crocoddyl.CostModelSum(state, actuation.nu)
        # the RK4 model charges dt times the quadrature of the cost rate: a rate of cost / dt
        rate = 1.0 / dt if dt > 0 else 1.0
        for term in self._cost_terms() + self._limit_terms():
            if dt == 0 and term.running_only:
                continue
            residual = term.make_residual(state, actuation.nu)
            activation = crocoddyl.ActivationModelQuad(residual.nr) if term.make_activation is None else term.make_activation(residual.nr)
            costs.addCost(term.name, crocoddyl.CostModelResidual(state, activation, residual), cost_scale * rate * term.weight)
        dam = crocoddyl.DifferentialActionModelFreeFwdDynamics(state, actuation, costs)
        if dt == 0:
            return crocoddyl.IntegratedActionModelEuler(dam, 0.0)  # terminal: cost_scale * cost, no dt
        return crocoddyl.IntegratedActionModelRK(dam, RK_TYPES[self.rk_order], dt)

    def _make_action_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        return self._build_model(self.dt, cost_scale)

    def _make_terminal_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        return self._build_model(0.0, cost_scale * self.w_terminal)

    # ------------------------------------------------------------------ kinematics
    def frame_positions(self, states: np.ndarray, frame: str) -> np.ndarray:
        """World positions (relative to the target, with goal joints) of a MuJoCo site or body, (n, 3) or (3,)."""
        model, fid = self.pin_model, self.frame_id(frame)
        data = model.createData()
        x = np.asarray(states, dtype=np.float64)
        out = []
        for row in np.atleast_2d(x):
            pinocchio.framesForwardKinematics(model, data, row[: model.nq])
            out.append(data.oMf[fid].translation.copy())
        return np.array(out) if x.ndim == 2 else out[0]


def frame_translation(frame_id: int, reference: np.ndarray) -> Callable[[crocoddyl.StateMultibody, int], Any]:
    """A factory of Crocoddyl's residual ``p_frame(q) - reference`` (world frame)."""
    reference = np.array(reference, dtype=np.float64)
    return lambda s, nu: crocoddyl.ResidualModelFrameTranslation(s, frame_id, reference, nu)


def add_mirror_frame(pin_model: pinocchio.Model, joint: str, point: str, name: str) -> float:
    """Add to ``pin_model`` a frame ``name`` on ``joint``'s body, opposite the frame ``point`` through the
    joint's origin (at the neutral configuration); returns the distance ``h`` of ``point`` from the origin."""
    data = pin_model.createData()
    pinocchio.framesForwardKinematics(pin_model, data, pinocchio.neutral(pin_model))
    jid = pin_model.getJointId(joint)
    local = data.oMi[jid].actInv(data.oMf[pin_model.getFrameId(point)].translation)
    pin_model.addFrame(pinocchio.Frame(name, jid, 0, pinocchio.SE3(np.eye(3), -local), pinocchio.FrameType.OP_FRAME))
    return float(np.linalg.norm(local))


def one_minus_cosine_terms(env: "MJCFTwinEnv", name: str, pivot: str, point: str, mirror: str, h: float, weight: float) -> list[CostTerm]:
    """Cost terms summing to ``weight * (1 - cos theta)``, ``theta`` being the rotation since the neutral
    configuration of the body that carries ``pivot``'s origin, ``point`` and its ``mirror`` (at ``-point``, distance ``h``).

    With ``P`` the pivot, ``p+-`` the two points and ``0`` their neutral positions:
    ``0.5 ||p+ - p+0||^2 + 0.5 ||p- - p-0||^2 - ||P - P0||^2 = 2 h^2 (1 - cos theta)``. All three residuals
    vanish at the neutral configuration, where the Gauss-Newton Hessian is then exact (a tip
    height's own residual, ``y - 2`` against an unreachable 2, would give it no curvature there).
    """
    model = env.pin_model
    data = model.createData()
    pinocchio.framesForwardKinematics(model, data, pinocchio.neutral(model))
    c = weight / (2.0 * h * h)
    terms = []
    for suffix, frame, w in (("plus", point, c), ("minus", mirror, c), ("pivot", pivot, -2.0 * c)):
        fid = env.frame_id(frame)
        terms.append(CostTerm(f"{name}_{suffix}", frame_translation(fid, data.oMf[fid].translation), w))
    return terms
