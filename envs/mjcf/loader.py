"""The MJCF -> pinocchio loader of the twins (:func:`load_mjcf_system`): reads a Gymnasium MuJoCo env's
compiled model and MJCF file, refuses what the twin cannot represent (:class:`UnsupportedMJCFError`)
and checks pinocchio's dynamics against MuJoCo's (see :mod:`envs.mjcf`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pinocchio

#: armature of the prismatic root joints that carry a task's target (see :func:`load_mjcf_system`):
#: the arm's reaction moves the target by ~1e-12 m/s^2
STATIC_ARMATURE = 1e12
#: relative tolerance of the check that pinocchio's accelerations are MuJoCo's (measured: 1e-14 to 2e-12)
DYNAMICS_TOLERANCE = 1e-8


class UnsupportedMJCFError(ValueError):
    """An MJCF model uses a feature the differentiable twin cannot represent (the message names it)."""


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
