"""A linear-quadratic system written in numpy: the user-defined-env example and the closed-form reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.base import NumpySystemEnv, check_parameters, reject_unknown_kwargs, uniform_box


class LinearQuadraticEnv(NumpySystemEnv):
    r"""A discrete-time double integrator with quadratic cost (an LQR problem).

    This is the documented example of a **user-defined system**: it subclasses
    :class:`envs.base.NumpySystemEnv` and writes its dynamics and cost, with their
    derivatives, in numpy; the base class turns them into a Crocoddyl action model.
    Its optimal cost-to-go is known in closed form (Riccati recursion), so the
    tests use it as a reference for the DDP and the value learning.

    ## Dynamics
    ``x' = A x + B u`` with ``A = [[1, dt], [0, 1]]``, ``B = [[dt^2 / 2], [dt]]``.

    ## State / observation, shape (2,)
    ``(position, velocity)``.

    ## Action, shape (1,)
    An acceleration in ``[-max_control, max_control]`` (default 100: wide enough
    that the start region never saturates it, so the problem stays an LQR).

    ## Cost (reward = -cost)
    ``cost = 0.5 * (x^T Q x + u^T R u)`` with ``Q = diag(q)``, ``R = r``.
    Terminal cost ``0.5 * x^T Q_T x`` with ``Q_T = w_terminal * Q`` (zero by default).

    ## Starting state
    Uniform in ``[-start_bound, start_bound]^2`` (default 1).

    ## Arguments
    ``gymnasium.make("dvp_rl/LinearQuadratic-v0", dt=0.1, q=(1., 0.1), r=0.1,
    w_terminal=0., max_control=100., start_bound=1.)``

    ## Version history
    * v0: initial version.
    """

    nx = 2
    nu = 1
    value_horizon = 400  # 40 s
    goal_state = (0.0, 0.0)  # the origin: zero cost, an equilibrium with zero control

    def __init__(
        self,
        dt: float = 0.1,
        q: tuple[float, float] = (1.0, 0.1),
        r: float = 0.1,
        w_terminal: float = 0.0,
        max_control: float = 100.0,
        start_bound: float = 1.0,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "positive", dt=dt)  # before A and B are built from it
        check_parameters(self, "non_negative", q=q, r=r, w_terminal=w_terminal, start_bound=start_bound)
        self.dt = float(dt)
        self.A = np.array([[1.0, self.dt], [0.0, 1.0]])
        self.B = np.array([[0.5 * self.dt**2], [self.dt]])
        self.Q = np.diag(np.asarray(q, dtype=np.float64).reshape(2))
        self.R = np.array([[float(r)]])
        self.QT = float(w_terminal) * self.Q
        self.start_bound = float(start_bound)
        super().__init__([-max_control], [max_control], np.full(2, np.inf), render_mode)

    def _dynamics(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return self.A @ x + self.B @ u

    def _dynamics_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.A.copy(), self.B.copy()

    def _cost(self, x: np.ndarray, u: np.ndarray) -> float:
        return 0.5 * float(x @ self.Q @ x + u @ self.R @ u)

    def _cost_derivatives(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
        return self.Q @ x, self.R @ u, self.Q.copy(), np.zeros((self.nx, self.nu)), self.R.copy()

    def _terminal_cost(self, x: np.ndarray) -> float:
        return 0.5 * float(x @ self.QT @ x)

    def _terminal_cost_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.QT @ x, self.QT.copy()

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        b = np.full(2, self.start_bound)
        return uniform_box(n, -b, b, rng)
