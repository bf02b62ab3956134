"""Loss functions for the course's training loop (:func:`utils.training.train`).

A ``loss_fn(model, batch) -> (loss, metrics)`` returns the scalar to minimise and a dict of floats
to record. Classification tasks (chapters 1-2, Part II) use :func:`classification_loss` on a
:class:`utils.tasks.TaskBatch`; the feed-forward teacher task of chapter 3 uses
:func:`regression_loss` on ``(x, y)`` pairs; the low-rank tasks (chapters 10-11) use
:func:`lowrank_objective`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..tasks.batch import TaskBatch
from ..tasks.lowrank_tasks import check_lowrank_batch, lowrank_loss, sign_accuracy
from ..validation import check_int, check_real

__all__ = ["cross_entropy_loss", "classification_loss", "mse_loss", "regression_loss", "heldout_mse",
           "lowrank_objective"]


def cross_entropy_loss(outputs: torch.Tensor, batch: TaskBatch,
                       decision_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy between ``outputs`` (time, batch, actions) and the targets on valid steps.

    ``decision_weight`` multiplies the loss of decision-period steps: in most neurogym tasks the
    decision occupies a few steps out of many, and without extra weight the fixation steps
    dominate the loss early in training.
    """
    decision_weight = check_real("decision_weight", decision_weight, low=0.0, low_open=True)
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3:
        raise ValueError("outputs must be a tensor of shape (time, batch, actions), got "
                         f"{tuple(getattr(outputs, 'shape', ())) or type(outputs).__name__}")
    if tuple(outputs.shape[:2]) != tuple(batch.targets.shape):
        raise ValueError(f"outputs must have shape (time, batch, actions) = "
                         f"{tuple(batch.targets.shape)} + (actions,) to match the batch, got "
                         f"{tuple(outputs.shape)}")
    n_actions = int(batch.targets[batch.valid].max()) + 1 if bool(batch.valid.any()) else 0
    if outputs.shape[2] < n_actions:
        raise ValueError(f"outputs has {outputs.shape[2]} actions but the targets go up to "
                         f"{n_actions - 1}: the model's n_output must be at least {n_actions}")
    valid = batch.valid
    per_step = nn.functional.cross_entropy(outputs[valid], batch.targets[valid], reduction="none")
    weights = 1.0 + (decision_weight - 1.0) * batch.decision[valid].to(per_step.dtype)
    return (per_step * weights).sum() / weights.sum()


def classification_loss(model: nn.Module, batch: TaskBatch, decision_weight: float = 1.0
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Default ``loss_fn`` for neurogym tasks: (weighted) cross-entropy over every valid step.

    Records the loss and the decision accuracy of the batch. Use
    ``functools.partial(classification_loss, decision_weight=5)`` to weight the decision period.
    """
    from ..analysis.decisions import decision_accuracy  # local: analysis imports the batch type

    outputs, _ = model(batch.inputs)
    loss = cross_entropy_loss(outputs, batch, decision_weight)
    return loss, {"accuracy": decision_accuracy(outputs.detach(), batch)}


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (time, batch and output dimensions)."""
    if output.shape != target.shape:
        raise ValueError(f"output and target must have the same shape, got {tuple(output.shape)} "
                         f"and {tuple(target.shape)}")
    return (output - target).pow(2).mean()


def regression_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss function for :func:`utils.training.train` on ``(x, y)`` batches: ``mse_loss(model(x), y)``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("batch must be a pair (x, y) of tensors")
    x, y = batch
    return mse_loss(model(x), y), {}


def heldout_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``mse_loss(model(x), y)`` without recording gradients, as a float."""
    with torch.no_grad():
        return mse_loss(model(x), y).item()


def lowrank_objective(loss_steps: int = 15) -> Callable:
    """``loss_fn`` for the low-rank tasks (chapters 10-11): :func:`utils.tasks.lowrank_loss` of the
    readout over the last ``loss_steps`` steps, recording the batch's sign accuracy (nan for a batch
    whose targets are all zero)."""
    loss_steps = check_int("loss_steps", loss_steps, min_value=1)

    def loss_fn(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        check_lowrank_batch(batch)
        z, _ = model(batch["inputs"])
        loss = lowrank_loss(z, batch["targets"], loss_steps)
        acc = (sign_accuracy(z.detach(), batch["targets"], loss_steps)
               if bool((batch["targets"] != 0).any()) else float("nan"))
        return loss, {"accuracy": acc}

    return loss_fn
