"""What every preset writes the same way: summaries, tables, tensorboard scalars and text."""

import json
import math

from dvp_rl.compare.reports import NOT_AVAILABLE, hparams_text, log_scalars, markdown_table, number, settings_text, stats, write_summary


def test_summary_files(tmp_path):
    write_summary(tmp_path, {"x": float("nan"), "n": 3}, "# title\n")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert math.isnan(summary["x"]) and summary["n"] == 3 and (tmp_path / "summary.md").read_text() == "# title\n"


def test_tables_and_numbers():
    assert markdown_table(["a", "b"], [[1, "x"]]) == ["| a | b |", "|---|---|", "| 1 | x |"]
    assert hparams_text({"seed": 0, "algo": "PPO"}) == "| parameter | value |\n|---|---|\n| seed | 0 |\n| algo | PPO |"
    assert number(None, 2) == NOT_AVAILABLE and number(1.234, 1) == "1.2"
    assert stats([1, 3]) == {"mean": 2.0, "std": 1.0, "values": [1.0, 3.0]}
    assert json.loads(settings_text({"a": (1, 2)}).strip("`\n")) == {"a": [1, 2]}


def test_scalars_without_a_value_are_left_out():
    written = []

    class Writer:
        def add_scalar(self, tag, value, step):
            written.append((tag, value, step))

    log_scalars(Writer(), "zoo", {"mean_return": -3, "mean_regret": None}, 0)
    assert written == [("zoo/mean_return", -3.0, 0)]
