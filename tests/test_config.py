"""The argument checks shared by the constructors and the command line (dvp_rl.config)."""

import re
import sys

import pytest

from dvp_rl.config import check_writable_folder


def test_a_writable_folder_passes_and_nothing_is_left_behind(tmp_path):
    assert check_writable_folder(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"  # created later, by the writer
    assert check_writable_folder(tmp_path, "--out") == tmp_path
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file


def test_a_file_on_the_way_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    with pytest.raises(ValueError, match=re.escape(f"--out {tmp_path}/notes.txt/a: {tmp_path}/notes.txt is a file, not a folder")):
        check_writable_folder(tmp_path / "notes.txt" / "a", "--out")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys refuses new files, even to root, on Linux")
def test_a_folder_that_refuses_files_is_named_with_the_reason():
    with pytest.raises(ValueError, match=re.escape("--out /sys/a/b: cannot write in /sys (Permission denied)")):
        check_writable_folder("/sys/a/b", "--out")
