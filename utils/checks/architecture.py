"""Self-checks for Lab 1 (architecture): sign matrix, Dale mask, sparsity mask, constrained step,
dendritic block mask. Each ``check_*`` takes the student's function and prints one line.

The ``reference_*`` functions have exactly the lab's signatures and are what the lab falls back
on (through :func:`utils.checks.use_or_reference`) until an exercise is done.
"""

from __future__ import annotations

import torch

from ..constraints import masks
from .. import models
from .core import expect, expect_close, expect_shape, self_check

__all__ = [
    "reference_sign_matrix", "reference_dale_mask", "reference_sparsity_mask",
    "reference_constrained_step", "reference_dendritic_block_mask",
    "check_sign_matrix", "check_dale_mask", "check_sparsity_mask", "check_constrained_step",
    "check_dendritic_block_mask",
]


def reference_sign_matrix(n_units: int, e_frac: float) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.masks.sign_matrix`."""
    return masks.sign_matrix(n_units, e_frac)


def reference_dale_mask(n_units: int, e_frac: float) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.masks.dale_mask`."""
    return masks.dale_mask(n_units, e_frac)


def reference_sparsity_mask(n_units: int, sparsity: float, seed: int) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.masks.sparsity_mask` (square, self-connections allowed)."""
    return masks.sparsity_mask(n_units, n_units, sparsity, seed=seed)


def reference_constrained_step(x, weight, signs, mask, drive, alpha):
    """Lab signature of :func:`utils.models.constrained_step`."""
    return models.constrained_step(x, weight, signs, mask, drive, alpha)


def reference_dendritic_block_mask(n_units: int, n_branches: int) -> torch.Tensor:
    """Lab signature of :func:`utils.constraints.masks.dendritic_block_mask`."""
    return masks.dendritic_block_mask(n_units, n_branches)


@self_check("Exercise 1.1: the sign matrix D",
            hint="D is diagonal: +1 for the first round(e_frac * n_units) units (excitatory), "
                 "-1 for the rest (inhibitory). torch.diag turns a vector into a diagonal matrix.")
def check_sign_matrix(fn):
    for n, frac in [(5, 0.8), (10, 0.8), (7, 0.5), (100, 0.8)]:
        expect_close(fn(n, frac), reference_sign_matrix(n, frac), f"sign_matrix({n}, {frac})")


@self_check("Exercise 1.2: the Dale mask (1 - I) D",
            hint="Start from a matrix of ones, zero the diagonal (no self-connections), then "
                 "give every COLUMN j the sign of presynaptic unit j.")
def check_dale_mask(fn):
    for n, frac in [(5, 0.8), (6, 0.5), (50, 0.8)]:
        got = fn(n, frac)
        expect_shape(got, (n, n), f"dale_mask({n}, {frac})")
        expect(torch.all(torch.diagonal(torch.as_tensor(got)) == 0),
               f"dale_mask({n}, {frac}) must have zeros on its diagonal (no self-connections)")
        expect_close(got, reference_dale_mask(n, frac), f"dale_mask({n}, {frac})")


@self_check("Exercise 1.3: the sparsity mask",
            hint="Remove exactly round(sparsity * n_units**2) connections, chosen at random with "
                 "torch.Generator().manual_seed(seed) so the same seed gives the same mask.")
def check_sparsity_mask(fn):
    for n, s in [(10, 0.0), (10, 0.3), (40, 0.8)]:
        got = torch.as_tensor(fn(n, s, 0), dtype=torch.float32)
        expect_shape(got, (n, n), f"sparsity_mask({n}, {s}, 0)")
        expect(bool(torch.all((got == 0) | (got == 1))), "the mask must contain only 0s and 1s")
        n_zero = int((got == 0).sum())
        expect(n_zero == round(s * n * n),
               f"sparsity_mask({n}, {s}, 0) has {n_zero} zeros; expected round({s} * {n}**2) = "
               f"{round(s * n * n)}")
        again = torch.as_tensor(fn(n, s, 0), dtype=torch.float32)
        expect(torch.equal(got, again), "the same seed must give the same mask")
    a = torch.as_tensor(fn(30, 0.5, 1), dtype=torch.float32)
    b = torch.as_tensor(fn(30, 0.5, 2), dtype=torch.float32)
    expect(not torch.equal(a, b), "different seeds should give different masks")


@self_check("Exercise 1.4: the constrained recurrent step",
            hint="W = relu(weight) * mask * (1 - I) * signs[None, :]; then "
                 "x_new = (1 - alpha) * x + alpha * relu(x) @ W.T + drive.")
def check_constrained_step(fn):
    gen = torch.Generator().manual_seed(3)
    n, b = 6, 4
    weight = torch.randn(n, n, generator=gen)  # negative entries must be rectified away
    signs = masks.dale_signs(n, 0.67)
    mask = masks.sparsity_mask(n, n, 0.3, seed=2)
    x = torch.randn(b, n, generator=gen)
    drive = torch.randn(b, n, generator=gen) * 0.1
    got = fn(x, weight, signs, mask, drive, 0.2)
    expect_close(got, reference_constrained_step(x, weight, signs, mask, drive, 0.2),
                 "constrained_step(x, weight, signs, mask, drive, alpha=0.2)")
    got1 = fn(x, weight, signs, mask, drive, 1.0)
    expect_close(got1, reference_constrained_step(x, weight, signs, mask, drive, 1.0),
                 "constrained_step(..., alpha=1.0)")


@self_check("Exercise 1.5: the dendritic block mask",
            hint="Row i has ones in columns i*n_branches ... (i+1)*n_branches - 1; "
                 "torch.repeat_interleave or a Kronecker product (torch.kron) does it in one line.")
def check_dendritic_block_mask(fn):
    for n, k in [(2, 3), (4, 1), (5, 4)]:
        expect_close(fn(n, k), reference_dendritic_block_mask(n, k),
                     f"dendritic_block_mask({n}, {k})")
