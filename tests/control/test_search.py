"""The first-step search wrapper (dvp_rl.control.search) and the one push generator (dvp_rl.control.ocp.pushes)."""

import numpy as np
import pytest

from dvp_rl.control.mpc import MPCController, closed_loop
from dvp_rl.control.ocp import OptimalControlProblem, pushes
from dvp_rl.control.search import FirstStepSearch
from tests.helpers import make_unwrapped


def played(env, x0: np.ndarray, n: int, prefix: list, horizon: int = 10) -> float:
    """The reference, written out: the prefix open loop, then the plain MPC; the summed cost of ``n`` steps."""
    plain, x, total = MPCController(env, horizon, retry_cold=False), x0, 0.0
    for t in range(n):
        step = plain.step(x)  # one warm-started solve a step, as the search makes during its prefix
        u = prefix[t] if t < len(prefix) else step.action
        total, x = total + env.cost(x, u), env.dynamics(x, u)
    return total


def test_search_plays_the_cheapest_push_then_the_mpc_and_is_never_worse_than_the_plain_controller():
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    x0, n = np.array([np.pi - 0.1, 0.0]), 40
    searching = FirstStepSearch(MPCController(env, 10, retry_cold=False), steps=(3, 8), rollout=n)
    candidates = searching.candidates()
    assert [len(p) for p in candidates] == [0, 3, 3, 8, 8]
    assert all(np.all(np.abs(u) == 2.0) for p in candidates for u in p)

    scores = [played(env, x0, n, p) for p in candidates]
    searched, spent = searching.scores(x0)
    np.testing.assert_allclose(searched, scores, rtol=1e-9)  # each candidate's score is its loop played by hand
    assert spent[0] >= n * len(candidates)  # a solve a step at least, every rollout
    loop = closed_loop(searching, x0, n)
    assert loop.costs.sum() == pytest.approx(min(scores), rel=1e-9)  # the rollouts score the whole loop exactly
    assert min(scores) < scores[0] - 10.0  # here a push beats the plain controller's swing-up
    best = candidates[int(np.argmin(scores))]
    np.testing.assert_array_equal(loop.us[: len(best)], np.array(best))
    assert loop.model_evaluations[0] > 10 * loop.model_evaluations[1]  # the search runs at the first step only
    searching.reset(0)
    assert searching.step(x0).model_evaluations == loop.model_evaluations[0]  # a new episode searches again


def test_the_search_on_a_second_task_with_two_controls():
    """The unicycle (two controls, no angle to swing): every sign pattern of both bounds is a candidate, and
    the closed loop of the wrapper is the cheapest candidate played by hand."""
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    x0, n = np.array([0.0, 0.9, 0.0]), 15
    searching = FirstStepSearch(MPCController(env, 10, retry_cold=False), steps=(2,), rollout=n)
    candidates = searching.candidates()
    assert len(candidates) == 1 + 4  # no push, and (low|high) x (low|high) held 2 steps
    assert {tuple(p[0]) for p in candidates[1:]} == {(a, b) for a in (-5.0, 5.0) for b in (-5.0, 5.0)}
    scores = [played(env, x0, n, p) for p in candidates]
    loop = closed_loop(searching, x0, n)
    assert loop.costs.sum() == pytest.approx(min(scores), rel=1e-9)
    assert min(scores) < scores[0] - 50.0  # here a push beats the plain controller (two pushes tie by symmetry)
    best = [p for p, score in zip(candidates, scores) if score == pytest.approx(min(scores), rel=1e-9)]
    assert any(np.array_equal(loop.us[:2], np.array(p)) for p in best)


def test_predict_without_episode_start_searches_again_at_a_new_episode_only():
    """Before: without episode_start the search ran at the first episode only (the SB3 habit
    ``obs = env.reset(); predict(obs)`` got another controller than evaluate_policy's)."""
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")

    def episodes(mark_starts: bool) -> tuple[np.ndarray, list[int]]:
        searching = FirstStepSearch(MPCController(env, 10, retry_cold=False), steps=(3, 8), rollout=40)
        actions, searches = [], []
        for x in (np.array([np.pi - 0.1, 0.0]), np.array([-np.pi + 0.2, 0.5])):
            for t in range(10):
                if not mark_starts:
                    searches.append(searching.is_new_episode(x))
                u = searching.predict(x[None], np.array([t == 0]) if mark_starts else None)[0]
                actions.append(u)
                x = env.dynamics(x, u)
        return np.array(actions), searches

    marked, _ = episodes(mark_starts=True)
    plain, new_episodes = episodes(mark_starts=False)
    assert np.all(np.abs(marked[:3]) == 2.0)  # the first episode opens with a push: its steps are recorded as applied
    np.testing.assert_array_equal(plain, marked)
    assert np.flatnonzero(new_episodes).tolist() == [10]  # the second episode's first step, and only it


def test_the_search_leaves_the_wrapped_controllers_other_envs_alone():
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    inner = MPCController(env, 10)
    searching = FirstStepSearch(inner, steps=(2,), rollout=5)
    x = np.array([0.3, 0.0])
    searching.step(x, index=1)
    warm = inner._warm_starts[1].copy()
    searching.step(np.array([2.0, 0.0]), index=0)  # index 0's first step searches on the scout, not on inner
    np.testing.assert_array_equal(inner._warm_starts[1], warm)
    assert set(inner._warm_starts) == {0, 1}


def test_search_settings_are_checked():
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    plain = MPCController(env, 10)
    with pytest.raises(ValueError, match="steps must be integers >= 1"):
        FirstStepSearch(plain, steps=(0,))
    with pytest.raises(ValueError, match="at least one push duration"):
        FirstStepSearch(plain, steps=())
    with pytest.raises(ValueError, match="rollout must be an integer >= 1"):
        FirstStepSearch(plain, steps=(2,), rollout=0)
    with pytest.raises(ValueError, match="needs no terminal or a network one"):
        FirstStepSearch(MPCController(env, 10, "env"), steps=(2,))
    with pytest.raises(ValueError, match="reverse_steps must be integers >= 1"):
        FirstStepSearch(plain, steps=(2,), reverse_steps=(0,))


def test_two_phase_prefixes_push_one_way_then_the_other():
    env = make_unwrapped("dvp_rl/Pendulum-v0", cost="gymnasium")
    candidates = FirstStepSearch(MPCController(env, 10), steps=(2, 3), reverse_steps=(4,)).candidates()
    as_lists = sorted(tuple(float(u[0]) for u in p) for p in candidates)
    plus, minus = 2.0, -2.0
    expected = [(), (plus,) * 2, (minus,) * 2, (plus,) * 3, (minus,) * 3,
                (plus,) * 2 + (minus,) * 4, (minus,) * 2 + (plus,) * 4, (plus,) * 3 + (minus,) * 4, (minus,) * 3 + (plus,) * 4]  # fmt: skip
    assert as_lists == sorted(expected)
    assert candidates[0] == []  # the plain controller comes first: it wins ties


def test_pushes_cover_every_sign_pattern_in_product_order():
    low, high = np.array([-1.0, -3.0]), np.array([2.0, 4.0])
    sequences = pushes(low, high, 2, (-1, 0, 1), reverse=1, length=5)
    assert len(sequences) == 9 and all(s.shape == (5, 2) for s in sequences)
    # pattern (-1, 1): low on the first control, high on the second, for 2 steps; then the opposite; then zero
    expected = np.array([[-1.0, 4.0], [-1.0, 4.0], [2.0, -3.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(sequences[2], expected)
    np.testing.assert_array_equal(sequences[4], np.zeros((5, 2)))  # (0, 0): no push at all
    half = pushes(low, high, 3, (1,), scale=0.5)
    assert len(half) == 1 and np.array_equal(half[0], np.tile(0.5 * high, (3, 1)))
    with pytest.raises(ValueError, match="hold >= 1"):
        pushes(low, high, 0)
    with pytest.raises(ValueError, match="do not fit"):
        pushes(low, high, 3, length=2)
    with pytest.raises(ValueError, match="levels"):
        pushes(low, high, 1, (2,))


def test_the_named_push_guesses_come_from_the_one_generator():
    env = make_unwrapped("dvp_rl/Unicycle-v0")
    ocp = OptimalControlProblem(env, 20)
    x0 = env.sample_states(1, 0)[0]
    (xs, plus), = ocp.initial_guesses(x0, "push_plus")
    assert xs is None and np.array_equal(np.array(plus)[:4], np.tile(0.5 * env.action_high, (4, 1))) and not np.any(np.array(plus)[4:])
    family = ocp.initial_guesses(x0, "pushes")
    assert len(family) == 3**env.nu
    for (_, us), expected in zip(family, pushes(env.action_low, env.action_high, 2, (-1, 0, 1), length=20)):
        np.testing.assert_array_equal(np.array(us), expected)
    with pytest.raises(ValueError, match="initial_guesses"):
        ocp.initial_guess(x0, "pushes")
