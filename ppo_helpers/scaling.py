"""Reward scaling by a running standard deviation of the discounted return.

LunarLander's rewards span -100 (crash) to +100 (landing) plus small shaping
terms. Dividing them by the running std of the discounted return keeps the
value targets near unit scale without shifting their sign (chapter 5).
"""

from collections.abc import Callable

import numpy as np
import torch


def merge_moments(count, mean, var, batch_count, batch_mean, batch_var):
    """Mean and variance of two samples merged (Chan et al.): (count, mean, var).

    Floats or tensors of any one shape; ``var`` is the population variance
    (correction 0). With ``count = 0`` the result is the batch's own moments.
    """
    total = count + batch_count
    delta = batch_mean - mean
    mean = mean + delta * batch_count / total
    var = (
        var * count + batch_var * batch_count + delta**2 * count * batch_count / total
    ) / total
    return total, mean, var


class RewardScaler:
    """Divides rewards by the running std of ``G_t = gamma * G_{t-1} + r_t`` per env.

    Its state (``state_dict``) goes into checkpoints so that a resumed run
    scales rewards exactly as the uninterrupted one would.
    """

    def __init__(self, num_envs: int, gamma: float, eps: float = 1e-8):
        self.gamma = gamma
        self.eps = eps
        self.discounted = torch.zeros(num_envs, dtype=torch.float64)
        self.count = 0
        self.mean = 0.0
        self.var = 1.0

    def scale(
        self,
        rewards: torch.Tensor,
        episode_ends: torch.Tensor,
        merge: Callable[[int, float, float], tuple[int, float, float]] | None = None,
    ) -> torch.Tensor:
        """Scaled copy of ``rewards`` (T, N); ``episode_ends`` (T, N) resets G.

        ``merge(count, mean, var)`` may replace this batch's moments of G by
        those of every rank's batch together (``run``, chapter 8), so that all
        ranks divide by the same std and the critic sees one scale.
        """
        # A loop over T steps of small-array arithmetic: NumPy does each step in
        # a fraction of torch's per-op overhead. ``discounted`` is updated in place.
        discounted = self.discounted.numpy()
        step_rewards, ends = rewards.numpy(), episode_ends.numpy()
        returns = np.zeros(step_rewards.shape, dtype=np.float64)
        for t in range(len(step_rewards)):
            discounted *= self.gamma
            discounted += step_rewards[t]
            returns[t] = discounted
            discounted[ends[t]] = 0.0
        x = torch.from_numpy(returns).flatten()
        batch = (x.numel(), x.mean().item(), x.var(correction=0).item())
        if merge is not None:
            batch = merge(*batch)
        self.count, self.mean, self.var = merge_moments(
            self.count, self.mean, self.var, *batch
        )
        return rewards / (self.var**0.5 + self.eps)

    def state_dict(self) -> dict:
        return {
            "discounted": self.discounted.clone(),
            "count": self.count,
            "mean": self.mean,
            "var": self.var,
        }

    def load_state_dict(self, state: dict) -> None:
        self.discounted = state["discounted"].clone()
        self.count, self.mean, self.var = state["count"], state["mean"], state["var"]
