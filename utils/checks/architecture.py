"""Self-checks for Lab 1 (architecture): sign matrix, Dale mask, sparsity mask, constrained step,
dendritic block mask. Each ``check_*`` takes the student's function and prints one line.

Each check compares with the library function of the same name (``utils.constraints.masks``,
:func:`utils.models.constrained_step`, :func:`utils.models.rate.count_constraint_violations`),
which is also what the lab falls back on (through :func:`utils.checks.use_or_reference`) until an
exercise is done; only :func:`reference_sparsity_mask` remains, because the lab's signature differs
from the library's.
"""

from __future__ import annotations

import torch

from ..constraints import masks
from .. import models
from ..models.rate import count_constraint_violations
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_sparsity_mask", "check_sign_matrix", "check_dale_mask", "check_sparsity_mask", "check_constrained_step",
    "check_dendritic_block_mask",
    "check_cell_type_mask", "check_count_violations", "sparsity_mask_cases", "advanced_generator",
]


def reference_sparsity_mask(n_units: int, sparsity: float, generator: torch.Generator) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.masks.sparsity_mask` (square, self-connections allowed),
    drawing from ``generator``."""
    return masks.sparsity_mask(n_units, n_units, sparsity, generator=generator)


@self_check("Exercise 1.1: the sign matrix D",
            hint="D is diagonal, with one entry per unit: which units are excitatory, and how "
                 "many are there? Build the vector of signs first.")
def check_sign_matrix(fn):
    for n, frac in [(5, 0.8), (10, 0.8), (7, 0.5), (100, 0.8)]:
        expect_close(fn(n, frac), masks.sign_matrix(n, frac), f"sign_matrix({n}, {frac})")


@self_check("Exercise 1.2: the Dale mask (1 - I) D",
            hint="Which index of W_ij is the presynaptic unit? Dale's law fixes the sign of "
                 "everything one unit sends; and a unit does not connect to itself.")
def check_dale_mask(fn):
    for n, frac in [(5, 0.8), (6, 0.5), (50, 0.8)]:
        got = fn(n, frac)
        expect_shape(got, (n, n), f"dale_mask({n}, {frac})")
        expect(torch.all(torch.diagonal(torch.as_tensor(got)) == 0),
               f"dale_mask({n}, {frac}) must have zeros on its diagonal (no self-connections)")
        expect_close(got, masks.dale_mask(n, frac), f"dale_mask({n}, {frac})")


def advanced_generator(seed: int, advance: int) -> torch.Generator:
    """A generator seeded with ``seed`` that has then drawn ``advance`` numbers: a state that no
    ``manual_seed`` call produces (grading uses it to catch functions that re-seed)."""
    return _generator(seed, advance)


def _generator(seed: int, advance: int = 0) -> torch.Generator:
    gen = torch.Generator().manual_seed(seed)
    if advance:
        torch.rand(advance, generator=gen)
    return gen


@self_check("Exercise 1.3: the sparsity mask",
            hint="Every random number must come from the generator you are given (most torch "
                 "sampling functions accept a generator argument); never seed or use the global "
                 "random state. Removing exactly k entries means choosing k distinct positions.")
def check_sparsity_mask(fn):
    sparsity_mask_cases(fn)
    outer = torch.get_rng_state()
    gen = _generator(3)
    before = gen.get_state()
    fn(20, 0.5, gen)
    expect(torch.equal(outer, torch.get_rng_state()),
           "sparsity_mask changed the global random state: draw only from the generator argument")
    expect(not torch.equal(before, gen.get_state()),
           "sparsity_mask did not draw any numbers from the generator it was given")


def sparsity_mask_cases(fn) -> None:
    """The value checks of Exercise 1.3 (raising): counts, 0/1 entries, same generator state ->
    same mask, different states -> different masks. The self-check adds the side-effect checks
    (global random state untouched, the generator advanced), which only the student's own kernel
    can see; the hidden check adds generators in states no seed produces."""
    for n, s in [(10, 0.0), (10, 0.3), (40, 0.8)]:
        got = torch.as_tensor(fn(n, s, _generator(0)), dtype=torch.float32)
        expect_shape(got, (n, n), f"sparsity_mask({n}, {s}, generator)")
        expect(bool(torch.all((got == 0) | (got == 1))), "the mask must contain only 0s and 1s")
        n_zero = int((got == 0).sum())
        expect(n_zero == round(s * n * n),
               f"sparsity_mask({n}, {s}, generator) has {n_zero} zeros; expected round({s} * {n}**2) = "
               f"{round(s * n * n)}")
        again = torch.as_tensor(fn(n, s, _generator(0)), dtype=torch.float32)
        expect(torch.equal(got, again), "two generators in the same state must give the same mask")
    a = torch.as_tensor(fn(30, 0.5, _generator(1)), dtype=torch.float32)
    b = torch.as_tensor(fn(30, 0.5, _generator(2)), dtype=torch.float32)
    expect(not torch.equal(a, b), "generators in different states should give different masks")


@self_check("Exercise 1.4: the constrained recurrent step",
            hint="Build the effective weights first (rectify the parameters, then apply the mask, "
                 "the no-self rule and the column signs), then take one Euler step driven by the "
                 "rates [x]_+ of the current state. Rows of x are trials: a batch of rates meets "
                 "W from the right-hand side, transposed.")
def check_constrained_step(fn):
    gen = torch.Generator().manual_seed(3)
    n, b = 6, 4
    weight = torch.randn(n, n, generator=gen)  # negative entries must be rectified away
    signs = masks.dale_signs(n, 0.67)
    mask = masks.sparsity_mask(n, n, 0.3, seed=2)
    x = torch.randn(b, n, generator=gen)
    drive = torch.randn(b, n, generator=gen) * 0.1
    got = fn(x, weight, signs, mask, drive, 0.2)
    expect_close(got, models.constrained_step(x, weight, signs, mask, drive, 0.2),
                 "constrained_step(x, weight, signs, mask, drive, alpha=0.2)")
    got1 = fn(x, weight, signs, mask, drive, 1.0)
    expect_close(got1, models.constrained_step(x, weight, signs, mask, drive, 1.0),
                 "constrained_step(..., alpha=1.0)")


@self_check("Exercise 1.5: the dendritic block mask",
            hint="Row i belongs to unit i's soma and may only see unit i's own branches, which "
                 "sit next to each other. Draw the mask for 2 units with 3 branches on paper first.")
def check_dendritic_block_mask(fn):
    for n, k in [(2, 3), (4, 1), (5, 4)]:
        expect_close(fn(n, k), masks.dendritic_block_mask(n, k),
                     f"dendritic_block_mask({n}, {k})")


@self_check("Exercise 1.6: a cell-type-specific mask",
            hint="Each connection has its own probability, set by the types of its two ends. "
                 "Build the (N, N) matrix of those probabilities from the table without a loop "
                 "(index the table with the type vector, once for rows and once for columns), "
                 "then draw every entry once from the generator.")
def check_cell_type_mask(fn):
    p = torch.tensor([[0.5, 1.0], [0.0, 0.25]])
    types = torch.tensor([0, 1, 0, 1, 1, 0])
    got = torch.as_tensor(fn(types, p, _generator(0)), dtype=torch.float32)
    expect_shape(got, (6, 6), "cell_type_mask(6 units, 2 types)")
    expect(bool(torch.all((got == 0) | (got == 1))), "the mask must contain only 0s and 1s")
    expect(bool(torch.all(torch.diagonal(got) == 0)), "no self-connections: the diagonal must be 0")
    post0, pre1 = types == 0, types == 1
    expect(bool(torch.all(got[post0][:, pre1] == 1)),
           "probabilities[0, 1] = 1: every type-1 unit must connect to every type-0 unit "
           "(row = postsynaptic type, column = presynaptic type)")
    expect(bool(torch.all(got[pre1.nonzero().squeeze(1)][:, post0] == 0)),
           "probabilities[1, 0] = 0: no type-0 unit may connect to a type-1 unit")
    again = torch.as_tensor(fn(types, p, _generator(0)), dtype=torch.float32)
    expect(torch.equal(got, again), "two generators in the same state must give the same mask")
    big_types = torch.arange(300) % 2
    big = torch.as_tensor(fn(big_types, p, _generator(1)), dtype=torch.float32)
    sub = big[big_types == 0][:, big_types == 0]
    frac = float(sub.sum() / (sub.numel() - sub.shape[0]))
    expect(abs(frac - 0.5) < 0.03, f"type 0 -> type 0 connections should occur with probability "
                                   f"0.5; yours occur with frequency {frac:.3f}")


@self_check("Exercise 1.7: a constraint check that can fail",
            hint="Ask where a network can break its rules: in the weights the dynamics use, and "
                 "in the parameters that the projection after each step should have cleaned. "
                 "For each rule (sign of a column, mask, diagonal) decide which of the two "
                 "matrices can show a violation, and count an entry once however many rules it "
                 "breaks.")
def check_count_violations(fn):
    gen = _generator(7)
    n = 8
    signs = masks.dale_signs(n, 0.75)
    mask = masks.sparsity_mask(n, n, 0.3, seed=1, no_self=True)
    weight = torch.rand(n, n, generator=gen) * mask
    effective = masks.effective_weights(weight, signs, mask)
    got = fn(weight, effective, signs, mask)
    expect(int(got) == 0, f"a network that obeys every rule must give 0 violations, got {got}")
    flipped = effective.clone()
    flipped[0, 7] = abs(flipped[0, 7]) + 1.0  # an inhibitory column with a positive entry
    expect(int(fn(weight, flipped, signs, mask)) > 0,
           "an inhibitory unit (column 7) with a positive outgoing weight must be counted")
    negative = weight.clone()
    negative[mask == 1] = -negative[mask == 1]
    expect(int(fn(negative, effective, signs, mask)) > 0,
           "negative stored parameters (the projection step was skipped) must be counted, even "
           "though the effective weights still look fine")
