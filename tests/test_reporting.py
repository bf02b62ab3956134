"""utils.reporting: the chapters' result tables."""

import pytest

from utils.reporting import results_table


def test_markdown_table_text():
    table = results_table([("loss", "5e-3", 0.00253, "< 5e-3"), ("a|b", "-", 12, "-")])
    lines = table.data.splitlines()
    assert lines[0] == "| quantity | paper / source | ours | bar |"
    assert lines[1] == "| --- | --- | --- | --- |"
    assert lines[2] == "| loss | 5e-3 | 0.00253 | < 5e-3 |"
    assert lines[3] == "| a\\|b | - | 12 | - |"  # a pipe in a cell does not split it


def test_custom_header():
    assert results_table([["x"]], header=["only"]).data == "| only |\n| --- |\n| x |"


@pytest.mark.parametrize("rows, header, error, match", [
    ([("a", "b")], ("one", "two", "three"), ValueError, "rows\\[0\\] has 2 cells"),
    ([("a",)], (), ValueError, "header"),
    ("abc", ("h",), TypeError, "rows"),
    ([("a",)], "h", TypeError, "header"),
    ([[object()]], ("h",), TypeError, "cells"),
    (["ab"], ("h",), TypeError, "rows\\[0\\]"),
])
def test_bad_input(rows, header, error, match):
    with pytest.raises(error, match=match):
        results_table(rows, header=header)


def test_mean_sd_leaves_out_non_finite_values_and_says_how_many():
    import numpy as np

    from utils.reporting import mean_sd

    assert mean_sd([1.0, 2.0, 3.0], ".1f") == "2.0 ± 1.0"
    assert mean_sd([1.0, np.nan, 3.0], ".2f") == "2.00 ± 1.41 (2/3)"
    assert mean_sd([np.nan, 2.0, np.nan], ".1f") == "2.0 (1/3)"
    assert mean_sd([np.nan, np.nan]) == "-"
