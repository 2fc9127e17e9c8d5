"""Value networks fitted to fixed DDP targets, shared by the ``sobolev`` and ``architecture`` experiments.

The targets are the optimal costs and gradients of horizon-``T`` solves with a zero terminal cost
(:func:`solved_dataset`), a fixed function ``V_T`` that needs no DVP iteration. Targets are
divided by :func:`target_scale` before a fit and predictions multiplied back
(:func:`predict`, :func:`network_errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

import envs
from dvp_rl.references.ground_truth import GroundTruth, ValueErrors, value_errors
from dvp_rl.control.pool import SolveSpec, solve_states
from dvp_rl.value.networks import ValueNetwork, make_value_network

#: seed of the fixed validation states (shared by every seed, size, method and network)
VALIDATION_SEED = 10_000
#: seed of the states the networks' feature normalisation is fitted on (a property of the start distribution)
NORMALISATION_SEED = 10_001


class Dataset(NamedTuple):
    """Solved states ``x`` (N, nx) with their optimal cost ``V`` (N,) and its gradient ``Vx`` (N, nx)."""

    x: np.ndarray
    V: np.ndarray
    Vx: np.ndarray

    def head(self, n: int) -> Dataset:
        """The first ``n`` samples."""
        return Dataset(self.x[:n], self.V[:n], self.Vx[:n])

    def scaled(self, scale: float) -> Dataset:
        """The targets divided by ``scale`` (the states unchanged)."""
        return Dataset(self.x, self.V / scale, self.Vx / scale)

    def as_truth(self, horizon: int) -> GroundTruth:
        """This dataset as the reference of :func:`~dvp_rl.references.ground_truth.value_errors`."""
        return GroundTruth(self.x, self.V, self.Vx, np.ones(len(self.x), dtype=bool), horizon, 1.0)


def solved_dataset(env_id: str, states: np.ndarray, horizon: int) -> Dataset:
    """DDP solves (undiscounted, zero terminal, the env's initial guesses) from ``states`` (N, nx); failed ones dropped.

    :raises RuntimeError: no solve converged
    """
    batch = solve_states(SolveSpec(env_id, {}, int(horizon), 1.0, None), np.asarray(states, dtype=np.float64))
    ok = batch.converged
    if not ok.any():
        raise RuntimeError(f"no DDP solve of {env_id} (T={horizon}) converged")
    return Dataset(batch.x0[ok], batch.cost[ok], batch.Vx[ok])


def validation_set(env_id: str, n: int, horizon: int) -> Dataset:
    """``n`` fixed states of the env's start distribution (seed :data:`VALIDATION_SEED`), solved."""
    env = envs.make(env_id).unwrapped
    return solved_dataset(env_id, env.sample_states(int(n), np.random.default_rng(VALIDATION_SEED)), horizon)


def make_network(env_id: str, kind: str, net_arch: Sequence[int], residual_dim: int, seed: int) -> ValueNetwork:
    """A ``kind`` network of the env's state (``residual_dim`` for a Gauss-residual one) initialised
    from ``seed``, features normalised on the env's start distribution (seed :data:`NORMALISATION_SEED`)."""
    env = envs.make(env_id).unwrapped
    torch.manual_seed(seed)
    kwargs = {"net_arch": tuple(net_arch), "angle_dims": env.angle_dims}
    if kind == "gauss_residual":
        kwargs["residual_dim"] = residual_dim
    net = make_value_network(kind, env.nx, **kwargs)
    net.fit_normalisation(env.sample_states(1000, np.random.default_rng(NORMALISATION_SEED)))
    return net


def target_scale(data: Dataset) -> float:
    """The unit targets are divided by before a fit: the mean absolute training value."""
    return float(max(np.mean(np.abs(data.V)), 1e-12))


def predict(net: ValueNetwork, x: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``(V (N,), Vx (N, nx))`` of ``scale * net`` at ``x`` (N, nx)."""
    V, Vx = net.value_and_gradient(torch.as_tensor(x, dtype=torch.float64), create_graph=False)
    return scale * V.detach().numpy(), scale * Vx.detach().numpy()


def network_errors(net: ValueNetwork, scale: float, reference: Dataset, horizon: int) -> ValueErrors:
    """Errors of ``scale * net`` against ``reference`` (:func:`~dvp_rl.references.ground_truth.value_errors`)."""
    V, Vx = predict(net, reference.x, scale)
    return value_errors(reference.as_truth(horizon), V, Vx)
