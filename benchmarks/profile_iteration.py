"""Where a PPO iteration's time goes: env stepping, policy forward, advantages, update.

Trains the book's default LunarLander-v3 config (torch on one thread) for a few
iterations with timers around the pieces of ``run.train``'s loop and prints
seconds per iteration (one rollout of ``num_envs * num_steps`` env steps and
one update), measured as this thread's CPU time, so that other processes on
the machine inflate it less than wall time. Writes
``benchmarks/results/profile.md``.

    python benchmarks/profile_iteration.py       # median of 3 reps x 8 iterations
    python benchmarks/profile_iteration.py --reps 5 --iters 10 -- --num-steps 128

Flags after ``--`` set ``PPOConfig`` fields as on the training command line.
"""

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ppo_helpers import ppo, run
from ppo_helpers.train import build_parser, given_config

RESULTS = Path(__file__).resolve().parent / "results"
CLOCK = time.thread_time
PARTS = ("env stepping", "policy forward", "advantages", "update")


def timed(totals: dict[str, float], part: str, fn, clock=CLOCK, calls=None):
    """``fn`` with its ``clock`` seconds (thread CPU time by default) added to
    ``totals[part]``, and each call counted in ``calls[part]`` when given."""

    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[part] += clock() - start
            if calls is not None:
                calls[part] += 1

    return wrapper


def profile_once(cfg: ppo.PPOConfig) -> dict[str, float]:
    """Seconds of CPU per iteration for each part, and in total.

    The first iteration is a warm-up (env creation, torch's lazy imports): the
    clocks start when it ends, so ``cfg`` needs at least two updates.
    """
    totals = dict.fromkeys((*PARTS, "rollout"), 0.0)
    marks: list[float] = []

    def on_update(stats, new_episodes):
        if not marks:  # end of the warm-up iteration
            totals.update(dict.fromkeys(totals, 0.0))
        marks.append(CLOCK())

    collect, batch_gae, scale = run.collect, run.batch_gae, run.RewardScaler.scale

    def collect_timing_env(envs, *args, **kwargs):
        envs.step = timed(totals, "env stepping", envs.step)
        try:
            return timed(totals, "rollout", collect)(envs, *args, **kwargs)
        finally:
            del envs.step  # the instance attribute shadowed the class method

    run.collect = collect_timing_env
    run.batch_gae = timed(totals, "advantages", batch_gae)
    run.RewardScaler.scale = timed(totals, "advantages", scale)
    try:
        algorithm = ppo.PPO(cfg)
        algorithm.update = timed(totals, "update", algorithm.update)
        run.train(cfg, on_update, algorithm)
    finally:
        run.collect, run.batch_gae, run.RewardScaler.scale = collect, batch_gae, scale
    iterations = len(marks) - 1
    totals["policy forward"] = totals.pop("rollout") - totals["env stepping"]
    totals["total"] = marks[-1] - marks[0]
    return {part: seconds / iterations for part, seconds in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median)")
    parser.add_argument(
        "--iters", type=int, default=8, help="timed iterations per rep (>= 1)"
    )
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if min(args.reps, args.iters) < 1:
        parser.error("--reps and --iters must be >= 1")
    torch.set_num_threads(1)
    base = ppo.PPOConfig.for_env(**given_config(build_parser().parse_args(extra)))
    cfg = replace(base, total_steps=base.batch_size * (args.iters + 1))
    runs = [profile_once(cfg) for _ in range(args.reps)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    lines = [
        f"Per iteration ({cfg.num_envs} envs x {cfg.num_steps} steps = "
        f"{cfg.batch_size} env steps, {cfg.update_epochs} epochs x "
        f"{cfg.num_minibatches} minibatches), thread CPU seconds, median of "
        f"{args.reps} x {args.iters} iterations:",
        "",
        "| part | s / iteration | share |",
        "|---|---:|---:|",
    ]
    for part in PARTS:
        share = median[part] / median["total"]
        lines.append(f"| {part} | {median[part]:.3f} | {share:.0%} |")
    # What no timer covers; clock granularity can make it a hair negative.
    other = max(0.0, median["total"] - sum(median[part] for part in PARTS))
    share = other / median["total"]
    lines.append(f"| other (episode log, lr schedule) | {other:.3f} | {share:.0%} |")
    lines.append(f"| **total** | {median['total']:.3f} | 100% |")
    lines += ["", f"{cfg.batch_size / median['total']:,.0f} env steps per CPU second."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile.md").write_text(f"# Profile of one PPO iteration\n\n{text}\n")


if __name__ == "__main__":
    main()
