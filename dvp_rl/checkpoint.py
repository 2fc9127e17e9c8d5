"""One-zip save/load of an agent, SB3 style, written atomically: the file format and ``DVP``'s save and load.

Layout of the zip: ``data`` (JSON: settings and training state), ``value_net.pth`` (torch state
dict), ``arrays.npz`` (numpy arrays), ``dvp_rl_version``, ``format_version`` and ``system_info.txt``.
Nothing in a file runs code (JSON, ``torch.load(weights_only=True)``, numpy without pickle), and
nothing in it decides where the loading process connects: execution settings are the caller's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import io
import json
import logging
import os
import platform
import re
import socket
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

#: the format written: 2 (settings grouped by config: ``network``, ``fit``, ``collect``, ``mpc``)
FORMAT_VERSION = 2
#: the formats read (1: the flat settings of dvp_rl 0.1.0, converted on load)
READABLE_FORMATS = (1, 2)
REQUIRED_ENTRIES = ("data", "value_net.pth", "arrays.npz", "format_version")
#: keys the ``data`` entry must hold, with their JSON types
REQUIRED_DATA_KEYS: dict[str, type] = {
    "class": str,
    "env_id": str,
    "hyperparameters": dict,
    "iteration": int,
    "num_timesteps": int,
    "rng_state": dict,
}
#: arrays of an agent checkpoint that hold states, shape (N, nx)
STATE_ARRAYS = ("validation_states", "final_states")
#: seconds after which a temporary file of an unfinished write is removed whoever wrote it (see
#: :func:`write_checkpoint`); a write takes seconds, so a temporary this old is no live write's
STALE_TEMPORARY_SECONDS = 3600.0


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples, paths, types and dataclasses turned into JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, type):
        return value.__name__
    return value


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or incompatible."""


class CheckpointInUseError(CheckpointError):
    """A checkpoint file that another run is writing (it holds the lock of :func:`checkpoint_lock`)."""


def system_info() -> str:
    import crocoddyl
    import gymnasium
    import pinocchio

    from dvp_rl import __version__

    return "\n".join(
        [
            f"dvp_rl: {__version__}",
            f"Python: {platform.python_version()}",
            f"OS: {platform.platform()}",
            f"numpy: {np.__version__}",
            f"torch: {torch.__version__}",
            f"crocoddyl: {crocoddyl.__version__}",
            f"pinocchio: {pinocchio.__version__}",
            f"gymnasium: {gymnasium.__version__}",
        ]
    )


def write_checkpoint(path: str | os.PathLike, data: dict[str, Any], state_dict: dict[str, torch.Tensor], arrays: dict[str, np.ndarray]) -> Path:
    """Write the zip to ``path`` (``.zip`` appended if missing) atomically and durably.

    The zip is written to a temporary file next to ``path``, fsync'ed, renamed over ``path`` and
    the folder fsync'ed: a crash or a power cut leaves either the old file or the new one. Each
    write has its own temporary, ``<name>.<host>.<pid>.<random>.tmp`` (``tempfile.mkstemp``), so
    that writers in several processes or threads never share one; the last rename wins.

    Temporaries that interrupted writes left (``kill -9``) are removed first, but never a live
    writer's: one is removed when the process its name records is no longer running on this
    host, or when it is older than :data:`STALE_TEMPORARY_SECONDS` whatever its name says (a pid
    reused since, another host's crashed writer, the ``<name>*.tmp`` of older versions). Returns
    the path written.
    """
    from dvp_rl import __version__

    path = _zip_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net_bytes = io.BytesIO()
    torch.save(state_dict, net_bytes)
    arr_bytes = io.BytesIO()
    np.savez(arr_bytes, **arrays)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("data", json.dumps(data, indent=2))
                archive.writestr("value_net.pth", net_bytes.getvalue())
                archive.writestr("arrays.npz", arr_bytes.getvalue())
                archive.writestr("dvp_rl_version", __version__)
                archive.writestr("format_version", str(FORMAT_VERSION))
                archive.writestr("system_info.txt", system_info())
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the rename makes it the checkpoint
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _zip_path(path: str | os.PathLike) -> Path:
    """``path`` with ``.zip`` appended if it lacks it (what :func:`write_checkpoint` writes)."""
    path = Path(path)
    return path if path.suffix == ".zip" else path.with_name(path.name + ".zip")


#: this host's name as it appears in temporary file names (letters, digits and dashes)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporaries of interrupted writes of ``path`` in its folder (see :func:`write_checkpoint`)."""
    named = re.compile(re.escape(path.name) + r"\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[^.]+\.tmp")
    now = time.time()
    for temporary in path.parent.glob(glob.escape(path.name) + "*.tmp"):
        try:
            age = now - temporary.stat().st_mtime
        except FileNotFoundError:  # its writer renamed it, or another writer removed it
            continue
        match = named.fullmatch(temporary.name)
        dead = match is not None and match["host"] == _HOST and not _pid_running(int(match["pid"]))
        if dead or age > STALE_TEMPORARY_SECONDS:
            logger.info("removing %s, left by an interrupted checkpoint write", temporary)
            temporary.unlink(missing_ok=True)


def _pid_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (POSIX; elsewhere assumed so: only the age rule applies)."""
    if os.name != "posix":
        return True
    if pid <= 0:  # not a writer's pid (and os.kill would signal a process group)
        return False
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only the existence is checked
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@contextlib.contextmanager
def checkpoint_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an advisory lock on the checkpoint ``path`` (``.zip`` appended if missing) for the
    duration of the ``with`` block: what ``DVP.learn`` holds around its iterations, so that two
    runs never write the same checkpoint in turns (the last writer would win silently).

    The lock is ``fcntl.flock`` on ``<path>.lock`` next to the checkpoint, which records the pid
    of its holder; the operating system releases it when the holder exits, even by ``kill -9``,
    and the file itself stays (removing it would race with a run that opened it). Processes
    forked while it is held share it until they exit. Where ``fcntl`` is missing (Windows) no
    lock is taken. Yields the lock file's path.

    :raises CheckpointInUseError: another run (or another ``with`` block) holds the lock; the
        message names the checkpoint, the lock file and the holder's pid
    """
    path = _zip_path(path)
    lock = path.with_name(path.name + ".lock")
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield lock
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", errors="replace").strip() or "unknown"
            raise CheckpointInUseError(
                f"{path} is in use: another run (process {holder}) holds its lock {lock}; "
                "give each run its own checkpoint_dir (or wait for that run to end)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        try:
            yield lock
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """fsync ``folder`` so that a rename in it is durable (POSIX; a no-op elsewhere or where the
    file system cannot fsync a folder)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        logger.debug("%s cannot be fsync'ed (%s); the rename is not made durable", folder, exc)
    finally:
        os.close(fd)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Read ``(data, state_dict, arrays)`` of a checkpoint written by :func:`write_checkpoint`.

    Nothing in the file can run code: ``data`` is JSON, the state dict is read with
    ``torch.load(weights_only=True)`` and the arrays without pickle. The structure is checked:
    ``data`` is a JSON object with the :data:`REQUIRED_DATA_KEYS` (``iteration`` and
    ``num_timesteps`` non-negative integers), the state dict maps names to tensors, the arrays
    are plain numeric arrays. The contents (finite values, shapes) are checked by
    :func:`check_contents` against the agent that loads them.

    :raises CheckpointError: for a missing, corrupt, truncated, incompatible or damaged file; the
        message names the path and the problem
    """
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".zip").exists():
        path = path.with_name(path.name + ".zip")
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [e for e in REQUIRED_ENTRIES if e not in names]
            if missing:
                raise CheckpointError(f"{path} is not a dvp_rl checkpoint: missing {missing}")
            entries = {name: archive.read(name) for name in REQUIRED_ENTRIES}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc})") from exc
    version = entries["format_version"].decode("ascii", errors="replace").strip()
    if not version.isdigit():
        raise CheckpointError(f"{path} is damaged: format_version is {version[:20]!r}, not an integer")
    if int(version) not in READABLE_FORMATS:
        raise CheckpointError(f"{path} has checkpoint format {version}; this dvp_rl reads formats {list(READABLE_FORMATS)}")
    data = _parse_data(path, entries["data"])
    data["format_version"] = int(version)
    return data, _parse_state_dict(path, entries["value_net.pth"]), _parse_arrays(path, entries["arrays.npz"])


def _parse_data(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError
        raise CheckpointError(f"{path} is damaged: its data entry is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is damaged: its data entry must be a JSON object, got a {type(data).__name__}")
    missing = [key for key in REQUIRED_DATA_KEYS if key not in data]
    if missing:
        raise CheckpointError(f"{path} is damaged: its data entry lacks the required key(s) {missing}")
    for key, kind in REQUIRED_DATA_KEYS.items():
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"{path} is damaged: data[{key!r}] must be a JSON {kind.__name__}, got {value!r:.60}")
        if kind is int and value < 0:
            raise CheckpointError(f"{path} is damaged: data[{key!r}] must be >= 0, got {value}")
    return data


def _parse_state_dict(path: Path, raw: bytes) -> dict[str, torch.Tensor]:
    try:
        state_dict = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for bad bytes)
        # `from None`: torch's own message advises weights_only=False, i.e. running the file's code
        raise CheckpointError(
            f"{path} is damaged: value_net.pth is not a torch state dict of tensors "
            f"(torch.load(weights_only=True) refused it: {type(exc).__name__})"
        ) from None
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path} is damaged: value_net.pth holds a {type(state_dict).__name__}, not a state dict")
    for name, value in state_dict.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path} is damaged: value_net.pth[{name!r}] is a {type(value).__name__}, not a tensor")
    return dict(state_dict)


def _parse_arrays(path: Path, raw: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 (numpy raises many types for bad bytes)
        # `from None`: numpy's own message advises allow_pickle=True, i.e. running the file's code
        raise CheckpointError(
            f"{path} is damaged: arrays.npz is not a numpy archive of plain arrays ({type(exc).__name__})"
        ) from None
    return arrays


def check_contents(
    state_dict: Mapping[str, torch.Tensor],
    arrays: Mapping[str, np.ndarray],
    nx: int,
    state_arrays: Sequence[str] = STATE_ARRAYS,
    required_arrays: Sequence[str] = ("validation_states",),
    source: str | os.PathLike = "checkpoint",
) -> None:
    """Check the contents of a checkpoint that :func:`read_checkpoint` returned, for an env of state
    dimension ``nx``; returns ``None`` or raises.

    :param state_dict: the network's state dict: every value must be a floating-point tensor
        whose entries are all finite (no NaN, no inf)
    :param arrays: every array must be numeric (bool, integer or floating) with finite entries
    :param nx: the state dimension of the env the checkpoint is loaded into
    :param state_arrays: names of arrays that hold states: where present, their shape must be
        ``(N, nx)`` (any ``N >= 0``); absent ones are not required
    :param required_arrays: names that ``arrays`` must hold
    :param source: the file, named in the messages
    :raises CheckpointError: naming ``source``, the entry and the problem (the first one found)
    """
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise CheckpointError(f"{source} is damaged: value_net.pth[{name!r}] is not a floating-point tensor")
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{source} is damaged: value_net.pth[{name!r}] holds non-finite values (NaN or inf)")
    missing = [name for name in required_arrays if name not in arrays]
    if missing:
        raise CheckpointError(f"{source} is damaged: arrays.npz lacks {missing}")
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"{source} is damaged: arrays.npz[{name!r}] has dtype {array.dtype}, not a numeric one")
        if not np.all(np.isfinite(array)):
            raise CheckpointError(f"{source} is damaged: arrays.npz[{name!r}] holds non-finite values (NaN or inf)")
        if name in state_arrays and (array.ndim != 2 or array.shape[1] != int(nx)):
            raise CheckpointError(f"{source} does not fit this env: arrays.npz[{name!r}] has shape {array.shape}, expected (N, {int(nx)})")


# ---------------------------------------------------------------------------- the agent's file
def save_agent(agent: Any, path: str | os.PathLike) -> Path:
    """Write ``agent`` (a :class:`dvp_rl.agent.DVP`) to one zip at ``path`` (:func:`write_checkpoint`).

    ``data`` holds the class, the env learned on and the env acted in (ids and arguments), the
    settings (:meth:`~dvp_rl.agent.DVP.hyperparameters`), the execution settings (``parallel``, for
    the record only: :func:`load_agent` does not use them), the iteration and counters and the
    generator's state; the arrays hold the validation states and values and the last plan ends.
    """
    data = {
        "class": type(agent).__name__,
        "env_id": agent.env_id,
        "env_kwargs": jsonable(agent.env_kwargs),
        "real_env": {"id": agent.user_id, "kwargs": jsonable(agent.user_kwargs)},
        "parallel": jsonable(dataclasses.asdict(agent.parallel)),
        "hyperparameters": jsonable(agent.hyperparameters()),
        "net_config": agent.value_net.config,
        "iteration": agent.iteration,
        "num_timesteps": agent.num_timesteps,
        "failed_solves": agent.failed_solves,
        "lost_solves": agent.lost_solves,
        "rng_state": agent._rng.bit_generator.state,
    }
    arrays = {"validation_states": agent._validation_states}
    if agent._validation_values is not None:
        arrays["validation_values"] = agent._validation_values
    if agent._final_states is not None:
        arrays["final_states"] = agent._final_states
    return write_checkpoint(path, jsonable(data), agent.value_net.state_dict(), arrays)


def saved_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor settings a checkpoint's ``data`` (:func:`read_checkpoint`) stores, a format-1
    file's translated (:func:`settings_of_format_1`): what :meth:`DVP.load` builds the agent from."""
    hyper = dict(data["hyperparameters"])
    return settings_of_format_1(hyper) if data["format_version"] == 1 else hyper


def settings_of_format_1(hyper: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a format-1 file (flat constructor arguments of dvp_rl 0.1.0) as format 2's configs."""
    mpc = dict(hyper.get("mpc_kwargs") or {})
    search = {new: mpc.pop(old) for old, new in (("prefix_steps", "steps"), ("prefix_reverse_steps", "reverse_steps"),
                                                 ("prefix_rollout", "rollout")) if old in mpc}  # fmt: skip
    if search.get("steps"):
        mpc["search"] = search
    mpc.update({"horizon": hyper.get("mpc_horizon"), "env_kwargs": dict(hyper.get("mpc_env_kwargs") or {})})
    pick = lambda *names: {n: hyper[n] for n in names if n in hyper}  # noqa: E731
    fit = pick("learning_rate", "batch_size", "max_epochs", "patience", "polish_steps", "validation_fraction")
    if "sobolev_weights" in hyper:
        fit["weights"] = hyper["sobolev_weights"]
    network = pick("net_arch", "residual_dim")
    if "value_net" in hyper:
        network["kind"] = hyper["value_net"]
    return {
        **pick("horizon", "n_samples", "gamma", "seed"),
        "network": network,
        "fit": fit,
        "collect": pick("max_iter", "th_stop", "initial_terminal", "final_state_fraction", "anchor_goal", "n_validation"),
        "mpc": mpc,
    }


def _check_same_task(path: str | os.PathLike, agent: Any, data: dict[str, Any], saved_kwargs: Any) -> None:
    """A file loaded into an env of the caller's: the model it learned on must be the env's (same
    dynamics, cost and bounds, :func:`envs.base.model_difference`), or the value is another task's;
    another episode length is only warned about (SB3 loads a model into any env of its spaces)."""
    import gymnasium as gym

    import envs
    from envs.base import model_difference

    try:
        saved = envs.make(data["env_id"], data.get("env_kwargs") or {}).unwrapped
    except (ValueError, TypeError, gym.error.Error) as exc:
        raise CheckpointError(f"{path}'s env {data['env_id']!r} with {data.get('env_kwargs')} cannot be made to compare ({exc})") from exc
    difference = model_difference(saved, agent.system)
    if difference is not None:
        raise CheckpointError(
            f"{path} learned the value of another model than this env's ({data['env_id']} with {data.get('env_kwargs')} against "
            f"{agent.env_id} with {agent.env_kwargs}): {difference}"
        )
    saved_steps = (saved_kwargs or {}).get("max_episode_steps") if isinstance(saved_kwargs, dict) else None
    user_id = data["real_env"]["id"] if isinstance(data.get("real_env"), dict) else data["env_id"]
    if saved_steps is None and user_id in gym.registry:
        saved_steps = gym.registry[user_id].max_episode_steps
    spec = getattr(agent.env, "spec", None)
    steps = getattr(spec, "max_episode_steps", None)
    if saved_steps is not None and steps is not None and int(saved_steps) != int(steps):
        logger.warning("%s was trained for episodes of %s steps; this env's last %s (the value does not depend on it)", path, saved_steps, steps)


def load_agent(cls: type, path: str | os.PathLike, env: Any = None, allow_module_import: bool = False, **kwargs: Any) -> Any:
    """Load an agent of class ``cls`` saved by :func:`save_agent`.

    ``env`` defaults to the saved env id and arguments; ``kwargs`` override settings such as
    ``parallel``, ``n_workers``, ``tensorboard_log``, ``checkpoint_dir`` or ``verbose``. The
    execution settings are the caller's (this process's defaults unless given): the file's
    ``parallel`` entry is informational, so a file cannot choose a backend or an address to
    connect to. ``learn`` goes on writing its checkpoint to ``path`` (a resumed run keeps
    protecting its iterations) unless ``checkpoint_dir`` is given.

    Nothing in the file runs code: an env id of Gymnasium's ``"module:id"`` form, which imports
    ``module``, is refused unless ``allow_module_import`` (trust the file first).

    :raises CheckpointError: a missing, corrupt, truncated, damaged (NaN weights, arrays of the
        wrong shape) or incompatible file, naming the problem
    """
    data, state_dict, arrays = read_checkpoint(path)
    if data.get("class") != cls.__name__:
        raise CheckpointError(f"{path} holds a {data.get('class')!r}, not a {cls.__name__}")
    real = data.get("real_env")
    try:
        saved_id, saved_kwargs = (real["id"], real["kwargs"]) if real else (data["env_id"], data.get("env_kwargs"))
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is damaged: its real_env entry is not {{'id', 'kwargs'}} ({exc})") from exc
    importing = [str(i) for i in (saved_id, data["env_id"]) if ":" in str(i)]
    if importing and not allow_module_import and env is None:
        raise CheckpointError(
            f"{path} names the env {importing[0]!r}, which would import the module {importing[0].split(':')[0]!r}; "
            "pass allow_module_import=True if you trust the file, or env=... to load it into an env you made"
        )
    try:
        settings = saved_settings(data)
        env_arg = env if env is not None else saved_id
        env_kwargs = saved_kwargs if isinstance(env_arg, str) else None
        agent = cls(env_arg, env_kwargs=env_kwargs, **{**settings, **kwargs})
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is incompatible with this env or dvp_rl version ({type(exc).__name__}: {exc})") from exc
    if agent.env_id != data["env_id"]:
        raise CheckpointError(f"{path} was trained on {data['env_id']!r}, not {agent.env_id!r}")
    if env is not None:
        _check_same_task(path, agent, data, saved_kwargs)
    check_contents(state_dict, arrays, agent.system.nx, source=path)
    net = data.get("net_config") or {}
    saved_net = (net.get("kind"), net.get("nx"), tuple(net.get("angle_dims", ())))
    expected = (agent.network.kind, agent.system.nx, tuple(agent.system.angle_dims))
    if saved_net != expected:
        raise CheckpointError(
            f"{path}'s network (kind, nx, angle_dims) = {saved_net} does not fit {agent.env_id}, which needs {expected}: "
            "the file was edited or belongs to another env"
        )
    try:
        agent.value_net.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}'s network does not fit its settings ({exc})") from exc
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
    agent._arrays = agent.value_net.export()
    agent._refresh_controller()
    if "checkpoint_dir" not in kwargs:
        agent._checkpoint_file = Path(path)
    return agent
