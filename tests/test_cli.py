"""The command line: arguments checked before any work, user errors as one line and exit code 2,
bugs with their traceback."""

import re
import subprocess
import sys

import pytest

from dvp_rl import cli
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
