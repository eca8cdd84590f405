"""The PPO paper's objectives and diagnostics as pure functions.

Per-sample terms keep the batch shape (B,); the caller takes ``.mean()``. That
way the same function draws the paper's Figure 1 (one timestep) and builds a
loss (a batch). Derived in chapters 1 (ratio, L^CPI), 3 (KL penalty, adaptive
beta) and 4 (L^CLIP); the value and entropy terms in chapter 5.

==========  =====  ===============================================================
Symbol      Shape  Description
==========  =====  ===============================================================
``ratio``   (B,)   r_t(theta) = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
``adv``     (B,)   advantage estimate A_t
``kl``      (B,)   KL(pi_old(.|s_t) || pi_theta(.|s_t)) per state
``beta``    ()     KL penalty coefficient, > 0
``d_targ``  ()     target KL per update for the adaptive-beta rule, > 0
==========  =====  ===============================================================

``OBJECTIVES`` is the table that PPO's update reads: for each surrogate
objective, its loss, the rule that adapts its beta and the KL at which it stops
an update. A new objective is one loss function and one entry there.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from ppo_helpers.checks import check_range


def ratio(logp_new: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """r_t(theta) = exp(log pi_theta - log pi_old), shape of the inputs."""
    return torch.exp(logp_new - logp_old)


def surrogate(ratio: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Per-sample L^CPI_t = r_t(theta) * A_t (eq. ``surrogate``, chapter 1)."""
    return ratio * adv


def categorical_kl(logits_old: torch.Tensor, logits_new: torch.Tensor) -> torch.Tensor:
    """Exact KL(pi_old || pi_new) = sum_a p_old(a) (log p_old(a) - log p_new(a)).

    ``logits_*`` are (B, K) unnormalised log-probabilities; the result is (B,).
    Exact, not sampled: the sum runs over all K actions.
    """
    logp_old = torch.log_softmax(logits_old, dim=-1)
    logp_new = torch.log_softmax(logits_new, dim=-1)
    return (logp_old.exp() * (logp_old - logp_new)).sum(-1)


def gaussian_kl(
    mean_old: torch.Tensor,
    log_std_old: torch.Tensor,
    mean_new: torch.Tensor,
    log_std_new: torch.Tensor,
) -> torch.Tensor:
    """Exact KL(N_old || N_new) between diagonal Gaussians, summed over actions.

    All inputs (B, A); the result (B,). Per action dimension
    log(sigma_new / sigma_old) + (sigma_old^2 + (mu_old - mu_new)^2)
    / (2 sigma_new^2) - 1/2: the KL of a product of independent factors is the
    sum of theirs.
    """
    var_ratio = torch.exp(2 * (log_std_old - log_std_new))
    mean_term = ((mean_old - mean_new) / torch.exp(log_std_new)) ** 2
    per_dim = log_std_new - log_std_old + 0.5 * (var_ratio + mean_term - 1)
    return per_dim.sum(-1)


def kl_penalty_objective(
    ratio: torch.Tensor, adv: torch.Tensor, kl: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per-sample L^KLPEN_t = r_t A_t - beta KL_t (eq. ``kl-penalty``, chapter 3)."""
    check_range("beta", beta, 0)
    return ratio * adv - beta * kl


PPO_ADAPTIVE = {"tolerance": 1.5, "factor": 2.0}
"""The PPO paper's rule (its section 4): outside [d_targ / 1.5, 1.5 d_targ],
halve or double beta."""
DPPO_ADAPTIVE = {"tolerance": 2.0, "factor": 1.5}
"""Heess et al. 2017, Algorithm 1: outside [KL_target / 2, 2 KL_target]
(beta_low = 1/2, beta_high = 2) divide or multiply lambda by alpha = 1.5."""
DPPO_HINGE_START = 2.0
"""The squared hinge switches on at 2 KL_target (Heess et al. 2017; the cutoff
of Schulman's modular_rl ``ppo.py``)."""
DPPO_HINGE_COEF = 1000.0
"""xi, the hinge's weight, as in modular_rl's ``ppo.py``."""
DPPO_STOP = 4.0
"""Heess et al. 2017 stop an update once the KL exceeds 4 KL_target."""


def adaptive_beta(
    beta: float,
    kl: float,
    d_targ: float,
    tolerance: float = PPO_ADAPTIVE["tolerance"],
    factor: float = PPO_ADAPTIVE["factor"],
) -> float:
    """The next beta from the measured mean KL of an update (chapter 3).

    If ``kl < d_targ / tolerance`` divide beta by ``factor``; if
    ``kl > tolerance * d_targ`` multiply it; otherwise keep it. The defaults
    are the PPO paper's rule; ``**DPPO_ADAPTIVE`` gives Heess et al.'s.
    """
    check_range("beta", beta, 0, low_inclusive=False)
    check_range("d_targ", d_targ, 0, low_inclusive=False)
    check_range("tolerance", tolerance, 1, low_inclusive=False)
    check_range("factor", factor, 1, low_inclusive=False)
    if kl < d_targ / tolerance:
        return beta / factor
    if kl > d_targ * tolerance:
        return beta * factor
    return beta


def kl_hinge(
    mean_kl: torch.Tensor,
    kl_target: float,
    coef: float = DPPO_HINGE_COEF,
    start: float = DPPO_HINGE_START,
) -> torch.Tensor:
    """Scalar xi * max(0, KL - start * KL_target)^2, added to DPPO's loss.

    ``mean_kl`` is the scalar mean KL(pi_old || pi_theta) of a minibatch. Zero
    (and flat) while the KL stays within ``start`` times the target, then a
    steep quadratic wall (Heess et al. 2017; eq. ``ch7-dppo`` in chapter 8).
    """
    check_range("kl_target", kl_target, 0, low_inclusive=False)
    return coef * torch.clamp(mean_kl - start * kl_target, min=0) ** 2


def clipped_surrogate(
    ratio: torch.Tensor, adv: torch.Tensor, clip_coef: float
) -> torch.Tensor:
    """Per-sample L^CLIP_t = min(r_t A_t, clip(r_t, 1-eps, 1+eps) A_t) (chapter 4).

    ``clip_coef`` is epsilon, in (0, 1); the paper uses 0.2.
    """
    check_range("clip_coef", clip_coef, 0, 1, low_inclusive=False, high_inclusive=False)
    clipped = torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
    return torch.min(ratio * adv, clipped * adv)


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip_coef: float | None = None,
) -> torch.Tensor:
    """Scalar 0.5 * mean((V(s) - R)^2), optionally clipped around ``old_values``.

    With ``clip_coef`` the new value may move at most ``clip_coef`` from the
    value at collection time before the loss stops rewarding it, and the larger
    of the clipped and unclipped errors is used (chapter 5).
    """
    error = (values - returns) ** 2
    if clip_coef is not None:
        check_range("clip_coef", clip_coef, 0, low_inclusive=False)
        if old_values is None:
            raise ValueError("value clipping needs old_values")
        clipped = old_values + torch.clamp(values - old_values, -clip_coef, clip_coef)
        error = torch.max(error, (clipped - returns) ** 2)
    return 0.5 * error.mean()


def approx_kl(logratio: torch.Tensor) -> torch.Tensor:
    """Scalar estimate of KL(pi_old || pi_theta) from sampled actions only.

    ``mean((r - 1) - log r)`` with ``logratio = log r``: unbiased and never
    negative, unlike ``mean(-log r)`` (Schulman's "k3" estimator).
    """
    return ((logratio.exp() - 1) - logratio).mean()


def clip_fraction(ratio: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """Scalar fraction of samples whose ratio lies outside [1-eps, 1+eps]."""
    return ((ratio - 1).abs() > clip_coef).float().mean()


KL_NOT_COMPUTED = torch.tensor(float("nan"))
"""The mean KL that a loss which needs no KL reports."""


def clip_loss(ratio, adv, kl_fn, beta, settings):
    return -clipped_surrogate(ratio, adv, settings.clip_coef).mean(), KL_NOT_COMPUTED


def unclipped_loss(ratio, adv, kl_fn, beta, settings):
    return -surrogate(ratio, adv).mean(), KL_NOT_COMPUTED


def kl_penalty_loss(ratio, adv, kl_fn, beta, settings):
    kl = kl_fn()
    return -kl_penalty_objective(ratio, adv, kl, beta).mean(), kl.mean()


def dppo_loss(ratio, adv, kl_fn, beta, settings):
    loss, mean_kl = kl_penalty_loss(ratio, adv, kl_fn, beta, settings)
    return loss + kl_hinge(mean_kl, settings.kl_target), mean_kl


class Objective(NamedTuple):
    """How PPO's update treats one surrogate objective.

    ``loss(ratio, adv, kl_fn, beta, settings) -> (loss, mean KL)``: ``ratio``
    and ``adv`` are (B,), ``kl_fn()`` gives KL_t (B,) when the loss needs it,
    ``settings`` has ``clip_coef`` and ``kl_target`` (a ``ppo.PPOConfig``); the loss
    is a scalar to minimise, and the mean KL a scalar (NaN when not computed).
    ``adapt`` is the adaptive-beta rule (``adaptive_beta``'s tolerance and
    factor), None if beta stays fixed; ``stop`` ends an update at the first
    minibatch whose KL exceeds ``stop`` times ``kl_target``, None never.
    """

    loss: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    adapt: dict[str, float] | None = None
    stop: float | None = None


OBJECTIVES = {
    "clip": Objective(clip_loss),  # L^CLIP, chapter 4
    "kl_penalty": Objective(kl_penalty_loss, adapt=PPO_ADAPTIVE),  # chapter 3
    "dppo": Objective(dppo_loss, adapt=DPPO_ADAPTIVE, stop=DPPO_STOP),  # chapter 8
    "unclipped": Objective(unclipped_loss),  # L^CPI, chapter 1
}
"""Every objective of the book by name (``ppo.PPOConfig.objective``)."""
