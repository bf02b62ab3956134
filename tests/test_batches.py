"""One batch type: every task's batch is a utils.tasks.Batch with one select and one concat."""

import numpy as np
import pytest
import torch

from utils.tasks import (Batch, LowRankBatch, MultisensoryBatch, NeurogymTask, SequenceBatch,
                         TargetBatch, TaskBatch, WorkingMemoryBatch, decision_batch,
                         working_memory_batch)
from utils.tasks.lowrank_tasks import check_lowrank_batch, working_memory_grid
from utils.tasks.multisensory import sample_batch
from utils.tasks.sequences import pulse_sequence_batch
from utils.tasks.targets import PeriodicTargetTask


def _batches():
    g = torch.Generator().manual_seed(0)
    return {
        "task": NeurogymTask("PerceptualDecisionMaking-v0", seed=0, dt=100).batch(5),
        "target": PeriodicTargetTask(8).batch(5),
        "multisensory": sample_batch(5, generator=g),
        "sequence": pulse_sequence_batch(5, generator=g),
        "decision": decision_batch(5, generator=g),
        "memory": working_memory_batch(5, generator=g),
    }


def test_every_task_yields_the_one_batch_type():
    kinds = {"task": TaskBatch, "target": TargetBatch, "multisensory": MultisensoryBatch,
             "sequence": SequenceBatch, "decision": LowRankBatch, "memory": WorkingMemoryBatch}
    for name, batch in _batches().items():
        assert isinstance(batch, kinds[name]) and isinstance(batch, Batch), name
        assert len(batch) == 5 and batch.n_steps == batch.inputs.shape[0]


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    return a == b


def test_select_and_concat_take_every_field_along_its_trial_axis():
    index = torch.tensor([3, 0, 3])
    for name, batch in _batches().items():
        sub = batch.select(index)
        assert type(sub) is type(batch) and len(sub) == 3
        # trial 0 of the sub-batch is trial 3 of the batch, in every field
        one, three = batch.select(torch.tensor([3])), sub.select(torch.tensor([0]))
        for key in batch.keys():
            assert _same(getattr(one, key), getattr(three, key)), (name, key)
        both = type(batch).concat([batch, sub])
        assert len(both) == 8
        back = both.select(torch.arange(5))
        for key in batch.keys():
            assert _same(getattr(back, key), getattr(batch, key)), (name, key)


def test_select_and_concat_refuse_bad_arguments():
    batch = decision_batch(4, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"index must be a 1-D tensor of trial indices in \[0, 4\)"):
        batch.select(torch.tensor([4]))
    with pytest.raises(ValueError, match="non-empty list of LowRankBatch"):
        LowRankBatch.concat([])
    with pytest.raises(ValueError, match="non-empty list of LowRankBatch"):
        LowRankBatch.concat([batch, working_memory_batch(2)])
    a = pulse_sequence_batch(2, dt=10.0)
    with pytest.raises(ValueError, match="share dt"):
        SequenceBatch.concat([a, pulse_sequence_batch(2, dt=20.0, n_steps=a.n_steps)])


def test_lowrank_batches_read_like_the_dicts_the_labs_build():
    batch = working_memory_grid()
    assert len(batch) == 49 and set(batch) == {"inputs", "targets", "f1", "f2", "u1", "u2"}
    assert "f1" in batch and torch.equal(batch["f1"], batch.f1)
    with pytest.raises(KeyError, match="has fields"):
        batch["strengths"]
    check_lowrank_batch(batch)
    check_lowrank_batch({"inputs": batch.inputs, "targets": batch.targets})
    with pytest.raises(TypeError, match="low-rank batch"):
        check_lowrank_batch(_batches()["sequence"])
