"""The processes that train one agent together, and what they share (chapter 8).

``Ranks`` is how a rank talks to the others: an all-reduce mean and a gather.
``SINGLE`` is one process, where both are the identity; ``distributed``
builds ``Ranks`` on torch.distributed, or on threads for the tests. The rest
averages over ranks what a single process would compute on the union of their
batches (gradients, advantage moments, reward-scale moments), checks that the
ranks' weights agree, and runs file access on rank 0 alone.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch


@dataclass(frozen=True)
class Ranks:
    """The processes that train one agent together, and how they share values.

    ``average(t)`` returns the elementwise mean of tensor ``t`` over all ranks
    (an all-reduce: every rank calls it, with the same shape); ``gather(obj)``
    returns every rank's ``obj``, in rank order. ``ppo_helpers.distributed``
    builds them on torch.distributed; ``SINGLE`` is one process.
    """

    rank: int
    world_size: int
    average: Callable[[torch.Tensor], torch.Tensor]
    gather: Callable[[object], list]


SINGLE = Ranks(0, 1, lambda t: t, lambda obj: [obj])


def average_gradients(params: list[torch.Tensor], ranks: Ranks) -> None:
    """Replace each gradient by its mean over ranks: one all-reduce of them all.

    Every rank's loss is a mean over its own minibatch and the minibatches are
    the same size, so the mean of the gradients is the gradient of the loss on
    their union: the step one process would take on the whole minibatch.
    """
    if ranks.world_size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = ranks.average(torch.cat([g.ravel() for g in grads]))
    for g, mean in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(mean.view_as(g))


def advantage_moments(
    advs: list[torch.Tensor], ranks: Ranks = SINGLE
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Mean and std (Bessel-corrected) of each minibatch's advantages.

    ``advs`` are one epoch's minibatches, (n,) each, the same n on every rank.
    With several ranks, minibatch i's moments are those of the union of every
    rank's minibatch i (one all-reduce for the whole epoch), so that advantage
    normalisation sees what one process on the union would see. Per rank r
    with mean m_r and sum of squared deviations M_r, over W ranks:
    mean = avg(m_r), var = W (avg(M_r) + n (avg(m_r^2) - mean^2)) / (n W - 1).
    """
    if ranks.world_size == 1:
        return [(a.mean(), a.std()) for a in advs]
    n, w = len(advs[0]), ranks.world_size
    local = torch.stack(
        [
            torch.stack([a.mean(), ((a - a.mean()) ** 2).sum(), a.mean() ** 2])
            for a in advs
        ]
    )
    mean, m2, mean_sq = ranks.average(local).unbind(1)
    var = w * (m2 + n * (mean_sq - mean**2)) / (n * w - 1)
    return list(zip(mean, var.clamp_min(0).sqrt(), strict=True))


def merged_moments(
    ranks: Ranks, count: int, mean: float, var: float
) -> tuple[int, float, float]:
    """(count, mean, population variance) of every rank's batch together.

    Every rank's batch has the same ``count``, so the union's mean is the mean
    of the means and its mean square the mean of the mean squares (float64).
    """
    mean_all, square_all = ranks.average(
        torch.tensor([mean, var + mean**2], dtype=torch.float64)
    ).tolist()
    return count * ranks.world_size, mean_all, square_all - mean_all**2


def check_same_weights(agent: torch.nn.Module, ranks: Ranks) -> None:
    """Raise ``RuntimeError`` unless every rank holds exactly these weights.

    The mean over ranks of float64 copies equals one's own copy exactly when
    all are equal (x + x and its half are exact in float64).
    """
    mine = torch.cat([t.detach().double().ravel() for t in agent.state_dict().values()])
    if not torch.equal(ranks.average(mine), mine):
        raise RuntimeError(f"rank {ranks.rank}: the ranks' weights differ")


def on_rank0(ranks: Ranks, fn: Callable[[], Any]) -> Any:
    """``fn()`` run on rank 0 only, its result returned on every rank.

    File access happens there; a ``ValueError``, ``OSError`` or Gymnasium
    error it raises is raised on every rank, so that no rank waits for one
    that has stopped.
    """
    if ranks.world_size == 1:
        return fn()
    result = error = None
    if ranks.rank == 0:
        try:
            result = fn()
        except (ValueError, OSError, gym.error.Error) as err:
            error = err
    result, error = ranks.gather((result, error))[0]
    if error is not None:
        raise error
    return result
