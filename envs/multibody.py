"""Shared construction of pinocchio-based systems as native Crocoddyl models.

A multibody system here is free forward dynamics (``pinocchio.aba`` inside
``crocoddyl.DifferentialActionModelFreeFwdDynamics``) integrated with
Crocoddyl's (semi-implicit) Euler scheme ``v' = v + a dt, q' = q + v' dt``,
and a cost that is a weighted sum of Crocoddyl residual costs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import crocoddyl
import numpy as np
import pinocchio

from envs.base import CrocoddylEnv


class CostTerm(NamedTuple):
    """One cost ``weight * 0.5 * ||diag(activation_weights) r||^2`` with residual ``r``.

    ``make_residual(state, nu)`` builds the Crocoddyl residual model;
    ``activation_weights`` (or ``None`` for a plain quadratic) weighs its entries.
    """

    name: str
    make_residual: Callable[[crocoddyl.StateMultibody, int], Any]
    weight: float
    activation_weights: np.ndarray | None = None


def _cost_sum(state: crocoddyl.StateMultibody, nu: int, terms: Sequence[CostTerm], scale: float) -> crocoddyl.CostModelSum:
    costs = crocoddyl.CostModelSum(state, nu)
    for term in terms:
        residual = term.make_residual(state, nu)
        if term.activation_weights is None:
            activation = crocoddyl.ActivationModelQuad(residual.nr)
        else:
            activation = crocoddyl.ActivationModelWeightedQuad(np.asarray(term.activation_weights, dtype=np.float64))
        costs.addCost(term.name, crocoddyl.CostModelResidual(state, activation, residual), scale * term.weight)
    return costs


def euler_model(
    pin_model: pinocchio.Model,
    make_actuation: Callable[[crocoddyl.StateMultibody], Any],
    terms: Sequence[CostTerm],
    dt: float,
    cost_scale: float,
) -> crocoddyl.IntegratedActionModelEuler:
    """A native Crocoddyl model ``x_next = Euler(aba)``, cost ``dt * cost_scale * sum(terms)``.

    With ``dt = 0`` it is a terminal model (cost ``cost_scale * sum(terms)``, by
    Crocoddyl's convention for a zero time step).
    """
    state = crocoddyl.StateMultibody(pin_model)
    actuation = make_actuation(state)
    costs = _cost_sum(state, actuation.nu, terms, cost_scale)
    diff = crocoddyl.DifferentialActionModelFreeFwdDynamics(state, actuation, costs)
    return crocoddyl.IntegratedActionModelEuler(diff, dt)


class MultibodyEnv(CrocoddylEnv):
    """A :class:`CrocoddylEnv` whose system is a pinocchio model under free forward dynamics.

    Subclasses set ``self.pin_model``, ``self.dt`` and ``self.w_terminal`` before calling
    ``super().__init__``, and implement ``_actuation(state)`` and ``_terms(running)`` (the
    cost terms; ``running=False`` gives the terminal ones, scaled by ``w_terminal``).
    """

    pin_model: pinocchio.Model
    w_terminal: float

    @abc.abstractmethod
    def _actuation(self, state: crocoddyl.StateMultibody) -> Any: ...

    @abc.abstractmethod
    def _terms(self, running: bool) -> list[CostTerm]: ...

    def _make_action_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        return euler_model(self.pin_model, self._actuation, self._terms(True), self.dt, cost_scale)

    def _make_terminal_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        return euler_model(self.pin_model, self._actuation, self._terms(False), 0.0, cost_scale * self.w_terminal)


class SelectedJointsActuation(crocoddyl.ActuationModelAbstract):
    """``tau = S u``: controls drive the selected velocity indices, others are passive.

    :param state: the multibody state
    :param actuated: indices of the actuated velocity coordinates (one per control)
    """

    def __init__(self, state: crocoddyl.StateMultibody, actuated: Sequence[int]) -> None:
        crocoddyl.ActuationModelAbstract.__init__(self, state, len(actuated))
        self._S = np.zeros((state.nv, len(actuated)))
        for j, i in enumerate(actuated):
            self._S[i, j] = 1.0
        self._S_pinv = np.linalg.pinv(self._S)

    def calc(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.tau[:] = self._S @ u

    def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.dtau_du[...] = self._S.reshape(data.dtau_du.shape)

    def commands(self, data: Any, x: np.ndarray, tau: np.ndarray) -> None:
        data.u[:] = self._S_pinv @ tau

    def torqueTransform(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.Mtau[...] = self._S_pinv.reshape(data.Mtau.shape)

    def createData(self) -> crocoddyl.ActuationDataAbstract:
        data = crocoddyl.ActuationDataAbstract(self)
        data.dtau_du[...] = self._S.reshape(data.dtau_du.shape)
        return data


def add_body(
    model: pinocchio.Model,
    parent: int,
    joint: Any,
    name: str,
    mass: float,
    com: np.ndarray,
    inertia_com: np.ndarray,
    placement: pinocchio.SE3 | None = None,
) -> int:
    """Add a joint with one rigid body to ``model``; returns the joint id."""
    jid = model.addJoint(parent, joint, placement if placement is not None else pinocchio.SE3.Identity(), name)
    model.appendBodyToJoint(jid, pinocchio.Inertia(mass, np.asarray(com, dtype=np.float64), np.asarray(inertia_com)), pinocchio.SE3.Identity())
    return jid


def rod_inertia(mass: float, length: float) -> np.ndarray:
    """Inertia about its centre of a thin uniform rod along z, shape (3, 3)."""
    i = mass * length**2 / 12.0
    return np.diag([i, i, 0.0])
