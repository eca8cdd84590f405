"""Book plumbing that notebooks share: glue numbers into prose, the quick flag.

``glue`` stores a value for the prose (``{glue:text}`name:.1f```) when myst-nb is
installed (``make book``, ``make test``) and quietly does nothing without it
(Colab), where the reader sees the printed value in the cell output instead.
"""

from ppo_helpers.budget import is_quick


def glue(name: str, value, display: bool = False) -> None:
    """``myst_nb.glue(name, value, display)`` when myst-nb is importable.

    numpy scalars become Python numbers first: myst-nb would store their repr
    (``np.float64(1.5)``), which a format spec such as ``:.1f`` cannot read.
    """
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


__all__ = ["glue", "is_quick"]
