"""The twin of Gymnasium's ``InvertedDoublePendulum-v5`` (:class:`InvertedDoublePendulumTwin`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import crocoddyl
import numpy as np
import pinocchio

from envs.base import as_generator, check_parameters, reject_unknown_kwargs
from envs.mjcf.twin import CostTerm, MJCFTwinEnv, add_mirror_frame, frame_translation, one_minus_cosine_terms


class InvertedDoublePendulumTwin(MJCFTwinEnv):
    r"""Differentiable twin of Gymnasium's ``InvertedDoublePendulum-v5``, built from its MJCF.

    ## Description
    The cart (slider ``x``) and two poles (hinges ``q1``, ``q2``) of
    ``inverted_double_pendulum.xml``, read at run time from the installed gymnasium package:
    pinocchio's model of the file (masses and inertias from the capsules), MuJoCo's gravity
    (``(1e-5, 0, -9.81)``), joint damping 0.05 on the three joints, motor gear 500 on the cart with
    control range ``[-1, 1]``. One env step is one RK4 step of ``frame_skip * 0.01 s`` (0.05 s);
    MuJoCo takes ``frame_skip`` RK4 steps of 0.01 s, so the twin's step differs from MuJoCo's by
    the integrator's error (``tests/envs/mjcf/test_twin.py`` bounds it). Not in the dynamics: the
    slider's limit ``|x| <= 1`` (MuJoCo's constraint acts from ``|x| > 0.99``, pushes the cart back
    and shows its force as ``qfrc_constraint``, the last observation entry, which the twin's
    observation map sets to 0); the cost has a barrier there instead (see below).

    ## State / observation, shape (6,)
    ``(x, q1, q2, xdot, q1dot, q2dot)``; the hinge angles are wrapped to ``[-pi, pi)`` after each
    step. ``envs.twins`` maps Gymnasium's 9-entry observation ``(x, sin q1, sin q2, cos q1, cos q2,
    clip(v, -10, 10), clip(qfrc_constraint_x, -10, 10))`` to it and back.

    ## Action, shape (1,)
    The motor control in ``[-1, 1]`` (force ``500 u`` on the cart).

    ## Cost per step (reward = -cost)
    Gymnasium's reward is ``10 [not terminated] - (0.01 x_tip^2 + (y_tip - 2)^2) - (1e-3 q1dot^2 + 5e-3
    q2dot^2)`` after the step, ``y_tip`` being the height of the second pole's tip (at most 1.2), and
    the episode ends when ``y_tip <= 1``. The twin's cost is the regret against the best reward
    ``10 - 0.64``:

    ``s(x) = 0.01 x_tip^2 + (y_tip - 2)^2 - 0.64 + 1e-3 q1dot^2 + 5e-3 q2dot^2 + 0.5 w_termination max(0, h - y_tip)^2``

    with ``h = 1 + termination_margin``: the termination is a steep penalty (a C1 quadratic barrier,
    Crocoddyl's ``ActivationModelWeightedQuadraticBarrier`` on the tip's height) from
    ``termination_margin`` above the termination height; the twin goes on where MuJoCo's episode
    ends. The distance penalty is written ``0.01 x_tip^2 + (y_tip - 1.2)^2 + 1.6 (1.2 - y_tip)`` with
    ``1.2 - y_tip = 0.6 (1 - cos th1) + 0.6 (1 - cos th2)`` (``th1 = q1``, ``th2 = q1 + q2``, the
    poles' lengths and 1.2 read from the model), each ``1 - cos th`` a combination of three frame
    translations (:func:`one_minus_cosine_terms`): all native residuals, all zero at the upright, so
    that Crocoddyl's Gauss-Newton ``Lxx`` is exact there (against the unreachable height 2 it would
    have no curvature in the angles, and DDP took 100-300 iterations instead of 2-10). Elsewhere
    ``Lxx`` is Gauss-Newton (``gauss_newton_hessian``). The velocity penalty is the state residual
    with velocity weights. Crocoddyl's RK4 model charges the quadrature of ``s / dt`` over the
    step, the mean of ``s`` along the step, where Gymnasium charges ``s`` at its end (see
    :mod:`envs.mjcf`). The upright at rest costs 0. Beyond ``|x| = 0.99 - limit_margin`` the cost
    adds ``0.5 w_limit (|x| - 0.99 + limit_margin)^2`` (:class:`MJCFTwinEnv`'s joint-limit barrier).
    Terminal cost ``w_terminal * s(x)`` (none by default).

    ## Starting state
    Gymnasium's: ``q ~ U(-reset_noise_scale, reset_noise_scale)``, ``v ~ N(0, reset_noise_scale^2)``.
    For learning over the states a controller visits (``envs.twins.TwinSpec.training_kwargs``),
    ``cart_start_range`` replaces the cart's range (``x ~ U(-cart_start_range, cart_start_range)``)
    and ``start_speed`` the speeds' standard deviation; unset, the draws are Gymnasium's (the same
    generator calls: a seed gives Gymnasium's start).

    ## Goal
    MuJoCo's gravity has a lateral component of 1e-5: no state is an equilibrium under zero
    control (the whole system drifts sideways), so ``goal_state`` is ``None``. With
    ``gravity=(0, 0, -9.81)`` the upright at rest is a zero-cost equilibrium (``goal_state`` = 0),
    at the price of a 5e-7 m/s difference per step from MuJoCo.

    ## Arguments
    ``gymnasium.make("dvp_rl/InvertedDoublePendulum-v0", frame_skip=5, xml_file=None,
    reset_noise_scale=0.1, gravity=None, termination_margin=0.05, w_termination=1e4, w_limit=1e3,
    limit_margin=0.05, w_terminal=0., cart_start_range=None, start_speed=None, rk_order=4)``; ``xml_file`` and ``frame_skip`` are the real env's
    (``None``: its default); an MJCF the twin cannot represent raises :class:`UnsupportedMJCFError`.

    ## Version history
    * v0: initial version.
    """

    real_id = "InvertedDoublePendulum-v5"
    angle_dims = (1, 2)
    gauss_newton_hessian = True
    value_horizon = 200  # 10 s

    #: Gymnasium's termination height of the tip (``terminated = y_tip <= 1``)
    TERMINATION_HEIGHT = 1.0
    #: Gymnasium's distance penalty ``X_WEIGHT x_tip^2 + (y_tip - TARGET_HEIGHT)^2``
    TARGET_HEIGHT = 2.0
    X_WEIGHT = 0.01
    #: Gymnasium's velocity penalty weights of the two hinges
    VELOCITY_WEIGHTS = (1e-3, 5e-3)
    #: Gymnasium's velocity clip of the observation
    OBSERVATION_SPEED_CLIP = 10.0

    def __init__(
        self,
        frame_skip: int | None = None,
        xml_file: str | None = None,
        reset_noise_scale: float = 0.1,
        gravity: Sequence[float] | None = None,
        termination_margin: float = 0.05,
        w_termination: float = 1e4,
        w_limit: float = 1e3,
        limit_margin: float = 0.05,
        w_terminal: float = 0.0,
        cart_start_range: float | None = None,
        start_speed: float | None = None,
        render_mode: str | None = None,
        rk_order: int = 4,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "non_negative", reset_noise_scale=reset_noise_scale, termination_margin=termination_margin, w_termination=w_termination)
        for name, value in (("cart_start_range", cart_start_range), ("start_speed", start_speed)):
            if value is not None:
                check_parameters(self, "non_negative", **{name: value})
        self.reset_noise_scale = float(reset_noise_scale)
        self.cart_start_range = None if cart_start_range is None else float(cart_start_range)
        self.start_speed = None if start_speed is None else float(start_speed)
        self.termination_margin = float(termination_margin)
        self.w_termination = float(w_termination)
        self.goal_state = None
        if gravity is not None and not np.any(np.asarray(gravity, dtype=np.float64).reshape(3)[:2]):
            self.goal_state = (0.0,) * 6  # upright at rest: an equilibrium when gravity is vertical
        super().__init__({"frame_skip": frame_skip, "xml_file": xml_file}, gravity, w_limit, limit_margin, w_terminal, render_mode, rk_order)

    def _extend_model(self, pin_model: pinocchio.Model) -> pinocchio.Model:
        self._pole_lengths = (add_mirror_frame(pin_model, "hinge", "hinge2", "pole_mirror"), add_mirror_frame(pin_model, "hinge2", "tip", "pole2_mirror"))
        return pin_model

    def _cost_terms(self) -> list[CostTerm]:
        # (y - 2)^2 - (y_max - 2)^2 = (y - y_max)^2 + 2 (2 - y_max) (y_max - y), y_max - y = sum_i L_i (1 - cos theta_i)
        tip = self.frame_id("tip")
        y_max = self.frame_positions(np.zeros(self.nx), "tip")[2]
        lever = 2.0 * (self.TARGET_HEIGHT - y_max)
        barrier = crocoddyl.ActivationBounds(np.array([-np.inf, -np.inf, 0.0]), np.full(3, np.inf))
        height = self.TERMINATION_HEIGHT + self.termination_margin
        velocity_weights = np.zeros(self.nx)
        velocity_weights[4:] = 2.0 * np.asarray(self.VELOCITY_WEIGHTS)
        return [
            CostTerm("distance", frame_translation(tip, np.array([0.0, 0.0, y_max])), 1.0, lambda nr: crocoddyl.ActivationModelWeightedQuad(np.array([2.0 * self.X_WEIGHT, 0.0, 2.0]))),
            *one_minus_cosine_terms(self, "pole", "hinge", "hinge2", "pole_mirror", self._pole_lengths[0], lever * self._pole_lengths[0]),
            *one_minus_cosine_terms(self, "pole2", "hinge2", "tip", "pole2_mirror", self._pole_lengths[1], lever * self._pole_lengths[1]),
            CostTerm("velocity", lambda s, nu: crocoddyl.ResidualModelState(s, np.zeros(s.nx), nu), 1.0, lambda nr: crocoddyl.ActivationModelWeightedQuad(velocity_weights)),
            CostTerm(
                "termination",
                frame_translation(tip, np.array([0.0, 0.0, height])),
                self.w_termination,
                lambda nr: crocoddyl.ActivationModelWeightedQuadraticBarrier(barrier, np.array([0.0, 0.0, 1.0])),
            ),
        ]

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        gen, s = as_generator(rng), self.reset_noise_scale
        ranges = np.array([s if self.cart_start_range is None else self.cart_start_range, s, s])
        q = gen.uniform(-ranges, ranges, size=(int(n), 3))  # with the defaults, Gymnasium's uniform(-s, s) bit for bit
        v = gen.standard_normal(size=(int(n), 3)) * (s if self.start_speed is None else self.start_speed)
        return np.hstack([q, v])

    def tip_position(self, states: np.ndarray) -> np.ndarray:
        """``(x_tip, y_tip)`` (Gymnasium's names: horizontal position and height) of the second pole's tip, (n, 2) or (2,)."""
        p = self.frame_positions(states, "tip")
        return p[..., [0, 2]]
