"""Self-checks for Lab 8 (``08_multisensory_variations``): the input mask of a variant, the
comparison of a difference with the seed-to-seed spread, and the student's own variation.
Each ``check_*`` takes the student's function and prints one line.

The ``reference_*`` functions have exactly the lab's signatures; the lab falls back on them
(through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.spread import compare_to_spread
from ..tasks.multisensory import input_mask
from ..validation import as_numpy
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "BASELINE",
    "VARIANT_KEYS",
    "check_my_variant",
    "check_spread_test",
    "check_variant_input_mask",
    "reference_my_variant",
    "reference_spread_test",
    "reference_variant_input_mask",
    "variant_problems",
]

#: the keys of a variant: excitatory fraction, fractions of units with visual / auditory input,
#: and whether the two modality cues are added (seven input channels instead of five)
VARIANT_KEYS = ("e_frac", "visual", "auditory", "cues")
BASELINE = {"e_frac": 0.8, "visual": 1 / 3, "auditory": 1 / 3, "cues": False}


def reference_variant_input_mask(n_units: int, e_frac: float, visual: float,
                                 auditory: float) -> torch.Tensor:
    """Lab signature of :func:`utils.tasks.multisensory.input_mask` (five channels)."""
    return input_mask(n_units, e_frac, visual=visual, auditory=auditory)


def reference_spread_test(reference, variant) -> tuple[float, float, bool]:
    """Lab signature of :func:`utils.analysis.spread.compare_to_spread`:
    ``(difference, standard error, exceeds two standard errors)``."""
    c = compare_to_spread(as_numpy(reference, float), as_numpy(variant, float))
    return c.difference, c.stderr, c.exceeds


def reference_my_variant() -> dict:
    """The solution's choice: an E/I ratio of 50/50, everything else as in the paper."""
    return {"e_frac": 0.5, "visual": 1 / 3, "auditory": 1 / 3, "cues": False}


def variant_problems(variant) -> list[str]:
    """What is wrong with a variant dict (empty list: it is a valid variant that differs from
    the paper's network)."""
    if not isinstance(variant, dict):
        return [f"return a dict, got {type(variant).__name__}"]
    problems = []
    if set(variant) != set(VARIANT_KEYS):
        return [f"the dict must have exactly the keys {list(VARIANT_KEYS)}, got {sorted(variant)}"]
    e, v, a, cues = (variant[k] for k in VARIANT_KEYS)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (e, v, a)):
        return ["e_frac, visual and auditory must be numbers"]
    if not isinstance(cues, bool):
        problems.append("cues must be True or False")
    if not 0.1 <= e <= 0.9:
        problems.append(f"e_frac={e}: keep it between 0.1 and 0.9 (both populations need units)")
    if v < 0 or a < 0 or v + a > 1 + 1e-9:
        problems.append(f"visual={v}, auditory={a}: fractions must be >= 0 and sum to at most 1")
    elif min(v, a) < 0.1:
        problems.append(f"visual={v}, auditory={a}: give each modality at least 10% of the units, "
                        "or the network cannot hear (or see) at all")
    if not problems and all(abs(variant[k] - BASELINE[k]) < 1e-9 if k != "cues"
                            else variant[k] == BASELINE[k] for k in VARIANT_KEYS):
        problems.append("this is the paper's network: change at least one thing")
    return problems


@self_check("Exercise 8.1: the input mask of a variant",
            hint="Split the excitatory units (the first round(e_frac * n_units)) and the "
                 "inhibitory units separately: in each population the first floor(visual * size) "
                 "units get both visual channels (0 and 2), the next ones up to "
                 "floor((visual + auditory) * size) both auditory channels (1 and 3).")
def check_variant_input_mask(fn):
    for n, e_frac, v, a in [(150, 0.8, 1 / 3, 1 / 3), (150, 0.5, 0.6, 0.3), (20, 0.8, 0.5, 0.5)]:
        got = fn(n, e_frac, v, a)
        what = f"variant_input_mask({n}, {e_frac}, {v:.2f}, {a:.2f})"
        expect_shape(got, (n, 5), what)
        expect(float(as_numpy(got, float)[:, 4].sum()) == 0.0, f"{what}: the start channel reaches no unit")
        expect_close(got, reference_variant_input_mask(n, e_frac, v, a), what)


@self_check("Exercise 8.2: a difference against the seed-to-seed spread",
            hint="The standard error of a mean of n values is s / sqrt(n) (s with ddof=1); the "
                 "variances of two independent means add.")
def check_spread_test(fn):
    cases = [([90.0, 92.0, 91.0], [80.0, 81.0, 82.0]),
             ([90.0, 95.0, 85.0], [88.0, 93.0, 90.0])]
    for ref, var in cases:
        got = fn(np.array(ref), np.array(var))
        expect(len(got) == 3, "return (difference, standard error, exceeds)")
        want = reference_spread_test(ref, var)
        expect(abs(got[0] - want[0]) < 1e-9, f"difference for {ref} vs {var}: got {got[0]:.3f}, "
                                             f"expected {want[0]:.3f} (variant minus reference)")
        expect(abs(got[1] - want[1]) < 1e-9, f"standard error for {ref} vs {var}: got {got[1]:.3f}, "
                                             f"expected {want[1]:.3f}")
        expect(bool(got[2]) == want[2], f"{ref} vs {var}: exceeds should be {want[2]}")


@self_check("Exercise 8.3: your variation",
            hint="Return a dict with the keys e_frac, visual, auditory and cues, e.g. "
                 "{'e_frac': 0.8, 'visual': 0.5, 'auditory': 0.2, 'cues': False}.")
def check_my_variant(fn):
    variant = fn()
    problems = variant_problems(variant)
    expect(not problems, "; ".join(problems))
