"""Actor-critic networks for discrete actions (chapter 1; init in chapter 5)."""

import math

import torch
from torch import nn
from torch.distributions import Categorical


def layer_init(layer: nn.Linear, gain: float = math.sqrt(2), bias: float = 0.0):
    """Orthogonal weights with ``gain`` and a constant bias, returned for chaining.

    ``sqrt(2)`` suits tanh hidden layers; the policy head uses 0.01 so the first
    policy is close to uniform, the value head 1.0 (chapter 5).
    """
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(sizes: list[int], out_gain: float) -> nn.Sequential:
    """tanh MLP through ``sizes``; the last layer is linear with ``out_gain``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [layer_init(nn.Linear(n_in, n_out)), nn.Tanh()]
    layers.append(layer_init(nn.Linear(sizes[-2], sizes[-1]), gain=out_gain))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate policy and value MLPs over the same observation.

    ==========  ==========  ===========================================
    Symbol      Shape       Description
    ==========  ==========  ===========================================
    ``obs``     (B, D)      batch of observations, float32
    logits      (B, K)      unnormalised log pi(a|s) over K actions
    value       (B,)        V(s), the critic's estimate of the return
    ==========  ==========  ===========================================

    Actor and critic share no weights, so the large value gradients cannot
    disturb the policy's features (chapter 5).
    """

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: tuple[int, ...] = (64, 64)
    ):
        super().__init__()
        sizes = [obs_dim, *hidden]
        self.actor = mlp([*sizes, n_actions], out_gain=0.01)
        self.critic = mlp([*sizes, 1], out_gain=1.0)

    def dist(self, obs: torch.Tensor) -> Categorical:
        """pi_theta(.|s) as a ``Categorical`` over actions, batch shape (B,)."""
        return Categorical(logits=self.actor(obs), validate_args=False)

    def act(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample a ~ pi_theta(.|s); return (action, log pi_theta(a|s)), each (B,).

        The same draw as ``dist(obs).sample()`` with less overhead: the rollout
        calls it once per env step, so it is a third of the rollout's cost.
        """
        logp_all = torch.log_softmax(self.actor(obs), dim=-1)
        action = torch.multinomial(logp_all.exp(), 1)
        return action.squeeze(-1), logp_all.gather(-1, action).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) with shape (B,)."""
        return self.critic(obs).squeeze(-1)
