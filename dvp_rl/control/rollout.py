"""The one closed loop of dvp_rl: a policy acting in Gymnasium envs, step after step.

Every closed loop of the package runs through :func:`run_episodes`: scoring an agent in the real
env, one episode per reset seed (:func:`evaluate_episodes`, rl-zoo3 style); closed-loop
trajectories from given states (:func:`rollout_from_states`); and the controller's rollouts on
its own model (:func:`dvp_rl.control.mpc.closed_loop`, the first-step search of
:mod:`dvp_rl.control.search`, the DDP oracle), on a :class:`ModelEnv`::

    results = evaluate_episodes(agent, "Pendulum-v1", seeds=range(1000, 1100))
    results.summary()          # mean +- std (worst, n episodes), median / p99 / max ms per step
    results.success_rate       # info["is_success"] at the episodes' ends, None where the env has no such key
    render_episode(agent, "dvp_rl/PandaReach-v0", seed=1000).frames   # one episode's rgb_array frames

No torch and no SB3 here: a policy is anything with SB3's ``predict`` signature, or a function of
the observations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import envs  # noqa: F401  (registers the dvp_rl/ ids)

#: ``act(observations (N, n_obs), first) -> actions (N, nu)``: the policy of :func:`run_episodes`
#: (``first``: the episodes' first step)
Act = Callable[[np.ndarray, bool], np.ndarray]


class Predictor(Protocol):
    """What :func:`evaluate_episodes` needs of a controller: SB3's ``predict``."""

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


class Trajectory(NamedTuple):
    """One episode of :func:`run_episodes`.

    ``observations`` (n+1, n_obs): from the reset on; ``actions`` (n, nu): as the policy gave them;
    ``rewards`` (n,); ``episode_return``: their sum, added in step order; ``terminated``: the env
    ended the episode (not a truncation); ``step_ns`` (n,): wall-clock of each call of the policy
    (nanoseconds; in lockstep runs the call that served every episode); ``info``: the info dict of
    the episode's last step (of its reset for an episode without a step); ``step_start_ns`` (n,):
    when each call began (``time.perf_counter_ns()``: on Linux the system's monotonic clock, so
    comparable with another process's, see :class:`dvp_rl.compare.probe.HostProbe`);
    ``step_cpu_ns`` (n,): the CPU time this process spent in each call (``time.process_time_ns()``,
    all its threads): a call whose wall-clock far exceeds it waited for a CPU (the host or other
    processes took it), it did not compute.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    episode_return: float
    terminated: bool
    step_ns: np.ndarray
    info: dict[str, Any] | None = None
    step_start_ns: np.ndarray | None = None
    step_cpu_ns: np.ndarray | None = None


def run_episodes(act: Act, episode_envs: Sequence[gym.Env], resets: Sequence[dict[str, Any]], max_steps: int | None = None) -> list[Trajectory]:
    """Run one episode in each env, all in lockstep: the one closed loop of the package.

    Each env is reset with its ``resets[i]`` (``reset(**resets[i])``: a ``seed``, ``options``); then
    at each step ``act(observations, first)`` maps the observations of every episode (N, n_obs) to
    their actions (N, nu), and each env not yet done steps with its action. An episode ends when
    its env terminates or truncates it, or after ``max_steps`` steps; the loop ends when all have.
    Finished episodes keep their last observation in the batch (a stateful policy keeps one row
    per episode), and their actions are dropped.

    :param act: the policy, see :data:`Act`
    :param episode_envs: N >= 1 envs (each used for one episode)
    :param resets: N dicts of ``reset`` keyword arguments
    :param max_steps: a step limit of every episode (``None``: the envs' own end)
    :return: N :class:`Trajectory`
    :raises ValueError: no env, or ``resets`` of another length, or ``max_steps < 0``
    """
    n = len(episode_envs)
    if n == 0 or len(resets) != n:
        raise ValueError(f"run_episodes needs one reset per env and at least one env, got {n} envs and {len(resets)} resets")
    if max_steps is not None and int(max_steps) < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    observations: list[list[np.ndarray]] = []
    infos: list[dict[str, Any]] = []
    for env, reset in zip(episode_envs, resets):
        obs, info = env.reset(**reset)
        observations.append([obs])
        infos.append(info)
    actions: list[list[np.ndarray]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    returns = [0.0] * n
    terminated = [False] * n
    done = [max_steps is not None and int(max_steps) == 0] * n
    step_ns: list[int] = []
    step_start_ns: list[int] = []
    step_cpu_ns: list[int] = []
    while not all(done):
        batch = np.stack([o[-1] for o in observations])
        start, cpu = time.perf_counter_ns(), time.process_time_ns()
        chosen = act(batch, not step_ns)
        step_ns.append(time.perf_counter_ns() - start)
        step_cpu_ns.append(time.process_time_ns() - cpu)
        step_start_ns.append(start)
        for i, env in enumerate(episode_envs):
            if done[i]:
                continue
            action = chosen[i]
            obs, reward, term, trunc, infos[i] = env.step(action)
            observations[i].append(obs)
            actions[i].append(np.asarray(action))
            rewards[i].append(float(reward))
            returns[i] += float(reward)
            terminated[i] = bool(term)
            done[i] = bool(term or trunc) or (max_steps is not None and len(rewards[i]) >= int(max_steps))
    timings, starts, cpu_times = (np.asarray(v, dtype=np.int64) for v in (step_ns, step_start_ns, step_cpu_ns))
    return [
        Trajectory(np.array(observations[i]), np.array(actions[i]).reshape(len(actions[i]), -1), np.array(rewards[i], dtype=np.float64),
                   returns[i], terminated[i], timings[: len(rewards[i])], infos[i], starts[: len(rewards[i])], cpu_times[: len(rewards[i])])
        for i in range(n)
    ]  # fmt: skip


def run_episode(act: Act, env: gym.Env, max_steps: int | None = None, **reset: Any) -> Trajectory:
    """One episode of :func:`run_episodes` in ``env`` (``reset``: ``seed``, ``options``)."""
    return run_episodes(act, [env], [reset], max_steps)[0]


class ModelEnv(gym.Env[np.ndarray, np.ndarray]):
    """A Gymnasium view of a differentiable env's model, for rollouts on it.

    ``reset(options={"state": x})`` (required) sets the state; ``step(u)`` returns
    ``dynamics(x, u)``, reward ``-cost(x, u)``, never terminates nor truncates. Unlike the env's own
    ``step``, the action is not clipped and angles are not wrapped (the model, as the DDP sees it),
    and the wrapped env's state is left alone (a controller's model may be the env a user steps).

    :param system: a :class:`envs.base.DifferentiableEnv` (unwrapped)
    """

    def __init__(self, system: Any) -> None:
        self.system = system
        self.observation_space = spaces.Box(-np.inf, np.inf, (system.nx,), dtype=np.float64)
        self.action_space = system.action_space
        self.state = np.zeros(system.nx)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if not options or "state" not in options:
            raise ValueError("ModelEnv.reset needs options={'state': x}")
        self.state = self.system.check_state(options["state"], "options['state']").copy()
        return self.state.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        cost = float(self.system.cost(self.state, action))
        self.state = self.system.dynamics(self.state, action)
        return self.state.copy(), -cost, False, False, {}


def discounted_cost(costs: np.ndarray, gamma: float) -> np.ndarray:
    """``sum_t gamma^t costs[:, t]`` of costs (N, n); shape (N,)."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ValueError(f"costs must have shape (N, n_steps), got shape {costs.shape}")
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    return costs @ gamma ** np.arange(costs.shape[1])


# ---------------------------------------------------------------------------- from given states
class Rollout(NamedTuple):
    """Closed-loop trajectories of ``N`` episodes of ``n_steps`` steps.

    ``states`` (N, n_steps + 1, nx): ``x_0 .. x_n`` as observed (angles wrapped by the env);
    ``actions`` (N, n_steps, nu): the controls applied (within the action bounds);
    ``costs`` (N, n_steps): ``cost(x_t, u_t)``, the negative rewards.
    """

    states: np.ndarray
    actions: np.ndarray
    costs: np.ndarray


def rollout_from_states(
    act: Callable[[np.ndarray], np.ndarray],
    env_id: str,
    start_states: np.ndarray,
    n_steps: int,
    env_kwargs: dict[str, Any] | None = None,
) -> Rollout:
    """Closed-loop rollouts of a controller from ``start_states`` (N, nx), in the env itself.

    One env per start state (``gymnasium.make(env_id, max_episode_steps=n_steps, **env_kwargs)``,
    reset with ``options={"state": x0}``), stepped in lockstep by :func:`run_episodes`; at each step
    ``act(states)`` maps the current states (N, nx) of all episodes to their actions (N, nu).

    :param n_steps: number of steps, >= 0
    :param env_kwargs: env arguments
    :return: :class:`Rollout` of states (N, n_steps + 1, nx), actions (N, n_steps, nu), costs (N, n_steps)
    """
    start_states = np.asarray(start_states, dtype=np.float64)
    if start_states.ndim != 2:
        raise ValueError(f"start_states must have shape (N, nx), got {start_states.shape}")
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    n, nx = start_states.shape
    make_kwargs = {**(env_kwargs or {}), "max_episode_steps": max(int(n_steps), 1)}
    episode_envs = [gym.make(env_id, **make_kwargs) for _ in range(max(n, 1))]  # one at least, for the action space
    try:
        nu = int(np.prod(episode_envs[0].action_space.shape))
        if n == 0:
            return Rollout(np.empty((0, n_steps + 1, nx)), np.empty((0, n_steps, nu)), np.empty((0, n_steps)))
        policy = lambda obs, first: np.asarray(act(obs), dtype=np.float64).reshape(n, nu)  # noqa: E731
        runs = run_episodes(policy, episode_envs, [{"options": {"state": x0}} for x0 in start_states], int(n_steps))
    finally:
        for env in episode_envs:
            env.close()
    return Rollout(np.array([r.observations for r in runs]).reshape(n, n_steps + 1, nx),
                   np.array([r.actions for r in runs]).reshape(n, n_steps, nu), -np.array([r.rewards for r in runs]).reshape(n, n_steps))  # fmt: skip


# ---------------------------------------------------------------------------- scoring in the real env
class EpisodeResults(NamedTuple):
    """Scores of ``n`` episodes, one per seed.

    ``seeds`` (n,): the reset seeds; ``returns`` (n,): the undiscounted sum of the env's
    rewards; ``lengths`` (n,): steps per episode; ``step_ms`` (sum(lengths),): wall-clock of
    each control step in milliseconds (observation normalisation + ``predict``, not the
    env's ``step``), the episodes one after the other; ``successes`` (n,) bool: ``info["is_success"]``
    of each episode's last step (SB3's key), ``None`` when the env does not report it for every episode;
    ``step_start_ns`` (sum(lengths),): when each control step began (``time.perf_counter_ns()``);
    ``step_cpu_ms`` (sum(lengths),): the CPU time of each (see :class:`Trajectory`'s ``step_cpu_ns``).
    """

    seeds: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    step_ms: np.ndarray
    successes: np.ndarray | None = None
    step_start_ns: np.ndarray | None = None
    step_cpu_ms: np.ndarray | None = None

    @property
    def success_rate(self) -> float | None:
        """The share of successful episodes, ``None`` when the env does not report success."""
        return None if self.successes is None else float(np.mean(self.successes))

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        """Population standard deviation of the returns (numpy's and rl-zoo3's ``std``)."""
        return float(np.std(self.returns))

    @property
    def worst_return(self) -> float:
        return float(np.min(self.returns))

    @property
    def median_step_ms(self) -> float:
        return float(np.median(self.step_ms))

    @property
    def p99_step_ms(self) -> float:
        """The 99th percentile of the step times (numpy's linear interpolation)."""
        return float(np.percentile(self.step_ms, 99))

    @property
    def max_step_ms(self) -> float:
        """The slowest control step: what a real-time controller is judged by."""
        return float(np.max(self.step_ms))

    @property
    def max_step_cpu_ms(self) -> float:
        """The most CPU time a control step took (the controller's own worst work; NaN when not recorded):
        a :attr:`max_step_ms` far above it is time the process waited for the machine."""
        return float("nan") if self.step_cpu_ms is None else float(np.max(self.step_cpu_ms))

    def summary(self) -> str:
        """One line: ``mean +- std (worst w, n episodes), m ms/step`` (median step time) and the slowest step."""
        return (
            f"{self.mean_return:.1f} +- {self.std_return:.1f} (worst {self.worst_return:.1f}, "
            f"{len(self.returns)} episodes), {self.median_step_ms:.3f} ms/step (p99 {self.p99_step_ms:.1f}, max {self.max_step_ms:.1f})"
        )


def evaluate_episodes(
    policy: Predictor,
    env_id: str,
    seeds: Iterable[int],
    env_kwargs: dict[str, Any] | None = None,
) -> EpisodeResults:
    """Run one deterministic episode of ``policy`` per seed in ``gymnasium.make(env_id, **env_kwargs)``.

    Each episode starts from ``env.reset(seed=s)`` and lasts until the env terminates or
    truncates it (the registration's ``max_episode_steps`` unless ``env_kwargs`` sets one).
    When ``policy`` has SB3's ``get_vec_normalize_env()`` and it returns a ``VecNormalize``,
    observations pass through its ``normalize_obs`` (its statistics are not updated), as
    rl-zoo3 loads the saved statistics for evaluation. ``predict`` receives one
    unbatched observation, ``episode_start`` (true at an episode's first step, so a controller
    with memory, e.g. an MPC's warm start, starts afresh) and ``deterministic=True``; its
    action goes to ``env.step`` as it is.

    :param policy: any object with SB3's ``predict(obs, state, episode_start, deterministic)``
    :param env_id: a registered Gymnasium id
    :param seeds: one reset seed per episode
    :param env_kwargs: keyword arguments of ``gymnasium.make``
    :return: :class:`EpisodeResults`; the same seeds give the same returns for a deterministic policy
    :raises ValueError: for no seeds
    """
    seeds = np.asarray(list(seeds), dtype=np.int64)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    act = _predictor_act(policy)
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        runs = [run_episode(act, env, seed=int(seed)) for seed in seeds]
    finally:
        env.close()
    reported = all(r.info is not None and "is_success" in r.info for r in runs)
    return EpisodeResults(seeds, np.array([r.episode_return for r in runs]), np.array([len(r.rewards) for r in runs], dtype=np.int64),
                          np.concatenate([r.step_ns for r in runs]).astype(np.float64) / 1e6,
                          np.array([bool(r.info["is_success"]) for r in runs]) if reported else None,
                          np.concatenate([r.step_start_ns for r in runs]), np.concatenate([r.step_cpu_ns for r in runs]).astype(np.float64) / 1e6)  # fmt: skip


def _predictor_act(policy: Predictor) -> Act:
    """:func:`evaluate_episodes`' policy: one observation (through the policy's ``VecNormalize``
    statistics, if any) to ``predict(obs, episode_start, deterministic=True)``."""
    get_vec_normalize = getattr(policy, "get_vec_normalize_env", None)
    vec_normalize = get_vec_normalize() if callable(get_vec_normalize) else None

    def act(observations: np.ndarray, first: bool) -> np.ndarray:
        obs = observations[0] if vec_normalize is None else vec_normalize.normalize_obs(observations[0])
        action, _ = policy.predict(obs, episode_start=np.array([first]), deterministic=True)
        return np.asarray(action)[None]

    return act


class _FrameRecorder(gym.Wrapper):
    """Keeps ``env.render()``'s frame after the reset, after every ``every``-th step and after the last one."""

    def __init__(self, env: gym.Env, every: int) -> None:
        super().__init__(env)
        self.every = int(every)
        self.frames: list[np.ndarray] = []
        self._steps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        result = self.env.reset(**kwargs)
        frame = self.env.render()
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3):
            raise ValueError(f"{self.env.spec.id if self.env.spec else type(self.env.unwrapped).__name__} renders no rgb_array "
                             f"frames (render() gave {type(frame).__name__})")  # fmt: skip
        self.frames, self._steps = [frame], 0
        return result

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        result = self.env.step(action)
        self._steps += 1
        if self._steps % self.every == 0 or result[2] or result[3]:
            self.frames.append(self.env.render())
        return result


def rendering_problem(env_id: str, env_kwargs: dict[str, Any] | None = None, timeout: float = 120.0) -> str | None:
    """Why ``gymnasium.make(env_id, render_mode="rgb_array", **env_kwargs)`` renders no ``rgb_array`` frame after a
    reset, in words, or ``None`` when it does. Tried in a forked process: a renderer that ends its process
    (e.g. MuJoCo's OpenGL without a display aborts) ends only that one.

    :param timeout: seconds the try may take (then it is stopped and that is the reason)
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_try_rendering, args=(env_id, dict(env_kwargs or {}), sender), daemon=True)
    process.start()
    sender.close()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return f"rendering a frame took over {timeout:g} s"
    if receiver.poll():
        return receiver.recv()
    return f"the renderer ended its process (exit code {process.exitcode})"


def _try_rendering(env_id: str, env_kwargs: dict[str, Any], sender: Any) -> None:
    try:
        env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
        env.reset(seed=0)
        frame = env.render()
        ok = isinstance(frame, np.ndarray) and frame.ndim == 3
        sender.send(None if ok else f"render() gave {type(frame).__name__}, not an rgb_array frame")
    except Exception as exc:  # noqa: BLE001  (any failure is the answer, sent to the parent)
        sender.send(f"{type(exc).__name__}: {' '.join(str(exc).split())}")


class RenderedEpisode(NamedTuple):
    """One episode of :func:`render_episode`: its :class:`Trajectory`, the ``frames`` (H, W, 3) ``uint8``
    and the frame rate ``fps`` at which they play in real time."""

    trajectory: Trajectory
    frames: list[np.ndarray]
    fps: float


def render_episode(policy: Predictor, env_id: str, seed: int, max_frames: int = 60, env_kwargs: dict[str, Any] | None = None) -> RenderedEpisode:
    """One deterministic episode of ``policy`` as :func:`evaluate_episodes` plays it (reset seed ``seed``), in
    ``gymnasium.make(env_id, render_mode="rgb_array", **env_kwargs)``, with frames of it: after the reset, after
    every ``k``-th step and after the last, ``k`` chosen so that an episode of the env's time limit gives at
    most ``max_frames`` + 1 frames.

    :raises gymnasium.error.Error: the env cannot render (e.g. ``DependencyNotInstalled``: a renderer not
        installed), at the reset, before the policy acts
    :raises ValueError: ``max_frames < 1``, or the env renders no ``rgb_array`` frame at the reset (e.g. ``None``)
    """
    if int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    env = gym.make(env_id, render_mode="rgb_array", **(env_kwargs or {}))
    try:
        limit = env.spec.max_episode_steps if env.spec is not None and env.spec.max_episode_steps else int(max_frames)
        every = max(1, -(-int(limit) // int(max_frames)))
        recorder = _FrameRecorder(env, every)
        trajectory = run_episode(_predictor_act(policy), recorder, seed=int(seed))
        frames = recorder.frames
    finally:
        env.close()
    fps = float(env.metadata.get("render_fps") or 1.0 / getattr(env.unwrapped, "dt", 1.0)) / every
    return RenderedEpisode(trajectory, frames, fps)
