"""Distributed PPO on torch.distributed, launched by torchrun (chapter 8).

    torchrun --nproc-per-node 2 -m ppo_helpers.distributed -- \\
        --env LunarLander-v3 --num-envs 8 --log run.csv --checkpoint-dir ckpt/

trains one agent with several processes, synchronously, as Heess et al.'s
distributed PPO does: every rank steps its own envs (--num-envs per rank) and
computes gradients on its own rollout, and the gradients are averaged with an
all-reduce before every Adam step, so every rank takes the same step and the
weights stay identical. Every python -m ppo_helpers.cli flag works the same
here (--total-steps counts the env steps of all ranks); rank 0 alone writes
the log, the checkpoints (holding every rank's state) and the summary line.
The -- ends torchrun's own flags: without it torchrun reads --log as an
abbreviation of its --log-dir.

Several machines: the same command on each, with torchrun's own rendezvous
flags (--nnodes 2 --rdzv-backend c10d --rdzv-endpoint HOST:PORT).
"""

import argparse
import copy
import datetime
import os
import re
import sys
import threading
import time

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from ppo_helpers import cli
from ppo_helpers.checks import check_range
from ppo_helpers.ranks import Ranks

PROG = "torchrun --nproc-per-node N -m ppo_helpers.distributed"
# Seconds a rank that lost a peer waits for torchrun to stop it: torchrun polls its
# ranks every 0.1 s (its --monitor-interval), so it sees the rank that died first
# and names it as the root cause, not this one.
LOST_PEER_WAIT_S = 10.0


class LostPeerError(RuntimeError):
    """A collective failed: another rank stopped, or stopped answering."""


def build_parser() -> argparse.ArgumentParser:
    """``python -m ppo_helpers.cli``'s flags plus the distributed ones."""
    parser = cli.build_parser(PROG, "\n\n".join(__doc__.split("\n\n")[:4]))
    group = parser.add_argument_group("distributed")
    group.add_argument(
        "--backend",
        choices=("auto", "gloo", "nccl"),
        default="auto",
        help="all-reduce backend; auto: gloo, since the networks and their "
        "gradients stay on the CPU; nccl copies each tensor to the rank's GPU "
        "and back (default: auto)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds a rank waits for the others before it gives up "
        "(default: 60; range > 0)",
    )
    return parser


def connect(backend: str = "auto", timeout_s: float = 60.0) -> Ranks:
    """Join the process group that torchrun describes in the environment.

    The networks stay on the CPU, where 64-unit MLPs are fastest, so their
    gradients are CPU tensors and ``auto`` takes gloo, which reduces them where
    they are. ``nccl`` needs a GPU per rank (``LOCAL_RANK`` picks it) and
    copies each tensor there and back for every collective; it is there for
    networks big enough to train on a GPU, which this code does not do yet
    (chapter 8). A collective that waits longer than ``timeout_s`` raises
    instead of hanging.
    """
    check_range("timeout", timeout_s, 0, low_inclusive=False)
    if backend == "auto":
        backend = "gloo"
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group(backend, timeout=timeout)
    rank, world_size = dist.get_rank(), dist.get_world_size()

    def collective(name: str, fn) -> None:
        # gloo and nccl raise a bare RuntimeError ("Connection reset by peer"),
        # which names no rank: say what it means for this run.
        try:
            fn()
        except RuntimeError as err:
            # its first sentence, without the source location gloo puts first
            reason = re.sub(r"^\[[^\]]*\]\s*", "", str(err)).split(". ")[0]
            raise LostPeerError(
                f"rank {rank}: an {name} failed, so another rank stopped or stopped "
                f"answering ({reason})"
            ) from err

    def average(tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.detach().to(device, copy=True)
        collective("all-reduce", lambda: dist.all_reduce(total))
        return (total / world_size).to(tensor.device)

    def gather(obj: object) -> list:
        out = [None] * world_size
        collective("all-gather", lambda: dist.all_gather_object(out, obj))
        return out

    return Ranks(rank, world_size, average, gather)


def in_threads(world_size: int, fn) -> list:
    """``fn(ranks)`` on ``world_size`` threads, one per rank; results in rank order.

    Each thread's ``Ranks`` averages and gathers through shared slots and a
    barrier instead of a process group: a quick way to check that code built on
    ``Ranks`` takes the same steps on every rank (chapter 8, the tests). The
    first exception of any rank is re-raised here, after the others were
    released from the barrier.
    """
    check_range("world_size", world_size, 1)
    barrier = threading.Barrier(world_size, timeout=60)
    slots = [None] * world_size

    def exchange(rank, obj):
        slots[rank] = obj
        barrier.wait()
        # copies, as a process group's gather hands every rank objects of its own
        everyone = copy.deepcopy(slots)
        barrier.wait()
        return everyone

    def ranks_for(rank):
        def average(tensor):
            return sum(exchange(rank, tensor.detach().clone())) / world_size

        return Ranks(rank, world_size, average, lambda obj: exchange(rank, obj))

    results, errors = [None] * world_size, []

    def target(rank):
        try:
            results[rank] = fn(ranks_for(rank))
        except Exception as err:  # noqa: BLE001 - re-raised below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@record  # a rank that raises: its traceback reaches torchrun's failure summary
def main(argv: list[str] | None = None) -> int:
    """Run one rank of the command line; return its exit status."""
    args = build_parser().parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print(
            f"{PROG}: error: start this module with torchrun, e.g. torchrun "
            "--nproc-per-node 2 -m ppo_helpers.distributed -- --env LunarLander-v3",
            file=sys.stderr,
        )
        return 2
    try:
        ranks = connect(args.backend, args.timeout)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    try:
        return cli.report(args, ranks, PROG)
    except LostPeerError as err:
        # Not this rank's fault: leave the naming to torchrun, which watches every
        # rank. Exit on our own only if it has not stopped us in LOST_PEER_WAIT_S.
        print(
            f"{PROG}: error: {err}; torchrun's failure summary names the rank "
            "that stopped first",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(LOST_PEER_WAIT_S)
        return 1
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
