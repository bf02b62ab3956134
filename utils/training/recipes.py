"""Ready-made configurations of the course's one training loop (:func:`utils.training.train`).

Each is a few lines that fix the loss, the optimiser and the stopping rule of one chapter's
standard training; the loop itself is :func:`utils.training.train`.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..validation import check_int, check_real
from .loop import History, loss_below, train
from .losses import lowrank_objective

__all__ = ["train_lowrank"]


def train_lowrank(model: nn.Module, batch_fn: Callable[[], dict], n_updates: int, *,
                  lr: float = 5e-3, loss_steps: int = 15, target_loss: float | None = None,
                  window: int = 10, history: History | None = None, progress: bool = True,
                  desc: str = "training") -> History:
    """Train a low-rank network with Adam on the squared error of its readout over the last
    ``loss_steps`` steps (chapters 10-11; Dubreuil et al. 2022 train the same way).

    Args:
        model: a :class:`utils.models.LowRankRNN` (any module whose forward returns
            ``(z (T, B), states)``).
        batch_fn: called once per update; returns a batch dict (``inputs``, ``targets``).
        n_updates: maximum number of updates (>= 1).
        lr: Adam's learning rate (5e-3 by default).
        loss_steps: number of final steps in the loss (the decision epoch).
        target_loss: if given, stop as soon as the mean training loss of the last ``window``
            updates is below it.
        window: length of that running mean.
        history: continue an existing history (a new Adam optimiser starts each call).
        progress, desc: progress bar.

    Returns:
        the :class:`utils.training.History` (``loss``, ``accuracy``, ``seconds`` per update);
        ``history.stopped_at`` is the number of updates this call did.
    """
    check_int("loss_steps", loss_steps, min_value=1)
    stop = None
    if target_loss is not None:
        stop = loss_below(check_real("target_loss", target_loss, low=0.0, low_open=True), window)
    else:
        check_int("window", window, min_value=1)
    return train(model, batch_fn, n_updates, loss_fn=lowrank_objective(loss_steps), lr=lr,
                 stop_when=stop, history=history, progress=progress, desc=desc)
