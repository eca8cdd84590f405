"""stats: rliable's IQM, mean, paired differences and probability of improvement,
on inputs whose answers are known in closed form."""

import numpy as np
import pytest

from ppo_helpers import stats

REPS = 500  # enough: every interval below is exact (degenerate) or bracketed


def test_iqm_is_the_mean_of_the_middle_half_of_all_runs():
    # 8 runs of one task: the IQM drops the 2 lowest and the 2 highest
    scores = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 100.0]
    result = stats.aggregate(scores, reps=REPS)
    assert result["iqm"].point == np.mean([0.0, 0.0, 1.0, 1.0]) == 0.5
    assert result["mean"].point == 103.0 / 8


def test_equal_scores_give_an_interval_of_width_zero():
    result = stats.aggregate(np.full((5, 3), 0.25), reps=REPS)
    for estimate in result.values():
        assert estimate == stats.Estimate(0.25, 0.25, 0.25)


def test_the_bootstrap_is_stratified_by_task():
    # Task 0 always scores 0 and task 1 always 1. Resampling runs within each
    # task keeps every resample's mean at exactly 0.5; resampling the 2 x 4
    # scores together would not.
    scores = np.column_stack([np.zeros(4), np.ones(4)])
    result = stats.aggregate(scores, reps=REPS)
    assert result["mean"] == stats.Estimate(0.5, 0.5, 0.5)


def test_the_interval_brackets_the_point_and_is_reproducible():
    scores = np.random.default_rng(0).normal(size=(10, 2))
    first = stats.aggregate(scores, reps=REPS, seed=3)
    assert first == stats.aggregate(scores, reps=REPS, seed=3)
    for estimate in first.values():
        assert estimate.low < estimate.point < estimate.high


def test_a_constant_paired_difference_is_exact():
    y = np.arange(12.0).reshape(6, 2)
    result = stats.paired_difference(y + 0.5, y, reps=REPS)
    assert result["mean"] == stats.Estimate(0.5, 0.5, 0.5)
    assert result["mean"].excludes(0.0)


def test_pairing_removes_the_seed_effect():
    # Run i of both settings shares a large seed effect; the paired
    # difference sees only the +1 of x, the unpaired IQMs overlap.
    seed_effect = np.array([[-30.0], [-10.0], [0.0], [10.0], [30.0]])
    x, y = seed_effect + 1.0, seed_effect
    assert stats.paired_difference(x, y, reps=REPS)["iqm"] == (1.0, 1.0, 1.0)
    ix, iy = stats.aggregate(x, reps=REPS)["iqm"], stats.aggregate(y, reps=REPS)["iqm"]
    assert ix.low < iy.high


@pytest.mark.parametrize(
    "x,y,expected",
    [
        ([[2.0], [3.0]], [[0.0], [1.0]], 1.0),  # every run of x beats every run of y
        ([[0.0], [1.0]], [[2.0], [3.0]], 0.0),
        ([[1.0], [1.0]], [[1.0], [1.0]], 0.5),  # ties count half
        ([[1.0], [3.0]], [[2.0]], 0.5),  # one of the two pairs
    ],
)
def test_probability_of_improvement_counts_pairs(x, y, expected):
    assert stats.probability_of_improvement(x, y, reps=REPS).point == expected


def test_probability_of_improvement_averages_over_tasks():
    # Task 0: x always wins (1); task 1: x always loses (0)
    x = np.array([[1.0, 0.0], [2.0, 0.0]])
    y = np.array([[0.0, 5.0], [0.0, 6.0]])
    assert stats.probability_of_improvement(x, y, reps=REPS) == (0.5, 0.5, 0.5)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="x and y must pair run for run"):
        stats.paired_difference(np.zeros((3, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="scores must be finite"):
        stats.aggregate([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"scores must be \(runs, tasks\)"):
        stats.aggregate([])
    with pytest.raises(ValueError, match="same tasks"):
        stats.probability_of_improvement(np.zeros((2, 2)), np.zeros((2, 3)))


def test_a_seeded_interval_leaves_numpys_global_rng_as_it_was():
    np.random.seed(7)  # noqa: NPY002 (the global generator is what is tested)
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(7)  # noqa: NPY002
    stats.aggregate([1.0, 2.0, 4.0], reps=REPS)
    assert np.random.random() == expected  # noqa: NPY002


def test_a_performance_profile_counts_the_runs_above_each_threshold():
    # 4 runs on 2 tasks: above 0.5 are 1.0, 0.75, 0.6 and 0.9, i.e. 4 of 8
    scores = [[1.0, 0.2], [0.75, 0.1], [0.6, 0.4], [0.3, 0.9]]
    fraction, low, high = stats.performance_profile(scores, [0.0, 0.5, 1.0], reps=500)
    np.testing.assert_array_equal(fraction, [1.0, 0.5, 0.0])
    assert (low <= fraction).all() and (fraction <= high).all()
    assert low[0] == high[0] == 1.0 and low[2] == high[2] == 0.0  # no run can move
    assert low[1] < 0.5 < high[1]  # resampled runs can


def test_a_performance_profile_names_bad_scores():
    with pytest.raises(ValueError, match="scores must be finite"):
        stats.performance_profile([1.0, float("nan")], [0.5])
