"""Distributed PPO's throughput against its number of ranks W, strong and weak.

    python benchmarks/scaling.py --env Humanoid-v5 --workers 1 2 4 8 16 \\
        --out benchmarks/results/scaling.json

For each W it trains from seed 0 for a fixed number of updates with the Box
defaults, as ``torchrun --nproc-per-node W -m ppo_helpers.distributed`` does (W =
1: ``python -m ppo_helpers.train``, one process), in two ways:

- strong scaling: ``--total-envs`` envs over all ranks (that many / W per rank),
  so every W collects the batch of one process and takes the same updates;
- weak scaling: ``--envs-per-rank`` envs on every rank, so the batch grows with
  W, as in DPPO and DD-PPO.

Each run records env steps per second and rank 0's seconds per iteration in
the rollout, the update and the update's all-reduces (the profile worker of
``benchmarks/distributed.py``). The JSON is rewritten after every run, with the
machine's description and load average, so an interrupted sweep keeps what it
measured. Run nothing else meanwhile: the runs are compared side by side.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def command(workers: int, flags: list[str]) -> list[str]:
    """The profiled run of ``flags`` on ``workers`` processes."""
    profiled = [str(HERE / "distributed.py"), "--profile-worker", "--", *flags]
    if workers == 1:
        return [sys.executable, *profiled]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, "--nproc-per-node", str(workers), *profiled]


def measure(workers: int, envs_per_rank: int, args) -> dict:
    """One profiled run: its summary line, its profile line and its wall time."""
    batch = workers * envs_per_rank * args.num_steps
    flags = [
        "--env", args.env, "--seed", "0", "--num-envs", str(envs_per_rank),
        "--num-steps", str(args.num_steps), "--total-steps", str(args.updates * batch),
        "--quiet",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        command(workers, flags), capture_output=True, text=True, env=ENV
    )
    wall = time.perf_counter() - start
    lines = proc.stdout.splitlines()[-2:]
    if proc.returncode != 0 or len(lines) < 2:  # the CLI's error, on stderr
        return {"error": proc.stderr[-1500:], "workers": workers}
    summary, profile = (json.loads(line) for line in lines)
    return {
        "workers": workers,
        "envs_per_rank": envs_per_rank,
        "batch": batch,
        "env_steps": summary["env_steps"],
        "steps_per_s": summary["steps_per_s"],
        "train_wall_s": summary["wall_s"],
        "process_wall_s": round(wall, 2),
        "per_iteration_s": profile["per_iteration_s"],
        "load_average": os.getloadavg(),
    }


def machine() -> dict:
    import gymnasium
    import torch

    cpu = "unknown"
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
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_before": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Humanoid-v5")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--total-envs", type=int, default=32, help="strong scaling")
    parser.add_argument("--envs-per-rank", type=int, default=8, help="weak scaling")
    parser.add_argument("--num-steps", type=int, default=128, help="per env and update")
    parser.add_argument("--updates", type=int, default=6, help="per run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = {
        "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out)},
        "strong": [],
        "weak": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for workers in args.workers:
        for kind, envs in (
            ("strong", args.total_envs // workers),
            ("weak", args.envs_per_rank),
        ):
            row = measure(workers, envs, args)
            result[kind].append(row)
            args.out.write_text(json.dumps(result, indent=1) + "\n")
            shown = row.get("steps_per_s", row.get("error", "")[-200:])
            print(f"{kind:6} W={workers:2} envs/rank={envs:3}: {shown}", flush=True)


if __name__ == "__main__":
    main()
