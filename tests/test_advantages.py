"""Returns and GAE against closed forms and special cases (chapters 1 and 5)."""

import pytest
import torch

from ppo_helpers.advantages import (
    discounted_returns,
    gae,
    next_state_values,
    td_residuals,
)
from ppo_helpers.rollout import RolloutBatch, batch_gae


def random_rollout(seed: int, steps: int = 9, envs: int = 3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    values = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    last_values = torch.randn(envs, generator=g, dtype=torch.float64)
    terminated = torch.rand(steps, envs, generator=g) < 0.2
    truncated = (torch.rand(steps, envs, generator=g) < 0.2) & ~terminated
    final_values = torch.randn(steps, envs, generator=g, dtype=torch.float64)
    final_values = final_values * truncated
    next_values = next_state_values(
        values, last_values, terminated, truncated, final_values
    )
    return rewards, values, next_values, terminated | truncated


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma", [0.0, 0.9, 0.999])
def test_gae_lambda_one_is_discounted_return_minus_value(seed, gamma):
    rewards, values, next_values, ends = random_rollout(seed)
    adv = gae(rewards, values, next_values, ends, gamma, gae_lambda=1.0)
    returns = discounted_returns(rewards, ends, gamma, next_values)
    torch.testing.assert_close(adv, returns - values)


@pytest.mark.parametrize("seed", range(4))
def test_gae_lambda_zero_is_td_residual(seed):
    rewards, values, next_values, ends = random_rollout(seed)
    adv = gae(rewards, values, next_values, ends, 0.97, gae_lambda=0.0)
    expected = rewards + 0.97 * next_values - values
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(adv, td_residuals(rewards, values, next_values, 0.97))


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.5), (1.0, 1.0)])
def test_gae_matches_closed_form_for_constant_reward_and_value(gamma, lam):
    # One env, no episode end, reward 1 and V = c everywhere, bootstrap V = c:
    # delta = 1 + (gamma - 1) c for every step, so
    # A_t = delta * sum_{k < T - t} (gamma lam)^k.
    steps, c = 6, 2.0
    rewards = torch.ones(steps, 1, dtype=torch.float64)
    values = torch.full((steps, 1), c, dtype=torch.float64)
    ends = torch.zeros(steps, 1, dtype=torch.bool)
    adv = gae(rewards, values, values.clone(), ends, gamma, lam)
    delta = 1 + (gamma - 1) * c
    x = gamma * lam
    expected = [delta * sum(x**k for k in range(steps - t)) for t in range(steps)]
    torch.testing.assert_close(adv[:, 0], torch.tensor(expected, dtype=torch.float64))


def test_returns_do_not_leak_across_an_episode_end():
    # Episode A: rewards 1, 1 (terminates); episode B: rewards 10, 10 (terminates).
    rewards = torch.tensor([[1.0], [1.0], [10.0], [10.0]])
    ends = torch.tensor([[False], [True], [False], [True]])
    returns = discounted_returns(rewards, ends, gamma=0.5)
    torch.testing.assert_close(returns[:, 0], torch.tensor([1.5, 1.0, 15.0, 10.0]))
    # The seed blog's recursion (no reset) would give 1 + 0.5 * (1 + 0.5 * 15) = 5.25.
    leaky = discounted_returns(rewards, torch.zeros_like(ends), gamma=0.5)
    assert leaky[0, 0].item() == pytest.approx(5.25)


def test_gae_does_not_leak_across_an_episode_end():
    rewards, values, next_values, ends = random_rollout(7)
    ends[4] = True
    adv = gae(rewards, values, next_values, ends, 0.99, 0.95)
    changed = rewards.clone()
    changed[5:] += 100.0  # only the steps after the end at t = 4 change
    adv_changed = gae(changed, values, next_values, ends, 0.99, 0.95)
    torch.testing.assert_close(adv[:5], adv_changed[:5])


def test_truncation_bootstraps_and_termination_does_not():
    values = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    last_values = torch.tensor([3.0, 3.0])
    terminated = torch.tensor([[False, False], [True, False]])
    truncated = torch.tensor([[False, False], [False, True]])
    final_values = torch.tensor([[0.0, 0.0], [0.0, 7.0]])
    nxt = next_state_values(values, last_values, terminated, truncated, final_values)
    # Step 0 bootstraps from V(s_1); at step 1 env 0 terminated (0) and env 1 was
    # truncated (V of its true last observation, 7), not V of the reset state (3).
    torch.testing.assert_close(nxt, torch.tensor([[2.0, 2.0], [0.0, 7.0]]))


def test_batch_gae_of_a_hand_worked_batch():
    # Two envs, two steps, gamma 0.5, lambda 1. Env 0 terminates at step 1,
    # env 1 is truncated there with V(true last obs) = 7.
    #   env 0: A_1 = 1 - 2 = -1;          A_0 = (1 + 0.5 * 2 - 1) + 0.5 * A_1 = 0.5
    #   env 1: A_1 = 1 + 0.5 * 7 - 2 = 2.5; A_0 = 1 + 0.5 * A_1 = 2.25
    batch = RolloutBatch(
        obs=torch.zeros(2, 2, 1),
        actions=torch.zeros(2, 2, dtype=torch.long),
        logprobs=torch.zeros(2, 2),
        values=torch.tensor([[1.0, 1.0], [2.0, 2.0]]),
        rewards=torch.ones(2, 2),
        terminated=torch.tensor([[False, False], [True, False]]),
        truncated=torch.tensor([[False, False], [False, True]]),
        final_values=torch.tensor([[0.0, 0.0], [0.0, 7.0]]),
        last_values=torch.tensor([3.0, 3.0]),
    )
    expected = torch.tensor([[0.5, 2.25], [-1.0, 2.5]])
    torch.testing.assert_close(batch_gae(batch, 0.5, 1.0), expected)
    # Rewards passed in (scaled ones, in train) replace batch.rewards: doubling
    # every reward adds 1 + 0.5 = 1.5 to A_0 and 1 to A_1.
    doubled = batch_gae(batch, 0.5, 1.0, rewards=2 * batch.rewards)
    torch.testing.assert_close(doubled, expected + torch.tensor([[1.5], [1.0]]))


def test_value_target_of_a_truncated_constant_reward_episode_is_r_over_1_minus_gamma():
    # An endless reward-1 task cut by a time limit: with V = 1/(1 - gamma) already
    # learned, a bootstrapped target stays there; a non-bootstrapped one does not.
    gamma, steps = 0.9, 5
    v = 1 / (1 - gamma)
    rewards = torch.ones(steps, 1)
    values = torch.full((steps, 1), v)
    truncated = torch.zeros(steps, 1, dtype=torch.bool)
    truncated[-1] = True
    terminated = torch.zeros_like(truncated)
    final_values = torch.zeros(steps, 1)
    final_values[-1] = v
    nxt = next_state_values(values, torch.zeros(1), terminated, truncated, final_values)
    returns = discounted_returns(rewards, truncated, gamma, nxt)
    torch.testing.assert_close(returns, values)
    as_if_terminated = discounted_returns(rewards, truncated, gamma)
    assert as_if_terminated[-1, 0].item() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_gamma_and_lambda_are_rejected(bad):
    rewards, values, next_values, ends = random_rollout(0)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got"):
        discounted_returns(rewards, ends, bad)
    with pytest.raises(ValueError, match=r"gae_lambda must be in \[0, 1\], got"):
        gae(rewards, values, next_values, ends, 0.99, bad)
