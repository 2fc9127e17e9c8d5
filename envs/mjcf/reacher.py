"""The twin of Gymnasium's ``Reacher-v5`` (:class:`ReacherTwin`)."""

from __future__ import annotations

from typing import Any

import crocoddyl
import numpy as np

from envs.base import as_generator, check_parameters, reject_unknown_kwargs
from envs.mjcf.models import SmoothNormActivation
from envs.mjcf.twin import CostTerm, MJCFTwinEnv, frame_translation


class ReacherTwin(MJCFTwinEnv):
    r"""Differentiable, goal-conditioned twin of Gymnasium's ``Reacher-v5``, built from its MJCF.

    ## Description
    The two-link arm of ``reacher.xml`` (hinges ``joint0``, ``joint1``, armature 1 and damping 1
    each, motors of gear 200 with control range ``[-1, 1]``), read at run time from the installed
    gymnasium package, under one RK4 step of ``frame_skip * 0.01 s`` (0.02 s) per env step (MuJoCo
    takes ``frame_skip`` steps of 0.01 s). The target is part of the state, with static dynamics:
    the model's root is two prismatic joints (axes ``-x``, ``-y``, armature 1e12) carrying the arm,
    their coordinates being the target's position, so that the arm's frames are expressed relative
    to the target (the arm's reaction moves it by less than 1e-12 m per episode). One value
    network thus serves every target. Not in the dynamics: ``joint1``'s limit ``|q1| <= 3`` (MuJoCo
    stops the elbow there, the twin's elbow turns freely); the cost has a barrier there instead (see
    below). There are no contacts in the model.

    ## State, shape (8,)
    ``(target_x, target_y, q0, q1, target_xdot, target_ydot, q0dot, q1dot)``: pinocchio's order,
    the target first; its velocities stay 0. The shoulder angle ``q0`` is wrapped to ``[-pi, pi)``
    after each step (the elbow's is limited, not periodic). ``envs.twins`` maps Gymnasium's
    observation ``(cos q0, cos q1, sin q0, sin q1, target_x, target_y, q0dot, q1dot, fingertip -
    target (x, y))`` to it and back.

    ## Action, shape (2,)
    The motor controls in ``[-1, 1]`` (torques ``200 u``).

    ## Cost per step (reward = -cost)
    Gymnasium's reward is ``-reward_dist_weight ||fingertip - target|| - reward_control_weight ||u||^2``,
    the distance after the step. The twin's cost:

    ``reward_dist_weight (sqrt(d^2 + eps^2) - eps) + reward_control_weight ||u||^2``,

    ``d = ||fingertip - target||``, ``eps = distance_smoothing``: Crocoddyl's frame-translation residual
    of the fingertip (which is fingertip - target in this model) under :class:`SmoothNormActivation`
    (a Python activation; Crocoddyl's ``ActivationModelSmooth2Norm`` overestimates the curvature 10-1e4
    times and DDP crawled, see there); it is smooth at ``d = 0``, below ``d`` by at most ``eps``. The
    distance term is charged as the RK4 quadrature of its rate over the step (its mean along the
    step, where Gymnasium charges its value at the end, see :mod:`envs.mjcf`); the control
    term is exact. ``Lxx`` is Gauss-Newton with the activation's diagonal Hessian. A fingertip
    on the target, at rest, costs 0 (``goal_state``: the arm stretched along x, the target at its
    fingertip). Beyond ``|q1| = 3 - limit_margin`` the cost adds ``0.5 w_limit (|q1| - 3 +
    limit_margin)^2`` (:class:`MJCFTwinEnv`'s joint-limit barrier; without it DDP plans folded the
    elbow through ``pi``, which MuJoCo's limit blocks). Terminal cost ``w_terminal`` times the state part (none by
    default).

    ## Starting state
    Gymnasium's: arm angles ``U(-arm_start_range, arm_start_range)`` (0.1), arm speeds
    ``U(-start_speed, start_speed)`` (0.005), target uniform in the disk of radius 0.2 (rejection from
    the square, as Gymnasium draws it), target velocities 0. For learning over the states a controller
    visits (``envs.twins.TwinSpec.training_kwargs``), ``elbow_start_range`` replaces the elbow's
    range (default ``arm_start_range``), and both ranges and ``start_speed`` can be widened; with the
    defaults the draws are Gymnasium's (the same generator calls).

    ## Arguments
    ``gymnasium.make("dvp_rl/Reacher-v0", frame_skip=2, xml_file=None, reward_dist_weight=1.,
    reward_control_weight=1., distance_smoothing=1e-3, arm_start_range=0.1, w_limit=1e3,
    limit_margin=0.05, w_terminal=0., elbow_start_range=None, start_speed=0.005, rk_order=4)``; ``xml_file`` and ``frame_skip`` are the real env's
    (``None``: its default).

    ## Version history
    * v0: initial version.
    """

    real_id = "Reacher-v5"
    goal_joints = ("target_x", "target_y")
    angle_dims = (2,)
    gauss_newton_hessian = True
    value_horizon = 100  # 2 s
    #: Gymnasium's target distribution: uniform in the disk of this radius
    TARGET_RADIUS = 0.2
    #: Gymnasium's start speeds of the arm: U(-0.005, 0.005)
    START_SPEED = 0.005

    def __init__(
        self,
        frame_skip: int | None = None,
        xml_file: str | None = None,
        reward_dist_weight: float = 1.0,
        reward_control_weight: float = 1.0,
        distance_smoothing: float = 1e-3,
        arm_start_range: float = 0.1,
        w_limit: float = 1e3,
        limit_margin: float = 0.05,
        w_terminal: float = 0.0,
        elbow_start_range: float | None = None,
        start_speed: float = START_SPEED,
        render_mode: str | None = None,
        rk_order: int = 4,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "non_negative", reward_dist_weight=reward_dist_weight, reward_control_weight=reward_control_weight, arm_start_range=arm_start_range,
                         start_speed=start_speed)  # fmt: skip
        if elbow_start_range is not None:
            check_parameters(self, "non_negative", elbow_start_range=elbow_start_range)
        self.elbow_start_range = float(arm_start_range if elbow_start_range is None else elbow_start_range)
        self.start_speed = float(start_speed)
        check_parameters(self, "positive", distance_smoothing=distance_smoothing)
        self.reward_dist_weight = float(reward_dist_weight)
        self.reward_control_weight = float(reward_control_weight)
        self.distance_smoothing = float(distance_smoothing)
        self.arm_start_range = float(arm_start_range)
        super().__init__({"frame_skip": frame_skip, "xml_file": xml_file}, None, w_limit, limit_margin, w_terminal, render_mode, rk_order)

    def _cost_terms(self) -> list[CostTerm]:
        eps = self.distance_smoothing
        return [
            CostTerm("distance", frame_translation(self.frame_id("fingertip"), np.zeros(3)), self.reward_dist_weight, lambda nr: SmoothNormActivation(nr, eps)),
            CostTerm("control", lambda s, nu: crocoddyl.ResidualModelControl(s, nu), 2.0 * self.reward_control_weight, running_only=True),
        ]

    @property
    def goal_state(self) -> tuple[float, ...]:  # type: ignore[override]
        """The arm stretched along x, at rest, with the target at its fingertip."""
        x = np.zeros(self.nx)
        x[:2] = self.frame_positions(x, "fingertip")[:2]  # with the target at 0, the fingertip's position
        return tuple(float(v) for v in x)

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` start states, each drawn as Gymnasium's ``reset`` draws it (same generator calls in the
        same order: a twin reset with a seed starts where Reacher-v5's reset with that seed starts)."""
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        gen = as_generator(rng)
        x = np.zeros((int(n), self.nx))
        ranges = np.array([self.arm_start_range, self.elbow_start_range, self.arm_start_range, self.arm_start_range])
        for row in x:
            row[2:4] = gen.uniform(-ranges, ranges, size=4)[:2]  # Gymnasium draws all nq
            while True:  # Gymnasium's rejection sampling of the target
                target = gen.uniform(-self.TARGET_RADIUS, self.TARGET_RADIUS, size=2)
                if np.linalg.norm(target) < self.TARGET_RADIUS:
                    break
            row[:2] = target
            row[6:8] = gen.uniform(-self.start_speed, self.start_speed, size=4)[:2]
        return x

    def fingertip_minus_target(self, states: np.ndarray) -> np.ndarray:
        """``fingertip - target`` in the plane, (n, 2) or (2,) (the last two entries of Gymnasium's observation)."""
        return self.frame_positions(states, "fingertip")[..., :2]
