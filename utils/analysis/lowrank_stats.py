"""Statistics of trained low-rank networks (chapters 10-11, after Dubreuil et al. 2022).

Each unit ``i`` of a rank-R network is a point ``(m_i, n_i, I_i, w_i)`` in "connectivity space";
the theory needs only the statistics of that cloud of points. :func:`connectivity_matrix` lists
the points, :func:`fit_gaussian` fits one Gaussian to them, :func:`resample` draws a new network
from it, :func:`latents` projects states onto the connectivity vectors, and
:func:`evaluate_lowrank` scores a network on held-out trials.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.lowrank import LowRankRNN
from ..seeding import one_thread
from ..tasks.lowrank_tasks import check_lowrank_batch, lowrank_loss, sign_accuracy
from ..validation import check_choice, check_int, check_tensor_shape

__all__ = ["evaluate_lowrank", "connectivity_labels", "connectivity_matrix", "fit_gaussian",
           "resample", "latents"]


@torch.no_grad()
def evaluate_lowrank(model: nn.Module, batch: dict[str, torch.Tensor], loss_steps: int = 15,
                     chunk: int = 250) -> dict[str, float]:
    """Loss and sign accuracy of ``model`` on ``batch`` (no gradients): ``{"loss", "accuracy"}``.

    Trials are run ``chunk`` at a time on one thread, so that large held-out sets of large
    networks need little memory.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_lowrank_batch(batch)
    chunk = check_int("chunk", chunk, min_value=1)
    model.eval()
    parts = []
    with one_thread():
        for start in range(0, batch["inputs"].shape[1], chunk):
            u = batch["inputs"][:, start:start + chunk]
            parts.append(model.output(u) if isinstance(model, LowRankRNN) else model(u)[0])
    z = torch.cat(parts, dim=1)
    return {"loss": lowrank_loss(z, batch["targets"], loss_steps).item(),
            "accuracy": sign_accuracy(z, batch["targets"], loss_steps)}


def _check_model(model: Any) -> None:
    if not isinstance(model, LowRankRNN):
        raise TypeError(f"model must be a LowRankRNN, got {type(model).__name__}")


def connectivity_labels(model: LowRankRNN) -> list[str]:
    """Names of the columns of :func:`connectivity_matrix`, e.g. ``['m', 'n', 'I', 'w']``."""
    _check_model(model)
    R, K = model.rank, model.n_input
    sub = (lambda name, i, k: f"{name}{i + 1}" if k > 1 else name)
    return ([sub("m", r, R) for r in range(R)] + [sub("n", r, R) for r in range(R)]
            + [sub("I", i, K) for i in range(K)] + ["w"])


@torch.no_grad()
def connectivity_matrix(model: LowRankRNN) -> torch.Tensor:
    """Every unit's connectivity loadings, shape (N, 2R + n_input + 1).

    Columns ``[m_1..m_R, n_1..n_R, I_1..I_K, w]`` (see :func:`connectivity_labels`): row i is
    unit i's point in the "connectivity space" whose statistics the theory uses.
    """
    _check_model(model)
    return torch.cat([model.m, model.n, model.I, model.w[:, None]], dim=1).detach().clone()


@torch.no_grad()
def fit_gaussian(model: LowRankRNN) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of the rows of :func:`connectivity_matrix` (float64).

    The covariance is the unbiased sample covariance over the N units.
    """
    loadings = connectivity_matrix(model).double()
    mean = loadings.mean(0)
    centred = loadings - mean
    cov = centred.t() @ centred / (loadings.shape[0] - 1)
    return mean, cov


@torch.no_grad()
def resample(model: LowRankRNN, *, n_units: int | None = None, seed: int = 0,
             mean: torch.Tensor | None = None, cov: torch.Tensor | None = None) -> LowRankRNN:
    """A new network whose units are drawn from the Gaussian fitted to ``model``'s units.

    Args:
        model: the trained network.
        n_units: size of the new network (default: the same N).
        seed: seed of the draw.
        mean, cov: use this Gaussian instead of :func:`fit_gaussian` ``(model)``; shapes (D,)
            and (D, D) with ``D = 2R + n_input + 1``.

    Returns:
        a :class:`LowRankRNN` with the same rank, inputs, tau, dt and ``w_std`` whose
        ``m, n, I, w`` are i.i.d. draws of that Gaussian, one per unit.
    """
    _check_model(model)
    n_units = model.n_units if n_units is None else check_int("n_units", n_units, min_value=2)
    seed = check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    fit_mean, fit_cov = fit_gaussian(model)
    D = fit_mean.numel()
    mean = fit_mean if mean is None else torch.as_tensor(mean, dtype=torch.float64)
    cov = fit_cov if cov is None else torch.as_tensor(cov, dtype=torch.float64)
    check_tensor_shape("mean", mean, (D,))
    check_tensor_shape("cov", cov, (D, D))
    if not torch.allclose(cov, cov.t(), atol=1e-8):
        raise ValueError("cov must be a symmetric matrix")
    # a symmetric square root that tolerates (numerically) singular covariances
    evals, evecs = torch.linalg.eigh(cov)
    if evals.min() < -1e-8 * max(1.0, float(evals.abs().max())):
        raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {evals.min():.3g}")
    root = evecs * evals.clamp(min=0.0).sqrt()
    g = torch.Generator().manual_seed(seed)
    draws = mean + torch.randn(n_units, D, generator=g, dtype=torch.float64) @ root.t()
    new = LowRankRNN(n_units, model.rank, model.n_input, tau=model.tau, dt=model.dt,
                     w_std=model.w_std, seed=seed)
    R, K = model.rank, model.n_input
    draws = draws.to(model.m.dtype)
    new.m.copy_(draws[:, :R])
    new.n.copy_(draws[:, R:2 * R])
    new.I.copy_(draws[:, 2 * R:2 * R + K])
    new.w.copy_(draws[:, -1])
    new.eval()
    return new


def latents(model: LowRankRNN | torch.Tensor, x: torch.Tensor, *, method: str = "projection",
            inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Latent variables ``kappa`` (T, B, R) of the states ``x`` (T, B, N) (chapters 10-11).

    ``model`` is a :class:`~utils.models.LowRankRNN` or directly its left connectivity vectors
    ``m`` (N, R) (a single vector (N,) counts as R = 1).

    ``method="projection"`` (the project's definition): ``kappa_r = x . m_r / |m_r|^2``.
    ``method="exact"``: the coordinates on the ``m_r`` in the least-squares decomposition
    ``x = sum_r kappa_r m_r + sum_k v_k I_k`` (the input vectors ``I`` come from the model, or
    from ``inputs`` (N, K) when ``model`` is a matrix); with ``x`` from
    :meth:`LowRankRNN.forward` it returns the network's own latents ``K`` exactly. The two agree
    up to the overlaps between ``m`` and ``I``.
    """
    check_choice("method", method, ["projection", "exact"])
    if isinstance(model, LowRankRNN):
        if inputs is not None:
            raise ValueError("inputs must be None when model is a LowRankRNN (its own I is used)")
        m, I = model.m.detach(), model.I
    elif isinstance(model, torch.Tensor):
        m = model.detach()
        if m.dim() == 1:
            m = m[:, None]
        if m.dim() != 2:
            raise ValueError(f"m must have shape (N,) or (N, R), got {tuple(model.shape)}")
        I = None if inputs is None else torch.as_tensor(inputs)
        if I is not None:
            I = I[:, None] if I.dim() == 1 else I
            check_tensor_shape("inputs", I, (m.shape[0], None))
        if method == "exact" and I is None:
            raise ValueError("method='exact' needs the input vectors: pass inputs=I (N, K)")
    else:
        raise TypeError(f"model must be a LowRankRNN or a tensor m of shape (N, R), got "
                        f"{type(model).__name__}")
    n_units, rank = m.shape
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != n_units:
        raise ValueError(f"x must be a tensor of shape (time, batch, {n_units}), got "
                         f"{tuple(x.shape) if hasattr(x, 'shape') else type(x).__name__}")
    with torch.no_grad():
        m = m.to(x.dtype)
        if method == "projection":
            return x @ m / (m * m).sum(0)
        basis = torch.cat([m, I.to(x.dtype)], dim=1)  # (N, R + K)
        coords = torch.linalg.lstsq(basis, x.reshape(-1, x.shape[-1]).t()).solution
        return coords[:rank].t().reshape(*x.shape[:2], rank)
