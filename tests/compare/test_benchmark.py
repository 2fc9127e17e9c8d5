"""The DVP-vs-PPO benchmark end to end, with tiny budgets (well under a minute on 2 cores)."""

import json
import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dvp_rl.cli import main
from dvp_rl.compare.benchmark import METRICS, BenchmarkConfig, compare_targets, run_benchmark, value_at
from dvp_rl.compare.harness import AgentRun
from dvp_rl.compare.scorers import EvalRecord, ValueErrorScore
from dvp_rl.references.ground_truth import ground_truth

ENV_ID = "dvp_rl/Unicycle-v0"
COMPARE_TAGS = ("value_mse", "value_rel_mse", "log10_value_mse", "log10_value_rel_mse", "closed_loop_cost")
FIGURES = ("value_maps", "closed_loop", "value_error")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``dvp-rl benchmark`` on the unicycle: 2 DVP iterations of 30 tiny solves, 2048 PPO steps."""
    out = tmp_path_factory.mktemp("benchmark")
    threads = torch.get_num_threads()  # the CLI sets one thread; restored for the other tests
    try:
        code = main([
            "benchmark", "--env", ENV_ID, "--seeds", "0", "--gamma", "0.9",
            "--dvp-iterations", "2", "--dvp-kwargs", '{"n_samples": 30, "horizon": 10, "fit": {"max_epochs": 5, "polish_steps": 5}}',
            "--ppo-timesteps", "2048", "--ppo-kwargs", '{"n_steps": 256}',
            "--n-eval-states", "12", "--n-closed-loop", "2", "--closed-loop-steps", "10", "--closed-loop-every", "2",
            "--grid-size", "5", "--ground-truth-horizon", "30", "--ground-truth-cache", str(out / "gt"),
            "--n-workers", "1", "--out", str(out / "run"),
        ])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return out / "run"


def _scalars(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("algo", ["DVP", "PPO"])
def test_both_algorithms_log_the_same_compare_tags(run, algo):
    events = _scalars(run / "tb" / "Unicycle-v0" / f"{algo}_seed0")
    tags = set(events.Tags()["scalars"])
    for tag in COMPARE_TAGS:
        assert f"compare/{tag}" in tags and f"compare_wallclock/{tag}" in tags
    mse = events.Scalars("compare/value_mse")
    assert len(mse) >= 3  # before training, during, final
    assert mse[0].step == 0 and mse[-1].step > 0  # step = the algorithm's samples
    log_mse = events.Scalars("compare/log10_value_mse")
    np.testing.assert_allclose([e.value for e in log_mse], np.log10([e.value for e in mse]), rtol=1e-5)
    milliseconds = [e.step for e in events.Scalars("compare_wallclock/value_mse")]
    assert milliseconds == sorted(milliseconds) and len(milliseconds) == len(mse)
    # the closed loop at every 2nd evaluation and always at the end
    cost_steps = [e.step for e in events.Scalars("compare/closed_loop_cost")]
    assert cost_steps[0] == 0 and cost_steps[-1] == mse[-1].step
    assert all(math.isfinite(e.value) for e in mse)
    assert "custom_scalars__config__" in events.Tags()["tensors"]
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    # the algorithm's own SB3 logs live beside, not inside, the compare run
    internal = set(_scalars(run / "tb" / "Unicycle-v0" / "internal" / f"{algo}_seed0").Tags()["scalars"])
    assert any(tag.startswith("train/") for tag in internal)


def test_summary_holds_every_metric_for_both(run):
    summary = json.loads((run / "summary.json").read_text())
    env = summary["envs"][ENV_ID]
    for algo in ("DVP", "PPO"):
        for metric in METRICS:
            stats = env["metrics"][algo][metric]
            assert math.isfinite(stats["mean"]) and stats["std"] == 0.0 and len(stats["values"]) == 1
        assert env["runs"][algo][0]["history"][0]["transitions"] == 0
        assert env["runs"][algo][0]["stopped_by_budget"] is False  # both spent their own budget
        assert env["runs"][algo][0]["untrained"] is None  # both learned
    assert set(env["ratios_ppo_over_dvp"]) == set(METRICS)
    assert env["metrics"]["PPO"]["env_interactions"]["mean"] == 2048 and env["metrics"]["PPO"]["model_evaluations"]["mean"] == 0
    assert env["metrics"]["DVP"]["env_interactions"]["mean"] == 0 and env["metrics"]["DVP"]["model_evaluations"]["mean"] > 0
    assert env["ground_truth_horizon"] == 30
    assert isinstance(env["targets"]["met"], bool)
    assert math.isfinite(env["targets"]["error_ratio"]["mean"])
    text = (run / "summary.md").read_text()
    assert ENV_ID in text and "Target" in text and "PPO / DVP" in text and "env interactions" in text


def test_figures_exist_as_png_and_in_tensorboard(run):
    for name in FIGURES:
        path = run / "figures" / f"Unicycle-v0__{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    images = _scalars(run / "tb" / "Unicycle-v0" / "figures").Tags()["images"]
    assert sorted(images) == sorted(f"figures/{name}" for name in FIGURES)


def test_equal_wallclock_lookups():
    history = [EvalRecord(0, 0.0, 9.0, 1.0, 5.0), EvalRecord(100, 2.0, 4.0, 0.5, math.nan), EvalRecord(300, 4.0, 1.0, 0.1, 3.0)]
    assert value_at(history, 3.9).value_mse == 4.0
    assert value_at(history, 4.0).value_mse == 1.0

    def run_of(records):
        return AgentRun(None, records[-1].wallclock_s, 0.0, False, records[-1].transitions, {"value_error": ValueErrorScore(records, None)})

    dvp = run_of([EvalRecord(0, 0.0, 9.0, 1.0, 5.0), EvalRecord(10**6, 1.5, 0.01, 1e-3, 3.0)])
    targets = compare_targets(dvp, run_of(history))
    assert targets["equal_wallclock_s"] == 1.5 and targets["error_ratio"] == pytest.approx(9.0 / 0.01)
    assert targets["wallclock_to_match"] == 1.5 and targets["match_ratio"] == pytest.approx(4.0 / 1.5)


def test_config_rejects_unknown_env_and_bad_gamma():
    with pytest.raises(ValueError, match="known envs"):
        BenchmarkConfig(env_ids=("dvp_rl/NoSuchEnv-v0",))
    with pytest.raises(ValueError, match="gamma"):
        BenchmarkConfig(gamma=1.0)
    with pytest.raises(ValueError, match="not among env_ids"):
        BenchmarkConfig(env_ids=(ENV_ID,), env_kwargs={"dvp_rl/Pendulum-v0": {"max_torque": 6.0}})


def test_env_kwargs_reach_both_algorithms_the_ground_truth_and_the_closed_loop(tmp_path):
    """A unicycle capped at 0.5 m/s (default 5): both closed loops respect the cap and the MPC's
    saturates it; the ground truth is that of the capped env, dearer than the default one's."""
    kwargs = {"max_speed": 0.5}
    config = BenchmarkConfig(
        env_ids=(ENV_ID,), seeds=(0,), gamma=0.9, env_kwargs={ENV_ID: kwargs}, dvp_iterations=1, ppo_timesteps=256,
        n_eval_states=4, n_closed_loop=2, closed_loop_steps=10, closed_loop_every=0, grid_size=3, n_workers=1,
        dvp_kwargs={"n_samples": 10, "horizon": 10, "fit": {"max_epochs": 3, "polish_steps": 2}}, ppo_kwargs={"n_steps": 128},
        ground_truth_horizon=30, ground_truth_cache=None, out=str(tmp_path / "run"), verbose=0,
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_benchmark(config)
    finally:
        torch.set_num_threads(threads)
    speeds = {algo: np.abs(runs[0].scores["value_error"].closed_loop.actions[..., 0]) for algo, runs in result.runs[ENV_ID].items()}
    assert speeds["PPO"].max() <= 0.5 + 1e-12 and speeds["DVP"].max() <= 0.5 + 1e-12
    assert speeds["DVP"].max() >= 0.5 - 1e-6  # the cap binds: unclipped, the MPC drives faster from ~1 m away
    starts = result.summary["envs"][ENV_ID]["closed_loop_starts"]
    capped = ground_truth(ENV_ID, np.asarray(starts), gamma=0.9, horizon=30, env_kwargs=kwargs, cache_dir=None)
    default = ground_truth(ENV_ID, np.asarray(starts), gamma=0.9, horizon=30, cache_dir=None)
    assert result.summary["envs"][ENV_ID]["optimal_closed_loop_cost"] == pytest.approx(np.mean(capped.V), rel=1e-9)
    assert np.mean(capped.V) > 1.05 * np.mean(default.V)
    assert result.summary["config"]["env_kwargs"] == {ENV_ID: kwargs}
    assert f"## {ENV_ID} (max_speed=0.5)" in (tmp_path / "run" / "summary.md").read_text()


def test_cli_still_parses_demo_and_train():
    from dvp_rl.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["demo", "--horizon", "10"]).horizon == 10
    assert parser.parse_args(["train", "--iterations", "3"]).iterations == 3
    assert parser.parse_args(["benchmark", "--quick", "--seeds", "1", "2"]).seeds == [1, 2]
