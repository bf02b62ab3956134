"""Sphinx extension: label the references page "Author et al., Year", as the chapters cite.

The chapters cite author-year (``bibtex_reference_style: author_year``); pybtex's ``plain``
style would number the entries of the references page ([1], [2], ...) instead. This registers
the bibliography style ``plain_author_year``: pybtex's ``plain`` formatting and sorting, with
labels made of the first author's last name ("X", "X and Y" or "X et al.") and the year, and
a, b, ... appended when two entries would get the same label.
"""

from __future__ import annotations

from collections import Counter

import pybtex.plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _last(person) -> str:
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        base = []
        for entry in sorted_entries:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            if not people:
                names = entry.fields.get("title", entry.key)[:30]
            elif len(people) == 1:
                names = _last(people[0])
            elif len(people) == 2:
                names = f"{_last(people[0])} and {_last(people[1])}"
            else:
                names = f"{_last(people[0])} et al."
            base.append(f"{names}, {entry.fields.get('year', 'n.d.')}")
        counts, seen = Counter(base), Counter()
        for label in base:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class PlainAuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabelStyle


def setup(app):
    pybtex.plugin.register_plugin("pybtex.style.formatting", "plain_author_year", PlainAuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
