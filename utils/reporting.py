"""Result tables for the chapters: "what we reproduced", with our measured numbers beside theirs.

A printed table wider than the website's text column gets cut off; :func:`results_table` returns
Markdown, which the website renders as a real table (and Jupyter and Colab too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from IPython.display import Markdown

__all__ = ["results_table", "mean_sd"]


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


def mean_sd(values, fmt: str = ".2f", n_expected: int | None = None) -> str:
    """``"mean ± sd"`` (sample sd) of the finite ``values``, for a results table.

    Non-finite entries (e.g. a threshold not fitted for a network that did not learn) are left
    out and the count is shown, ``"88.1 ± 4.3 (2/3)"``, out of ``n_expected`` (default: all
    values); one finite value prints alone with its count, none prints ``"-"``.
    """
    x = np.asarray(values, dtype=float).ravel()
    n_all = len(x) if n_expected is None else int(n_expected)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return "-"
    if len(x) == 1:
        return f"{x[0]:{fmt}} (1/{n_all})"
    note = "" if len(x) == n_all else f" ({len(x)}/{n_all})"
    return f"{x.mean():{fmt}} ± {x.std(ddof=1):{fmt}}{note}"
