"""Env steps per second of this tree against another git revision, side by side.

Machines of this kind differ by more than 2x in speed, and one machine drifts
within a session, so a speed claim is a ratio measured in one run. This script
checks out ``--base`` into a temporary worktree and trains the same config with
both trees in turn, alternating (base, ours, base, ours, ...) so that a change
in the machine's load hits both alike, and prints the median steps/s of each
and their ratio.

    python benchmarks/compare_speed.py --base HEAD~1 --reps 3 -- --total-steps 100000

Flags after ``--`` go to every training run: ``python -m ppo_helpers.cli``, or
``python -m ppo_helpers.train`` in a revision from before the command line's
module had that name.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steps_per_s(tree: Path, extra: list[str]) -> float:
    """One training run with ``tree``'s ppo_helpers; its env steps per second."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    module = "cli" if (tree / "ppo_helpers" / "cli.py").exists() else "train"
    command = [sys.executable, "-m", f"ppo_helpers.{module}", "--quiet", *extra]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree)
    if proc.returncode != 0:
        sys.exit(f"{tree}: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="HEAD~1", help="git revision to compare")
    parser.add_argument("--reps", type=int, default=3, help="runs per tree (>= 1)")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.reps < 1:
        parser.error("--reps must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "-q",
                "--detach",
                base,
                args.base,
            ],
            check=True,
        )
        try:
            speeds = {"base": [], "ours": []}
            for rep in range(args.reps):
                for name, tree in (("base", base), ("ours", ROOT)):
                    speeds[name].append(steps_per_s(tree, extra))
                    print(f"rep {rep}: {name} {speeds[name][-1]:,.0f} steps/s")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", base],
                check=True,
            )
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    print(
        json.dumps(
            {
                "base": args.base,
                "flags": extra,
                "steps_per_s": speeds,
                "median": medians,
                "ratio_ours_to_base": round(medians["ours"] / medians["base"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
