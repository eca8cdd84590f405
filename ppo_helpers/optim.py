"""The optimiser's side of an update, shared by PPO and TRPO (chapters 2-5).

``UpdateConfig``, the settings that PPO's update and TRPO's critic share; one
gradient step (gradients averaged over ranks, then norm-clipped), the shuffled
minibatches of an epoch, and the explained variance of a critic.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from ppo_helpers.checks import AT_LEAST_0, AT_LEAST_1, Range, check_fields, knob
from ppo_helpers.ranks import SINGLE, Ranks, average_gradients


@dataclass
class UpdateConfig:
    """The settings of a minibatch update that ``ppo.PPOConfig`` and
    ``trpo.TRPOConfig`` share (TRPO uses them for its critic)."""

    num_minibatches: int = knob(8, "Minibatches per pass over a batch", AT_LEAST_1)
    norm_adv: bool = knob(True, "Normalise advantages (PPO: per minibatch)")
    clip_coef: float = knob(
        0.2,
        "epsilon of L^CLIP (TRPO: of clip_fraction)",
        Range(0, 1, False, False),
    )
    vf_coef: float = knob(0.5, "Weight of the value loss", AT_LEAST_0)
    value_clip: float = knob(0.0, "Clip V's change to this; 0 turns it off", AT_LEAST_0)
    max_grad_norm: float = knob(0.5, "Gradient-norm clip; 0 turns it off", AT_LEAST_0)

    def __post_init__(self):
        check_fields(self)


def minibatch_size(samples: int, num_minibatches: int) -> int:
    """Samples per minibatch when ``samples`` are split ``num_minibatches`` ways
    (a remainder makes one more, smaller minibatch); ``ValueError`` if there are
    more minibatches than samples."""
    if not 1 <= num_minibatches <= samples:
        raise ValueError(
            f"num_minibatches must be in [1, {samples}] (the batch's samples), "
            f"got {num_minibatches}"
        )
    return samples // num_minibatches


def clip_gradients(groups: Iterable[Iterable[torch.Tensor]], max_norm: float) -> None:
    """Scale each group's gradients so that their joint norm is at most ``max_norm``.

    ``groups`` are parameter lists: ``[agent.parameters()]`` clips one joint
    norm, ``[actor, critic]`` one per network, TRPO's ``[critic]`` its critic.
    Does what ``torch.nn.utils.clip_grad_norm_`` does, in a third of its time on
    these small networks (it runs 80 times per update). 0 turns it off.
    """
    if max_norm == 0:
        return
    for params in groups:
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.cat([g.ravel() for g in grads]))
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale)


def gradient_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    groups: list[list[torch.Tensor]],
    max_norm: float,
    ranks: Ranks = SINGLE,
) -> None:
    """One optimizer step on ``loss``: gradients averaged over ranks, then clipped.

    Only the parameters in ``groups`` get gradients (others keep ``grad=None``,
    so Adam leaves them alone): PPO passes the whole agent, TRPO the critic.
    Every rank then holds the same gradients and takes the same step.
    """
    for params in groups:
        for p in params:  # optimizer.zero_grad(set_to_none=True), but faster
            p.grad = None
    loss.backward()
    average_gradients([p for params in groups for p in params], ranks)
    clip_gradients(groups, max_norm)
    optimizer.step()


def minibatches(
    samples: dict[str, torch.Tensor],
    minibatch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Shuffle the samples, then yield consecutive minibatches (dicts like ``samples``).

    The order is drawn from ``generator`` (default: torch's global one). One
    gather per tensor and epoch, then slices: the same minibatches as indexing
    with each slice of ``torch.randperm``, in far fewer ops.
    """
    perm = torch.randperm(len(samples["obs"]), generator=generator)
    shuffled = {k: v[perm].split(minibatch_size) for k, v in samples.items()}
    for i in range(len(shuffled["obs"])):
        yield {k: chunks[i] for k, chunks in shuffled.items()}


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var(R - V) / Var(R): 1 for a perfect critic, 0 for a constant one."""
    return (1 - (returns - values).var() / returns.var().clamp_min(1e-8)).item()
