"""The course's one training loop and its loss functions.

- :mod:`utils.training.loop`    -- :func:`train` (hooks for custom updates, penalties, recorders,
  stopping rules), :class:`History`, :func:`every`, :func:`loss_below`
- :mod:`utils.training.losses`  -- loss functions (classification, regression, low-rank readout)
- :mod:`utils.training.recipes` -- ready-made configurations of the loop (e.g. :func:`train_lowrank`)
- :mod:`utils.training.weighted_losses` -- losses for streams of trials with answers (Part II)
- :mod:`utils.training.song2016` -- Song et al.'s update and stopping rule through the one loop (7)
"""

from .loop import History, every, loss_below, train
from .losses import (classification_loss, cross_entropy_loss, heldout_mse, lowrank_objective,
                     mse_loss, regression_loss)
from .recipes import train_lowrank

__all__ = ["History", "every", "loss_below", "train", "classification_loss", "cross_entropy_loss",
           "heldout_mse", "lowrank_objective", "mse_loss", "regression_loss", "train_lowrank"]
