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
``tests/envs/mjcf/``):

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

The package, one job per module: :mod:`envs.mjcf.loader` (the MJCF file -> :class:`MJCFSystem`, its
checks), :mod:`envs.mjcf.models` (the Python actuation and activation), :mod:`envs.mjcf.twin` (the
base class and the cost helpers), :mod:`envs.mjcf.inverted_double_pendulum` and
:mod:`envs.mjcf.reacher` (the twins); every public name is importable from :mod:`envs.mjcf`.
"""

from envs.mjcf.inverted_double_pendulum import InvertedDoublePendulumTwin
from envs.mjcf.loader import DYNAMICS_TOLERANCE, STATIC_ARMATURE, MJCFSystem, UnsupportedMJCFError, load_mjcf_system
from envs.mjcf.models import JointActuation, SmoothNormActivation
from envs.mjcf.reacher import ReacherTwin
from envs.mjcf.twin import RK_TYPES, CostTerm, MJCFTwinEnv, add_mirror_frame, frame_translation, one_minus_cosine_terms

__all__ = [
    "DYNAMICS_TOLERANCE",
    "RK_TYPES",
    "STATIC_ARMATURE",
    "CostTerm",
    "InvertedDoublePendulumTwin",
    "JointActuation",
    "MJCFSystem",
    "MJCFTwinEnv",
    "ReacherTwin",
    "SmoothNormActivation",
    "UnsupportedMJCFError",
    "add_mirror_frame",
    "frame_translation",
    "load_mjcf_system",
    "one_minus_cosine_terms",
]
