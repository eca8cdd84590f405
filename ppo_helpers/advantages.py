"""Returns and advantages: pure functions on time-major (T, N) tensors.

Discounted returns are derived in chapter 1, GAE(lambda) in chapter 5.

The one rule both follow: at step ``t`` the next state's value is

* ``0`` if the episode terminated at ``t`` (there is no future);
* ``V(s_{t+1})`` of the *true* last observation if a time limit truncated it
  (the future exists, we just stopped watching);
* ``V(s_{t+1})`` of the next observation otherwise.

``next_state_values`` builds that tensor once; everything else takes it.
"""

import torch

from ppo_helpers.checks import check_range


def next_state_values(
    values: torch.Tensor,
    last_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    final_values: torch.Tensor,
) -> torch.Tensor:
    """V(s_{t+1}) to bootstrap from at each step, shape (T, N).

    ================  ======  =================================================
    Argument          Shape   Description
    ================  ======  =================================================
    ``values``        (T, N)  V(s_t)
    ``last_values``   (N,)    V(s_T), the observation after the rollout
    ``terminated``    (T, N)  bool, true end at step t: bootstrap with 0
    ``truncated``     (T, N)  bool, time-limit cut at step t
    ``final_values``  (T, N)  V of the true last observation where truncated
    ================  ======  =================================================
    """
    next_values = torch.cat([values[1:], last_values.unsqueeze(0)])
    next_values = torch.where(truncated, final_values, next_values)
    return torch.where(terminated, torch.zeros_like(next_values), next_values)


def discounted_returns(
    rewards: torch.Tensor,
    episode_ends: torch.Tensor,
    gamma: float,
    next_values: torch.Tensor | None = None,
) -> torch.Tensor:
    """G_t = r_t + gamma * G_{t+1}, restarted at every episode end, shape (T, N).

    Where an episode ends at ``t`` (or at the last step ``T-1``, where the
    rollout stops) the sum is closed with ``gamma * next_values[t]`` instead of
    ``G_{t+1}``; ``None`` means no bootstrap (pure Monte Carlo). The seed blog
    post's bug was to run this recursion straight through episode ends, so one
    episode's rewards leaked into the previous episode's returns.
    """
    check_range("gamma", gamma, 0, 1)
    if next_values is None:
        next_values = torch.zeros_like(rewards)
    returns = torch.zeros_like(rewards)
    future = next_values[-1]
    for t in reversed(range(rewards.shape[0])):
        future = torch.where(episode_ends[t], next_values[t], future)
        returns[t] = rewards[t] + gamma * future
        future = returns[t]
    return returns


def td_residuals(
    rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, gamma: float
) -> torch.Tensor:
    """delta_t = r_t + gamma * V(s_{t+1}) - V(s_t), shape (T, N).

    Eq. ``td-residual`` of chapter 5.
    """
    check_range("gamma", gamma, 0, 1)
    return rewards + gamma * next_values - values


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    episode_ends: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """Generalised advantage estimate A_t = sum_k (gamma lambda)^k delta_{t+k}.

    The sum stops at episode ends (eq. ``gae``, Schulman et al. 2016).
    ``gae_lambda=0`` gives the TD residual, ``gae_lambda=1`` the discounted
    return minus ``values``. All tensors (T, N); the result too. The
    value target is ``advantages + values``.
    """
    check_range("gae_lambda", gae_lambda, 0, 1)
    deltas = td_residuals(rewards, values, next_values, gamma)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = deltas[t] + gamma * gae_lambda * running * (~episode_ends[t])
        advantages[t] = running
    return advantages
