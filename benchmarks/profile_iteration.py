"""Where a PPO iteration's time goes: env stepping, policy forward, advantages, update.

Trains the book's default LunarLander-v3 config (torch on one thread) for a few
iterations with the loop's own phase timers (``timing.PhaseTimes``) and prints
seconds per iteration (one rollout of ``num_envs * num_steps`` env steps and
one update), measured as this thread's CPU time, so that other processes on
the machine inflate it less than wall time. Writes
``benchmarks/results/profile.md``.

    python benchmarks/profile_iteration.py       # median of 3 reps x 8 iterations
    python benchmarks/profile_iteration.py --reps 5 --iters 10 -- --num-steps 128

Flags after ``--`` set ``run.RunConfig`` and ``ppo.PPOConfig`` fields as on the
training command line.
"""

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from ppo_helpers import ppo, presets, run
from ppo_helpers.cli import build_parser, given_settings
from ppo_helpers.timing import PhaseTimes

RESULTS = Path(__file__).resolve().parent / "results"
CLOCK = time.thread_time
PARTS = ("env stepping", "policy forward", "advantages", "update", "statistics")


def profile_once(cfg: run.RunConfig, ppo_cfg: ppo.PPOConfig) -> dict[str, float]:
    """Seconds of CPU per iteration for each part, and in total.

    ``run.train`` times its own phases (``timing.PhaseTimes`` on this thread's
    CPU clock). The first iteration is a warm-up (env creation, torch's lazy
    imports): the clocks start when it ends, so ``cfg`` needs at least two
    updates.
    """
    times = PhaseTimes(CLOCK)
    marks: list[float] = []

    def on_update(stats, new_episodes):
        if not marks:  # end of the warm-up iteration
            times.seconds.clear()
        marks.append(CLOCK())

    run.train(cfg, on_update, ppo.PPO(ppo_cfg), phase_times=times)
    iterations = len(marks) - 1
    seconds = dict(times.seconds)
    seconds["policy forward"] = seconds.pop("rollout") - seconds["env stepping"]
    seconds["total"] = marks[-1] - marks[0]
    return {part: total / iterations for part, total in seconds.items()}


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
    given = build_parser().parse_args(extra)
    base, ppo_cfg = presets.for_env(
        **given_settings(given, run.RunConfig), **given_settings(given, ppo.PPOConfig)
    )
    cfg = replace(base, total_steps=base.batch_size * (args.iters + 1))
    runs = [profile_once(cfg, ppo_cfg) for _ in range(args.reps)]
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    lines = [
        f"Per iteration ({cfg.num_envs} envs x {cfg.num_steps} steps = "
        f"{cfg.batch_size} env steps, {ppo_cfg.update_epochs} epochs x "
        f"{ppo_cfg.num_minibatches} minibatches), thread CPU seconds, median of "
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
    lines.append(f"| other (lr schedule, progress) | {other:.3f} | {share:.0%} |")
    lines.append(f"| **total** | {median['total']:.3f} | 100% |")
    lines += ["", f"{cfg.batch_size / median['total']:,.0f} env steps per CPU second."]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile.md").write_text(f"# Profile of one PPO iteration\n\n{text}\n")


if __name__ == "__main__":
    main()
