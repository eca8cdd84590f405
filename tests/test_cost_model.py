"""The cost model's closed forms: lines, designs, scalings and the crossover."""

import pytest

from ppo_helpers.cost_model import (
    Costs,
    Line,
    Workload,
    allreduce_s,
    crossover_env_s,
    iteration_s,
    speedup,
    with_env_cost,
)

# round numbers, so that every expected value below is exact arithmetic
COSTS = Costs(
    rollout=Line(1e-4, 5e-4),  # 0.1 ms policy per vector step, 0.5 ms per env
    env=Line(0.0, 4e-4),  # of which the env's own step takes 0.4 ms
    pipes=Line(2e-5, 1e-5),
    gradient=Line(2e-3, 1e-5),  # 2 ms per step, 10 us per sample
    allreduce=Line(5e-3, 1e-9),  # 5 ms, 1 GB/s
    weights=10_000,
    cores=2,
)
WORK = Workload(num_envs=32, num_steps=128, update_epochs=10, num_minibatches=16)


def test_line_fit_recovers_a_line_and_refuses_one_size():
    line = Line.fit([1, 2, 4, 8], [3 + 2 * x for x in (1, 2, 4, 8)])
    assert line.fixed == pytest.approx(3, rel=1e-12)
    assert line.slope == pytest.approx(2, rel=1e-12)
    assert line(10) == pytest.approx(23, rel=1e-12)
    with pytest.raises(ValueError, match="at two sizes or more"):
        Line.fit([4, 4], [1.0, 2.0])


def test_one_process_is_the_sum_of_its_parts():
    parts = iteration_s(COSTS, WORK, "one process", 8, "strong")  # W ignored
    assert parts["rollout"] == pytest.approx(128 * (1e-4 + 32 * 5e-4))
    minibatch = 32 * 128 / 16
    assert parts["update"] == pytest.approx(160 * (2e-3 + 1e-5 * minibatch))
    assert parts["allreduce"] == 0
    assert parts["env_steps"] == 32 * 128


def test_one_worker_of_each_design_is_one_process_but_for_the_pipes():
    one = iteration_s(COSTS, WORK, "one process", 1, "strong")
    assert iteration_s(COSTS, WORK, "dppo", 1, "weak") == one
    in_workers = iteration_s(COSTS, WORK, "async envs", 1, "strong")
    assert in_workers["total"] - one["total"] == pytest.approx(128 * COSTS.pipes(32))


def test_allreduce_terms():
    assert allreduce_s(COSTS, 1, 1e6) == 0
    assert allreduce_s(COSTS, 2, 1e6) == pytest.approx(5e-3 + 1e-3)
    # log2(W) latencies, and 2 (W - 1) / W of the bytes through each link
    assert allreduce_s(COSTS, 8, 1e6) == pytest.approx(3 * 5e-3 + 2 * 7 / 8 * 1e-3)


def test_free_communication_scales_the_rollout_up_to_the_cores():
    """With only env costs, DPPO's strong speed-up is min(W, cores)."""
    free = Costs(
        Line(0, 1e-3), Line(0, 1e-3), Line(0, 0), Line(0, 0), Line(0, 0), 1, cores=4
    )
    for workers, expected in ((1, 1), (2, 2), (4, 4), (8, 4), (16, 4)):
        got = speedup(free, WORK, "dppo", workers, "strong")
        assert got == pytest.approx(expected, rel=1e-12), workers
        # the env steps in worker processes spread the same way, pipes free
        got = speedup(free, WORK, "async envs", workers, "strong")
        assert got == pytest.approx(expected, rel=1e-12), workers


def test_weak_scaling_grows_the_batch_and_the_minibatch():
    weak = iteration_s(COSTS, WORK, "dppo", 2, "weak")
    assert weak["env_steps"] == 2 * 32 * 128
    # each rank keeps one process's envs, so its rollout is one process's
    one = iteration_s(COSTS, WORK, "one process", 1, "weak")
    assert weak["rollout"] == pytest.approx(one["rollout"])
    in_workers = iteration_s(COSTS, WORK, "async envs", 2, "weak")
    assert in_workers["env_steps"] == 2 * 32 * 128
    minibatch = 2 * 32 * 128 / 16  # one learner, twice the batch
    assert in_workers["update"] == pytest.approx(160 * COSTS.gradient(minibatch))


def test_dppo_counts_one_allreduce_per_step_and_a_few_small_ones():
    parts = iteration_s(COSTS, WORK, "dppo", 2, "strong")
    per_step = allreduce_s(COSTS, 2, 4 * COSTS.weights)
    small = allreduce_s(COSTS, 2, 0)
    assert parts["allreduce"] == pytest.approx(160 * per_step + 11 * small)


def test_a_dearer_env_moves_the_rollout_by_the_same_amount():
    dearer = with_env_cost(COSTS, 1e-3)  # 0.6 ms more per env step than 0.4 ms
    assert dearer.env == Line(0.0, 1e-3)
    assert dearer.rollout == Line(1e-4, pytest.approx(5e-4 + 6e-4, rel=1e-15))
    assert (dearer.pipes, dearer.gradient) == (COSTS.pipes, COSTS.gradient)
    with pytest.raises(ValueError, match="env_s must be"):
        with_env_cost(COSTS, -1e-6)


def test_the_crossover_is_where_the_two_designs_take_equal_time():
    for design in ("dppo", "async envs"):
        env_s = crossover_env_s(COSTS, WORK, design)
        assert env_s is not None and env_s > 0

        at = speedup(with_env_cost(COSTS, env_s), WORK, design, 2, "strong")
        assert at == pytest.approx(1, rel=1e-9), design
        assert speedup(with_env_cost(COSTS, 2 * env_s), WORK, design, 2, "strong") > 1
        assert speedup(with_env_cost(COSTS, env_s / 2), WORK, design, 2, "strong") < 1


def test_no_env_cost_makes_one_core_pay():
    one_core = Costs(**{**COSTS.__dict__, "cores": 1})
    assert crossover_env_s(one_core, WORK, "async envs") is None
    # two ranks on one core take turns: the env steps cost what they did
    assert crossover_env_s(one_core, WORK, "dppo") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gpu", 2, "strong"), "design must be one of"),
        (("dppo", 2, "medium"), "scaling must be one of"),
        (("dppo", 0, "strong"), "workers"),
        (("dppo", 3, "strong"), "must split evenly over 3 ranks"),
    ],
)
def test_bad_input_names_the_parameter(args, message):
    with pytest.raises(ValueError, match=message):
        iteration_s(COSTS, WORK, *args)


def test_costs_round_trip_through_the_benchmarks_dict():
    fitted = {k: list(v) for k, v in COSTS.__dict__.items() if isinstance(v, Line)}
    fitted |= {"weights": COSTS.weights, "cores": COSTS.cores}
    assert Costs.from_dict(fitted) == COSTS
