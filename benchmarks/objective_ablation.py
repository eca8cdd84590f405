"""Re-run the PPO paper's Table 1: eleven surrogate objectives on MuJoCo tasks.

Every setting of ``ppo_helpers.ablation.SETTINGS`` (no clipping, clipping at
three epsilons, adaptive KL at three targets, fixed KL at four betas) trains on
every task of ``TASKS`` with every seed, with the paper's Table 3
hyperparameters and the same budget for every setting within a task. Runs go
two at a time (one process per core, torch on one thread each), seed 0 of
everything first, so that a sweep cut short still covers every task and setting.

    python benchmarks/objective_ablation.py            # the full sweep (resumes)
    python benchmarks/objective_ablation.py --quick    # under a minute, a temp dir
    python benchmarks/objective_ablation.py --paper-budget   # 1M steps (resumes)

``--paper-budget`` runs the four settings that matter most (no clipping, clip
0.2, adaptive KL 0.01, fixed KL 1) for the paper's 1M env steps on Hopper-v5,
reporting seeds 100-102, into ``objective_ablation_1m*`` files (about 13
minutes a run on this project's 2-core machine, one run per core).

Writes, in ``--out`` (``book/data`` by default), as the runs finish:

- ``objective_ablation.csv``: one row per finished run (``COLUMNS``); the
  normalised score is recomputed over all finished runs after each one (random
  policy 0, the task's best setting, by mean over seeds, 1);
- ``objective_ablation_curves.csv``: per update of every finished run, the mean
  return of the last 100 episodes, the exact KL of the update and beta;
- ``objective_ablation_random.csv``: each task's random-policy score;
- ``objective_ablation.json``: the command, package versions, machine, date,
  budgets and the wall time of every sitting.

``--probe`` measured, before the budgets were fixed, each candidate task's
training speed and clip-0.2 learning curve (``objective_ablation_probes.json``).

An interrupted sweep resumes where it stopped: finished runs (rows of the CSV)
are not run again, and a half-written run's curve is dropped. ``--tasks`` and
``--seeds`` give one sitting a part of the plan (``TASKS`` x ``SEEDS``), in the
order given; ``objective_ablation.json`` keeps the whole plan and every sitting.
"""

import argparse
import csv
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from lunarlander import machine_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data"

# env id -> env steps per run (the same for every setting and seed of the task).
TASKS = {
    "InvertedPendulum-v5": 51_200,
    "Hopper-v5": 61_440,
    "Reacher-v5": 61_440,
}
SEEDS = (0, 1, 2)
QUICK_TASKS = {"InvertedPendulum-v5": 2048}
# --paper-budget: the settings that matter most, at the paper's 1M env steps,
# on reporting seeds (CONTRIBUTING.md, "Seeds"), in files of their own.
PAPER_BUDGET_TASKS = {"Hopper-v5": 1_000_000}
PAPER_BUDGET_SETTINGS = ("no_clip", "clip_0.2", "adaptive_kl_0.01", "fixed_kl_1")
PAPER_BUDGET_SEEDS = (100, 101, 102)
PAPER_BUDGET_PREFIX = "objective_ablation_1m"
# --probe: the candidates measured before the budgets were fixed (clip 0.2, seed 0).
CANDIDATES = (
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
    "Reacher-v5",
    "Swimmer-v5",
    "Hopper-v5",
    "HalfCheetah-v5",
)
PROBE_STEPS = 81_920
RANDOM_EPISODES = 100

COLUMNS = (
    "task",
    "setting",
    "seed",
    "final_score",
    "normalised_score",
    "env_steps",
    "wall_s",
    "episodes",
    "mean_kl",
    "max_kl",
    "final_beta",
)
CURVE_COLUMNS = ("task", "setting", "seed", "env_steps", "mean100", "kl", "beta")
RANDOM_COLUMNS = ("task", "random_score", "episodes")


def file_names(prefix: str = "objective_ablation") -> dict[str, str]:
    """The sweep's files in ``--out``, named after its plan."""
    return {
        "runs": f"{prefix}.csv",
        "curves": f"{prefix}_curves.csv",
        "random": f"{prefix}_random.csv",
        "meta": f"{prefix}.json",
        "probes": f"{prefix}_probes.json",
    }


NAMES = file_names()


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _run(task: str, setting: str, seed: int, steps: int) -> tuple[dict, list[dict]]:
    from ppo_helpers.ablation import run_setting

    return run_setting(task, setting, seed, steps)


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, columns, rows) -> None:
    """Write atomically: a sweep killed mid-write leaves the old file whole."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    """Write atomically, as ``write_csv`` does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def key(row: dict) -> tuple[str, str, int]:
    return row["task"], row["setting"], int(row["seed"])


def renormalise(rows: list[dict], random: dict[str, float]) -> None:
    """Set every row's normalised score: random 0, the task's best setting 1."""
    from ppo_helpers.ablation import normalise

    for task in {r["task"] for r in rows}:
        task_rows = [r for r in rows if r["task"] == task]
        by_setting: dict[str, list[float]] = {}
        for r in task_rows:
            by_setting.setdefault(r["setting"], []).append(float(r["final_score"]))
        best = max(np.mean(v) for v in by_setting.values())
        for r in task_rows:
            r["normalised_score"] = float(
                normalise(float(r["final_score"]), random[task], best)
            )


def measure_random(tasks, path: Path, episodes: int) -> dict[str, float]:
    """Each task's random-policy score, measured once and kept in the CSV."""
    from ppo_helpers.ablation import random_score

    rows = {r["task"]: r for r in read_csv(path)}
    for task in tasks:
        if task not in rows or int(rows[task]["episodes"]) < episodes:
            rows[task] = dict(
                task=task, random_score=random_score(task, episodes), episodes=episodes
            )
            print(f"[random] {task}: {float(rows[task]['random_score']):.2f}")
    write_csv(path, RANDOM_COLUMNS, rows.values())
    return {t: float(r["random_score"]) for t, r in rows.items()}


def probe(out: Path, jobs: int) -> None:
    """A clip-0.2 learning curve and the training speed of every candidate task."""
    start = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    runs = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, context, initializer=_worker_init) as pool:
        futures = [
            pool.submit(_run, task, "clip_0.2", 0, PROBE_STEPS) for task in CANDIDATES
        ]
        for future in futures:
            row, curve = future.result()
            row["steps_per_s"] = row["env_steps"] / row["wall_s"]
            runs.append(dict(row=row, curve=curve))
            print(f"[probe] {row['task']}: {row['steps_per_s']:.0f} env steps/s")
    meta = dict(
        command="python benchmarks/objective_ablation.py --probe",
        started=start,
        jobs=jobs,
        machine=machine_settings("mujoco", "numpy"),
        runs=runs,
    )
    (out / NAMES["probes"]).write_text(json.dumps(meta, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, temp dir")
    parser.add_argument(
        "--probe", action="store_true", help="clip-0.2 curves of the CANDIDATES"
    )
    parser.add_argument("--out", type=Path, help=f"output folder ({DEFAULT_OUT})")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help=f"this sitting's seeds ({SEEDS})"
    )
    parser.add_argument(
        "--tasks", nargs="+", help=f"this sitting's tasks, in order ({list(TASKS)})"
    )
    parser.add_argument(
        "--paper-budget",
        action="store_true",
        help=f"{', '.join(PAPER_BUDGET_SETTINGS)} at {PAPER_BUDGET_TASKS} env steps,"
        f" seeds {PAPER_BUDGET_SEEDS}, into {PAPER_BUDGET_PREFIX}*",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    from ppo_helpers.ablation import SETTING_BY_NAME, SETTINGS

    # The plan (what a finished sweep covers) and this sitting's share of it:
    # --tasks and --seeds pick runs of the plan, in the order given.
    if args.paper_budget:
        budgets, plan_seeds = PAPER_BUDGET_TASKS, PAPER_BUDGET_SEEDS
        settings = [SETTING_BY_NAME[name] for name in PAPER_BUDGET_SETTINGS]
        names = file_names(PAPER_BUDGET_PREFIX)
    else:
        budgets = QUICK_TASKS if args.quick else TASKS
        plan_seeds, settings, names = (0,) if args.quick else SEEDS, SETTINGS, NAMES
    if args.quick and args.paper_budget:
        budgets = {task: 2048 for task in budgets}
    sitting_tasks = args.tasks or list(budgets)
    seeds = args.seeds or plan_seeds
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="objective_ablation_"))
        if args.quick
        else DEFAULT_OUT
    )
    out.mkdir(parents=True, exist_ok=True)
    if args.probe:
        probe(out, args.jobs)
        return 0
    sitting_start = time.time()

    random = measure_random(
        budgets, out / names["random"], 10 if args.quick else RANDOM_EPISODES
    )
    rows = read_csv(out / names["runs"])
    done = {key(r) for r in rows}
    curves = [r for r in read_csv(out / names["curves"]) if key(r) in done]
    write_csv(out / names["curves"], CURVE_COLUMNS, curves)
    jobs = [
        (task, s.name, seed, budgets[task])
        for seed in seeds
        for task in sitting_tasks
        for s in settings
        if (task, s.name, seed) not in done
    ]
    meta_path = out / names["meta"]
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.update(
        command="python benchmarks/objective_ablation.py"
        + (" --quick" if args.quick else "")
        + (" --paper-budget" if args.paper_budget else ""),
        tasks=budgets,
        seeds=list(plan_seeds),
        settings=[s.name for s in settings],
        random_episodes=10 if args.quick else RANDOM_EPISODES,
        machine=machine_settings("mujoco", "numpy"),
    )
    sittings = meta.setdefault("sittings", [])
    sittings.append(
        dict(
            started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            args=sys.argv[1:] if argv is None else list(argv),
            runs=0,
            wall_s=0.0,
            load_average_at_start=os.getloadavg()[0],
        )
    )
    write_json(meta_path, meta)
    print(f"[sweep] {len(jobs)} runs to go ({len(done)} already done), out: {out}")

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, context, initializer=_worker_init) as pool:
        futures = {pool.submit(_run, *job): job for job in jobs}
        for n, future in enumerate(as_completed(futures), 1):
            row, curve = future.result()
            run_key = {k: row[k] for k in ("task", "setting", "seed")}
            curves += [{**run_key, **point} for point in curve]
            write_csv(out / names["curves"], CURVE_COLUMNS, curves)
            rows.append(row)
            renormalise(rows, random)
            write_csv(out / names["runs"], COLUMNS, rows)
            elapsed = time.time() - sitting_start
            sittings[-1].update(runs=n, wall_s=round(elapsed, 1))
            meta["total_wall_s"] = round(sum(s["wall_s"] for s in sittings), 1)
            meta["finished_runs"] = len(rows)
            write_json(meta_path, meta)
            eta = elapsed / n * (len(jobs) - n)
            print(
                f"[{n}/{len(jobs)}] {row['task']} {row['setting']} seed {row['seed']}:"
                f" score {row['final_score']:.1f}, mean KL {row['mean_kl']:.4f},"
                f" {row['wall_s']:.0f} s | {elapsed / 60:.1f} min, ETA"
                f" {eta / 60:.1f} min",
                flush=True,
            )
    print(f"[sweep] done: {len(rows)} runs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
