"""Checkpoint files: every damaged file is a CheckpointError naming the problem, nothing in a file
runs code, writes are atomic and durable (fsync) and clean up after interrupted ones."""

import io
import json
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback

from dvp_rl.agent import DVP
from dvp_rl.config import merge_settings
from dvp_rl.checkpoint import CheckpointError, check_contents, read_checkpoint, write_checkpoint

NX = 2


def good_parts() -> tuple[dict, dict, dict]:
    """``(data, state_dict, arrays)`` shaped like an agent's checkpoint of a 2-state env."""
    data = {"class": "DVP", "env_id": "dvp_rl/LinearQuadratic-v0", "hyperparameters": {"horizon": 5}, "iteration": 3,
            "num_timesteps": 1200, "rng_state": {"bit_generator": "PCG64"}}  # fmt: skip
    state_dict = torch.nn.Linear(NX, 4).state_dict()
    arrays = {"validation_states": np.zeros((5, NX)), "validation_values": np.ones(5), "final_states": np.ones((7, NX))}
    return data, state_dict, arrays


@pytest.fixture
def good(tmp_path) -> Path:
    return write_checkpoint(tmp_path / "ckpt.zip", *good_parts())


def replace_entry(path: Path, entry: str, payload: bytes | None) -> Path:
    """A copy of the zip ``path`` with ``entry`` replaced by ``payload`` (removed if ``None``)."""
    out = path.with_name(f"damaged_{entry}.zip")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name != entry:
                dst.writestr(name, src.read(name))
            elif payload is not None:
                dst.writestr(name, payload)
    return out


def with_data(**changes) -> bytes:
    data = good_parts()[0]
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


class RunsCode:
    """A pickle that creates a file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


DAMAGES = {
    "data: no iteration": ("data", with_data(iteration=None), r"lacks the required key\(s\) \['iteration'\]"),
    "data: no env_id, no rng_state": ("data", with_data(env_id=None, rng_state=None), r"\['env_id', 'rng_state'\]"),
    "data: a list": ("data", b"[1, 2]", "must be a JSON object, got a list"),
    "data: not JSON": ("data", b"{'iteration': 3", "data entry is not JSON"),
    "data: not UTF-8": ("data", b"\xff\xfe\x00", "data entry is not JSON"),
    "data: iteration a string": ("data", with_data(iteration="abc"), r"data\['iteration'\] must be a JSON int"),
    "data: negative num_timesteps": ("data", with_data(num_timesteps=-5), r"data\['num_timesteps'\] must be >= 0"),
    "value_net.pth: random bytes": ("value_net.pth", os.urandom(3000), "value_net.pth is not a torch state dict"),
    "value_net.pth: a list": ("value_net.pth", torch_bytes([torch.zeros(2)]), "holds a list, not a state dict"),
    "value_net.pth: an int": ("value_net.pth", torch_bytes({"weight": 3}), r"value_net.pth\['weight'\] is a int, not a tensor"),
    "arrays.npz: random bytes": ("arrays.npz", os.urandom(500), "arrays.npz is not a numpy archive"),
    "format_version: text": ("format_version", b"abc", "format_version is 'abc', not an integer"),
    "format_version: other": ("format_version", b"7", "has checkpoint format 7"),
    "no arrays.npz": ("arrays.npz", None, r"missing \['arrays.npz'\]"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_a_checkpoint_error_naming_the_problem(good, damage):
    entry, payload, message = DAMAGES[damage]
    path = replace_entry(good, entry, payload)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(path)
    assert str(path) in str(info.value)
    # never torch's or numpy's advice to turn their safety off (running the file's code)
    chained = info.value.__cause__ or (None if info.value.__suppress_context__ else info.value.__context__)
    shown = f"{info.value} {chained or ''}"
    assert "weights_only=False" not in shown and "allow_pickle" not in shown


def test_a_damaged_zip_is_a_checkpoint_error(good):
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo("value_net.pth")
    start = info.header_offset + 30 + len(info.filename)  # the compressed bytes of the entry
    intact = read_checkpoint(good)
    offsets = range(start, start + info.compress_size, max(1, info.compress_size // 8))
    refused = 0
    for offset in offsets:
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        good.with_name("flipped.zip").write_bytes(bytes(flipped))
        try:
            read = read_checkpoint(good.with_name("flipped.zip"))
        except CheckpointError as exc:
            assert re.search("corrupt or truncated|is damaged", str(exc))
            refused += 1
            continue
        # The flip hit bits that nothing reads: the deflate stream's last byte can hold only
        # padding, or its end-of-block code, so that the entry's size and CRC still hold. The
        # reader must then return exactly the intact contents, never different numbers.
        assert offset >= start + info.compress_size - 2
        assert read[0] == intact[0]
        assert all(torch.equal(read[1][k], intact[1][k]) for k in intact[1])
    assert refused >= len(offsets) - 1
    good.with_name("truncated.zip").write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_checkpoint(good.with_name("truncated.zip"))


def test_a_pickle_in_a_checkpoint_does_not_run(good, tmp_path):
    marker = tmp_path / "ran"
    path = replace_entry(good, "value_net.pth", pickle.dumps({"weight": RunsCode(marker)}))
    with pytest.warns(UserWarning, match="pickle protocol"), pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(path)
    assert not marker.exists()


def test_dvp_load_of_a_file_without_required_keys_is_a_checkpoint_error(tmp_path):
    agent = DVP("dvp_rl/LinearQuadratic-v0", horizon=5, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)}, n_workers=1,
                checkpoint_dir=None)  # fmt: skip
    path = agent.save(tmp_path / "agent.zip")
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    del data["iteration"]
    with pytest.raises(CheckpointError, match=r"lacks the required key\(s\) \['iteration'\]"):  # was a bare KeyError
        DVP.load(replace_entry(path, "data", json.dumps(data).encode()))


def test_check_contents_names_non_finite_values_and_wrong_shapes(good):
    _, state_dict, arrays = read_checkpoint(good)
    check_contents(state_dict, arrays, NX, source=good)  # a good file passes
    check_contents(state_dict, {"validation_states": arrays["validation_states"]}, NX)  # final_states is optional
    nan_weight = {**state_dict, "weight": torch.full_like(state_dict["weight"], float("nan"))}
    with pytest.raises(CheckpointError, match=r"ckpt.zip is damaged: value_net.pth\['weight'\] holds non-finite values"):
        check_contents(nan_weight, arrays, NX, source=good)
    with pytest.raises(CheckpointError, match=r"value_net.pth\['bias'\] is not a floating-point tensor"):
        check_contents({**state_dict, "bias": torch.zeros(4, dtype=torch.int64)}, arrays, NX)
    with pytest.raises(CheckpointError, match=r"arrays.npz\['validation_values'\] holds non-finite values"):
        check_contents(state_dict, {**arrays, "validation_values": np.array([1.0, np.inf])}, NX)
    with pytest.raises(CheckpointError, match=r"arrays.npz\['final_states'\] has shape \(4, 5\), expected \(N, 2\)"):
        check_contents(state_dict, {**arrays, "final_states": np.zeros((4, 5))}, NX)
    with pytest.raises(CheckpointError, match=r"arrays.npz\['validation_states'\] has shape \(6,\), expected \(N, 2\)"):
        check_contents(state_dict, {**arrays, "validation_states": np.zeros(6)}, NX)
    with pytest.raises(CheckpointError, match=r"arrays.npz lacks \['validation_states'\]"):
        check_contents(state_dict, {"final_states": arrays["final_states"]}, NX)
    with pytest.raises(CheckpointError, match="dtype <U1, not a numeric one"):
        check_contents(state_dict, {**arrays, "names": np.array(["a"])}, NX)
    # a checkpoint written with NaN weights is caught after reading
    data, state_dict, arrays = good_parts()
    state_dict["weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite"):
        check_contents(*read_checkpoint(write_checkpoint(good.with_name("nan.zip"), data, state_dict, arrays))[1:], NX)


def finished_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_the_next_write_removes_temporaries_of_interrupted_writes_only(tmp_path):
    from dvp_rl.checkpoint import _HOST, STALE_TEMPORARY_SECONDS

    path = tmp_path / "dvp_checkpoint.zip"
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    stale = {  # name: mtime (None: now)
        f"dvp_checkpoint.zip.{_HOST}.{finished_pid()}.k3j4h5.tmp": None,  # its writer died (kill -9)
        "dvp_checkpoint.zipq1w2e3r4.tmp": old,  # older naming, old
        "dvp_checkpoint.zip.a8b7c6.tmp": old,
        f"dvp_checkpoint.zip.other-host.{os.getpid()}.x9y8z7.tmp": old,  # another host's, old
        f"dvp_checkpoint.zip.{_HOST}.{os.getpid()}.u7v6w5.tmp": old,  # a live pid, but too old to be a write (a reused pid)
    }
    live = {
        f"dvp_checkpoint.zip.{_HOST}.{os.getpid()}.a1b2c3.tmp": None,  # a write in progress (this process: another thread)
        f"dvp_checkpoint.zip.{_HOST}.{os.getppid()}.d4e5f6.tmp": None,  # in another live process
        f"dvp_checkpoint.zip.other-host.{finished_pid()}.g7h8i9.tmp": None,  # another host's: its pid means nothing here
        "dvp_checkpoint.zip.b9c8d7.tmp": None,  # older naming, recent: maybe an older version's live write
    }
    others = ["other.zip.x1.tmp", "notes.txt"]
    for name, mtime in {**stale, **live, **dict.fromkeys(others)}.items():
        (tmp_path / name).write_bytes(b"half a zip")
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    write_checkpoint(path, *good_parts())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dvp_checkpoint.zip", *live, *others])
    assert read_checkpoint(path)[0]["iteration"] == 3


def _save_many(agent: DVP, path: Path, n: int, barrier, errors) -> None:
    barrier.wait()
    failed = []
    for _ in range(n):
        try:
            agent.save(path)
        except Exception as exc:  # noqa: BLE001 (counted and reported by the test)
            failed.append(f"{type(exc).__name__}: {exc}")
    errors.put(failed)


def test_two_processes_saving_to_one_path_never_fail(tmp_path):
    """Before: each writer deleted the other's temporary file as stale (~half the saves failed)."""
    agent = tiny_dvp(checkpoint_dir=None)
    path = tmp_path / "agent.zip"
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(2), context.Queue()
    writers = [context.Process(target=_save_many, args=(agent, path, 150, barrier, errors)) for _ in range(2)]
    for writer in writers:
        writer.start()
    failed = [errors.get(timeout=120) for _ in writers]
    for writer in writers:
        writer.join(timeout=30)
    assert [w.exitcode for w in writers] == [0, 0]
    assert failed == [[], []], f"{sum(map(len, failed))} failed saves, e.g. {(failed[0] or failed[1])[:1]}"
    assert DVP.load(path, n_workers=1).iteration == 0  # a valid checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.zip"]  # no temporary left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd to name what is fsync'ed")
def test_write_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)  # spies: the real calls still run
    monkeypatch.setattr(os, "replace", replace)
    path = write_checkpoint(tmp_path / "ckpt.zip", *good_parts())
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[0][1].endswith(".tmp") and Path(events[0][1]).parent == tmp_path
    assert events[1][1] == str(path) and events[2][1] == str(tmp_path)


# ---------------------------------------------------------------------------- DVP.load
def tiny_dvp(env_id: str = "dvp_rl/LinearQuadratic-v0", **kwargs) -> DVP:
    settings = dict(horizon=5, n_samples=20, collect={"n_validation": 5}, network={"net_arch": (8,)}, fit={"max_epochs": 3, "polish_steps": 0},
                    n_workers=1, seed=0)  # fmt: skip
    return DVP(env_id, **merge_settings(settings, kwargs))


def edited(path: Path, **changes) -> Path:
    """A copy of the agent's file ``path`` whose JSON data has ``changes``."""
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    data.update(changes)
    return replace_entry(path, "data", json.dumps(data).encode())


def test_a_resumed_agent_keeps_checkpointing_with_the_callers_execution_settings(tmp_path):
    from dvp_rl.control.pool import ParallelConfig, default_workers

    agent = tiny_dvp(parallel=ParallelConfig(1, solve_timeout=30.0), checkpoint_dir=str(tmp_path)).learn(1)
    path = tmp_path / "dvp_checkpoint.zip"
    assert read_checkpoint(path)[0]["parallel"]["solve_timeout"] == 30.0  # recorded, for the record only
    resumed = DVP.load(path, n_workers=1)  # no tensorboard folder, no checkpoint_dir: before, 'auto' wrote nothing
    assert resumed.parallel == ParallelConfig(1, "local", None, None) != agent.parallel  # the caller's, not the file's
    assert DVP.load(path).parallel == ParallelConfig(default_workers(), "local", None, None)
    resumed.learn(1, reset_num_timesteps=False)
    assert read_checkpoint(path)[0]["iteration"] == 2
    assert DVP.load(path, n_workers=2).parallel == ParallelConfig(2, "local", None, None)  # overridden, not merged
    elsewhere = tmp_path / "other"
    DVP.load(path, checkpoint_dir=str(elsewhere)).learn(1, reset_num_timesteps=False)
    assert read_checkpoint(elsewhere / "dvp_checkpoint.zip")[0]["iteration"] == 3


def test_loading_never_imports_a_module_the_file_names(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tiny_dvp(checkpoint_dir=None).save(tmp_path / "agent.zip")
    crafted = edited(path, env_id="planted_module:dvp_rl/LinearQuadratic-v0", real_env={"id": "planted_module:dvp_rl/LinearQuadratic-v0", "kwargs": {}})
    with pytest.raises(CheckpointError, match="allow_module_import=True"):
        DVP.load(crafted)
    assert not marker.exists() and "planted_module" not in sys.modules


def test_damaged_contents_are_refused_at_load_time(tmp_path):
    agent = tiny_dvp(checkpoint_dir=None).learn(1)
    path = agent.save(tmp_path / "agent.zip")
    _, state_dict, arrays = read_checkpoint(path)
    nan_weights = {k: torch.full_like(v, float("nan")) if k.endswith("weight") else v for k, v in state_dict.items()}
    with pytest.raises(CheckpointError, match="non-finite"):  # before: loaded, and value() returned NaN
        DVP.load(replace_entry(path, "value_net.pth", torch_bytes(nan_weights)))
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, "final_states": np.ones((4, 5))})
    with pytest.raises(CheckpointError, match=r"final_states.*\(4, 5\)"):  # before: loaded, learn failed later
        DVP.load(replace_entry(path, "arrays.npz", buffer.getvalue()))
    pendulum = tiny_dvp("dvp_rl/Pendulum-v0", checkpoint_dir=None).save(tmp_path / "pendulum.zip")
    with pytest.raises(CheckpointError, match="does not fit dvp_rl/LinearQuadratic-v0"):  # same nx, other env
        DVP.load(edited(pendulum, env_id="dvp_rl/LinearQuadratic-v0", env_kwargs={}, real_env={"id": "dvp_rl/LinearQuadratic-v0", "kwargs": {}}))
    with pytest.raises(CheckpointError, match="batch_size"):
        hyper = read_checkpoint(path)[0]["hyperparameters"]
        DVP.load(edited(path, hyperparameters={**hyper, "fit": {**hyper["fit"], "batch_size": 0}}))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"fit": {"batch_size": 0}}, "batch_size"), ({"fit": {"learning_rate": -1e-3}}, "learning_rate"),
     ({"fit": {"validation_fraction": 1.0}}, "validation_fraction"), ({"mpc": {"horizon": 0}}, "mpc.horizon"),
     ({"collect": {"th_stop": -1.0}}, "th_stop"), ({"collect": {"n_validation": 0}}, "n_validation"), ({"horizon": 10.5}, "horizon"),
     ({"n_samples": 99.9}, "n_samples"), ({"collect": {"max_iter": 0}}, "max_iter"), ({"fit": {"bogus": 1}}, r"unknown FitConfig field\(s\) \['bogus'\]"),
     ({"mpc": {"search": {"steps": []}}}, "search.steps"), ({"network": {"net_arch": [0]}}, "net_arch")],
)  # fmt: skip
def test_dvp_arguments_are_checked_when_the_agent_is_made(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_dvp(checkpoint_dir=None, **kwargs)


def test_the_file_does_not_choose_where_the_process_connects(tmp_path):
    """A checkpoint's parallel entry naming a Ray cluster is not used: the loaded agent solves locally."""
    path = tiny_dvp(checkpoint_dir=None).save(tmp_path / "agent.zip")
    crafted = edited(path, parallel={"backend": "ray", "ray_address": "ray://127.0.0.1:10099", "n_workers": 7, "solve_timeout": None})
    loaded = DVP.load(crafted, n_workers=1)
    assert loaded.parallel.backend == "local" and loaded.parallel.ray_address is None


def test_a_file_of_the_first_format_loads_into_the_same_agent(tmp_path):
    """Format 1 (dvp_rl 0.1.0) kept the settings flat; they are read into the configs."""
    agent = tiny_dvp(checkpoint_dir=None, mpc={"horizon": 4, "guesses": ["hold"], "search": {"steps": [2], "rollout": 3}}).learn(1)
    path = agent.save(tmp_path / "agent.zip")
    hyper = read_checkpoint(path)[0]["hyperparameters"]
    mpc = dict(hyper["mpc"])
    search = mpc.pop("search")
    flat = {
        "horizon": hyper["horizon"], "n_samples": hyper["n_samples"], "gamma": hyper["gamma"], "seed": hyper["seed"],
        "value_net": hyper["network"]["kind"], "net_arch": hyper["network"]["net_arch"], "residual_dim": hyper["network"]["residual_dim"],
        "sobolev_weights": hyper["fit"]["weights"], **{k: hyper["fit"][k] for k in ("learning_rate", "batch_size", "max_epochs", "patience",
                                                                                 "polish_steps", "validation_fraction")},
        **hyper["collect"], "mpc_horizon": mpc.pop("horizon"), "mpc_env_kwargs": mpc.pop("env_kwargs"),
        "mpc_kwargs": {**mpc, "prefix_steps": search["steps"], "prefix_reverse_steps": search["reverse_steps"], "prefix_rollout": search["rollout"]},
    }  # fmt: skip
    old = replace_entry(edited(path, hyperparameters=flat), "format_version", b"1")
    loaded = DVP.load(old, n_workers=1)
    assert loaded.hyperparameters() == agent.hyperparameters()
    X = agent.system.sample_states(4, 1)
    np.testing.assert_array_equal(loaded.value(X), agent.value(X))
    with pytest.raises(CheckpointError, match=r"reads formats \[1, 2\]"):
        DVP.load(replace_entry(path, "format_version", b"7"))


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(os.name != "posix", reason="the lock is fcntl.flock")
def test_a_second_run_on_the_same_checkpoint_file_is_refused(tmp_path):
    """Before: both runs wrote dvp_checkpoint.zip in turns, the last writer winning silently."""
    path = tmp_path / "dvp_checkpoint.zip"
    other_run = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "dvp_checkpoint.zip.lock")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert other_run.stdout.readline().strip() == "held"
        agent = tiny_dvp(checkpoint_dir=str(tmp_path))
        message = rf"{re.escape(str(path))} is in use: another run \(process {other_run.pid}\) holds its lock {re.escape(str(path))}\.lock"
        with pytest.raises(CheckpointError, match=message):
            agent.learn(1)
        assert agent.iteration == 0 and not path.exists()  # refused before any work
    finally:
        other_run.stdin.close()
        other_run.wait(timeout=30)
    agent.learn(1)  # the other run ended: its lock is free
    assert read_checkpoint(path)[0]["iteration"] == 1


@pytest.mark.skipif(os.name != "posix", reason="the lock is fcntl.flock")
def test_learn_holds_the_checkpoint_lock_only_while_it_runs(tmp_path):
    from dvp_rl.checkpoint import CheckpointInUseError, checkpoint_lock

    agent = tiny_dvp(checkpoint_dir=str(tmp_path))
    path = tmp_path / "dvp_checkpoint.zip"
    with checkpoint_lock(path):  # another run, in this process
        with pytest.raises(CheckpointInUseError, match=rf"another run \(process {os.getpid()}\) holds its lock"):
            tiny_dvp(checkpoint_dir=str(tmp_path)).learn(1)

    class HoldsTheLock(BaseCallback):
        def _on_step(self) -> bool:
            with pytest.raises(CheckpointInUseError, match="is in use"):
                with checkpoint_lock(path):
                    pass
            raise KeyboardInterrupt("a crash")

    with pytest.raises(KeyboardInterrupt):
        agent.learn(2, callback=HoldsTheLock())
    with checkpoint_lock(path):  # released by the crash
        pass
    resumed = DVP.load(path, n_workers=1)
    resumed.learn(1, reset_num_timesteps=False)  # a loaded agent locks the file it came from
    assert read_checkpoint(path)[0]["iteration"] == 2
    tiny_dvp(checkpoint_dir=None).learn(1)  # no checkpoint: no lock
