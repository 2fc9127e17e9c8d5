"""The command line: arguments checked before any work, user errors as one line and exit code 2,
bugs with their traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dvp_rl import cli
from dvp_rl.agent import DVP
from dvp_rl.checkpoint import write_checkpoint


@pytest.mark.parametrize("argv, message", [
    (["train", "--iterations", "-3"], "argument --iterations: must be an integer >= 1, got '-3'"),  # was after the ground truth
    (["train", "--iterations", "2.5"], "argument --iterations: must be an integer >= 1"),
    (["train", "--horizon", "0"], "argument --horizon: must be an integer >= 1"),
    (["train", "--gamma", "1.5"], r"argument --gamma: must be a number in \(0, 1\]"),
    (["train", "--gamma", "nan"], r"argument --gamma: must be a number in \(0, 1\]"),
    (["train", "--eval-states", "-1"], "argument --eval-states: must be an integer >= 0"),
    (["train", "--env-kwargs", "[1, 2]"], "argument --env-kwargs: must be a JSON object .* got a JSON list"),  # was a TypeError
    (["train", "--env-kwargs", "{dt: 1}"], "argument --env-kwargs: must be a JSON object"),
    (["benchmark", "--budget-seconds", "0"], "argument --budget-seconds: must be a number in"),
    (["benchmark", "--dvp-kwargs", "3"], "argument --dvp-kwargs: must be a JSON object"),
    (["demo", "--n-states", "0"], "argument --n-states: must be an integer >= 1"),
])  # fmt: skip
def test_bad_arguments_are_refused_when_parsed(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def one_line_error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dvp-rl: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_user_errors_are_one_line_and_exit_code_2(tmp_path, capsys):
    quick = ["--eval-states", "0", "--tensorboard-log", str(tmp_path / "tb")]
    assert "unknown env id 'dvp_rl/Nope-v0'" in one_line_error(["train", "--env", "dvp_rl/Nope-v0", *quick], capsys)
    assert "no checkpoint at" in one_line_error(["train", "--resume", str(tmp_path / "nope.zip"), *quick], capsys)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    assert "corrupt or truncated" in one_line_error(["train", "--resume", str(tmp_path / "junk.zip"), *quick], capsys)
    err = one_line_error(["train", "--env", "dvp_rl/LinearQuadratic-v0", "--env-kwargs", '{"dt": -1}', *quick], capsys)
    assert "LinearQuadraticEnv: dt must be finite and > 0" in err
    err = one_line_error(["train", "--env", "dvp_rl/LinearQuadratic-v0", "--env-kwargs", '{"mass": 1}', *quick], capsys)
    assert "do not fit dvp_rl/LinearQuadratic-v0" in err and "'mass'" in err
    err = one_line_error(["benchmark", "--quick", "--env-kwargs", '{"dvp_rl/Unicycle-v0": 3}'], capsys)
    assert "maps each env id to a JSON object" in err
    assert "unknown experiment 'nope'" in one_line_error(["reproduce", "nope"], capsys)
    with pytest.raises(ValueError, match="unknown experiment"):  # --traceback: the exception itself
        cli.main(["--traceback", "reproduce", "nope"])


def test_a_damaged_checkpoint_is_a_user_error(tmp_path, capsys):
    path = write_checkpoint(tmp_path / "ckpt.zip", {"class": "DVP"}, {}, {})
    err = one_line_error(["train", "--resume", str(path), "--eval-states", "0"], capsys)
    assert "is damaged: its data entry lacks the required key(s)" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def buggy(args):
        return args.no_such_attribute  # an AttributeError: a bug, not the user's mistake

    monkeypatch.setattr(cli, "_demo", buggy)
    with pytest.raises(AttributeError, match="no_such_attribute"):
        cli.main(["demo"])


def test_the_console_exit_code():
    run = subprocess.run([sys.executable, "-m", "dvp_rl.cli", "train", "--env", "dvp_rl/Nope-v0", "--eval-states", "0"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2 and run.stderr.startswith("dvp-rl: error: unknown env id") and "Traceback" not in run.stderr


# ---------------------------------------------------------------------------- train: paths
#: the smallest training run (seconds)
TINY_TRAIN = ["--iterations", "1", "--n-samples", "10", "--horizon", "5", "--max-epochs", "2", "--eval-states", "0", "--n-workers", "1"]


def test_the_default_save_path_names_the_env_id_as_given_and_never_replaces_a_file(tmp_path, monkeypatch, capsys):
    """Before: --env Pendulum-v1 and --env dvp_rl/Pendulum-v0 both saved to runs/Pendulum-v0__DVP__0.zip."""
    monkeypatch.chdir(tmp_path)
    for env_id in ("Pendulum-v1", "dvp_rl/Pendulum-v0", "Pendulum-v1"):
        assert cli.main(["train", "--env", env_id, *TINY_TRAIN, "--tensorboard-log", "tb"]) == 0
    saved = re.findall(r"saved (\S+)\n", capsys.readouterr().out)
    assert saved == ["runs/Pendulum-v1__DVP__0.zip", "runs/dvp_rl-Pendulum-v0__DVP__0.zip", "runs/Pendulum-v1__DVP__0_1.zip"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(Path(p).name for p in saved)
    assert [DVP.load(path).user_id for path in saved] == ["Pendulum-v1", "dvp_rl/Pendulum-v0", "Pendulum-v1"]


@pytest.fixture
def no_training(monkeypatch):
    """Any agent made (before: the paths were used only after training) fails the test."""

    def refused(*args, **kwargs):
        raise AssertionError("an agent was made before the paths were checked")

    monkeypatch.setattr(DVP, "__init__", refused)
    monkeypatch.setattr(DVP, "load", refused)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys refuses new files, even to root, on Linux")
@pytest.mark.parametrize("argv, message", [
    (["--save", "/sys/dvp/agent.zip"], r"--save /sys/dvp/agent.zip: its folder /sys/dvp: cannot write in /sys \(Permission denied\)"),
    (["--tensorboard-log", "/sys/dvp/tb"], r"--tensorboard-log /sys/dvp/tb: cannot write in /sys \(Permission denied\)"),
    (["--resume", "agent.zip", "--tensorboard-log", "/sys"], r"--tensorboard-log /sys: cannot write in /sys \(Permission denied\)"),
])  # fmt: skip
def test_an_unwritable_path_is_refused_before_any_work(argv, message, tmp_path, monkeypatch, capsys, no_training):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(["train", *TINY_TRAIN, *argv], capsys)
    assert re.fullmatch(f"dvp-rl: error: {message}\n", err), err


def test_a_file_where_a_folder_should_be_is_refused_before_any_work(tmp_path, monkeypatch, capsys, no_training):
    """Before: --save file/agent.zip trained, then failed with a misleading FileExistsError."""
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("a file")
    Path("folder.zip").mkdir()
    err = one_line_error(["train", *TINY_TRAIN, "--save", "notes.txt/agent.zip"], capsys)
    assert err == "dvp-rl: error: --save notes.txt/agent.zip: its folder notes.txt: notes.txt is a file, not a folder\n"
    err = one_line_error(["train", *TINY_TRAIN, "--tensorboard-log", "notes.txt/tb"], capsys)
    assert err == "dvp-rl: error: --tensorboard-log notes.txt/tb: notes.txt is a file, not a folder\n"
    err = one_line_error(["train", *TINY_TRAIN, "--save", "folder.zip"], capsys)
    assert err == "dvp-rl: error: --save folder.zip: folder.zip is a folder; give the path of the zip to write\n"
    Path("runs").write_text("a file")
    err = one_line_error(["train", *TINY_TRAIN, "--tensorboard-log", "tb"], capsys)  # the default --save
    assert err == "dvp-rl: error: the default --save folder runs: runs is a file, not a folder\n"


# ---------------------------------------------------------------------------- demo
@pytest.mark.parametrize("env_id, twin", [
    ("dvp_rl/Pendulum-v0", None),
    ("Pendulum-v1", "dvp_rl/Pendulum-v0"),  # before: AttributeError: 'PendulumEnv' object has no attribute 'sample_states'
    pytest.param("InvertedDoublePendulum-v5", "dvp_rl/InvertedDoublePendulum-v0", marks=pytest.mark.mujoco),
])  # fmt: skip
def test_demo_solves_every_id_dvp_accepts(env_id, twin, capsys):
    if twin and "InvertedDoublePendulum" in twin:
        pytest.importorskip("mujoco")
    assert cli.main(["demo", "--env", env_id, "--n-states", "2", "--horizon", "5"]) == 0
    out = capsys.readouterr().out
    assert (f"\n{env_id} (solved on its twin {twin}): x0 = " if twin else f"\n{env_id}: x0 = ") in out
    assert re.search(rf"\n{re.escape(env_id)} +\d+\.\d+ +100%", out)


def test_demo_of_an_id_without_a_twin_is_a_user_error_before_any_solve(capsys):
    err = one_line_error(["demo", "--env", "dvp_rl/Pendulum-v0", "--env", "CartPole-v1", "--n-states", "2", "--horizon", "5"], capsys)
    assert err == ("dvp-rl: error: no differentiable twin of 'CartPole-v1'; supported ids: "
                   "['Pendulum-v1', 'InvertedDoublePendulum-v5', 'Reacher-v5']\n")  # fmt: skip
    assert "unknown env id 'dvp_rl/Nope-v0'" in one_line_error(["demo", "--env", "dvp_rl/Nope-v0"], capsys)
