"""Where every random number of a run comes from (chapters 8 and 9).

One run seed fixes everything. ``seeds`` turns it into the seeds of one rank:
its networks' initial weights (the same on every rank), its envs' first resets
and its sampling stream (action sampling and minibatch order). ``episode_seed``
gives the reset seed of each later episode of an env, so that a checkpoint can
rebuild any episode from two integers (``envs.ReplayEpisodes``).

The sampling stream is a ``torch.Generator`` owned by the run, never torch's
global one, so that the ranks of one run can train side by side as threads of
one process (``distributed.in_threads``) without drawing from each other's
stream. ``seeded_build`` makes it.
"""

import threading
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np
import torch

Built = TypeVar("Built")
# torch's global generator is one per process: builds that seed it take turns
_GLOBAL_GENERATOR = threading.Lock()


class RankSeeds(NamedTuple):
    """The seeds of one rank of a run.

    ``weights`` seeds the networks' initial weights (the same on every rank);
    env i of the rank is first reset with ``envs + i``; ``sampling`` seeds the
    rank's sampling stream, or is ``None`` where that stream continues from the
    weights' (rank 0, so that one process is the rank-0 case of many).
    """

    weights: int
    envs: int
    sampling: int | None


def seeds(seed: int, rank: int, num_envs: int) -> RankSeeds:
    """The seeds of rank ``rank`` of a run seeded ``seed``, ``num_envs`` envs per rank.

    The ranks' envs take consecutive seeds, as if all ranks' envs were one
    vector env; a rank above 0 samples from a hash of ``(seed, rank)``
    (``numpy.random.SeedSequence``), not ``seed + rank``, which run ``seed + 1``
    would share.
    """
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    sampling = _hash(seed, rank) if rank > 0 else None
    return RankSeeds(weights=seed, envs=seed + rank * num_envs, sampling=sampling)


def episode_seed(stream_seed: int, episode: int) -> int:
    """Reset seed of episode ``episode`` (0, 1, ...) of the env seeded ``stream_seed``.

    A hash (``numpy.random.SeedSequence``), so the seeds of different envs and
    episodes do not collide the way ``stream_seed + episode`` would.
    """
    return _hash(stream_seed, episode)


def _hash(first: int, second: int) -> int:
    """A 32-bit seed from two integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([first, second]).generate_state(1)[0])


def seeded_build(
    seed: int, build: Callable[[], Built]
) -> tuple[Built, torch.Generator]:
    """``build()`` with torch's generator seeded ``seed``, and a generator that
    continues that stream.

    ``torch.nn.Linear`` draws its default initialisation from torch's global
    generator, which every thread shares; so ``build`` runs under a lock, with
    the global state saved and restored around it (``torch.random.fork_rng``).
    The generator returned draws what the global one would have drawn next.
    """
    with _GLOBAL_GENERATOR, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        built = build()
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())
    return built, generator
