"""Aggregates over runs, with intervals (chapters 5, 6, 7 and 9; "How we measure").

Every aggregate the book reports over training runs comes from rliable
(Agarwal et al. 2021): the interquartile mean (IQM, the mean of the middle
half of all runs' scores) and the mean, each with a 95 % percentile interval
from the stratified bootstrap (the runs are resampled within each task, so
every resample keeps every task), and the probability of improvement. A score
matrix is ``(runs, tasks)``: one row per seed, one column per task; a single
task is one column.

``aggregate`` gives IQM and mean of one matrix. ``paired_difference`` gives
them for ``x - y`` where run ``i`` of task ``k`` of both came from the same
seed on the same task, which is the comparison a paired design allows.
``probability_of_improvement`` is rliable's P(X > Y): for each task, the chance
that a run of X beats a run of Y (ties count half), averaged over tasks, with
its interval from resampling the runs of X and Y independently.
``performance_profile`` is the fraction of runs that score above each of a
list of thresholds, with a band: the whole distribution, where one number
would hide how the runs spread.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
from rliable import library, metrics

REPS = 10_000  # bootstrap resamples per interval
LEVEL = 0.95  # interval coverage


class Estimate(NamedTuple):
    """A point estimate and its interval, in the scores' units."""

    point: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside [low, high]."""
        return not self.low <= value <= self.high


def score_matrix(scores, name: str = "scores") -> np.ndarray:
    """``scores`` as a float ``(runs, tasks)`` array; a 1-D input is one task.

    Raises ``ValueError`` naming ``name`` unless every entry is finite and
    there is at least one run.
    """
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(
            f"{name} must be (runs, tasks) with at least one of each, "
            f"got shape {np.shape(scores)}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} must be finite, got {matrix.tolist()}")
    return matrix


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """numpy's global RNG seeded with ``seed``, and restored afterwards.

    rliable 1.2.0 draws its bootstrap indices with ``np.random.choice``
    (``StratifiedBootstrap.update_indices``) and ignores its ``random_state``
    argument, so a fixed interval needs the global RNG fixed.
    """
    saved = np.random.get_state()  # noqa: NPY002 (rliable's generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(saved)  # noqa: NPY002


def _iqm_and_mean(scores: np.ndarray) -> np.ndarray:
    return np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores)])


def _estimates(point, interval) -> list[Estimate]:
    low, high = interval
    return [
        Estimate(float(p), float(lo), float(hi))
        for p, lo, hi in zip(np.atleast_1d(point), low, high, strict=True)
    ]


def aggregate(scores, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """``{"iqm": Estimate, "mean": Estimate}`` of a ``(runs, tasks)`` matrix.

    The intervals resample runs within each task (stratified bootstrap, ``reps``
    resamples, percentile method); ``seed`` fixes the resampling.
    """
    matrix = score_matrix(scores)
    with _seeded_global_rng(seed):
        point, interval = library.get_interval_estimates(
            {"x": matrix}, _iqm_and_mean, reps=reps, confidence_interval_size=LEVEL
        )
    iqm, mean = _estimates(point["x"], interval["x"])
    return {"iqm": iqm, "mean": mean}


def paired_difference(x, y, reps: int = REPS, seed: int = 0) -> dict[str, Estimate]:
    """``aggregate`` of ``x - y``, for two ``(runs, tasks)`` matrices of paired runs.

    Row ``i`` of ``x`` and of ``y`` must come from the same seed on each task;
    an interval that excludes 0 says the difference is larger than the
    seed-to-seed noise of these runs.
    """
    x, y = score_matrix(x, "x"), score_matrix(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must pair run for run, got shapes {x.shape} and {y.shape}"
        )
    return aggregate(x - y, reps, seed)


def probability_of_improvement(x, y, reps: int = REPS, seed: int = 0) -> Estimate:
    """P(X > Y) + P(X = Y) / 2, averaged over tasks, with its interval.

    ``x`` is ``(runs_x, tasks)`` and ``y`` is ``(runs_y, tasks)``, the same tasks
    in the same columns. 0.5 means neither tends to score higher.
    """
    x, y = score_matrix(x, "x"), score_matrix(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"x and y must have the same tasks (columns), got {x.shape[1]} "
            f"and {y.shape[1]}"
        )
    with _seeded_global_rng(seed):
        point, interval = library.get_interval_estimates(
            {"xy": (x, y)},
            metrics.probability_of_improvement,
            reps=reps,
            confidence_interval_size=LEVEL,
        )
    (estimate,) = _estimates(point["xy"], interval["xy"])
    return estimate


def performance_profile(
    scores, thresholds, reps: int = REPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fraction, low, high), each (len(thresholds),): runs scoring above each tau.

    The fraction of all runs of a ``(runs, tasks)`` matrix (every task alike)
    whose score exceeds tau, with its 95 % stratified-bootstrap band (rliable's
    ``create_performance_profile`` on the score distribution).
    """
    matrix = score_matrix(scores)
    taus = np.asarray(thresholds, dtype=float)
    with _seeded_global_rng(seed):
        profiles, bands = library.create_performance_profile(
            {"x": matrix}, taus, reps=reps, confidence_interval_size=LEVEL
        )
    low, high = bands["x"]
    return profiles["x"], low, high
