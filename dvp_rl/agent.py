"""The DVP agent: Differential Value Programming with the Stable-Baselines3 interface."""

from __future__ import annotations

import inspect
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import HParam, Logger, configure
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import envs
from dvp_rl.checkpoint import CheckpointError, check_contents, jsonable, read_checkpoint, write_checkpoint
from dvp_rl.control.mpc import MPCController
from dvp_rl.control.search import FirstStepSearch
from dvp_rl.control.ocp import BatchSolveResult, OptimalControlProblem, unwrap
from dvp_rl.control.pool import LostSolve, ParallelConfig, SolverPool, SolveSpec, solve_states
from dvp_rl.value.sobolev import FitConfig, FitResult, SobolevWeights, fit_value_network
from dvp_rl.value.arrays import NetworkArrays, numpy_value, numpy_value_derivatives
from dvp_rl.value.networks import ValueNetwork, make_value_network
from envs.base import DifferentiableEnv, wrap_angles
from envs.twins import Twin, twin_for

#: constructor arguments saved with the agent (everything but env, logging and device)
HYPERPARAMETERS = (
    "horizon", "n_samples", "gamma", "value_net", "net_arch", "residual_dim", "sobolev_weights", "learning_rate",
    "batch_size", "max_epochs", "patience", "polish_steps", "validation_fraction", "n_validation", "final_state_fraction", "anchor_goal", "initial_terminal", "mpc_horizon",
    "mpc_kwargs", "mpc_env_kwargs", "max_iter", "th_stop", "seed",
)  # fmt: skip


#: ``mpc_kwargs`` of the first-step search (:class:`dvp_rl.control.search.FirstStepSearch`'s ``steps``, ``reverse_steps``, ``rollout``)
SEARCH_KEYS = ("prefix_steps", "prefix_reverse_steps", "prefix_rollout")


class SolvedDataset(NamedTuple):
    """What one iteration's collection gives the fit: the converged solves' start states ``x``
    (N, nx) and targets ``V`` (N,), ``Vx`` (N, nx), ``Vxx`` (N, nx, nx) (relative to the anchor),
    with the counts of the iteration's log: ``n_final`` start states drawn from plan ends,
    ``n_failed`` unconverged and ``n_lost`` lost solves, ``anchor`` (the value subtracted),
    ``mean_iterations`` of the converged solves and ``solve_s`` seconds spent."""

    x: np.ndarray
    V: np.ndarray
    Vx: np.ndarray
    Vxx: np.ndarray
    n_solved: int
    n_final: int
    n_failed: int
    n_lost: int
    anchor: float
    mean_iterations: float
    solve_s: float


class DVP:
    """Differential Value Programming (Parag, Kleff, Saci, Mansard, Stasse, ICRA 2022).

    Each iteration samples start states, solves a horizon-``T`` problem from each with
    DDP (Crocoddyl), whose terminal cost is the value network of the previous iteration
    (zero, or the env's terminal cost, at the first), and fits the network to the optimal
    costs ``V`` and their gradients ``Vx`` with a Sobolev loss. Iteration ``i`` thus sees an
    effective horizon of ``(i + 1) T``. ``predict`` runs model-predictive control with the
    learned value as terminal cost.

    :param env: a dvp_rl env id (``"dvp_rl/Unicycle-v0"``) or an env made with ``gymnasium.make``
    :param horizon: DDP horizon ``T`` (running nodes)
    :param n_samples: start states solved per iteration
    :param gamma: discount (node k weighted by ``gamma**k``); 1.0 in the paper's experiments
    :param value_net: ``"gauss_residual"`` (``V = ||r||^2``, Gauss-Newton Hessian) or ``"feed_forward"``
    :param net_arch: hidden widths of the tanh MLP (paper: 3 x 64)
    :param residual_dim: size of the residual ``r`` (Gauss-residual only; paper: 3)
    :param sobolev_weights: ``SobolevWeights``, a dict, or a ``(value, gradient[, hessian])`` tuple
    :param learning_rate: Adam learning rate
    :param batch_size: minibatch size of the fit
    :param max_epochs: epoch budget of each fit
    :param patience: early-stopping patience (epochs without a better validation loss)
    :param polish_steps: full-batch L-BFGS iterations after Adam in each fit (0: none)
    :param validation_fraction: share of each dataset held out for early stopping
    :param n_validation: fixed states on which the Bellman residual is measured
    :param final_state_fraction: share of each iteration's start states drawn from the previous
        iteration's plan end states ``x_T`` (where the DDP evaluates the network as terminal cost),
        the rest from ``env.sample_states``; it keeps the network accurate where plans end
        (docs/REPRODUCTION.md shows the error at the goal growing without it)
    :param anchor_goal: relative value iteration: subtract from every value target of an iteration
        the value, under the same terminal network, of ``env.unwrapped.goal_state`` (a zero-cost
        equilibrium, where the optimal value is 0), when the env defines one. Without it an error
        ``c`` of the network at the goal, where plans end, re-enters every later target as ``+c``
        (the undiscounted Bellman operator fixes the value only up to a constant). No effect at
        the first iteration (no network yet).
    :param initial_terminal: terminal cost of the first iteration: ``"zero"`` or ``"env"``
    :param mpc_horizon: horizon of ``predict``'s MPC (default: ``horizon``)
    :param mpc_kwargs: more :class:`dvp_rl.control.mpc.MPCController` settings of ``predict``'s controller
        (``guesses``, ``guess_margin``, the ``prefix_*`` search, ``max_iter``, ``th_stop``, ``retry_cold``;
        by default ``max_iter`` and ``th_stop`` are the training solves')
    :param mpc_env_kwargs: arguments of the env the controller plans with, over those of the env
        DVP learns on (e.g. ``{"rk_order": 2}``: a MuJoCo twin's cheaper integrator, for faster
        control steps); the model must have the same states and controls. Default: the same env
    :param max_iter: DDP iteration budget per solve
    :param th_stop: DDP stopping threshold
    :param n_workers: processes solving in parallel (``None``: all cores, or all CPUs of the Ray
        cluster; 1 with the local backend and no timeout: in this process)
    :param parallel: where the solves run (:class:`dvp_rl.control.pool.ParallelConfig`: ``"local"``
        forked processes or ``"ray"`` tasks, the Ray cluster, a per-solve timeout); the dataset of
        a seed is the same either way. A solve past the timeout, or one whose worker dies, is
        counted in ``ddp/lost_solves`` and its state resampled from the env's distribution
    :param env_kwargs: keyword arguments of ``gymnasium.make`` when ``env`` is an id
    :param seed: seeds sampling, the network's initialisation and the fits
    :param device: torch device of the fit (``"auto"``: CPU, measured faster for these nets)
    :param tensorboard_log: folder of tensorboard runs (``{tensorboard_log}/{tb_log_name}_{N}``)
    :param checkpoint_dir: where ``learn`` writes ``dvp_checkpoint.zip`` after every iteration
        (``"auto"``: the logger's folder when there is one; ``None``: no checkpoints)
    :param verbose: 0 silent, 1 training logs on stdout
    """

    def __init__(
        self,
        env: str | gym.Env,
        horizon: int = 50,
        n_samples: int = 1000,
        gamma: float = 1.0,
        value_net: str = "gauss_residual",
        net_arch: Sequence[int] = (64, 64, 64),
        residual_dim: int = 3,
        sobolev_weights: SobolevWeights | dict | Sequence[float] = (1.0, 1.0),
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 300,
        patience: int = 30,
        polish_steps: int = 200,
        validation_fraction: float = 0.2,
        n_validation: int = 200,
        final_state_fraction: float = 0.25,
        anchor_goal: bool = True,
        initial_terminal: str = "zero",
        mpc_horizon: int | None = None,
        mpc_kwargs: dict[str, Any] | None = None,
        mpc_env_kwargs: dict[str, Any] | None = None,
        max_iter: int = 300,
        th_stop: float = 1e-9,
        n_workers: int | None = None,
        parallel: ParallelConfig | None = None,
        env_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        device: str = "auto",
        tensorboard_log: str | None = None,
        checkpoint_dir: str | None = "auto",
        verbose: int = 0,
    ) -> None:
        self.twin: Twin | None = None
        if isinstance(env, str):
            self.env = envs.make(env, env_kwargs)
            env_id, kwargs = env, dict(env_kwargs or {})
        else:
            spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", env), "spec", None)
            if spec is None:
                raise ValueError("DVP rebuilds the env in its solvers from env.spec: make it with gymnasium.make(id, **kwargs)")
            self.env = env
            env_id, kwargs = spec.id, {**dict(spec.kwargs), **dict(env_kwargs or {})}
        if isinstance(self.env.unwrapped, DifferentiableEnv):
            self.env_id, self.env_kwargs = env_id, kwargs
            self.system = unwrap(self.env)
        else:  # a Gymnasium env of its own: train on its differentiable twin, act in it
            if env_kwargs and not isinstance(env, str):
                raise ValueError("env_kwargs go with an env id; the twin of an env instance takes its arguments from the env")
            self.twin = twin_for(self.env)
            self.real_env_id, self.real_env_kwargs = env_id, kwargs
            self.env_id, self.env_kwargs = self.twin.twin_id, {**self.twin.twin_kwargs, **self.twin.training_kwargs}
            self.system = unwrap(envs.make(self.env_id, self.env_kwargs))
        if initial_terminal not in ("zero", "env"):
            raise ValueError(f"initial_terminal must be 'zero' or 'env', got {initial_terminal!r}")
        self.horizon = _integer("horizon", horizon, 1)
        self.n_samples = _integer("n_samples", n_samples, 10)
        self.gamma = float(gamma)
        self.value_net = value_net
        self.net_arch = tuple(int(w) for w in net_arch)
        self.residual_dim = int(residual_dim)
        self.sobolev_weights = _as_weights(sobolev_weights)
        self.learning_rate = float(learning_rate)
        self.batch_size = _integer("batch_size", batch_size, 1)
        self.max_epochs = _integer("max_epochs", max_epochs, 1)
        self.patience = _integer("patience", patience, 1)
        self.polish_steps = _integer("polish_steps", polish_steps, 0)
        self.validation_fraction = float(validation_fraction)
        self.n_validation = _integer("n_validation", n_validation, 1)
        if not 0.0 <= float(final_state_fraction) < 1.0:
            raise ValueError(f"final_state_fraction must be in [0, 1), got {final_state_fraction}")
        self.final_state_fraction = float(final_state_fraction)
        self.anchor_goal = bool(anchor_goal)
        self._goal = checked_goal(self.system) if self.anchor_goal else None
        self.initial_terminal = initial_terminal
        self.mpc_horizon = _integer("mpc_horizon", mpc_horizon, 1) if mpc_horizon is not None else self.horizon
        self.mpc_kwargs = dict(mpc_kwargs or {})
        for key in ("guesses", "prefix_steps", "prefix_reverse_steps"):
            if key in self.mpc_kwargs:
                self.mpc_kwargs[key] = tuple(self.mpc_kwargs[key])  # JSON gives lists back
        self.mpc_env_kwargs = dict(mpc_env_kwargs or {})
        self._mpc_system = self._planning_system()
        self.max_iter = _integer("max_iter", max_iter, 1)
        if not (math.isfinite(float(th_stop)) and float(th_stop) > 0):
            raise ValueError(f"th_stop must be finite and > 0, got {th_stop}")
        self.th_stop = float(th_stop)
        self.parallel = ParallelConfig.resolve(n_workers, parallel)
        self.seed = seed
        self.device = torch.device("cpu" if device == "auto" else device)
        self.tensorboard_log = tensorboard_log
        self.checkpoint_dir = checkpoint_dir
        self.verbose = int(verbose)
        OptimalControlProblem(self.system, self.horizon, self.gamma)  # validates horizon and gamma early
        self.fit_config()  # validates the fit's settings now, not at the first fit

        self.iteration = 0
        self.num_timesteps = 0
        self.failed_solves = 0
        self.lost_solves = 0
        self._logger: Logger | None = None
        self._custom_logger = False
        self._vec_env: VecEnv | None = None
        self._controller: MPCController | None = None  # predict's, rebuilt after every iteration
        self._controller_iteration = -1
        self._checkpoint_file: Path | None = None  # set by load(): where learn() goes on checkpointing
        self._setup_model()
        self.controller()  # validates the controller's settings now, not at the first predict

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        if self.seed is not None:
            torch.manual_seed(self.seed)
        kwargs: dict[str, Any] = {"net_arch": self.net_arch, "angle_dims": self.system.angle_dims}
        if self.value_net == "gauss_residual":
            kwargs["residual_dim"] = self.residual_dim
        self.policy_net: ValueNetwork = make_value_network(self.value_net, self.system.nx, **kwargs).to(self.device)
        self.policy_net.fit_normalisation(self.system.sample_states(max(1000, self.n_samples), self._rng))
        self._validation_states = self.system.sample_states(self.n_validation, self._rng)
        self._validation_values: np.ndarray | None = None
        self._final_states: np.ndarray | None = None  # the last iteration's plan end states x_T
        self._arrays = self.policy_net.export()

    @property
    def logger(self) -> Logger:
        """The SB3 logger (stdout when ``verbose``; tensorboard when ``tensorboard_log``)."""
        if self._logger is None:
            self._logger = configure(None, ["stdout"] if self.verbose else [])
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use a custom SB3 logger (e.g. ``configure(folder, ["stdout", "csv", "tensorboard"])``)."""
        self._logger = logger
        self._custom_logger = True

    def get_env(self) -> VecEnv:
        """The env as a one-env ``VecEnv`` (what SB3 callbacks expect as ``training_env``)."""
        if self._vec_env is None:
            self._vec_env = DummyVecEnv([lambda: envs.make(*self._user_env())])
        return self._vec_env

    def _user_env(self) -> tuple[str, dict[str, Any]]:
        """The id and ``gymnasium.make`` arguments of the env the agent acts in (the real env of a twin)."""
        return (self.real_env_id, self.real_env_kwargs) if self.twin is not None else (self.env_id, self.env_kwargs)

    @property
    def n_workers(self) -> int | None:
        """Solver processes (or Ray tasks) of ``learn`` (``parallel.n_workers``)."""
        return self.parallel.n_workers

    @property
    def value_arrays(self) -> NetworkArrays:
        """The current value network, exported (numpy arrays; what the DDP evaluates)."""
        return self._arrays

    def fit_config(self) -> FitConfig:
        """The settings of each iteration's Sobolev fit, from the constructor arguments."""
        return FitConfig(
            weights=self.sobolev_weights, learning_rate=self.learning_rate, batch_size=self.batch_size, max_epochs=self.max_epochs,
            patience=self.patience, validation_fraction=self.validation_fraction, polish_steps=self.polish_steps, device=str(self.device),
        )  # fmt: skip

    def _solve_spec(self) -> SolveSpec:
        if self.iteration == 0:
            terminal = None if self.initial_terminal == "zero" else "env"
        else:
            terminal = self._arrays
        return SolveSpec(self.env_id, self.env_kwargs, self.horizon, self.gamma, terminal, self.max_iter, self.th_stop)

    # ------------------------------------------------------------------ learning
    def learn(
        self,
        total_iterations: int,
        callback: BaseCallback | list[BaseCallback] | Any = None,
        log_interval: int = 1,
        tb_log_name: str = "DVP",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> "DVP":
        """Run ``total_iterations`` DVP iterations; returns ``self``.

        :param callback: SB3 callback(s), called once per iteration (returning False stops)
        :param log_interval: dump the logs every ``log_interval`` iterations
        :param reset_num_timesteps: start the counters (and a new tensorboard run) afresh;
            ``False`` continues a loaded checkpoint where it stopped
        :param progress_bar: show a progress bar over the solves of each iteration
        """
        if int(total_iterations) < 1:
            raise ValueError(f"total_iterations must be >= 1, got {total_iterations}")
        if reset_num_timesteps:
            self.num_timesteps = 0
        if not self._custom_logger:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback = self._init_callback(callback)
        self._record_hparams()
        checkpoint = self._checkpoint_path()
        pool = self.parallel.make_pool()
        callback.on_training_start(locals(), globals())
        try:
            for _ in range(int(total_iterations)):
                self._iterate(pool, progress_bar)
                if checkpoint is not None:
                    self.save(checkpoint)
                keep_going = callback.on_step()  # before the dump, so eval/* lands in this iteration's row
                if self.iteration % max(1, log_interval) == 0:
                    self.logger.dump(self.num_timesteps)
                if not keep_going:
                    break
        finally:
            if pool is not None:
                pool.close()
        callback.on_training_end()
        return self

    def _init_callback(self, callback: Any) -> BaseCallback:
        if isinstance(callback, list):
            callback = CallbackList(callback)
        elif callback is None:
            callback = CallbackList([])
        elif not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        callback.init_callback(self)  # type: ignore[arg-type]
        return callback

    def _record_hparams(self) -> None:
        hparams = {k: jsonable(v) for k, v in self.hyperparameters().items()}
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in hparams.items()}
        hparams["env_id"] = self.env_id
        metrics = {"dvp/bellman_residual": 0.0, "train/value_loss": 0.0}
        self.logger.record("hparams", HParam(hparams, metrics), exclude=("stdout", "log", "json", "csv"))

    def _checkpoint_path(self) -> Path | None:
        if self._checkpoint_file is not None:  # loaded: keep writing the checkpoint it came from
            return self._checkpoint_file
        if self.checkpoint_dir is None:
            return None
        if self.checkpoint_dir == "auto":
            folder = self.logger.get_dir()
            return None if folder is None else Path(folder) / "dvp_checkpoint.zip"
        return Path(self.checkpoint_dir) / "dvp_checkpoint.zip"

    def _iterate(self, pool: SolverPool | None, progress_bar: bool) -> FitResult:
        """One DVP iteration: :meth:`collect` a solved dataset, then :meth:`train` on it."""
        t_start = time.perf_counter()
        dataset = self.collect(pool, progress_bar)
        return self.train(dataset, t_start)

    def collect(self, pool: SolverPool | None = None, progress_bar: bool = False) -> SolvedDataset:
        """Sample this iteration's start states, solve them with DDP (terminal: the current
        network) and return the converged solves as a dataset (targets relative to the anchor).

        :param pool: the workers (``None``: solve in this process)
        :raises RuntimeError: fewer than 10 solves converged
        """
        t_start = time.perf_counter()
        states, n_final = self._start_states()
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(states), desc=f"DVP iteration {self.iteration + 1} solves", unit="solve", leave=False)
        lost: list[LostSolve] = []
        try:
            batch = solve_states(
                self._solve_spec(),
                states,
                pool,
                progress=None if bar is None else bar.update,
                resample=lambda k: self.system.sample_states(k, self._rng),
                on_lost=lost.append,
            )
        finally:
            if bar is not None:
                bar.close()
        states = batch.x0  # lost states were replaced by fresh ones
        self.lost_solves += len(lost)
        ok = batch.converged
        if ok.any():
            self._final_states = wrap_angles(batch.x_final[ok], self.system.angle_dims)
        n_failed = int((~ok).sum())
        self.failed_solves += n_failed
        self.num_timesteps += int(batch.n_transitions.sum())
        if ok.sum() < 10:
            if lost:
                reasons = sorted({lost_solve.reason for lost_solve in lost})
                raise RuntimeError(
                    f"only {int(ok.sum())} of {len(states)} DDP solves converged at iteration {self.iteration + 1}: {len(lost)} solves "
                    f"were lost ({'; '.join(reasons[:3])}{'; ...' if len(reasons) > 3 else ''}); raise the solve timeout "
                    "(parallel=ParallelConfig(solve_timeout=...)) or find why the workers die"
                )
            raise RuntimeError(
                f"only {int(ok.sum())} of {len(states)} DDP solves converged at iteration {self.iteration + 1}; "
                "raise max_iter or check the env's cost and bounds"
            )
        anchor = self._anchor_value()
        solved = BatchSolveResult(*(field[ok] for field in batch))
        V, Vx, Vxx = self._targets(states[ok], solved._replace(cost=solved.cost - anchor))
        return SolvedDataset(states[ok], V, Vx, Vxx, len(states), n_final, n_failed, len(lost), anchor,
                             float(batch.iterations[ok].mean()), time.perf_counter() - t_start)  # fmt: skip

    def train(self, dataset: SolvedDataset, t_start: float | None = None) -> FitResult:
        """Fit the network to a collected dataset (Sobolev loss), export it, measure and log the iteration.

        :param t_start: ``perf_counter()`` when the iteration began (for ``time/iteration``)
        """
        t_fit = time.perf_counter()
        t_start = t_fit - dataset.solve_s if t_start is None else t_start
        config = self.fit_config()
        hessian = config.weights.hessian > 0
        result = fit_value_network(self.policy_net, dataset.x, dataset.V, dataset.Vx, dataset.Vxx if hessian else None,
                                   config, seed=int(self._rng.integers(2**31)))  # fmt: skip
        self._arrays = self.policy_net.export()
        t_fitted = time.perf_counter()
        values = np.asarray(numpy_value(self._arrays, self._validation_states))
        residual = float(np.mean((values - self._validation_values) ** 2)) if self._validation_values is not None else float("nan")
        self._validation_values = values
        self.iteration += 1

        log = self.logger.record
        log("train/iteration", self.iteration)
        log("train/value_loss", result.value_loss)
        log("train/gradient_loss", result.gradient_loss)
        if hessian:
            log("train/hessian_loss", result.hessian_loss)
        log("train/epochs", result.epochs)
        log("dvp/bellman_residual", residual)
        log("dvp/effective_horizon", self.iteration * self.horizon)
        log("dvp/final_state_samples", dataset.n_final)
        if self._goal is not None:
            log("dvp/anchor_value", dataset.anchor)
        log("ddp/mean_iterations", dataset.mean_iterations)
        log("ddp/failed_solves", dataset.n_failed)
        log("ddp/lost_solves", dataset.n_lost)
        log("time/solve_s", dataset.solve_s)
        log("time/fit_s", t_fitted - t_fit)
        log("time/iteration", time.perf_counter() - t_start)
        log("time/solves_per_s", dataset.n_solved / max(dataset.solve_s, 1e-9))
        log("time/total_timesteps", self.num_timesteps)
        return result

    def _start_states(self) -> tuple[np.ndarray, int]:
        """This iteration's start states (n_samples, nx) and how many of them are previous plan ends."""
        n_final = 0
        if self._final_states is not None and len(self._final_states):
            n_final = int(round(self.final_state_fraction * self.n_samples))
        fresh = self.system.sample_states(self.n_samples - n_final, self._rng)
        if n_final == 0:
            return fresh, 0
        picks = self._rng.choice(len(self._final_states), n_final, replace=len(self._final_states) < n_final)
        return np.concatenate([fresh, self._final_states[picks]]), n_final

    def _anchor_value(self) -> float:
        """The value subtracted from this iteration's targets (see ``anchor_goal``): the lower of two
        plan costs from the goal under the current terminal, holding still (``gamma^T V_net(goal)``)
        and the DDP's solution when it converges; 0 without a goal or before the first fit."""
        if self._goal is None or self.iteration == 0:
            return 0.0
        hold = self.gamma**self.horizon * float(numpy_value(self._arrays, self._goal[None])[0])
        solve = solve_states(self._solve_spec(), self._goal[None])
        self.num_timesteps += int(solve.n_transitions.sum())
        return min(hold, float(solve.cost[0])) if solve.converged[0] else hold

    def _targets(self, states: np.ndarray, batch: BatchSolveResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Regression targets ``(V (N,), Vx (N, nx), Vxx (N, nx, nx))`` of this iteration's fit.

        ``states`` and ``batch`` hold the converged solves only. The DDP's own values here;
        override to transform the dataset (``dvp_rl.experiments.noise`` perturbs the first
        iteration's targets).
        """
        return batch.cost, batch.Vx, batch.Vxx

    # ------------------------------------------------------------------ inference
    def _check_observation(self, observation: Any) -> tuple[np.ndarray, bool]:
        """States (n, nx) of observations (n_obs,) or (n, n_obs) of the env the agent acts in, and
        whether one observation was given (a twin's map checks that each lies in its domain)."""
        if self.twin is None:
            return self._check_states(observation, "observation", "n_envs")
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        return np.atleast_2d(self.twin.observation_to_state(obs)), single

    def _check_states(self, states: Any, what: str = "states", batch: str = "n") -> tuple[np.ndarray, bool]:
        """States (n, nx) of ``states`` (nx,) or (n, nx), finite, and whether one state was given
        (``what`` and ``batch`` name the argument and its batch size in the errors)."""
        x = np.asarray(states, dtype=np.float64)
        nx = self.system.nx
        if x.shape == (nx,):
            single = True
            x = x[None]
        elif x.ndim == 2 and x.shape[1] == nx:
            single = False
        else:
            raise ValueError(f"{what} must have shape ({nx},) or ({batch}, {nx}), got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{what} must be finite, got {states}")
        return x, single

    def controller(self, horizon: int | None = None, **kwargs: Any) -> MPCController | FirstStepSearch:
        """A new MPC controller with the current learned value as terminal cost (what ``predict`` runs).

        :param horizon: planning horizon (default ``mpc_horizon``)
        :param kwargs: other :class:`dvp_rl.control.mpc.MPCController` arguments (``max_iter``,
            ``th_stop``, ``retry_cold``, ``guesses``, ``guess_margin``, ...) and the first-step search's
            (``prefix_steps``, ``prefix_reverse_steps``, ``prefix_rollout``: a
            :class:`~dvp_rl.control.search.FirstStepSearch` wraps the controller), by default the agent's ``mpc_kwargs``
        """
        terminal = self._arrays if self.iteration > 0 else None
        settings = {"gamma": self.gamma, "max_iter": self.max_iter, "th_stop": self.th_stop, **self.mpc_kwargs, **kwargs}
        if terminal is None:  # before the first iteration there is no value to compare plans with
            settings.pop("guess_margin", None)
        search = {key: settings.pop(key) for key in SEARCH_KEYS if key in settings}
        unknown = sorted(set(settings) - set(inspect.signature(MPCController).parameters))
        if unknown:
            raise ValueError(f"unknown MPC controller settings {unknown} (mpc_kwargs); MPCController takes "
                             f"{sorted(set(inspect.signature(MPCController).parameters) - {'env', 'horizon', 'terminal'})} "
                             f"and FirstStepSearch {sorted(SEARCH_KEYS)}")  # fmt: skip
        controller = MPCController(self._mpc_system, self.mpc_horizon if horizon is None else horizon, terminal, **settings)
        if search.get("prefix_steps"):
            return FirstStepSearch(controller, search["prefix_steps"], search.get("prefix_rollout", 60), search.get("prefix_reverse_steps", ()))
        if search.get("prefix_reverse_steps"):
            raise ValueError("prefix_reverse_steps follow the pushes of prefix_steps: give prefix_steps too")
        return controller

    def _planning_system(self) -> DifferentiableEnv:
        """The model :meth:`controller` plans with: the training env, or it made with ``mpc_env_kwargs`` over its arguments."""
        if not self.mpc_env_kwargs:
            return self.system
        system = unwrap(envs.make(self.env_id, {**self.env_kwargs, **self.mpc_env_kwargs}))
        if (system.nx, system.nu) != (self.system.nx, self.system.nu):
            raise ValueError(f"mpc_env_kwargs {self.mpc_env_kwargs} make a model with (nx, nu) = {(system.nx, system.nu)}, "
                             f"not the {(self.system.nx, self.system.nu)} of {self.env_id}")  # fmt: skip
        return system

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """MPC action(s): solve from each observation with the learned terminal value, apply the first control.

        Runs :meth:`controller`'s :class:`~dvp_rl.control.mpc.MPCController` (rebuilt after every
        iteration): warm-started from the previous call's plan (shifted by one step) for each
        env index; ``episode_start[i]`` drops that warm start. ``state`` is unused (no recurrent state).

        :param observation: observation(s) of the env the agent acts in, (n_obs,) or (n_envs, n_obs):
            the state itself for a dvp_rl env, the real env's observation for a twin (e.g.
            Pendulum-v1's ``(cos th, sin th, thdot)``, mapped to the twin's state)
        :return: ``(action, None)`` with ``action`` (nu,) or (n_envs, nu), ``float32``, inside the action space
        :raises ValueError: an observation of the wrong shape, not finite or outside the twin's domain
        """
        obs, single = self._check_observation(observation)
        if self._controller is None or self._controller_iteration != self.iteration:
            self._controller, self._controller_iteration = self.controller(), self.iteration
        actions = self._controller.predict(obs, episode_start).astype(np.float32)
        return (actions[0] if single else actions), None

    def value(self, states: np.ndarray) -> np.ndarray:
        """Learned ``V`` of states (N, nx) -> (N,) (or a float for one state (nx,)); states of the
        differentiable env (the twin's, for a Gymnasium env with a twin)."""
        obs, single = self._check_states(states)
        V = np.asarray(numpy_value(self._arrays, obs))
        return V[0] if single else V

    def value_derivatives(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(V (N,), Vx (N, nx), Vxx (N, nx, nx))`` of the learned value (Gauss-Newton Hessian for Gauss-residual)."""
        obs, single = self._check_states(states)
        d = numpy_value_derivatives(self._arrays, obs)
        if single:
            return d.V[0], d.Vx[0], d.Vxx[0]
        return d.V, d.Vx, d.Vxx

    # ------------------------------------------------------------------ persistence
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments that define the algorithm (JSON-serialisable)."""
        return {k: jsonable(getattr(self, k)) for k in HYPERPARAMETERS}

    def save(self, path: str | os.PathLike) -> Path:
        """Save to one zip (hyper-parameters as JSON, the network's state dict, training state); atomic."""
        data = {
            "class": type(self).__name__,
            "env_id": self.env_id,
            "env_kwargs": jsonable(self.env_kwargs),
            "real_env": None if self.twin is None else {"id": self.real_env_id, "kwargs": jsonable(self.real_env_kwargs)},
            "parallel": jsonable(asdict(self.parallel)),
            "hyperparameters": self.hyperparameters(),
            "net_config": self.policy_net.config | ({"residual_dim": self.residual_dim} if self.value_net == "gauss_residual" else {}),
            "iteration": self.iteration,
            "num_timesteps": self.num_timesteps,
            "failed_solves": self.failed_solves,
            "lost_solves": self.lost_solves,
            "rng_state": self._rng.bit_generator.state,
        }
        arrays = {"validation_states": self._validation_states}
        if self._validation_values is not None:
            arrays["validation_values"] = self._validation_values
        if self._final_states is not None:
            arrays["final_states"] = self._final_states
        return write_checkpoint(path, jsonable(data), self.policy_net.state_dict(), arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, env: str | gym.Env | None = None, allow_module_import: bool = False, **kwargs: Any) -> "DVP":
        """Load a saved agent; ``env`` defaults to the saved env id and kwargs; ``kwargs`` override settings
        such as ``n_workers``, ``parallel``, ``tensorboard_log``, ``checkpoint_dir``, ``device``, ``verbose``.

        The execution settings (``parallel``) are those saved unless ``n_workers`` or ``parallel``
        is given. ``learn`` goes on writing its checkpoint to ``path`` (so a resumed run keeps
        protecting its iterations) unless ``checkpoint_dir`` is given.

        Nothing in the file runs code: an env id of Gymnasium's ``"module:id"`` form, which imports
        ``module``, is refused unless ``allow_module_import`` (trust the file first).

        :raises dvp_rl.checkpoint.CheckpointError: a missing, corrupt, truncated, damaged (NaN
            weights, arrays of the wrong shape) or incompatible file, naming the problem
        """
        data, state_dict, arrays = read_checkpoint(path)
        if data.get("class") != cls.__name__:
            raise CheckpointError(f"{path} holds a {data.get('class')!r}, not a {cls.__name__}")
        real = data.get("real_env")
        try:
            saved_id, saved_kwargs = (real["id"], real["kwargs"]) if real else (data["env_id"], data.get("env_kwargs"))
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} is damaged: its real_env entry is not {{'id', 'kwargs'}} ({exc})") from exc
        if env is None and not allow_module_import and ":" in str(saved_id):
            raise CheckpointError(
                f"{path} names the env {saved_id!r}, which would import the module {str(saved_id).split(':')[0]!r}; "
                "pass allow_module_import=True if you trust the file, or env=... to load it into an env you made"
            )
        if "n_workers" not in kwargs and "parallel" not in kwargs and isinstance(data.get("parallel"), dict):
            try:
                kwargs["parallel"] = ParallelConfig(**data["parallel"])
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"{path} is damaged: its parallel settings {data['parallel']!r} are invalid ({exc})") from exc
        try:
            hyper = dict(data["hyperparameters"])
            hyper["net_arch"] = tuple(hyper["net_arch"])
            env_arg = env if env is not None else saved_id
            env_kwargs = saved_kwargs if isinstance(env_arg, str) else None
            agent = cls(env_arg, env_kwargs=env_kwargs, **{**hyper, **kwargs})
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} is incompatible with this env or dvp_rl version ({type(exc).__name__}: {exc})") from exc
        if agent.env_id != data["env_id"]:
            raise CheckpointError(f"{path} was trained on {data['env_id']!r}, not {agent.env_id!r}")
        check_contents(state_dict, arrays, agent.system.nx, source=path)
        net = data.get("net_config") or {}
        saved_net = (net.get("kind"), net.get("nx"), tuple(net.get("angle_dims", ())))
        expected = (agent.value_net, agent.system.nx, tuple(agent.system.angle_dims))
        if saved_net != expected:
            raise CheckpointError(
                f"{path}'s network (kind, nx, angle_dims) = {saved_net} does not fit {agent.env_id}, which needs {expected}: "
                "the file was edited or belongs to another env"
            )
        try:
            agent.policy_net.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}'s network does not fit its hyper-parameters ({exc})") from exc
        agent.iteration = int(data["iteration"])
        agent.num_timesteps = int(data["num_timesteps"])
        agent.failed_solves = int(data.get("failed_solves", 0))
        agent.lost_solves = int(data.get("lost_solves", 0))
        try:
            agent._rng.bit_generator.state = data["rng_state"]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} is damaged: its rng_state is not a {type(agent._rng.bit_generator).__name__} state ({exc})") from exc
        agent._validation_states = arrays["validation_states"]
        agent._validation_values = arrays.get("validation_values")
        if agent._validation_values is not None and agent._validation_values.shape != (len(agent._validation_states),):
            raise CheckpointError(f"{path} is damaged: validation_values has shape {agent._validation_values.shape}, "
                                  f"expected ({len(agent._validation_states)},)")  # fmt: skip
        agent._final_states = arrays.get("final_states")
        agent._arrays = agent.policy_net.export()
        if "checkpoint_dir" not in kwargs:
            agent._checkpoint_file = Path(path)
        return agent


def checked_goal(system: Any) -> np.ndarray | None:
    """``system.goal_state`` as an array (nx,), checked to be a zero-cost equilibrium; ``None`` if the env has none.

    :raises ValueError: when the state has the wrong shape, is not finite, moves under zero
        control, or costs anything (running or terminal)
    """
    goal = getattr(system, "goal_state", None)
    if goal is None:
        return None
    name = type(system).__name__
    goal = system.check_state(goal, "goal_state")  # float64, shape (nx,), finite
    u = np.zeros(system.nu)
    drift = float(np.max(np.abs(system.dynamics(goal, u) - goal)))
    cost, terminal = float(system.cost(goal, u)), float(system.terminal_cost(goal))
    if drift > 1e-9 or abs(cost) > 1e-10 or abs(terminal) > 1e-10:
        raise ValueError(
            f"{name}.goal_state {goal} is not a zero-cost equilibrium (zero control moves it by {drift:.3g}, running cost "
            f"{cost:.3g}, terminal cost {terminal:.3g}); set goal_state = None or DVP(anchor_goal=False)"
        )
    return goal


def _integer(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; a float is accepted only when it is integral (no silent truncation)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) or not float(value).is_integer():
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_weights(weights: SobolevWeights | dict | Sequence[float]) -> SobolevWeights:
    if isinstance(weights, SobolevWeights):
        return weights
    if isinstance(weights, dict):
        return SobolevWeights(**weights)
    values = tuple(float(w) for w in weights)
    if len(values) not in (2, 3):
        raise ValueError(f"sobolev_weights must be (value, gradient[, hessian]), got {weights}")
    return SobolevWeights(*values)

