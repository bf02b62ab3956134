"""Self-checks for Lab 4 (light-GRU): one light-GRU step, the E/I recurrent matrix, the
selectivity index d', the Monte Carlo histogram's data, and the units to lesion. Each ``check_*``
takes the student's function and prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import torch

from ..analysis.selectivity import selectivity
from ..models.light_gru import light_gru_step
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_light_gru_step", "reference_dale_recurrent", "reference_selectivity_index",
    "reference_histogram_values", "reference_units_to_lesion",
    "check_light_gru_step", "check_dale_recurrent", "check_selectivity_index",
    "check_histogram_values", "check_units_to_lesion", "step_cases",
]


def reference_light_gru_step(h, drive_z, drive_h, u_z, u_h):
    """Lab signature of :func:`utils.models.light_gru.light_gru_step`."""
    return light_gru_step(h, drive_z, drive_h, u_z, u_h)


def reference_dale_recurrent(weight: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Dale's-law matrix ``([weight]_+ * (1 - I)) * signs[None, :]`` (what ``LightGRU(dale="rectify")``
    uses for each recurrent matrix)."""
    n = weight.shape[0]
    return torch.relu(weight) * (1.0 - torch.eye(n, dtype=weight.dtype)) * signs[None, :]


def reference_selectivity_index(states: torch.Tensor, when_a: torch.Tensor,
                                when_b: torch.Tensor) -> torch.Tensor:
    """Lab signature of :func:`utils.analysis.selectivity.selectivity` (states (time, units))."""
    return selectivity(states, when_a, when_b)


def reference_histogram_values(indices: torch.Tensor, max_act: torch.Tensor,
                               min_activation: float) -> torch.Tensor:
    """Max-|d'| over comparisons of every (sequence, unit) pair whose unit was active.

    ``indices`` (comparisons, sequences, units), ``max_act`` (sequences, units); returns a 1-D
    tensor in (sequence, unit) order.
    """
    best = indices.abs().amax(dim=0)
    return best[max_act >= min_activation]


def reference_units_to_lesion(max_abs_d: torch.Tensor, max_act: torch.Tensor, k: int,
                              min_activation: float) -> torch.Tensor:
    """Indices of the ``k`` active units (max activation >= ``min_activation``) with the largest
    mean max-|d'|, most selective first (a long tensor)."""
    score = torch.where(max_act >= min_activation, max_abs_d, torch.full_like(max_abs_d, -float("inf")))
    return torch.argsort(score, descending=True, stable=True)[:k]


def step_cases(seed: int = 0, n_cases: int = 3):
    """Random arguments ``(h, drive_z, drive_h, u_z, u_h)`` for light-GRU steps (non-negative h)."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for b, n in [(4, 5), (1, 3), (7, 8)][:n_cases]:
        cases.append((torch.rand(b, n, generator=gen), torch.randn(b, n, generator=gen),
                      torch.randn(b, n, generator=gen), torch.randn(n, n, generator=gen) / n ** 0.5,
                      torch.randn(n, n, generator=gen) / n ** 0.5))
    return cases


@self_check("Exercise 4.1: one light-GRU step",
            hint="Three lines: the gate z (a sigmoid), the candidate (a ReLU), and the mix of old "
                 "state and candidate that z controls. Which of the two does z keep?")
def check_light_gru_step(fn):
    for i, args in enumerate(step_cases(0)):
        got = fn(*args)
        expect_shape(got, tuple(args[0].shape), f"light_gru_step (case {i})")
        expect_close(got, reference_light_gru_step(*args), f"light_gru_step (case {i})")


@self_check("Exercise 4.2: the E/I recurrent matrix",
            hint="Dale's law is about signs you can trust: a flipped sign alone still lets a "
                 "negative parameter make an 'excitatory' weight negative. What must happen to the "
                 "parameter before the sign is applied? And a unit does not synapse on itself.")
def check_dale_recurrent(fn):
    gen = torch.Generator().manual_seed(1)
    signs = torch.tensor([1.0, 1.0, 1.0, -1.0])
    weight = torch.randn(4, 4, generator=gen)
    weight[0, 1] = -0.7   # a negative parameter on an excitatory column
    got = fn(weight, signs)
    expect_shape(got, (4, 4), "dale_recurrent(weight, signs)")
    expect(bool((got[:, :3] >= 0).all()) and bool((got[:, 3:] <= 0).all()),
           "every column must carry its unit's sign: found a weight with the wrong sign "
           "(a sign flip alone is not enough)")
    expect(bool((torch.diagonal(got) == 0).all()), "the diagonal (self-connections) must be zero")
    expect_close(got, reference_dale_recurrent(weight, signs), "dale_recurrent(weight, signs)")


@self_check("Exercise 4.3: the selectivity index d'",
            hint="Means and variances over the steps of each condition only; then the difference "
                 "of means in units of the pooled standard deviation. Work per unit (dim 0 is time).")
def check_selectivity_index(fn):
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [2.0, 0.0], [5.0, 0.0]])
    a = torch.tensor([True, True, False, False, False])
    b = torch.tensor([False, False, True, True, False])
    got = fn(x, a, b)
    expect_shape(got, (2,), "selectivity_index(states (5, 2), ...)")
    expect_close(got[0], 1.0, "d' of a unit with means 2 and 1 and variances 1 and 1", atol=1e-3)
    expect_close(got[1], 0.0, "d' of a silent unit (it must be 0, not NaN)", atol=1e-6)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(40, 6, generator=gen)
    a = torch.rand(40, generator=gen) < 0.3
    expect_close(fn(x, a, ~a), reference_selectivity_index(x, a, ~a), "selectivity_index (random)",
                 atol=1e-4)


@self_check("Exercise 4.4: the Monte Carlo histogram's data",
            hint="For each (sequence, unit): the largest |d'| over the comparisons; then keep only "
                 "the pairs whose unit was active in that sequence.")
def check_histogram_values(fn):
    indices = torch.tensor([[[0.5, -2.0, 0.1]], [[-1.5, 1.0, 0.2]]])   # 2 comparisons, 1 sequence, 3 units
    max_act = torch.tensor([[1.0, 2.0, 0.01]])
    got = fn(indices, max_act, 0.05)
    expect_close(got, torch.tensor([1.5, 2.0]), "histogram_values (third unit silent)")


@self_check("Exercise 4.5: which units to lesion",
            hint="Silent units cannot be 'the most selective' whatever their d' says: leave them "
                 "out, then rank the rest.")
def check_units_to_lesion(fn):
    d = torch.tensor([0.2, 3.0, 5.0, 1.0, 2.5])
    act = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.5])
    got = fn(d, act, 2, 0.05)
    expect(torch.as_tensor(got).tolist() == [1, 4],
           f"units_to_lesion(d, act, k=2) should be [1, 4] (unit 2 is silent), got {got}")
