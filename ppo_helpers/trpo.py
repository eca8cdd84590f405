"""TRPO's second-order machinery: Fisher-vector product, CG, line search.

Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).

TRPO (Schulman et al. 2015) maximises the surrogate L^CPI subject to
mean KL(pi_old || pi_theta) <= delta. Near theta_old the KL is 0.5 s^T F s,
with F the Fisher matrix (the Hessian of the mean KL at theta_old), so the
step is s = sqrt(2 delta / (x^T F x)) x with x = F^-1 g, found by conjugate
gradient from products F v alone, then shrunk until the true KL and surrogate
are acceptable. Everything here works on any policy's list of parameters;
P is the number of entries in that list, theta the parameters flattened to (P,).
``trpo_update`` puts them together as an update step for ``ppo.train``.
"""

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ppo_helpers import objectives
from ppo_helpers.checks import check_range
from ppo_helpers.networks import ActorCritic
from ppo_helpers.ppo import PPOConfig
from ppo_helpers.rollout import RolloutBatch


def flat_grad(
    output: Tensor,
    params: Sequence[Tensor],
    *,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> Tensor:
    """d output / d theta, flattened in parameter order to shape (P,).

    A parameter that ``output`` (a scalar) does not depend on contributes zeros.
    As in ``torch.autograd.grad``, ``retain_graph`` defaults to
    ``create_graph``: a double backprop needs the first graph kept.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    grads = torch.autograd.grad(
        output,
        params,
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    flat = [
        (torch.zeros_like(p) if g is None else g).reshape(-1)
        for g, p in zip(grads, params, strict=True)
    ]
    return torch.cat(flat)


def fisher_vector_product(
    kl_fn: Callable[[], Tensor],
    params: Sequence[Tensor],
    vector: Tensor,
    damping: float,
) -> Tensor:
    """(F + lambda I) v with F v = grad((grad KL) . v), never forming F (P x P).

    ===========  =====  ===================================================
    Symbol       Shape  Description
    ===========  =====  ===================================================
    ``kl_fn``    ()     returns mean KL(pi_old || pi_theta), pi_old detached
    ``vector``   (P,)   v, the direction to multiply
    ``damping``  float  lambda >= 0, usually 0.01 to 0.1; keeps CG stable
    returns      (P,)   F v + lambda v
    ===========  =====  ===================================================

    At theta = theta_old the Hessian of the mean KL is the Fisher matrix F.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    check_range("damping", damping, 0)
    vector = vector.detach()
    grad_kl = flat_grad(kl_fn(), params, create_graph=True)
    return flat_grad(grad_kl @ vector, params) + damping * vector


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor],
    b: Tensor,
    iters: int = 10,
    residual_tol: float = 1e-10,
) -> Tensor:
    """x ~= A^-1 b for a symmetric positive definite A, given only v -> A v.

    ================  ======  ================================================
    Symbol            Shape   Description
    ================  ======  ================================================
    ``matvec``        (P,)    v -> A v, e.g. a ``fisher_vector_product``
    ``b``             (P,)    right-hand side, g in TRPO
    ``iters``         int     at most this many products, usually 10
    ``residual_tol``  float   stop once ||b - A x||^2 <= this
    returns           (P,)    x; exact after P iterations in exact arithmetic
    ================  ======  ================================================

    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    check_range("iters", iters, 1)
    check_range("residual_tol", residual_tol, 0)
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    rr = residual @ residual
    for _ in range(iters):
        if rr <= residual_tol:
            break
        a_direction = matvec(direction)
        alpha = rr / (direction @ a_direction)
        x = x + alpha * direction
        residual = residual - alpha * a_direction
        rr_new = residual @ residual
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return x


@dataclass(frozen=True)
class LineSearchResult:
    """Outcome of a line search; ``step_fraction`` is 0.0 when rejected."""

    accepted: bool
    step_fraction: float
    surrogate: float
    kl: float


def _check_line_search_args(
    max_kl: float, max_backtracks: int, backtrack_coef: float
) -> None:
    check_range("max_kl", max_kl, 0, low_inclusive=False)
    check_range("max_backtracks", max_backtracks, 1)
    check_range(
        "backtrack_coef",
        backtrack_coef,
        0,
        1,
        low_inclusive=False,
        high_inclusive=False,
    )


def backtracking_line_search(
    params: Iterable[Tensor],
    full_step: Tensor,
    evaluate: Callable[[], tuple[Tensor, Tensor]],
    max_kl: float,
    *,
    max_backtracks: int = 10,
    backtrack_coef: float = 0.5,
) -> LineSearchResult:
    """Set theta = theta_old + c^j s for the first j with L^CPI up and KL <= delta.

    ==================  =====  =============================================
    Symbol              Shape  Description
    ==================  =====  =============================================
    ``full_step``       (P,)   s, from ``natural_gradient_step``
    ``evaluate``        ()     returns (L^CPI, mean KL) at the current theta
    ``max_kl``          float  delta > 0, usually 0.01
    ``max_backtracks``  int    j = 0 .. max_backtracks - 1, usually 10
    ``backtrack_coef``  float  c in (0, 1): fractions 1, c, c^2, ...
    ==================  =====  =============================================

    "Up" means strictly above L^CPI(theta_old). If no fraction is accepted (or
    ``evaluate`` raises), theta is restored bit for bit and ``accepted`` is False.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    _check_line_search_args(max_kl, max_backtracks, backtrack_coef)
    params = list(params)
    old_flat = parameters_to_vector(params).detach().clone()
    with torch.no_grad():
        result = LineSearchResult(False, 0.0, float(evaluate()[0]), 0.0)
        try:
            for j in range(max_backtracks):
                fraction = backtrack_coef**j
                vector_to_parameters(old_flat + fraction * full_step, params)
                surrogate, kl = (float(t) for t in evaluate())
                if surrogate > result.surrogate and kl <= max_kl:
                    result = LineSearchResult(True, fraction, surrogate, kl)
                    break
        finally:  # also on an exception: never leave theta at a rejected point
            if not result.accepted:
                vector_to_parameters(old_flat, params)
    return result


def natural_gradient_step(
    params: Sequence[Tensor],
    surrogate_fn: Callable[[], Tensor],
    kl_fn: Callable[[], Tensor],
    max_kl: float,
    *,
    damping: float = 0.1,
    cg_iters: int = 10,
) -> Tensor:
    """Full step s = sqrt(2 delta / (x^T F x)) x, with x = CG(F, g), g = grad L^CPI.

    ================  =====  ===============================================
    Symbol            Shape  Description
    ================  =====  ===============================================
    ``surrogate_fn``  ()     returns L^CPI = mean(ratio * adv) at theta
    ``kl_fn``         ()     returns mean KL(pi_old || pi_theta) at theta
    ``max_kl``        float  delta > 0, usually 0.01
    returns           (P,)   s, not applied; zeros when g = 0
    ================  =====  ===============================================

    F includes the damping, so 0.5 s^T (F + lambda I) s = delta exactly.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    check_range("max_kl", max_kl, 0, low_inclusive=False)
    g = flat_grad(surrogate_fn(), params)
    x = conjugate_gradient(
        lambda v: fisher_vector_product(kl_fn, params, v, damping), g, cg_iters
    )
    x_fx = x @ fisher_vector_product(kl_fn, params, x, damping)
    if x_fx <= 0:
        return torch.zeros_like(x)
    return torch.sqrt(2 * max_kl / x_fx) * x


def trpo_step(
    params: Iterable[Tensor],
    surrogate_fn: Callable[[], Tensor],
    kl_fn: Callable[[], Tensor],
    max_kl: float,
    *,
    damping: float = 0.1,
    cg_iters: int = 10,
    max_backtracks: int = 10,
    backtrack_coef: float = 0.5,
) -> LineSearchResult:
    """One TRPO update of ``params`` in place: natural step, then line search.

    Arguments as in ``natural_gradient_step`` and ``backtracking_line_search``;
    returns the line search's ``LineSearchResult``.

    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    params = list(params)
    full_step = natural_gradient_step(
        params, surrogate_fn, kl_fn, max_kl, damping=damping, cg_iters=cg_iters
    )
    return backtracking_line_search(
        params,
        full_step,
        lambda: (surrogate_fn(), kl_fn()),
        max_kl,
        max_backtracks=max_backtracks,
        backtrack_coef=backtrack_coef,
    )


def trpo_update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    advantages: Tensor,
    cfg: PPOConfig,
    beta: float = 1.0,
    *,
    max_kl: float = 0.01,
    damping: float = 0.1,
    cg_iters: int = 10,
    max_backtracks: int = 10,
    backtrack_coef: float = 0.5,
    value_epochs: int = 5,
) -> dict[str, float]:
    """One TRPO update: ``trpo_step`` on the actor, then minibatch Adam on the critic.

    Fits ``ppo.train``'s ``update_fn``; bind the TRPO hyperparameters first, e.g.
    ``functools.partial(trpo_update, max_kl=0.01)``. ``beta`` is accepted for that
    signature and ignored.

    ==================  ======  ================================================
    Argument            Shape   Description
    ==================  ======  ================================================
    ``batch``           (T, N)  a rollout of pi_old (``rollout.collect``)
    ``advantages``      (T, N)  GAE advantages; value target = adv + values
    ``optimizer``       --      Adam over all of ``agent``'s parameters (the one
                                ``train`` builds); only the critic's get
                                gradients, so it never moves the actor
    ``max_kl``          float   delta > 0, usually 0.01
    ``damping``         float   lambda >= 0 added to F, usually 0.01 to 0.1
    ``cg_iters``        int     conjugate-gradient iterations, usually 10
    ``max_backtracks``  int     line-search trials, usually 10
    ``backtrack_coef``  float   line-search shrink factor in (0, 1), usually 0.5
    ``value_epochs``    int     passes of ``cfg.num_minibatches`` Adam steps
                                over the batch for the critic, >= 1
    ==================  ======  ================================================

    The actor maximises L^CPI = mean(ratio * adv) on the whole batch (advantages
    normalised over the batch when ``cfg.norm_adv``; no entropy bonus) subject
    to mean KL(pi_old || pi_theta) <= ``max_kl``. The critic is trained as in
    ``ppo.update``: ``cfg.vf_coef`` times the value loss, ``cfg.value_clip``,
    its own gradient-norm clip at ``cfg.max_grad_norm``, and the learning rate
    that ``train`` anneals.

    Returns floats: ``kl`` (exact mean KL between the actor before and after,
    over the batch), ``predicted_kl`` (the quadratic model's 0.5 dtheta^T F dtheta
    of the step applied, F undamped at theta_old; 0.0 when rejected),
    ``accepted`` (1.0 or 0.0), ``step_fraction`` (0.0 when rejected),
    ``surrogate_gain`` (L^CPI after minus before), ``policy_loss``
    (-L^CPI after), ``value_loss`` (mean over the last epoch's minibatches),
    ``entropy``, ``approx_kl`` and ``clip_fraction`` (sampled diagnostics, as in
    ``ppo.update``, so ``plotting.LivePlot`` can draw them), ``explained_variance``,
    ``max_kl`` and ``beta``.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    _check_line_search_args(max_kl, max_backtracks, backtrack_coef)
    check_range("damping", damping, 0)
    check_range("cg_iters", cg_iters, 1)
    check_range("value_epochs", value_epochs, 1)
    # clone: the rollout's tensors were made in inference mode, and autograd
    # may not save them for the backward pass
    obs = batch.obs.flatten(0, 1).clone()
    actions = batch.actions.flatten().clone()
    logp_old = batch.logprobs.flatten().clone()
    values_old = batch.values.flatten().clone()
    returns = advantages.flatten() + values_old
    adv = advantages.flatten()
    if cfg.norm_adv and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    with torch.no_grad():
        logits_old = agent.actor(obs)

    def logp_new() -> Tensor:
        logp_all = torch.log_softmax(agent.actor(obs), dim=-1)
        return logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def surrogate_fn() -> Tensor:
        return objectives.surrogate(objectives.ratio(logp_new(), logp_old), adv).mean()

    def kl_fn() -> Tensor:
        return objectives.categorical_kl(logits_old, agent.actor(obs)).mean()

    with torch.no_grad():
        surrogate_before = surrogate_fn().item()
    theta_old = parameters_to_vector(agent.actor.parameters()).detach().clone()
    search = trpo_step(
        agent.actor.parameters(),
        surrogate_fn,
        kl_fn,
        max_kl,
        damping=damping,
        cg_iters=cg_iters,
        max_backtracks=max_backtracks,
        backtrack_coef=backtrack_coef,
    )

    predicted_kl = 0.0
    if search.accepted:  # 0.5 dtheta^T F dtheta at theta_old, F undamped
        actor_old = copy.deepcopy(agent.actor)
        vector_to_parameters(theta_old, actor_old.parameters())
        old_params = list(actor_old.parameters())
        step = parameters_to_vector(agent.actor.parameters()).detach() - theta_old

        def kl_old_fn() -> Tensor:
            return objectives.categorical_kl(logits_old, actor_old(obs)).mean()

        fvp = fisher_vector_product(kl_old_fn, old_params, step, damping=0.0)
        predicted_kl = 0.5 * (step @ fvp).item()

    num_samples = obs.shape[0]
    minibatch_size = math.ceil(num_samples / cfg.num_minibatches)
    value_losses: list[float] = []
    for _ in range(value_epochs):
        value_losses = []
        for idx in torch.randperm(num_samples).split(minibatch_size):
            v_loss = objectives.value_loss(
                agent.value(obs[idx]),
                returns[idx],
                values_old[idx],
                cfg.value_clip or None,
            )
            # set_to_none: the actor's .grad stays None, so Adam skips the actor
            optimizer.zero_grad(set_to_none=True)
            (cfg.vf_coef * v_loss).backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(
                    agent.critic.parameters(), cfg.max_grad_norm
                )
            optimizer.step()
            value_losses.append(v_loss.item())

    with torch.no_grad():
        logits_new = agent.actor(obs)
        logp_all = torch.log_softmax(logits_new, dim=-1)
        logratio = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1) - logp_old
        ratio = logratio.exp()
        surrogate_after = objectives.surrogate(ratio, adv).mean().item()
        entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        explained = 1 - (returns - values_old).var() / returns.var().clamp_min(1e-8)
        return {
            "kl": objectives.categorical_kl(logits_old, logits_new).mean().item(),
            "predicted_kl": predicted_kl,
            "accepted": float(search.accepted),
            "step_fraction": search.step_fraction,
            "surrogate_gain": surrogate_after - surrogate_before,
            "policy_loss": -surrogate_after,
            "value_loss": sum(value_losses) / len(value_losses),
            "entropy": entropy.item(),
            "approx_kl": objectives.approx_kl(logratio).item(),
            "clip_fraction": objectives.clip_fraction(ratio, cfg.clip_coef).item(),
            "explained_variance": explained.item(),
            "max_kl": max_kl,
            "beta": beta,
        }
