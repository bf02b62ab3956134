"""The batch of trials every classification task of the course yields (chapters 1-2, Part II).

Time-major tensors ``(time, batch, ...)`` like the rest of :mod:`utils`, one column per whole trial,
with each trial's parameters kept for analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["TaskBatch"]


@dataclass
class TaskBatch:
    """A batch of whole trials, time-major.

    Attributes:
        inputs: float tensor (time, batch, n_input).
        targets: long tensor (time, batch) of correct actions (0 = fixate).
        valid: bool tensor (time, batch); False on padding after a trial's end.
        decision: bool tensor (time, batch); True in the decision period.
        trials: list of dicts, one per trial (e.g. ``{"ground_truth": 1, "coh": 6.4}``).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor
    decision: torch.Tensor
    trials: list[dict[str, Any]] = field(default_factory=list)

    def trial_values(self, key: str) -> np.ndarray:
        """Array of ``trial[key]`` over the batch (e.g. ``"coh"`` or ``"ground_truth"``)."""
        if not self.trials or key not in self.trials[0]:
            known = sorted(self.trials[0]) if self.trials else []
            raise ValueError(f"key must be one of the trial fields {known}, got {key!r}")
        return np.array([tr[key] for tr in self.trials])

    def select(self, index: torch.Tensor) -> "TaskBatch":
        """Sub-batch of the trials at ``index`` (a long tensor of trial indices).

        With a large pre-generated pool (``pool = task.batch(8192)``), training batches can be
        drawn as ``pool.select(torch.randint(len(pool), (64,), generator=g))`` at almost no cost.
        """
        index = torch.as_tensor(index, dtype=torch.long)
        n = self.inputs.shape[1]
        if index.dim() != 1 or (index.numel() and (index.min() < 0 or index.max() >= n)):
            raise ValueError(f"index must be a 1-D tensor of trial indices in [0, {n}), got {index}")
        return TaskBatch(self.inputs[:, index], self.targets[:, index], self.valid[:, index],
                         self.decision[:, index], [self.trials[i] for i in index.tolist()])

    def __len__(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def decision_targets(self) -> torch.Tensor:
        """The correct choice of each trial (target at its first decision step), shape (batch,)."""
        first = self.decision.float().argmax(dim=0)
        return self.targets[first, torch.arange(self.targets.shape[1])]
