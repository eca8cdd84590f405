"""tools/colab_notebooks.py: each MyST construct as plain Jupyter markdown."""

import json
import re
from pathlib import Path

import pytest
from colab_notebooks import (
    MYST_LEFTOVERS,
    Book,
    Chapter,
    convert,
    load_book,
    myst_leftovers,
)

ROOT = Path(__file__).resolve().parents[1]
URL = "https://book.example/"
REFS = f"{URL}book/references.html"


@pytest.fixture
def chapter():
    book = Book(
        url=URL,
        chapters={"03_x": 3},
        equations={"kl-penalty": ("notebooks/03_x", "3.1")},
        exercises={"ch3-ex-settle": ("notebooks/03_x", "3.2")},
        targets={"seed-blog-post": "book/intro"},
        titles={"book/setup": "Set-up"},
        citations={
            "schulman2017ppo": ("Schulman et al.", "2017"),
            "kakade2002": ("Kakade and Langford", "2002"),
        },
    )
    glue = {
        "ret": {"text/plain": "487.256"},
        "share": {"text/plain": "0.123"},
        "steps": {"text/plain": "104448"},
        "verdict": {"text/plain": "'x'", "text/markdown": "**solved**"},
    }
    return Chapter(book, "notebooks/03_x", glue)


@pytest.mark.parametrize(
    "myst,plain",
    [
        ("{glue:text}`ret:.1f`", "487.3"),
        ("{glue:text}`share:.1%`", "12.3%"),
        ("{glue:text}`steps:,`", "104,448"),
        ("{glue:text}`steps`", "104448"),
        ("{glue:md}`verdict`", "**solved**"),
        ("{eq}`kl-penalty`", f"[(3.1)]({URL}notebooks/03_x.html#equation-kl-penalty)"),
        ("{doc}`chapter 5 <05_gae>`", f"[chapter 5]({URL}notebooks/05_gae.html)"),
        ("{doc}`../book/setup`", f"[Set-up]({URL}book/setup.html)"),
        ("{doc}`../book/notation`", f"[../book/notation]({URL}book/notation.html)"),
        ("{ref}`ch3-ex-settle`",
         f"[Exercise 3.2]({URL}notebooks/03_x.html#ch3-ex-settle)"),
        ("{ref}`the blog <seed-blog-post>`",
         f"[the blog]({URL}book/intro.html#seed-blog-post)"),
        ("{cite:p}`schulman2017ppo`", f"([Schulman et al., 2017]({REFS}))"),
        ("{cite:p}`schulman2017ppo,kakade2002`",
         f"([Schulman et al., 2017; Kakade and Langford, 2002]({REFS}))"),
        ("{cite:t}`schulman2017ppo`", f"Schulman et al. ([2017]({REFS}))"),
    ],
)  # fmt: skip
def test_a_role_becomes_its_rendered_text(chapter, myst, plain):
    assert chapter.cell(f"Before {myst} after.") == f"Before {plain} after."


def test_a_role_broken_across_lines_converts_as_on_one_line(chapter):
    text = "See {ref}`the\nblog <seed-blog-post>` and {ref}`ch3-ex-settle`."
    assert chapter.cell(text) == (
        f"See [the blog]({URL}book/intro.html#seed-blog-post) and "
        f"[Exercise 3.2]({URL}notebooks/03_x.html#ch3-ex-settle)."
    )


def test_an_unknown_role_is_named_in_the_error(chapter):
    with pytest.raises(
        ValueError, match=r"03_x: no plain-markdown form for role \{abbr\}"
    ):
        chapter.cell("{abbr}`PPO`")


def test_a_labelled_equation_carries_its_number_as_a_tag(chapter):
    text = "It is\n\n$$\nL = r A - \\beta\\, KL\n$$ (kl-penalty)\n\nwhere"
    assert chapter.cell(text) == (
        "It is\n\n$$\nL = r A - \\beta\\, KL\n\\tag{3.1}\n$$\n\nwhere"
    )


def test_an_equation_inside_a_list_keeps_the_item_indentation(chapter):
    text = "1. The step:\n\n   $$\n   x = 1\n   $$ (kl-penalty)\n\n   Then."
    out = chapter.cell(text)
    assert "   $$\n   x = 1\n   \\tag{3.1}\n   $$" in out and not myst_leftovers(out)


def test_an_exercise_becomes_a_heading_and_its_solution_folds(chapter):
    text = (
        ":::{exercise}\n:label: ch3-ex-settle\n"
        "For which $p$ does {eq}`kl-penalty` settle?\n:::\n\n"
        ":::{solution} ch3-ex-settle\n:class: dropdown\nFor $p > 1$.\n:::"
    )
    out = chapter.cell(text)
    assert out.startswith("#### Exercise 3.2\n\nFor which $p$ does [(3.1)](")
    assert (
        "<details>\n<summary>Solution to Exercise 3.2</summary>\n\n"
        "For $p > 1$.\n\n</details>" in out
    )


def test_a_gated_solution_folds_its_prose_and_closes_in_the_same_cell(chapter):
    text = (
        ":::{solution-start} ch3-ex-settle\n:class: dropdown\n:::\n\n"
        "The cell below {glue:text}`ret:.0f`."
    )
    out = chapter.cell(text)
    assert out.startswith("<details>\n<summary>Solution to Exercise 3.2</summary>")
    assert "The cell below 487." in out and out.endswith("</details>")
    assert chapter.cell(":::{solution-end}\n:::") == ""


def test_an_admonition_becomes_a_block_quote_with_its_title(chapter):
    text = (
        ":::{admonition} The shared loop, in brief\n:class: note\n"
        "See {cite:p}`schulman2017ppo`.\n\nTwo.\n:::"
    )
    assert chapter.cell(text) == (
        "> **The shared loop, in brief.**\n>\n"
        f"> See ([Schulman et al., 2017]({REFS})).\n>\n> Two."
    )


@pytest.mark.parametrize(
    "kind,sample",
    [("role", "see {eq}`gae` here"), ("directive", "::::{exercise}"),
     ("directive", "```{note}"), ("equation label", "$$ (ch3-adaptive-beta)"),
     ("target", "(seed-blog-post)=")],
)  # fmt: skip
def test_each_leftover_pattern_catches_its_sample(kind, sample):
    assert kind in MYST_LEFTOVERS and myst_leftovers(sample) == [kind]
    assert myst_leftovers("plain [(3.1)](x) and $x$ and `code`") == []


def test_a_whole_chapter_converts_with_no_myst_left_and_every_number_in():
    path = ROOT / "notebooks" / "04_ppo_clipped_objective.ipynb"
    notebook = json.loads(path.read_text())
    converted = convert(notebook, "notebooks/04_ppo_clipped_objective", load_book(ROOT))
    cells = [c for c in converted["cells"] if c["cell_type"] == "markdown"]
    text = "\n".join("".join(c["source"]) for c in cells)
    assert myst_leftovers(text) == []
    assert text.startswith("# 4. PPO's clipped objective")
    assert re.search(r"Exercise 4\.1\n", text) and "\\tag{4.1}" in text
    code = [c for c in converted["cells"] if c["cell_type"] == "code"]
    assert code == [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_a_doc_link_without_text_shows_the_page_title_as_sphinx_does():
    book = load_book(ROOT)
    assert book.titles["book/measure"] == "How we measure"
    assert book.titles["notebooks/05_gae_and_details"].startswith("GAE")
    chapter = Chapter(book, "notebooks/09_lunarlander", {})
    assert chapter.cell("See {doc}`../book/measure`.") == (
        f"See [How we measure]({book.url}book/measure.html)."
    )
