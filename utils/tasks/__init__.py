"""Tasks: what the networks are trained on, one module per family of tasks.

- :mod:`utils.tasks.batch`          -- :class:`Batch`, the one batch type every task's batch extends,
                                       and :class:`TaskBatch` for classification trials
- :mod:`utils.tasks.neurogym_tasks` -- reproducible batches from neurogym tasks (chapters 1-2)
- :mod:`utils.tasks.targets`        -- target-following tasks of the learning-rule chapter (3)
- :mod:`utils.tasks.cue_recall`     -- recall a cue's sign after a delay: a memory test for RFLO (3)
- :mod:`utils.tasks.lowrank_tasks`  -- the low-rank project's decision and working-memory tasks (10-11)
- :mod:`utils.tasks.curricula`      -- tasks whose difficulty grows during training (11)
- :mod:`utils.tasks.streams`        -- several trials back to back in one sequence (4)
- :mod:`utils.tasks.go_signal`      -- a fixation cue observable until the answer is due (5)
- :mod:`utils.tasks.multisensory`   -- the multisensory task of Raposo et al. 2012 (7)
- :mod:`utils.tasks.multisensory_variations` -- seven channels (modality cues), stacked networks (8)
- :mod:`utils.tasks.sequences`      -- pulse-to-sequence tasks and continual-learning tasks (9)
"""

from .batch import Batch, TaskBatch
from .cue_recall import CueRecallTask
from .curricula import DelayCurriculum
from .lowrank_tasks import (DECISION_STRENGTHS, WM_FREQUENCIES, LowRankBatch, WorkingMemoryBatch,
                            decision_batch, lowrank_loss, sign_accuracy, working_memory_batch)
from .multisensory import MultisensoryBatch
from .neurogym_tasks import NeurogymTask, batch_sampler, make_env
from .sequences import SequenceBatch
from .targets import PeriodicTargetTask, TargetBatch, TeacherRegressionTask

__all__ = ["Batch", "TaskBatch", "LowRankBatch", "WorkingMemoryBatch", "MultisensoryBatch",
           "SequenceBatch", "TargetBatch", "CueRecallTask", "DelayCurriculum",
           "DECISION_STRENGTHS", "WM_FREQUENCIES", "decision_batch", "lowrank_loss",
           "sign_accuracy", "working_memory_batch", "NeurogymTask", "batch_sampler", "make_env",
           "PeriodicTargetTask", "TeacherRegressionTask"]
