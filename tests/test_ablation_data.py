"""Chapter 7's committed sweep (book/data): the schema that
benchmarks/objective_ablation.py writes, and every task x setting x seed."""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ppo_helpers import ablation

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"


def sweep_script():
    """benchmarks/objective_ablation.py as a module (benchmarks/ is on pytest's
    ``pythonpath``: it is no package)."""
    return importlib.import_module("objective_ablation")


def read(name: str) -> tuple[list[str], list[dict]]:
    with (DATA / name).open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def planned_runs(script) -> set[tuple[str, str, int]]:
    return {
        (task, s.name, seed)
        for task in script.TASKS
        for s in ablation.SETTINGS
        for seed in script.SEEDS
    }


def test_committed_sweep_has_the_scripts_schema_and_only_planned_runs():
    script = sweep_script()
    columns, rows = read("objective_ablation.csv")
    assert tuple(columns) == script.COLUMNS
    found = [script.key(r) for r in rows]
    assert len(found) == len(set(found)), "a run appears twice"
    assert set(found) <= planned_runs(script)
    for r in rows:
        assert int(r["env_steps"]) == script.TASKS[r["task"]]
        assert float(r["wall_s"]) > 0 and float(r["mean_kl"]) >= 0


def test_committed_sweep_covers_every_task_setting_and_seed():
    script = sweep_script()
    _, rows = read("objective_ablation.csv")
    assert {script.key(r) for r in rows} == planned_runs(script)


def test_committed_scores_are_normalised_by_the_committed_random_scores():
    script = sweep_script()
    _, rows = read("objective_ablation.csv")
    columns, random_rows = read("objective_ablation_random.csv")
    assert tuple(columns) == script.RANDOM_COLUMNS
    random = {r["task"]: float(r["random_score"]) for r in random_rows}
    assert set(random) == set(script.TASKS)
    recomputed = [dict(r) for r in rows]
    script.renormalise(recomputed, random)
    for r, again in zip(rows, recomputed, strict=True):
        assert float(r["normalised_score"]) == pytest.approx(
            again["normalised_score"], rel=1e-9
        )
    for task in script.TASKS:  # the best setting's mean is 1 on every task
        by_setting = {}
        for r in rows:
            if r["task"] == task:
                by_setting.setdefault(r["setting"], []).append(
                    float(r["normalised_score"])
                )
        assert max(np.mean(v) for v in by_setting.values()) == pytest.approx(1.0)


def test_committed_curves_cover_every_run_update_by_update():
    script = sweep_script()
    columns, curves = read("objective_ablation_curves.csv")
    assert tuple(columns) == script.CURVE_COLUMNS
    _, rows = read("objective_ablation.csv")
    points = {}
    for c in curves:
        points.setdefault(script.key(c), []).append(int(c["env_steps"]))
    assert set(points) == {script.key(r) for r in rows}
    for (task, _, _), steps in points.items():
        assert steps == list(range(2048, script.TASKS[task] + 1, 2048))


def test_committed_sweep_names_its_command_versions_and_machine():
    meta = json.loads((DATA / "objective_ablation.json").read_text())
    assert meta["command"].startswith("python benchmarks/objective_ablation.py")
    assert {"torch", "gymnasium", "mujoco", "cpu", "cpus"} <= set(meta["machine"])
    _, rows = read("objective_ablation.csv")
    assert meta["finished_runs"] == len(rows)
    assert meta["tasks"] == sweep_script().TASKS
    assert meta["total_wall_s"] > 0


def test_committed_paper_budget_runs_cover_their_plan_on_reporting_seeds():
    script = sweep_script()
    names = script.file_names(script.PAPER_BUDGET_PREFIX)
    columns, rows = read(names["runs"])
    assert tuple(columns) == script.COLUMNS
    plan = {
        (task, setting, seed)
        for task in script.PAPER_BUDGET_TASKS
        for setting in script.PAPER_BUDGET_SETTINGS
        for seed in script.PAPER_BUDGET_SEEDS
    }
    assert sorted(script.key(r) for r in rows) == sorted(plan)
    assert min(script.PAPER_BUDGET_SEEDS) >= 100  # seeds that chose nothing
    meta = json.loads((DATA / names["meta"]).read_text())
    assert meta["command"].endswith("--paper-budget")
    assert meta["tasks"] == script.PAPER_BUDGET_TASKS
    # every update's point, up to the first update at or past the budget
    _, curves = read(names["curves"])
    for key in plan:
        last = -(-script.PAPER_BUDGET_TASKS[key[0]] // 2048) * 2048
        steps = [int(c["env_steps"]) for c in curves if script.key(c) == key]
        assert steps == list(range(2048, last + 1, 2048)), key
