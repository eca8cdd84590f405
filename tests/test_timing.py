"""timing.PhaseTimes: the loop's phases, timed without patching the loop."""

import itertools

from ppo_helpers import run
from ppo_helpers.run import RunConfig
from ppo_helpers.timing import NOT_TIMED, PhaseTimes


def test_a_phase_adds_its_clock_seconds_and_counts_its_calls():
    ticks = itertools.count()  # a clock that advances by 1 at every read
    times = PhaseTimes(clock=lambda: float(next(ticks)))
    for _ in range(3):
        with times("update"):
            pass
    with times("rollout"), times("env stepping"):  # nested: 2 reads inside
        pass
    assert times.seconds == {"update": 3.0, "env stepping": 1.0, "rollout": 3.0}
    assert times.calls == {"update": 3, "env stepping": 1, "rollout": 1}


def test_not_timed_reads_no_clock_and_keeps_nothing():
    with NOT_TIMED("update"):
        pass
    assert not NOT_TIMED.seconds and not NOT_TIMED.calls


def test_train_times_every_phase_of_every_iteration_and_trains_the_same():
    cfg = RunConfig(env_id="CartPole-v1", num_envs=2, num_steps=16, total_steps=64)
    times = PhaseTimes()
    timed = run.train(cfg, phase_times=times)
    for phase in ("rollout", "advantages", "update"):
        assert times.calls[phase] == cfg.num_updates
    assert times.calls["env stepping"] == cfg.num_updates * cfg.num_steps
    assert 0 < times.seconds["env stepping"] < times.seconds["rollout"]
    untimed = run.train(cfg)
    assert [e[2:] for e in timed.episodes] == [e[2:] for e in untimed.episodes]
