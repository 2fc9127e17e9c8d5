"""The twins' Crocoddyl models written in Python: the actuation with joint damping
(:class:`JointActuation`) and Reacher's smooth norm (:class:`SmoothNormActivation`)."""

from __future__ import annotations

from typing import Any

import crocoddyl
import numpy as np


class JointActuation(crocoddyl.ActuationModelAbstract):
    """``tau = B u - damping * v``: motors on joints (``B``: gear times gain) and linear joint damping.

    MuJoCo's RK4 integrates joint damping explicitly, as a passive force of every stage; so does
    Crocoddyl's RK4 with this actuation.

    :param state: the multibody state
    :param B: (nv, nu) generalized force per unit of control
    :param damping: (nv,) joint damping
    """

    def __init__(self, state: crocoddyl.StateMultibody, B: np.ndarray, damping: np.ndarray) -> None:
        crocoddyl.ActuationModelAbstract.__init__(self, state, B.shape[1])
        self.B = np.array(B, dtype=np.float64)
        self.damping = np.array(damping, dtype=np.float64)
        self._nq = state.nq
        self._dtau_dx = np.hstack([np.zeros((state.nv, state.nv)), -np.diag(self.damping)])
        self._B_pinv = np.linalg.pinv(self.B)

    def calc(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.tau[:] = self.B @ u - self.damping * x[self._nq:]

    def calcDiff(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.dtau_dx[...] = self._dtau_dx
        data.dtau_du[...] = self.B.reshape(data.dtau_du.shape)

    def commands(self, data: Any, x: np.ndarray, tau: np.ndarray) -> None:
        data.u[:] = self._B_pinv @ (tau + self.damping * x[self._nq:])

    def torqueTransform(self, data: Any, x: np.ndarray, u: np.ndarray) -> None:
        data.Mtau[...] = self._B_pinv.reshape(data.Mtau.shape)

    def createData(self) -> crocoddyl.ActuationDataAbstract:
        data = crocoddyl.ActuationDataAbstract(self)
        data.dtau_dx[...] = self._dtau_dx
        data.dtau_du[...] = self.B.reshape(data.dtau_du.shape)
        return data


class SmoothNormActivation(crocoddyl.ActivationModelAbstract):
    """``a(r) = sqrt(eps^2 + ||r||^2) - eps``, a smooth Euclidean norm (zero at 0, below ``||r||`` by at most
    ``eps``), with the diagonal of its exact Hessian ``(I - r r^T / s^2) / s``, ``s = sqrt(eps^2 + ||r||^2)``.

    Crocoddyl stores an activation's Hessian as a diagonal matrix, so the exact one cannot be given.
    Crocoddyl's own ``ActivationModelSmooth2Norm`` gives ``diag(1 / s^3)``, which at Reacher's
    fingertip-target distances (0.01-0.3 m) is 10-1e4 times the true curvature: DDP crawled (T=20 from
    Gymnasium's start states: unconverged after 400 iterations; 10-19 iterations with this activation,
    which is exact in the gradient and in the diagonal of the Hessian).

    :param nr: dimension of the residual
    :param eps: smoothing length (> 0)
    """

    def __init__(self, nr: int, eps: float) -> None:
        crocoddyl.ActivationModelAbstract.__init__(self, nr)
        self.eps = float(eps)

    def calc(self, data: Any, r: np.ndarray) -> None:
        data.a_value = float(np.sqrt(self.eps * self.eps + r @ r) - self.eps)

    def calcDiff(self, data: Any, r: np.ndarray) -> None:
        s = float(np.sqrt(self.eps * self.eps + r @ r))
        data.Ar[:] = r / s
        data.Arr = np.diag((1.0 - r * r / (s * s)) / s)  # a setter: Crocoddyl keeps the diagonal

    def createData(self) -> crocoddyl.ActivationDataAbstract:
        return crocoddyl.ActivationDataAbstract(self)
