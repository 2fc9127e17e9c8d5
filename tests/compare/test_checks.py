"""Checks before any work and results never overwritten (``dvp-rl zoo`` and ``dvp-rl benchmark``): settings the
agents would refuse, budgets below 1, unwritable folders and an output folder that holds an earlier run's
results are one-line user errors (exit code 2) before any reference is solved or agent trained; an agent
that its budget left untrained says so."""

import json
import re
import sys
from datetime import datetime as real_datetime

import pytest
import torch

from baselines.sb3 import make_sb3
from dvp_rl import cli
from dvp_rl.compare import benchmark, harness, zoo
from dvp_rl.compare.adapters import SB3Adapter
from dvp_rl.compare.zoo import ZooConfig

TINY_DVP = '{"iterations": 1, "n_samples": 20, "horizon": 5, "fit": {"max_epochs": 2, "polish_steps": 0}}'


@pytest.fixture
def no_work(monkeypatch):
    """Any reference, ground truth or training (before: they came before the checks) fails the test."""

    def refused(*args, **kwargs):
        raise AssertionError("work started before the settings were checked")

    monkeypatch.setattr(harness, "train_and_score", refused)
    monkeypatch.setattr(zoo.ZooPreset, "scorers", refused)
    monkeypatch.setattr(benchmark.BenchmarkPreset, "scorers", refused)


@pytest.fixture(autouse=True)
def torch_threads_kept():
    threads = torch.get_num_threads()  # the CLI sets one thread; restored for the other tests
    yield
    torch.set_num_threads(threads)


def error_of(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dvp-rl: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err.removeprefix("dvp-rl: error: ").rstrip("\n")


# ---------------------------------------------------------------------------- settings (issue 22, item 8)
@pytest.mark.parametrize("argv, message", [
    # before: PPO's traceback after the other agents had trained
    (["--sb3-kwargs", '{"PPO": {"bogus_arg": 1}}'],
     (r"PPO settings for Pendulum-v1: unknown key\(s\) \['bogus_arg'\]; the keys are make_sb3's \['n_timesteps', .*\] and keyword "
      r"arguments of stable_baselines3.PPO: \[.*'n_steps'.*\]")),
    # before: PPO trained 0 s and was scored
    (["--sb3-kwargs", '{"PPO": {"n_timesteps": -5}}'], r"PPO settings for Pendulum-v1: n_timesteps must be an integer >= 1, got -5"),
    # before: a failure after PPO trained and was scored
    (["--dvp-kwargs", '{"bogus": 1}'], r"DVP settings for Pendulum-v1: unknown key\(s\) \['bogus'\]; DVP takes \[.*'iterations'.*\]"),
    (["--dvp-kwargs", '{"fit": {"epochs": 3}}'],
     r"DVP settings for Pendulum-v1: fit: unknown FitConfig field\(s\) \['epochs'\]; its fields are \[.*'max_epochs'.*\]"),
    (["--dvp-kwargs", '{"iterations": 0}'], r"DVP settings for Pendulum-v1: iterations must be an integer >= 1, got 0"),
    (["--sb3-kwargs", '{"PPO": 3}'], r"sb3_kwargs maps each SB3 agent to a dict of its settings, got \{'PPO': 3\}"),
])  # fmt: skip
def test_zoo_settings_are_checked_before_any_work(argv, message, tmp_path, capsys, no_work):
    err = error_of(["zoo", "--agents", "DVP", "PPO", "--no-reference", *argv, "--out", str(tmp_path / "run")], capsys)
    assert re.fullmatch(message, err), err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--ppo-kwargs", '{"bogus": 1}'], r"PPO settings for dvp_rl/Unicycle-v0: unknown key\(s\) \['bogus'\]; .*"),
    (["--dvp-kwargs", '{"horizon": 0}'], r"DVP settings for dvp_rl/Unicycle-v0: horizon must be an integer >= 1, got 0"),
])  # fmt: skip
def test_benchmark_settings_are_checked_before_any_work(argv, message, tmp_path, capsys, no_work):
    err = error_of(["benchmark", "--quick", *argv, "--out", str(tmp_path / "run"), "--ground-truth-cache", str(tmp_path / "gt")], capsys)
    assert re.fullmatch(message, err), err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys refuses new files, even to root, on Linux")
@pytest.mark.parametrize("argv, message", [
    (["zoo", "--out", "/sys/dvp/zoo"], "--out /sys/dvp/zoo: cannot write in /sys (Permission denied)"),
    (["zoo", "--out", "OUT", "--cache-dir", "/sys/dvp/reference"], "--cache-dir /sys/dvp/reference: cannot write in /sys (Permission denied)"),
    (["benchmark", "--quick", "--out", "/sys/dvp/bench"], "--out /sys/dvp/bench: cannot write in /sys (Permission denied)"),
    (["benchmark", "--quick", "--out", "OUT", "--ground-truth-cache", "/sys/dvp/gt"],
     "--ground-truth-cache /sys/dvp/gt: cannot write in /sys (Permission denied)"),
])  # fmt: skip
def test_unwritable_folders_are_refused_before_any_work(argv, message, tmp_path, capsys, no_work):
    argv = [str(tmp_path / "run") if a == "OUT" else a for a in argv]
    assert error_of(argv, capsys) == message


def test_a_file_where_the_output_folder_should_be(tmp_path, capsys, no_work):
    (tmp_path / "notes.txt").write_text("a file")
    err = error_of(["zoo", "--out", str(tmp_path / "notes.txt" / "run")], capsys)
    assert err == f"--out {tmp_path}/notes.txt/run: {tmp_path}/notes.txt is a file, not a folder"


# ---------------------------------------------------------------------------- earlier results (issue 22, item 7)
@pytest.mark.parametrize("command, files", [
    (["zoo"], ["summary.json"]),
    (["zoo"], ["DVP.zip"]),
    (["zoo"], ["tb/DVP/events.out.tfevents.1"]),
    (["benchmark", "--quick"], ["summary.json", "tb/Unicycle-v0/PPO_seed0/events.out.tfevents.1", "figures/a.png"]),
])  # fmt: skip
def test_an_output_folder_with_results_is_refused_before_any_work(command, files, tmp_path, capsys, no_work):
    out = tmp_path / "run"
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("earlier")
    err = error_of([*command, "--out", str(out), "--ground-truth-cache" if "benchmark" in command else "--cache-dir",
                    str(tmp_path / "cache")], capsys)  # fmt: skip
    found = ", ".join(sorted({name.split("/")[0] + ("/" if "/" in name else "") for name in files}))
    assert err == f"the output folder {out} holds an earlier run's results ({found}): choose another one (--out) or remove them first (--overwrite)"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(files)  # untouched


def test_overwrite_removes_the_earlier_results_first_and_an_untrained_agent_says_so(tmp_path, capsys):
    """Before: a later TD3-only run left the earlier DVP.zip and tb/DVP beside a summary that lists only TD3, and
    TD3 with learning_starts at or above its budget looked like a trained agent."""
    out = tmp_path / "run"
    for name in ("summary.json", "summary.md", "DVP.zip", "tb/DVP/events.out.tfevents.1", "tb_internal/DVP_1/events.out.tfevents.1"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("earlier")
    (out / "notes.txt").write_text("the user's own file")
    assert cli.main(["zoo", "--agents", "TD3", "--no-reference", "--no-videos", "--episodes", "1", "--budget-seconds", "60",
                     "--sb3-kwargs", '{"TD3": {"n_timesteps": 200}}', "--out", str(out), "--overwrite"]) == 0  # fmt: skip
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["TD3.zip", "notes.txt", "returns.png", "summary.json", "summary.md", "tb", "tb_internal"]
    assert [p.name for p in (out / "tb").iterdir()] == ["TD3"] and [p.name for p in (out / "tb_internal").iterdir()] == ["TD3_1"]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["agents"]) == ["TD3"]
    assert summary["agents"]["TD3"]["untrained"] == "untrained (learning_starts 10000 >= 200 steps)"
    assert "| TD3: untrained (learning_starts 10000 >= 200 steps) |" in (out / "summary.md").read_text()


def test_default_output_folders_never_collide(tmp_path, monkeypatch):
    class Frozen(real_datetime):
        @classmethod
        def now(cls, tz=None):
            return real_datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(harness, "datetime", Frozen)
    config = ZooConfig()
    first = config.out_dir()
    assert first.as_posix() == "runs/zoo/Pendulum-v1__20260102-030405"
    first.mkdir(parents=True)
    assert config.out_dir().as_posix() == "runs/zoo/Pendulum-v1__20260102-030405_1"
    preset = zoo.ZooPreset(config)
    (tmp_path / preset.out).mkdir(parents=True)  # another run took the name since
    assert harness.prepare_out(preset).as_posix() == "runs/zoo/Pendulum-v1__20260102-030405_2" and preset.out.is_dir()
    assert ZooConfig(env_id="dvp_rl/Unicycle-v0", agents=("DVP",)).out_dir().parent.as_posix() == "runs/zoo"


# ---------------------------------------------------------------------------- untrained agents (issue 22, item 9)
def test_sb3_agents_without_a_gradient_update_are_untrained():
    adapter = SB3Adapter("SAC")
    model = make_sb3("SAC", "Pendulum-v1", seed=0, learning_starts=100).learn(60)
    assert adapter.untrained(model) == "untrained (learning_starts 100 >= 60 steps)"
    assert adapter.untrained(model.learn(60, reset_num_timesteps=False)) is None  # 120 steps: it trained from step 101 on
    ppo = make_sb3("PPO", "Pendulum-v1", seed=0, n_steps=64, n_envs=1, batch_size=64)
    assert adapter.untrained(ppo) == "untrained (no gradient update in 0 steps)"
    assert adapter.untrained(ppo.learn(64)) is None
