"""TRPO's second-order machinery: Fisher-vector product, CG, line search.

Derived in chapter 2 (notebooks/02_trpo_kl_constraint.ipynb).

TRPO (Schulman et al. 2015) maximises the surrogate L^CPI subject to
mean KL(pi_old || pi_theta) <= delta. Near theta_old the KL is 0.5 s^T F s,
with F the Fisher matrix (the Hessian of the mean KL at theta_old), so the
step is s = sqrt(2 delta / (x^T F x)) x with x = F^-1 g, found by conjugate
gradient from products F v alone, then shrunk until the true KL and surrogate
are acceptable. Everything here works on any policy's list of parameters;
P is the number of entries in that list, theta the parameters flattened to (P,).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ppo_helpers.checks import check_range


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
