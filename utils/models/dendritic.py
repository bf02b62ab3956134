"""Two-layer "dendritic" input units (chapter 1).

Each unit receives its input through a small two-layer network of its own: private dendritic
branches with a rectifying nonlinearity, summed by the soma through a block-diagonal matrix
(after Poirazi, Brannon & Mel 2003, who showed that a pyramidal neuron's dendrites behave like a
two-layer network). Used as the input stage of :class:`utils.models.RateRNN` (``n_branches=``) and
of the dendritic-unit light-GRU.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..constraints.masks import dendritic_block_mask
from ..validation import check_int
from .base import check_loaded_buffers, fixed_buffer

__all__ = ["DendriticInput"]


class DendriticInput(nn.Module):
    """Two-layer "dendritic" input stage: each unit is a small two-layer network.

    ``h_hat = relu(W_hat x + b_hat)`` gives every unit ``n_branches`` private dendritic
    sub-units (chapter 1); the soma sums only its own branches through the block-masked
    matrix ``W_soma * M_block`` (eqs. 6 and 17). The mask multiplies the weights in every forward
    pass, so masked entries receive zero gradient and stay exactly zero.
    """

    def __init__(self, n_input: int, n_units: int, n_branches: int = 4) -> None:
        super().__init__()
        n_input = check_int("n_input", n_input, min_value=1)
        n_units = check_int("n_units", n_units, min_value=1)
        n_branches = check_int("n_branches", n_branches, min_value=1)
        self.n_units, self.n_branches = n_units, n_branches
        self.branches = nn.Linear(n_input, n_units * n_branches)
        self.register_buffer("block_mask", dendritic_block_mask(n_units, n_branches))
        self.soma_weight = nn.Parameter(torch.randn(n_units, n_units * n_branches)
                                        / math.sqrt(n_branches))
        with torch.no_grad():
            self.soma_weight.mul_(self.block_mask)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the block mask is fixed by (n_units, n_branches): a loaded one must be that mask
        check_loaded_buffers(state_dict, prefix, {"block_mask": fixed_buffer(
            dendritic_block_mask(self.n_units, self.n_branches), "the block-diagonal dendritic mask")})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def soma_matrix(self) -> torch.Tensor:
        """The masked branch-to-soma matrix (block diagonal)."""
        return self.soma_weight * self.block_mask

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Somatic input of every unit, shape ``(..., n_units)``, from inputs ``u`` of shape
        ``(..., n_input)``."""
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch tensor of shape (..., {self.branches.in_features}), "
                            f"got {type(u).__name__}")
        if u.dim() == 0 or u.shape[-1] != self.branches.in_features:
            raise ValueError(f"u must have shape (..., {self.branches.in_features}) (last axis = "
                             f"n_input), got {tuple(u.shape)}")
        h_hat = torch.relu(self.branches(u))
        return h_hat @ self.soma_matrix().t()
