"""Continual learning with elastic weight consolidation (EWC; Kirkpatrick et al. 2017), chapter 9.

After task A, EWC keeps the parameters near their task-A values ``theta_A`` in proportion to how
much task A depends on each of them, measured by the diagonal of the Fisher information:

.. math::

    L(\\theta) = L_B(\\theta) + \\frac{\\lambda}{2} \\sum_i F_i\\, (\\theta_i - \\theta_{A,i})^2,
    \\qquad F_i = \\frac{1}{n} \\sum_{n} \\Big(\\frac{\\partial \\ell_n}{\\partial \\theta_i}\\Big)^2 .

``ell_n`` is the loss of trial ``n`` alone (here half its summed squared error, the negative
log-likelihood of a Gaussian output with unit variance): the Fisher diagonal is the mean of the
*squared per-trial* gradients, not the square of the batch gradient (which averages the trials'
gradients first, so that gradients of opposite sign cancel and a converged network's batch
gradient is near zero). :func:`fisher_diagonal` computes it with one backward pass per trial
(64 trials of a 100-unit network: about 0.3 s); :func:`ewc_penalty` is the quadratic term and
:func:`with_ewc` adds it to any ``loss_fn`` of :func:`utils.training.train`. :func:`add_head`
gives a trained network a new, separate readout for the next task (a "multi-head" network, the
remedy that removes the conflict on a shared readout).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..seeding import set_seed
from ..tasks.sequences import r2_score
from ..validation import check_int, check_real

__all__ = ["fisher_diagonal", "ewc_penalty", "snapshot", "with_ewc", "free_gradient_fraction", "add_head",
           "task_r2"]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of ``model``'s trainable parameters, by name (the anchor ``theta_A``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def fisher_diagonal(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *,
                    output_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information from per-trial gradients, one tensor per named parameter.

    For every trial ``n`` (column of ``inputs`` (time, batch, n_input) and ``targets``
    (time, batch, n_output)), ``ell_n = 0.5 * sum_{t,k} (y_{t,n,k} - y*_{t,n,k})^2`` and its gradient
    are computed alone; the result is ``mean_n (d ell_n / d theta)^2``. The model runs in
    ``eval()`` mode (no dropout) and is returned to its previous mode. ``output_fn`` maps the
    model's outputs to the ones the targets describe (e.g. one task's head). Parameters the
    outputs do not depend on get zeros.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
        raise ValueError("inputs must be a tensor of shape (time, batch, n_input)")
    if not isinstance(targets, torch.Tensor) or targets.dim() != 3 \
            or targets.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"targets must be a tensor of shape (time, batch, n_output) with the "
                         f"inputs' time and batch sizes {tuple(inputs.shape[:2])}")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    fisher = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    try:
        for i in range(inputs.shape[1]):
            out, _ = model(inputs[:, i:i + 1])
            if output_fn is not None:
                out = output_fn(out)
            loss = 0.5 * (out - targets[:, i:i + 1]).pow(2).sum()
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f.add_(g.detach() ** 2)
    finally:
        model.train(was_training)
    return {n: f / inputs.shape[1] for n, f in zip(names, fisher)}


def ewc_penalty(params: Mapping[str, torch.Tensor], anchors: Mapping[str, torch.Tensor],
                fisher: Mapping[str, torch.Tensor], lam: float) -> torch.Tensor:
    """``lam / 2 * sum_i F_i (theta_i - theta_A_i)^2`` over the parameters named in ``fisher``.

    ``params`` (e.g. ``dict(model.named_parameters())``), ``anchors`` and ``fisher`` map names to
    tensors of equal shapes; the result is a scalar tensor that carries gradients to ``params``.
    """
    lam = check_real("lam", lam, low=0.0)
    missing = [n for n in fisher if n not in params or n not in anchors]
    if missing:
        raise ValueError(f"params and anchors must hold every parameter of fisher; missing {missing}")
    total = None
    for name, f in fisher.items():
        if params[name].shape != f.shape or anchors[name].shape != f.shape:
            raise ValueError(f"parameter {name!r}: params, anchors and fisher must have the same "
                             f"shape, got {tuple(params[name].shape)}, {tuple(anchors[name].shape)}, "
                             f"{tuple(f.shape)}")
        term = (f * (params[name] - anchors[name]) ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("fisher must name at least one parameter")
    return 0.5 * lam * total


def with_ewc(loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]],
             anchors: Mapping[str, torch.Tensor], fisher: Mapping[str, torch.Tensor],
             lam: float) -> Callable[[nn.Module, Any], tuple[torch.Tensor, dict]]:
    """A ``loss_fn`` for :func:`utils.training.train`: ``loss_fn``'s loss plus the EWC penalty
    (recorded as the metric ``"ewc"``)."""
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable: (model, batch) -> (loss, metrics)")
    lam = check_real("lam", lam, low=0.0)

    def ewc_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict]:
        loss, metrics = loss_fn(model, batch)
        penalty = ewc_penalty(dict(model.named_parameters()), anchors, fisher, lam)
        return loss + penalty, {**metrics, "ewc": float(penalty.detach())}

    return ewc_loss


def free_gradient_fraction(gradients: Mapping[str, torch.Tensor], fisher: Mapping[str, torch.Tensor],
                           *, rel_threshold: float = 1e-3) -> float:
    """Fraction of a gradient's squared norm on parameters the old task does not use.

    A parameter counts as unused (free) if its Fisher value is at most ``rel_threshold`` times
    the largest Fisher value of all parameters; parameters missing from ``fisher`` count as free.
    EWC lets a new task change exactly these parameters at little cost, so this fraction of the
    new task's gradient says how much of it EWC can follow without forgetting (chapter 9
    measures it for task B's gradient at the task-A solution).
    """
    rel_threshold = check_real("rel_threshold", rel_threshold, low=0.0)
    f_max = max(float(f.max()) for f in fisher.values())
    free = total = 0.0
    for name, g in gradients.items():
        g2 = g.detach() ** 2
        total += float(g2.sum())
        if name in fisher:
            free += float(g2[fisher[name] <= rel_threshold * f_max].sum())
        else:
            free += float(g2.sum())
    if total == 0:
        raise ValueError("gradients are all zero")
    return free / total


def add_head(model: nn.Module, n_new: int | None = None) -> nn.Module:
    """A copy of a trained :class:`~utils.models.rate.RateRNN` with a separate readout for a new task.

    The copy has ``n_output + n_new`` outputs (``n_new`` defaults to ``n_output``): outputs
    ``0 .. n_output-1`` are the old readout (weights and bias copied), the new ones a fresh readout
    initialised as a new network's would be (drawn from torch's global generator; non-negative for
    a ``"nonnegative"`` readout). Everything else -- input, recurrent weights, masks, noise -- is
    copied. Train the new task on the new outputs with ``sequence_loss(..., heads=n_output)``
    (chapter 9) and the old readout is never touched by the new task's loss.
    """
    from ..models.rate import RateRNN

    if not isinstance(model, RateRNN):
        raise TypeError(f"model must be a RateRNN, got {type(model).__name__}")
    if model.readout is None:
        raise ValueError("model has a fixed identity readout; add_head needs a trained readout")
    n_new = model.n_output if n_new is None else n_new
    if not isinstance(n_new, int) or isinstance(n_new, bool) or n_new < 1:
        raise ValueError(f"n_new must be an integer >= 1, got {n_new!r}")
    new = copy.deepcopy(model)
    fresh = nn.Linear(model.n_exc, n_new)
    if model.readout_mode == "nonnegative":
        with torch.no_grad():
            fresh.weight.abs_()
    readout = nn.Linear(model.n_exc, model.n_output + n_new)
    with torch.no_grad():
        readout.weight.copy_(torch.cat([model.readout.weight, fresh.weight]))
        readout.bias.copy_(torch.cat([model.readout.bias, fresh.bias]))
    new.readout = readout
    new.n_output = model.n_output + n_new
    return new


@torch.no_grad()
def task_r2(model: nn.Module, batches: Sequence[Any], *, head_size: int | None = None,
            seed: int | None = None) -> tuple[float, ...]:
    """Held-out R^2 of ``model`` on each task's test batch, in order (chapter 9).

    ``batches``: one :class:`~utils.tasks.sequences.SequenceBatch` per task. With
    ``head_size`` the model has a separate readout per task (:func:`add_head`) and task ``k`` is
    scored on outputs ``k * head_size`` to ``(k + 1) * head_size - 1``. ``seed``, if given, seeds
    the global RNG first, so that the recurrent noise is the same for every model scored.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if head_size is not None:
        head_size = check_int("head_size", head_size, min_value=1)
    if seed is not None:
        set_seed(seed)
    scores = []
    for k, batch in enumerate(batches):
        out = model(batch.inputs)[0]
        if head_size is not None:
            out = out[..., head_size * k: head_size * (k + 1)]
        scores.append(r2_score(out, batch.targets))
    return tuple(scores)
