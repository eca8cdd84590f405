"""Distributed PPO (chapter 8): the update on several ranks is the update on
their union, DPPO's rule and hinge, and torchrun runs that log, resume, span
two "nodes" and stop when a rank dies.

The math tests run ranks as threads that share values through a barrier (a
stand-in for the all-reduce, summing in rank order). The tests marked
``processes`` start torchrun; they test process orchestration, which no
numeric code path changes, so ``make unit-paths`` leaves them out.
"""

import contextlib
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from unittest import mock

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import (
    assert_identical,
    episodes_without_wall,
    log_without_wall,
    same_weights,
    train_with,
)

from ppo_helpers import checkpoint, distributed, objectives, ppo, presets
from ppo_helpers.networks import ActorCritic
from ppo_helpers.ranks import (
    SINGLE,
    advantage_moments,
    check_same_weights,
    merged_moments,
)
from ppo_helpers.rollout import RolloutBatch
from ppo_helpers.run import RunConfig, train
from ppo_helpers.scaling import RewardScaler
from ppo_helpers.trpo import TRPO, TRPOConfig

torch.set_num_threads(1)
EPS64 = torch.finfo(torch.float64).eps


def test_advantage_moments_of_shards_are_those_of_their_union():
    gen = torch.Generator().manual_seed(0)
    shards = [
        [torch.randn(5, generator=gen, dtype=torch.float64) * 10 + 3 for _ in range(4)]
        for _ in range(3)
    ]
    moments = distributed.in_threads(
        3, lambda ranks: advantage_moments(shards[ranks.rank], ranks)
    )
    for i in range(4):
        union = torch.cat([shard[i] for shard in shards])
        # a handful of float64 operations on 15 values of size ~30: relative
        # rounding of a few 15 * eps; 1e-12 is far above it, far below any
        # error in the formula (a missing Bessel factor is 7e-2)
        for rank_moments in moments:
            mean, std = rank_moments[i]
            assert torch.isclose(mean, union.mean(), rtol=1e-12, atol=0)
            assert torch.isclose(std, union.std(), rtol=1e-12, atol=0)


def test_reward_scalers_of_two_ranks_divide_by_the_union_std():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randn(32, 4, generator=gen, dtype=torch.float64) * 5 + 1
    ends = torch.rand(32, 4, generator=gen) < 0.05
    single = RewardScaler(4, 0.99)
    want = [
        single.scale(rewards[:16], ends[:16]),
        single.scale(rewards[16:], ends[16:]),
    ]

    def two_batches(ranks):
        scaler = RewardScaler(2, 0.99)
        mine = slice(2 * ranks.rank, 2 * ranks.rank + 2)
        merge = partial(merged_moments, ranks)
        return [
            scaler.scale(r[:, mine], e[:, mine], merge)
            for r, e in ((rewards[:16], ends[:16]), (rewards[16:], ends[16:]))
        ]

    for rank, got in enumerate(distributed.in_threads(2, two_batches)):
        mine = slice(2 * rank, 2 * rank + 2)
        # float64 moments of 64 and 128 values merged in another order: relative
        # rounding ~1e-15; a scaler that used its own rank's std is off by ~5%
        for g, w in zip(got, want, strict=True):
            assert torch.allclose(g, w[:, mine], rtol=1e-12, atol=0)


def _batch(agent, num_envs: int, num_steps: int, seed: int) -> RolloutBatch:
    """Random float64 samples with behaviour log-probs a little off the agent's."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(num_steps, num_envs, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        dist = agent.dist(obs)
        actions = dist.sample()
        noise = 0.3 * torch.randn(
            num_steps, num_envs, generator=gen, dtype=torch.float64
        )
        logprobs = agent.actor.log_prob_entropy(agent.policy_params(obs), actions)[0]
        values = agent.value(obs)
    zeros = torch.zeros(num_steps, num_envs, dtype=torch.float64)
    return RolloutBatch(
        obs,
        actions,
        logprobs + noise,
        values,
        zeros,
        zeros.bool(),
        zeros.bool(),
        zeros,
        zeros[0],
    )


def _split(batch: RolloutBatch, parts: int) -> list[RolloutBatch]:
    """The batch's envs split into ``parts`` equal groups (dim 1)."""
    fields = [getattr(batch, name) for name in batch.__dataclass_fields__]
    chunks = [f.chunk(parts, dim=-1 if f.dim() == 1 else 1) for f in fields]
    return [RolloutBatch(*(c[i] for c in chunks)) for i in range(parts)]


def alone_and_on_two_ranks(make_algorithm):
    """One update of a fresh ``make_algorithm()`` on a batch of 4 envs in one
    process, and on two thread ranks that hold 2 of its envs each: ((agent,
    stats), [(agent, stats)] per rank)."""
    observation = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    torch.manual_seed(0)
    agent = ActorCritic(observation, gym.spaces.Discrete(4), (16,)).double()
    union = _batch(agent, num_envs=4, num_steps=16, seed=1)
    advantages = torch.randn(16, 4, generator=torch.Generator().manual_seed(2)).double()

    def step(batch, adv, ranks=SINGLE):
        mine = copy.deepcopy(agent)
        optimizer = torch.optim.Adam(mine.parameters(), lr=1e-3, eps=1e-5)
        return mine, make_algorithm().update(mine, optimizer, batch, adv, ranks)

    halves, adv_halves = _split(union, 2), advantages.chunk(2, dim=1)
    return step(union, advantages), distributed.in_threads(
        2, lambda ranks: step(halves[ranks.rank], adv_halves[ranks.rank], ranks)
    )


def assert_ranks_agree_with_one_process(single, single_stats, results, decision):
    """Every rank's weights within 1e-10 of one process's (the tolerance each
    test derives), the same ``decision`` statistic, and the same exact KL."""
    for rank_agent, rank_stats in results:
        for p, q in zip(single.parameters(), rank_agent.parameters(), strict=True):
            assert torch.allclose(p, q, rtol=0, atol=1e-10)
        assert rank_stats[decision] == single_stats[decision]
        assert np.isclose(rank_stats["kl"], single_stats["kl"], rtol=1e-9, atol=0)


@pytest.mark.parametrize("objective", ["clip", "kl_penalty", "dppo", "unclipped"])
def test_update_on_two_ranks_is_the_update_on_their_union(objective):
    cfg = ppo.PPOConfig(
        num_minibatches=1,  # the same minibatch, in any order, on both sides
        update_epochs=3,
        objective=objective,
        kl_target=0.003,
        max_grad_norm=0.5,
    )
    (single, single_stats), results = alone_and_on_two_ranks(lambda: ppo.PPO(cfg))
    # float64 throughout: gradients differ from the union's by the summation
    # order, ~64 * eps relative; Adam turns a gradient error dg into a step
    # error of at most lr * dg / adam_eps (= 100 dg here), so after 3 steps the
    # weights agree to ~1e-12. A wrong average or normalisation moves them by
    # ~lr = 1e-3.
    assert_ranks_agree_with_one_process(single, single_stats, results, "steps")


def test_trpo_update_on_two_ranks_is_the_update_on_their_union():
    cfg = TRPOConfig(num_minibatches=1, max_grad_norm=0.5, value_epochs=2)
    (single, single_stats), results = alone_and_on_two_ranks(lambda: TRPO(cfg))
    assert single_stats["accepted"] == 1.0  # a step was taken: the test can fail
    # float64: g and F v of the union differ from the mean of the halves' by
    # summation order (~64 eps relative); CG and the step's scale keep that
    # relative size, times CG's conditioning (damping 0.1, |F| ~ 1: ~10), so the
    # actor agrees to ~1e-13 of its step (~0.1); the critic's 2 Adam steps as in
    # the PPO test above. A rank that used its own half moves by ~1e-2.
    assert_ranks_agree_with_one_process(single, single_stats, results, "step_fraction")


def test_train_hands_its_ranks_to_the_update():
    seen = []

    class Watched(ppo.PPO):
        def update(self, agent, optimizer, batch, advantages, ranks, generator):
            seen.append(ranks)
            return super().update(agent, optimizer, batch, advantages, ranks, generator)

    cfg = RunConfig(env_id="CartPole-v1", num_envs=2, num_steps=16, total_steps=64)
    train(cfg, algorithm=Watched())
    assert seen == [SINGLE] * cfg.num_updates


ALGORITHMS = (*objectives.OBJECTIVES, "trpo")  # PPO with each objective, and TRPO


def two_rank_run(tiny, algorithm, total_steps, **kwargs):
    """A whole ``train`` on two thread ranks: each rank's ``TrainResult``.

    ``algorithm`` is PPO's objective, or "trpo" (``tiny``'s settings but PPO's
    update_epochs, and 2 critic epochs)."""
    if algorithm == "trpo":
        algo, settings = "trpo", dict(tiny, value_epochs=2)
        del settings["update_epochs"]
    else:
        algo, settings = "ppo", dict(tiny, objective=algorithm, kl_target=0.003)
    cfg, algo_cfg = presets.configs(algo, **settings, seed=5, total_steps=total_steps)
    algorithm_class = presets.ALGORITHMS[algo][0]

    def run(ranks):  # each rank its own algorithm (PPO's beta is its state)
        return train(cfg, algorithm=algorithm_class(algo_cfg), ranks=ranks, **kwargs)

    return distributed.in_threads(2, run)


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_a_whole_two_rank_run_keeps_the_ranks_identical(tiny, algorithm):
    # each rank draws its own actions, so the ranks' batches differ; every
    # average sums in rank order on both, so their weights must agree bit for bit
    first, second = two_rank_run(tiny, algorithm, total_steps=4 * 2 * 2 * 64)
    assert same_weights(first.agent, second.agent)
    timeless = [[u | {"wall_s": 0} for u in r.updates] for r in (first, second)]
    assert timeless[0] == timeless[1] and len(timeless[0]) == 4  # each rank's clock
    assert episodes_without_wall(first.episodes) == episodes_without_wall(
        second.episodes
    )
    alone = train_with(dict(tiny, seed=5, total_steps=4 * 2 * 64))
    assert not same_weights(first.agent, alone.agent)  # the test can fail


def test_a_two_rank_run_resumes_exactly_in_threads(tiny, tmp_path):
    # every rank's sampling stream, reward scaler and envs come back from the
    # checkpoint (rank 0 writes and reads it for both)
    whole = two_rank_run(tiny, "clip", total_steps=4 * 2 * 2 * 64)
    two_rank_run(
        tiny, "clip", 2 * 2 * 2 * 64, checkpoint_dir=tmp_path, checkpoint_every=256
    )
    resumed = two_rank_run(
        tiny, "clip", 4 * 2 * 2 * 64, checkpoint_dir=tmp_path, resume=True
    )
    for rank in (0, 1):
        assert same_weights(whole[rank].agent, resumed[rank].agent)
        assert episodes_without_wall(whole[rank].episodes) == episodes_without_wall(
            resumed[rank].episodes
        )


def test_dppo_stops_early_on_every_rank_together():
    observation = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    torch.manual_seed(0)
    agent = ActorCritic(observation, gym.spaces.Discrete(4), (16,)).double()
    batches = [_batch(agent, 2, 16, seed) for seed in (1, 2)]
    cfg = ppo.PPOConfig(num_minibatches=2, objective="dppo", kl_target=1e-3)

    def run(ranks):
        mine = copy.deepcopy(agent)
        optimizer = torch.optim.Adam(mine.parameters(), lr=1e-2)
        adv = torch.ones(16, 2, dtype=torch.float64) * (1 + ranks.rank)
        return ppo.update(mine, optimizer, batches[ranks.rank], adv, cfg, 1.0, ranks)

    stats = distributed.in_threads(2, run)
    assert stats[0]["steps"] == stats[1]["steps"] < cfg.update_epochs * 2
    assert stats[0]["kl"] == stats[1]["kl"]


def test_dppo_takes_no_step_once_the_kl_is_past_its_bound():
    # Heess et al.'s worker loop measures the KL and breaks before the gradient:
    # every step taken had a KL within DPPO_STOP x KL_target before it, and the
    # update stops at the first minibatch whose KL is past it
    observation = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    torch.manual_seed(0)
    agent = ActorCritic(observation, gym.spaces.Discrete(4), (16,)).double()
    batch = _batch(agent, 2, 16, seed=1)
    cfg = ppo.PPOConfig(num_minibatches=2, objective="dppo", kl_target=1e-4)
    kls, stepped = [], []
    dppo, gradient_step = objectives.OBJECTIVES["dppo"], ppo.gradient_step

    def recorded_loss(*args):
        loss, mean_kl = dppo.loss(*args)
        kls.append(mean_kl.item())
        return loss, mean_kl

    def recorded_step(*args):
        stepped.append(len(kls))  # the minibatch whose step this is
        return gradient_step(*args)

    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-2)
    adv = torch.ones(16, 2, dtype=torch.float64)
    with (
        mock.patch.dict(objectives.OBJECTIVES, dppo=dppo._replace(loss=recorded_loss)),
        mock.patch.object(ppo, "gradient_step", recorded_step),
    ):
        stats = ppo.update(agent, optimizer, batch, adv, cfg, 1.0)
    bound = objectives.DPPO_STOP * cfg.kl_target
    assert stats["steps"] == len(stepped) == len(kls) - 1 < cfg.update_epochs * 2
    assert all(kls[i - 1] <= bound for i in stepped) and kls[-1] > bound


def test_different_initial_weights_are_refused_on_every_rank():
    observation = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)

    def build(ranks):
        torch.manual_seed(ranks.rank)  # the mistake: a seed per rank
        agent = ActorCritic(observation, gym.spaces.Discrete(4), (16,))
        try:
            check_same_weights(agent, ranks)
        except RuntimeError as err:
            return str(err)

    assert distributed.in_threads(2, build) == [
        "rank 0: the ranks' weights differ",
        "rank 1: the ranks' weights differ",
    ]


def test_dppo_hinge_is_zero_inside_twice_the_target_and_quadratic_beyond():
    target = 0.01
    for kl in (0.0, 0.01, 0.02):
        assert objectives.kl_hinge(torch.tensor(kl), target).item() == 0.0
    kl = torch.tensor(0.03, dtype=torch.float64, requires_grad=True)
    hinge = objectives.kl_hinge(kl, target)
    hinge.backward()
    assert hinge.item() == pytest.approx(1000 * 0.01**2, rel=1e-12)
    assert kl.grad.item() == pytest.approx(2 * 1000 * 0.01, rel=1e-12)


@pytest.mark.parametrize(
    "kl, expected",
    [(0.025, 1.5), (0.019, 1.0), (0.0051, 1.0), (0.0049, 1 / 1.5)],
)
def test_dppo_adaptive_rule_uses_heess_et_al_constants(kl, expected):
    new = objectives.adaptive_beta(1.0, kl, 0.01, **objectives.DPPO_ADAPTIVE)
    assert new == pytest.approx(expected, rel=1e-15)


def test_without_torchrun_the_module_says_how_to_start_it(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.main(["--env", "LunarLander-v3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torchrun --nproc-per-node 2" in err


# --- torchrun -----------------------------------------------------------------

TINY = [
    "--env", "LunarLander-v3", "--num-envs", "2", "--num-steps", "64",
    "--update-epochs", "2", "--num-minibatches", "2", "--hidden", "16",
    "--quiet",
]  # fmt: skip
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(launch: list, args: list, **popen) -> subprocess.Popen:
    """Start torchrun with ``launch`` flags on our module with ``args``.

    ``--`` keeps torchrun from reading ``--log`` as an abbreviation of its own
    ``--log-dir``.
    """
    command = [*TORCHRUN, *launch, "-m", "ppo_helpers.distributed", "--", *args]
    return subprocess.Popen(
        [str(c) for c in command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **{"env": ENV, **popen},
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STANDALONE = ["--standalone", "--nproc-per-node", "2"]


# The tests that share `whole_run` stay on one pytest-xdist worker (make test runs
# --dist loadgroup), so that the fixture's torchrun run happens once.
WHOLE_RUN_GROUP = pytest.mark.xdist_group("whole_run")


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """An uninterrupted 2-rank run with checkpoints: its folder and summary."""
    folder = tmp_path_factory.mktemp("whole")
    args = [*TINY, "--total-steps", 6144, "--checkpoint-every", 1024]
    mine = ["--log", folder / "run.csv", "--checkpoint-dir", folder / "ckpt"]
    code, out, err = finish(torchrun(STANDALONE, [*args, *mine]))
    assert code == 0, err
    return folder, args, out


@pytest.mark.processes
@WHOLE_RUN_GROUP
def test_two_ranks_log_once_count_every_rank_and_repeat_bit_for_bit(
    whole_run, tmp_path
):
    folder, args, out = whole_run
    (line,) = out.splitlines()  # one summary line: rank 0's
    summary = json.loads(line)
    assert summary["env_steps"] == 6144 and summary["episodes"] > 10
    rows = log_without_wall(folder / "run.csv")
    assert rows[0] == ["env_steps", "episode_return", "episode_length"]
    # each update adds 2 ranks x 2 envs x 64 steps = 256 env steps
    assert {int(r[0]) % 256 for r in rows[1:]} == {0}
    state = checkpoint.load(checkpoint.latest(folder / "ckpt"))
    assert len(state["ranks"]) == 2
    seeds = [[e["stream_seed"] for e in r["envs"]["episodes"]] for r in state["ranks"]]
    assert seeds == [[0, 1], [2, 3]]  # rank r's envs: seed + r * num_envs onwards

    again = ["--log", tmp_path / "run.csv"]
    code, _, err = finish(torchrun(STANDALONE, [*args, *again]))
    assert code == 0, err
    assert log_without_wall(tmp_path / "run.csv") == rows


@pytest.mark.processes
@WHOLE_RUN_GROUP
def test_two_ranks_killed_with_sigkill_resume_to_identical_weights(whole_run, tmp_path):
    folder, args, _ = whole_run
    mine = ["--log", tmp_path / "run.csv", "--checkpoint-dir", tmp_path / "ckpt"]
    proc = torchrun(STANDALONE, [*args, *mine])
    deadline = time.monotonic() + 300
    while checkpoint.latest(tmp_path / "ckpt") is None:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks at once
    proc.wait()
    assert checkpoint.latest(tmp_path / "ckpt").name != "step_0000006144.pt"

    code, out, err = finish(torchrun(STANDALONE, [*args, *mine, "--resume"]))
    assert code == 0, err
    assert json.loads(out)["resumed_from"] is not None
    resumed = checkpoint.load(tmp_path / "ckpt" / "step_0000006144.pt")
    whole = checkpoint.load(folder / "ckpt" / "step_0000006144.pt")
    for key in ("agent", "optimizer", "ranks", "algorithm", "env_steps"):
        assert_identical(resumed[key], whole[key], key)
    assert log_without_wall(tmp_path / "run.csv") == log_without_wall(
        folder / "run.csv"
    )


@pytest.mark.processes
@WHOLE_RUN_GROUP
def test_two_nodes_meeting_at_a_loopback_endpoint_train_like_one(whole_run, tmp_path):
    folder, args, _ = whole_run
    launch = [
        "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "test",
    ]  # fmt: skip
    mine = [*args, "--log", tmp_path / "run.csv"]
    nodes = [torchrun(launch, mine) for _ in range(2)]
    results = [finish(node) for node in nodes]
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    assert sum(len(out.splitlines()) for _, out, _ in results) == 1  # rank 0 only
    assert log_without_wall(tmp_path / "run.csv") == log_without_wall(
        folder / "run.csv"
    )


def ranks_of_run(token: str) -> dict[int, int]:
    """``{rank: pid}`` of the workers whose environment carries ``token``.

    The token tells this run's workers from those of other torchrun tests that
    run at the same time on another pytest-xdist worker.
    """
    ranks = {}
    for pid in Path("/proc").glob("[0-9]*"):
        try:
            environ = (pid / "environ").read_bytes().split(b"\0")
            cmdline = (pid / "cmdline").read_bytes()
        except OSError:
            continue
        rank = [e for e in environ if e.startswith(b"RANK=")]  # torchrun has none
        if token.encode() in environ and b"ppo_helpers.distributed" in cmdline and rank:
            ranks[int(rank[0].removeprefix(b"RANK="))] = int(pid.name)
    return ranks


def failed_ranks(summary: str) -> dict[int, str]:
    """``{rank: its entry}`` of every rank in torchrun's failure summary.

    The summary names one "Root Cause (first observed failure)" and lists the
    other ranks under "Failures"; which rank comes first depends on which exit
    torchrun's agent saw first, so read them all.
    """
    entries = re.split(r"\n\s*rank\s+: ", summary.split(" FAILED\n", 1)[1])[1:]
    return {int(entry.split()[0]): entry for entry in entries}


def test_failed_ranks_reads_every_entry_of_a_torchrun_summary():
    summary = (
        "ppo_helpers.distributed FAILED\n---\nFailures:\n[1]:\n  time : x\n"
        "  rank      : 0 (local_rank: 0)\n  exitcode  : -15 (pid: 7)\n---\n"
        "Root Cause (first observed failure):\n[0]:\n"
        "  rank      : 1 (local_rank: 1)\n  exitcode  : -9 (pid: 8)\n"
        "  traceback : Signal 9 (SIGKILL) received by PID 8\n"
    )
    entries = failed_ranks(summary)
    assert sorted(entries) == [0, 1]
    assert "SIGKILL" in entries[1] and "SIGKILL" not in entries[0]


@pytest.mark.processes
def test_a_killed_rank_stops_the_run_within_60_s_naming_the_rank(tmp_path):
    token = f"PPO_TEST_RUN={os.getpid()}-{time.monotonic_ns()}"
    env = {**ENV, token.split("=")[0]: token.split("=")[1]}
    proc = torchrun(STANDALONE, [*TINY, "--total-steps", 10**7], env=env)
    try:
        deadline = time.monotonic() + 120
        while 1 not in ranks_of_run(token):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(5)  # mid-run: past start-up, into training
        os.kill(ranks_of_run(token)[1], signal.SIGKILL)
        killed_at = time.monotonic()
        code, _, err = finish(proc, timeout=60)
    finally:  # on a failure, leave no process behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in ranks_of_run(token).values():
            with contextlib.suppress(ProcessLookupError):  # it may just have exited
                os.kill(pid, signal.SIGKILL)
    assert time.monotonic() - killed_at < 60
    assert code != 0
    entries = failed_ranks(err)
    assert 1 in entries and "SIGKILL" in entries[1], err[-3000:]
    # rank 0 did nothing wrong: if listed at all, then without a traceback of its own
    assert "Traceback (most recent" not in entries.get(0, ""), err[-3000:]


def test_a_rank_that_loses_a_peer_says_so_and_leaves_the_naming_to_torchrun(
    capsys, monkeypatch
):
    def lost(args, ranks, prog):
        raise distributed.LostPeerError("rank 0: an all-reduce failed, ...")

    monkeypatch.setattr(distributed.cli, "report", lost)
    monkeypatch.setattr(distributed, "connect", lambda *a: SINGLE)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: None)
    monkeypatch.setattr(distributed, "LOST_PEER_WAIT_S", 0.0)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.main.__wrapped__([*TINY]) == 1  # without torchrun's @record
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "rank 0: an all-reduce failed" in err and "names the rank" in err


@pytest.mark.processes
def test_bad_input_gives_one_error_line_from_rank_0():
    code, out, err = finish(torchrun(STANDALONE, [*TINY, "--clip-coef", "2"]))
    assert code != 0 and out == ""
    ours = [
        line for line in err.splitlines() if "ppo_helpers.distributed: error" in line
    ]
    assert len(ours) == 1 and "clip_coef must be in (0, 1), got 2.0" in ours[0]


def test_in_threads_re_raises_a_ranks_error_and_frees_the_others():
    def fail_on_rank_1(ranks):
        if ranks.rank == 1:
            raise RuntimeError("rank 1 failed")
        return ranks.average(torch.ones(1))  # would wait for rank 1 forever

    with pytest.raises(RuntimeError, match="rank 1 failed"):
        distributed.in_threads(2, fail_on_rank_1)
