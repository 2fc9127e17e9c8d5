"""The arms of the reaching envs (:mod:`envs.arms`): a registry of example-robot-data robots and their loading.

Loading an arm (:func:`load_arm`) reads its URDF through ``example_robot_data.load`` (inertias, effort,
joint-position and velocity limits), locks the joints its :class:`ArmSpec` names, and puts the arm
on the composite root joint that carries the goal (see :mod:`envs.arms`). Adding an arm is one
:class:`ArmSpec` in :data:`ARMS` (the module docstring of :mod:`envs.arms` says what it needs).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import numpy as np
import pinocchio

#: armature of the three prismatic root joints that carry the goal: the arm's weight and
#: reactions accelerate the goal by ~1e-10 m/s^2 (under 1e-9 m of drift over an episode)
GOAL_ARMATURE = 1e12


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """One fixed-base arm of example-robot-data.

    :param loader: the name given to ``example_robot_data.load``
    :param ee_frame: the end-effector frame (a frame of the URDF)
    :param nominal: the nominal ("ready") configuration of the arm's joints after locking, rad, inside the limits
    :param start_range: half-widths (one per joint, rad) of the uniform start range around ``nominal``
    :param locked_joints: joints removed with ``pinocchio.buildReducedModel``, locked at the neutral position
    """

    loader: str
    ee_frame: str
    nominal: tuple[float, ...]
    start_range: tuple[float, ...]
    locked_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:  # tuples (hashable, immutable) whatever sequences were given
        for name, kind in (("nominal", float), ("start_range", float), ("locked_joints", str)):
            object.__setattr__(self, name, tuple(kind(v) for v in getattr(self, name)))


#: the arms :class:`ArmReachEnv` knows, by name
ARMS: dict[str, ArmSpec] = {
    "panda": ArmSpec(
        loader="panda",
        ee_frame="panda_hand_tcp",
        nominal=(0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4),  # example-robot-data's "default"
        start_range=(0.6, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5),
        locked_joints=("panda_finger_joint1", "panda_finger_joint2"),
    ),
    "ur5": ArmSpec(
        loader="ur5",
        ee_frame="tool0",
        nominal=(0.0, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0),  # upper arm up, forearm forward
        start_range=(0.6, 0.4, 0.4, 0.5, 0.5, 0.5),
    ),
}


class ArmModel(NamedTuple):
    """An arm loaded for :class:`ArmReachEnv` (made by :func:`load_arm`).

    :param name: the registry name (or the spec's loader for an unregistered spec)
    :param spec: its :class:`ArmSpec`
    :param arm: pinocchio model of the arm alone (locked joints removed)
    :param model: the arm carried by the goal's root joint (see the module's docstring); nq = nv = 3 + n
    :param ee_frame: the end effector's frame id in ``model``
    :param effort: (n,) effort limits (N m, or N for a prismatic joint)
    :param lower: (n,) lower joint-position limits
    :param upper: (n,) upper joint-position limits
    :param velocity: (n,) velocity limits
    :param reach: an upper bound of the end effector's distance from the base: the sum of the
        distances between consecutive joint origins, from the base through the end-effector frame
    """

    name: str
    spec: ArmSpec
    arm: pinocchio.Model
    model: pinocchio.Model
    ee_frame: int
    effort: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    reach: float


def _example_robot_data() -> Any:
    try:
        import example_robot_data  # here: only the arm envs need it
    except ImportError as exc:  # pragma: no cover (part of the test extra)
        raise ImportError("the arm envs need example-robot-data's URDFs and loaders: pip install 'dvp_rl[arms]'") from exc
    return example_robot_data


def load_arm(robot: str | ArmSpec) -> ArmModel:
    """Load an arm of :data:`ARMS` (or a given :class:`ArmSpec`) and carry it by the goal's root joint.

    :raises ValueError: for an unknown name (listing the known ones), a locked joint or an
        end-effector frame the URDF lacks, a joint with other than one coordinate, a limit of the
        URDF that is missing (not finite, or an effort or velocity limit <= 0, or lower >= upper),
        or a nominal configuration of the wrong length or outside the limits
    """
    if isinstance(robot, ArmSpec):
        name, spec = robot.loader, robot
    elif isinstance(robot, str) and robot in ARMS:
        name, spec = robot, ARMS[robot]
    else:
        raise ValueError(f"unknown robot {robot!r}; known robots: {sorted(ARMS)} (or pass an envs.arms.ArmSpec)")
    loaded = _load(name, spec)
    # copies: the cached models stay as loaded whatever a caller does with its own
    return loaded._replace(arm=pinocchio.Model(loaded.arm), model=pinocchio.Model(loaded.model), effort=loaded.effort.copy(),
                           lower=loaded.lower.copy(), upper=loaded.upper.copy(), velocity=loaded.velocity.copy())  # fmt: skip


@functools.lru_cache(maxsize=8)
def _load(name: str, spec: ArmSpec) -> ArmModel:
    example_robot_data = _example_robot_data()
    full = example_robot_data.load(spec.loader).model
    missing = [j for j in spec.locked_joints if not full.existJointName(j)]
    if missing:
        raise ValueError(f"robot {name!r}: the URDF has no joint(s) {missing} to lock (its joints: {list(full.names[1:])})")
    locked = [full.getJointId(j) for j in spec.locked_joints]
    arm = pinocchio.buildReducedModel(full, locked, pinocchio.neutral(full)) if locked else pinocchio.Model(full)
    odd = [arm.names[j] for j in range(1, arm.njoints) if arm.joints[j].nq != 1 or arm.joints[j].nv != 1]
    if odd:
        raise ValueError(f"robot {name!r}: joints {odd} have not one coordinate (continuous or multi-dof joints are not supported)")
    if not arm.existFrame(spec.ee_frame):
        raise ValueError(f"robot {name!r}: the URDF has no frame {spec.ee_frame!r}")
    effort, velocity = np.array(arm.effortLimit), np.array(arm.velocityLimit)
    lower, upper = np.array(arm.lowerPositionLimit), np.array(arm.upperPositionLimit)
    bad = []

    def finite(a: np.ndarray) -> np.ndarray:  # pinocchio's "no limit" is +-1.8e308
        return np.isfinite(a) & (np.abs(a) < 1e300)

    for what, ok in (("effort", finite(effort) & (effort > 0)), ("velocity", finite(velocity) & (velocity > 0)),
                     ("joint-position", finite(lower) & finite(upper) & (lower < upper))):  # fmt: skip
        if not np.all(ok):
            bad.append(f"{what} limits of {[arm.names[int(j) + 1] for j in np.flatnonzero(~ok)]}")
    if bad:
        raise ValueError(f"robot {name!r}: its URDF lacks finite " + " and ".join(bad) + " (effort, position and velocity limits are needed)")
    nominal = np.asarray(spec.nominal, dtype=np.float64)
    if nominal.shape != (arm.nq,) or np.asarray(spec.start_range).shape != (arm.nq,):
        raise ValueError(f"robot {name!r}: nominal and start_range must have {arm.nq} entries (one per joint), got {len(spec.nominal)} and {len(spec.start_range)}")
    if np.any(nominal < lower) or np.any(nominal > upper):
        raise ValueError(f"robot {name!r}: the nominal configuration {nominal} is outside the joint limits [{lower}, {upper}]")

    goal = pinocchio.Model()
    root = pinocchio.JointModelComposite()
    for axis in np.eye(3):
        root.addJoint(pinocchio.JointModelPrismaticUnaligned(-axis))
    jid = goal.addJoint(0, root, pinocchio.SE3.Identity(), "root_joint")
    goal.addFrame(pinocchio.Frame("target_base", jid, 0, pinocchio.SE3.Identity(), pinocchio.FrameType.OP_FRAME))
    model = pinocchio.appendModel(goal, arm, goal.getFrameId("target_base"), pinocchio.SE3.Identity())
    armature = np.array(model.armature)
    armature[:3] = GOAL_ARMATURE
    model.armature = armature

    data = arm.createData()
    pinocchio.framesForwardKinematics(arm, data, pinocchio.neutral(arm))
    points = [np.zeros(3)] + [data.oMi[j].translation for j in range(1, arm.njoints)] + [data.oMf[arm.getFrameId(spec.ee_frame)].translation]
    reach = float(np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1)))
    return ArmModel(name, spec, arm, model, model.getFrameId(spec.ee_frame), effort, lower, upper, velocity, reach)
