"""Colab-ready chapters: the executed notebooks with their MyST as plain markdown.

    python tools/colab_notebooks.py --out colab/

Colab renders a markdown cell as plain Jupyter markdown, so the book's MyST
would show as source there. This writes a copy of every chapter in which:

- ``{glue:text}`name:fmt``` and ``{glue:md}`name``` are the values the chapter's
  stored outputs glued, formatted as the book formats them (myst-nb's own
  ``format_plain_text``);
- ``{eq}`label``` is the equation's number in the rendered book, "(3.1)", and
  ``{ref}``/``{doc}`` are links, all to the rendered page;
- ``{cite:p}``/``{cite:t}`` are "(Schulman et al., 2017)" / "Schulman et al.
  (2017)", linked to the book's references page;
- an exercise is a heading, "Exercise 3.1"; a solution folds into
  ``<details>``; an admonition is a block quote; a labelled display equation
  carries its number as ``\\tag{3.1}``.

MyST is parsed with markdown-it-py and the mdit-py-plugins that myst-parser
itself uses; code cells and outputs are copied unchanged. The book's GitHub
workflow publishes the result to the ``colab`` branch, where the Colab buttons
point (``_static/colab-branch.js``).
"""

import argparse
import copy
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin
from myst_nb.core.variables import format_plain_text
from pybtex.database import parse_file
from pybtex.richtext import Text

ROOT = Path(__file__).resolve().parents[1]
PARSER = (
    MarkdownIt("commonmark")
    .use(myst_role_plugin)
    .use(myst_block_plugin)
    .use(colon_fence_plugin)
    .use(dollarmath_plugin, allow_labels=True, allow_space=True, allow_digits=True)
    .enable("table")
)
GLUE_PREFIX = "application/papermill.record/"
# What MyST left in a markdown cell looks like, for the check that nothing is
# (tests/colab): a role, a directive fence, an equation label, a target.
MYST_LEFTOVERS = {
    "role": r"\{[\w:-]+\}`",
    "directive": r"(?m)^\s*(:::+|```+)\s*\{[\w-]+\}",
    "equation label": r"(?m)\$\$\s*\([\w-]+\)\s*$",
    "target": r"(?m)^\([\w-]+\)=\s*$",
}
ADMONITION_TITLES = {"note": "Note", "warning": "Warning", "tip": "Tip"}


def role_in_source(role) -> re.Pattern:
    """Where a parsed ``myst_role`` token stands in the source, line breaks and all."""
    content = r"\s+".join(re.escape(word) for word in role.content.split(" "))
    return re.compile(rf"\{{{re.escape(role.meta['name'])}\}}`{content}`")


@dataclass
class Book:
    """What the rendered book knows about every page: URLs, numbers, citations.

    ``chapters`` maps a notebook's stem to its chapter number; ``equations`` and
    ``exercises`` map a label to ``(stem, "3.1")``; ``targets`` maps any other
    label to the page (``notebooks/x`` or ``book/y``) that defines it; ``titles``
    maps a page to its title, which a ``{doc}`` role without text shows.
    """

    url: str
    chapters: dict[str, int] = field(default_factory=dict)
    equations: dict[str, tuple[str, str]] = field(default_factory=dict)
    exercises: dict[str, tuple[str, str]] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)

    def page(self, path: str, anchor: str = "") -> str:
        return f"{self.url}{path}.html" + (f"#{anchor}" if anchor else "")


def myst_leftovers(text: str) -> list[str]:
    """The kinds of MyST syntax (``MYST_LEFTOVERS``) still in ``text``."""
    return [
        kind for kind, pattern in MYST_LEFTOVERS.items() if re.search(pattern, text)
    ]


def markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def fence_name(token) -> tuple[str, str]:
    """``("solution-start", "ch4-ex-escape")`` from a fence's ``{name} argument``."""
    match = re.match(r"\{([\w-]+)\}\s*(.*)", token.info.strip())
    return (match.group(1), match.group(2).strip()) if match else ("", "")


def fence_options(token) -> tuple[dict[str, str], str]:
    """A fence's ``:key: value`` options and the body that follows them."""
    lines = token.content.split("\n")
    options = {}
    while lines and re.match(r":[\w-]+:", lines[0]):
        key, _, value = lines.pop(0)[1:].partition(":")
        options[key] = value.strip()
    return options, "\n".join(lines).strip("\n")


def author_year(entry) -> tuple[str, str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [str(Text.from_latex(" ".join(p.last_names))) for p in people]
    who = f"{names[0]} et al." if len(names) > 2 else " and ".join(names)
    return who or entry.fields.get("title", entry.key), entry.fields.get("year", "")


def load_book(root: Path = ROOT) -> Book:
    """Number chapters, equations and exercises as Sphinx does in this book.

    Chapters of the ``numbered`` parts of ``_toc.yml`` count from 1; within a
    chapter, labelled display equations and exercises count from 1 in order.
    """
    config = yaml.safe_load((root / "_config.yml").read_text())
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    book = Book(url=config["html"]["baseurl"].rstrip("/") + "/")
    numbered = [
        c["file"] for p in toc["parts"] if p.get("numbered") for c in p["chapters"]
    ]
    pages = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for page in pages:
        path = root / page
        is_notebook = path.with_suffix(".ipynb").exists()
        texts = (
            markdown_cells(path.with_suffix(".ipynb"))
            if is_notebook
            else [path.with_suffix(".md").read_text()]
        )
        chapter = numbered.index(page) + 1 if page in numbered else None
        if chapter:
            book.chapters[Path(page).name] = chapter
        equation = exercise = 0
        for text in texts:
            tokens = PARSER.parse(text)
            for token, following in zip(tokens, tokens[1:], strict=False):
                if token.type == "heading_open" and token.tag == "h1":
                    book.titles.setdefault(page, following.content)
            for token in tokens:
                if token.type == "math_block_label" and chapter:
                    equation += 1
                    book.equations[token.info] = (page, f"{chapter}.{equation}")
                elif token.type == "colon_fence" and fence_name(token)[0] == "exercise":
                    exercise += 1
                    label = fence_options(token)[0].get("label", "")
                    book.exercises[label] = (page, f"{chapter}.{exercise}")
                elif token.type == "myst_target":
                    book.targets[token.content] = page
    bib = parse_file(root / config["bibtex_bibfiles"][0])
    book.citations = {key: author_year(e) for key, e in bib.entries.items()}
    return book


def glued_values(notebook: dict) -> dict[str, dict]:
    """Every ``glue(name, value)`` of the stored outputs: name -> mime bundle."""
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = output["data"]
                values[name] = {k.removeprefix(GLUE_PREFIX): v for k, v in data.items()}
    return values


@dataclass
class Chapter:
    """The converter's state while it walks one chapter's cells."""

    book: Book
    page: str
    glue: dict[str, dict]
    open_solution: str = ""  # the exercise number of a gated solution

    def role(self, name: str, content: str) -> str:
        """The plain markdown that MyST role ``{name}`content``` renders as."""
        text, _, target = content.rpartition("<")
        text, target = (text.strip(), target.rstrip(">")) if text else ("", content)
        if name in ("glue", "glue:text", "glue:md", "glue:any"):
            key, _, spec = (
                content.rpartition(":") if ":" in content else (content, "", "")
            )
            if key not in self.glue:
                raise ValueError(f"{self.page}: no glued value named {key!r}")
            data = self.glue[key]
            if name == "glue:md":
                return "".join(data.get("text/markdown", data["text/plain"]))
            return format_plain_text("".join(data["text/plain"]), spec)
        if name == "eq":
            page, number = self.book.equations[target]
            return f"[({number})]({self.book.page(page, 'equation-' + target)})"
        if name == "doc":  # a path relative to this page, as Sphinx reads it
            page = posixpath.normpath(
                posixpath.join(posixpath.dirname(self.page), target)
            )
            title = text or self.book.titles.get(page, target)
            return f"[{title}]({self.book.page(page)})"
        if name == "ref":
            if target in self.book.exercises:
                page, number = self.book.exercises[target]
                text = text or f"Exercise {number}"
            else:
                page = self.book.targets[target]
            return f"[{text or target}]({self.book.page(page, target)})"
        if name in ("cite:p", "cite:t"):
            refs = self.book.page("book/references")
            cited = [self.book.citations[key.strip()] for key in content.split(",")]
            if name == "cite:t":
                return "; ".join(f"{who} ([{year}]({refs}))" for who, year in cited)
            inner = "; ".join(f"{who}, {year}" for who, year in cited)
            return f"([{inner}]({refs}))"
        raise ValueError(f"{self.page}: no plain-markdown form for role {{{name}}}")

    def fence(self, token) -> str:
        """The plain markdown for a ``:::{name}`` block (its body converted too)."""
        name, argument = fence_name(token)
        options, body = fence_options(token)
        if name == "exercise":
            _, number = self.book.exercises[options.get("label", "")]
            return f"#### Exercise {number}\n\n{self.markdown(body)}"
        if name in ("solution", "solution-start"):
            _, number = self.book.exercises[argument]
            head = f"\n<details>\n<summary>Solution to Exercise {number}</summary>\n\n"
            if name == "solution":
                return head + self.markdown(body) + "\n\n</details>"
            self.open_solution = number
            return head  # closed at the end of this cell
        if name == "solution-end":
            return ""
        title = ADMONITION_TITLES.get(name, argument or name.capitalize())
        quoted = "\n".join(
            ("> " + line).rstrip() for line in self.markdown(body).split("\n")
        )
        return f"> **{title}.**\n>\n{quoted}"

    def markdown(self, text: str) -> str:
        """``text`` with every MyST role, block and equation label made plain."""
        tokens = PARSER.parse(text)
        lines = text.split("\n")
        roles = [
            child
            for token in tokens
            if token.type == "inline"
            for child in token.children or []
            if child.type == "myst_role"
        ]
        pieces, done = [], 0
        for token in tokens:  # blocks, inside lists too; a fence's body stays raw
            if token.type in ("colon_fence", "math_block_label") and token.map:
                start, end = token.map
                if start < done:  # inside a block already replaced
                    continue
                indent = re.match(r"\s*", lines[start]).group(0)
                block = self.block(token).rstrip("\n").split("\n")
                pieces.append(
                    ("text", "".join(line + "\n" for line in lines[done:start]))
                )
                pieces.append(("block", "\n".join(indent + b for b in block) + "\n\n"))
                done = end
        pieces.append(("text", "\n".join(lines[done:])))
        out = []
        for kind, piece in pieces:
            if kind == "text":
                # the parser joins a role's lines with a space; the source may not
                while roles and (match := role_in_source(roles[0]).search(piece)):
                    role = roles.pop(0)
                    before, piece = piece[: match.start()], piece[match.end() :]
                    out.append(before + self.role(role.meta["name"], role.content))
            out.append(piece)
        return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip("\n")

    def block(self, token) -> str:
        if token.type == "math_block_label":
            _, number = self.book.equations[token.info]
            return f"$$\n{token.content.strip()}\n\\tag{{{number}}}\n$$\n"
        return self.fence(token) + "\n"

    def cell(self, text: str) -> str:
        """One markdown cell; a gated solution's prose is folded into its details."""
        self.open_solution = ""
        converted = self.markdown(text)
        if self.open_solution:
            converted += "\n\n*The solution's code follows.*\n\n</details>"
        return converted


def convert(notebook: dict, page: str, book: Book) -> dict:
    """A copy of ``notebook`` (executed) whose markdown cells are plain markdown.

    The chapter heading gets its number, as in the rendered book; the cell that
    only ended a gated solution goes.
    """
    chapter = Chapter(book, page, glued_values(notebook))
    out = copy.deepcopy(notebook)
    cells = []
    for cell in out["cells"]:
        if cell["cell_type"] == "markdown":
            text = chapter.cell("".join(cell["source"]))
            if not text.strip():
                continue
            number = book.chapters.get(Path(page).name)
            if number and text.startswith("# "):
                text = f"# {number}. {text[2:]}"
            cell["source"] = text.splitlines(keepends=True)
        cells.append(cell)
    out["cells"] = cells
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    book = load_book()
    for stem in book.chapters:
        source = ROOT / "notebooks" / f"{stem}.ipynb"
        notebook = convert(json.loads(source.read_text()), f"notebooks/{stem}", book)
        target = args.out / "notebooks" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        print(f"{target}: {len(notebook['cells'])} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
