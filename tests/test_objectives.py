"""The PPO objectives: identities at theta_old, clip gradients, exact KL."""

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from ppo_helpers import objectives as obj


def test_ratio_is_one_and_surrogates_agree_at_theta_old():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(50, generator=g)
    adv = torch.randn(50, generator=g)
    r = obj.ratio(logp, logp)
    torch.testing.assert_close(r, torch.ones(50))
    cpi = obj.surrogate(r, adv)
    torch.testing.assert_close(obj.clipped_surrogate(r, adv, 0.2), cpi)
    torch.testing.assert_close(
        obj.kl_penalty_objective(r, adv, torch.zeros(50), 3.0), cpi
    )


def test_gradients_of_clip_and_cpi_agree_at_theta_old():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(20, 4, generator=g, requires_grad=True)
    actions = torch.randint(0, 4, (20,), generator=g)
    adv = torch.randn(20, generator=g)
    logp_old = Categorical(logits=logits.detach()).log_prob(actions)

    def grad_of(objective):
        logits.grad = None
        logp = Categorical(logits=logits).log_prob(actions)
        objective(obj.ratio(logp, logp_old)).mean().backward()
        return logits.grad.clone()

    cpi = grad_of(lambda r: obj.surrogate(r, adv))
    clip = grad_of(lambda r: obj.clipped_surrogate(r, adv, 0.2))
    torch.testing.assert_close(clip, cpi)


@pytest.mark.parametrize(
    "r,adv,grad",
    [
        (0.5, 1.0, 1.0),  # A > 0, r below the clip: min picks r*A, gradient A
        (1.0, 1.0, 1.0),  # A > 0 inside
        (1.5, 1.0, 0.0),  # A > 0 above 1 + eps: clipped, no gradient
        (0.5, -1.0, 0.0),  # A < 0 below 1 - eps: clipped, no gradient
        (1.0, -1.0, -1.0),  # A < 0 inside
        (1.5, -1.0, -1.0),  # A < 0 above: min picks r*A, gradient A
    ],
)
def test_clip_gradient_is_zero_exactly_where_the_clip_is_active(r, adv, grad):
    ratio = torch.tensor(r, requires_grad=True)
    obj.clipped_surrogate(ratio, torch.tensor(adv), 0.2).backward()
    assert ratio.grad.item() == grad


def test_clipped_surrogate_is_a_lower_bound_of_cpi():
    g = torch.Generator().manual_seed(2)
    ratio = torch.rand(1000, generator=g) * 3
    adv = torch.randn(1000, generator=g)
    assert (obj.clipped_surrogate(ratio, adv, 0.2) <= obj.surrogate(ratio, adv)).all()


def test_categorical_kl_of_a_policy_with_itself_is_zero():
    logits = torch.randn(10, 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(obj.categorical_kl(logits, logits), torch.zeros(10))
    # Adding a constant to every logit leaves the policy unchanged.
    torch.testing.assert_close(
        obj.categorical_kl(logits, logits + 4.0), torch.zeros(10)
    )


def test_categorical_kl_matches_torch_and_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(4)
    old, new = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    exact = obj.categorical_kl(old, new)
    torch.testing.assert_close(
        exact, kl_divergence(Categorical(logits=old), Categorical(logits=new))
    )
    torch.manual_seed(5)
    p_old, p_new = Categorical(logits=old), Categorical(logits=new)
    a = p_old.sample((200_000,))
    log_ratio = p_old.log_prob(a) - p_new.log_prob(a)
    # 5 standard errors of a 200,000-sample mean: fails by chance with p < 1e-6
    standard_error = log_ratio.std(0) / len(a) ** 0.5
    assert ((log_ratio.mean(0) - exact).abs() <= 5 * standard_error).all()
    assert (exact > 0).all()


def test_approx_kl_is_nonnegative_and_close_to_exact_kl():
    g = torch.Generator().manual_seed(6)
    old = torch.randn(1, 4, generator=g)
    new = old + 0.1 * torch.randn(1, 4, generator=g)
    p_old, p_new = Categorical(logits=old), Categorical(logits=new)
    torch.manual_seed(7)
    a = p_old.sample((100_000,))
    logratio = p_new.log_prob(a) - p_old.log_prob(a)
    exact = obj.categorical_kl(old, new).item()
    k3 = (logratio.exp() - 1) - logratio  # the per-sample terms approx_kl averages
    standard_error = (k3.std() / len(k3) ** 0.5).item()
    assert obj.approx_kl(logratio).item() == pytest.approx(
        exact, abs=5 * standard_error
    )
    assert obj.approx_kl(torch.tensor([-3.0, 0.0, 2.0])).item() >= 0


@pytest.mark.parametrize(
    "kl,expected",
    [
        (0.001, 0.5),
        (0.0066, 0.5),
        (0.0067, 1.0),
        (0.01, 1.0),
        (0.015, 1.0),
        (0.0151, 2.0),
    ],
)
def test_adaptive_beta_follows_the_papers_rule(kl, expected):
    # d_targ = 0.01: halve below 0.01 / 1.5 = 0.00667, double above 0.015.
    assert obj.adaptive_beta(1.0, kl, d_targ=0.01) == expected


def test_clip_fraction_counts_ratios_outside_the_band():
    ratio = torch.tensor([0.7, 0.85, 1.0, 1.1, 1.25, 2.0])
    assert obj.clip_fraction(ratio, 0.2).item() == pytest.approx(3 / 6)


def test_value_loss_and_its_clipped_variant():
    values = torch.tensor([1.0, 3.0])
    returns = torch.tensor([0.0, 0.0])
    assert obj.value_loss(values, returns).item() == pytest.approx(0.5 * (1 + 9) / 2)
    old = torch.tensor([0.0, 0.0])
    # Clipped value: 0 + clamp(1, -.5, .5) = .5 and .5; max with unclipped errors.
    clipped = obj.value_loss(values, returns, old, clip_coef=0.5).item()
    assert clipped == pytest.approx(0.5 * (1 + 9) / 2)
    values = torch.tensor([0.2])  # moved towards the target: clipped error is larger
    returns, old = torch.tensor([-1.0]), torch.tensor([1.0])
    assert obj.value_loss(values, returns, old, 0.5).item() == pytest.approx(
        0.5 * 1.5**2
    )


@pytest.mark.parametrize(
    "call,message",
    [
        (
            lambda: obj.clipped_surrogate(torch.ones(1), torch.ones(1), 1.5),
            r"clip_coef must be in \(0, 1\), got 1.5",
        ),
        (
            lambda: obj.clipped_surrogate(torch.ones(1), torch.ones(1), 0.0),
            r"clip_coef must be in \(0, 1\), got 0.0",
        ),
        (
            lambda: obj.kl_penalty_objective(
                torch.ones(1), torch.ones(1), torch.ones(1), -1.0
            ),
            r"beta must be >= 0, got -1.0",
        ),
        (lambda: obj.adaptive_beta(0.0, 0.01, 0.01), r"beta must be > 0, got 0.0"),
        (lambda: obj.adaptive_beta(1.0, 0.01, -0.01), r"d_targ must be > 0, got -0.01"),
        (
            lambda: obj.value_loss(torch.ones(1), torch.ones(1), None, 0.2),
            "value clipping needs old_values",
        ),
    ],
)
def test_bad_hyperparameters_give_documented_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
