"""A DDP solve demo of each env: V, Vx at a start state and solve times at horizon T.

An env is a dvp_rl id, or a Gymnasium id with a differentiable twin (:data:`envs.twins.TWINS`),
solved on its twin: every id ``DVP`` accepts. The native reference is the same unicycle problem
built straight from ``crocoddyl.ActionModelUnicycle`` (no env layer), to show what the bridge costs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import crocoddyl
import gymnasium as gym
import numpy as np

import envs
from dvp_rl.control.ocp import ModelSolver, OptimalControlProblem
from envs.base import DifferentiableEnv
from envs.twins import twin_for


def _median_solve_ms(solve, states: np.ndarray) -> tuple[float, float]:
    times, converged = [], 0
    for x0 in states:
        t0 = time.perf_counter()
        ok = solve(x0)
        times.append(time.perf_counter() - t0)
        converged += bool(ok)
    return 1e3 * float(np.median(times)), converged / len(states)


def native_unicycle_solver(horizon: int, env: envs.UnicycleEnv, max_iter: int = 100) -> ModelSolver:
    """The unicycle problem of ``env`` built directly from Crocoddyl's native model."""
    model = crocoddyl.ActionModelUnicycle()
    model.dt = env.dt
    model.costWeights = np.array([env.w_state, env.w_control])
    model.u_lb, model.u_ub = env.action_low.copy(), env.action_high.copy()
    terminal = crocoddyl.ActionModelUnicycle()
    terminal.costWeights = np.array([env.w_terminal, 0.0])
    return ModelSolver([model] * horizon, terminal, max_iter)


def demo_model(env_id: str) -> tuple[DifferentiableEnv, str]:
    """The differentiable env the demo solves for ``env_id`` and how it is named: the env itself
    for a dvp_rl id, the twin of a Gymnasium id with one (the real env's start states, not DVP's
    wider training ones).

    :raises ValueError: an unknown id, or a Gymnasium id without a twin (the message lists those with one)
    """
    env = envs.make(env_id)
    if isinstance(env.unwrapped, DifferentiableEnv):
        return env.unwrapped, env_id
    env.close()
    twin = twin_for(env_id)
    return twin.make().unwrapped, f"{env_id} (solved on its twin {twin.twin_id})"


def run_demo(env_ids: Sequence[str] = envs.ENV_IDS, horizon: int = 50, n_states: int = 30, seed: int = 0) -> dict[str, dict[str, float]]:
    """Solve each env from ``n_states`` sampled states; print V, Vx of the first and the median solve time.

    Returns ``{env_id: {"median_ms": ..., "converged": ...}}`` plus a ``"native unicycle"`` row.

    :raises ValueError: an id that is neither a dvp_rl one nor a Gymnasium one with a twin (before any solve)
    """
    rows: dict[str, dict[str, float]] = {}
    models = {env_id: demo_model(env_id) for env_id in env_ids}
    print(f"DDP (Crocoddyl box-FDDP), horizon T={horizon}, {n_states} start states per env, seed {seed}")
    for env_id, (env, name) in models.items():
        states = env.sample_states(n_states, seed)
        ocp = OptimalControlProblem(env, horizon)
        first = ocp.solve(states[0])
        print(f"\n{name}: x0 = {np.array2string(states[0], precision=3)}")
        print(f"  V(x0) = {first.cost:.6g}   Vx(x0) = {np.array2string(first.Vx, precision=4)}   "
              f"iterations = {first.iterations}   converged = {first.converged}")
        median_ms, rate = _median_solve_ms(lambda x0: ocp.solve(x0).converged, states)
        rows[env_id] = {"median_ms": median_ms, "converged": rate}
    if "dvp_rl/Unicycle-v0" in env_ids:
        env = gym.make("dvp_rl/Unicycle-v0").unwrapped
        solver = native_unicycle_solver(horizon, env)
        states = env.sample_states(n_states, seed)
        median_ms, rate = _median_solve_ms(lambda x0: solver.solve(x0)[1], states)
        rows["native unicycle"] = {"median_ms": median_ms, "converged": rate}
    print(f"\n{'problem':<28}{'median solve (ms)':>18}{'converged':>11}{'x native unicycle':>19}")
    ref = rows.get("native unicycle", {}).get("median_ms")
    for name, row in rows.items():
        ratio = f"{row['median_ms'] / ref:.2f}" if ref else "-"
        print(f"{name:<28}{row['median_ms']:>18.3f}{row['converged']:>11.0%}{ratio:>19}")
    return rows
