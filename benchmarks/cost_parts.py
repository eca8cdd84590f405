"""Measure the parts of ``ppo_helpers.cost_model`` on this machine.

    python benchmarks/cost_parts.py --env Humanoid-v5     # about a minute

Each part is a straight line fitted to timings at several sizes:

- ``rollout``, ``env`` and ``gradient`` from short runs of the real loop
  (``run.train`` with ``timing.PhaseTimes``) at several numbers of envs, the
  first iteration left out (warm-up): seconds per vector step of the whole
  rollout (with GAE and the statistics), of its env stepping alone, and
  seconds per gradient step against the minibatch's samples;
- ``pipes``: what ``AsyncVectorEnv`` adds per vector step: the env stepping
  of the same short runs with each env in a process of its own
  (``--async-envs``), less the envs' own steps spread over the cores (each
  env process costs a wake-up and two messages per step);
- ``allreduce``: one gloo all-reduce between two processes against its bytes,
  each after a gradient step's worth of computing on both ranks, as in
  training: in a tight loop the same all-reduce is up to 2x cheaper, because
  gloo's threads never sleep and the ranks never arrive apart.

``parts(env_id)`` returns them with the raw timings; ``scaling.py`` uses it.
Run nothing else meanwhile.
"""

import argparse
import json
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ppo_helpers import optim, ppo, presets, run
from ppo_helpers.cost_model import Line
from ppo_helpers.envs import env_spaces
from ppo_helpers.networks import ActorCritic
from ppo_helpers.timing import PhaseTimes

ENV_COUNTS = (4, 8, 16, 32)
# a gradient's size and around it (LunarLander's agent has about 10k weights,
# Humanoid's 50k); messages of a few floats take another, faster path in gloo
FLOATS = (1_000, 10_000, 100_000, 1_000_000)


def busy(seconds: float) -> None:
    """Keep this core busy for ``seconds`` (a stand-in for the learner's work)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def loop_parts(env_id: str, asynchronous: bool = False, iterations: int = 3) -> dict:
    """Seconds per iteration by phase, after the first, for each count of envs."""
    rows = []
    for num_envs in ENV_COUNTS:
        cfg, ppo_cfg = presets.for_env(
            env_id,
            num_envs=num_envs,
            total_steps=1,
            seed=0,
            anneal_steps=0,
            async_envs=asynchronous,
        )
        cfg.total_steps = iterations * cfg.batch_size
        times, after_first = PhaseTimes(), {}

        def snapshot(stats, episodes, times=times, after_first=after_first):
            if not after_first:
                after_first.update(times.seconds)

        run.train(
            cfg, on_update=snapshot, algorithm=ppo.PPO(ppo_cfg), phase_times=times
        )
        per = {
            k: (v - after_first[k]) / (iterations - 1) for k, v in times.seconds.items()
        }
        rows.append(
            {
                "num_envs": num_envs,
                "num_steps": cfg.num_steps,
                "gradient_steps": ppo_cfg.update_epochs * ppo_cfg.num_minibatches,
                "minibatch": optim.minibatch_size(
                    cfg.batch_size, ppo_cfg.num_minibatches
                ),
                "per_iteration_s": per,
            }
        )
    return {"rows": rows, "weights": weights(cfg)}


def weights(cfg: run.RunConfig) -> int:
    """Parameters of the agent that ``cfg`` trains."""
    agent = ActorCritic(
        *env_spaces(cfg.env_id),
        cfg.hidden,
        state_dependent_std=cfg.state_dependent_std,
    )
    return sum(p.numel() for p in agent.parameters())


def pipe_parts(in_one: dict, in_many: dict) -> dict:
    """AsyncVectorEnv's added seconds per vector step, against the envs: the env
    stepping of ``loop_parts(..., asynchronous=True)`` less that of the same
    runs in one process, spread over the cores."""
    cores = os.cpu_count()
    rows = []
    for one, many in zip(in_one["rows"], in_many["rows"], strict=True):
        num_envs, steps = one["num_envs"], one["num_steps"]
        sync = one["per_iteration_s"]["env stepping"] / steps
        both = many["per_iteration_s"]["env stepping"] / steps
        rows.append(
            {
                "num_envs": num_envs,
                "sync_s": sync,
                "async_s": both,
                "pipes_s": both - sync / min(cores, num_envs),
            }
        )
    return {"rows": rows}


def _allreduce_worker(rank: int, port: int, gap_s: float, repeats: int, out) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    for floats in FLOATS:
        tensor, seconds = torch.ones(floats), 0.0
        for _ in range(10):
            dist.all_reduce(tensor)
        dist.barrier()
        for _ in range(repeats):
            busy(gap_s)  # a gradient step's computing
            start = time.perf_counter()
            dist.all_reduce(tensor)
            seconds += time.perf_counter() - start
        if rank == 0:
            out[floats] = seconds / repeats
    dist.destroy_process_group()


def allreduce_parts(gap_s: float, repeats: int = 300) -> dict:
    """Seconds per gloo all-reduce between two processes, against bytes, each
    after ``gap_s`` seconds of computing on both."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_allreduce_worker, args=(port, gap_s, repeats, out), nprocs=2)
        rows = [{"bytes": 4 * f, "seconds": out[f]} for f in FLOATS]
        return {"gap_s": gap_s, "rows": rows}


def points(measured: dict) -> dict[str, tuple[list, list]]:
    """(sizes, seconds) of each line of ``cost_model.Costs``."""
    loop, pipes = measured["loop"]["rows"], measured["pipes"]["rows"]
    allreduce = measured["allreduce"]["rows"]

    def per_step(row, *phases):
        seconds = sum(row["per_iteration_s"].get(p, 0.0) for p in phases)
        return seconds / row["num_steps"]

    envs = [r["num_envs"] for r in loop]
    return {
        "rollout": (
            envs,
            [per_step(r, "rollout", "advantages", "statistics") for r in loop],
        ),
        "env": (envs, [per_step(r, "env stepping") for r in loop]),
        "pipes": ([r["num_envs"] for r in pipes], [r["pipes_s"] for r in pipes]),
        "gradient": (
            [r["minibatch"] for r in loop],
            [r["per_iteration_s"]["update"] / r["gradient_steps"] for r in loop],
        ),
        "allreduce": (
            [r["bytes"] for r in allreduce],
            [r["seconds"] for r in allreduce],
        ),
    }


def parts(env_id: str) -> dict:
    """Every measured part of ``env_id``, raw and fitted, with the load average.

    ``fit_errors``: each line's largest relative miss on its own points.
    """
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    loop = loop_parts(env_id)
    # the gap: a gradient step of the book's minibatch on one of two ranks
    book, _ = presets.for_env(env_id)
    row = next(r for r in loop["rows"] if r["num_envs"] == book.num_envs)
    gap = row["per_iteration_s"]["update"] / row["gradient_steps"]
    measured = {
        "loop": loop,
        "pipes": pipe_parts(loop, loop_parts(env_id, asynchronous=True)),
        "allreduce": allreduce_parts(gap),
    }
    fitted, errors = {}, {}
    for name, (xs, ys) in points(measured).items():
        line = Line.fit(xs, ys)
        fitted[name] = list(line)
        errors[name] = max(abs(line(x) / y - 1) for x, y in zip(xs, ys, strict=True))
    return {
        "env_id": env_id,
        "measured": measured,
        "fitted": fitted | {"weights": loop["weights"], "cores": os.cpu_count()},
        "fit_errors": errors,
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Humanoid-v5")
    args = parser.parse_args()
    result = parts(args.env)
    print(json.dumps({k: result[k] for k in ("fitted", "fit_errors")}, indent=1))


if __name__ == "__main__":
    main()
