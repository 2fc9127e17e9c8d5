"""One adapter per kind of agent: what the comparison harness needs of DVP, of its controller without a
learned value ("MPC") and of SB3's PPO, SAC, TD3.

An adapter checks a run's settings before any work (:meth:`Adapter.check`), builds an agent for
one run (:class:`RunSpec`: env, seed, discount, settings), trains it under the harness's callbacks,
says whether training left it untrained (:meth:`Adapter.untrained`), and exposes it the same way
whatever it is (:class:`Agent`):

* ``predictor()``: the agent acting in the env it was built for (SB3's ``predict``), for
  :func:`dvp_rl.control.rollout.evaluate_episodes`;
* ``state_policy()``: ``states (N, nx) -> actions (N, nu)`` of the differentiable env (the twin of
  a Gymnasium id), a fresh one per closed loop, for :func:`dvp_rl.control.rollout.rollout_from_states`;
* ``values(states)``: its cost-to-go estimate at states of the differentiable env, in that env's cost
  (an agent without a critic, :attr:`Adapter.has_critic` false, has none);
* ``sample_count``: what its ``num_timesteps`` counts, named by ``samples``: ``"env_interactions"``
  (SB3: steps of the env itself) or ``"model_evaluations"`` (DVP: DDP node evaluations of its model).

Why adapters: a new agent kind is one class here, not a branch in every preset (SB3's algorithms
share ``BaseAlgorithm`` the same way).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from dvp_rl.control.rollout import Predictor

#: what an agent's ``num_timesteps`` counts: steps of the env itself, or evaluations of its model
SAMPLE_KINDS = ("env_interactions", "model_evaluations")


@dataclass(frozen=True)
class RunSpec:
    """One agent's run: where, with which seed, discount and settings.

    :param env_id: a dvp_rl id (observations are the states) or a Gymnasium id with a twin
        (:data:`envs.twins.TWINS`; DVP trains on the twin)
    :param seed: the training seed
    :param gamma: the discount (``None``: the agent's own: DVP's defaults, the ``hyperparams.yml`` entry)
    :param env_kwargs: ``gymnasium.make`` arguments of every env built for the run
    :param overrides: DVP: constructor arguments and ``iterations`` over ``dvp_rl/defaults.yml``;
        SB3: entries of ``hyperparams.yml`` (``n_timesteps`` included)
    :param budget: the agent's own budget, DVP iterations or SB3 timesteps (``None``: from the settings)
    :param n_workers: DVP's solver processes (SB3 runs in one)
    """

    env_id: str
    seed: int
    gamma: float | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    budget: int | None = None
    n_workers: int = 1


class Adapter(ABC):
    """The agent-specific part of the harness (see the module docstring); stateless.

    ``name``: the agent's name in runs, legends and tables; ``samples``: what its ``num_timesteps``
    counts, one of :data:`SAMPLE_KINDS`; ``has_critic``: whether it has a cost-to-go estimate
    (:meth:`values`); ``steps_are_iterations``: whether each ``on_step`` of its callbacks ends a
    training iteration (DVP), rather than an env step (SB3).
    """

    name: str
    samples: str
    has_critic: bool = True
    steps_are_iterations: bool = False

    def check(self, spec: RunSpec) -> None:
        """Raise ``ValueError``, before any work, for settings of ``spec`` that :meth:`build` or training would
        refuse later (unknown keys, budgets below 1); nothing by default."""

    def untrained(self, model: Any) -> str | None:
        """After training: why the agent learned nothing (e.g. ``"untrained (learning_starts 10000 >= 2000
        steps)"``), ``None`` when it did; ``None`` by default."""
        return None

    @abstractmethod
    def build(self, spec: RunSpec) -> Agent:
        """An untrained agent for ``spec``, with the settings it was built with and its budget."""

    @abstractmethod
    def learn(self, model: Any, budget: int, callback: BaseCallback) -> bool:
        """Train until the budget is spent (returns True) or ``callback`` stops it (False)."""

    @abstractmethod
    def values(self, model: Any, env_id: str, states: np.ndarray) -> np.ndarray:
        """The cost-to-go estimate at states (N, nx) of the differentiable env; (N,)."""

    @abstractmethod
    def state_policy(self, model: Any, env_id: str) -> Callable[[np.ndarray], np.ndarray]:
        """``states (N, nx) -> actions (N, nu)`` in the differentiable env; a fresh one per closed loop."""

    def predictor(self, model: Any) -> Predictor:
        """What acts in the env the agent was built for (SB3's ``predict``): the model itself."""
        return model

    def eval_at_rollout_start(self, model: Any) -> bool:
        """Whether evaluations during training fit SB3's ``on_rollout_start`` (an on-policy algorithm: right
        after each update) rather than ``on_step`` (DVP: once per iteration)."""
        return False


@dataclass
class Agent:
    """A built agent: its ``adapter``, the ``spec`` it was built for, the ``model`` (``None`` once a
    harness dropped it), the ``settings`` it was built with and its ``budget``."""

    adapter: Adapter
    spec: RunSpec
    model: Any
    settings: dict[str, Any]
    budget: int

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def gamma(self) -> float:
        """The discount the agent learns with (its critic's)."""
        return float(self.model.gamma)

    @property
    def sample_count(self) -> int:
        """``model.num_timesteps``: env interactions or model evaluations (``adapter.samples``)."""
        return int(self.model.num_timesteps)

    def learn(self, callback: BaseCallback) -> bool:
        """Train under ``callback``; True when the agent's own budget was spent."""
        return self.adapter.learn(self.model, self.budget, callback)

    def values(self, states: np.ndarray) -> np.ndarray:
        return self.adapter.values(self.model, self.spec.env_id, states)

    def state_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        return self.adapter.state_policy(self.model, self.spec.env_id)

    def predictor(self) -> Predictor:
        return self.adapter.predictor(self.model)

    def untrained(self) -> str | None:
        """Why training left the agent untrained, ``None`` when it learned (:meth:`Adapter.untrained`)."""
        return self.adapter.untrained(self.model)


# ---------------------------------------------------------------------------- DVP
class DVPAdapter(Adapter):
    """DVP (:class:`dvp_rl.agent.DVP`): ``DVP(env_id, **overrides)``, which starts from the id's tuned
    settings (``dvp_rl/defaults.yml``) and merges the run's overrides over them, config sections field by
    field; the one place the comparison constructs a DVP. No checkpoints (the harness saves what it
    keeps). ``budget``: iterations (the run's, else ``iterations`` of the overrides, else the agent's
    :attr:`~dvp_rl.agent.DVP.default_iterations`)."""

    name = "DVP"
    samples = "model_evaluations"
    steps_are_iterations = True
    #: constructor arguments of ``DVP`` that the run sets, not the overrides
    RUN_KEYS = ("env", "seed", "env_kwargs", "n_workers", "checkpoint_dir", "tensorboard_log", "verbose")

    def check(self, spec: RunSpec) -> None:
        """The override keys against ``DVP``'s constructor (and ``iterations``), then a dry construction (no
        solve, no fit): every config section and value as ``build`` will see them.

        :raises ValueError: naming the agent, the env id and the problem
        """
        import inspect

        from dvp_rl.agent import DVP

        accepted = set(inspect.signature(DVP.__init__).parameters) - {"self", *self.RUN_KEYS}
        unknown = sorted(set(spec.overrides) - accepted - {"iterations"})
        where = f"{self.name} settings for {spec.env_id}"
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; DVP takes {sorted(accepted | {'iterations'})}")
        try:
            self.build(spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None

    def build(self, spec: RunSpec) -> Agent:
        from dvp_rl.agent import DVP
        from dvp_rl.config import integer

        kwargs = dict(spec.overrides)
        iterations = kwargs.pop("iterations", None)
        if spec.budget is not None:
            iterations = spec.budget
        if spec.gamma is not None:
            kwargs["gamma"] = spec.gamma
        agent = DVP(spec.env_id, seed=spec.seed, env_kwargs=dict(spec.env_kwargs), n_workers=spec.n_workers, checkpoint_dir=None,
                    **kwargs)  # fmt: skip
        iterations = agent.default_iterations if iterations is None else integer("iterations", iterations, 1)
        settings = {**agent.hyperparameters(), "iterations": iterations, "n_workers": agent.n_workers}
        return Agent(self, spec, agent, settings, iterations)

    def untrained(self, model: Any) -> str | None:
        return None if model.iteration > 0 else "untrained (no DVP iteration)"

    def learn(self, model: Any, budget: int, callback: BaseCallback) -> bool:
        model.learn(budget, callback=callback)
        return model.iteration >= budget

    def values(self, model: Any, env_id: str, states: np.ndarray) -> np.ndarray:
        return np.asarray(model.value(states))

    def state_policy(self, model: Any, env_id: str) -> Callable[[np.ndarray], np.ndarray]:
        """A fresh MPC controller of the agent (:meth:`dvp_rl.agent.DVP.controller`): float64
        actions, its own warm starts; on the differentiable env's states."""
        return model.controller().predict


class MPCAdapter(DVPAdapter):
    """DVP's controller without a learned value ("what the value buys"): ``DVP(env_id, **overrides)`` as
    :class:`DVPAdapter` builds it (the same controller settings: the id's ``mpc`` entry and the run's
    overrides), never trained: its ``predict`` plans with a zero terminal cost. ``learn`` runs the
    callbacks' start and end only (0 s, 0 samples, ``budget`` 0); no critic. Not reported as untrained:
    learning nothing is what it is for."""

    name = "MPC"
    has_critic = False

    def build(self, spec: RunSpec) -> Agent:
        built = super().build(replace(spec, budget=None))
        model = built.model
        settings = {"terminal": None, "gamma": model.gamma, "horizon": model.mpc.horizon or model.horizon,
                    "mpc": model.hyperparameters()["mpc"], "seed": model.seed}  # fmt: skip
        return Agent(self, spec, model, settings, 0)

    def learn(self, model: Any, budget: int, callback: BaseCallback) -> bool:
        callback.init_callback(model)
        callback.on_training_start(locals(), globals())
        callback.on_training_end()
        return True

    def values(self, model: Any, env_id: str, states: np.ndarray) -> np.ndarray:
        raise ValueError(f"{self.name} has no critic (it learns no value)")

    def untrained(self, model: Any) -> str | None:
        return None


# ---------------------------------------------------------------------------- SB3
class SB3Adapter(Adapter):
    """Stable-Baselines3's PPO, SAC or TD3 from ``hyperparams.yml`` (:func:`baselines.sb3.make_sb3`).

    ``budget``: timesteps (the run's, else ``n_timesteps`` of the overrides, else of the entry). When
    the run fixes the discount and the entry sets no ``max_episode_steps``, training episodes last
    :func:`baselines.sb3.episode_steps` (long enough for that discount). Observations are the
    states for a dvp_rl id, and the twin's ``state_to_observation`` of them for a Gymnasium id; the
    critic (:func:`baselines.sb3.critic_costs`) is shifted into the twin's cost by
    :data:`dvp_rl.references.episodes.REWARD_OFFSETS`.

    :param algo: ``"PPO"``, ``"SAC"`` or ``"TD3"``
    """

    samples = "env_interactions"

    def __init__(self, algo: str) -> None:
        from baselines.sb3 import check_algo

        self.name = check_algo(algo)

    def check(self, spec: RunSpec) -> None:
        """:func:`baselines.sb3.check_hyperparams` of the run's settings, and the run's budget an integer >= 1.

        :raises ValueError: naming the agent, the env id and the problem
        """
        from baselines.sb3 import check_hyperparams

        check_hyperparams(self.name, spec.env_id, spec.overrides)
        budget = spec.budget
        if budget is not None and (isinstance(budget, bool) or not float(budget).is_integer() or budget < 1):
            raise ValueError(f"{self.name} settings for {spec.env_id}: the timestep budget must be an integer >= 1, got {budget!r}")

    def build(self, spec: RunSpec) -> Agent:
        from baselines.sb3 import load_hyperparams, make_sb3

        overrides = dict(spec.overrides)
        settings = {**load_hyperparams(spec.env_id, self.name), **overrides}
        timesteps = int(spec.budget if spec.budget is not None else overrides.pop("n_timesteps", settings["n_timesteps"]))
        overrides.pop("n_timesteps", None)
        given = overrides.pop("gamma", None)
        gamma = spec.gamma if spec.gamma is not None else given  # the run's, else the overrides' (None: the entry's)
        model = make_sb3(self.name, spec.env_id, seed=spec.seed, gamma=gamma, env_kwargs=dict(spec.env_kwargs), **overrides)
        settings = {**settings, "n_timesteps": timesteps, "gamma": float(model.gamma), "seed": spec.seed}
        return Agent(self, spec, model, settings, timesteps)

    def untrained(self, model: Any) -> str | None:
        """SB3 counts its gradient updates (``_n_updates``): none after training is an untrained agent, e.g. an
        off-policy one whose ``learning_starts`` was not passed (it trains from ``learning_starts + 1`` steps on)."""
        if getattr(model, "_n_updates", 1) > 0:
            return None
        steps, starts = int(model.num_timesteps), getattr(model, "learning_starts", None)
        if starts is not None and steps <= int(starts):
            return f"untrained (learning_starts {int(starts)} >= {steps} steps)"
        return f"untrained (no gradient update in {steps} steps)"

    def learn(self, model: Any, budget: int, callback: BaseCallback) -> bool:
        model.learn(budget, callback=callback)
        return model.num_timesteps >= budget

    def values(self, model: Any, env_id: str, states: np.ndarray) -> np.ndarray:
        from baselines.sb3 import critic_costs
        from dvp_rl.references.episodes import REWARD_OFFSETS

        costs = critic_costs(model, observations_of(env_id, states, model.observation_space.shape[0]))
        if env_id in REWARD_OFFSETS:  # the reward's critic as a cost-to-go of the twin's cost
            costs = costs + REWARD_OFFSETS[env_id] / (1.0 - float(model.gamma))
        return costs

    def state_policy(self, model: Any, env_id: str) -> Callable[[np.ndarray], np.ndarray]:
        """The deterministic policy on the (normalised) observations of the states."""
        from baselines.sb3 import normalize_observations

        n_obs = model.observation_space.shape[0]

        def act(states: np.ndarray) -> np.ndarray:
            return model.predict(normalize_observations(model, observations_of(env_id, states, n_obs)), deterministic=True)[0]

        return act

    def eval_at_rollout_start(self, model: Any) -> bool:
        return isinstance(model, OnPolicyAlgorithm)


def observations_of(env_id: str, states: np.ndarray, n_obs: int) -> np.ndarray:
    """The observations (N, n_obs) of states (N, nx) of the differentiable env: the states themselves for
    a dvp_rl id, the twin's ``state_to_observation`` for a Gymnasium id with a twin.

    :raises ValueError: states of another shape than (N, n_obs) for a dvp_rl id
    """
    from envs.twins import TWINS

    if env_id in TWINS:
        return np.asarray(TWINS[env_id].state_to_observation(states))
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != n_obs:
        raise ValueError(f"states must have shape (N, {n_obs}), got shape {states.shape}")
    return states


#: the agents a comparison can train, by name
ADAPTERS: dict[str, Adapter] = {"DVP": DVPAdapter(), **{algo: SB3Adapter(algo) for algo in ("PPO", "SAC", "TD3")}, "MPC": MPCAdapter()}


def get_adapter(name: str) -> Adapter:
    """The adapter of ``name`` (:data:`ADAPTERS`).

    :raises ValueError: for another name; the message lists the known ones
    """
    if name not in ADAPTERS:
        raise ValueError(f"no adapter for agent {name!r}; known agents: {list(ADAPTERS)}")
    return ADAPTERS[name]


__all__ = ["ADAPTERS", "SAMPLE_KINDS", "Adapter", "Agent", "DVPAdapter", "MPCAdapter", "RunSpec", "SB3Adapter",
           "get_adapter", "observations_of"]  # fmt: skip
