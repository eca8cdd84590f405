import threading

import pytest
import torch

from ppo_helpers.seeding import episode_seed, seeded_build, seeds


def test_episode_seeds_differ_across_envs_and_episodes():
    drawn = {episode_seed(s, k) for s in range(8) for k in range(200)}
    assert len(drawn) == 8 * 200


def test_ranks_share_the_weights_seed_and_take_consecutive_env_seeds():
    ranks = [seeds(7, rank, num_envs=4) for rank in range(3)]
    assert {r.weights for r in ranks} == {7}
    assert [r.envs for r in ranks] == [7, 11, 15]
    assert ranks[0].sampling is None  # rank 0 continues the weights' stream
    sampling = [r.sampling for r in ranks[1:]]
    assert len(set(sampling)) == 2
    # a hash of (seed, rank): run 8's rank 1 does not sample like run 7's rank 2
    assert seeds(8, 1, 4).sampling not in sampling
    with pytest.raises(ValueError, match="rank must be >= 0, got -1"):
        seeds(7, -1, 4)


def test_the_generator_continues_the_stream_the_build_drew_from():
    def build():
        return torch.nn.Linear(3, 2).weight.detach().clone()

    torch.manual_seed(123)
    before = torch.get_rng_state()
    weight, generator = seeded_build(5, build)
    assert torch.equal(torch.get_rng_state(), before)  # the global one untouched
    torch.manual_seed(5)
    assert torch.equal(weight, build())
    assert torch.equal(torch.randn(6, generator=generator), torch.randn(6))


def test_builds_in_threads_do_not_draw_from_each_other():
    alone = seeded_build(0, lambda: torch.nn.Linear(64, 64).weight.detach())[0]
    built = [None] * 8

    def build(i):
        built[i] = seeded_build(0, lambda: torch.nn.Linear(64, 64).weight.detach())[0]

    threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(torch.equal(w, alone) for w in built)
