"""Result tables for the chapters: "what we reproduced", with our measured numbers beside theirs.

A printed table wider than the website's text column gets cut off; :func:`results_table` returns
Markdown, which the website renders as a real table (and Jupyter and Colab too).
"""

from __future__ import annotations

from collections.abc import Sequence

from IPython.display import Markdown

__all__ = ["results_table"]


def _cell(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, (str, int)):
        text = str(value)
    else:
        raise TypeError(f"table cells must be str, int or float, got {type(value).__name__} ({value!r})")
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(rows: Sequence[Sequence[object]],
                  header: Sequence[str] = ("quantity", "paper / source", "ours", "bar")) -> Markdown:
    """A Markdown table (``IPython.display.Markdown``; its ``.data`` is the text).

    Args:
        rows: one sequence per row, as long as ``header``; cells are strings, ints or floats
            (floats shown with 3 significant digits; format them yourself for more).
        header: the column titles.

    Raises:
        TypeError: ``rows`` or ``header`` are not sequences, or a cell has another type.
        ValueError: no columns, or a row of the wrong length.
    """
    if isinstance(header, str) or not isinstance(header, Sequence):
        raise TypeError(f"header must be a sequence of column titles, got {type(header).__name__}")
    if len(header) == 0:
        raise ValueError("header must name at least one column")
    if isinstance(rows, str) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a sequence of rows, got {type(rows).__name__}")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + " --- |" * len(header)]
    for k, row in enumerate(rows):
        if isinstance(row, str) or not isinstance(row, Sequence):
            raise TypeError(f"rows[{k}] must be a sequence of cells, got {type(row).__name__}")
        if len(row) != len(header):
            raise ValueError(f"rows[{k}] has {len(row)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return Markdown("\n".join(lines))
