"""Penalties of chapter 2 (the cost function) and a clipped training step.

The total cost of a network is its task cost plus weighted penalties for un-brain-like solutions,

.. math::

    J = J_{task} + \\beta_{L1} \\sum_{ij} |W_{ij}| + \\beta_{rate} \\sum_{t,i} r_{i,t}^2
        + \\beta_{wire} \\sum_{ij} |W_{ij}|\\, d_{ij}\\, [C_{ij}],

with the optional communicability weighting ``C`` of Achterberg et al. (2023). The penalties act
on the **effective** recurrent weights (``model.recurrent_weights()``), the synapses the network
actually uses, not on the free parameters: under Dale's law a negative parameter is a silent
synapse (rectified to zero), and a masked parameter does not exist, so neither should cost
anything.

Gradient clipping (chapter 2) bounds the size of each update, a crude model of the
physical limit on how much a synapse can change at once: :func:`clip_by_norm`,
:func:`clip_by_value` and :func:`clipped_sgd_step`.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..validation import check_bool, check_choice, check_real, check_tensor_shape

__all__ = [
    "l1_weight_penalty",
    "rate_penalty",
    "wiring_penalty",
    "penalised_loss",
    "near_zero_fraction",
    "l1_proximal_step",
    "PenaltyRun",
    "fit_penalised",
]

_REDUCTIONS = ["sum", "mean"]


def _check_matrix(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor (post, pre), got shape {tuple(value.shape)}")
    return value


def l1_weight_penalty(weights: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """L1 norm of a weight matrix: ``sum_ij |W_ij|`` (``reduction="mean"``: divided by its size).

    Args:
        weights: the effective recurrent weights ``W[post, pre]`` (2-D tensor).
        reduction: ``"sum"`` (the lecture's form) or ``"mean"``.

    Returns:
        A scalar tensor, differentiable with respect to ``weights``.
    """
    weights = _check_matrix("weights", weights)
    check_choice("reduction", reduction, _REDUCTIONS)
    total = weights.abs().sum()
    return total / weights.numel() if reduction == "mean" else total


def rate_penalty(rates: torch.Tensor, reduction: str = "mean",
                 valid: torch.Tensor | None = None) -> torch.Tensor:
    """Squared firing rates: the L2 activity penalty.

    Args:
        rates: tensor of shape (time, batch, units).
        reduction: ``"sum"``: the lecture's per-trial cost ``sum_t sum_i r_{i,t}^2``, averaged
            over the trials of the batch; ``"mean"``: the average of ``r^2`` over time, trials and
            units (the same thing divided by ``T * N``, so that a coefficient does not depend on
            trial length or network size).
        valid: optional bool tensor (time, batch); padded steps after a trial's end are ignored.

    Returns:
        A scalar tensor, differentiable with respect to ``rates``.
    """
    if not isinstance(rates, torch.Tensor):
        raise TypeError(f"rates must be a torch.Tensor, got {type(rates).__name__}")
    if rates.dim() != 3:
        raise ValueError(f"rates must have shape (time, batch, units), got {tuple(rates.shape)}")
    check_choice("reduction", reduction, _REDUCTIONS)
    sq = rates.pow(2)
    if valid is not None:
        check_tensor_shape("valid", valid, tuple(rates.shape[:2]))
        w = valid.to(rates.dtype).unsqueeze(-1)
        sq = sq * w
        n_steps = w.sum()
    else:
        n_steps = torch.tensor(float(rates.shape[0] * rates.shape[1]))
    if reduction == "sum":
        return sq.sum() / rates.shape[1]
    return sq.sum() / (n_steps.clamp(min=1.0) * rates.shape[2])


def wiring_penalty(weights: torch.Tensor, distances: torch.Tensor,
                   communicability: torch.Tensor | None = None,
                   reduction: str = "sum") -> torch.Tensor:
    """Wiring cost ``sum_ij |W_ij| d_ij`` (times ``C_ij`` if a communicability matrix is given).

    Args:
        weights: effective recurrent weights ``W[post, pre]``, shape (N, N).
        distances: distances ``d_ij`` between the units' positions, shape (N, N), non-negative.
        communicability: optional weighting ``C`` (N, N), e.g. from
            :func:`utils.constraints.spatial.communicability` of the current weights (Achterberg et al. 2023).
            It is used as a fixed weighting: no gradient flows through it.
        reduction: ``"sum"`` or ``"mean"`` (divided by N*N).

    Returns:
        A scalar tensor, differentiable with respect to ``weights``.
    """
    weights = _check_matrix("weights", weights)
    check_tensor_shape("distances", distances, tuple(weights.shape))
    check_choice("reduction", reduction, _REDUCTIONS)
    d = torch.as_tensor(distances, dtype=weights.dtype)
    if bool((d < 0).any()):
        raise ValueError("distances must be non-negative")
    cost = weights.abs() * d
    if communicability is not None:
        check_tensor_shape("communicability", communicability, tuple(weights.shape))
        cost = cost * torch.as_tensor(communicability, dtype=weights.dtype).detach()
    total = cost.sum()
    return total / weights.numel() if reduction == "mean" else total


def penalised_loss(model: nn.Module, batch, *, l1: float = 0.0, rate: float = 0.0,
                   wiring: float = 0.0, distances: torch.Tensor | None = None,
                   communicability: bool = False, decision_weight: float = 5.0,
                   l1_fn: Callable | None = None, rate_fn: Callable | None = None,
                   wiring_fn: Callable | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Task loss plus penalties: a ``loss_fn`` for :func:`utils.training.train`.

    ``J = CE + l1 * sum|W| + rate * mean(r^2) + wiring * sum |W| d [C]`` with ``W`` the model's
    effective recurrent weights (``model.recurrent_weights()``), ``r`` its rates on the batch
    (padding ignored) and ``d`` the ``distances`` between units. Use it through
    ``functools.partial(penalised_loss, l1=1e-4)``.

    Args:
        model: a :class:`utils.models.RateRNN` (anything with ``recurrent_weights()`` and a
            forward pass returning ``(outputs, rates)``).
        batch: a :class:`utils.tasks.TaskBatch`.
        l1, rate, wiring: non-negative coefficients.
        distances: (N, N) distance matrix; required if ``wiring > 0``.
        communicability: weight the wiring cost by the communicability of ``|W|``.
        decision_weight: weight of decision-period steps in the cross-entropy.
        l1_fn, rate_fn, wiring_fn: optional replacements of the penalty functions, called as
            ``l1_fn(W)``, ``rate_fn(rates)`` and ``wiring_fn(W, distances)`` (the lab passes the
            students' own functions here). The defaults are :func:`l1_weight_penalty`,
            :func:`rate_penalty` (``"mean"``, padding ignored) and :func:`wiring_penalty`.

    Returns:
        ``(loss, metrics)`` with metrics ``accuracy``, ``task_loss``, ``mean_rate`` and the value
        of each active penalty term.
    """
    from ..analysis.decisions import decision_accuracy
    from ..training.losses import cross_entropy_loss

    l1 = check_real("l1", l1, low=0.0)
    rate = check_real("rate", rate, low=0.0)
    wiring = check_real("wiring", wiring, low=0.0)
    check_bool("communicability", communicability)
    for name, fn in [("l1_fn", l1_fn), ("rate_fn", rate_fn), ("wiring_fn", wiring_fn)]:
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function or None, got {type(fn).__name__}")
    if communicability and wiring_fn is not None:
        raise ValueError("communicability=True works only with the default wiring penalty "
                         "(wiring_fn=None)")
    if wiring > 0 and distances is None:
        raise ValueError("distances must be given (an (N, N) matrix) when wiring > 0")
    outputs, rates = model(batch.inputs)
    task = cross_entropy_loss(outputs, batch, decision_weight)
    loss = task
    metrics = {"task_loss": task.item(), "accuracy": decision_accuracy(outputs.detach(), batch),
               "mean_rate": float(rates.detach()[batch.valid].mean())}
    if l1 > 0 or wiring > 0:
        w = model.recurrent_weights()
    if l1 > 0:
        pen = l1_weight_penalty(w) if l1_fn is None else l1_fn(w)
        loss = loss + l1 * pen
        metrics["l1_penalty"] = l1 * pen.item()
    if rate > 0:
        pen = rate_penalty(rates, "mean", batch.valid) if rate_fn is None else rate_fn(rates)
        loss = loss + rate * pen
        metrics["rate_penalty"] = rate * pen.item()
    if wiring > 0:
        comm = None
        if communicability:
            from .spatial import communicability as comm_fn
            comm = comm_fn(w.detach())
        pen = (wiring_penalty(w, distances, comm) if wiring_fn is None
               else wiring_fn(w, distances))
        loss = loss + wiring * pen
        metrics["wiring_penalty"] = wiring * pen.item()
    return loss, metrics


@torch.no_grad()
def l1_proximal_step(weights: torch.Tensor, grad: torch.Tensor, lr: float, beta: float) -> torch.Tensor:
    """One proximal-gradient step for ``task cost + beta * sum |W_ij|`` (chapter 2, Lab 2).

    A plain gradient step on the task cost, ``V = W - lr * grad``, followed by the proximal map
    of ``lr * beta * |.|``, the soft threshold ``sign(V) * max(|V| - lr * beta, 0)``: every
    weight whose magnitude after the task step is at most ``lr * beta`` becomes *exactly* zero.
    (A gradient step on the L1 term itself, ``- lr * beta * sign(W)``, overshoots zero and leaves
    the weight oscillating around it instead.) Returns a new tensor.
    """
    w = _check_matrix("weights", weights)
    g = _check_matrix("grad", grad)
    if g.shape != w.shape:
        raise ValueError(f"grad must have the shape of weights {tuple(w.shape)}, got {tuple(g.shape)}")
    lr = check_real("lr", lr, low=0.0, low_open=True)
    beta = check_real("beta", beta, low=0.0)
    v = w - lr * g
    return torch.sign(v) * torch.clamp(v.abs() - lr * beta, min=0.0)


def near_zero_fraction(weights: torch.Tensor, rel_threshold: float = 0.01,
                       mask: torch.Tensor | None = None) -> float:
    """Fraction of weights whose magnitude is below ``rel_threshold`` times the largest magnitude.

    Args:
        weights: a weight matrix (any shape).
        rel_threshold: threshold relative to ``max |w|``, in (0, 1).
        mask: optional 0/1 tensor of the same shape: only entries where it is 1 are counted
            (e.g. to leave out the diagonal, which Dale's law forbids anyway).
    """
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor, got {type(weights).__name__}")
    rel_threshold = check_real("rel_threshold", rel_threshold, low=0.0, high=1.0,
                               low_open=True, high_open=True)
    w = weights.detach().abs()
    if not torch.isfinite(w).all():
        raise ValueError(f"weights must be finite, got {int((~torch.isfinite(w)).sum())} NaN or "
                         f"infinite entries (did training diverge?)")
    if mask is not None:
        check_tensor_shape("mask", mask, tuple(weights.shape))
        sel = torch.as_tensor(mask) != 0
        w_sel = w[sel]
    else:
        w_sel = w.flatten()
    if w_sel.numel() == 0:
        raise ValueError("mask selects no weights")
    top = w_sel.max()
    if top == 0:
        return 1.0
    return float((w_sel < rel_threshold * top).float().mean())


@dataclass
class PenaltyRun:
    """One trained network of a penalty sweep and its measurements on held-out trials.

    Attributes:
        model: the trained :class:`utils.models.RateRNN` (in eval mode).
        history: its :class:`utils.training.History`.
        accuracy: decision accuracy on the test batch.
        mean_rate: mean rate over units, trials and valid time steps of the test batch.
        peak_rate: the largest rate any unit reaches on the test batch.
        seconds: wall-clock training time.
        settings: the coefficients and options it was trained with.
    """

    model: Any
    history: Any
    accuracy: float
    mean_rate: float
    peak_rate: float
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def weights(self) -> torch.Tensor:
        """The trained effective recurrent weights (detached)."""
        return self.model.recurrent_weights().detach()


def fit_penalised(pool, test_batch, *, n_units: int = 64, n_updates: int = 500,
                  dale: bool = False, seed: int = 0, lr: float = 1e-2,
                  final_lr: float | None = 1e-3, batch_size: int = 64, sigma_rec: float = 0.05,
                  rho: float = 1.0, clip_grad: float | None = None,
                  optimizer_fn: Callable | None = None, progress: bool = True,
                  desc: str = "training", on_nonfinite: str = "raise",
                  **penalty_kwargs: Any) -> PenaltyRun:
    """Train one :class:`~utils.models.RateRNN` with :func:`penalised_loss` and measure it.

    Every call with the same ``seed`` starts from the same initial weights and sees the same
    training batches, so the networks of a sweep differ only in their penalties.

    Args:
        pool: a large :class:`~utils.tasks.TaskBatch` of training trials (batches are drawn
            from it with :func:`utils.tasks.batch_sampler`).
        test_batch: held-out trials for the measurements.
        n_units, dale, sigma_rec, rho: network options (see :class:`~utils.models.RateRNN`).
        n_updates, lr, final_lr, batch_size, clip_grad: training options (see
            :func:`utils.training.train`; ``final_lr=None`` keeps the rate constant).
        optimizer_fn: optional ``optimizer_fn(model) -> torch.optim.Optimizer`` replacing Adam.
        seed: seeds the initial weights, the noise and the batch order.
        progress, desc: progress bar.
        on_nonfinite: what training does if the loss or a weight becomes inf/NaN (see
            :func:`utils.training.train`; ``"continue"`` keeps training a diverged network, as
            chapter 2's unclipped run does on purpose).
        **penalty_kwargs: passed to :func:`penalised_loss` (``l1``, ``rate``, ``wiring``,
            ``distances``, ``communicability``, ``decision_weight``, ``l1_fn``, ...).
    """
    from ..analysis.decisions import decision_accuracy
    from ..models.rate import RateRNN
    from ..seeding import set_seed
    from ..tasks.batch import TaskBatch
    from ..tasks.neurogym_tasks import batch_sampler
    from ..training.loop import train

    if not isinstance(pool, TaskBatch):
        raise TypeError(f"pool must be a TaskBatch (e.g. task.batch(4096)), got {type(pool).__name__}")
    if not isinstance(test_batch, TaskBatch):
        raise TypeError(f"test_batch must be a TaskBatch, got {type(test_batch).__name__}")
    if optimizer_fn is not None and not callable(optimizer_fn):
        raise TypeError("optimizer_fn must be a function model -> optimizer, or None")
    allowed = {"l1", "rate", "wiring", "distances", "communicability", "decision_weight",
               "l1_fn", "rate_fn", "wiring_fn"}
    unknown = sorted(set(penalty_kwargs) - allowed)
    if unknown:
        raise ValueError(f"unknown penalty options {unknown}; allowed: {sorted(allowed)}")
    set_seed(seed)
    model = RateRNN(pool.inputs.shape[-1], n_units, int(pool.targets.max()) + 1, dale=dale,
                    sigma_rec=sigma_rec, rho=rho, seed=seed)
    optimizer = optimizer_fn(model) if optimizer_fn is not None else None
    loss_fn = functools.partial(penalised_loss, **penalty_kwargs)
    loss_fn(model, pool.select(torch.arange(2)))  # fail fast on bad options, before training
    start = time.perf_counter()
    history = train(model, batch_sampler(pool, batch_size, seed=seed), n_updates, loss_fn=loss_fn,
                    lr=lr, final_lr=final_lr if optimizer is None else None, optimizer=optimizer,
                    clip_grad=clip_grad, progress=progress, desc=desc, on_nonfinite=on_nonfinite)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        outputs, rates = model(test_batch.inputs)
    valid_rates = rates[test_batch.valid]
    settings = {k: v for k, v in penalty_kwargs.items() if k not in ("distances",)}
    settings.update(dale=dale, n_units=n_units, n_updates=n_updates, clip_grad=clip_grad)
    return PenaltyRun(model, history, decision_accuracy(outputs, test_batch),
                      float(valid_rates.mean()), float(valid_rates.max()), seconds, settings)
