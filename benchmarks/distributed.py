"""Benchmark distributed PPO: 1 process x N envs against 2 processes x N/2 envs.

LunarLander-v3 by default, with the book's config for the env (``--env``;
``presets.for_env`` gives N: 16 for LunarLander, 32 for Box actions), the same
batch and the same minibatches per update on both sides, torch on one thread
per process, seeds 0-2, one run at a time (each uses the cores it needs).
Prints a table (env steps per second, steps and wall seconds to solve: a
last-100 mean of the env's threshold, or ``--solved-return``) and writes
``benchmarks/results/distributed.{json,md}`` (``distributed_<env>`` for another
env); then profiles where one iteration's time goes on each side (rank 0's view).

    python benchmarks/distributed.py            # about 10 minutes here
    python benchmarks/distributed.py --seeds 0 --total-steps 100000
    python benchmarks/distributed.py --weak     # distributed_weak.{json,md}
    python benchmarks/distributed.py --env Humanoid-v5 --solved-return 400 \
        --seeds 100 101 102 --total-steps 500000

``--weak`` compares weak scaling instead: 2 processes x N envs (a batch twice
as big, minibatches twice as big), once with the book's learning rate and once
with it doubled (the linear scaling rule for a doubled minibatch), against 1
process x N envs, and profiles nothing.

Nothing else should run meanwhile: the ratio is only meaningful side by side.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from lunarlander import RESULTS, machine_settings, median

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
ONE = ([sys.executable], ["-m", "ppo_helpers.cli"])
TWO = (
    [*TORCHRUN, "--nproc-per-node", "2"],
    ["-m", "ppo_helpers.distributed", "--"],  # --: torchrun reads --log as its own
)


def sides(num_envs: int, learning_rate: float, weak: bool) -> dict:
    """name -> (launcher, module, envs per process, more flags) of each side."""
    one = {f"1 process x {num_envs} envs": (*ONE, num_envs, [])}
    if not weak:
        half = num_envs // 2
        return {**one, f"2 processes x {half} envs": (*TWO, half, [])}
    doubled = ["--learning-rate", f"{2 * learning_rate:g}"]
    return {
        **one,
        f"2 processes x {num_envs} envs": (*TWO, num_envs, []),
        f"2 processes x {num_envs} envs, lr x 2": (*TWO, num_envs, doubled),
    }


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def flags(
    env_id: str,
    num_envs: int,
    total_steps: int,
    seed: int = 0,
    solved_return: float | None = None,
) -> list[str]:
    threshold = [] if solved_return is None else ["--solved-return", str(solved_return)]
    return [
        "--env", env_id, "--num-envs", str(num_envs), "--seed", str(seed),
        "--total-steps", str(total_steps), "--quiet", *threshold,
    ]  # fmt: skip


def run(command: list[str], what: str) -> dict:
    """Run ``command``; the JSON line it printed last."""
    proc = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        sys.exit(f"{what} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_worker(argv: list[str]) -> None:
    """Train with the loop's phase timers (in this process, or as one torchrun
    rank); rank 0 prints the command line's summary, then its seconds per
    iteration in each phase and in the update's collectives (two JSON lines)."""
    import torch

    from ppo_helpers import cli, distributed
    from ppo_helpers.ranks import SINGLE, Ranks
    from ppo_helpers.timing import PhaseTimes

    # wall time, not CPU time: a rank waiting in a collective is what we measure
    times = PhaseTimes(time.perf_counter)
    torch.set_num_threads(1)
    start = time.perf_counter()
    if "RANK" in os.environ:  # one torchrun rank: its all-reduces timed too
        args = distributed.build_parser().parse_args(argv)
        ranks = distributed.connect(args.backend, args.timeout)

        def average(tensor):
            with times("update: all-reduce"):
                return ranks.average(tensor)

        timed = Ranks(ranks.rank, ranks.world_size, average, ranks.gather)
    else:
        args, timed = cli.build_parser().parse_args(argv), SINGLE
    summary = cli.train_from_args(args, timed, times)
    if timed.world_size > 1:
        distributed.dist.destroy_process_group()
    total = time.perf_counter() - start
    if timed.rank == 0:  # the CLI's summary line, then the profile's
        print(json.dumps(summary))
        iterations = times.calls["update"]
        per = {k: v / iterations for k, v in times.seconds.items()}
        per["total (incl. start-up)"] = total / iterations
        print(json.dumps({"per_iteration_s": per, "all_reduces": dict(times.calls)}))


def profile(env_id: str, strong_sides: dict, steps: int) -> dict:
    """Seconds per iteration on each side, from ``profile_worker``."""
    return {
        name: run(
            [
                *launcher,
                __file__,
                "--profile-worker",
                "--",
                *flags(env_id, num_envs, steps),
            ],  # fmt: skip
            f"profile of {name}",
        )
        for name, (launcher, _, num_envs, _) in strong_sides.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=250_000)
    parser.add_argument("--profile-steps", type=int, default=20_480)
    parser.add_argument("--weak", action="store_true", help="weak scaling instead")
    parser.add_argument("--env", default="LunarLander-v3", help="Gymnasium id")
    parser.add_argument(
        "--solved-return",
        type=float,
        help="the last-100 mean that solves (default: the env spec's threshold)",
    )
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.profile_worker:
        return profile_worker([a for a in rest if a != "--"])
    from ppo_helpers import presets

    cfg, _ = presets.for_env(args.env)
    strong = sides(cfg.num_envs, cfg.learning_rate, weak=False)
    chosen = sides(cfg.num_envs, cfg.learning_rate, args.weak)
    runs = {name: [] for name in chosen}
    for seed in args.seeds:
        for name, (launcher, module, num_envs, more) in chosen.items():
            run_flags = flags(
                args.env, num_envs, args.total_steps, seed, args.solved_return
            )
            command = [*launcher, *module, *run_flags, *more]
            summary = run(command, f"{name}, seed {seed}")
            runs[name].append(summary)
            print(
                f"{name}, seed {seed}: {summary['steps_per_s']:.0f} steps/s, "
                f"solved at {summary['steps_to_solve']} steps, "
                f"{summary['wall_s_to_solve']} s",
                file=sys.stderr,
                flush=True,
            )
    table = {
        name: {
            "median_steps_per_s": median([r["steps_per_s"] for r in rs]),
            "median_steps_to_solve": median([r["steps_to_solve"] for r in rs]),
            "median_wall_s_to_solve": median([r["wall_s_to_solve"] for r in rs]),
            "solved": sum(r["steps_to_solve"] is not None for r in rs),
            "runs": rs,
        }
        for name, rs in runs.items()
    }
    one = table[next(iter(chosen))]

    def ratio(other, key):
        if one[key] is None or other[key] is None:
            return None
        return other[key] / one[key]

    ratios = {
        name: {
            key: ratio(row, f"median_{key}")
            for key in ("steps_per_s", "wall_s_to_solve", "steps_to_solve")
        }
        for name, row in list(table.items())[1:]
    }
    if not args.weak:  # the strong comparison keeps its original form
        ratios = next(iter(ratios.values()))
    result = {
        "command": "python benchmarks/distributed.py " + " ".join(sys.argv[1:]),
        "machine": machine_settings(),
        "seeds": args.seeds,
        "total_steps": args.total_steps,
        "table": table,
        "ratios_2_over_1": ratios,
        "targets": {"steps_per_s": ">= 1.5", "wall_s_to_solve": "<= 0.75"},
        "profile": {} if args.weak else profile(args.env, strong, args.profile_steps),
    }
    lines = [
        "| run | steps/s (median) | steps to solve (median) | wall s to solve "
        "(median) | solved |",
        "|---|---|---|---|---|",
    ]
    for name, row in table.items():
        lines.append(
            f"| {name} | {row['median_steps_per_s']:.0f} | "
            f"{row['median_steps_to_solve']} | {row['median_wall_s_to_solve']} | "
            f"{row['solved']}/{len(args.seeds)} |"
        )
    lines.append("")
    lines.append("Ratios, 2 processes / 1 process: " + json.dumps(ratios))
    lines.append("")
    if result["profile"]:
        lines.append("Seconds per iteration (rank 0):")
    for name, prof in result["profile"].items():
        parts = ", ".join(f"{k} {v:.3f}" for k, v in prof["per_iteration_s"].items())
        lines.append(f"- {name}: {parts}")
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    stem = "distributed_weak" if args.weak else "distributed"
    if args.env != "LunarLander-v3":
        stem += "_" + args.env.split("-")[0].lower()
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{stem}.md").write_text(
        f"# Distributed PPO, {result['machine']['date']}\n\n"
        f"`{result['command']}`\n\n" + markdown
    )


if __name__ == "__main__":
    main()
