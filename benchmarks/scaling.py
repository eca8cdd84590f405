"""Measured against predicted: what W workers buy, in three designs.

    python benchmarks/scaling.py --env Humanoid-v5 \\
        --out benchmarks/results/scaling_humanoid.json          # about 5 minutes
    python benchmarks/scaling.py --env Humanoid-v5 --workers 1 2 4 8 16 \\
        --designs dppo async --out scaling_16cores.json         # a 16-core machine

First it measures the cost model's parts on this machine (``cost_parts.py``).
Then, for each W, it trains from seed 0 for a few updates with the book's
config for the env (``presets.for_env``), in each design of
``ppo_helpers.cost_model``:

- one process (W = 1): ``python -m ppo_helpers.cli``;
- ``async``: one learner whose envs step in processes of their own
  (``--async-envs``); its W is the cores the machine gives them;
- ``dppo``: ``torchrun --nproc-per-node W -m ppo_helpers.distributed``;

and in two scalings: strong (``--total-envs`` in all, so every W collects the
batch of one process) and weak (``--envs-per-worker`` on every worker, so the
batch grows with W). Each run reports rank 0's seconds per iteration by phase
(the profile worker of ``benchmarks/distributed.py``, first iteration
included) and env steps per second. The model fitted from the parts predicts
each run; the JSON keeps both, the machine and the load average, and is
rewritten after every run, so an interrupted sweep keeps what it measured.
A Markdown table goes beside it. Run nothing else meanwhile.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cost_parts import parts
from lunarlander import machine_settings

from ppo_helpers import presets
from ppo_helpers.cost_model import Costs, Workload, iteration_s, speedup

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DESIGN_NAMES = {"one": "one process", "async": "async envs", "dppo": "dppo"}
PHASES = ("rollout", "advantages", "update", "statistics")


def command(design: str, workers: int, flags: list[str]) -> list[str]:
    """The profiled run of ``flags`` in ``design`` on ``workers``."""
    profiled = [str(HERE / "distributed.py"), "--profile-worker", "--", *flags]
    if design != "dppo" or workers == 1:
        extra = ["--async-envs"] if design == "async" else []
        return [sys.executable, *profiled, *extra]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, "--nproc-per-node", str(workers), *profiled]


def envs_per_process(design: str, scaling: str, workers: int, envs: int) -> int:
    """The envs that each process steps when ``design`` runs on ``workers`` with
    ``envs`` envs in all (strong) or per worker (weak)."""
    if design == "dppo":  # a process per worker, each with its share or its own
        return envs // workers if scaling == "strong" else envs
    if design == "async" and scaling == "weak":  # one process, a worker per env
        return envs * workers
    return envs


def measure(design: str, workers: int, envs_per_process: int, args) -> dict:
    """One profiled run: its summary, its seconds per iteration by phase."""
    processes = workers if design == "dppo" else 1
    batch = processes * envs_per_process * args.num_steps
    flags = [
        "--env", args.env, "--seed", "0", "--num-envs", str(envs_per_process),
        "--num-steps", str(args.num_steps), "--total-steps", str(args.updates * batch),
        "--quiet",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(
        command(design, workers, flags), capture_output=True, text=True, env=ENV
    )
    wall = time.perf_counter() - start
    lines = proc.stdout.splitlines()[-2:]
    if proc.returncode != 0 or len(lines) < 2:  # the CLI's error, on stderr
        sys.exit(f"{design} on {workers} failed:\n{proc.stderr[-2000:]}")
    summary, profile = (json.loads(line) for line in lines)
    per = profile["per_iteration_s"]
    return {
        "envs_per_process": envs_per_process,
        "batch": batch,
        "env_steps": summary["env_steps"],
        "steps_per_s": summary["steps_per_s"],
        "iteration_s": sum(per.get(p, 0.0) for p in PHASES),
        "per_iteration_s": per,
        "process_wall_s": round(wall, 2),
        "load_average": os.getloadavg(),
    }


def markdown(result: dict) -> str:
    m, cfg = result["machine"], result["settings"]
    rows = [
        f"# {cfg['env']}: measured against the cost model, {m['date']}",
        "",
        f"{m['cpus']} CPUs ({m['cpu']}), torch {m['torch']}, gymnasium "
        f"{m['gymnasium']}, Python {m['python']}; load average before "
        f"{m['load_average_before'][0]:.2f}. `{result['command']}`",
        "",
        "Fitted parts (fixed s, slope): "
        + ", ".join(
            f"{k} ({v[0]:.3g}, {v[1]:.3g})"
            for k, v in result["parts"]["fitted"].items()
            if isinstance(v, list)
        )
        + f"; {result['parts']['fitted']['weights']:,} weights.",
        "",
        "| scaling | design | W | envs/process | batch | steps/s | s/iteration "
        "| predicted | miss | speed-up | predicted |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        rows.append(
            f"| {r['scaling']} | {r['design']} | {r['workers']} | "
            f"{r['envs_per_process']} | {r['batch']:,} | {r['steps_per_s']:,.0f} | "
            f"{r['iteration_s']:.3f} | {r['predicted_s']:.3f} | "
            f"{r['predicted_s'] / r['iteration_s'] - 1:+.0%} | "
            f"{r['speedup']:.2f} | {r['predicted_speedup']:.2f} |"
        )
    rows += ["", "Targets (issue 25, on a 2-core machine):", ""] + [
        f"- [{'x' if met else ' '}] {what}" for what, met in targets(result)
    ]
    return "\n".join(rows) + "\n"


def targets(result: dict) -> list[tuple[str, bool]]:
    """The performance targets that one sweep can check, and whether it met them."""
    two = [r for r in result["runs"] if r["workers"] == 2]
    strong = [r["speedup"] for r in two if r["scaling"] == "strong"]
    misses = [abs(r["predicted_speedup"] / r["speedup"] - 1) for r in result["runs"]]
    return [
        (
            f"the best two-worker design at the same envs and batch reaches 1.5x "
            f"one process's env steps/s (measured: {max(strong):.2f}x)",
            max(strong) >= 1.5,
        ),
        (
            f"the model predicts every measured speed-up within 15 % "
            f"(largest miss: {max(misses):.0%})",
            max(misses) <= 0.15,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Humanoid-v5")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument(
        "--designs", nargs="+", choices=("async", "dppo"), default=["async", "dppo"]
    )
    parser.add_argument("--total-envs", type=int, help="strong; default: the env's")
    parser.add_argument("--envs-per-worker", type=int, help="weak; default: the same")
    parser.add_argument("--num-steps", type=int, default=128, help="per env and update")
    parser.add_argument("--updates", type=int, default=6, help="per run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    cfg, ppo_cfg = presets.for_env(args.env)
    total = args.total_envs or cfg.num_envs
    per_worker = args.envs_per_worker or total
    result = {
        "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
        "machine": machine_settings(),
        "settings": vars(args) | {"out": str(args.out)},
        "parts": parts(args.env),
        "runs": [],
    }
    costs = Costs.from_dict(result["parts"]["fitted"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    baseline = {}  # per scaling: one process with that scaling's envs per worker
    plan = [("strong", "one", 1, total), ("weak", "one", 1, per_worker)]
    for workers in args.workers:
        for design in args.designs:
            plan.append(("strong", design, workers, total))
            plan.append(("weak", design, workers, per_worker))
    for scaling, design, workers, envs in plan:
        shape = Workload(
            envs, args.num_steps, ppo_cfg.update_epochs, ppo_cfg.num_minibatches
        )
        name = DESIGN_NAMES[design]
        predicted = iteration_s(costs, shape, name, workers, scaling)
        if design == "one" and scaling == "weak" and per_worker == total:
            baseline["weak"] = baseline["strong"]  # the same run
            continue
        per_process = envs_per_process(design, scaling, workers, envs)
        row = measure(design, workers, per_process, args)
        if design == "one":
            baseline[scaling] = row
        base = baseline[scaling]
        measured_rate = row["batch"] / row["iteration_s"]
        row |= {
            "scaling": scaling,
            "design": name,
            "workers": workers,
            "predicted_s": predicted["total"],
            "predicted_parts_s": predicted,
            "speedup": measured_rate / (base["batch"] / base["iteration_s"]),
            "predicted_speedup": speedup(costs, shape, name, workers, scaling),
        }
        result["runs"].append(row)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(
            f"{scaling:6} {name:11} W={workers:2}: {row['iteration_s']:.3f} s/it "
            f"(predicted {predicted['total']:.3f}), speed-up {row['speedup']:.2f} "
            f"(predicted {row['predicted_speedup']:.2f})",
            flush=True,
        )
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
