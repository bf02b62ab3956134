"""Principal component analysis of network states (chapter 4; reused in Part III).

Fit on the states of a long sequence, then project single trials onto the leading components to
draw their trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..validation import check_int

__all__ = ["PCA", "fit_pca"]


@dataclass
class PCA:
    """A fitted PCA: ``mean`` (units,), ``components`` (k, units) (orthonormal rows, by decreasing
    variance), ``explained_variance_ratio`` (k,) (fraction of the total variance per component)."""

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance_ratio: torch.Tensor

    def transform(self, states: torch.Tensor) -> torch.Tensor:
        """Project states (..., units) onto the components: (..., k)."""
        if not isinstance(states, torch.Tensor) or states.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"states must be a tensor of shape (..., {self.mean.shape[0]})")
        return (states.to(self.mean.dtype) - self.mean) @ self.components.t()


def fit_pca(states: torch.Tensor, n_components: int = 2) -> PCA:
    """Fit a PCA on states of shape (samples, units) or (time, batch, units) (all steps pooled)."""
    if not isinstance(states, torch.Tensor) or states.dim() not in (2, 3):
        raise ValueError("states must be a tensor of shape (samples, units) or (time, batch, units)")
    x = states.detach().reshape(-1, states.shape[-1]).to(torch.float64)
    n_components = check_int("n_components", n_components, min_value=1,
                             max_value=min(x.shape))
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    var = s ** 2
    total = var.sum()
    ratio = var[:n_components] / total if total > 0 else torch.zeros(n_components, dtype=x.dtype)
    return PCA(mean, vh[:n_components].clone(), ratio)
