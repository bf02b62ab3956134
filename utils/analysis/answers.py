"""Accuracy of the answers that matter (chapter 4).

In tasks with several answers per trial (DualDelayMatchSample: one in ``test1``, one in
``test2``), or in streams of trials, the per-step accuracy is dominated by fixation steps and a
trial-level "the decision" does not exist. Here every contiguous run of ``batch.decision`` steps
in a column is one **answer**; its choice is the action with the largest mean output over the run
(as :func:`utils.analysis.decisions.choices` does for one decision period) and its correct answer
the target at the run's first step.
"""

from __future__ import annotations

import numpy as np
import torch

from ..tasks.batch import TaskBatch
from ..validation import check_int

__all__ = ["answer_runs", "answer_choices", "answer_accuracy"]


def answer_runs(decision: torch.Tensor) -> list[list[tuple[int, int]]]:
    """For each column of the bool mask ``decision`` (time, batch), its runs of True steps as
    ``(start, stop)`` pairs (``stop`` exclusive), in time order."""
    if not isinstance(decision, torch.Tensor) or decision.dim() != 2 or decision.dtype != torch.bool:
        raise ValueError("decision must be a bool tensor of shape (time, batch)")
    starts, stops, counts = _runs_flat(decision)
    runs, i = [], 0
    for n in counts.tolist():
        runs.append(list(zip(starts[i: i + n].tolist(), stops[i: i + n].tolist())))
        i += n
    return runs


def _runs_flat(decision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All runs of True steps at once: ``(starts, stops, counts)``, the runs ordered by column
    and then time (``counts[j]`` runs in column ``j``), without a Python loop over columns."""
    d = decision.to(torch.int8)
    padded = torch.cat([d.new_zeros(1, d.shape[1]), d, d.new_zeros(1, d.shape[1])], dim=0)
    edges = (padded[1:] - padded[:-1]).t()                        # (batch, time + 1)
    col_start, starts = torch.nonzero(edges == 1, as_tuple=True)    # row-major: column, then time
    _, stops = torch.nonzero(edges == -1, as_tuple=True)
    counts = torch.bincount(col_start, minlength=d.shape[1])
    return starts, stops, counts


def answer_choices(outputs: torch.Tensor, batch: TaskBatch
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each answer's choice and correct action: two lists (one array per column, in time order)."""
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 3 or outputs.shape[:2] != batch.decision.shape:
        raise ValueError(f"outputs must have shape (time, batch, actions) = "
                         f"{tuple(batch.decision.shape)} + (actions,), got "
                         f"{tuple(outputs.shape) if hasattr(outputs, 'shape') else type(outputs).__name__}")
    cum = torch.cat([outputs.new_zeros(1, *outputs.shape[1:]), outputs.detach().cumsum(0)], dim=0)
    starts, stops, counts = _runs_flat(batch.decision)
    cols = torch.repeat_interleave(torch.arange(len(counts)), counts)
    picked = (cum[stops, cols] - cum[starts, cols]).argmax(-1).numpy().astype(np.int64)
    truth = batch.targets[starts, cols].numpy().astype(np.int64)
    bounds = np.cumsum(counts.numpy())[:-1]
    return np.split(picked, bounds), np.split(truth, bounds)


def answer_accuracy(outputs: torch.Tensor, batch: TaskBatch, answers_per_trial: int = 1
                    ) -> np.ndarray:
    """Fraction of correct answers, separately for the k-th answer of each trial.

    Returns an array of length ``answers_per_trial``: entry ``k`` is the accuracy of the answers
    whose index within their column is ``k`` modulo ``answers_per_trial`` (for DualDelayMatchSample
    streams, ``answers_per_trial=2``: test 1 and test 2). Raises ValueError if ``batch.decision``
    has no answer steps (a task whose answer periods were not found), or if a column's number of
    answers is not a multiple of ``answers_per_trial``.
    """
    k = check_int("answers_per_trial", answers_per_trial, min_value=1)
    if not bool(batch.decision.any()):
        raise ValueError("batch.decision has no answer steps: the task's answer periods were not "
                         "marked (see NeurogymTask's answer_periods)")
    chosen, correct = answer_choices(outputs, batch)
    hits: list[list[bool]] = [[] for _ in range(k)]
    for j, (c, g) in enumerate(zip(chosen, correct)):
        if len(c) % k:
            raise ValueError(f"column {j} has {len(c)} answers, not a multiple of "
                             f"answers_per_trial={k}")
        for i, ok in enumerate(c == g):
            hits[i % k].append(bool(ok))
    return np.array([np.mean(h) for h in hits])
