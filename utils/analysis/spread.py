"""Is a difference between two network variants larger than the seed-to-seed spread? (Chapter 8.)

Each variant is trained with several seeds (initial weights, trials, noise); a number measured on
each network (percent correct, a psychometric threshold) then varies from seed to seed. Chapter 8
calls the difference between two variants' means *larger than the seed-to-seed spread* when it
exceeds twice its standard error,

.. math::

    |\\bar a - \\bar b| > 2\\,\\sqrt{s_a^2 / n_a + s_b^2 / n_b},

with ``s`` the sample standard deviations (``ddof = 1``). With three seeds per variant this is a
coarse screen (roughly a two-sided t-test at the 10-15% level), not proof: a difference that passes
it is worth more seeds, one that fails it is not shown to be absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import as_float_array, check_real

__all__ = ["SpreadComparison", "compare_to_spread"]


@dataclass(frozen=True)
class SpreadComparison:
    """``difference`` = mean(variant) - mean(reference); ``stderr`` its standard error;
    ``exceeds``: ``|difference| > factor * stderr``."""

    difference: float
    stderr: float
    exceeds: bool


def compare_to_spread(reference, variant, *, factor: float = 2.0) -> SpreadComparison:
    """Compare the per-seed values of ``variant`` with those of ``reference`` (1-D, >= 2 each).

    Returns the difference of the means, its standard error
    ``sqrt(var(reference)/n_r + var(variant)/n_v)`` (``ddof=1``) and whether the difference
    exceeds ``factor`` standard errors.
    """
    a = as_float_array("reference", reference, ndim=(1,))
    b = as_float_array("variant", variant, ndim=(1,))
    for name, x in (("reference", a), ("variant", b)):
        if x.size < 2:
            raise ValueError(f"{name} needs at least 2 values (one per seed), got {x.size}")
    factor = check_real("factor", factor, low=0.0, low_open=True)
    diff = float(b.mean() - a.mean())
    se = float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
    return SpreadComparison(diff, se, bool(abs(diff) > factor * se))
