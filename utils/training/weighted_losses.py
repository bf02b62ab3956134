"""Losses for streams of trials with answers (Part II, chapters 4 and 5).

:func:`answer_loss` is a ``loss_fn`` for :func:`utils.training.train`: cross-entropy over every
valid step (optionally class-weighted), plus an optional L2 penalty on hidden activity, recording
the fraction of correct answers (:func:`utils.analysis.answers.answer_accuracy`) instead of the
per-step accuracy, which fixation steps dominate.
"""

from __future__ import annotations

import torch
from torch import nn

from ..tasks.batch import TaskBatch
from ..validation import check_int, check_real

__all__ = ["answer_loss", "class_weights"]


def class_weights(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``w_c = n / (n_classes * n_c)`` from the labels ``targets``
    (chapter 5); a class that never occurs gets weight 0 (it cannot contribute to the loss)."""
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.long:
        raise TypeError("targets must be a long tensor of class labels")
    n_classes = check_int("n_classes", n_classes, min_value=1)
    if targets.numel() and (targets.min() < 0 or targets.max() >= n_classes):
        raise ValueError(f"targets must lie in [0, {n_classes}), got [{int(targets.min())}, {int(targets.max())}]")
    counts = torch.bincount(targets.flatten(), minlength=n_classes).to(torch.float32)
    w = targets.numel() / (n_classes * counts.clamp(min=1.0))
    return torch.where(counts > 0, w, torch.zeros_like(w))


def answer_loss(model: nn.Module, batch: TaskBatch, *, activity_l2: float = 0.0,
                weights: torch.Tensor | None = None, answers_per_trial: int = 1
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy over valid steps + ``activity_l2 * mean_t ||h_t||_2``.

    Args:
        model: returns ``(outputs, states)`` from ``model(batch.inputs)``.
        batch: a :class:`~utils.tasks.TaskBatch` (trials or streams of trials).
        activity_l2: coefficient of the L2 activity penalty (the mean over steps and sequences of
            the Euclidean norm of the state vector; chapter 4's E/I model).
        weights: optional per-class weights of the cross-entropy (see :func:`class_weights`).
        answers_per_trial: passed to :func:`~utils.analysis.answers.answer_accuracy`.

    Returns:
        ``(loss, metrics)``: metrics ``accuracy`` (mean over the answer kinds), ``task_loss`` and
        ``mean_activity`` (mean |h|).
    """
    from ..analysis.answers import answer_accuracy

    activity_l2 = check_real("activity_l2", activity_l2, low=0.0)
    outputs, states = model(batch.inputs)
    valid = batch.valid
    task = nn.functional.cross_entropy(outputs[valid], batch.targets[valid], weight=weights)
    loss = task
    if activity_l2 > 0:
        loss = loss + activity_l2 * states[valid].norm(dim=-1).mean()
    acc = float(answer_accuracy(outputs.detach(), batch, answers_per_trial).mean())
    return loss, {"accuracy": acc, "task_loss": task.item(),
                  "mean_activity": float(states.detach()[valid].abs().mean())}
