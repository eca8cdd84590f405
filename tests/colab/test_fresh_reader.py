"""A fresh Colab reader, simulated: only the notebook, its setup cell does the rest.

The notebook is the one the Colab button opens: the chapter converted by
``tools/colab_notebooks.py``, whose markdown must hold no MyST and whose
sentences carry every glued number.

A new virtual environment in a temporary folder gets what Colab already has
(torch, a Jupyter kernel), nothing of this project. A fake ``google.colab`` is
imported at kernel start, as on Colab, so the notebook's unchanged setup cell
runs ``pip install git+<BOOK_REPOSITORY>``; git's ``insteadOf`` points that URL at
this repository, so pip installs ``ppo_helpers`` exactly as it would from GitHub.
Then the notebook runs in quick mode. Slow (a few minutes): ``make colab``.
"""

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from colab_notebooks import convert, load_book, myst_leftovers

ROOT = Path(__file__).resolve().parents[2]
TORCH_WHERE = "import torch; print(torch.__file__, torch.__version__)"
NOTEBOOK = ROOT / os.environ.get("COLAB_NOTEBOOK", "notebooks/09_lunarlander.ipynb")


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{cmd[:4]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.processes  # a venv, pip and a kernel
@pytest.mark.skipif(not NOTEBOOK.exists(), reason=f"{NOTEBOOK.name} not written yet")
def test_notebook_runs_on_a_fresh_colab_like_runtime(tmp_path):
    setup_cell = next(
        "".join(c["source"])
        for c in json.loads(NOTEBOOK.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    repository = re.search(r'BOOK_REPOSITORY = "([^"]+)"', setup_cell).group(1)

    # What Colab shows: no MyST left in any markdown cell (the converter raises
    # on a glued name that the stored outputs lack).
    converted = convert(
        json.loads(NOTEBOOK.read_text()), f"notebooks/{NOTEBOOK.stem}", load_book(ROOT)
    )
    left = {
        kind
        for cell in converted["cells"]
        if cell["cell_type"] == "markdown"
        for kind in myst_leftovers("".join(cell["source"]))
    }
    assert not left, f"MyST left in the Colab notebook: {left}"

    reader = tmp_path / "reader"
    reader.mkdir()
    (reader / NOTEBOOK.name).write_text(json.dumps(converted))

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    # What Colab brings: its own torch and a kernel. Same versions as here.
    colab_has = [
        f"torch=={version('torch')}",
        f"ipykernel=={version('ipykernel')}",
        f"nbclient=={version('nbclient')}",
    ]
    run([str(python), "-m", "pip", "install", "-q", *colab_has])

    ipython_dir = tmp_path / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401\n")
    fake = tmp_path / "fake_colab" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""Stands in for Colab\'s module."""\n')
    (fake.parent / "__init__.py").write_text("")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{ROOT.as_uri()}"]\n\tinsteadOf = {repository}\n')

    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))
        },
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "IPYTHONDIR": str(ipython_dir),
        "PYTHONPATH": str(fake.parent.parent),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "PPO_BOOK_QUICK": "1",
        "OMP_NUM_THREADS": "1",
        "HOME": str(tmp_path),
    }
    torch_before = run([str(python), "-c", TORCH_WHERE], env=env).stdout
    execute = (
        "import sys, nbformat, nbclient; nb = nbformat.read(sys.argv[1], 4); "
        "nbclient.NotebookClient(nb, timeout=600).execute(); "
        "nbformat.write(nb, sys.argv[1])"
    )
    run([str(python), "-c", execute, NOTEBOOK.name], cwd=reader, env=env, timeout=1500)
    installed = run(
        [str(python), "-c", "import ppo_helpers; print(ppo_helpers.__file__)"],
        cwd=reader,
        env=env,
    ).stdout
    assert str(venv) in installed, (
        f"ppo_helpers should come from the setup cell's install, got {installed}"
    )
    torch_after = run([str(python), "-c", TORCH_WHERE], env=env).stdout
    assert torch_after == torch_before, "the setup cell must not reinstall torch"
    executed = json.loads((reader / NOTEBOOK.name).read_text())
    outputs = [
        o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]
    ]
    assert not [o for o in outputs if o["output_type"] == "error"]
