"""TRPO's second-order machinery: Fisher-vector product, CG, line search.

Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).

TRPO (Schulman et al. 2015) maximises the surrogate L^CPI subject to
mean KL(pi_old || pi_theta) <= delta. Near theta_old the KL is 0.5 s^T F s,
with F the Fisher matrix (the Hessian of the mean KL at theta_old), so the
step is s = sqrt(2 delta / (x^T F x)) x with x = F^-1 g, found by conjugate
gradient from products F v alone, then shrunk until the true KL and surrogate
are acceptable. Everything here works on any policy's list of weight tensors,
``weights`` (P entries in all), theta being the weights flattened to (P,); the
distribution parameters of a batch of states are ``params``, as in ``networks``.
``trpo_update`` puts them together as one update with the settings of a
``TRPOConfig``, and ``TRPO`` plugs it into ``run.train``.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ppo_helpers import objectives
from ppo_helpers.checks import (
    AT_LEAST_0,
    AT_LEAST_1,
    POSITIVE,
    Range,
    check_range,
    knob,
)
from ppo_helpers.networks import ActorCritic
from ppo_helpers.optim import (
    UpdateConfig,
    explained_variance,
    gradient_step,
    minibatch_size,
    minibatches,
)
from ppo_helpers.ranks import SINGLE, Ranks, advantage_moments
from ppo_helpers.rollout import RolloutBatch


def flat_grad(
    output: Tensor,
    weights: Sequence[Tensor],
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
        weights,
        retain_graph=retain_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    flat = [
        (torch.zeros_like(p) if g is None else g).reshape(-1)
        for g, p in zip(grads, weights, strict=True)
    ]
    return torch.cat(flat)


def fisher_vector_product(
    kl_fn: Callable[[], Tensor],
    weights: Sequence[Tensor],
    vector: Tensor,
    damping: float,
) -> Tensor:
    """(F + mu I) v with F v = grad((grad KL) . v), never forming F (P x P).

    ===========  =====  ===================================================
    Symbol       Shape  Description
    ===========  =====  ===================================================
    ``kl_fn``    ()     returns mean KL(pi_old || pi_theta), pi_old detached
    ``vector``   (P,)   v, the direction to multiply
    ``damping``  float  mu >= 0, usually 0.01 to 0.1; keeps CG stable
    returns      (P,)   F v + mu v
    ===========  =====  ===================================================

    At theta = theta_old the Hessian of the mean KL is the Fisher matrix F.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    check_range("damping", damping, 0)
    vector = vector.detach()
    grad_kl = flat_grad(kl_fn(), weights, create_graph=True)
    return flat_grad(grad_kl @ vector, weights) + damping * vector


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


def check_line_search_args(
    max_kl: float, max_backtracks: int, backtrack_coef: float
) -> None:
    """``check_settings`` of the line search's three settings."""
    check_settings(
        max_kl=max_kl, max_backtracks=max_backtracks, backtrack_coef=backtrack_coef
    )


def backtracking_line_search(
    weights: Iterable[Tensor],
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
    check_line_search_args(max_kl, max_backtracks, backtrack_coef)
    weights = list(weights)
    old_flat = parameters_to_vector(weights).detach().clone()
    with torch.no_grad():
        result = LineSearchResult(False, 0.0, float(evaluate()[0]), 0.0)
        try:
            for j in range(max_backtracks):
                fraction = backtrack_coef**j
                vector_to_parameters(old_flat + fraction * full_step, weights)
                surrogate, kl = (float(t) for t in evaluate())
                if surrogate > result.surrogate and kl <= max_kl:
                    result = LineSearchResult(True, fraction, surrogate, kl)
                    break
        finally:  # also on an exception: never leave theta at a rejected point
            if not result.accepted:
                vector_to_parameters(old_flat, weights)
    return result


def natural_gradient_step(
    weights: Sequence[Tensor],
    surrogate_fn: Callable[[], Tensor],
    kl_fn: Callable[[], Tensor],
    max_kl: float,
    *,
    damping: float = 0.1,
    cg_iters: int = 10,
    ranks: Ranks = SINGLE,
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

    F includes the damping mu, so 0.5 s^T (F + mu I) s = delta exactly. With
    ``ranks`` of several processes, each rank's functions are means over its own
    batch (all the same size): g and every F v are averaged over ranks, which
    makes them those of the union, so every rank computes the same step.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    check_range("max_kl", max_kl, 0, low_inclusive=False)
    g = ranks.average(flat_grad(surrogate_fn(), weights))

    def fvp(v: Tensor) -> Tensor:
        return ranks.average(fisher_vector_product(kl_fn, weights, v, damping))

    x = conjugate_gradient(fvp, g, cg_iters)
    x_fx = x @ fvp(x)
    if x_fx <= 0:
        return torch.zeros_like(x)
    return torch.sqrt(2 * max_kl / x_fx) * x


def trpo_step(
    weights: Iterable[Tensor],
    surrogate_fn: Callable[[], Tensor],
    kl_fn: Callable[[], Tensor],
    max_kl: float,
    *,
    damping: float = 0.1,
    cg_iters: int = 10,
    max_backtracks: int = 10,
    backtrack_coef: float = 0.5,
) -> LineSearchResult:
    """One TRPO update of ``weights`` in place: natural step, then line search.

    Arguments as in ``natural_gradient_step`` and ``backtracking_line_search``;
    returns the line search's ``LineSearchResult``.

    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    weights = list(weights)
    full_step = natural_gradient_step(
        weights, surrogate_fn, kl_fn, max_kl, damping=damping, cg_iters=cg_iters
    )
    return backtracking_line_search(
        weights,
        full_step,
        lambda: (surrogate_fn(), kl_fn()),
        max_kl,
        max_backtracks=max_backtracks,
        backtrack_coef=backtrack_coef,
    )


def check_settings(**settings) -> None:
    """Raise ``ValueError`` naming the first of TRPO's ``settings`` out of the
    range that its ``TRPOConfig`` field accepts."""
    accepted = {f.name: f.metadata["accepted"] for f in fields(TRPOConfig)}
    for name, value in settings.items():
        accepted[name].check(name, value)


@dataclass
class TRPOConfig(UpdateConfig):
    """The settings of a TRPO update: its own, and the shared ones of
    ``optim.UpdateConfig`` that its critic and advantages use."""

    max_kl: float = knob(0.01, "delta, the bound on the mean KL per update", POSITIVE)
    damping: float = knob(0.1, "mu, added to the Fisher matrix for CG", AT_LEAST_0)
    cg_iters: int = knob(10, "Conjugate-gradient iterations", AT_LEAST_1)
    max_backtracks: int = knob(10, "Line-search trials", AT_LEAST_1)
    backtrack_coef: float = knob(
        0.5, "c, the line search's shrink factor", Range(0, 1, False, False)
    )
    value_epochs: int = knob(5, "Critic passes over the batch per update", AT_LEAST_1)


def trpo_update(
    agent: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    advantages: Tensor,
    cfg: TRPOConfig,
    ranks: Ranks = SINGLE,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One TRPO update: ``trpo_step`` on the actor, then minibatch Adam on the critic.

    ``TRPO`` plugs this into ``run.train``. With ``ranks`` of several processes
    (chapter 8), each rank passes its own batch, all of one size; the advantage
    moments, the natural gradient's g and F v, the line search's L^CPI and KL,
    the critic's gradients and the diagnostics are averaged over ranks, so every
    rank takes the step that one process would take on the union of the
    batches. The critic's minibatch order is drawn from ``generator`` (default:
    torch's global one).

    ==================  ======  ================================================
    Argument            Shape   Description
    ==================  ======  ================================================
    ``batch``           (T, N)  a rollout of pi_old (``rollout.collect``)
    ``advantages``      (T, N)  GAE advantages; value target = adv + values
    ``optimizer``       --      Adam over all of ``agent``'s parameters (the one
                                ``train`` builds); only the critic's get
                                gradients, so it never moves the actor
    ``cfg``             --      ``TRPOConfig``: delta (``max_kl``), mu
                                (``damping``), CG iterations, the line search's
                                trials and shrink factor, and the critic's
                                ``value_epochs`` passes of ``num_minibatches``
                                Adam steps
    ==================  ======  ================================================

    The actor maximises L^CPI = mean(ratio * adv) on the whole batch (advantages
    normalised over the batch when ``cfg.norm_adv``; no entropy bonus) subject
    to mean KL(pi_old || pi_theta) <= ``cfg.max_kl``, for either actor kind. The
    critic is trained with ``ppo.update``'s code: ``cfg.vf_coef`` times the value
    loss, ``cfg.value_clip``, ``optim.gradient_step`` with its norm clip at
    ``cfg.max_grad_norm`` (on the critic's gradient, the only one there is), on
    ``cfg.num_minibatches`` minibatches and the learning rate ``train`` anneals.

    Returns floats: ``kl`` (exact mean KL between the actor before and after,
    over the batch), ``predicted_kl`` (the quadratic model's 0.5 dtheta^T F dtheta
    of the step applied, F undamped at theta_old; 0.0 when rejected),
    ``accepted`` (1.0 or 0.0), ``step_fraction`` (0.0 when rejected),
    ``surrogate_gain`` (L^CPI after minus before), ``policy_loss``
    (-L^CPI after), ``value_loss`` (mean over the last epoch's minibatches),
    ``entropy``, ``approx_kl`` and ``clip_fraction`` (sampled diagnostics, as in
    ``ppo.update``, so ``plotting.LivePlot`` can draw them), ``explained_variance``,
    and ``max_kl``.
    Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).
    """
    max_kl, damping = cfg.max_kl, cfg.damping
    size = minibatch_size(advantages.numel(), cfg.num_minibatches)  # before any step
    # clone: the rollout's tensors were made in inference mode, and autograd
    # may not save them for the backward pass
    obs = batch.obs.flatten(0, 1).clone()
    actions = batch.actions.flatten(0, 1).clone()
    logp_old = batch.logprobs.flatten().clone()
    values_old = batch.values.flatten().clone()
    returns = advantages.flatten() + values_old
    adv = advantages.flatten()
    if cfg.norm_adv and adv.numel() * ranks.world_size > 1:
        ((adv_mean, adv_std),) = advantage_moments([adv], ranks)
        adv = (adv - adv_mean) / (adv_std + 1e-8)
    actor = agent.actor
    with torch.no_grad():
        params_old = agent.policy_params(obs)

    def surrogate_fn() -> Tensor:
        logp, _ = actor.log_prob_entropy(agent.policy_params(obs), actions)
        return objectives.surrogate(objectives.ratio(logp, logp_old), adv).mean()

    def kl_fn() -> Tensor:
        return actor.kl(params_old, agent.policy_params(obs)).mean()

    def evaluate() -> tuple[Tensor, Tensor]:  # (L^CPI, mean KL) of the union
        surrogate, kl = ranks.average(torch.stack([surrogate_fn(), kl_fn()]))
        return surrogate, kl

    with torch.no_grad():
        surrogate_before = evaluate()[0].item()
    # trpo_step, in its two parts: the full step is needed for predicted_kl
    weights = list(actor.parameters())
    full_step = natural_gradient_step(
        weights,
        surrogate_fn,
        kl_fn,
        max_kl,
        damping=damping,
        cg_iters=cfg.cg_iters,
        ranks=ranks,
    )
    search = backtracking_line_search(
        weights,
        full_step,
        evaluate,
        max_kl,
        max_backtracks=cfg.max_backtracks,
        backtrack_coef=cfg.backtrack_coef,
    )
    # 0.5 s'(F + mu I)s = delta for the full step s, so the undamped quadratic
    # model of the applied step c s is c^2 (delta - 0.5 mu |s|^2)
    predicted_kl = search.step_fraction**2 * (
        max_kl - 0.5 * damping * (full_step @ full_step).item()
    )

    # The critic: ppo.update's value loss and gradient step, on the critic alone
    samples = {"obs": obs, "returns": returns, "values_old": values_old}
    critic = [list(agent.critic.parameters())]
    value_losses: list[float] = []
    for _ in range(cfg.value_epochs):
        value_losses = []
        for mb in minibatches(samples, size, generator):
            v_loss = objectives.value_loss(
                agent.value(mb["obs"]),
                mb["returns"],
                mb["values_old"],
                cfg.value_clip or None,
            )
            gradient_step(
                cfg.vf_coef * v_loss, optimizer, critic, cfg.max_grad_norm, ranks
            )
            value_losses.append(v_loss.item())

    with torch.no_grad():
        params_new = agent.policy_params(obs)
        logp, entropy = actor.log_prob_entropy(params_new, actions)
        logratio = logp - logp_old
        ratio = logratio.exp()
        surrogate_after = objectives.surrogate(ratio, adv).mean().item()
        measured = {  # each rank's own, then their mean (float64: exact for one)
            "kl": actor.kl(params_old, params_new).mean().item(),
            "surrogate_after": surrogate_after,
            "value_loss": sum(value_losses) / len(value_losses),
            "entropy": entropy.mean().item(),
            "approx_kl": objectives.approx_kl(logratio).item(),
            "clip_fraction": objectives.clip_fraction(ratio, cfg.clip_coef).item(),
            "explained_variance": explained_variance(values_old, returns),
        }
        means = ranks.average(
            torch.tensor(list(measured.values()), dtype=torch.float64)
        )
        out = dict(zip(measured, means.tolist(), strict=True))
        return {
            "kl": out["kl"],
            "predicted_kl": predicted_kl,
            "accepted": float(search.accepted),
            "step_fraction": search.step_fraction,
            "surrogate_gain": out["surrogate_after"] - surrogate_before,
            "policy_loss": -out["surrogate_after"],
            "value_loss": out["value_loss"],
            "entropy": out["entropy"],
            "approx_kl": out["approx_kl"],
            "clip_fraction": out["clip_fraction"],
            "explained_variance": out["explained_variance"],
            "max_kl": max_kl,
        }


class TRPO:
    """TRPO as ``run.train``'s algorithm: its config and its update (chapter 2).

    ``config`` defaults to ``TRPOConfig()``. TRPO keeps no state between
    updates: ``state_dict`` is empty, and a checkpoint keeps ``config`` (a
    resume with other settings is refused).
    """

    def __init__(self, config: TRPOConfig | None = None):
        self.config = TRPOConfig() if config is None else config

    def update(
        self,
        agent: ActorCritic,
        optimizer: torch.optim.Optimizer,
        batch: RolloutBatch,
        advantages: Tensor,
        ranks: Ranks = SINGLE,
        generator: torch.Generator | None = None,
    ) -> dict[str, float]:
        """``trpo_update`` with this config; its diagnostics."""
        return trpo_update(
            agent, optimizer, batch, advantages, self.config, ranks, generator
        )

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
