"""Statistics of trained low-rank networks (chapters 10-11, after Dubreuil et al. 2022).

Each unit ``i`` of a rank-R network is a point ``(m_i, n_i, I_i, w_i)`` in "connectivity space";
the theory needs only the statistics of that cloud of points. :func:`connectivity_matrix` lists
the points, :func:`fit_gaussian` fits one Gaussian to them, :func:`resample` draws a new network
from it, :func:`latents` projects states onto the connectivity vectors, and
:func:`evaluate_lowrank` scores a network on held-out trials. For the working-memory task
(chapter 11), :func:`accuracy_by_difference` splits the score by ``|f1 - f2|`` and
:func:`resampled_accuracy` scores many resampled networks (plain or exact-overlap draws).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..models.lowrank import LowRankRNN
from ..seeding import one_thread
from ..tasks.lowrank_tasks import check_lowrank_batch, lowrank_loss, sign_accuracy
from ..validation import check_bool, check_choice, check_int, check_tensor_shape

__all__ = ["evaluate_lowrank", "connectivity_labels", "connectivity_matrix", "fit_gaussian",
           "resample", "latents", "PAPER_DIFFERENCES", "accuracy_by_difference",
           "resampled_accuracy"]

#: The frequency differences |f1 - f2| (Hz) on which Dubreuil et al. train and score their
#: working-memory networks (their task code draws pairs with f2 - f1 in +-{8, 16, 24} Hz).
PAPER_DIFFERENCES: tuple[float, ...] = (8.0, 16.0, 24.0)


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
             mean: torch.Tensor | None = None, cov: torch.Tensor | None = None,
             exact: bool = False) -> LowRankRNN:
    """A new network whose units are drawn from the Gaussian fitted to ``model``'s units.

    Args:
        model: the trained network.
        n_units: size of the new network (default: the same N).
        seed: seed of the draw.
        mean, cov: use this Gaussian instead of :func:`fit_gaussian` ``(model)``; shapes (D,)
            and (D, D) with ``D = 2R + n_input + 1``.
        exact: the exact-overlap control (chapter 11). The standard normal draw is whitened
            (centred, then multiplied by the inverse Cholesky factor of its own covariance)
            before it is scaled, so that the new network's sample mean is ``mean`` and its
            sample covariance (normalised by ``n_units``) is ``cov`` exactly: the units are still
            a fresh Gaussian draw, but the overlaps ``(1/N) sum_i a_i b_i`` no longer fluctuate.
            Without ``mean``/``cov`` the target is ``model``'s own mean and covariance
            normalised by N, so the new overlaps equal the trained network's. Needs
            ``n_units > D``.

    Returns:
        a :class:`LowRankRNN` with the same rank, inputs, tau, dt and ``w_std`` whose
        ``m, n, I, w`` are i.i.d. draws of that Gaussian, one per unit.
    """
    _check_model(model)
    n_units = model.n_units if n_units is None else check_int("n_units", n_units, min_value=2)
    seed = check_int("seed", seed, min_value=0, max_value=2**63 - 1)
    check_bool("exact", exact)
    fit_mean, fit_cov = fit_gaussian(model)
    D = fit_mean.numel()
    if exact:
        if n_units <= D:
            raise ValueError(f"n_units must exceed the {D} loadings per unit for an exact-overlap "
                             f"draw (exact=True), got {n_units}")
        if cov is None:  # the trained network's own overlaps: covariance normalised by N
            fit_cov = fit_cov * (model.n_units - 1) / model.n_units
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
    white = torch.randn(n_units, D, generator=g, dtype=torch.float64)
    if exact:
        white = white - white.mean(0)
        chol = torch.linalg.cholesky(white.t() @ white / n_units)
        white = torch.linalg.solve_triangular(chol, white.t(), upper=False).t()
    draws = mean + white @ root.t()
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


def accuracy_by_difference(z: torch.Tensor, f1: Any, f2: Any, loss_steps: int = 5
                           ) -> dict[Any, float]:
    """Sign accuracy of a working-memory readout split by ``|f1 - f2|`` (chapter 11).

    Args:
        z: readout (T, B); the decision is its mean over the last ``loss_steps`` steps.
        f1, f2: (B,) frequencies of each trial.

    Returns:
        ``{d: accuracy}`` for every non-zero difference ``d`` present (float keys, Hz), plus
        ``"all"`` (every trial with ``f1 != f2``) and ``"paper"`` (only the trials whose
        difference is in :data:`PAPER_DIFFERENCES`; nan if there are none).
    """
    if not isinstance(z, torch.Tensor) or z.dim() != 2:
        raise ValueError("z must be a tensor of shape (time, batch)")
    f1 = torch.as_tensor(f1, dtype=torch.float64).flatten()
    f2 = torch.as_tensor(f2, dtype=torch.float64).flatten()
    if f1.shape != (z.shape[1],) or f2.shape != (z.shape[1],):
        raise ValueError(f"f1 and f2 must have one entry per trial ({z.shape[1]}), got "
                         f"{tuple(f1.shape)} and {tuple(f2.shape)}")
    loss_steps = check_int("loss_steps", loss_steps, min_value=1, max_value=z.shape[0])
    diff = f1 - f2
    keep = diff != 0
    if not keep.any():
        raise ValueError("f1 and f2 must differ on at least one trial")
    correct = torch.sign(z[-loss_steps:].mean(0).double()) == torch.sign(diff)
    out: dict[Any, float] = {}
    for d in sorted(set(diff[keep].abs().tolist())):
        out[float(d)] = correct[diff.abs() == d].double().mean().item()
    out["all"] = correct[keep].double().mean().item()
    paper = torch.zeros_like(keep)
    for d in PAPER_DIFFERENCES:
        paper |= diff.abs() == d
    out["paper"] = correct[paper].double().mean().item() if paper.any() else float("nan")
    return out


@torch.no_grad()
def resampled_accuracy(model: LowRankRNN, batch: dict[str, torch.Tensor], *,
                       n_units: int | None = None, seeds: Sequence[int] = tuple(range(10)),
                       exact: bool = False, loss_steps: int = 5) -> dict[Any, np.ndarray]:
    """Working-memory sign accuracy of networks resampled from ``model`` (chapter 11).

    For each seed, :func:`resample` ``(model, n_units=n_units, seed=seed, exact=exact)`` is run on
    ``batch`` (e.g. :func:`utils.tasks.lowrank_tasks.working_memory_grid`, with ``f1`` and
    ``f2``) and scored by :func:`accuracy_by_difference`.

    Returns:
        ``{key: array over seeds}`` with the keys of :func:`accuracy_by_difference` (each
        ``|f1 - f2|`` in Hz, ``"all"`` and ``"paper"``).
    """
    _check_model(model)
    check_lowrank_batch(batch)
    if "f1" not in batch or "f2" not in batch:
        raise TypeError("batch must be a working-memory batch with 'f1' and 'f2' "
                        "(working_memory_batch or working_memory_grid)")
    seeds = [check_int("seeds[...]", s, min_value=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one draw")
    scores = []
    with one_thread():
        for seed in seeds:
            net = resample(model, n_units=n_units, seed=seed, exact=exact)
            scores.append(accuracy_by_difference(net.output(batch["inputs"]), batch["f1"],
                                                 batch["f2"], loss_steps))
    return {key: np.array([s[key] for s in scores]) for key in scores[0]}
