"""A go signal that stays observable until the answer is due (chapter 5).

In neurogym 2.3.1, ``ContextDecisionMaking-v0`` switches its fixation input off after the
fixation period (300 ms): during the stimulus and the delay it is 0, exactly as in the decision
period. Once the stimulus has ended, the delay and the decision steps then show the network
identical inputs (only the context channel, which is on throughout), and the delay's duration is
random, so nothing tells the network *when* to answer. In the classic form of the task (Mante et
al. 2013; the task battery of Yang et al. 2019) the fixation cue stays on until the response
period: its offset is the go signal.

:func:`add_go_signal` restores that cue on a trial-aligned :class:`~utils.tasks.TaskBatch`: in
each column (one trial) the chosen input channel is 1 on every step before the trial's first
answer step and 0 from there on. Apply it before chaining trials into streams
(:func:`utils.tasks.streams.chain_trials`).
"""

from __future__ import annotations

import torch

from ..validation import check_int
from .batch import TaskBatch

__all__ = ["add_go_signal"]


def add_go_signal(batch: TaskBatch, channel: int = 0) -> TaskBatch:
    """Return a copy of ``batch`` whose input ``channel`` is a fixation cue that turns off at the
    first answer step of each trial (the go signal).

    Args:
        batch: trial-aligned batch (one trial per column, e.g. from
            :meth:`utils.tasks.NeurogymTask.batch`); every column must have an answer step
            (``batch.decision``).
        channel: index of the fixation input (0 in neurogym's tasks).

    Returns:
        A new :class:`TaskBatch` (the input tensor is copied; targets and masks are shared):
        ``inputs[t, j, channel]`` is 1 for valid steps ``t`` before column ``j``'s first answer
        step, 0 at and after it and on padding.

    Raises:
        TypeError: ``batch`` is not a TaskBatch.
        ValueError: ``channel`` is not an input index, or a column has no answer step.
    """
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    channel = check_int("channel", channel, min_value=0, max_value=batch.inputs.shape[-1] - 1)
    has_answer = batch.decision.any(0)
    if not bool(has_answer.all()):
        missing = torch.nonzero(~has_answer).flatten().tolist()
        raise ValueError(f"batch must have an answer step in every column (trial-aligned batch); "
                         f"columns without one: {missing[:10]}")
    first = batch.decision.to(torch.int8).argmax(0)                    # (batch,)
    steps = torch.arange(batch.inputs.shape[0])[:, None]               # (time, 1)
    cue = (steps < first[None, :]) & batch.valid
    inputs = batch.inputs.clone()
    inputs[..., channel] = cue.to(inputs.dtype)
    return TaskBatch(inputs, batch.targets, batch.valid, batch.decision, batch.trials)
