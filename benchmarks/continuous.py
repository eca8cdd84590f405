"""Benchmark the book's continuous-action defaults (presets.BOX_DEFAULTS).

Trains ``python -m ppo_helpers.cli --env ENV`` with no other training flag
on Pendulum-v1 (300k env steps, solved at a last-100 mean of -200, which its
spec does not set) and LunarLanderContinuous-v3 (500k steps, solved at its
spec's 200), seeds 0-2, two runs at a time (one per core), each followed by a
deterministic evaluation over 100 episodes. Prints one table per task, checks
the targets, and writes ``continuous.{json,md}`` and every run's learning
curve (``ENV/seed{N}.csv``) to ``--out`` (``benchmarks/results/``).

    python benchmarks/continuous.py
    python benchmarks/continuous.py --seeds 0 -- --learning-rate 3e-4

Flags after ``--`` go to every training run. Two runs share the machine, so
their wall times are not comparable with a run alone.
"""

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lunarlander import (
    COLUMNS,
    RESULTS,
    machine_settings,
    median,
    run_seed,
    table_markdown,
)

# env id -> (total env steps, --solved-return or None for the spec's threshold)
TASKS = {
    "Pendulum-v1": (300_000, -200.0),
    "LunarLanderContinuous-v3": (500_000, None),
}


def run_task(env_id: str, seeds: list[int], args, extra: list[str], pool) -> dict:
    total_steps, solved = TASKS[env_id]
    flags = ["--env", env_id, *extra]
    if solved is not None:
        flags += ["--solved-return", str(solved)]
    task_args = argparse.Namespace(
        total_steps=total_steps, eval_episodes=args.eval_episodes, eval_every=0
    )

    def one_seed(seed: int) -> dict:
        summary = run_seed(seed, task_args, flags, logs)
        print(
            f"{env_id} seed {seed}: steps to solve {summary['steps_to_solve']}, "
            f"eval {summary['eval_mean']:.1f}",
            file=sys.stderr,
            flush=True,
        )
        return summary

    logs = args.out / env_id  # every run's learning curve, seed{N}.csv
    logs.mkdir(parents=True, exist_ok=True)
    runs = list(pool.map(one_seed, seeds))
    keys = [key for key, _, _ in COLUMNS if key != "seed"]
    return {
        "runs": runs,
        "median": {key: median([run[key] for run in runs]) for key in keys},
        "total_steps": total_steps,
        "solved_return": runs[0]["solved_return"],
        "solved": sum(run["steps_to_solve"] is not None for run in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        tasks = {
            env: run_task(env, args.seeds, args, extra, pool) for env in args.tasks
        }
    results = {
        "tasks": tasks,
        "settings": {
            "seeds": args.seeds,
            "eval_episodes": args.eval_episodes,
            "extra_flags": extra,
            **machine_settings(),
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    sections = []
    for env_id, task in tasks.items():
        target = (
            f"{task['solved']} of {len(task['runs'])} seeds reach a last-100 mean of "
            f"{task['solved_return']:g} within {task['total_steps']:,} env steps"
        )
        sections.append(f"## {env_id}\n\n{table_markdown(task)}\n\n{target}\n")
    markdown = "\n".join(sections)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "continuous.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "continuous.md").write_text(
        "# Continuous-action benchmark (presets.BOX_DEFAULTS)\n\n"
        f"Settings: {json.dumps(results['settings'])}\n\n{markdown}"
    )


if __name__ == "__main__":
    main()
