"""Actor-critic networks for Discrete and Box action spaces.

One interface for both policy kinds, built on ``torch.distributions``. An actor
maps observations to the parameters of its distribution, ``params`` (B, P): the
logits for a ``CategoricalActor``, the mean and log-std side by side for a
``GaussianActor``. Storing ``params`` is storing pi_old, whatever its kind, so
the PPO update, the KL penalty and TRPO never ask which kind they hold.
Categorical policy in chapter 1, initialisation and observation normalisation
in chapter 5.
"""

import math
from typing import Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from ppo_helpers import objectives
from ppo_helpers.scaling import merge_moments


def layer_init(layer: nn.Linear, gain: float = math.sqrt(2), bias: float = 0.0):
    """Orthogonal weights with ``gain`` and a constant bias, returned for chaining.

    ``sqrt(2)`` suits tanh hidden layers; the policy head uses 0.01 so the first
    policy is close to uniform (or to a zero mean), the value head 1.0 (chapter 5).
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


@runtime_checkable
class Actor(Protocol):
    """What rollouts, the PPO and TRPO updates and evaluation ask of a policy.

    ``params`` (B, P) are the distribution's parameters for a batch of B
    (normalised) observations; storing them is storing pi_old. Actions are
    ``action_dtype`` of shape (B, *action_shape). ``CategoricalActor`` and
    ``GaussianActor`` implement it; ``tests/test_actors.py`` checks both against
    ``torch.distributions``.
    """

    action_shape: tuple[int, ...]
    action_dtype: torch.dtype

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """``params`` (B, P) of pi(.|s) for observations (B, D)."""

    def distribution(self, params: torch.Tensor) -> Distribution:
        """pi(.|s) as a ``torch.distributions`` object, batch shape (B,)."""

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(a ~ pi(.|s), log pi(a|s)): actions (B, *action_shape), (B,), drawn
        from ``generator`` (default: torch's global one)."""

    def log_prob_entropy(
        self, params: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a|s), H(pi(.|s))), each (B,), with gradients to ``params``."""

    def kl(self, params_old: torch.Tensor, params_new: torch.Tensor) -> torch.Tensor:
        """Exact KL(pi_old || pi_new) per state, (B,)."""

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The most likely action, (B, *action_shape)."""

    def env_action(self, action: torch.Tensor) -> np.ndarray:
        """``action`` as the env takes it (within a Box's bounds)."""


class CategoricalActor(nn.Module):
    """pi(.|s) = softmax(logits(s)) over K actions; ``params`` are the logits (B, K).

    Actions are int64 of shape (B,).
    """

    def __init__(self, obs_dim: int, action_space: gym.spaces.Discrete, hidden):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, int(action_space.n)], out_gain=0.01)
        self.action_shape, self.action_dtype = (), torch.long

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)

    def distribution(self, params: torch.Tensor) -> Distribution:
        return Categorical(logits=params, validate_args=False)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(a ~ pi, log pi(a)), each (B,): ``distribution(params).sample()`` with
        less overhead, as the rollout calls it once per env step."""
        logp_all = torch.log_softmax(params, dim=-1)
        action = torch.multinomial(logp_all.exp(), 1, generator=generator)
        return action.squeeze(-1), logp_all.gather(-1, action).squeeze(-1)

    def log_prob_entropy(self, params, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a|s), H(pi(.|s))), each (B,), in one log_softmax."""
        logp_all = torch.log_softmax(params, dim=-1)
        logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return logp, -(logp_all.exp() * logp_all).sum(-1)

    def kl(self, params_old: torch.Tensor, params_new: torch.Tensor) -> torch.Tensor:
        """Exact KL(pi_old || pi_new) per state, (B,): ``objectives.categorical_kl``."""
        return objectives.categorical_kl(params_old, params_new)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The most likely action, (B,)."""
        return params.argmax(-1)

    def env_action(self, action: torch.Tensor) -> np.ndarray:
        return action.numpy()


class GaussianActor(nn.Module):
    """pi(.|s) = N(mu(s), diag(sigma^2)), the PPO paper's continuous policy.

    The mean comes from a tanh MLP; log sigma is one learned vector shared by
    all states (state-independent), starting at ``log_std_init``. With
    ``state_dependent_std`` the MLP outputs log sigma(s) too, from a second
    block of A outputs whose bias starts at ``log_std_init`` (chapter 6
    compares the two). ``params`` (B, 2A) holds the mean and log sigma side by
    side; actions are float32 of shape (B, A).

    The sampled action u is unbounded, and so is the action the updates see.
    Only on its way to the env (``env_action``) does it meet the action space's
    bounds, in one of two ways (``squash``):

    - ``"clip"``: clamp(u, low, high). The log-probability stays that of the
      unclipped sample: the ratio pi_theta / pi_old must compare two densities
      at the u the Gaussian drew. Every sample beyond a bound clips to the same
      action, which has a probability mass, not a density.
    - ``"tanh"``: low + (tanh(u) + 1) (high - low) / 2, a smooth bijection onto
      the box. The density of that action is N(u) divided by the Jacobian
      prod_i (1 - tanh(u_i)^2) (high_i - low_i) / 2, the same factor for pi_theta
      and pi_old, so the ratio of the actions' densities is the ratio at u.
    """

    SQUASHES = ("clip", "tanh")

    def __init__(
        self,
        obs_dim,
        action_space: gym.spaces.Box,
        hidden,
        log_std_init: float = 0.0,
        squash: str = "clip",
        state_dependent_std: bool = False,
    ):
        super().__init__()
        if squash not in self.SQUASHES:
            raise ValueError(f"squash must be one of {self.SQUASHES}, got {squash!r}")
        self.squash = squash
        action_dim = action_space.shape[0]
        self.state_dependent_std = state_dependent_std
        if state_dependent_std:
            self.net = mlp([obs_dim, *hidden, 2 * action_dim], out_gain=0.01)
            nn.init.constant_(self.net[-1].bias[action_dim:], float(log_std_init))
        else:
            self.net = mlp([obs_dim, *hidden, action_dim], out_gain=0.01)
            self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        self.register_buffer("low", torch.as_tensor(action_space.low))
        self.register_buffer("high", torch.as_tensor(action_space.high))
        self.action_shape, self.action_dtype = (action_dim,), torch.float32

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.state_dependent_std:
            return self.net(obs)  # mean and log sigma(s), side by side
        mean = self.net(obs)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)

    def distribution(self, params: torch.Tensor) -> Distribution:
        mean, log_std = params.chunk(2, dim=-1)
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(a ~ pi, log pi(a)): actions (B, A), log-probabilities (B,).

        ``torch.normal`` with the distribution's mean and sigma draws what
        ``distribution(params).sample()`` draws, from ``generator``."""
        dist = self.distribution(params)
        normal = dist.base_dist
        with torch.no_grad():
            action = torch.normal(normal.loc, normal.scale, generator=generator)
        return action, dist.log_prob(action)

    def log_prob_entropy(self, params, actions) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(a|s), H(pi(.|s))), each (B,), summed over the A dimensions."""
        dist = self.distribution(params)
        return dist.log_prob(actions), dist.entropy()

    def kl(self, params_old: torch.Tensor, params_new: torch.Tensor) -> torch.Tensor:
        """Exact KL(pi_old || pi_new) per state, (B,) (``objectives.gaussian_kl``)."""
        return objectives.gaussian_kl(
            *params_old.chunk(2, dim=-1), *params_new.chunk(2, dim=-1)
        )

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        """The mean action, (B, A): the most likely one."""
        return params.chunk(2, dim=-1)[0]

    def env_action(self, action: torch.Tensor) -> np.ndarray:
        """The action within the env's bounds, clipped or squashed (``squash``)."""
        if self.squash == "tanh":
            return (
                self.low + (torch.tanh(action) + 1) * (self.high - self.low) / 2
            ).numpy()
        return torch.clamp(action, self.low, self.high).numpy()


class ObservationNormalizer(nn.Module):
    """(s - mean) / sqrt(var + 1e-8), clipped to [-10, 10], per observation entry.

    ``mean`` and ``var`` (D,) are running statistics of every observation passed
    to ``update``. They are buffers, so they live in the agent's ``state_dict``:
    in checkpoints, in saved agents and in ``evaluate``. ``train`` updates them
    between iterations only, so a rollout and the update that learns from it see
    the same normalisation (chapters 5 and 6).
    """

    def __init__(self, obs_dim: int, clip: float = 10.0):
        super().__init__()
        self.clip = clip
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(obs_dim, dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scaled = (obs - self.mean) / torch.sqrt(self.var + 1e-8)
        return scaled.clamp(-self.clip, self.clip).to(obs.dtype)

    @torch.no_grad()
    def update(self, obs: torch.Tensor) -> None:
        """Merge a batch of observations (B, D) into the statistics."""
        obs = obs.to(torch.float64)
        count, mean, var = merge_moments(
            self.count, self.mean, self.var, len(obs), obs.mean(0), obs.var(0, False)
        )
        self.count.copy_(count)
        self.mean.copy_(mean)
        self.var.copy_(var)


class ActorCritic(nn.Module):
    """A policy and a value MLP over the same observation, built from the spaces.

    ==========  =========  ==================================================
    Symbol      Shape      Description
    ==========  =========  ==================================================
    ``obs``     (B, D)     batch of raw observations, float32
    params      (B, P)     pi's distribution parameters (see the actor kinds)
    action      (B, ...)   (B,) int64 for Discrete, (B, A) float32 for Box
    value       (B,)       V(s), the critic's estimate of the return
    ==========  =========  ==================================================

    A ``Discrete`` action space gets a ``CategoricalActor``, a ``Box`` one a
    ``GaussianActor``. Actor and critic share no weights, so the large value
    gradients cannot disturb the policy's features (chapter 5). With
    ``norm_obs`` both see observations through an ``ObservationNormalizer``.
    ``log_std_init`` is a Gaussian actor's starting log sigma,
    ``action_squash`` how it meets the bounds and ``state_dependent_std``
    whether sigma depends on the state (``GaussianActor``).
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Space,
        hidden: tuple[int, ...] = (64, 64),
        norm_obs: bool = False,
        log_std_init: float = 0.0,
        action_squash: str = "clip",
        state_dependent_std: bool = False,
    ):
        super().__init__()
        obs_dim = observation_space.shape[0]
        self.observation_space, self.action_space = observation_space, action_space
        self.actor: Actor
        if isinstance(action_space, gym.spaces.Box):
            self.actor = GaussianActor(
                obs_dim,
                action_space,
                hidden,
                log_std_init,
                action_squash,
                state_dependent_std,
            )
        else:
            self.actor = CategoricalActor(obs_dim, action_space, hidden)
        self.critic = mlp([obs_dim, *hidden, 1], out_gain=1.0)
        self.normalize = ObservationNormalizer(obs_dim) if norm_obs else nn.Identity()

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """pi_theta(.|s) as distribution parameters, (B, P)."""
        return self.actor(self.normalize(obs))

    def dist(self, obs: torch.Tensor) -> Distribution:
        """pi_theta(.|s) as a ``torch.distributions`` object, batch shape (B,)."""
        return self.actor.distribution(self.policy_params(obs))

    def act(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample a ~ pi_theta(.|s) from ``generator`` (default: torch's global
        one); return (action, log pi_theta(a|s))."""
        return self.actor.sample(self.policy_params(obs), generator)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action: the argmax, or the Gaussian's mean."""
        return self.actor.mode(self.policy_params(obs))

    def env_action(self, action: torch.Tensor) -> np.ndarray:
        """``action`` as the env takes it: NumPy, and clipped for a Box."""
        return self.actor.env_action(action)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) with shape (B,)."""
        return self.critic(self.normalize(obs)).squeeze(-1)
