"""DVP on the linear-quadratic env against the infinite-horizon discounted Riccati solution.

The horizon (T=5 at gamma=0.8) truncates 0.8^5 = 33% of the cost; each iteration extends the
effective horizon by T. Prints the relative RMS error of V and Vx after every iteration on 200
states, against ``scipy.linalg.solve_discrete_are`` (the same set-up as
``tests/test_agent.py::test_learned_value_matches_discounted_riccati_on_the_lq_env``).

    python benchmarks/lq_riccati.py [--iterations 6]
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg
import torch

from dvp_rl.agent import DVP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--gamma", type=float, default=0.8)
    parser.add_argument("--horizon", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = DVP("dvp_rl/LinearQuadratic-v0", horizon=args.horizon, gamma=args.gamma, n_samples=300, fit={"max_epochs": 200}, seed=0,
                checkpoint_dir=None, n_workers=1)
    env = agent.system
    root = np.sqrt(args.gamma)
    P = scipy.linalg.solve_discrete_are(root * env.A, root * env.B, env.Q, env.R)
    X = env.sample_states(200, 1)
    V_star, Vx_star = 0.5 * np.einsum("ni,ij,nj->n", X, P, X), X @ P

    def rel(v: np.ndarray, ref: np.ndarray) -> float:
        return float(np.sqrt(np.mean((v - ref) ** 2) / np.mean(ref**2)))

    print(f"iteration  rel.RMS(V)  rel.RMS(Vx)   (vs solve_discrete_are, T={args.horizon}, gamma={args.gamma}, 200 states)")
    for i in range(args.iterations):
        agent.learn(1, reset_num_timesteps=(i == 0))
        V, Vx, _ = agent.value_derivatives(X)
        print(f"{agent.iteration:9d}  {rel(V, V_star):10.2e}  {rel(Vx, Vx_star):11.2e}")


if __name__ == "__main__":
    main()
