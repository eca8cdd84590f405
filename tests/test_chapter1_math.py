"""Chapter 1's identities: the score has mean zero, grad L^CPI at theta_old is the
policy gradient, away from it the importance weight appears, and L^CPI has a ceiling.
"""

import pytest
import torch
from torch.distributions import Categorical

from ppo_helpers import objectives as obj


def batch(seed, size=64, n_actions=3):
    """Random logits (requires grad), actions drawn from them, and advantages."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(size, n_actions, generator=g, requires_grad=True)
    actions = Categorical(logits=logits.detach()).sample((1,)).squeeze(0)
    adv = torch.randn(size, generator=g)
    return logits, actions, adv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_score_has_mean_zero_so_a_state_baseline_adds_no_bias(seed):
    # sum_a pi(a|s) * grad log pi(a|s) * b(s) = b(s) * grad sum_a pi(a|s) = 0 (eq.
    # ch1-baseline), computed exactly over all actions.
    logits, _, _ = batch(seed, size=8, n_actions=4)
    baseline = torch.randn(8, generator=torch.Generator().manual_seed(seed + 10))
    logp_all = torch.log_softmax(logits, dim=-1)
    weights = logp_all.exp().detach() * baseline.unsqueeze(-1)
    (grad,) = torch.autograd.grad((weights * logp_all).sum(), logits)
    # each entry sums K = 4 float32 terms of size <= |b|: rounding <= 2 K eps |b|
    atol = 2 * 4 * torch.finfo(torch.float32).eps * baseline.abs().max().item()
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=atol, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grad_of_cpi_at_theta_old_is_the_policy_gradient(seed):
    # eq. ch1-surrogate-gradient: grad mean(r_t A_t) = grad mean(log pi A_t) there.
    logits, actions, adv = batch(seed)
    logp = Categorical(logits=logits).log_prob(actions)
    (pg,) = torch.autograd.grad((logp * adv).mean(), logits, retain_graph=True)
    cpi = obj.surrogate(obj.ratio(logp, logp.detach()), adv).mean()
    (grad_cpi,) = torch.autograd.grad(cpi, logits)
    torch.testing.assert_close(grad_cpi, pg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_away_from_theta_old_grad_cpi_is_the_importance_weighted_policy_gradient(
    seed,
):
    # grad r_t = r_t grad log pi_theta: the ratio is the weight that lets old
    # samples stand for new ones (chapter 1, exercise ch1-ex-logratio).
    logits, actions, adv = batch(seed)
    g = torch.Generator().manual_seed(seed + 100)
    logp_old = Categorical(logits=logits.detach() + torch.randn(64, 3, generator=g))
    logp_old = logp_old.log_prob(actions)
    logp = Categorical(logits=logits).log_prob(actions)
    r = obj.ratio(logp, logp_old)
    cpi = obj.surrogate(r, adv).mean()
    (grad_cpi,) = torch.autograd.grad(cpi, logits, retain_graph=True)
    weighted = (r.detach() * logp * adv).mean()
    (grad_weighted,) = torch.autograd.grad(weighted, logits, retain_graph=True)
    (grad_plain,) = torch.autograd.grad((logp * adv).mean(), logits)
    torch.testing.assert_close(grad_cpi, grad_weighted)
    # the weights r_t differ from 1 by O(1), so the two differ far beyond 1e-4
    assert not torch.allclose(grad_cpi, grad_plain, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cpi_never_exceeds_its_ceiling_and_a_deterministic_fit_reaches_it(seed):
    # Each r_t lies in [0, 1/pi_old(a_t|s_t)], so with distinct states
    # L^CPI <= mean(max(A_t, 0) / pi_old(a_t|s_t)) (exercise ch1-ex-ceiling).
    logits_old, actions, adv = batch(seed)
    logp_old = Categorical(logits=logits_old.detach()).log_prob(actions)
    ceiling = (adv.clamp_min(0) / logp_old.exp()).mean()
    g = torch.Generator().manual_seed(seed + 200)
    for _ in range(20):
        logits_new = 5 * torch.randn(64, 3, generator=g)
        logp_new = Categorical(logits=logits_new).log_prob(actions)
        assert obj.surrogate(obj.ratio(logp_new, logp_old), adv).mean() <= ceiling
    # The policy that takes a_t where A_t > 0 and avoids it elsewhere reaches it.
    sign = torch.where(adv > 0, 1.0, -1.0)
    fitted = torch.nn.functional.one_hot(actions, 3) * sign.unsqueeze(-1) * 50.0
    logp_fit = Categorical(logits=fitted).log_prob(actions)
    reached = obj.surrogate(obj.ratio(logp_fit, logp_old), adv).mean()
    # exp(-50) vanishes in float32; what is left is the rounding of two means of
    # 64 float32 terms, at most 64 eps relative (8e-6)
    rtol = 64 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(reached, ceiling, atol=0.0, rtol=rtol)
