"""What grading produces: resource limits, per-exercise and per-submission results, the report,
and the cleaning of student-derived text before it reaches a feedback file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .declarations import Exercise

__all__ = [
    "ERROR",
    "FAIL",
    "MISSING",
    "NOT_IMPLEMENTED",
    "PASS",
    "ExerciseResult",
    "GradingReport",
    "Limits",
    "RemoteError",
    "SubmissionResult",
    "clean",
]

PASS, FAIL, NOT_IMPLEMENTED, ERROR, MISSING = "pass", "fail", "not implemented", "error", "missing"
_MAX_MESSAGE = 400  # characters of any student-derived text kept in the feedback


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission (seconds, bytes, megabytes).

    Time limits may be ``math.inf`` (no limit). A submission file larger than ``submission_mb`` is
    rejected by its size, without being read; below that, stored outputs are ignored (only the
    code cells are run), so a correct notebook saved with its plots is graded like any other.
    """

    cell_timeout: float = 600.0       # any one cell of the student's notebook
    notebook_timeout: float = 1800.0  # the whole notebook (cells after the budget are not run)
    call_timeout: float = 60.0        # one call of a student's function by a hidden check
    output_bytes: int = 1_000_000     # output kept per notebook (the rest is discarded)
    memory_mb: int = 6000             # address-space limit of the kernel process
    file_mb: int = 200                # largest file the kernel may write
    submission_mb: int = 200          # largest submission file read (larger ones score 0, unread)
    max_restarts: int = 2             # fresh kernels after a cell that kills or hangs the kernel

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "call_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds (or math.inf), "
                                 f"got {value!r}")
        for name in ("output_bytes", "memory_mb", "file_mb", "submission_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) \
                or self.max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {self.max_restarts!r}")


@dataclass(frozen=True)
class ExerciseResult:
    """Outcome of one hidden check on one submission."""

    exercise: str
    points: float
    max_points: float
    status: str            # pass, fail, not implemented, error, missing
    message: str = ""


@dataclass
class SubmissionResult:
    """Everything the grader learnt about one submission."""

    name: str
    results: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)   # notebook-level problems, for the feedback
    run_seconds: float = 0.0      # executing the student's cells (not in the CSV: not reproducible)
    total_seconds: float = 0.0    # everything for this submission

    @property
    def total(self) -> float:
        return sum(r.points for r in self.results)


@dataclass
class GradingReport:
    """Result of :func:`utils.grading.grade_folder`.

    ``sandbox`` says how kernels were isolated (``"bwrap"`` or ``"none"``); ``feedback`` maps each
    submission's file name to its feedback file's name (also written to ``index.csv``)."""

    lab: str
    exercises: list[Exercise]
    submissions: list[SubmissionResult]
    warnings: list[str]
    seconds: float
    out: Path | None = None
    sandbox: str = "none"
    feedback: dict[str, str] = field(default_factory=dict)


class RemoteError(Exception):
    """The student's function raised (in the student's kernel) or could not be called."""


def clean(text: str, workdir: str | None = None) -> str:
    """Student-derived text made safe and reproducible for the feedback file."""
    text = str(text)
    if workdir:
        text = text.replace(workdir, ".")
    text = re.sub(r"/tmp/la_grade_[A-Za-z0-9_]+(/la_grade_[A-Za-z0-9_]+)?", ".", text)
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x…", text)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    text = "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " …"
