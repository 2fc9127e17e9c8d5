"""Differentiable twins of Gymnasium's MuJoCo envs, built at run time from the env's own MJCF file.

:func:`load_mjcf_system` makes the real env once (``gymnasium.make``), reads its compiled MuJoCo
model (time step, integrator, gravity, joint damping and armature, actuator gear and control
range) and its MJCF file (``env.unwrapped.fullpath``, inside the installed gymnasium package),
parses the file with pinocchio's ``buildModelFromMJCF``, refuses what the twin cannot represent
(:class:`UnsupportedMJCFError`) and checks that pinocchio's forward dynamics reproduce MuJoCo's
accelerations at random states. :class:`MJCFTwinEnv` turns the result into a native Crocoddyl
model: ``DifferentialActionModelFreeFwdDynamics`` (pinocchio's ABA, armature included) under
Crocoddyl's RK4 integrator, the joint damping in a small Python actuation model
(:class:`JointActuation`, as the cart-pole's selected-joint actuation: Crocoddyl has no native
actuation with damping) and Reacher's smooth norm in a Python activation (:class:`SmoothNormActivation`). The subclasses
:class:`InvertedDoublePendulumTwin` and :class:`ReacherTwin` add each task's cost and start
distribution. Needs the ``mujoco`` extra (``pip install 'dvp_rl[mujoco]'``).

What no stock Crocoddyl model can do, and what the twins do instead (measured in
``tests/envs/test_mujoco_twins.py``):

* MuJoCo steps ``frame_skip`` RK4 steps of ``timestep`` per env step; Crocoddyl's integrated
  models take one step, so the twin takes one RK4 step of ``frame_skip * timestep``. The
  continuous dynamics are MuJoCo's to ~1e-12, one twin step is MuJoCo's single RK4 step of
  ``frame_skip * timestep`` to ~1e-14; against the real env's ``frame_skip`` steps the error is the
  integrator's (InvertedDoublePendulum ~1e-4 median, up to ~5e-3; Reacher ~2e-9, up to ~1e-7).
* Gymnasium's rewards are functions of the state *after* the step. Crocoddyl's RK4 model
  charges the RK4 quadrature of a cost rate over the step, so each twin cost is the rate
  ``s(x) / dt`` of the reward's state part ``s``: a twin step costs the mean of ``s`` over the
  step instead of ``s`` at its end, and over an episode the twin's return equals the real one up
  to terms at its two ends (``(s(x_T) - s(x_0)) / 2 + O(dt)``, trapezoidal rule). Control costs are exact.
  Gymnasium reads body and site positions after ``mj_step``, where MuJoCo left those of its last
  RK4 stage (``q + h v_3``), not those of the final ``qpos``: its reward differs from the reward of
  the final state by up to ~2e-4 (IDP) and ~5e-6 (Reacher); the twin charges the final state's.
* Joint limits, contacts and constraint forces are not in the dynamics (a possible contact is
  refused). A joint limit (listed in :attr:`MJCFSystem.limits`) is a steep quadratic barrier in the
  cost instead, from ``limit_margin`` inside the point where MuJoCo's constraint starts acting, so
  that plans stay where the twin is MuJoCo (Reacher's DDP plans otherwise folded the elbow past
  its limit and failed in MuJoCo).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import crocoddyl
import gymnasium as gym
import numpy as np
import pinocchio

from envs.base import CrocoddylEnv, as_generator, check_parameters, reject_unknown_kwargs

#: armature of the prismatic root joints that carry a task's target (see :func:`load_mjcf_system`):
#: the arm's reaction moves the target by ~1e-12 m/s^2
STATIC_ARMATURE = 1e12
#: relative tolerance of the check that pinocchio's accelerations are MuJoCo's (measured: 1e-14 to 2e-12)
DYNAMICS_TOLERANCE = 1e-8


class UnsupportedMJCFError(ValueError):
    """An MJCF model uses a feature the differentiable twin cannot represent (the message names it)."""


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


@dataclasses.dataclass(frozen=True)
class MJCFSystem:
    """A MuJoCo env's model as the twin sees it (made by :func:`load_mjcf_system`).

    :param real_id: the Gymnasium id it was read from
    :param xml_path: the MJCF file (the real env's ``fullpath``)
    :param pin_model: pinocchio model; with goal joints, the arm is expressed relative to the target
    :param B: (nv, nu) generalized force per unit of control (gear times gain)
    :param damping: (nv,) joint damping
    :param timestep: MuJoCo's ``opt.timestep``
    :param frame_skip: MuJoCo steps per env step
    :param ctrl_low: (nu,) lower control bounds (``ctrlrange``)
    :param ctrl_high: (nu,) upper control bounds
    :param gravity: (3,) MuJoCo's ``opt.gravity`` (zero when disabled), or the one given to :func:`load_mjcf_system`
    :param joint_names: MuJoCo names of the twin's coordinates, in state order (goal joints first)
    :param goal_joints: the MuJoCo joints of the static target (state coordinates, never moved)
    :param limits: ``(joint, low, high)`` of each limited joint (not a goal joint): where MuJoCo's limit
        constraint starts acting (its range less the joint's margin)
    :param unmodelled: what MuJoCo does that the twin does not (joint limits), in words
    """

    real_id: str
    xml_path: str
    pin_model: pinocchio.Model
    B: np.ndarray
    damping: np.ndarray
    timestep: float
    frame_skip: int
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray
    gravity: np.ndarray
    joint_names: tuple[str, ...]
    goal_joints: tuple[str, ...]
    limits: tuple[tuple[str, float, float], ...]
    unmodelled: tuple[str, ...]

    @property
    def dt(self) -> float:
        """Duration of one env step, ``frame_skip * timestep``."""
        return self.frame_skip * self.timestep


def _mujoco() -> Any:
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover (the extra is part of the test extra)
        raise ImportError("the MuJoCo twins need the mujoco package: pip install 'dvp_rl[mujoco]'") from exc
    return mujoco


def _unsupported_features(mujoco: Any, mj: Any, goal_joints: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(unsupported, limited)``: features of the compiled model the twin refuses, and the joints whose limits act."""
    bad: list[str] = []
    opt = mj.opt
    if opt.integrator != mujoco.mjtIntegrator.mjINT_RK4:
        bad.append(f"integrator {mujoco.mjtIntegrator(opt.integrator).name} (only RK4 is reproduced)")
    flags = {name: int(getattr(mujoco.mjtDisableBit, name)) for name in dir(mujoco.mjtDisableBit) if name.startswith("mjDSBL_")}
    for name in ("mjDSBL_ACTUATION", "mjDSBL_CLAMPCTRL"):
        if opt.disableflags & flags[name]:
            bad.append(f"option flag {name}")
    if opt.enableflags & int(mujoco.mjtEnableBit.mjENBL_SLEEP):
        bad.append("option flag mjENBL_SLEEP")
    if opt.density != 0 or opt.viscosity != 0 or np.any(opt.wind != 0):
        bad.append("fluid forces (option density, viscosity or wind)")
    joint_type = {int(mujoco.mjtJoint.mjJNT_HINGE): "hinge", int(mujoco.mjtJoint.mjJNT_SLIDE): "slide"}
    names = [mj.joint(j).name for j in range(mj.njnt)]
    for j, name in enumerate(names):
        if int(mj.jnt_type[j]) not in joint_type:
            bad.append(f"joint {name!r} of type {mujoco.mjtJoint(mj.jnt_type[j]).name} (only hinge and slide joints)")
    if np.any(mj.jnt_stiffness != 0):
        bad.append(f"joint stiffness (springs) on {[n for n, k in zip(names, mj.jnt_stiffness) if k != 0]}")
    if np.any(mj.dof_frictionloss != 0):
        bad.append("dof friction loss")
    if np.any(mj.body_gravcomp != 0):
        bad.append("gravity compensation (gravcomp)")
    for count, what in ((mj.neq, "equality constraints"), (mj.ntendon, "tendons"), (mj.npair, "explicit contact pairs"), (mj.na, "actuator activations")):
        if count:
            bad.append(f"{count} {what}")
    if not opt.disableflags & flags["mjDSBL_CONTACT"]:
        bad.extend(_possible_contacts(mj, filter_parent=not opt.disableflags & flags["mjDSBL_FILTERPARENT"]))
    for i in range(mj.nu):
        name = mj.actuator(i).name or f"#{i}"
        kinds = (mj.actuator_trntype[i], mj.actuator_dyntype[i], mj.actuator_gaintype[i], mj.actuator_biastype[i])
        if kinds != (mujoco.mjtTrn.mjTRN_JOINT, mujoco.mjtDyn.mjDYN_NONE, mujoco.mjtGain.mjGAIN_FIXED, mujoco.mjtBias.mjBIAS_NONE):
            bad.append(f"actuator {name!r}: only motors on a joint (transmission joint, no dynamics, fixed gain, no bias)")
        elif names[mj.actuator_trnid[i, 0]] in goal_joints:
            bad.append(f"actuator {name!r} drives the target joint {names[mj.actuator_trnid[i, 0]]!r}")
        if not mj.actuator_ctrllimited[i]:
            bad.append(f"actuator {name!r} without ctrlrange")
        gain_range = mj.actuator_gainprm[i, 0] * mj.actuator_ctrlrange[i]
        if mj.actuator_forcelimited[i] and (gain_range.min() < mj.actuator_forcerange[i, 0] or gain_range.max() > mj.actuator_forcerange[i, 1]):
            bad.append(f"actuator {name!r}: a forcerange that clips its force")
    limited = []
    if not opt.disableflags & (flags["mjDSBL_LIMIT"] | flags["mjDSBL_CONSTRAINT"]):
        limited = [j for j, name in enumerate(names) if mj.jnt_limited[j] and name not in goal_joints]
    return bad, limited


def _possible_contacts(mj: Any, filter_parent: bool) -> list[str]:
    """Geom pairs of different bodies that MuJoCo's contype/conaffinity let collide."""
    found = []
    for a in range(mj.ngeom):
        for b in range(a + 1, mj.ngeom):
            ba, bb = mj.body_weldid[mj.geom_bodyid[a]], mj.body_weldid[mj.geom_bodyid[b]]
            if ba == bb or (ba == 0 and bb == 0):
                continue
            if filter_parent and (mj.body_weldid[mj.body_parentid[ba]] == bb or mj.body_weldid[mj.body_parentid[bb]] == ba):
                continue
            if (mj.geom_contype[a] & mj.geom_conaffinity[b]) or (mj.geom_contype[b] & mj.geom_conaffinity[a]):
                found.append(f"contacts between geoms {mj.geom(a).name or a!r} and {mj.geom(b).name or b!r} (contype/conaffinity)")
    return found


def load_mjcf_system(real_id: str, goal_joints: Sequence[str] = (), gravity: Sequence[float] | None = None, **real_kwargs: Any) -> MJCFSystem:
    """Read a MuJoCo env's model from ``gymnasium.make(real_id, **real_kwargs)`` and its MJCF file.

    Goal joints (e.g. Reacher's ``target_x``, ``target_y``: slide joints of a body of the world that
    nothing drives) become static coordinates of the twin's state: the model's root is one prismatic
    joint per goal joint, of axis ``-axis`` and armature :data:`STATIC_ARMATURE`, carrying the rest of
    the model, so that every frame's world position in the twin is its MuJoCo position minus the
    target's (Crocoddyl's frame-translation residual of the fingertip is then fingertip - target).

    :param real_id: a Gymnasium MuJoCo id (e.g. ``"Reacher-v5"``)
    :param goal_joints: MuJoCo joints of a static target
    :param gravity: replaces the model's gravity (``None``: MuJoCo's ``opt.gravity``)
    :param real_kwargs: ``gymnasium.make`` arguments of the real env (``frame_skip``, ``xml_file``)
    :raises UnsupportedMJCFError: naming each feature the twin cannot represent (integrator other
        than RK4, joints other than hinge and slide, possible contacts, springs, tendons, equality
        constraints, actuators other than motors on a joint, ...), or when pinocchio's model does not
        reproduce MuJoCo's accelerations
    """
    mujoco = _mujoco()
    key = (real_id, tuple(goal_joints), None if gravity is None else tuple(float(g) for g in gravity), tuple(sorted(real_kwargs.items())))
    return _load(mujoco, *key)


@functools.lru_cache(maxsize=16)
def _load(mujoco: Any, real_id: str, goal_joints: tuple[str, ...], gravity: tuple[float, ...] | None, real_kwargs: tuple) -> MJCFSystem:
    real = gym.make(real_id, **dict(real_kwargs)).unwrapped
    try:
        mj, xml_path, frame_skip = real.model, str(real.fullpath), int(real.frame_skip)
    finally:
        real.close()
    names = [mj.joint(j).name for j in range(mj.njnt)]
    missing = sorted(set(goal_joints) - set(names))
    if missing:
        raise ValueError(f"{xml_path} has no joint(s) {missing} (its joints: {names})")
    bad, limited = _unsupported_features(mujoco, mj, goal_joints)
    bad.extend(_goal_joint_problems(mujoco, mj, names, goal_joints))
    if bad:
        raise UnsupportedMJCFError(f"the differentiable twin of {real_id} cannot represent {xml_path}: " + "; ".join(bad))
    disabled = mj.opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_GRAVITY)
    gravity_vector = np.zeros(3) if disabled else np.array(mj.opt.gravity, dtype=np.float64)
    damping = np.array(mj.dof_damping, dtype=np.float64)
    if mj.opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_DAMPER):
        damping[:] = 0.0

    arm = pinocchio.buildModelFromMJCF(xml_path)
    locked = [arm.getJointId(n) for n in goal_joints if arm.existJointName(n)]
    if locked:
        arm = pinocchio.buildReducedModel(arm, locked, pinocchio.neutral(arm))
    arm_names = [n for n in names if n not in goal_joints]
    pin_names = list(arm.names[1:])
    if sorted(pin_names) != sorted(arm_names) or any(arm.joints[arm.getJointId(n)].nq != 1 or arm.joints[arm.getJointId(n)].nv != 1 for n in arm_names):
        raise UnsupportedMJCFError(
            f"pinocchio's model of {xml_path} has joints {pin_names}, MuJoCo's {arm_names} (each one coordinate): "
            "the file uses a feature buildModelFromMJCF converts differently"
        )
    pin_model = _with_static_goal(mj, names, goal_joints, arm) if goal_joints else arm
    pin_model.gravity.linear = gravity_vector
    order = [pin_model.names[j] for j in range(1, pin_model.njoints)]  # goal joints first, then the arm's
    mj_dof = [int(mj.jnt_dofadr[names.index(n)]) for n in order]
    pin_model.armature = np.array([STATIC_ARMATURE if n in goal_joints else mj.dof_armature[d] for n, d in zip(order, mj_dof)])
    twin_damping = np.array([0.0 if n in goal_joints else damping[d] for n, d in zip(order, mj_dof)])
    B = np.zeros((pin_model.nv, mj.nu))
    for i in range(mj.nu):
        B[order.index(names[mj.actuator_trnid[i, 0]]), i] = mj.actuator_gainprm[i, 0] * mj.actuator_gear[i, 0]
    system = MJCFSystem(
        real_id=real_id,
        xml_path=xml_path,
        pin_model=pin_model,
        B=B,
        damping=twin_damping,
        timestep=float(mj.opt.timestep),
        frame_skip=frame_skip,
        ctrl_low=np.array(mj.actuator_ctrlrange[:, 0], dtype=np.float64),
        ctrl_high=np.array(mj.actuator_ctrlrange[:, 1], dtype=np.float64),
        gravity=gravity_vector,
        joint_names=tuple(order),
        goal_joints=tuple(goal_joints),
        limits=tuple((names[j], float(mj.jnt_range[j, 0] + mj.jnt_margin[j]), float(mj.jnt_range[j, 1] - mj.jnt_margin[j])) for j in limited),
        unmodelled=tuple(f"joint limit {names[j]} in [{mj.jnt_range[j, 0]:g}, {mj.jnt_range[j, 1]:g}] (margin {mj.jnt_margin[j]:g})" for j in limited),
    )
    _check_dynamics(mujoco, mj, names, system)  # with MuJoCo's own gravity
    if gravity is not None:
        pin_model = pinocchio.Model(pin_model)
        pin_model.gravity.linear = np.asarray(gravity, dtype=np.float64).reshape(3)
        system = dataclasses.replace(system, pin_model=pin_model, gravity=pin_model.gravity.linear.copy())
    return system


def _goal_joint_problems(mujoco: Any, mj: Any, names: list[str], goal_joints: Sequence[str]) -> list[str]:
    bad = []
    bodies = {int(mj.jnt_bodyid[names.index(n)]) for n in goal_joints}
    if len(bodies) > 1:
        bad.append(f"goal joints {list(goal_joints)} on several bodies")
    for n in goal_joints:
        j = names.index(n)
        body = int(mj.jnt_bodyid[j])
        if mj.jnt_type[j] != mujoco.mjtJoint.mjJNT_SLIDE or mj.body_parentid[body] != 0 or not np.allclose(mj.body_quat[body], [1, 0, 0, 0]):
            bad.append(f"goal joint {n!r}: a slide joint of an unrotated body of the world is expected")
        if mj.dof_damping[mj.jnt_dofadr[j]] != 0 or mj.jnt_stiffness[j] != 0:
            bad.append(f"goal joint {n!r} with damping or stiffness")
    other = [names[j] for j in range(mj.njnt) if int(mj.jnt_bodyid[j]) in bodies and names[j] not in goal_joints]
    if other:
        bad.append(f"the target body also has joints {other}")
    return bad


def _with_static_goal(mj: Any, names: list[str], goal_joints: Sequence[str], arm: pinocchio.Model) -> pinocchio.Model:
    """One prismatic root joint per goal joint (axis ``-axis``), then ``arm``: frames are relative to the target."""
    joints = [names.index(n) for n in goal_joints]
    body = int(mj.jnt_bodyid[joints[0]])
    # the target body's origin is body_pos + sum_j axis_j (q_j - ref_j), MuJoCo's ref being qpos0
    offset = np.array(mj.body_pos[body], dtype=np.float64) - sum(mj.jnt_axis[j] * mj.qpos0[mj.jnt_qposadr[j]] for j in joints)
    goal = pinocchio.Model()
    parent = 0
    for k, (name, j) in enumerate(zip(goal_joints, joints)):
        placement = pinocchio.SE3(np.eye(3), -offset if k == 0 else np.zeros(3))
        parent = goal.addJoint(parent, pinocchio.JointModelPrismaticUnaligned(-np.array(mj.jnt_axis[j], dtype=np.float64)), placement, name)
    goal.addFrame(pinocchio.Frame("target_base", parent, 0, pinocchio.SE3.Identity(), pinocchio.FrameType.OP_FRAME))
    return pinocchio.appendModel(goal, arm, goal.getFrameId("target_base"), pinocchio.SE3.Identity())


def _check_dynamics(mujoco: Any, mj: Any, names: list[str], system: MJCFSystem, n_states: int = 8) -> None:
    """Compare pinocchio's accelerations and the positions of its frames named as MuJoCo's bodies and sites
    with MuJoCo's, at random states inside the joint limits (relative to the target with goal joints)."""
    rng = np.random.default_rng(0)
    data = mujoco.MjData(mj)
    pm = system.pin_model
    pd = pm.createData()
    qadr = [int(mj.jnt_qposadr[names.index(n)]) for n in system.joint_names]
    dadr = [int(mj.jnt_dofadr[names.index(n)]) for n in system.joint_names]
    arm = [k for k, n in enumerate(system.joint_names) if n not in system.goal_joints]
    worst = 0.0
    for _ in range(n_states):
        qpos = np.array(mj.qpos0, dtype=np.float64)
        for j in range(mj.njnt):
            low, high = (mj.jnt_range[j] if mj.jnt_limited[j] else (-np.pi, np.pi))
            mid, half = 0.5 * (low + high), 0.25 * (high - low)
            qpos[mj.jnt_qposadr[j]] = rng.uniform(mid - half, mid + half)
        data.qpos[:] = qpos
        data.qvel[:] = rng.normal(size=mj.nv)
        data.qvel[[dadr[k] for k in range(len(dadr)) if k not in arm]] = 0.0
        data.ctrl[:] = rng.uniform(system.ctrl_low, system.ctrl_high)
        mujoco.mj_forward(mj, data)
        if data.nefc:
            continue
        q, v = data.qpos[qadr], data.qvel[dadr]
        a = pinocchio.aba(pm, pd, q, v, system.B @ data.ctrl - system.damping * v)
        expected = data.qacc[dadr]
        error = np.abs(a[arm] - expected[arm]) / (1.0 + np.abs(expected[arm]))
        worst = max(worst, float(error.max()))
        pinocchio.framesForwardKinematics(pm, pd, q)
        origin = data.xpos[mj.jnt_bodyid[names.index(system.goal_joints[0])]] if system.goal_joints else np.zeros(3)
        for name, kind, position in _named_points(mj, data):
            if pm.existFrame(name, kind):
                placed = float(np.linalg.norm(pd.oMf[pm.getFrameId(name, kind)].translation - (position - origin)))
                if placed > DYNAMICS_TOLERANCE:
                    raise UnsupportedMJCFError(f"pinocchio's model of {system.xml_path} puts {name!r} {placed:.3g} m away from MuJoCo's")
    if worst > DYNAMICS_TOLERANCE:
        raise UnsupportedMJCFError(
            f"pinocchio's model of {system.xml_path} does not reproduce MuJoCo's accelerations (relative error {worst:.3g} > "
            f"{DYNAMICS_TOLERANCE:g}): the file uses a feature buildModelFromMJCF does not convert"
        )


def _named_points(mj: Any, data: Any) -> list[tuple[str, Any, np.ndarray]]:
    """``(name, pinocchio frame type, world position)`` of MuJoCo's named bodies (origins) and sites."""
    bodies = [(mj.body(b).name, pinocchio.FrameType.BODY, data.xpos[b]) for b in range(1, mj.nbody) if mj.body(b).name]
    return bodies + [(mj.site(i).name, pinocchio.FrameType.OP_FRAME, data.site_xpos[i]) for i in range(mj.nsite) if mj.site(i).name]


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
    """Base class of the twins of Gymnasium MuJoCo envs (see the module's docstring).

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


class InvertedDoublePendulumTwin(MJCFTwinEnv):
    r"""Differentiable twin of Gymnasium's ``InvertedDoublePendulum-v5``, built from its MJCF.

    ## Description
    The cart (slider ``x``) and two poles (hinges ``q1``, ``q2``) of
    ``inverted_double_pendulum.xml``, read at run time from the installed gymnasium package:
    pinocchio's model of the file (masses and inertias from the capsules), MuJoCo's gravity
    (``(1e-5, 0, -9.81)``), joint damping 0.05 on the three joints, motor gear 500 on the cart with
    control range ``[-1, 1]``. One env step is one RK4 step of ``frame_skip * 0.01 s`` (0.05 s);
    MuJoCo takes ``frame_skip`` RK4 steps of 0.01 s, so the twin's step differs from MuJoCo's by
    the integrator's error (``tests/envs/test_mujoco_twins.py`` bounds it). Not in the dynamics: the
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
    step, the mean of ``s`` along the step, where Gymnasium charges ``s`` at its end (see the
    module's docstring). The upright at rest costs 0. Beyond ``|x| = 0.99 - limit_margin`` the cost
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
    step, where Gymnasium charges its value at the end, see the module's docstring); the control
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
