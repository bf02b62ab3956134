"""Grading itself: one notebook (:func:`grade_notebook`) and a folder of them (:func:`grade_folder`).

Hidden checks never run in the student's kernel: they run in the grader, where ``fn`` is a proxy
that sends each call's arguments to the student's kernel and brings back only the returned value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..labs import ROOT
from . import shards
from .declarations import Exercise, find_solution, fmt_points, read_declarations
from .reports import write_outputs
from .results import (
    ERROR,
    FAIL,
    MISSING,
    NOT_IMPLEMENTED,
    PASS,
    ExerciseResult,
    GradingReport,
    Limits,
    RemoteError,
    SubmissionResult,
    clean,
)
from .sandbox import Sandbox, find_sandbox
from .session import _RemoteFunction, _Session

__all__ = ["grade_folder", "grade_notebook"]


def _compile_checks(exercises: list[Exercise]) -> dict[str, Callable[[Any], Any]]:
    checks = {}
    for ex in exercises:
        namespace: dict[str, Any] = {"__name__": f"grading_{ex.exercise}"}
        exec(compile(ex.source, f"<grading cell {ex.cell_index}: exercise {ex.exercise}>", "exec"),
             namespace)
        fn = namespace.get("hidden_check")
        if not callable(fn):
            raise ValueError(f"grading cell {ex.cell_index} does not define hidden_check(fn)")
        checks[ex.exercise] = fn
    return checks


def _run_check(check: Callable[[Any], Any], fn: _RemoteFunction, ex: Exercise) -> ExerciseResult:
    from ..checks import CheckFailure
    max_pts = ex.points
    try:
        check(fn)
    except NotImplementedError:
        return ExerciseResult(ex.exercise, 0.0, max_pts, NOT_IMPLEMENTED,
                              f"`{ex.function}` still raises NotImplementedError")
    except (CheckFailure, AssertionError) as err:
        return ExerciseResult(ex.exercise, 0.0, max_pts, FAIL, clean(str(err) or "wrong answer"))
    except RemoteError as err:
        status = MISSING if "does not define" in str(err) else ERROR
        return ExerciseResult(ex.exercise, 0.0, max_pts, status, clean(str(err)))
    except Exception as err:  # the student's value broke the check: a wrong answer, not a crash
        where = traceback.extract_tb(err.__traceback__)[-1]
        return ExerciseResult(ex.exercise, 0.0, max_pts, FAIL, clean(
            f"the check could not use your result: {type(err).__name__}: {err} "
            f"(check line {where.lineno})"))
    return ExerciseResult(ex.exercise, max_pts, max_pts, PASS, "")


def _code_cells(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append(src if isinstance(src, str) else "".join(src))
    return out


def _sandbox(sandbox: str | Sandbox) -> Sandbox:
    return sandbox if isinstance(sandbox, Sandbox) else find_sandbox(sandbox)


def grade_notebook(notebook: nbformat.NotebookNode | bytes | str, exercises: list[Exercise], *,
                   name: str = "submission", limits: Limits | None = None,
                   checks: dict[str, Callable] | None = None, sandbox: str | Sandbox = "auto",
                   tmp_root: Path | None = None, hidden: tuple[Path, ...] = ()) -> SubmissionResult:
    """Run one submission in a fresh kernel and grade it with the hidden checks.

    ``notebook`` is a notebook object, or the raw bytes/text of an ``.ipynb`` file (only its code
    cells are run; stored outputs are ignored). ``sandbox`` is ``"auto"``, ``"bwrap"`` or
    ``"none"`` (see :func:`utils.grading.sandbox.find_sandbox`); ``hidden`` lists folders of the
    grader's (submissions, outputs, solutions) to cover up inside the sandbox should they lie
    inside a folder it shows read-only. Never raises because of the
    submission: unreadable notebooks, errors, time-outs and dead kernels give zero points for what
    they affect and a note in the result.

    Raises:
        TypeError: ``notebook``, ``exercises`` or ``limits`` have the wrong type.
        ValueError: ``sandbox`` is unknown, or ``"bwrap"`` and bubblewrap cannot run here.
    """
    t0 = time.monotonic()
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a utils.grading.Limits, got {type(limits).__name__}")
    if not isinstance(exercises, list) or not all(isinstance(e, Exercise) for e in exercises):
        raise TypeError("exercises must be a list of Exercise (see read_declarations)")
    if not isinstance(notebook, (nbformat.NotebookNode, bytes, str)):
        raise TypeError(f"notebook must be a notebook, bytes or str, got {type(notebook).__name__}")
    box = _sandbox(sandbox)
    checks = _compile_checks(exercises) if checks is None else checks

    def zero(status: str, message: str) -> list[ExerciseResult]:
        return [ExerciseResult(e.exercise, 0.0, e.points, status, message) for e in exercises]

    if not isinstance(notebook, nbformat.NotebookNode):
        try:
            text = notebook.decode("utf-8") if isinstance(notebook, bytes) else notebook
            notebook = nbformat.reads(text, as_version=4)
            cells = _code_cells(notebook)
        except Exception as err:
            msg = clean(f"the file is not a readable notebook ({type(err).__name__})")
            return SubmissionResult(name, zero(ERROR, msg), [msg],
                                    total_seconds=time.monotonic() - t0)
    else:
        cells = _code_cells(notebook)
    del notebook  # stored outputs can be large: keep only the code

    own_tmp = tmp_root is None
    tmp_root = Path(tempfile.mkdtemp(prefix="la_grade_")) if own_tmp else tmp_root
    session = _Session(cells, limits, box, tmp_root, hidden)
    try:
        try:
            session.run_notebook()
        except Exception as err:  # e.g. the kernel could not start at all
            session.alive = False
            session.notes.append(clean(f"the notebook could not be run: {type(err).__name__}: {err}"))
        results = []
        reruns = 0
        helper = session.install_helper()
        for ex in exercises:
            if not helper:
                results.append(ExerciseResult(ex.exercise, 0.0, ex.points, ERROR,
                                              "the notebook's kernel was lost; nothing could be checked"))
                continue
            results.append(_run_check(checks[ex.exercise], _RemoteFunction(session, ex.function), ex))
            if not session.alive and reruns < session.limits.max_restarts:
                # a call hung or killed the kernel: later exercises get a fresh run of the notebook
                reruns += 1
                session.notes.append(f"checking exercise {ex.exercise} hung or crashed the kernel; "
                                     f"the notebook was run again for the remaining exercises")
                try:
                    session.run_notebook(record=False)
                    helper = session.install_helper()
                except Exception:
                    helper = False
        notes = [clean(n, str(session.workdir)) for n in session.notes]
        return SubmissionResult(name, results, notes, run_seconds=session.run_seconds,
                                total_seconds=time.monotonic() - t0)
    finally:
        session.close()
        if own_tmp:
            shutil.rmtree(tmp_root, ignore_errors=True)


# --- a folder of submissions ---------------------------------------------------------------------

@dataclass
class _Entry:
    """One ``*.ipynb`` entry of the submissions folder, as read before any student code ran."""

    name: str
    data: bytes | None = None     # None: not graded, ``problem`` says why
    problem: str = ""
    stamp: tuple = ()             # (size, mtime_ns) when read
    digest: str = ""              # SHA-256 of ``data``


def _read_entry(path: Path, max_bytes: int) -> _Entry:
    """Read one submission without following it into anything but a regular file, rejecting it by
    its size before reading, and never opening it for writing."""
    entry = _Entry(path.name)
    try:
        st = os.stat(path)  # follows a link: an instructor may link downloaded files in
    except OSError:
        entry.problem = "is a link to nothing (broken link)" if path.is_symlink() \
            else "could not be read"
        return entry
    entry.stamp = (st.st_size, st.st_mtime_ns)
    if stat.S_ISDIR(st.st_mode):
        entry.problem = "is a folder, not a notebook file"
    elif not stat.S_ISREG(st.st_mode):
        entry.problem = "is not a regular file"
    elif st.st_size > max_bytes:
        entry.problem = (f"is larger than the {max_bytes // 2**20} MB limit "
                         f"({st.st_size / 2**20:.0f} MB); it was not read")
    else:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise OSError("not a regular file")
                data = f.read(max_bytes + 1)
        except OSError:
            entry.problem = "could not be read"
            return entry
        if len(data) > max_bytes:
            entry.problem = f"is larger than the {max_bytes // 2**20} MB limit; it was not graded"
        else:
            entry.data, entry.digest = data, hashlib.sha256(data).hexdigest()
    return entry


def _unchanged(path: Path, entry: _Entry) -> bool:
    try:
        st = os.stat(path)
        if entry.data is None:
            return (st.st_size, st.st_mtime_ns) == entry.stamp
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(entry.data):
            return False
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest() == entry.digest
    except OSError:
        return not entry.stamp  # unreadable before and after


def grade_folder(lab: str, submissions: str | Path, out: str | Path | None = None, *,
                 jobs: int = 2, limits: Limits | None = None, root: Path = ROOT,
                 sandbox: str = "auto", shard: str | tuple[int, int] | None = None,
                 progress: Callable[[str], None] | None = print) -> GradingReport:
    """Grade every ``*.ipynb`` directly inside ``submissions`` against lab ``lab``.

    Every submission is read (never written) before any student code runs: links are followed to
    the file they point to; folders, broken links and files over ``limits.submission_mb`` get a
    row with 0 points and a warning. Each is graded in its own kernel (``jobs`` at a time), inside
    a bubblewrap sandbox when ``sandbox`` is ``"auto"`` and bwrap works here, or ``"bwrap"``
    (required); without one, a warning says so. The gradebook, feedback files, ``index.csv`` and
    ``warnings.txt`` are written to ``out`` (default: ``<submissions>_grades`` next to the folder)
    after every kernel has been stopped. A submission file that changed during the run is
    reported, and the copy that was graded is saved in ``out/originals/``. A summary for the
    instructor (:mod:`.summary`) is written beside the gradebook.

    ``shard="K/N"`` grades only shard K (from 0) of N (see :mod:`.shards`) and writes a shard
    folder to ``out`` (default: ``<submissions>_shard_K_of_N`` next to the folder) instead of the
    gradebook; :func:`utils.grading.merge` combines the N shard folders into exactly the outputs
    of one run. The returned report then holds only that shard's submissions.

    Raises:
        TypeError / ValueError: unknown lab, missing folder, bad ``jobs``, ``limits``, ``sandbox``
        or ``shard``, an output folder inside the submissions folder, or (with ``shard``) an
        output folder that holds anything but an earlier shard.
    """
    t0 = time.monotonic()
    solution = find_solution(lab, root)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a utils.grading.Limits, got {type(limits).__name__}")
    if not isinstance(submissions, (str, Path)):
        raise TypeError(f"submissions must be a folder path, got {type(submissions).__name__}")
    folder = Path(submissions).resolve()
    if not folder.is_dir():
        raise ValueError(f"submissions must be an existing folder, got {str(submissions)!r}")
    part = None if shard is None else shards.parse_shard(shard)
    default = f"{folder.name}_grades" if part is None else \
        f"{folder.name}_shard_{part[0]}_of_{part[1]}"
    out_dir = (folder.parent / default) if out is None else Path(out).resolve()
    if out_dir == folder or folder in out_dir.parents:
        raise ValueError(f"out must not be inside the submissions folder, got {str(out)!r}")
    if part is not None:
        shards.check_shard_folder(out_dir)
        shards.course_digest()  # the course code as it is before any kernel starts
    exercises = read_declarations(solution)
    if not exercises:
        raise ValueError(f"{solution.name} declares no graded exercise (see CONTRIBUTING.md, "
                         f"'Grading declarations')")
    box = find_sandbox(sandbox)
    checks = _compile_checks(exercises)
    warnings: list[str] = [box.warning()] if not box.isolated else []
    if progress and warnings:
        progress("warning: " + warnings[0])

    # read everything first: nothing a student does later changes what is graded
    listing = sorted(name for name in os.listdir(folder)
                     if name.endswith(".ipynb") and not name.startswith("."))
    positions = list(range(len(listing))) if part is None else \
        shards.shard_indices(len(listing), *part)
    entries = [_read_entry(folder / listing[i], limits.submission_mb * 2**20) for i in positions]
    read_warnings = []
    for e in entries:
        if e.problem:
            read_warnings.append(f"{e.name} {e.problem}; it scores 0")
        elif (folder / e.name).is_symlink():
            read_warnings.append(f"{e.name} is a symbolic link; the file it points to was graded")
        else:
            read_warnings.append("")
    hidden = (folder, out_dir, solution.parent.resolve())
    tmp_root = Path(tempfile.mkdtemp(prefix="la_grade_"))

    def one(entry: _Entry) -> SubmissionResult:
        if entry.data is None:
            msg = f"the file {entry.problem}"
            result = SubmissionResult(entry.name, [ExerciseResult(e.exercise, 0.0, e.points, ERROR,
                                                                  msg) for e in exercises], [msg])
        else:
            try:
                result = grade_notebook(entry.data, exercises, name=entry.name, limits=limits,
                                        checks=checks, sandbox=box, tmp_root=tmp_root,
                                        hidden=hidden)
            except Exception as err:  # a bug of ours must not stop the other submissions
                msg = clean(f"internal grader error: {type(err).__name__}: {err}")
                result = SubmissionResult(entry.name, [ExerciseResult(e.exercise, 0.0, e.points,
                                                                      ERROR, msg)
                                                       for e in exercises], [msg])
        if progress:
            progress(f"{entry.name}: {fmt_points(result.total)} / "
                     f"{fmt_points(sum(e.points for e in exercises))} "
                     f"({result.total_seconds:.1f} s)")
        return result

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, entries))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    graded = []
    for i, e, result, read_warning in zip(positions, entries, results, read_warnings):
        changed, original = "", None
        if not _unchanged(folder / e.name, e):
            saved = e.data is not None
            changed = (f"{e.name} was changed or removed during grading (only a submission "
                       f"running without the sandbox could do that); it was graded from the "
                       f"copy read before the run" + ("; that copy is in originals/" if saved else ""))
            original = e.data if saved else None
        graded.append(shards.Graded(i, result, read_warning, changed, e.digest, original))
    if part is not None:
        shards.write_shard(out_dir, shard=part, lab=solution.stem, solution=solution,
                           exercises=exercises, limits=limits, sandbox=box.kind,
                           warnings=warnings, listing=listing, graded=graded,
                           seconds=time.monotonic() - t0)
        report, _ = shards.assemble(solution.stem, exercises, graded, warnings,
                                    time.monotonic() - t0, box.kind)
        report.out = out_dir
        if progress:
            for w in report.warnings:
                progress("warning: " + w)
            progress(f"wrote shard {part[0]}/{part[1]} ({len(results)} of {len(listing)} "
                     f"submissions) to {out_dir} in {report.seconds:.1f} s; sandbox: {box.kind}. "
                     f"When all {part[1]} shards are done: python -m utils.grading merge "
                     f"<shard folders> --out <grades>")
        return report
    report, originals = shards.assemble(solution.stem, exercises, graded, warnings,
                                        time.monotonic() - t0, box.kind)
    try:
        report.out = write_outputs(report, out_dir, originals)
    except OSError as err:  # e.g. a submission made the folder unwritable: keep the results anyway
        fallback = Path(tempfile.mkdtemp(prefix=f"{folder.name}_grades_"))
        report.warnings.append(f"could not write to {out_dir} ({err}); results are in {fallback}")
        report.out = write_outputs(report, fallback, originals)
        out_dir = fallback
    if progress:
        for w in report.warnings:
            progress("warning: " + w)
        progress(f"wrote {out_dir / 'gradebook.csv'} and {len(results)} feedback files "
                 f"(listed in index.csv) in {report.seconds:.1f} s; sandbox: {box.kind}")
    return report
