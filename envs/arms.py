"""Goal-conditioned, torque-controlled reaching with fixed-base arms from example-robot-data.

:class:`ArmReachEnv` loads an arm's URDF through ``example_robot_data.load`` (pinocchio model
with its inertias and its effort, joint-position and velocity limits), puts the reaching goal
into the state and builds a native Crocoddyl model of it: free forward dynamics (pinocchio's ABA)
under Crocoddyl's semi-implicit Euler step, joint torques as controls, and a cost of native
residuals and activations only (no Python action, actuation or activation model: DDP over it runs
at C++ speed, which a 250 Hz MPC's step budget needs).

The goal rides in the state as in :mod:`envs.mjcf`'s Reacher twin: the model's root is one
composite joint ``root_joint`` of three prismatic joints of axes ``-x``, ``-y``, ``-z`` (armature
1e12) whose coordinates are the goal's position; it carries the arm, whose base therefore sits at
``-goal`` in the model's world. Every frame's position in that world is its position in the arm's
base frame minus the goal, so Crocoddyl's frame-translation residual of the end effector *is* the
vector from the goal to the end effector, and one value network serves every goal.

:data:`ARMS` is the registry of the arms (Gymnasium ids ``dvp_rl/PandaReach-v0`` and
``dvp_rl/UR5Reach-v0``, see :func:`make_arm_reach`).

Adding an arm
-------------
One :class:`ArmSpec` entry in :data:`ARMS`: the ``example_robot_data.load`` name, the joints to lock
(fingers, grippers: they are removed with ``pinocchio.buildReducedModel`` at the model's neutral
position), the end-effector frame (a frame of the URDF), a nominal "ready" configuration of the
remaining joints (inside their limits, away from singularities) and the half-widths of the start
range around it. The limits come from the URDF; an arm whose URDF lacks finite limits, or whose
joints are not all one-coordinate joints (continuous joints have two), is refused. Register an id
in ``envs/__init__.py`` with ``kwargs={"robot": name}``, and check that a DDP plan reaches a goal
at the pace the weights were chosen for (:class:`ArmReachEnv` says what each weight ratio sets).
"""

from __future__ import annotations

from typing import Any

import crocoddyl
import gymnasium as gym
import numpy as np
import pinocchio

from envs.arm_registry import ARMS, GOAL_ARMATURE, ArmModel, ArmSpec, load_arm  # noqa: F401  (the registry, re-exported)
from envs.base import CrocoddylEnv, as_generator, check_parameters, reject_unknown_kwargs
from envs.rendering import ChainRenderer

class ArmReachEnv(CrocoddylEnv):
    r"""Reach a goal with the end effector of a torque-controlled arm and stay there (Panda, UR5).

    ## Description
    A fixed-base arm of example-robot-data (``robot="panda"``: Franka Panda, 7 joints, the two
    finger joints locked at their neutral position; ``robot="ur5"``: Universal Robots UR5, 6
    joints), its URDF's inertias under gravity, driven by joint torques. Dynamics: pinocchio's
    articulated-body algorithm (``crocoddyl.DifferentialActionModelFreeFwdDynamics``), one step of
    Crocoddyl's semi-implicit Euler of ``dt`` per env step (``v' = v + a dt``, ``q' = q + v' dt``).
    Not in the model: the URDF's joint damping and friction (pinocchio's ABA ignores them), the
    rotor inertias (no armature in the URDFs), the joint limits (cost barriers instead, and hard
    stops in ``step``, see "Limits"), contacts and self-collisions. The goal is a static point of the state: the arm is carried by
    three prismatic root joints of armature 1e12 whose coordinates are the goal (module docstring),
    and the arm's weight and reactions accelerate it by ~1e-10 m/s^2 (the goal drifts by less than
    1e-9 m over an episode).

    ## State / observation, shape (2 (3 + n),): (20,) for the Panda, (18,) for the UR5
    | idx | meaning |
    |-----|---------|
    | 0:3 | the goal's position in the arm's base frame (m) |
    | 3:3+n | the arm's joint positions ``q`` (rad) |
    | 3+n:6+n | the goal's velocity (m/s), 0 |
    | 6+n: | the arm's joint speeds ``v`` (rad/s) |

    Pinocchio's order ``(q_model, v_model)``. Joint angles are not wrapped (the joints are limited).

    ## Action, shape (n,)
    ``env.unwrapped``'s action is the joint torques (N m), in ``[-effort, effort]`` (the URDF's effort
    limits; clipped by ``step``; the Crocoddyl model's control bounds). The registered ids wrap the
    env in ``gymnasium.wrappers.RescaleAction(env, -1, 1)``: their action is in ``[-1, 1]``, the
    torque ``effort * action``.

    ## Cost per step (reward = -cost)
    ``cost = dt * (w_distance ||p_ee - goal||^2 + w_velocity ||v||^2 + w_torque ||(u - g(q)) / effort||^2
    + w_limit ||q - clip(q, lower + position_margin, upper - position_margin)||^2
    + w_limit ||v - clip(v, -(vmax - velocity_margin), vmax - velocity_margin)||^2)``

    * ``p_ee - goal``: Crocoddyl's frame-translation residual of the end-effector frame
      (``panda_hand_tcp``, ``tool0``); default ``w_distance = 10`` (per m^2 and second).
    * ``||v||^2``: the arm's joint speeds (the state residual, weight 0 on the goal's entries);
      default ``w_velocity = 0.1``.
    * ``(u - g(q)) / effort``: Crocoddyl's ``ResidualModelControlGrav``, ``tau - g(q)`` over all 3 + n
      coordinates (``tau = (0, 0, 0, u)``), weighted 0 on the goal's entries (where it is the arm's
      weight) and ``1 / effort^2`` on the arm's: the torque beyond gravity compensation, as a
      fraction of the effort limit; default ``w_torque = 4``.
    * the joint-position and velocity barriers: Crocoddyl's ``ActivationModelWeightedQuadraticBarrier``
      on the state residual, zero inside ``position_margin`` (0.1 rad) and ``velocity_margin``
      (0.5 rad/s) of the URDF's limits, steep beyond (``w_limit = 1000``).

    The ratio ``w_distance / w_torque`` sets the pace of the approach, ``w_distance / w_velocity`` that
    of the last millimetres (the velocity cost acts as a friction, slowest along the directions the
    end effector moves least per joint speed). The defaults were chosen so that DDP plans from the
    start distribution come within 1 cm of the goal in about 1 s (at most ~1.2 s), within a few mm by
    1.5 s, and rest there, with torques below the effort limits and speeds below the velocity
    barriers (``tests/envs/test_arms.py`` checks a plan). At rest at the goal with ``u = g(q)`` the
    cost is exactly 0 and the state stays put (to the goal's 1e-10 m/s^2 drift): ``goal_state`` (the
    nominal pose with the goal at its end effector) and ``goal_control`` (its gravity torques) are
    such an equilibrium, where DVP anchors its value targets. Every residual but the state's is nonlinear: ``Lxx`` is Crocoddyl's
    Gauss-Newton ``R_x^T W R_x`` (``gauss_newton_hessian``). Terminal cost: ``w_terminal`` times the
    state part (distance, velocity, barriers; no ``dt``), none by default.

    ## Limits
    The model (``dynamics``, the derivative API, DDP) lets joints pass their limits; its cost has
    barriers from ``position_margin`` / ``velocity_margin`` inside them, which keep optimal plans
    away. ``step`` applies the model's step and then hard stops at the URDF's limits: a joint beyond
    a position limit is put back on it with its outward speed zeroed, and joint speeds are clipped to
    the velocity limits (``info["hard_stop"]`` says when). Inside the limits (every state a plan
    visits) ``step`` is the model's step exactly. Without the stops, uniformly random torques (an
    off-policy agent's first exploration) spin the light wrist joints to tens of rad/s within an
    episode, where Euler steps of 0.01 s diverge (NaN): with no damping in the model nothing else
    bounds the speeds.

    ## Starting state
    Joint positions uniform in ``nominal +- start_range`` (the :class:`ArmSpec`), clipped inside the
    limits by ``position_margin``, at rest; the goal is the end effector's position at another such
    configuration (reachable by construction). ``reset(options=...)``: ``{"state": x}`` (the full
    state), ``{"goal": g}`` (a sampled start, the goal ``g``) or ``{"state": x, "goal": g}`` (``x`` the
    full state or the arm's ``(q, v)``; ``g`` replaces its goal). A ``ValueError`` names a goal beyond
    the reach bound (the sum of the chain's link lengths), a joint position or speed outside the
    URDF's limits, a moving goal, or a NaN or wrongly shaped vector.

    ## Episode end and info
    Never terminates; the registered ids truncate after 300 steps (3 s). ``step``'s info: ``cost``,
    ``hard_stop``, ``distance`` (end effector to goal, m, after the step) and ``is_success`` (Stable-Baselines3's
    key): ``distance < success_distance`` (1 cm) and every arm joint speed below ``success_speed``
    (0.05 rad/s).

    ## Rendering
    ``render_mode="rgb_array"``: two orthogonal views (side ``x-z``, top ``x-y``, the arm's base
    frame) of the links as a polyline through the joint origins, the goal and the end-effector path
    of the episode; an (H, W, 3) ``uint8`` array (matplotlib, Agg), ``render_fps = 1 / dt``.

    ## Arguments
    ``gymnasium.make("dvp_rl/PandaReach-v0", dt=0.01, w_distance=10., w_velocity=0.1, w_torque=4.,
    w_limit=1e3, position_margin=0.1, velocity_margin=0.5, w_terminal=0., success_distance=0.01,
    success_speed=0.05, render_mode=None, width=640, height=320)`` (``dvp_rl/UR5Reach-v0`` alike);
    ``ArmReachEnv(robot="panda", ...)`` directly (``robot``: a name of :data:`ARMS` or an
    :class:`ArmSpec`; unknown names raise ``ValueError`` listing the known ones).

    ## Version history
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 100}
    gauss_newton_hessian = True
    angle_dims = ()  # the joints are limited, not wrapped
    value_horizon = 200  # 2 s: within 1 cm by ~1 s, a few mm by 1.5 s, under 1 mm (a cost rate of 1e-5) by 2 s
    ddp_guesses = ("hold",)

    #: :meth:`sample_training_states`: speeds on the way, a share of the velocity limits
    TRAINING_SPEED = 0.3
    #: :meth:`sample_training_states`: how far from the end effector the goal of a near-goal state lies (m)
    TRAINING_GOAL_RADIUS = 0.05
    #: defaults of the cost weights (per second; the Euler step multiplies the cost by dt)
    W_DISTANCE = 10.0
    W_VELOCITY = 0.1
    W_TORQUE = 4.0
    W_LIMIT = 1e3
    #: the barriers start this far inside the URDF's limits (rad, rad/s)
    POSITION_MARGIN = 0.1
    VELOCITY_MARGIN = 0.5
    #: ``is_success``: end effector within this distance of the goal (m) ...
    SUCCESS_DISTANCE = 0.01
    #: ... and every arm joint slower than this (rad/s)
    SUCCESS_SPEED = 0.05

    def __init__(
        self,
        robot: str | ArmSpec = "panda",
        dt: float = 0.01,
        w_distance: float = W_DISTANCE,
        w_velocity: float = W_VELOCITY,
        w_torque: float = W_TORQUE,
        w_limit: float = W_LIMIT,
        position_margin: float = POSITION_MARGIN,
        velocity_margin: float = VELOCITY_MARGIN,
        w_terminal: float = 0.0,
        success_distance: float = SUCCESS_DISTANCE,
        success_speed: float = SUCCESS_SPEED,
        render_mode: str | None = None,
        width: int = 640,
        height: int = 320,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(self, unknown)
        check_parameters(self, "positive", dt=dt, success_distance=success_distance, success_speed=success_speed, width=width, height=height)
        check_parameters(self, "non_negative", w_distance=w_distance, w_velocity=w_velocity, w_torque=w_torque, w_limit=w_limit,
                         position_margin=position_margin, velocity_margin=velocity_margin, w_terminal=w_terminal)  # fmt: skip
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"{type(self).__name__}: render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.arm = load_arm(robot)
        n = self.arm.arm.nq
        half = 0.5 * (self.arm.upper - self.arm.lower)
        if np.any(position_margin >= half) or np.any(velocity_margin >= self.arm.velocity):
            raise ValueError(f"{type(self).__name__}: position_margin and velocity_margin must be below half the joint ranges "
                             f"{half} and the velocity limits {self.arm.velocity}, got {position_margin} and {velocity_margin}")  # fmt: skip
        self.n_joints = n
        self.dt = float(dt)
        self.nx, self.nu = 2 * (3 + n), n
        self.weights = {"distance": float(w_distance), "velocity": float(w_velocity), "torque": float(w_torque), "limit": float(w_limit)}
        self.position_margin, self.velocity_margin = float(position_margin), float(velocity_margin)
        self.w_terminal = float(w_terminal)
        self.success_distance, self.success_speed = float(success_distance), float(success_speed)
        self.pin_model = self.arm.model
        self._pin_data = self.pin_model.createData()
        self._state = crocoddyl.StateMultibody(self.pin_model)
        self._actuation = crocoddyl.ActuationModelFloatingBase(self._state)  # tau = (0, 0, 0, u)
        self.metadata = {**type(self).metadata, "render_fps": 1.0 / self.dt}
        super().__init__(-self.arm.effort, self.arm.effort, np.inf, None)
        # what step() can return: goals within reach, joints within the limits (the hard stops), the goal
        # at rest up to its ~1e-10 m/s^2 drift
        reach, goal_speed = np.full(3, self.arm.reach), np.full(3, 1e-3)
        low = np.concatenate([-reach, self.arm.lower, -goal_speed, -self.arm.velocity])
        self.observation_space = gym.spaces.Box(low, np.concatenate([reach, self.arm.upper, goal_speed, self.arm.velocity]), dtype=np.float64)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self._renderer: ChainRenderer | None = None
        self._path: list[np.ndarray] = []

    # ------------------------------------------------------------------ model
    @property
    def effort(self) -> np.ndarray:
        """The effort limits (n,), the torque bounds."""
        return self.arm.effort.copy()

    def _cost_model(self, running: bool, scale: float) -> crocoddyl.CostModelSum:
        state, nu, n, w = self._state, self._actuation.nu, self.n_joints, self.weights
        nv = 3 + n
        costs = crocoddyl.CostModelSum(state, nu)

        def add(name: str, residual: Any, activation: Any, weight: float) -> None:
            costs.addCost(name, crocoddyl.CostModelResidual(state, activation, residual), scale * weight)

        # Crocoddyl's activations are 0.5 r^T W r: the weights are doubled
        add("distance", crocoddyl.ResidualModelFrameTranslation(state, self.arm.ee_frame, np.zeros(3), nu), crocoddyl.ActivationModelQuad(3), 2.0 * w["distance"])
        speed = np.zeros(2 * nv)
        speed[nv + 3:] = 1.0
        add("velocity", crocoddyl.ResidualModelState(state, np.zeros(2 * nv), nu), crocoddyl.ActivationModelWeightedQuad(speed), 2.0 * w["velocity"])
        if running:
            torque = np.zeros(nv)
            torque[3:] = 1.0 / self.arm.effort**2
            add("torque", crocoddyl.ResidualModelControlGrav(state, nu), crocoddyl.ActivationModelWeightedQuad(torque), 2.0 * w["torque"])
        low, high = np.full(2 * nv, -np.inf), np.full(2 * nv, np.inf)
        low[3:nv], high[3:nv] = self.arm.lower + self.position_margin, self.arm.upper - self.position_margin
        vmax = self.arm.velocity - self.velocity_margin
        low[nv + 3:], high[nv + 3:] = -vmax, vmax
        for name, (a, b) in (("position_limits", (3, nv)), ("velocity_limits", (nv + 3, 2 * nv))):
            select = np.zeros(2 * nv)
            select[a:b] = 1.0
            add(name, crocoddyl.ResidualModelState(state, np.zeros(2 * nv), nu),
                crocoddyl.ActivationModelWeightedQuadraticBarrier(crocoddyl.ActivationBounds(low, high), select), 2.0 * w["limit"])  # fmt: skip
        return costs

    def _make_action_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        dam = crocoddyl.DifferentialActionModelFreeFwdDynamics(self._state, self._actuation, self._cost_model(True, cost_scale))
        return crocoddyl.IntegratedActionModelEuler(dam, self.dt)

    def _make_terminal_model(self, cost_scale: float) -> crocoddyl.ActionModelAbstract:
        dam = crocoddyl.DifferentialActionModelFreeFwdDynamics(self._state, self._actuation, self._cost_model(False, cost_scale * self.w_terminal))
        return crocoddyl.IntegratedActionModelEuler(dam, 0.0)  # terminal: the cost without dt

    # ------------------------------------------------------------------ kinematics
    def _forward(self, x: np.ndarray) -> None:
        pinocchio.forwardKinematics(self.pin_model, self._pin_data, x[: self.pin_model.nq])
        pinocchio.updateFramePlacement(self.pin_model, self._pin_data, self.arm.ee_frame)

    def ee_position(self, states: np.ndarray) -> np.ndarray:
        """The end effector's position in the arm's base frame (m), (n, 3) for states (n, nx) or (3,) for one."""
        x = np.asarray(states, dtype=np.float64)
        out = []
        for row in np.atleast_2d(x):
            self._forward(row)
            out.append(self._pin_data.oMf[self.arm.ee_frame].translation + row[:3])  # the model's world is shifted by -goal
        return np.array(out) if x.ndim == 2 else out[0]

    def distance(self, x: np.ndarray) -> float:
        """The end effector's distance from the goal (m) at state ``x`` (nx,)."""
        x = self.check_state(x)
        self._forward(x)
        return float(np.linalg.norm(self._pin_data.oMf[self.arm.ee_frame].translation))

    def joint_origins(self, x: np.ndarray) -> np.ndarray:
        """The base, the arm's joint origins and the end effector in the arm's base frame (m), shape (n + 2, 3)."""
        x = self.check_state(x)
        self._forward(x)
        data = self._pin_data
        points = [data.oMi[j].translation for j in range(2, self.pin_model.njoints)] + [data.oMf[self.arm.ee_frame].translation]
        return np.vstack([np.zeros(3), np.array(points) + x[:3]])

    @property
    def goal_state(self) -> tuple[float, ...]:  # type: ignore[override]
        """The nominal configuration at rest with the goal at its end effector: a zero-cost equilibrium
        under :attr:`goal_control` (where the optimal value is 0)."""
        x = np.zeros(self.nx)
        x[3 : 3 + self.n_joints] = self.arm.spec.nominal
        x[:3] = self.ee_position(x)  # with the goal at 0, the end effector's position in the base frame
        return tuple(float(v) for v in x)

    @property
    def goal_control(self) -> tuple[float, ...]:  # type: ignore[override]
        """Gravity compensation at :attr:`goal_state`: the torques that hold it still at zero cost."""
        return tuple(float(v) for v in self.gravity_torques(np.array(self.goal_state)))

    def gravity_torques(self, x: np.ndarray) -> np.ndarray:
        """``g(q)``: the arm's joint torques that hold it still at state ``x`` (nx,) (N m), shape (n,)."""
        x = self.check_state(x)
        return pinocchio.computeGeneralizedGravity(self.pin_model, self._pin_data, x[: self.pin_model.nq])[3:].copy()

    # ------------------------------------------------------------------ starts
    def _start_box(self) -> tuple[np.ndarray, np.ndarray]:
        nominal, half = np.asarray(self.arm.spec.nominal), np.asarray(self.arm.spec.start_range)
        low = np.maximum(nominal - half, self.arm.lower + self.position_margin)
        high = np.minimum(nominal + half, self.arm.upper - self.position_margin)
        return low, np.maximum(low, high)

    def sample_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` start states (n, nx): configurations uniform in the start box, at rest; each goal the end
        effector's position at another configuration of the box."""
        if int(n) < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        gen = as_generator(rng)
        low, high = self._start_box()
        q = gen.uniform(low, high, size=(int(n), self.n_joints))
        q_goal = gen.uniform(low, high, size=(int(n), self.n_joints))
        x = np.zeros((int(n), self.nx))
        x[:, 3 : 3 + self.n_joints] = q_goal
        x[:, :3] = self.ee_position(x) if n else np.zeros((0, 3))  # the goal at 0: the model's world is the base frame
        x[:, 3 : 3 + self.n_joints] = q
        return x

    def sample_training_states(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """States (n, nx) where a reach goes, for learning a value: a third start states
        (:meth:`sample_states`), a third on the way (configurations of the start box moving at up to
        ``TRAINING_SPEED`` of the velocity limits), a third near the goal (the goal within
        ``TRAINING_GOAL_RADIUS`` of the end effector, speeds up to a tenth of that), where the value is
        small and the last millimetres are decided."""
        gen = as_generator(rng)
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        x = self.sample_states(n, gen)
        k = n // 3
        limits = self.arm.velocity
        nq = 3 + self.n_joints
        x[k : 2 * k, nq + 3 :] = gen.uniform(-1, 1, size=(k, self.n_joints)) * self.TRAINING_SPEED * limits
        near = x[2 * k :]
        if len(near):
            offset = gen.normal(size=(len(near), 3))
            offset *= (self.TRAINING_GOAL_RADIUS * gen.uniform(0, 1, size=(len(near), 1)) ** (1 / 3)) / np.linalg.norm(offset, axis=1, keepdims=True)
            near[:, :3] = 0.0
            near[:, :3] = self.ee_position(near) + offset
            near[:, nq + 3 :] = gen.uniform(-1, 1, size=(len(near), self.n_joints)) * 0.1 * self.TRAINING_SPEED * limits
        return x

    def check_goal(self, goal: Any, name: str = "goal") -> np.ndarray:
        """``goal`` as a float64 (3,) array, or a ``ValueError`` (wrong shape, not finite, beyond the arm's reach bound)."""
        g = np.asarray(goal, dtype=np.float64)
        if g.shape != (3,):
            raise ValueError(f"{type(self).__name__}: {name} must have shape (3,), got shape {g.shape}")
        if not np.all(np.isfinite(g)):
            raise ValueError(f"{type(self).__name__}: {name} must be finite, got {g}")
        if np.linalg.norm(g) > self.arm.reach:
            raise ValueError(f"{type(self).__name__}: {name} {g} is out of reach: {np.linalg.norm(g):.3f} m from the base of "
                             f"{self.arm.name!r}, beyond its reach bound {self.arm.reach:.3f} m (the sum of its link lengths)")  # fmt: skip
        return g

    def check_start(self, x: Any, name: str = "state") -> np.ndarray:
        """``x`` as a float64 (nx,) start state, or a ``ValueError`` naming the problem: a wrong shape, a NaN,
        a goal out of reach, a moving goal, a joint position or speed outside the URDF's limits."""
        x = self.check_state(x, name).copy()
        self.check_goal(x[:3], f"{name}'s goal {name}[0:3]")
        nv = 3 + self.n_joints
        if np.any(x[nv : nv + 3] != 0):
            raise ValueError(f"{type(self).__name__}: the goal's velocity {name}[{nv}:{nv + 3}] must be 0, got {x[nv:nv + 3]}")
        q = x[3:nv]
        outside = np.flatnonzero((q < self.arm.lower) | (q > self.arm.upper))
        if outside.size:
            names = [self.pin_model.names[int(j) + 2] for j in outside]
            raise ValueError(f"{type(self).__name__}: the start configuration is outside the joint limits at {names}: "
                             f"q = {q[outside]}, limits [{self.arm.lower[outside]}, {self.arm.upper[outside]}]")  # fmt: skip
        v = x[nv + 3 :]
        fast = np.flatnonzero(np.abs(v) > self.arm.velocity)
        if fast.size:
            names = [self.pin_model.names[int(j) + 2] for j in fast]
            raise ValueError(f"{type(self).__name__}: the start speeds exceed the velocity limits at {names}: "
                             f"v = {v[fast]}, limits {self.arm.velocity[fast]}")  # fmt: skip
        return x

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Sample a start (goal included) with ``self.np_random``, or take it from ``options`` (class docstring)."""
        gym.Env.reset(self, seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"state", "goal"})
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown reset option(s) {unknown}; accepted: 'state', 'goal'")
        if "state" in options:
            x = np.asarray(options["state"], dtype=np.float64)
            n = self.n_joints
            if "goal" in options and x.shape == (2 * n,):  # the arm's (q, v)
                x = np.concatenate([np.zeros(3), x[:n], np.zeros(3), x[n:]])
            elif "goal" in options and x.shape != (self.nx,):
                raise ValueError(f"{type(self).__name__}: options['state'] must have shape ({self.nx},) or, with a goal, "
                                 f"({2 * n},) (the arm's q, v), got shape {x.shape}")  # fmt: skip
        else:
            x = self.sample_states(1, self.np_random)[0]
        if "goal" in options:
            x = np.array(x, dtype=np.float64)
            x[:3] = self.check_goal(options["goal"], "options['goal']")
        x = self.check_start(x, "options['state']" if "state" in options else "state")
        super().reset(options={"state": x})  # the base's checks (a finite step); seed=None: np_random is kept
        self._path = [self.ee_position(self.state)]
        return self.state.copy(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply the joint torques ``action`` (clipped to the effort limits) for one step of ``dt``: the
        model's step, then the hard stops at the URDF's limits (class docstring, "Limits")."""
        _, reward, terminated, truncated, info = super().step(action)
        self.state, stopped = self.hard_stops(self.state)
        self._path.append(self.ee_position(self.state))
        info.update(self._info(), hard_stop=stopped)
        return self.state.copy(), reward, terminated, truncated, info

    def hard_stops(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """``(x', stopped)``: ``x`` (nx,) with each joint beyond a position limit put back on it, its speed
        away from the range zeroed, and every joint speed clipped to the velocity limits; ``stopped``
        says whether anything changed (``x`` itself when nothing did)."""
        nv = 3 + self.n_joints
        q, v = x[3:nv], x[nv + 3 :]
        below, above = q < self.arm.lower, q > self.arm.upper
        outward = (below & (v < 0)) | (above & (v > 0))
        fast = np.abs(v) > self.arm.velocity
        if not (below.any() or above.any() or fast.any()):
            return x, False
        x = x.copy()
        x[3:nv] = np.clip(q, self.arm.lower, self.arm.upper)
        x[nv + 3 :] = np.where(outward, 0.0, np.clip(v, -self.arm.velocity, self.arm.velocity))
        return x, True

    def _info(self) -> dict[str, Any]:
        distance = self.distance(self.state)
        speed = float(np.max(np.abs(self.state[6 + self.n_joints :])))
        return {"distance": distance, "is_success": bool(distance < self.success_distance and speed < self.success_speed)}

    def render(self) -> np.ndarray | None:
        """The frame of ``render_mode="rgb_array"``, (height, width, 3) uint8; ``None`` (with Gymnasium's warning) without a render mode."""
        if self.render_mode is None:
            gym.logger.warn(f"{type(self).__name__}.render() was called without a render_mode; pass render_mode='rgb_array' to gymnasium.make")
            return None
        if self._renderer is None:
            self._renderer = ChainRenderer(self)
        return self._renderer.draw(self.joint_origins(self.state), self.state[:3], np.array(self._path).reshape(-1, 3))

    def close(self) -> None:
        self._renderer = None
        super().close()


def make_arm_reach(robot: str = "panda", **kwargs: Any) -> gym.Env:
    """The registered ids' entry point: ``RescaleAction(ArmReachEnv(robot, **kwargs), -1, 1)``: actions in
    ``[-1, 1]``, the torques ``effort * action``; ``env.unwrapped`` keeps the torque-level derivative API."""
    return gym.wrappers.RescaleAction(ArmReachEnv(robot=robot, **kwargs), -1, 1)  # ints: Box casts them to float32 silently (floats warn), and the spec stays JSON


# gymnasium.make reads the creator's render modes (and applies HumanRendering for "human")
make_arm_reach.metadata = ArmReachEnv.metadata  # type: ignore[attr-defined]
