"""optim.clip_gradients: one joint norm or one per network, as clip_grad_norm_ does."""

import math

import pytest
import torch
from conftest import spaces

from ppo_helpers.networks import ActorCritic
from ppo_helpers.optim import clip_gradients


def agent_with_gradients(value_scale: float) -> ActorCritic:
    """An agent whose critic gradient is ``value_scale`` times larger than usual."""
    torch.manual_seed(0)
    agent = ActorCritic(*spaces(8, 4))
    obs = torch.randn(64, 8)
    loss = (
        agent.actor(obs).logsumexp(-1).mean()
        + value_scale * agent.value(obs).pow(2).mean()
    )
    loss.backward()
    return agent


def norm_rtol(module: torch.nn.Module) -> float:
    """Relative tolerance of a clipped float32 norm over the module's P entries.

    sqrt(P) eps for the rounding of the squares' sum (random-walk growth, as the
    norm is taken twice: to clip and to check), plus the 1e-6 that the clip adds
    to the norm, relative to the limit 0.5.
    """
    size = sum(p.numel() for p in module.parameters())
    return math.sqrt(size) * torch.finfo(torch.float32).eps + 1e-6 / 0.5


def groups(agent: ActorCritic, per_network: bool) -> list:
    """The parameter groups that ppo.update clips: per network or jointly."""
    if per_network:
        return [list(agent.actor.parameters()), list(agent.critic.parameters())]
    return [list(agent.parameters())]


def grad_norm(module: torch.nn.Module) -> float:
    grads = [p.grad.ravel() for p in module.parameters()]
    return torch.linalg.vector_norm(torch.cat(grads)).item()


def test_joint_clip_matches_torch_clip_grad_norm():
    agent = agent_with_gradients(value_scale=100.0)
    reference = agent_with_gradients(value_scale=100.0)  # the same, seeded
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    clip_gradients([agent.parameters()], 0.5)
    for ours, theirs in zip(agent.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad)
    assert grad_norm(agent) == pytest.approx(0.5, rel=norm_rtol(agent))


def test_joint_clip_shrinks_the_policy_with_a_large_critic_gradient():
    agent = agent_with_gradients(value_scale=100.0)
    actor_before = grad_norm(agent.actor)
    clip_gradients([agent.parameters()], 0.5)
    # The critic dominates the joint norm, so the actor's share is cut far below 0.5.
    assert grad_norm(agent.actor) < 0.5 * actor_before
    assert grad_norm(agent.actor) < 0.1


def test_per_network_clip_bounds_each_network_on_its_own():
    agent = agent_with_gradients(value_scale=100.0)
    actor_before = grad_norm(agent.actor)
    clip_gradients([agent.actor.parameters(), agent.critic.parameters()], 0.5)
    assert grad_norm(agent.critic) == pytest.approx(0.5, rel=norm_rtol(agent.critic))
    assert grad_norm(agent.actor) == pytest.approx(
        min(actor_before, 0.5), rel=norm_rtol(agent.actor)
    )


@pytest.mark.parametrize("per_network", [True, False])
def test_gradients_under_the_limit_and_a_zero_limit_are_left_alone(per_network):
    agent = agent_with_gradients(value_scale=1e-4)
    before = [p.grad.clone() for p in agent.parameters()]
    limit = 2 * grad_norm(agent)  # above the joint norm, hence above each network's
    clip_gradients(groups(agent, per_network), limit)
    for p, g in zip(agent.parameters(), before, strict=True):
        torch.testing.assert_close(p.grad, g)
    big = agent_with_gradients(value_scale=100.0)
    before = [p.grad.clone() for p in big.parameters()]
    clip_gradients(groups(big, per_network), 0.0)
    assert all(
        torch.equal(p.grad, g) for p, g in zip(big.parameters(), before, strict=True)
    )
