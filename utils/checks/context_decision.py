"""Self-checks for Lab 5 (context-dependent decisions): the class weights, the ideal observer's
accuracy, the choice selectivity within each context, and the units a choice depends on in both
contexts. Each ``check_*`` takes the student's function and prints one line.

The lab falls back on the library (through :func:`utils.checks.use_or_reference`) until an
exercise is done: :func:`utils.training.weighted_losses.class_weights` for Exercise 5.1, and the
``reference_*`` functions below where the lab's signature differs from any library function.
"""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.context_decision import ideal_observer_accuracy
from ..analysis.selectivity import selectivity
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "as_number",
    "check_choice_selectivity",
    "check_class_weights",
    "check_ideal_accuracy",
    "check_shared_choice_units",
    "reference_choice_selectivity",
    "reference_ideal_accuracy",
    "reference_shared_choice_units",
]


def reference_ideal_accuracy(coh: float, n_steps: int, sigma: float) -> float:
    """Probability that the ideal observer is right at coherence ``coh`` (%), after ``n_steps``
    stimulus steps with per-channel noise ``sigma``: ``Phi(sqrt(n) coh / (100 sqrt(2) sigma))``."""
    return ideal_observer_accuracy([coh], n_steps, sigma)


def reference_choice_selectivity(states: torch.Tensor, choices: torch.Tensor,
                                 contexts: torch.Tensor) -> torch.Tensor:
    """d' of choice 1 against choice 2 for every unit, separately in context 0 and context 1.

    ``states`` (trials, units): the state at each trial's decision step; ``choices`` (trials,)
    in {1, 2}; ``contexts`` (trials,) in {0, 1}. Returns (2, units); row c uses only the trials of
    context c (:func:`utils.analysis.selectivity.selectivity` on the trials as "time")."""
    rows = []
    for c in (0, 1):
        in_c = contexts == c
        rows.append(selectivity(states, in_c & (choices == 1), in_c & (choices == 2)))
    return torch.stack(rows)


def reference_shared_choice_units(d: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` units most selective for the choice in *both* contexts: among the units whose
    d' has the same sign in the two rows of ``d`` (2, units), the largest ``min(|d_0|, |d_1|)``,
    most selective first (a long tensor). Units with opposite signs rank last."""
    same = torch.sign(d[0]) == torch.sign(d[1])
    score = torch.where(same, d.abs().amin(0), torch.full_like(d[0], -float("inf")))
    return torch.argsort(score, descending=True, stable=True)[:k]


def as_number(value, what: str) -> np.ndarray:
    """``value`` (a Python number, or a tensor/array with one element) as a 0-d float array, for
    :func:`~utils.checks.core.expect_close`; a check failure naming ``what`` otherwise."""
    try:
        return np.asarray(float(value))
    except (TypeError, ValueError):
        expect(False, f"{what} should return one number, got {type(value).__name__}")


@self_check("Exercise 5.1: class weights",
            hint="Count how often each class occurs among the labels; a rare class must weigh "
                 "more, in inverse proportion. If the classes were equally frequent, every weight "
                 "would be 1. A class that never occurs cannot contribute anything.")
def check_class_weights(fn):
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])
    got = fn(labels, 3)
    expect_shape(got, (3,), "class_weights(labels, 3)")
    expect_close(got, torch.tensor([8 / 18, 8 / 3, 8 / 3]), "class_weights of [0]*6 + [1, 2]")
    expect_close(fn(torch.tensor([0, 1, 2]), 3), torch.ones(3), "equally frequent classes")
    got = fn(torch.tensor([0, 0, 1]), 3)
    expect(float(got[2]) == 0.0, f"a class that never occurs must get weight 0, got {float(got[2])}")


@self_check("Exercise 5.2: the ideal observer",
            hint="What is the distribution of the summed difference of the two relevant channels "
                 "after n steps (its mean and its variance, with two independent noise sources "
                 "per step)? The observer is right when that sum has the sign of its mean.")
def check_ideal_accuracy(fn):
    expect_close(as_number(fn(50.0, 7, 0.1), "ideal_accuracy"), 1.0, "ideal_accuracy(50, 7, 0.1)",
                 atol=1e-6)
    expect_close(as_number(fn(0.0, 7, 0.1), "ideal_accuracy"), 0.5,
                 "ideal_accuracy(0, 7, 0.1) (no evidence)", atol=1e-6)
    expect_close(as_number(fn(5.0, 7, 0.1), "ideal_accuracy"), reference_ideal_accuracy(5.0, 7, 0.1),
                 "ideal_accuracy(5, 7, 0.1)", atol=1e-4)


@self_check("Exercise 5.3: choice selectivity in each context",
            hint="Split the trials by context first; within one context compare the decision-step "
                 "states of the trials where the network chose 1 with those where it chose 2, with "
                 "chapter 4's d' (mean difference over pooled standard deviation).")
def check_choice_selectivity(fn):
    states = torch.tensor([[2.0, 0.0], [4.0, 0.0], [1.0, 0.0], [3.0, 0.0],
                           [0.0, 5.0], [1.0, 7.0], [5.0, 1.0], [6.0, 3.0]])
    choices = torch.tensor([1, 1, 2, 2, 1, 1, 2, 2])
    contexts = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    got = fn(states, choices, contexts)
    expect_shape(got, (2, 2), "choice_selectivity (8 trials, 2 units)")
    # context 0: unit 0 means 3 vs 2, variances 1 and 1 -> d' = 1; unit 1 silent -> 0
    expect_close(got[0], torch.tensor([1.0, 0.0]), "d' in context 0", atol=1e-3)
    expect_close(got[1], reference_choice_selectivity(states, choices, contexts)[1], "d' in context 1",
                 atol=1e-3)


@self_check("Exercise 5.4: units the choice depends on in both contexts",
            hint="A unit that signals choice 1 in one context and choice 2 in the other does not "
                 "carry one choice signal; among the others, a unit is only as useful as its weaker "
                 "context.")
def check_shared_choice_units(fn):
    d = torch.tensor([[3.0, 2.0, -4.0, 0.5, 2.5],
                      [0.2, 1.8, -3.0, 0.6, -2.5]])
    got = torch.as_tensor(fn(d, 2)).tolist()
    expect(got == [2, 1], f"shared_choice_units(d, 2) should be [2, 1] (unit 0 is selective in one "
                          f"context only, unit 4 flips sign), got {got}")
