"""The package's layers (CONTRIBUTING.md): a module imports only from its own
layer or the layers below, never from above."""

import ast
from pathlib import Path

import pytest

import ppo_helpers

LAYERS = {
    "checks": 1,  # pure math
    "advantages": 1,
    "objectives": 1,
    "scaling": 1,
    "stats": 1,
    "ranks": 1,  # what the processes of one run share
    "timing": 1,  # seconds per phase of an iteration
    "cost_model": 1,  # what an iteration costs on W workers
    "seeding": 1,  # where a run's random numbers come from
    "networks": 2,  # what the math acts on
    "envs": 2,
    "rollout": 2,
    "optim": 2,  # one gradient step, minibatches
    "ppo": 3,  # one algorithm step
    "trpo": 3,
    "checkpoint": 4,  # a run
    "run": 4,
    "presets": 5,  # the fronts
    "cli": 5,
    "distributed": 5,
    "outputs": 5,
    "plotting": 5,
    "book": 5,
    "budget": 5,
    "ablation": 5,  # chapter 7's sweep, built on run
}
PACKAGE = Path(ppo_helpers.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every ppo_helpers module that ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "ppo_helpers":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("ppo_helpers."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[1] for a in node.names if a.name.startswith("ppo_")
            }
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_a_module_imports_nothing_from_a_layer_above_it(module):
    above = {
        name
        for name in imported_modules(PACKAGE / f"{module}.py")
        if LAYERS[name] > LAYERS[module]
    }
    assert not above, f"{module} (layer {LAYERS[module]}) imports {above}"
