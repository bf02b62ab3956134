"""Grade a folder of handed-in labs: one command, a gradebook CSV and one feedback file per student.

Command line (from the repository root)::

    python -m utils.grading 01_architecture path/to/submissions --out path/to/grades

writes ``grades/gradebook.csv`` (one row per submitted ``.ipynb``, one column per exercise with the
points awarded, a total), ``grades/feedback/<submission>.md`` (which checks failed and why),
``grades/index.csv`` (which feedback file belongs to which submission) and, when there is something
to say, ``grades/warnings.txt``; and a summary for the instructor beside them (:mod:`.summary`).

A large class is graded in pieces (:mod:`.shards`): ``--shard K/N`` on each of N machines (a Slurm
job array, a GitHub Actions matrix: recipes in ``utils/grading/recipes/``), then
``python -m utils.grading merge SHARD_FOLDERS... --out grades`` writes exactly what one run writes.

**Declarations** (:mod:`.declarations`). Points and hidden checks live in the solution notebook, in
a code cell tagged ``solution-only`` right after each exercise (so ``labs/`` never contains them),
whose metadata says ``{"grading": {"exercise": "1.1", "function": "sign_matrix", "points": 2}}``
and whose code defines ``hidden_check(fn)``: trusted code that calls ``fn`` like the function it
grades and raises (:class:`utils.checks.CheckFailure`, ``AssertionError``, ...) when the answer is
wrong.

**Isolation** (:mod:`.sandbox`, :mod:`.session`). Each submission runs top to bottom, every cell
even after errors, in its own fresh IPython kernel, inside a bubblewrap sandbox when ``bwrap``
works on this machine (its own PID, mount and network namespaces, a read-only view of the system
and of Python, only its own scratch folders writable, dying with the grader), with time limits per
cell and per notebook, memory and file-size limits, and a cap on the output kept. Without
bubblewrap the grader says so in its output and in ``warnings.txt``. ``hidden_check`` never runs in
the student's kernel: it runs in the grader, where ``fn`` is a proxy that sends each call's
arguments (plain data and tensors, :mod:`.values`) to the student's kernel, calls the student's
function there and brings back only the returned *value*. The student's code therefore decides
what their function returns and nothing else. The guarantees, as tested, are listed in the
"Grading" section of the instructors' page (book/instructors.md).

Modules: :mod:`.declarations` (grading cells), :mod:`.results` (limits and results), :mod:`.values`
(what crosses between grader and kernel), :mod:`.sandbox` (bubblewrap), :mod:`.session` (one
kernel), :mod:`.runner` (grading a notebook and a folder), :mod:`.reports` (output files),
:mod:`.summary` (the instructor's summary), :mod:`.shards` (shards and merging), :mod:`.cli`
(the commands).
"""

from __future__ import annotations

from . import results as _results
from .cli import main
from .declarations import Exercise, find_solution, read_declarations
from .reports import feedback_names, gradebook_rows, write_outputs
from .results import *  # noqa: F401,F403  (statuses and result types, listed once in results.__all__)
from .runner import grade_folder, grade_notebook
from .sandbox import Sandbox, find_sandbox
from .shards import merge, parse_shard, read_shards, shard_indices
from .summary import summary_figure, write_summary

__all__ = [*_results.__all__, "Exercise", "Sandbox", "feedback_names", "find_sandbox",
           "find_solution", "grade_folder", "grade_notebook", "gradebook_rows", "main", "merge",
           "parse_shard", "read_declarations", "read_shards", "shard_indices", "summary_figure",
           "write_outputs", "write_summary"]
