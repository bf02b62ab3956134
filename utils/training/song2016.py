"""The training recipe of Song, Yang & Wang (2016) for the E/I networks of chapters 7-8.

Each update is :func:`utils.models.ei_rate.song_update` (squared error on the task's error mask,
Pascanu's vanishing-gradient regulariser, gradient clipping); every ``check_every`` updates the
network is validated on a fixed batch, and training stops when the paper's rule holds (the mean
of the last five validation accuracies exceeds 90%). The loop is :func:`utils.training.train`.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..models.ei_rate import EIRateRNN, song_update
from ..tasks.multisensory import MultisensoryBatch, criterion_reached, percent_correct
from ..validation import check_bool, check_int, check_real
from .loop import History, every, train

__all__ = ["validation_accuracy", "train_song2016"]


@torch.no_grad()
def validation_accuracy(model: EIRateRNN, batch: MultisensoryBatch) -> float:
    """Percent correct of ``model`` on the non-catch trials of ``batch`` (choice at the end)."""
    was_training = model.training
    model.eval()
    outputs, _ = model(batch.inputs)
    model.train(was_training)
    return percent_correct(outputs, batch)


def train_song2016(model: EIRateRNN, batch_fn: Callable[[], MultisensoryBatch], max_updates: int,
                   *, validation: MultisensoryBatch, optimizer: torch.optim.Optimizer | None = None,
                   check_every: int = 100, stop_at_criterion: bool = True,
                   threshold: float = 90.0, lambda_omega: float = 2.0, clip_grad: float = 1.0,
                   history: History | None = None, progress: bool = True,
                   desc: str = "training") -> History:
    """Train ``model`` with the paper's update until its stopping rule holds (or ``max_updates``).

    Args:
        model: the network.
        batch_fn: returns a training batch (20 trials in the paper).
        max_updates: most updates this call makes.
        validation: the fixed validation batch.
        optimizer: default ``torch.optim.Adam(lr=1e-3)`` (the paper: SGD, lr 0.01; see chapter 7).
        check_every: updates between validations (the paper: 500; the first check follows the
            first update).
        stop_at_criterion: stop when the mean of the last five checks exceeds ``threshold``.
        lambda_omega, clip_grad: see :func:`utils.models.ei_rate.song_update`.
        history: continue a history (its ``validation`` record counts for the rule).

    Records ``loss``, ``omega``, ``seconds`` per update and ``validation`` at each check.
    """
    if not isinstance(model, EIRateRNN):
        raise TypeError(f"model must be an EIRateRNN, got {type(model).__name__}")
    max_updates = check_int("max_updates", max_updates, min_value=1)
    check_every = check_int("check_every", check_every, min_value=1)
    check_bool("stop_at_criterion", stop_at_criterion)
    threshold = check_real("threshold", threshold, low=0.0, high=100.0)
    if not isinstance(validation, MultisensoryBatch):
        raise TypeError(f"validation must be a MultisensoryBatch, got {type(validation).__name__}")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    record = every(check_every, lambda m: {"validation": validation_accuracy(m, validation)})

    def stop(h: History) -> bool:
        return "validation" in h and criterion_reached(h["validation"], threshold=threshold)

    return train(model, batch_fn, max_updates,
                 update_fn=song_update(optimizer, lambda_omega=lambda_omega, clip_grad=clip_grad),
                 after_step=record, stop_when=stop if stop_at_criterion else None,
                 history=history, progress=progress, desc=desc)
