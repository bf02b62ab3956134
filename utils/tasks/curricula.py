"""Training curricula: tasks whose difficulty grows during training (chapter 11)."""

from __future__ import annotations

from typing import Any, Callable

from ..validation import check_generator, check_int
from .lowrank_tasks import working_memory_batch

__all__ = ["DelayCurriculum"]


class DelayCurriculum:
    """Batches of working-memory trials whose delay grows during training (chapter 11).

    Each call returns ``utils.tasks.lowrank_tasks.working_memory_batch(batch_size, ...)`` with the first
    stimulus at steps 5-10 and the second stimulus (11 steps long) starting ``delay`` steps after
    the first one ends. The delay starts at ``start_delay`` and grows by one step every
    ``updates_per_step`` calls until it reaches ``full_delay`` (49 steps: the project's second
    stimulus at steps 60-70), where it stays.

    Args:
        batch_size: trials per batch.
        start_delay: delay (steps) of the first batches, 0 <= start_delay <= full_delay.
        full_delay: final delay (default 49).
        updates_per_step: calls between two increments (>= 1).
        generator: seeded ``torch.Generator`` for reproducible batches.
        make_batch: optional ``make_batch(batch_size, delay, generator)`` returning the batch for
            a delay (e.g. a student's version, Lab 11); default: ``working_memory_batch`` with
            :meth:`timing`.

    Attributes:
        calls: number of batches produced so far; ``delay``: the delay of the next batch;
        ``n_ramp``: number of calls until the full delay is reached.
    """

    U1_ON, U1_OFF, U2_LENGTH = 5, 10, 11

    def __init__(self, batch_size: int = 32, *, start_delay: int = 0, full_delay: int = 49,
                 updates_per_step: int = 10, generator: Any = None,
                 make_batch: Callable[[int, int, Any], dict] | None = None) -> None:
        self.batch_size = check_int("batch_size", batch_size, min_value=1)
        self.full_delay = check_int("full_delay", full_delay, min_value=0)
        self.start_delay = check_int("start_delay", start_delay, min_value=0, max_value=self.full_delay)
        self.updates_per_step = check_int("updates_per_step", updates_per_step, min_value=1)
        self.generator = check_generator("generator", generator)
        if make_batch is not None and not callable(make_batch):
            raise TypeError("make_batch must be a function (batch_size, delay, generator) -> batch")
        self.make_batch = make_batch
        self.calls = 0

    @property
    def delay(self) -> int:
        return min(self.full_delay, self.start_delay + self.calls // self.updates_per_step)

    @property
    def n_ramp(self) -> int:
        return (self.full_delay - self.start_delay) * self.updates_per_step

    def timing(self, delay: int | None = None) -> dict[str, int]:
        """Keyword arguments of ``working_memory_batch`` for ``delay`` (default: the current one)."""
        d = self.delay if delay is None else check_int("delay", delay, min_value=0)
        u2_on = self.U1_OFF + 1 + d
        return {"u1_on": self.U1_ON, "u1_off": self.U1_OFF, "u2_on": u2_on,
                "u2_off": u2_on + self.U2_LENGTH - 1}

    def __call__(self) -> "WorkingMemoryBatch | dict":
        if self.make_batch is None:
            batch = working_memory_batch(self.batch_size, generator=self.generator, **self.timing())
        else:
            batch = self.make_batch(self.batch_size, self.delay, self.generator)
        self.calls += 1
        return batch

    def __repr__(self) -> str:
        return (f"DelayCurriculum(batch_size={self.batch_size}, delay={self.delay}, "
                f"start={self.start_delay}, full={self.full_delay}, every={self.updates_per_step})")
