"""Where a training iteration spends its time: seconds per named phase.

``run.train(phase_times=PhaseTimes())`` times the loop's phases: "rollout" (of
which "env stepping" is the envs' own share), "advantages" (reward scaling and
GAE), "update" and "statistics" (the observation statistics and the episode
log). ``benchmarks/profile_iteration.py`` reads them with a CPU clock.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class PhaseTimes:
    """Seconds by ``clock`` spent in each named phase, summed over its calls.

    ``with times("update"): ...`` adds the block's seconds to
    ``times.seconds["update"]`` and counts it in ``times.calls["update"]``.
    ``clock`` is wall time by default;
    ``time.thread_time`` counts this thread's CPU seconds. With ``clock=None``
    nothing is timed (``NOT_TIMED``), at the cost of an empty ``with``.
    """

    def __init__(self, clock: Callable[[], float] | None = time.perf_counter):
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __call__(self, phase: str) -> AbstractContextManager[None]:
        return nullcontext() if self.clock is None else self._timed(phase)

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        start = self.clock()
        try:
            yield
        finally:
            self.seconds[phase] += self.clock() - start
            self.calls[phase] += 1


NOT_TIMED = PhaseTimes(clock=None)
"""The default of the loop: no clock read."""
