"""The one batch type of the course: :class:`Batch`, and :class:`TaskBatch` for classification.

Every task of the course yields a subclass of :class:`Batch` (chapter 1 introduces it): time-major
``inputs`` of shape ``(time, batch, n_input)`` and ``targets``, plus whatever each task adds (a
validity mask, an error mask, per-trial parameters). The base class knows, from how each field
is declared (:func:`per_step`, :func:`per_trial` or :func:`shared`), where a field's trial axis
is, so that one :meth:`Batch.select` and one :meth:`Batch.concat` serve every task:

- :class:`TaskBatch` (this module): neurogym classification trials (chapters 1-2, Part II);
- :class:`utils.tasks.targets.TargetBatch`: target-following trials (chapter 3);
- :class:`utils.tasks.multisensory.MultisensoryBatch`: the multisensory task (chapters 7-8);
- :class:`utils.tasks.sequences.SequenceBatch`: pulse-to-sequence trials (chapter 9);
- :class:`utils.tasks.lowrank_tasks.LowRankBatch` and
  :class:`~utils.tasks.lowrank_tasks.WorkingMemoryBatch`: the low-rank project (chapters 10-11).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence, TypeVar

import numpy as np
import torch

__all__ = ["Batch", "TaskBatch", "per_step", "per_trial", "shared"]

_B = TypeVar("_B", bound="Batch")


def per_step(**kwargs: Any) -> Any:
    """Declare a time-major field ``(time, batch, ...)`` of a :class:`Batch` (trial axis 1)."""
    return field(metadata={"trial_axis": 1}, **kwargs)


def per_trial(**kwargs: Any) -> Any:
    """Declare a per-trial field ``(batch, ...)`` (a tensor, an array or a list; trial axis 0)."""
    return field(metadata={"trial_axis": 0}, **kwargs)


def shared(**kwargs: Any) -> Any:
    """Declare a field shared by every trial of a :class:`Batch` (e.g. the time step)."""
    return field(metadata={"trial_axis": None}, **kwargs)


def _take(value: Any, index: torch.Tensor, axis: int | None) -> Any:
    if axis is None or value is None:
        return value
    if isinstance(value, torch.Tensor):
        return value[:, index] if axis == 1 else value[index]
    if isinstance(value, np.ndarray):
        return np.take(value, index.numpy(), axis=axis)
    if len(value) == 0:  # no per-trial records kept (e.g. a hand-made batch)
        return []
    return [value[i] for i in index.tolist()]


def _join(values: list[Any], axis: int | None, name: str) -> Any:
    first = values[0]
    if axis is None:
        if any(v != first for v in values[1:]):
            raise ValueError(f"batches must share {name}, got {values}")
        return first
    if isinstance(first, torch.Tensor):
        return torch.cat(values, axis)
    if isinstance(first, np.ndarray):
        return np.concatenate(values, axis)
    return [item for v in values for item in v]


@dataclass
class Batch:
    """A batch of whole trials, time-major: the base of every task's batch.

    Attributes:
        inputs: float tensor (time, batch, n_input).
        targets: what the network should produce; its layout is the task's (per time step, or
            one value per trial).
    """

    inputs: torch.Tensor = per_step()
    targets: torch.Tensor = per_step()

    def __len__(self) -> int:
        """Number of trials."""
        return int(self.inputs.shape[1])

    def __getitem__(self, name: str) -> Any:
        """Read a field by name, ``batch["inputs"]`` (the low-rank labs build batches as dicts
        with the same keys; code written for either works on both)."""
        if not isinstance(name, str) or name not in self.keys():
            raise KeyError(f"{type(self).__name__} has fields {self.keys()}, got {name!r}")
        return getattr(self, name)

    def keys(self) -> list[str]:
        """The names of the batch's fields (``in`` and iteration see the same names, as a dict's)."""
        return [f.name for f in fields(self)]

    def __contains__(self, name: object) -> bool:
        return name in self.keys()

    def __iter__(self):
        return iter(self.keys())

    @property
    def n_steps(self) -> int:
        """Number of time steps (padded length)."""
        return int(self.inputs.shape[0])

    def select(self: _B, index: torch.Tensor | Sequence[int]) -> _B:
        """Sub-batch of the trials at ``index`` (1-D trial indices), of the same type.

        With a large pre-generated pool (``pool = task.batch(8192)``), training batches can be
        drawn as ``pool.select(torch.randint(len(pool), (64,), generator=g))`` at almost no cost.
        """
        index = torch.as_tensor(index, dtype=torch.long)
        n = len(self)
        if index.dim() != 1 or (index.numel() and (index.min() < 0 or index.max() >= n)):
            raise ValueError(f"index must be a 1-D tensor of trial indices in [0, {n}), got {index}")
        return type(self)(**{f.name: _take(getattr(self, f.name), index, f.metadata.get("trial_axis", 1))
                             for f in fields(self)})

    @classmethod
    def concat(cls: type[_B], batches: Sequence[_B]) -> _B:
        """The trials of several batches side by side (same type, same time axis and sizes)."""
        batches = list(batches)
        if not batches or not all(type(b) is cls for b in batches):
            raise ValueError(f"batches must be a non-empty list of {cls.__name__}")
        return cls(**{f.name: _join([getattr(b, f.name) for b in batches],
                                    f.metadata.get("trial_axis", 1), f.name)
                      for f in fields(cls)})


@dataclass
class TaskBatch(Batch):
    """A batch of whole classification trials (neurogym tasks), time-major.

    Attributes:
        inputs: float tensor (time, batch, n_input).
        targets: long tensor (time, batch) of correct actions (0 = fixate).
        valid: bool tensor (time, batch); False on padding after a trial's end.
        decision: bool tensor (time, batch); True in the decision period.
        trials: list of dicts, one per trial (e.g. ``{"ground_truth": 1, "coh": 6.4}``).
    """

    valid: torch.Tensor = per_step()
    decision: torch.Tensor = per_step()
    trials: list[dict[str, Any]] = per_trial(default_factory=list)

    def trial_values(self, key: str) -> np.ndarray:
        """Array of ``trial[key]`` over the batch (e.g. ``"coh"`` or ``"ground_truth"``)."""
        if not self.trials or key not in self.trials[0]:
            known = sorted(self.trials[0]) if self.trials else []
            raise ValueError(f"key must be one of the trial fields {known}, got {key!r}")
        return np.array([tr[key] for tr in self.trials])

    @property
    def decision_targets(self) -> torch.Tensor:
        """The correct choice of each trial (target at its first decision step), shape (batch,)."""
        first = self.decision.float().argmax(dim=0)
        return self.targets[first, torch.arange(self.targets.shape[1])]
