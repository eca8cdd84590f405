"""networks.Actor: both actors keep the interface that rollouts, updates and
evaluation use, checked against torch.distributions."""

import math
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import (
    AffineTransform,
    TanhTransform,
    TransformedDistribution,
    kl_divergence,
)

from ppo_helpers.networks import Actor, CategoricalActor, GaussianActor

B, OBS_DIM = 64, 5
SPACES = {
    "categorical": (CategoricalActor, gym.spaces.Discrete(4)),
    "gaussian": (GaussianActor, gym.spaces.Box(-1.0, 2.0, (3,), np.float32)),
    "gaussian, tanh": (
        partial(GaussianActor, squash="tanh"),
        gym.spaces.Box(-1.0, 2.0, (3,), np.float32),
    ),
    "gaussian, state-dependent sigma": (
        partial(GaussianActor, state_dependent_std=True),
        gym.spaces.Box(-1.0, 2.0, (3,), np.float32),
    ),
}


@pytest.fixture(params=sorted(SPACES))
def actor_and_space(request):
    kind, space = SPACES[request.param]
    torch.manual_seed(0)
    actor = kind(OBS_DIM, space, (16,))
    with torch.no_grad():  # move away from the near-uniform start
        for p in actor.parameters():
            p.add_(torch.randn_like(p))
    return actor, space


def params_of(actor, seed=1):
    obs = torch.randn(B, OBS_DIM, generator=torch.Generator().manual_seed(seed))
    return actor(obs)


def test_an_actor_is_an_actor(actor_and_space):
    actor, _ = actor_and_space
    assert isinstance(actor, Actor)


def test_samples_have_the_declared_shape_and_dtype_and_their_log_prob(
    actor_and_space,
):
    actor, _ = actor_and_space
    params = params_of(actor)
    actions, logp = actor.sample(params)
    assert actions.shape == (B, *actor.action_shape)
    assert actions.dtype == actor.action_dtype and logp.shape == (B,)
    # the same density by another route (log_softmax, or Normal's formula):
    # float32's default tolerance of assert_close, about ten eps
    torch.testing.assert_close(logp, actor.distribution(params).log_prob(actions))


def test_log_prob_and_entropy_are_the_distributions(actor_and_space):
    actor, _ = actor_and_space
    params = params_of(actor)
    actions, _ = actor.sample(params)
    logp, entropy = actor.log_prob_entropy(params, actions)
    dist = actor.distribution(params)
    torch.testing.assert_close(logp, dist.log_prob(actions))
    torch.testing.assert_close(entropy, dist.entropy())
    assert logp.requires_grad and entropy.requires_grad  # the update needs both


def test_kl_is_torchs_and_zero_against_itself(actor_and_space):
    actor, _ = actor_and_space
    old, new = params_of(actor, 1), params_of(actor, 1) + 0.1 * params_of(actor, 2)
    expected = kl_divergence(actor.distribution(old), actor.distribution(new))
    torch.testing.assert_close(actor.kl(old, new), expected)
    assert torch.equal(actor.kl(old, old), torch.zeros(B))


def test_the_mode_is_at_least_as_likely_as_any_sample(actor_and_space):
    actor, _ = actor_and_space
    params = params_of(actor)
    dist, mode = actor.distribution(params), actor.mode(params)
    assert mode.shape == (B, *actor.action_shape) and mode.dtype == actor.action_dtype
    samples = torch.stack([actor.sample(params)[0] for _ in range(50)])
    assert (dist.log_prob(mode) >= dist.log_prob(samples).max(0).values).all()


def test_env_actions_lie_in_the_action_space(actor_and_space):
    actor, space = actor_and_space
    params = params_of(actor)
    if isinstance(space, gym.spaces.Box):  # far outside the bounds: clipped
        params = params.clone()
        params[:, : space.shape[0]] *= 100
    actions, _ = actor.sample(params)
    for action in actor.env_action(actions):
        assert space.contains(action)


def squashed(actor, params):
    """pi(.|s) of the env's action under tanh squashing, by torch's own transforms."""
    low, high = actor.low, actor.high
    return TransformedDistribution(
        actor.distribution(params).base_dist,
        [TanhTransform(), AffineTransform((high + low) / 2, (high - low) / 2)],
    )


def test_tanh_squashing_maps_onto_the_box_and_keeps_the_ratio():
    space = gym.spaces.Box(-1.0, 2.0, (3,), np.float32)
    torch.manual_seed(0)
    actor = GaussianActor(OBS_DIM, space, (16,), squash="tanh")
    old, new = params_of(actor, 1), params_of(actor, 1) + 0.1 * params_of(actor, 2)
    u, _ = actor.sample(old)
    u = u.clamp(-3, 3)  # away from tanh's flat ends, where float32 rounds to 1
    action = torch.as_tensor(actor.env_action(u))
    assert ((action > actor.low) & (action < actor.high)).all()
    midpoint = torch.as_tensor(actor.env_action(torch.zeros(1, 3)))
    torch.testing.assert_close(midpoint, torch.full((1, 3), 0.5))
    # torch inverts the squash (atanh): float32's 6e-8 in tanh(u) becomes up to
    # 6e-8 / (1 - tanh(3)^2) = 6e-6 in u, and |u - mu| / sigma^2 <= 4 times that
    # in each of 3 log-densities: 7e-5
    atol = 3 * 4 * 6e-8 / (1 - math.tanh(3) ** 2)
    # the density of the action is N(u) over the Jacobian of the squash ...
    jacobian = (1 - torch.tanh(u) ** 2) * (actor.high - actor.low) / 2
    logp_u, _ = actor.log_prob_entropy(old, u)
    logp_action = squashed(actor, old).log_prob(action).sum(-1)
    expected = logp_u - jacobian.log().sum(-1)
    torch.testing.assert_close(logp_action, expected, atol=atol, rtol=0)
    # ... the same factor for both policies, so the ratio at u is the ratio
    # of the actions' densities: what PPO and TRPO compute is unchanged
    log_ratio_action = squashed(actor, new).log_prob(action).sum(-1) - logp_action
    log_ratio_u = actor.log_prob_entropy(new, u)[0] - logp_u
    torch.testing.assert_close(log_ratio_action, log_ratio_u, atol=2 * atol, rtol=0)


def test_an_unknown_squash_is_refused_by_name():
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    with pytest.raises(ValueError, match=r"squash must be one of \('clip', 'tanh'\)"):
        GaussianActor(OBS_DIM, space, (16,), squash="sigmoid")


@pytest.mark.parametrize("state_dependent", [False, True])
def test_sigma_starts_at_log_std_init_and_varies_with_the_state_only_if_asked(
    state_dependent,
):
    space = gym.spaces.Box(-1.0, 2.0, (3,), np.float32)
    torch.manual_seed(0)
    actor = GaussianActor(
        OBS_DIM, space, (16,), log_std_init=-0.5, state_dependent_std=state_dependent
    )
    log_std = params_of(actor).chunk(2, dim=-1)[1]
    # at the start the head's weights have gain 0.01: log sigma(s) is -0.5 plus
    # a small term, exactly -0.5 for the free vector
    assert torch.allclose(log_std, torch.full_like(log_std, -0.5), atol=0.05)
    with torch.no_grad():  # train the weights away from the start
        for p in actor.parameters():
            p.add_(torch.randn_like(p))
    log_std = params_of(actor).chunk(2, dim=-1)[1]
    spread = (log_std.max(0).values - log_std.min(0).values).max().item()
    assert (spread > 0.1) if state_dependent else (spread == 0.0)


def test_a_generator_draws_what_the_global_stream_seeded_alike_draws(
    actor_and_space,
):
    # a run samples from its own generator; seeded alike, it must draw exactly
    # what torch's global generator drew before runs had one (checkpoints and
    # committed runs rely on it), and then the two streams stay in step
    actor, _ = actor_and_space
    params = params_of(actor)
    generator = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    for _ in range(3):
        own, logp_own = actor.sample(params, generator)
        shared, logp_shared = actor.sample(params)
        assert torch.equal(own, shared) and torch.equal(logp_own, logp_shared)
    assert torch.equal(generator.get_state(), torch.get_rng_state())
    if isinstance(actor, GaussianActor):  # and what torch.distributions draws
        torch.manual_seed(7)
        drawn = actor.distribution(params).sample()
        own, _ = actor.sample(params, torch.Generator().manual_seed(7))
        assert torch.equal(own, drawn)
