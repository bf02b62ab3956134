"""Connectivity masks: Dale's-law signs, sparsity masks and dendritic block masks (chapter 1).

Conventions (used throughout the course):

- A recurrent weight ``W[i, j]`` is the connection *from* unit ``j`` *to* unit ``i``
  (``x_i <- sum_j W[i, j] r_j``). A presynaptic neuron's sign is therefore the sign of its
  **column**, and Dale's law says every column has one sign.
- The first ``n_excitatory(n, e_frac)`` units are excitatory, the rest inhibitory.
- Masks are float tensors of zeros and ones (or of -1/0/+1 for the signed Dale mask).
"""

from __future__ import annotations

import torch

from ..validation import check_int, check_real, check_tensor_shape

__all__ = [
    "n_excitatory",
    "dale_signs",
    "sign_matrix",
    "dale_mask",
    "sparsity_mask",
    "dendritic_block_mask",
    "effective_weights",
    "cell_type_mask",
    "single_sign_fraction",
]


def n_excitatory(n_units: int, e_frac: float = 0.8) -> int:
    """Number of excitatory units among ``n_units`` for an excitatory fraction ``e_frac``.

    Rounds to the nearest integer but keeps at least one unit of each type, so that a network
    always has both cell types. ``e_frac`` must lie in the open interval (0, 1).
    """
    n_units = check_int("n_units", n_units, min_value=2)
    e_frac = check_real("e_frac", e_frac, low=0.0, high=1.0, low_open=True, high_open=True)
    return int(min(max(round(e_frac * n_units), 1), n_units - 1))


def dale_signs(n_units: int, e_frac: float = 0.8) -> torch.Tensor:
    """Vector of presynaptic signs: ``+1`` for the excitatory units, ``-1`` for the inhibitory."""
    n_e = n_excitatory(n_units, e_frac)
    signs = torch.ones(n_units)
    signs[n_e:] = -1.0
    return signs


def sign_matrix(n_units: int, e_frac: float = 0.8) -> torch.Tensor:
    """The diagonal sign matrix ``D = diag(+1, ..., +1, -1, ..., -1)`` of the lecture.

    Right-multiplying a non-negative weight matrix by ``D`` flips the sign of the inhibitory
    *columns*: ``W = [W+]_+ D``.
    """
    return torch.diag(dale_signs(n_units, e_frac))


def dale_mask(n_units: int, e_frac: float = 0.8) -> torch.Tensor:
    """Signed mask: ``(1 - I) D``, i.e. column signs and no self-connections (chapter 1)."""
    signs = dale_signs(n_units, e_frac)
    return (1.0 - torch.eye(n_units)) * signs[None, :]


def sparsity_mask(n_post: int, n_pre: int | None = None, sparsity: float = 0.0, *,
                  seed: int = 0, no_self: bool = False,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Fixed random 0/1 mask in which a fraction ``sparsity`` of the connections is absent.

    Exactly ``round(sparsity * number_of_candidates)`` connections are removed, chosen with a
    private random generator seeded by ``seed`` (so the mask never disturbs the global RNG).

    Args:
        n_post: number of rows (postsynaptic units).
        n_pre: number of columns (presynaptic units); defaults to ``n_post``.
        sparsity: fraction of absent connections, in [0, 1).
        seed: seed of the mask's own random generator.
        no_self: if True (square masks only), the diagonal is also zero and does not count
            among the candidates.
        generator: draw from this generator instead of a new one seeded by ``seed`` (it is
            advanced; ``seed`` is then ignored).
    """
    n_post = check_int("n_post", n_post, min_value=1)
    n_pre = n_post if n_pre is None else check_int("n_pre", n_pre, min_value=1)
    sparsity = check_real("sparsity", sparsity, low=0.0, high=1.0, high_open=True)
    seed = check_int("seed", seed, min_value=0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if no_self and n_pre != n_post:
        raise ValueError(f"no_self=True needs a square mask, got n_post={n_post}, n_pre={n_pre}")
    candidates = torch.ones(n_post, n_pre)
    if no_self:
        candidates.fill_diagonal_(0.0)
    idx = candidates.flatten().nonzero().squeeze(1)
    n_remove = int(round(sparsity * idx.numel()))
    gen = torch.Generator().manual_seed(seed) if generator is None else generator
    remove = idx[torch.randperm(idx.numel(), generator=gen)[:n_remove]]
    mask = candidates.flatten()
    mask[remove] = 0.0
    return mask.view(n_post, n_pre)


def cell_type_mask(types, probabilities, generator: torch.Generator) -> torch.Tensor:
    """Random 0/1 mask whose connection probability depends on the cell types (chapter 1).

    Entry ``(i, j)`` (from unit ``j`` to unit ``i``) is 1 with probability
    ``probabilities[types[i], types[j]]``, independently, and the diagonal is 0 (no
    self-connections): the type-specific connectivity of a cortical area measured by Jiang et al.
    (2015), as used by multi-type network models such as Liu & Wang's (2024).

    Args:
        types: integer type index of every unit, shape ``(N,)`` (any order of the types).
        probabilities: ``(K, K)`` table, row = postsynaptic type, column = presynaptic type,
            entries in [0, 1].
        generator: the random generator to draw from (advanced by the call).
    """
    types = torch.as_tensor(types)
    if types.dim() != 1 or types.dtype.is_floating_point or types.numel() < 1:
        raise ValueError(f"types must be a 1-D sequence of integer type indices, got shape "
                         f"{tuple(types.shape)} and dtype {types.dtype}")
    p = torch.as_tensor(probabilities, dtype=torch.float32)
    if p.dim() != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"probabilities must be a square (K, K) table, got shape {tuple(p.shape)}")
    if not torch.all((p >= 0) & (p <= 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if int(types.min()) < 0 or int(types.max()) >= p.shape[0]:
        raise ValueError(f"types must be indices in 0..{p.shape[0] - 1}, got values from "
                         f"{int(types.min())} to {int(types.max())}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    types = types.long()
    prob = p[types][:, types]
    mask = (torch.rand(prob.shape, generator=generator) < prob).float()
    mask.fill_diagonal_(0.0)
    return mask


def dendritic_block_mask(n_units: int, n_branches: int) -> torch.Tensor:
    """Block mask from dendritic branches to their own soma (chapter 1; Poirazi et al. 2003).

    Row ``i`` (unit ``i``) has ones in columns ``i*n_branches ... (i+1)*n_branches - 1`` and zeros
    elsewhere, so each unit sees only its own ``n_branches`` dendritic sub-units. Shape
    ``(n_units, n_units * n_branches)``.
    """
    n_units = check_int("n_units", n_units, min_value=1)
    n_branches = check_int("n_branches", n_branches, min_value=1)
    return torch.repeat_interleave(torch.eye(n_units), n_branches, dim=1)


def effective_weights(weight: torch.Tensor, signs: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dale's-law weights ``W = ([W+]_+ * M) D`` with zero diagonal.

    Args:
        weight: the free parameters ``W+`` (any sign), shape ``(N, N)``.
        signs: presynaptic signs (``+1``/``-1``), shape ``(N,)``: the diagonal of ``D``.
        mask: optional 0/1 sparsity mask, shape ``(N, N)``.

    Returns:
        The effective recurrent weights: rectified, masked, self-connections removed and every
        column carrying its unit's sign. Differentiable with respect to ``weight``.

    Raises:
        ValueError: wrong shapes, ``signs`` not all +1 or -1, or ``mask`` not all 0 or 1.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"weight must be a square 2-D tensor, got "
                         f"{tuple(weight.shape) if hasattr(weight, 'shape') else type(weight).__name__}")
    n = weight.shape[0]
    check_tensor_shape("signs", signs, (n,))
    if not bool(((signs == 1) | (signs == -1)).all()):
        raise ValueError(f"signs must be +1 or -1 for every unit, got values "
                         f"{sorted(set(signs.detach().flatten().tolist()))[:5]}")
    w = torch.relu(weight) * (1.0 - torch.eye(n, dtype=weight.dtype, device=weight.device))
    if mask is not None:
        check_tensor_shape("mask", mask, (n, n))
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold only 0 (absent) and 1 (present) entries")
        w = w * mask
    return w * signs[None, :]


def single_sign_fraction(weights: torch.Tensor) -> float:
    """Fraction of presynaptic units (columns of ``W[post, pre]``) whose non-zero outgoing weights
    all share one sign: 1.0 for any network that obeys Dale's law (chapter 1).

    A column of zeros counts as single-signed. Raises :class:`ValueError` for a non-square matrix
    or non-finite weights.
    """
    check_tensor_shape("weights", weights, (None, None))
    w = torch.as_tensor(weights).detach()
    if w.shape[0] != w.shape[1]:
        raise ValueError(f"weights must be a square (N, N) matrix, got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError("weights must be finite (no nan or inf)")
    mixed = (w > 0).any(dim=0) & (w < 0).any(dim=0)
    return float((~mixed).float().mean())
