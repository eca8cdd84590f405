"""Properties of the KL-penalty objective and the adaptive beta (chapter 3)."""

import copy

import numpy as np
import pytest
import torch
from conftest import spaces

from ppo_helpers import objectives, ppo, presets
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.rollout import batch_gae, collect


def test_penalty_gradient_at_theta_old_is_the_cpi_gradient():
    # The KL has a minimum at theta_old, so beta cannot change the first step.
    torch.manual_seed(0)
    logits_old = torch.randn(16, 3)
    actions = torch.randint(3, (16,))
    adv = torch.randn(16)
    logp_old = torch.log_softmax(logits_old, -1).gather(-1, actions[:, None])[:, 0]
    grads = []
    for beta in (0.0, 1.0, 100.0):
        logits = logits_old.clone().requires_grad_(True)
        logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]
        kl = objectives.categorical_kl(logits_old, logits)
        ratio = objectives.ratio(logp, logp_old)
        objectives.kl_penalty_objective(ratio, adv, kl, beta).mean().backward()
        grads.append(logits.grad)
    # d KL / d logits = softmax(logits) * sum(p_old) - p_old: 0 up to the rounding
    # of sum(p_old) (2 eps), times beta <= 100, over the mean's 16 samples
    atol = 100 * 2 * torch.finfo(torch.float32).eps / 16
    for grad in grads[1:]:
        torch.testing.assert_close(grad, grads[0], atol=atol, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categorical_kl_is_half_the_fisher_quadratic_form_for_small_steps(seed):
    # KL[p, softmax(z + s v)] -> s^2 / 2 * v^T (diag(p) - p p^T) v as s -> 0.
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, generator=gen, dtype=torch.float64)
    direction = torch.randn(5, generator=gen, dtype=torch.float64)
    p = torch.softmax(logits, -1)
    fisher = torch.diag(p) - torch.outer(p, p)
    expected = 0.5 * direction @ fisher @ direction
    s = 1e-4
    kl = objectives.categorical_kl(logits[None], (logits + s * direction)[None])[0]
    # The cubic term is -s^3 kappa_3 / 6, with kappa_3 the third cumulant of v
    # under p: relatively (s / 3) kappa_3 / Var <= s max|v| (float64 rounding of
    # the s^2-sized KL is about eps / s^2 ~ 2e-8 relative, far below).
    rel = s * direction.abs().max().item()
    assert kl / s**2 == pytest.approx(expected.item(), rel=rel)


def test_penalty_is_subtracted_per_sample():
    ratio, adv, kl = torch.tensor([1.2, 0.9]), torch.tensor([1.0, -2.0]), torch.ones(2)
    out = objectives.kl_penalty_objective(ratio, adv, kl, beta=0.5)
    torch.testing.assert_close(out, torch.tensor([0.7, -2.3]))


@pytest.mark.parametrize("c", np.logspace(-4, 0, 9).tolist())
def test_adaptive_beta_settles_when_kl_scales_like_one_over_beta(c):
    # A doubling of beta halves the KL: one step (factor 2) cannot jump over the
    # band, whose edges are a factor 2.25 apart, so the rule reaches a fixed point.
    beta, d_targ = 1.0, 0.01
    for _ in range(40):
        new_beta = objectives.adaptive_beta(beta, c / beta, d_targ)
        if new_beta == beta:
            break
        beta = new_beta
    assert d_targ / 1.5 <= c / beta <= 1.5 * d_targ


def test_larger_beta_gives_a_smaller_update_on_the_same_batch():
    torch.manual_seed(0)
    run_cfg, cfg = presets.configs(
        env_id="CartPole-v1",
        num_envs=2,
        num_steps=64,
        num_minibatches=2,
        update_epochs=4,
        gamma=0.99,
        gae_lambda=0.95,
        objective="kl_penalty",
    )
    envs = make_vector_env(run_cfg.env_id, run_cfg.num_envs)
    obs, _ = envs.reset(seed=0)
    agent = ActorCritic(*spaces(4, 2))
    batch, _, _ = collect(envs, agent, obs, run_cfg.num_steps)
    envs.close()
    advantages = batch_gae(batch, run_cfg.gamma, run_cfg.gae_lambda)
    kls = []
    for beta in (0.01, 1.0, 100.0):
        torch.manual_seed(1)
        copy_agent = copy.deepcopy(agent)
        optimizer = torch.optim.Adam(copy_agent.parameters(), lr=run_cfg.learning_rate)
        stats = ppo.update(copy_agent, optimizer, batch, advantages, cfg, beta)
        assert stats["beta"] == beta
        kls.append(stats["kl"])
    assert kls[0] > kls[1] > kls[2] > 0
