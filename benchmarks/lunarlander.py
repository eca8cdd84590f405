"""Benchmark the book's default PPO on LunarLander-v3 over several seeds.

Runs the command line (``python -m ppo_helpers.cli``) once per seed, one
process at a time so that runs do not compete for the cores, each followed by
a deterministic evaluation of the final policy over 100 episodes. Prints a
table (steps and wall seconds to solve, env steps per second, evaluation mean
and std, and the median of each column), checks the targets of the book, and
writes the table to ``benchmarks/results/lunarlander.{json,md}``.

    python benchmarks/lunarlander.py                      # seeds 0-4, 300k steps
    python benchmarks/lunarlander.py --seeds 0 1 -- --ent-coef 0.005
    python benchmarks/lunarlander.py --seeds 100 101 --eval-every 100000 \
        --out benchmarks/results/reporting_seeds

``--eval-every N`` also evaluates the greedy policy (the same episodes) at the
first update past every N env steps, from the run's checkpoints: a comparison
at matched budgets (at most ``checkpoint.KEEP`` of them).

``--logs DIR`` keeps each seed's episode log (the CSV of ``--log``) as
``DIR/seed{N}.csv``; without it the logs go to a temporary folder that is
deleted at the end. Checkpoints (``--eval-every``) stay temporary either way.

    python benchmarks/lunarlander.py --seeds 0 1 --logs runs/

Flags after ``--`` go to every training run: any flag of
``python -m ppo_helpers.cli`` (a ``run.RunConfig`` or ``ppo.PPOConfig`` field).
Wall times depend on the machine and on what else runs on it: the load
average at the start and end is recorded next to them.
"""

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "median steps to solve <= 120,000": lambda t: _le(
        t["median"]["steps_to_solve"], 120_000
    ),
    "every seed solves within 200,000 steps": lambda t: all(
        _le(r["steps_to_solve"], 200_000) for r in t["runs"]
    ),
    "median eval mean >= 260": lambda t: _ge(t["median"]["eval_mean"], 260),
    "median eval mean - std >= 220": lambda t: _ge(
        t["median"]["eval_mean_minus_std"], 220
    ),
    "median wall s to solve <= 15 (machine-dependent)": lambda t: _le(
        t["median"]["wall_s_to_solve"], 15
    ),
    "median env steps/s >= 10,000 (machine-dependent)": lambda t: _ge(
        t["median"]["steps_per_s"], 10_000
    ),
}
COLUMNS = (
    ("seed", "seed", "{}"),
    ("steps_to_solve", "steps to solve", "{:,.0f}"),
    ("wall_s_to_solve", "wall s to solve", "{:.1f}"),
    ("steps_per_s", "env steps/s", "{:,.0f}"),
    ("final_mean100", "last-100 mean", "{:.1f}"),
    ("eval_mean", "eval mean", "{:.1f}"),
    ("eval_std", "eval std", "{:.1f}"),
    ("eval_mean_minus_std", "eval mean - std", "{:.1f}"),
)


def _le(value, limit) -> bool:
    return value is not None and value <= limit


def _ge(value, limit) -> bool:
    return value is not None and value >= limit


def run_seed(
    seed: int,
    args: argparse.Namespace,
    extra: list[str],
    logs: Path,
    scratch: Path | None = None,
) -> dict:
    """One training run through the command line; its JSON summary.

    The episode log goes to ``logs/seed{seed}.csv``, checkpoints (``--eval-every``)
    into ``scratch/seed{seed}/`` (default: ``logs``).
    """
    checkpoints = (scratch or logs) / f"seed{seed}"
    command = [
        sys.executable, "-m", "ppo_helpers.cli",
        "--seed", str(seed),
        "--total-steps", str(args.total_steps),
        "--eval-episodes", str(args.eval_episodes),
        "--log", str(logs / f"seed{seed}.csv"),
        "--quiet", *extra,
    ]  # fmt: skip
    if args.eval_every:
        command += [
            "--checkpoint-dir", str(checkpoints),
            "--checkpoint-every", str(args.eval_every),
        ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"seed {seed} failed: {proc.stderr.strip()}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["eval_mean_minus_std"] = summary["eval_mean"] - summary["eval_std"]
    if args.eval_every:
        summary["eval_at"] = evaluate_checkpoints(checkpoints, args.eval_episodes)
    return summary


def evaluate_checkpoints(folder: Path, episodes: int) -> dict[int, dict]:
    """``{env steps: {"mean", "std"}}`` of the greedy policy of every checkpoint."""
    import torch

    from ppo_helpers import checkpoint, rollout, run

    torch.set_num_threads(1)
    out = {}
    for path in sorted(folder.glob("step_*.pt")):
        state = checkpoint.load(path)
        agent = run.load_agent(path)
        env_id = run.saved_configs(state).run["env_id"]
        returns = rollout.evaluate(agent, env_id, episodes)
        out[run.progress_of(state)[1]] = {
            "mean": float(returns.mean()),
            "std": float(returns.std()),
        }
    return out


def machine_settings(*modules: str) -> dict:
    """The CPU, load average, versions and date to store beside a benchmark's
    results; the ``modules`` named (e.g. ``"mujoco"``) add their ``__version__``
    (imported here: importing mujoco starts a process)."""
    import gymnasium
    import torch

    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        **{m: importlib.import_module(m).__version__ for m in modules},
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def median(values: list) -> float | None:
    """Median, counting a run that never solved (None) as worse than any that did."""
    if not values:
        return None
    ranked = sorted(values, key=lambda v: (v is None, v if v is not None else 0))
    mid = ranked[(len(ranked) - 1) // 2 : len(ranked) // 2 + 1]
    if any(v is None for v in mid):
        return None
    return statistics.mean(mid)


def table_markdown(table: dict) -> str:
    header = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [header, "|" + "---:|" * len(COLUMNS)]

    def cell(value, fmt):
        return "not solved" if value is None else fmt.format(value)

    for run in [*table["runs"], {**table["median"], "seed": "median"}]:
        lines.append(
            "| " + " | ".join(cell(run[key], fmt) for key, _, fmt in COLUMNS) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Flags after -- go to python -m ppo_helpers.cli.",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--total-steps", type=int, default=300_000)
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="folder for lunarlander.{json,md}"
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="also evaluate at the first update past every this many env steps",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        metavar="DIR",
        help="keep each seed's episode log as DIR/seed{N}.csv (default: a "
        "temporary folder, deleted at the end)",
    )
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)

    load_start = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        logs = args.logs or Path(scratch)
        for seed in args.seeds:
            started = time.perf_counter()
            runs.append(run_seed(seed, args, extra, logs, Path(scratch)))
            print(
                f"seed {seed}: done in {time.perf_counter() - started:.0f} s "
                f"(steps to solve {runs[-1]['steps_to_solve']})",
                file=sys.stderr,
            )
    keys = [key for key, _, _ in COLUMNS if key != "seed"]
    table = {
        "runs": runs,
        "median": {key: median([run[key] for run in runs]) for key in keys},
        "settings": {
            "seeds": args.seeds,
            "total_steps": args.total_steps,
            "eval_episodes": args.eval_episodes,
            "eval_every": args.eval_every,
            "extra_flags": extra,
            **machine_settings(),
            "load_average_start_end": [
                round(load_start, 2),
                round(os.getloadavg()[0], 2),
            ],
        },
    }
    table["command"] = "python benchmarks/lunarlander.py " + " ".join(argv)
    table["targets"] = {name: check(table) for name, check in TARGETS.items()}
    markdown = table_markdown(table)
    targets = "\n".join(
        f"- [{'x' if ok else ' '}] {name}" for name, ok in table["targets"].items()
    )
    print(markdown)
    print(targets)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lunarlander.json").write_text(json.dumps(table, indent=1) + "\n")
    (args.out / "lunarlander.md").write_text(
        "# LunarLander-v3 benchmark\n\n"
        f"Settings: {json.dumps(table['settings'])}\n\n"
        f"{markdown}\n\nTargets:\n\n{targets}\n"
    )


if __name__ == "__main__":
    main()
