"""dvp_rl: Differential Value Programming (Parag, Kleff, Saci, Mansard, Stasse, ICRA 2022).

Value learning from trajectory optimization (Crocoddyl DDP) and Sobolev regression,
with a Stable-Baselines3-style agent and a PPO comparison.

The names that need torch (``DVP``, ``NetworkConfig``, ``GroundTruthEvalCallback``,
``SobolevWeights``, ``FitConfig``) are imported on first use, so that the solver side (``dvp_rl.control.ocp``,
``dvp_rl.control.pool``, ``dvp_rl.control.mpc``, ...) imports without torch, as solver workers do.
"""

import importlib
from typing import Any

import envs as _envs  # noqa: F401  (registers the dvp_rl/... Gymnasium ids)
from dvp_rl.references.ground_truth import GroundTruth, ground_truth
from dvp_rl.collect import CollectConfig
from dvp_rl.control.config import MPCConfig, SearchConfig
from dvp_rl.control.mpc import MPCController
from dvp_rl.control.ocp import BatchSolveResult, OptimalControlProblem, SolveResult, solve_ocp
from dvp_rl.control.pool import ParallelConfig

__version__ = "0.1.0"

#: public names that import torch, and their modules
_LAZY = {
    "DVP": "dvp_rl.agent",
    "NetworkConfig": "dvp_rl.value.networks",
    "GroundTruthEvalCallback": "dvp_rl.callbacks",
    "SobolevWeights": "dvp_rl.value.sobolev",
    "FitConfig": "dvp_rl.value.sobolev",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dvp_rl' has no attribute {name!r}")


__all__ = [
    "DVP",
    "CollectConfig",
    "MPCConfig",
    "NetworkConfig",
    "SearchConfig",
    "BatchSolveResult",
    "FitConfig",
    "GroundTruth",
    "GroundTruthEvalCallback",
    "MPCController",
    "OptimalControlProblem",
    "ParallelConfig",
    "SobolevWeights",
    "SolveResult",
    "__version__",
    "ground_truth",
    "solve_ocp",
]
