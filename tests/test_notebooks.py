"""Mechanical rules every chapter notebook follows (see CONTRIBUTING.md)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def code_cells(path: Path) -> list[dict]:
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc["parts"] for ch in part["chapters"]]


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_is_first_identical_everywhere_and_names_the_book_repository(path):
    first = source(code_cells(path)[0])
    reference = source(code_cells(NOTEBOOKS[0])[0])
    assert first == reference, (
        f"{path.name}: first code cell differs from {NOTEBOOKS[0].name}"
    )
    url = re.search(r'BOOK_REPOSITORY = "([^"]+)"', first).group(1)
    assert url == CONFIG["repository"]["url"]
    assert "google.colab" in first
    install = re.search(r"\[sys.executable, .*?\]", first, re.S).group(0)
    assert "torch" not in install, "the Colab cell must never install torch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_a_clean_run(path):
    cells = code_cells(path)
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{path.name} has unexecuted cells"
    assert counts == sorted(counts), f"{path.name} was executed out of order"
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name} stores an error output"


def tags(cell: dict) -> list[str]:
    return cell["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_worked_examples_are_checked_by_nbval_through_a_tag(path):
    cells = code_cells(path)
    assert any("nbval-check-output" in tags(c) for c in cells)
    assert not [c for c in cells if "NBVAL" in source(c)], "a marker comment left"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_page_shows_the_lesson_not_the_plumbing(path):
    setup, imports = code_cells(path)[:2]
    assert "hide-cell" in tags(setup) and "hide-input" in tags(imports)
    shown = [c for c in code_cells(path) if "remove-cell" not in tags(c)]
    glued = [source(c)[:60] for c in shown if re.search(r"^\s*glue\(", source(c), re.M)]
    assert not glued, f"glue calls in cells the page shows: {glued}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_solution_with_code_opens_with_one_click(path):
    """Its code cells sit between solution-start and solution-end (gated), so one
    dropdown holds prose and code; none of them hides behind a second toggle."""
    cells = json.loads(path.read_text())["cells"]
    for i, cell in enumerate(cells[:-1]):
        text = source(cell)
        plain = cell["cell_type"] == "markdown" and re.search(r"\{solution\}", text)
        if plain and text.rstrip().endswith(":::"):
            assert cells[i + 1]["cell_type"] == "markdown", (
                f"{path.name}: code right after a plain solution shows outside it: "
                + text[:80]
            )
    inside = False
    for cell in cells:
        text = source(cell)
        inside = (inside or "{solution-start}" in text) and "{solution-end}" not in text
        if inside and cell["cell_type"] == "code":
            assert not {"hide-cell", "hide-input"} & set(tags(cell)), source(cell)[:60]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_has_alt_text(path):
    for cell in code_cells(path):
        images = [
            kind
            for output in cell["outputs"]
            for kind in output.get("data", {})
            if kind.startswith("image/")
        ]
        alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        assert not images or len(alt) > 20, f"{path.name}: {source(cell)[:60]}"


def test_toc_lists_every_page_and_every_page_exists():
    files = toc_files()
    for f in files:
        assert (ROOT / f).with_suffix(".md").exists() or (ROOT / f).with_suffix(
            ".ipynb"
        ).exists(), f"{f} is in _toc.yml but missing"
    listed = {f for f in files if f.startswith("notebooks/")}
    assert {f"notebooks/{p.stem}" for p in NOTEBOOKS} == listed


def write_checked_notebook(path: Path, stored_output: str) -> None:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "c1",
                "metadata": {"tags": ["nbval-check-output"]},
                "outputs": [
                    {"name": "stdout", "output_type": "stream", "text": [stored_output]}
                ],
                "source": ["print(6 * 7)"],
            }
        ],
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            }
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@pytest.mark.processes
@pytest.mark.parametrize("stored,passes", [("42\n", True), ("41\n", False)])
def test_nbval_lax_fails_when_a_checked_worked_example_changes(
    tmp_path, stored, passes
):
    notebook = tmp_path / "worked_example.ipynb"
    write_checked_notebook(notebook, stored)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            str(notebook),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=120,
    )
    assert (run.returncode == 0) == passes, run.stdout[-2000:]


# A hand-typed result is a number in a notebook's markdown prose that no code
# produced. The rule, applied after removing math, code, MyST roles (glue, cite,
# eq, ...), directive options, link targets and identifiers such as
# "LunarLander-v3": any remaining number with a decimal point, a percent sign or
# three or more digits is suspect, unless the notebook declares it deliberately
# typed in its metadata (``"ppo_book": {"typed_numbers": ["200", "0.2"]}``) for
# facts from papers and fixed settings. Small whole numbers (counts such as
# "3 seeds", "chapter 2") pass. Results of runs must be glued instead. The
# same goes for multipliers written in words ("twice as long", "three times
# slower", "a tenth of a second"): they are results too, and are declared in
# typed_numbers (e.g. "ten times") when they are facts rather than measurements.
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?%?(?![\w])")
_COUNT = r"(?:two|three|four|five|six|seven|eight|nine|ten|a hundred|a thousand|\d+)"
MULTIPLIER = re.compile(
    rf"\b(?:twice|thrice|{_COUNT} times|a (?:third|quarter|tenth|hundredth))\b",
    re.I,
)
STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$\n]+\$"),  # inline math
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # MyST roles: glue, cite, eq, doc, ...
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"^\s*:[\w-]+:.*$", re.M),  # directive options
    re.compile(r"^\s*:{3,}.*$", re.M),  # directive fences
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"\(\s*[\w-]+\s*\)=?"),  # equation labels and targets
    re.compile(r"\b[\w]+-v\d+\b"),  # env ids
    re.compile(r"\b(?:19|20)\d\d[a-z]?\b"),  # years
]


def hand_typed_numbers(markdown: str, allowed: set[str]) -> list[str]:
    for pattern in STRIP:
        markdown = pattern.sub(" ", markdown)
    found = [
        m.group(0)
        for m in MULTIPLIER.finditer(markdown)
        if m.group(0).lower() not in allowed
    ]
    for match in NUMBER.finditer(markdown):
        token = match.group(0).rstrip(",")
        plain = token.rstrip("%").replace(",", "")
        suspect = "." in plain or token.endswith("%") or len(plain) >= 3
        if suspect and token not in allowed and plain not in allowed:
            found.append(token)
    return found


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The run reached 231.4 after 110,592 steps.", ["231.4", "110,592"]),
        ("It solved {glue:text}`steps:,d` steps in $10^5$ time.", []),
        ("Clip at 0.2, as the paper does.", []),  # allowed below
        ("We use 3 seeds and 8 envs in chapter 2 (LunarLander-v3, 2017).", []),
        ("A KL of 12% over the target.", ["12%"]),
        ("See {eq}`eq-clip` and `clip_coef=0.2` in ```code 123```.", []),
        ("It took about twice as long, a tenth of a second.", ["twice", "a tenth"]),
        ("Three times slower, and 10 times the target.", ["Three times", "10 times"]),
        ("The first half of the run; halve beta.", []),
    ],
)
def test_hand_typed_number_rule(text, expected):
    assert hand_typed_numbers(text, allowed={"0.2"}) == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_quotes_no_hand_typed_results(path):
    nb = json.loads(path.read_text())
    allowed = set(nb["metadata"].get("ppo_book", {}).get("typed_numbers", []))
    markdown = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"
    )
    found = hand_typed_numbers(markdown, allowed)
    assert not found, (
        f"{path.name}: numbers in prose not produced by code: {found}. Glue run "
        "results; list deliberate facts in metadata ppo_book.typed_numbers."
    )
