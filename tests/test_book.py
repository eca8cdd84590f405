"""The book's plumbing: glue without myst-nb prints what the prose quotes."""

import sys

import numpy as np
import pytest
from IPython.display import Markdown

from ppo_helpers.book import count, glue


@pytest.fixture
def without_myst_nb(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails: Colab


def test_glue_without_myst_nb_prints_name_and_value(without_myst_nb, capsys):
    glue("ch1_final_return", np.float64(487.25))
    glue("ch6_seeds_phrase", Markdown("3 seeds"))
    assert capsys.readouterr().out == "ch1_final_return = 487.25\n" + (
        "ch6_seeds_phrase = 3 seeds\n"
    )


def test_glue_with_myst_nb_stores_a_plain_number_and_prints_nothing(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    outputs = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: outputs.append(data)
    glue("x", np.float32(1.5))
    assert capsys.readouterr().out == ""
    assert outputs == [
        {"application/papermill.record/text/plain": "1.5"}
    ]  # not np.float32(1.5)


@pytest.mark.parametrize(
    "n,noun,plural,expected",
    [(1, "seed", None, "1 seed"), (3, "seed", None, "3 seeds"),
     (0, "run", None, "0 runs"), (2, "sitting", None, "2 sittings"),
     (12_000, "step", None, "12,000 steps"), (2, "epoch", None, "2 epochs"),
     (2, "process", "processes", "2 processes")],
)  # fmt: skip
def test_count_says_one_noun_or_its_plural(n, noun, plural, expected):
    assert count(n, noun, plural) == expected
