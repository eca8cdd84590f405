"""Tests for ppo_helpers.trpo: CG, Fisher-vector product, line search, TRPO step.

The policy is a linear layer from 3 inputs to 4 logits, in float64, on a fixed
batch of 6 states, so F can be built explicitly (16 x 16) and compared.
``trpo_update`` is tested on a real CartPole rollout of a fresh ActorCritic.
"""

import copy
import math
from dataclasses import replace

import pytest
import torch
from conftest import spaces, train_with
from torch import nn
from torch.distributions import Categorical, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ppo_helpers import ppo, presets
from ppo_helpers.checkpoint import CheckpointError
from ppo_helpers.envs import make_vector_env
from ppo_helpers.networks import ActorCritic
from ppo_helpers.objectives import categorical_kl, value_loss
from ppo_helpers.rollout import batch_gae, collect
from ppo_helpers.run import train
from ppo_helpers.trpo import (
    TRPO,
    LineSearchResult,
    TRPOConfig,
    backtracking_line_search,
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    natural_gradient_step,
    trpo_step,
    trpo_update,
)

OBS_DIM, N_ACTIONS, BATCH = 3, 4, 6
N_PARAMS = N_ACTIONS * OBS_DIM + N_ACTIONS


class TinyProblem:
    """A categorical policy at theta_old with a fixed batch, adv and pi_old."""

    def __init__(self, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.policy = nn.Linear(OBS_DIM, N_ACTIONS).double()
        self.params = list(self.policy.parameters())
        theta = 0.5 * torch.randn(N_PARAMS, generator=gen, dtype=torch.float64)
        vector_to_parameters(theta, self.params)
        self.theta_old = theta.clone()
        self.obs = torch.randn(BATCH, OBS_DIM, generator=gen, dtype=torch.float64)
        self.actions = torch.randint(N_ACTIONS, (BATCH,), generator=gen)
        self.adv = torch.randn(BATCH, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            self.old_logits = self.policy(self.obs)
        self.pi_old = Categorical(logits=self.old_logits)
        self.old_log_prob = self.pi_old.log_prob(self.actions)

    def logits_at(self, flat: torch.Tensor) -> torch.Tensor:
        weight = flat[: N_ACTIONS * OBS_DIM].view(N_ACTIONS, OBS_DIM)
        return self.obs @ weight.T + flat[N_ACTIONS * OBS_DIM :]

    def kl_at(self, flat: torch.Tensor) -> torch.Tensor:
        return kl_divergence(self.pi_old, Categorical(logits=self.logits_at(flat)))

    def kl_fn(self) -> torch.Tensor:
        """Mean KL(pi_old || pi_theta) at the policy's current parameters."""
        return kl_divergence(
            self.pi_old, Categorical(logits=self.policy(self.obs))
        ).mean()

    def surrogate_fn(self) -> torch.Tensor:
        """L^CPI = mean(ratio * adv) at the policy's current parameters."""
        log_prob = Categorical(logits=self.policy(self.obs)).log_prob(self.actions)
        return (torch.exp(log_prob - self.old_log_prob) * self.adv).mean()

    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.surrogate_fn(), self.kl_fn()

    def theta(self) -> torch.Tensor:
        return parameters_to_vector(self.params).detach().clone()


def random_spd(n: int, seed: int = 0, eps: float = 0.1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return m @ m.T / n + eps * torch.eye(n, dtype=torch.float64)


def fisher_as_hessian(problem: TinyProblem) -> torch.Tensor:
    """F = Hessian of the mean KL at theta_old, shape (P, P)."""
    mean_kl = lambda flat: problem.kl_at(flat).mean()  # noqa: E731
    return torch.autograd.functional.hessian(mean_kl, problem.theta_old)


def fisher_as_outer_products(problem: TinyProblem) -> torch.Tensor:
    """F = mean_s sum_a pi(a|s) grad log pi(a|s) grad log pi(a|s)^T, (P, P)."""
    log_pi = lambda flat: torch.log_softmax(problem.logits_at(flat), -1)  # noqa: E731
    jac = torch.autograd.functional.jacobian(log_pi, problem.theta_old)  # (B, K, P)
    probs = problem.pi_old.probs  # (B, K)
    return torch.einsum("bk,bkp,bkq->pq", probs, jac, jac) / BATCH


# Conjugate gradient


def test_cg_default_iterations_solve_a_well_conditioned_spd_system():
    a = random_spd(20, eps=1.0)
    b = torch.randn(20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b)  # 10 iterations
    kappa = torch.linalg.cond(a).item()  # about 3.8
    # CG's error bound in the A-norm: 2 ((sqrt(k) - 1) / (sqrt(k) + 1))^iters, times
    # sqrt(k) to pass to the 2-norm; far above rounding (about 1e-16).
    bound = (
        2 * math.sqrt(kappa) * ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 10
    )
    error = (x - torch.linalg.solve(a, b)).norm() / torch.linalg.solve(a, b).norm()
    assert error <= bound


def _relative_rounding_tolerance(a: torch.Tensor) -> float:
    """n * kappa(A) * float64 eps: a forward-error bound for a solve of A x = b.

    Finite-precision CG keeps this bound only while its directions stay
    A-orthogonal, which holds for a well-conditioned A or few iterations (on a
    Wishart matrix with kappa 30 the error after n steps was 5,000 to 20,000
    kappa * eps, depending on the CPU's BLAS path: not a rounding-level property).
    """
    return a.shape[0] * torch.linalg.cond(a).item() * torch.finfo(a.dtype).eps


def test_cg_with_n_iterations_on_n_dim_system_is_exact():
    a = random_spd(20, seed=2, eps=1.0)  # condition number about 3.8
    b = torch.randn(20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=20, residual_tol=0.0)
    direct = torch.linalg.solve(a, b)
    assert (x - direct).norm() / direct.norm() <= _relative_rounding_tolerance(a)


def test_cg_is_exact_after_as_many_iterations_as_distinct_eigenvalues():
    # A Krylov space of A with k distinct eigenvalues has dimension <= k, so CG
    # solves A x = b in k steps whatever n is.
    q, _ = torch.linalg.qr(
        torch.randn(
            20, 20, generator=torch.Generator().manual_seed(4), dtype=torch.float64
        )
    )
    eigenvalues = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64).repeat(5)
    a = q @ torch.diag(eigenvalues) @ q.T
    b = torch.randn(20, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=4, residual_tol=0.0)
    direct = torch.linalg.solve(a, b)
    assert (x - direct).norm() / direct.norm() <= _relative_rounding_tolerance(a)
    three = conjugate_gradient(lambda v: a @ v, b, iters=3, residual_tol=0.0)
    assert (three - direct).norm() / direct.norm() > 1e-3  # one step short: not yet


def test_cg_one_iteration_is_the_steepest_descent_point():
    a = random_spd(8, seed=4)
    b = torch.randn(8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iters=1)
    torch.testing.assert_close(x, (b @ b) / (b @ a @ b) * b)


def test_cg_of_zero_rhs_is_zero_without_any_product():
    calls = []
    x = conjugate_gradient(lambda v: calls.append(v) or v, torch.zeros(5), iters=5)
    assert torch.equal(x, torch.zeros(5))
    assert calls == []


# Fisher-vector product


def test_two_explicit_fisher_matrices_agree():
    problem = TinyProblem()
    torch.testing.assert_close(
        fisher_as_hessian(problem), fisher_as_outer_products(problem)
    )


@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_fisher_vector_product_equals_explicit_fisher_times_v(damping):
    problem = TinyProblem()
    fisher = fisher_as_hessian(problem)
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        v = torch.randn(N_PARAMS, generator=gen, dtype=torch.float64)
        fvp = fisher_vector_product(problem.kl_fn, problem.params, v, damping)
        torch.testing.assert_close(fvp, fisher @ v + damping * v)
    assert torch.equal(problem.theta(), problem.theta_old)


def test_flat_grad_concatenates_parameter_gradients_in_order():
    problem = TinyProblem()
    surrogate = problem.surrogate_fn()
    expected = torch.autograd.functional.jacobian(
        lambda flat: (
            torch.exp(
                Categorical(logits=problem.logits_at(flat)).log_prob(problem.actions)
                - problem.old_log_prob
            )
            * problem.adv
        ).mean(),
        problem.theta_old,
    )
    torch.testing.assert_close(flat_grad(surrogate, problem.params), expected)


# Natural-gradient step


def _natural_step(problem: TinyProblem, max_kl: float, damping: float):
    return natural_gradient_step(
        problem.params,
        problem.surrogate_fn,
        problem.kl_fn,
        max_kl,
        damping=damping,
        cg_iters=N_PARAMS,
    )


@pytest.mark.parametrize("max_kl", [1e-4, 1e-3])
def test_natural_step_has_predicted_kl(max_kl):
    problem = TinyProblem()
    damping = 1e-8
    step = _natural_step(problem, max_kl, damping=damping)
    assert torch.equal(problem.theta(), problem.theta_old)  # step not applied yet
    fisher = fisher_as_hessian(problem)
    # Softmax logits have null directions (F v = 0); g and s avoid them, so the
    # damping matters relative to the smallest nonzero eigenvalue of F.
    eigenvalues = torch.linalg.eigvalsh(fisher)
    lam_min = eigenvalues[eigenvalues > 1e-12 * eigenvalues.max()].min().item()
    # 0.5 s'(F + mu I)s = delta exactly, so 0.5 s'Fs falls short by 0.5 mu |s|^2,
    # at most mu / lam_min of delta.
    assert 0.5 * step @ fisher @ step == pytest.approx(max_kl, rel=damping / lam_min)
    # direction: s is a multiple of F^-1 g, i.e. F s is parallel to g, up to the
    # damping's tilt: 1 - cos is of order (mu / lam_min)^2
    g = flat_grad(problem.surrogate_fn(), problem.params)
    f_step = fisher @ step
    cosine = f_step @ g / (f_step.norm() * g.norm())
    assert 1 - cosine.item() <= (damping / lam_min) ** 2

    # the true KL at theta_old + s against its Taylor expansion along the step,
    # f(t) = KL(theta_old + t s): f(0) = f'(0) = 0 and f2(0) = s'Fs, so
    # f(1) = f2(0) / 2 + f3(0) / 6 + R with |R| <= max |f4| / 24 on [0, 1]
    # (Lagrange; fk is the k-th derivative). max |f4| is read on a grid and
    # doubled: f4 changes by far less than half its size between neighbours
    # (checked), so no value between them can exceed twice the grid's maximum.
    def along(t):
        return problem.kl_at(problem.theta_old + t * step).mean()

    f2 = torch.func.grad(torch.func.grad(along))
    f3 = torch.func.grad(f2)
    f4 = torch.func.grad(f3)
    zero = torch.zeros((), dtype=torch.float64)
    assert f2(zero).item() == pytest.approx((step @ fisher @ step).item(), rel=1e-9)
    grid = torch.linspace(0, 1, 21, dtype=torch.float64)
    fourth = torch.stack([f4(t) for t in grid])
    assert (fourth.diff().abs() < 0.5 * fourth.abs().max()).all()
    remainder = along(torch.ones_like(zero)) - f2(zero) / 2 - f3(zero) / 6
    assert abs(remainder.item()) <= 2 * fourth.abs().max().item() / 24


def test_damped_natural_step_meets_delta_in_the_damped_metric():
    problem = TinyProblem()
    max_kl, damping = 0.01, 0.1
    step = _natural_step(problem, max_kl, damping)
    damped = fisher_as_hessian(problem) + damping * torch.eye(N_PARAMS).double()
    # exact by construction; the rel. tolerance allows rounding: P * kappa * eps
    # with kappa(F + 0.1 I) about 6 is about 2e-14
    assert 0.5 * step @ damped @ step == pytest.approx(max_kl, rel=1e-12)
    # damping shortens the step: the undamped quadratic KL is below delta
    assert 0.5 * step @ fisher_as_hessian(problem) @ step < 0.9 * max_kl


def test_natural_step_is_zero_when_gradient_is_zero():
    problem = TinyProblem()
    problem.adv.zero_()
    step = natural_gradient_step(
        problem.params, problem.surrogate_fn, problem.kl_fn, 0.01
    )
    assert torch.equal(step, torch.zeros(N_PARAMS, dtype=torch.float64))


# Line search


def test_line_search_shrinks_a_too_large_step_into_the_trust_region():
    problem = TinyProblem()
    max_kl = 1e-3
    step = natural_gradient_step(
        problem.params, problem.surrogate_fn, problem.kl_fn, max_kl
    )
    too_large = 100.0 * step
    assert problem.kl_at(problem.theta_old + too_large).mean() > max_kl
    result = backtracking_line_search(
        problem.params, too_large, problem.evaluate, max_kl
    )
    assert result.accepted
    assert result.step_fraction < 1.0
    assert result.kl <= max_kl
    with torch.no_grad():
        surrogate, kl = problem.evaluate()
    assert kl.item() == result.kl <= max_kl
    assert surrogate.item() == result.surrogate
    torch.testing.assert_close(
        problem.theta(), problem.theta_old + result.step_fraction * too_large
    )


@pytest.mark.parametrize(
    ("scale", "max_backtracks"),
    [(-1.0, 10), (1000.0, 1)],  # surrogate never improves; KL always too large
)
def test_rejected_line_search_restores_parameters_bit_for_bit(scale, max_backtracks):
    problem = TinyProblem()
    step = natural_gradient_step(
        problem.params, problem.surrogate_fn, problem.kl_fn, 1e-3
    )
    with torch.no_grad():
        old_surrogate = problem.surrogate_fn().item()
    result = backtracking_line_search(
        problem.params,
        scale * step,
        problem.evaluate,
        1e-3,
        max_backtracks=max_backtracks,
    )
    assert result == LineSearchResult(False, 0.0, old_surrogate, 0.0)
    assert torch.equal(problem.theta(), problem.theta_old)


def test_line_search_restores_parameters_when_evaluate_raises():
    problem = TinyProblem()
    calls = []

    def evaluate():
        calls.append(None)
        if len(calls) == 2:  # first trial point
            raise RuntimeError("simulated failure")
        return problem.evaluate()

    with pytest.raises(RuntimeError, match="simulated failure"):
        backtracking_line_search(
            problem.params, torch.ones(N_PARAMS, dtype=torch.float64), evaluate, 0.01
        )
    assert torch.equal(problem.theta(), problem.theta_old)


def test_trpo_step_improves_surrogate_within_kl_bound():
    problem = TinyProblem()
    with torch.no_grad():
        old_surrogate = problem.surrogate_fn().item()
    result = trpo_step(problem.params, problem.surrogate_fn, problem.kl_fn, 0.01)
    assert result.accepted
    assert result.surrogate > old_surrogate
    assert 0.0 < result.kl <= 0.01
    with torch.no_grad():
        assert problem.kl_fn().item() == result.kl


def test_trpo_step_with_zero_gradient_is_rejected_and_changes_nothing():
    problem = TinyProblem()
    problem.adv.zero_()  # L^CPI = 0 everywhere: no step can improve it
    result = trpo_step(problem.params, problem.surrogate_fn, problem.kl_fn, 0.01)
    assert result == LineSearchResult(False, 0.0, 0.0, 0.0)
    assert torch.equal(problem.theta(), problem.theta_old)


# Validation


def _spd_matvec(v: torch.Tensor) -> torch.Tensor:
    return 2.0 * v


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda p: conjugate_gradient(_spd_matvec, torch.ones(3), iters=0),
            "iters must be >= 1, got 0",
        ),
        (
            lambda p: conjugate_gradient(_spd_matvec, torch.ones(3), residual_tol=-1),
            "residual_tol must be >= 0, got -1",
        ),
        (
            lambda p: fisher_vector_product(p.kl_fn, p.params, p.theta(), -1.0),
            "damping must be >= 0, got -1.0",
        ),
        (
            lambda p: backtracking_line_search(p.params, p.theta(), p.evaluate, -0.1),
            "max_kl must be > 0, got -0.1",
        ),
        (
            lambda p: backtracking_line_search(
                p.params, p.theta(), p.evaluate, 0.01, max_backtracks=0
            ),
            "max_backtracks must be >= 1, got 0",
        ),
        (
            lambda p: backtracking_line_search(
                p.params, p.theta(), p.evaluate, 0.01, backtrack_coef=1.0
            ),
            r"backtrack_coef must be in \(0, 1\), got 1.0",
        ),
        (
            lambda p: trpo_step(p.params, p.surrogate_fn, p.kl_fn, 0.0),
            "max_kl must be > 0, got 0.0",
        ),
        (
            lambda p: trpo_step(p.params, p.surrogate_fn, p.kl_fn, 0.01, cg_iters=0),
            "iters must be >= 1, got 0",
        ),
    ],
)
def test_bad_hyperparameters_raise_value_error(call, message):
    problem = TinyProblem()
    with pytest.raises(ValueError, match=message):
        call(problem)
    assert torch.equal(problem.theta(), problem.theta_old)


# trpo_update: the update step that run.train plugs in (chapter 2)

NUM_ENVS, NUM_STEPS = 2, 64  # the CartPole rollout: 128 samples
TRPO_CFG = TRPOConfig(num_minibatches=4)


@pytest.fixture(scope="module")
def cartpole_batch():
    """A fresh agent, its optimizer, a real 2 x 64 CartPole rollout and GAE."""
    torch.manual_seed(0)
    envs = make_vector_env("CartPole-v1", NUM_ENVS)
    obs, _ = envs.reset(seed=0)
    agent = ActorCritic(*spaces(4, 2))
    batch, _, _ = collect(envs, agent, obs, NUM_STEPS)
    envs.close()
    advantages = batch_gae(batch, 0.99, 0.95)
    return agent, batch, advantages


def fresh_copy(agent: ActorCritic):
    agent = copy.deepcopy(agent)
    return agent, torch.optim.Adam(agent.parameters(), lr=1e-3, eps=1e-5)


def flat(module: nn.Module) -> torch.Tensor:
    return parameters_to_vector(module.parameters()).detach().clone()


@pytest.mark.parametrize("max_kl", [0.001, 0.01, 0.05])
def test_trpo_update_keeps_the_measured_kl_within_max_kl(cartpole_batch, max_kl):
    agent0, batch, advantages = cartpole_batch
    agent, optimizer = fresh_copy(agent0)
    obs = batch.obs.flatten(0, 1)
    cfg = replace(TRPO_CFG, max_kl=max_kl)
    stats = trpo_update(agent, optimizer, batch, advantages, cfg)
    assert stats["accepted"] == 1.0
    assert 0.0 < stats["step_fraction"] <= 1.0
    assert stats["surrogate_gain"] > 0
    with torch.no_grad():  # measured independently of trpo_update's own stats
        measured = categorical_kl(agent0.actor(obs), agent.actor(obs)).mean().item()
    # the same float32 KL on the same inputs; rel. 1e-5 allows another reduction
    # order over 2,048 samples (log2(2048) * float32 eps = 1.3e-6)
    assert measured == pytest.approx(stats["kl"], rel=1e-5)
    assert 0.0 < measured <= max_kl
    assert stats["max_kl"] == max_kl


def test_trpo_update_predicted_kl_is_the_quadratic_form_of_the_applied_step(
    cartpole_batch,
):
    # 0.5 dtheta^T F dtheta by another route: F = E_s[J^T (diag(p) - p p^T) J] for
    # a softmax, so with u = J dtheta (one forward-mode jvp of the logits) the form
    # is E_s[sum_a p u^2 - (sum_a p u)^2]; no double backprop, no damping.
    agent0, batch, advantages = cartpole_batch
    agent, optimizer = fresh_copy(agent0)
    assert TRPO_CFG.max_kl == 0.01
    stats = trpo_update(agent, optimizer, batch, advantages, TRPO_CFG)
    assert stats["accepted"] == 1.0
    obs = batch.obs.flatten(0, 1).clone()
    names = [name for name, _ in agent0.actor.named_parameters()]
    old = tuple(p.detach() for p in agent0.actor.parameters())
    new = tuple(p.detach() for p in agent.actor.parameters())
    step = tuple(n - o for n, o in zip(new, old, strict=True))

    def logits_at(*params):
        weights = dict(zip(names, params, strict=True))
        return torch.func.functional_call(agent0.actor, weights, (obs,))

    logits, u = torch.func.jvp(logits_at, old, step)
    p = logits.softmax(-1)
    form = (p * u**2).sum(-1) - (p * u).sum(-1) ** 2
    expected = 0.5 * form.mean().item()
    # both routes are float32 sums; the longest runs over the actor's n weights,
    # and a sum of n terms is off by at most n unit roundoffs (eps / 2) relative
    n = sum(p.numel() for p in agent0.actor.parameters())
    rel = n * torch.finfo(torch.float32).eps / 2
    assert stats["predicted_kl"] == pytest.approx(expected, rel=rel)
    # and damping keeps the model's KL below delta (0.5 s^T (F + mu I) s = delta)
    assert 0.0 < stats["predicted_kl"] < 0.01


def test_trpo_update_rejected_step_leaves_the_actor_unchanged(cartpole_batch):
    agent0, batch, advantages = cartpole_batch
    agent, optimizer = fresh_copy(agent0)
    # The same A everywhere: normalised (cfg.norm_adv) it is 0, L^CPI is flat, no
    # step improves it and the line search rejects. The value targets A + V_old
    # still differ from V_old, so the critic has something to learn.
    assert TRPO_CFG.norm_adv
    constant = torch.full_like(advantages, 5.0)
    stats = trpo_update(agent, optimizer, batch, constant, TRPO_CFG)
    assert stats["accepted"] == 0.0
    assert stats["step_fraction"] == 0.0
    assert stats["kl"] == 0.0
    assert stats["predicted_kl"] == 0.0
    assert torch.equal(flat(agent.actor), flat(agent0.actor))  # bit for bit
    # the critic still trained with the same optimizer, which holds the actor too
    assert not torch.equal(flat(agent.critic), flat(agent0.critic))


def test_trpo_update_trains_only_the_critic_with_the_optimizer(cartpole_batch):
    agent0, batch, advantages = cartpole_batch
    agent, optimizer = fresh_copy(agent0)
    obs = batch.obs.flatten(0, 1)
    returns = (advantages + batch.values).flatten()
    with torch.no_grad():
        loss_before = value_loss(agent.value(obs), returns).item()
    cfg = replace(TRPO_CFG, max_kl=0.01, value_epochs=5)
    stats = trpo_update(agent, optimizer, batch, advantages, cfg)
    with torch.no_grad():
        loss_after = value_loss(agent.value(obs), returns).item()
    assert loss_after < loss_before
    assert stats["value_loss"] < loss_before
    assert all(p.grad is None for p in agent.actor.parameters())
    assert all(p not in optimizer.state for p in agent.actor.parameters())
    assert all(p in optimizer.state for p in agent.critic.parameters())


def test_trpo_update_plugs_into_train():
    cfg, trpo_cfg = presets.configs(
        "trpo",
        env_id="CartPole-v1",
        num_envs=2,
        num_steps=32,
        total_steps=128,
        gamma=0.99,
        max_kl=0.02,
        value_epochs=2,
    )
    assert trpo_cfg == TRPOConfig(max_kl=0.02, value_epochs=2)
    result = train(cfg, algorithm=TRPO(trpo_cfg))
    assert result.algorithm.config is trpo_cfg and result.algorithm.state_dict() == {}
    assert len(result.updates) == cfg.num_updates == 2
    for stats in result.updates:
        assert stats["kl"] <= 0.02
        assert stats["max_kl"] == 0.02
        assert {"accepted", "step_fraction", "value_loss", "entropy"} <= set(stats)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_kl": 0.0}, "max_kl must be > 0, got 0.0"),
        ({"damping": -0.1}, "damping must be >= 0, got -0.1"),
        ({"cg_iters": 0}, "cg_iters must be >= 1, got 0"),
        ({"max_backtracks": 0}, "max_backtracks must be >= 1, got 0"),
        ({"backtrack_coef": 1.5}, r"backtrack_coef must be in \(0, 1\), got 1.5"),
        ({"value_epochs": 0}, "value_epochs must be >= 1, got 0"),
    ],
)
def test_trpo_config_rejects_bad_hyperparameters(kwargs, message):
    # a bad setting never reaches trpo_update: its TRPOConfig cannot be made
    with pytest.raises(ValueError, match=message):
        TRPOConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        replace(TRPO_CFG, **kwargs)
    with pytest.raises(ValueError, match=message):
        presets.configs("trpo", **kwargs)


@pytest.mark.parametrize(
    "update",
    [
        pytest.param(
            lambda *args: ppo.update(*args, ppo.PPOConfig(num_minibatches=129)),
            id="ppo",
        ),
        pytest.param(
            lambda *args: trpo_update(*args, replace(TRPO_CFG, num_minibatches=129)),
            id="trpo",
        ),
    ],
)
def test_more_minibatches_than_samples_are_refused_before_any_step(
    cartpole_batch, update
):
    agent0, batch, advantages = cartpole_batch
    agent, optimizer = fresh_copy(agent0)
    match = r"num_minibatches must be in \[1, 128\] \(the batch's samples\), got 129"
    with pytest.raises(ValueError, match=match):
        update(agent, optimizer, batch, advantages)
    assert torch.equal(flat(agent), flat(agent0))


def test_trpo_refuses_a_bad_setting_when_made_and_a_resume_with_another(tmp_path):
    with pytest.raises(ValueError, match="max_kl must be > 0, got -0.01"):
        TRPO(TRPOConfig(max_kl=-0.01))
    settings = dict(env_id="CartPole-v1", num_envs=2, num_steps=32, value_epochs=1)
    train_with({**settings, "total_steps": 64}, "trpo", checkpoint_dir=tmp_path)
    longer = {**settings, "total_steps": 128}
    for changed, message in (
        ({"max_kl": 0.02}, "was written with max_kl=0.01, this run has max_kl=0.02"),
        ({"value_epochs": 2}, "value_epochs=1, this run has value_epochs=2"),
        ({"num_minibatches": 4}, "num_minibatches=8, this run has num_minibatches=4"),
    ):
        with pytest.raises(CheckpointError, match=message):
            train_with(
                {**longer, **changed}, "trpo", checkpoint_dir=tmp_path, resume=True
            )
    run_cfg, _ = presets.configs(
        **{k: v for k, v in longer.items() if k != "value_epochs"}
    )
    with pytest.raises(
        CheckpointError, match="written by TRPO, this run trains with PPO"
    ):
        train(run_cfg, checkpoint_dir=tmp_path, resume=True)
    resumed = train_with(longer, "trpo", checkpoint_dir=tmp_path, resume=True)
    assert len(resumed.updates) == run_cfg.num_updates == 2
