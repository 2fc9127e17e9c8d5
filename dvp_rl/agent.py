"""The DVP agent: Differential Value Programming with the Stable-Baselines3 interface."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.logger import HParam, Logger, configure
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import envs
from dvp_rl.checkpoint import checkpoint_lock
from dvp_rl.collect import CollectConfig, SolvedDataset, checked_goal
from dvp_rl.config import as_config, config_dict, integer
from dvp_rl.control.config import MPCConfig
from dvp_rl.control.mpc import BatchController
from dvp_rl.control.ocp import BatchSolveResult, OptimalControlProblem, unwrap
from dvp_rl.control.pool import LostSolve, ParallelConfig, SolverPool, SolveSpec, solve_states
from dvp_rl.defaults import dvp_defaults
from dvp_rl.value.arrays import NetworkArrays, numpy_value, numpy_value_derivatives
from dvp_rl.value.networks import NetworkConfig, ValueNetwork
from dvp_rl.value.sobolev import FitConfig, FitResult, SobolevWeights, fit_value_network
from envs.base import DifferentiableEnv, as_real_array, wrap_angles
from envs.twins import resolve_env

#: settings of an id without an entry in ``dvp_rl/defaults.yml``
GENERIC = {"horizon": 50, "n_samples": 1000, "gamma": 1.0, "iterations": 10}
#: the fit of an id without an entry (the paper's budget: Adam, then an L-BFGS polish)
GENERIC_FIT = FitConfig(max_epochs=300, patience=30, polish_steps=200)


class DVP:
    """Differential Value Programming (Parag, Kleff, Saci, Mansard, Stasse, ICRA 2022).

    Each iteration samples start states, solves a horizon-``T`` problem from each with
    DDP (Crocoddyl), whose terminal cost is the value network of the previous iteration
    (zero, or the env's terminal cost, at the first), and fits the network to the optimal
    costs ``V`` and their gradients ``Vx`` with a Sobolev loss. Iteration ``i`` thus sees an
    effective horizon of ``(i + 1) T``. ``predict`` runs model-predictive control with the
    learned value as terminal cost. No env interaction: every sample is a model evaluation
    (``num_timesteps`` counts the DDP's node evaluations, see ``model_evaluations``).

    Every setting left ``None`` takes the env id's tuned value from ``dvp_rl/defaults.yml``
    (:func:`dvp_rl.defaults.dvp_defaults`), else a generic one; a config given as a dict is
    merged field by field over the id's, a config object replaces it.

    :param env: a dvp_rl env id (``"dvp_rl/Unicycle-v0"``), a Gymnasium id with a differentiable
        twin (``"Pendulum-v1"``: learned on the twin, acted in as it is), or an env made with ``gymnasium.make``
    :param horizon: DDP horizon ``T`` of the training solves (running nodes; generic 50)
    :param n_samples: start states solved per iteration (>= 10; generic 1000)
    :param gamma: discount (node k weighted by ``gamma**k``), in (0, 1]; generic 1.0 (the paper's)
    :param network: the value network (:class:`~dvp_rl.value.networks.NetworkConfig`: kind, widths, residual size)
    :param fit: each iteration's Sobolev fit (:class:`~dvp_rl.value.sobolev.FitConfig`: weights,
        learning rate, batch size, epochs, patience, L-BFGS polish, device)
    :param collect: the training solves and their dataset (:class:`CollectConfig`)
    :param mpc: the controller of ``predict`` (:class:`~dvp_rl.control.config.MPCConfig`)
    :param parallel: where the solves run (:class:`~dvp_rl.control.pool.ParallelConfig`: ``"local"``
        forked processes or ``"ray"`` tasks, a per-solve timeout); the dataset of a seed is the same
        either way. A solve past the timeout, or one whose worker dies, is counted in
        ``ddp/lost_solves`` and its state resampled from the env's distribution
    :param n_workers: shortcut for ``parallel``'s ``n_workers`` (``None``: all cores; 1 with the
        local backend and no timeout: in this process)
    :param env_kwargs: keyword arguments of ``gymnasium.make`` when ``env`` is an id
    :param seed: seeds sampling, the network's initialisation and the fits
    :param tensorboard_log: folder of tensorboard runs (``{tensorboard_log}/{tb_log_name}_{N}``)
    :param checkpoint_dir: where ``learn`` writes ``dvp_checkpoint.zip`` after every iteration
        (``"auto"``: the logger's folder when there is one; ``None``: no checkpoints)
    :param verbose: 0 silent, 1 training logs on stdout
    :raises ValueError: an unknown env id or config field, a setting out of its range
    """

    def __init__(
        self,
        env: str | gym.Env,
        horizon: int | None = None,
        n_samples: int | None = None,
        gamma: float | None = None,
        network: NetworkConfig | dict[str, Any] | None = None,
        fit: FitConfig | dict[str, Any] | None = None,
        collect: CollectConfig | dict[str, Any] | None = None,
        mpc: MPCConfig | dict[str, Any] | None = None,
        parallel: ParallelConfig | dict[str, Any] | None = None,
        n_workers: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        tensorboard_log: str | None = None,
        checkpoint_dir: str | None = "auto",
        verbose: int = 0,
    ) -> None:
        resolved = resolve_env(env, env_kwargs)
        self.env, self.twin = resolved.env, resolved.twin
        self.env_id, self.env_kwargs = resolved.env_id, dict(resolved.env_kwargs)
        self.user_id, self.user_kwargs = resolved.user_id, dict(resolved.user_kwargs)
        #: the acting env's actions of the model's controls (its wrappers' maps, clipped to its action space)
        self.action_map = resolved.action_map
        self.system: DifferentiableEnv = unwrap(self.env if self.twin is None else envs.make(self.env_id, self.env_kwargs))
        tuned = dvp_defaults(self.user_id)
        pick = lambda name, given: given if given is not None else tuned.get(name, GENERIC[name])  # noqa: E731
        self.horizon = integer("horizon", pick("horizon", horizon), 1)
        self.n_samples = integer("n_samples", pick("n_samples", n_samples), 10)
        self.gamma = float(pick("gamma", gamma))
        #: the length of ``learn()`` when none is given (the id's tuned iteration count)
        self.default_iterations = integer("iterations", tuned.get("iterations", GENERIC["iterations"]), 1)
        self.network = as_config(NetworkConfig, network, "network", as_config(NetworkConfig, tuned.get("network"), "network"))
        self.fit = _fit_config(fit, _fit_config(tuned.get("fit"), GENERIC_FIT))
        self.collect = as_config(CollectConfig, collect, "collect", as_config(CollectConfig, tuned.get("collect"), "collect"))
        self.mpc = as_config(MPCConfig, mpc, "mpc", as_config(MPCConfig, tuned.get("mpc"), "mpc"))
        self.parallel = ParallelConfig.resolve(n_workers, as_config(ParallelConfig, parallel, "parallel"))
        self.seed = seed
        self.tensorboard_log = tensorboard_log
        self.checkpoint_dir = checkpoint_dir
        self.verbose = int(verbose)
        self._goal = checked_goal(self.system) if self.collect.anchor_goal else None
        self._mpc_system = self._planning_system()
        OptimalControlProblem(self.system, self.horizon, self.gamma)  # validates horizon and gamma now

        self.iteration = 0
        #: model evaluations so far (DDP node evaluations; SB3's name, read by callbacks and the logger)
        self.num_timesteps = 0
        self.failed_solves = 0
        self.lost_solves = 0
        self._logger: Logger | None = None
        self._custom_logger = False
        self._vec_env: VecEnv | None = None
        self._controller: BatchController | None = None  # predict's, rebuilt after every iteration
        self._controller_iteration = -1
        self._checkpoint_file: Path | None = None  # set by load(): where learn() goes on checkpointing
        self._setup_model()
        self._refresh_controller()  # validates the controller's settings now, and predict's first step does not build it

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        if self.seed is not None:
            torch.manual_seed(self.seed)
        self.value_net: ValueNetwork = self.network.make(self.system.nx, self.system.angle_dims).to(torch.device(self.fit.device))
        self.value_net.fit_normalisation(self.system.sample_training_states(max(1000, self.n_samples), self._rng))
        self._validation_states = self.system.sample_training_states(self.collect.n_validation, self._rng)
        self._validation_values: np.ndarray | None = None
        self._final_states: np.ndarray | None = None  # the last iteration's plan end states x_T
        self._arrays = self.value_net.export()

    @property
    def policy_net(self) -> ValueNetwork:
        """Deprecated name of :attr:`value_net` (DVP learns a value, not a policy)."""
        warnings.warn("DVP.policy_net is deprecated; use DVP.value_net", DeprecationWarning, stacklevel=2)
        return self.value_net

    @property
    def model_evaluations(self) -> int:
        """DDP node evaluations spent so far (:attr:`num_timesteps`, SB3's name for an agent's samples)."""
        return self.num_timesteps

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
        """The env the agent acts in as a one-env ``VecEnv`` (what SB3 callbacks expect as ``training_env``)."""
        if self._vec_env is None:
            self._vec_env = DummyVecEnv([lambda: envs.make(self.user_id, self.user_kwargs)])
        return self._vec_env

    @property
    def n_workers(self) -> int | None:
        """Solver processes (or Ray tasks) of ``learn`` (``parallel.n_workers``)."""
        return self.parallel.n_workers

    @property
    def value_arrays(self) -> NetworkArrays:
        """The current value network, exported (numpy arrays; what the DDP evaluates)."""
        return self._arrays

    def _solve_spec(self) -> SolveSpec:
        if self.iteration == 0:
            terminal = None if self.collect.initial_terminal == "zero" else "env"
        else:
            terminal = self._arrays
        return SolveSpec(self.env_id, self.env_kwargs, self.horizon, self.gamma, terminal, self.collect.max_iter, self.collect.th_stop,
                         self.collect.guesses)

    # ------------------------------------------------------------------ learning
    def learn(
        self,
        total_iterations: int | None = None,
        callback: BaseCallback | list[BaseCallback] | Any = None,
        log_interval: int = 1,
        tb_log_name: str = "DVP",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> DVP:
        """Run ``total_iterations`` DVP iterations (``None``: :attr:`default_iterations`); returns ``self``.

        :param callback: SB3 callback(s), called once per iteration (returning False stops)
        :param log_interval: dump the logs every ``log_interval`` iterations
        :param reset_num_timesteps: start the counters (and a new tensorboard run) afresh;
            ``False`` continues a loaded checkpoint where it stopped
        :param progress_bar: show a progress bar over the solves of each iteration
        :raises ValueError: ``total_iterations`` not an integer >= 1
        :raises dvp_rl.checkpoint.CheckpointInUseError: another run is learning with the same
            checkpoint file (it holds the file's lock, :func:`dvp_rl.checkpoint.checkpoint_lock`,
            which ``learn`` holds while it runs)
        """
        total = integer("total_iterations", self.default_iterations if total_iterations is None else total_iterations, 1)
        if reset_num_timesteps:
            self.num_timesteps = 0
        if not self._custom_logger:
            self._logger = configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback = self._init_callback(callback)
        self._record_hparams()
        checkpoint = self._checkpoint_path()
        with contextlib.nullcontext() if checkpoint is None else checkpoint_lock(checkpoint):  # one run per checkpoint file
            pool = self.parallel.make_pool()
            callback.on_training_start(locals(), globals())
            try:
                for _ in range(total):
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
        flat: dict[str, Any] = {}
        for key, value in self.hyperparameters().items():
            for name, leaf in (value.items() if isinstance(value, dict) else [(None, value)]):
                flat[key if name is None else f"{key}.{name}"] = leaf if isinstance(leaf, (int, float, str, bool)) else str(leaf)
        flat["env_id"] = self.env_id
        metrics = {"dvp/bellman_residual": 0.0, "train/value_loss": 0.0}
        self.logger.record("hparams", HParam(flat, metrics), exclude=("stdout", "log", "json", "csv"))

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
        dataset = self.collect_dataset(pool, progress_bar)
        return self.train(dataset, t_start)

    def collect_dataset(self, pool: SolverPool | None = None, progress_bar: bool = False) -> SolvedDataset:
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
                resample=lambda k: self.system.sample_training_states(k, self._rng),
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
        self.num_timesteps += int(batch.model_evaluations.sum())
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
                "raise collect.max_iter or check the env's cost and bounds"
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
        hessian = self.fit.weights.hessian > 0
        result = fit_value_network(self.value_net, dataset.x, dataset.V, dataset.Vx, dataset.Vxx if hessian else None,
                                   self.fit, seed=int(self._rng.integers(2**31)))  # fmt: skip
        self._arrays = self.value_net.export()
        t_fitted = time.perf_counter()
        values = np.asarray(numpy_value(self._arrays, self._validation_states))
        residual = float(np.mean((values - self._validation_values) ** 2)) if self._validation_values is not None else float("nan")
        self._validation_values = values
        self.iteration += 1
        self._refresh_controller()

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
            n_final = int(round(self.collect.final_state_fraction * self.n_samples))
        fresh = self.system.sample_training_states(self.n_samples - n_final, self._rng)
        if n_final == 0:
            return fresh, 0
        picks = self._rng.choice(len(self._final_states), n_final, replace=len(self._final_states) < n_final)
        return np.concatenate([fresh, self._final_states[picks]]), n_final

    def _anchor_value(self) -> float:
        """The value subtracted from this iteration's targets (see ``collect.anchor_goal``): the lower of two
        plan costs from the goal under the current terminal, holding still (``gamma^T V_net(goal)``)
        and the DDP's solution when it converges; 0 without a goal or before the first fit."""
        if self._goal is None or self.iteration == 0:
            return 0.0
        hold = self.gamma**self.horizon * float(numpy_value(self._arrays, self._goal[None])[0])
        solve = solve_states(self._solve_spec(), self._goal[None])
        self.num_timesteps += int(solve.model_evaluations.sum())
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
        obs = np.asarray(observation)  # the twin's map checks the dtype too (a complex one is refused, not cut)
        single = obs.ndim == 1
        return np.atleast_2d(self.twin.observation_to_state(obs)), single

    def _check_states(self, states: Any, what: str = "states", batch: str = "n") -> tuple[np.ndarray, bool]:
        """States (n, nx) of ``states`` (nx,) or (n, nx), finite, and whether one state was given
        (``what`` and ``batch`` name the argument and its batch size in the errors; a dtype that is
        not real numbers, e.g. complex, is refused before converting)."""
        x = as_real_array(states, what)
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

    def controller(self, **changes: Any) -> BatchController:
        """A new controller with the current learned value as terminal cost (what ``predict`` runs).

        :param changes: :class:`~dvp_rl.control.config.MPCConfig` fields that replace the agent's
            ``mpc`` settings for this controller (e.g. ``horizon=10``)
        :raises ValueError: an unknown field or a setting out of its range
        """
        config = as_config(MPCConfig, changes, "controller", self.mpc) if changes else self.mpc
        terminal = self._arrays if self.iteration > 0 else None
        return config.make(self._mpc_system, terminal, self.gamma, self.horizon, self.collect.max_iter, self.collect.th_stop)

    def _refresh_controller(self) -> None:
        """Build ``predict``'s controller for the current value (after every iteration and load, not inside a step)."""
        self._controller, self._controller_iteration = self.controller(), self.iteration

    def _planning_system(self) -> DifferentiableEnv:
        """The model :meth:`controller` plans with: the training env, or it made with ``mpc.env_kwargs`` over its arguments."""
        if not self.mpc.env_kwargs:
            return self.system
        system = unwrap(envs.make(self.env_id, {**self.env_kwargs, **self.mpc.env_kwargs}))
        if (system.nx, system.nu) != (self.system.nx, self.system.nu):
            raise ValueError(f"mpc.env_kwargs {self.mpc.env_kwargs} make a model with (nx, nu) = {(system.nx, system.nu)}, "
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

        Runs :meth:`controller`'s controller (rebuilt after every iteration): warm-started from the
        previous call's plan (shifted by one step) for each env index; ``episode_start[i]`` drops
        that warm start, and without ``episode_start`` so does an observation that starts a new
        episode (:meth:`~dvp_rl.control.mpc.MPCController.is_new_episode`). ``state`` is unused.

        :param observation: observation(s) of the env the agent acts in, (n_obs,) or (n_envs, n_obs):
            the state itself for a dvp_rl env, the real env's observation for a twin (e.g.
            Pendulum-v1's ``(cos th, sin th, thdot)``, mapped to the twin's state)
        :return: ``(action, None)`` with ``action`` (nu,) or (n_envs, nu), ``float32``, inside the action
            space of the env the agent acts in (the model's controls through its wrappers' maps, e.g.
            ``RescaleAction``'s, see :attr:`action_map`)
        :raises ValueError: an observation of the wrong shape, not finite or outside the twin's domain
        """
        obs, single = self._check_observation(observation)
        if self._controller is None or self._controller_iteration != self.iteration:
            self._refresh_controller()
        actions = self.action_map(self._controller.predict(obs, episode_start)).astype(np.float32)
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
        """The settings that define the algorithm, JSON-ready: what ``save`` writes and ``load`` rebuilds from."""
        return {"horizon": self.horizon, "n_samples": self.n_samples, "gamma": self.gamma, "network": config_dict(self.network),
                "fit": config_dict(self.fit), "collect": config_dict(self.collect), "mpc": config_dict(self.mpc), "seed": self.seed}  # fmt: skip

    def save(self, path: str | os.PathLike) -> Path:
        """Save to one zip (settings as JSON, the network's state dict, training state); atomic.
        See :func:`dvp_rl.checkpoint.save_agent`."""
        from dvp_rl.checkpoint import save_agent

        return save_agent(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, env: str | gym.Env | None = None, allow_module_import: bool = False, **kwargs: Any) -> DVP:
        """Load a saved agent (:func:`dvp_rl.checkpoint.load_agent`); ``env`` defaults to the saved env,
        ``kwargs`` override settings such as ``parallel``, ``tensorboard_log``, ``checkpoint_dir``, ``verbose``.

        :raises dvp_rl.checkpoint.CheckpointError: a missing, corrupt, damaged or incompatible file, naming the problem
        """
        from dvp_rl.checkpoint import load_agent

        return load_agent(cls, path, env, allow_module_import, **kwargs)


def _fit_config(value: Any, base: FitConfig) -> FitConfig:
    """:func:`~dvp_rl.config.as_config` of a ``FitConfig`` whose ``weights`` may also be a dict or a
    ``(value, gradient[, hessian])`` sequence (as JSON gives them back)."""
    if isinstance(value, dict) and "weights" in value and not isinstance(value["weights"], SobolevWeights):
        weights = value["weights"]
        if isinstance(weights, dict):
            weights = SobolevWeights(**weights)
        else:
            values = tuple(float(w) for w in weights)
            if len(values) not in (2, 3):
                raise ValueError(f"fit.weights must be (value, gradient[, hessian]), got {weights}")
            weights = SobolevWeights(*values)
        value = {**value, "weights": weights}
    return as_config(FitConfig, value, "fit", base)
