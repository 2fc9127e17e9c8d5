"""dvp_rl: Differential Value Programming (Parag, Kleff, Saci, Mansard, Stasse, ICRA 2022).

Value learning from trajectory optimization (Crocoddyl DDP) and Sobolev regression,
with a Stable-Baselines3-style agent and a PPO comparison.
"""

import envs as _envs  # noqa: F401  (registers the dvp_rl/... Gymnasium ids)
__version__ = "0.1.0"

from dvp_rl.agent import DVP  # noqa: E402
from dvp_rl.callbacks import GroundTruthEvalCallback  # noqa: E402
from dvp_rl.ground_truth import GroundTruth, ground_truth  # noqa: E402
from dvp_rl.ocp import BatchSolveResult, OptimalControlProblem, SolveResult, solve_ocp  # noqa: E402
from dvp_rl.sobolev import SobolevWeights  # noqa: E402

__all__ = [
    "DVP",
    "BatchSolveResult",
    "GroundTruth",
    "GroundTruthEvalCallback",
    "OptimalControlProblem",
    "SobolevWeights",
    "SolveResult",
    "__version__",
    "ground_truth",
    "solve_ocp",
]
