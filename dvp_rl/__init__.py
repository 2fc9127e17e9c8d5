"""dvp_rl: Differential Value Programming (Parag, Kleff, Saci, Mansard, Stasse, ICRA 2022).

Value learning from trajectory optimization (Crocoddyl DDP) and Sobolev regression,
with a Stable-Baselines3-style agent and a PPO comparison.
"""

import envs as _envs  # noqa: F401  (registers the dvp_rl/... Gymnasium ids)
from dvp_rl.ocp import BatchSolveResult, OptimalControlProblem, SolveResult, solve_ocp

__version__ = "0.1.0"

__all__ = ["BatchSolveResult", "OptimalControlProblem", "SolveResult", "__version__", "solve_ocp"]
