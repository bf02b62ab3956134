"""Continuous streams of trials: several whole trials back to back in one sequence (chapter 4).

:class:`~utils.tasks.NeurogymTask` batches are trial-aligned (every column one trial, started from
a zero state). The light-GRU chapters train on short streams and analyse long ones (the selectivity
Monte Carlo runs on sequences of about 1000 steps), so the network must carry on from one trial to
the next without a reset. :func:`chain_trials` turns a trial-aligned batch into such streams.
"""

from __future__ import annotations

import torch

from ..validation import check_int
from .batch import TaskBatch

__all__ = ["chain_trials"]


def chain_trials(batch: TaskBatch, trials_per_stream: int) -> TaskBatch:
    """Concatenate the trials of ``batch`` in time: ``len(batch) // trials_per_stream`` streams.

    Stream ``s`` holds trials ``s * k ... s * k + k - 1`` (``k = trials_per_stream``), each without
    its end padding, one after the other; streams shorter than the longest are padded at the end
    (``valid`` False). Inputs, targets, ``valid`` and ``decision`` masks follow their trials; every
    stream's ``trials`` entry is ``{"trials": [the k trial dicts]}``. Leftover trials are dropped.
    """
    if not isinstance(batch, TaskBatch):
        raise TypeError(f"batch must be a TaskBatch, got {type(batch).__name__}")
    k = check_int("trials_per_stream", trials_per_stream, min_value=1, max_value=len(batch))
    n_streams = len(batch) // k
    lengths = batch.valid.sum(0)
    if bool((lengths == lengths[0]).all()) and bool(batch.valid.all()):
        # equal-length trials without padding: one reshape
        T = batch.inputs.shape[0]

        inputs = batch.inputs[:, : n_streams * k].reshape(T, n_streams, k, -1).permute(2, 0, 1, 3)
        inputs = inputs.reshape(k * T, n_streams, -1)
        out = [inputs]
        for x in (batch.targets, batch.valid, batch.decision):
            x = x[:, : n_streams * k].reshape(T, n_streams, k).permute(2, 0, 1)
            out.append(x.reshape(k * T, n_streams))
    else:
        # trials of unequal length: one gather. Every output step (stream s, position p) reads
        # step `source_t` of trial column `source_c`; the trials' padding is left out.
        used = lengths[: n_streams * k].to(torch.long)
        source_c = torch.repeat_interleave(torch.arange(n_streams * k), used)
        trial_start = torch.cumsum(used, 0) - used                       # flat start of each trial
        flat = torch.arange(int(used.sum()))
        source_t = flat - torch.repeat_interleave(trial_start, used)
        stream_len = used.reshape(n_streams, k).sum(1)
        stream_id = torch.repeat_interleave(torch.arange(n_streams), stream_len)
        position = flat - torch.repeat_interleave(torch.cumsum(stream_len, 0) - stream_len, stream_len)
        T = int(stream_len.max())
        out = [batch.inputs.new_zeros(T, n_streams, batch.inputs.shape[-1]),
               batch.targets.new_zeros(T, n_streams), batch.valid.new_zeros(T, n_streams),
               batch.decision.new_zeros(T, n_streams)]
        for x, src in zip(out, (batch.inputs, batch.targets, batch.valid, batch.decision)):
            x[position, stream_id] = src[source_t, source_c]
    trials = [{"trials": batch.trials[s * k: s * k + k]} for s in range(n_streams)] if batch.trials else []
    return TaskBatch(out[0], out[1], out[2], out[3], trials)
