"""Book plumbing that notebooks share: glue numbers into prose, counted nouns.

``glue`` stores a value for the prose (``{glue:text}`name:.1f```) when myst-nb is
installed (``make book``, ``make test``). Without it (Colab, plain Jupyter) it
prints ``name = value``, so that a reader sees the number the sentence quotes.
"""

from ppo_helpers.budget import is_quick


def glue(name: str, value, display: bool = False) -> None:
    """``myst_nb.glue(name, value, display)``; without myst-nb, print ``name = value``.

    numpy scalars become Python numbers first: myst-nb would store their repr
    (``np.float64(1.5)``), which a format spec such as ``:.1f`` cannot read.
    """
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {getattr(value, 'data', value)}")
        return
    myst_glue(name, value, display=display)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1: "1 seed", "3 seeds"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


__all__ = ["count", "glue", "is_quick"]
