"""Sphinx extension: the bibliography labels entries as the text cites them.

sphinxcontrib-bibtex cites "Schulman et al. (2017)" in the text (its
``author_year`` reference style) but labels the bibliography with pybtex's
alphabetic codes ("[SWD+17]"). This style labels each entry "Schulman et al.,
2017" instead, so that a reader finds the entry the text names.
"""

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    # Accents in BibTeX syntax ({\'n}) rendered by pybtex's LaTeX decoder.
    from pybtex.richtext import Text

    return str(Text.from_latex(" ".join(person.last_names)))


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [self._who_and_year(entry) for entry in entries]
        # two entries with one label ("Huang et al., 2022") become 2022a and 2022b
        for i, (who, year) in enumerate(labels):
            same = [j for j, label in enumerate(labels) if label == (who, year)]
            suffix = "abcdefghij"[same.index(i)] if len(same) > 1 else ""
            yield f"{who}, {year}{suffix}"

    @staticmethod
    def _who_and_year(entry) -> tuple[str, str]:
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [_surname(p) for p in people]
        if len(names) > 2:
            who = f"{names[0]} et al."
        elif names:
            who = " and ".join(names)
        else:
            who = entry.fields.get("title", entry.key)
        return who, entry.fields.get("year", "n.d.")


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.formatting", "author_year_labels", AuthorYearStyle)
    return {"parallel_read_safe": True}
