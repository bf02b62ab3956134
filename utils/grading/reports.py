"""What the grader writes: ``gradebook.csv``, one feedback file per submission, ``index.csv``
(submission -> feedback file) and ``warnings.txt``; and the feedback files' names."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

from .declarations import fmt_points
from .results import PASS, GradingReport, SubmissionResult

__all__ = ["feedback_names", "gradebook_rows", "write_outputs"]

_UNSAFE = set('<>:"/\\|?*')  # not allowed in file names on some systems
_MAX_STEM_BYTES = 180


def _fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def feedback_names(submissions: list[str]) -> dict[str, str]:
    """Feedback file name for each submission file name: ``<name without .ipynb>.md`` when that is
    a safe, portable file name that no other submission shares (ignoring case and Unicode
    normalisation, as macOS and Windows do); otherwise a safe version of it plus ``-`` and eight
    hex digits of the name's SHA-256, so different submissions never share a feedback file and
    the name does not depend on which other files are in the folder except through such clashes.
    """
    stems = {s: (s.removesuffix(".ipynb")) for s in submissions}

    def safe(stem: str) -> str:
        text = "".join("_" if (ch in _UNSAFE or not ch.isprintable()) else ch
                       for ch in stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        text = text.strip(" .") or "submission"
        while len(text.encode("utf-8")) > _MAX_STEM_BYTES:
            text = text[:-1]
        return text

    def key(stem: str) -> str:
        return unicodedata.normalize("NFC", stem).casefold()

    count: dict[str, int] = {}
    for s in submissions:
        count[key(safe(stems[s]))] = count.get(key(safe(stems[s])), 0) + 1
    names = {}
    for s in submissions:
        stem = safe(stems[s])
        if stem != stems[s] or count[key(stem)] > 1:
            stem = f"{stem}-{_fingerprint(s)}"
        names[s] = stem + ".md"
    return names


def gradebook_rows(report: GradingReport) -> list[list[str]]:
    """The gradebook as rows of strings: header, one row per submission (sorted by file name)."""
    exercises = report.exercises
    max_total = sum(e.points for e in exercises)
    rows = [["submission"] + [e.column for e in exercises] + [f"total ({fmt_points(max_total)})"]]
    for sub in sorted(report.submissions, key=lambda s: s.name):
        by_ex = {r.exercise: r for r in sub.results}
        rows.append([sub.name] + [fmt_points(by_ex[e.exercise].points) for e in exercises]
                    + [fmt_points(sub.total)])
    return rows


def _feedback(report: GradingReport, sub: SubmissionResult) -> str:
    max_total = sum(e.points for e in report.exercises)
    lines = [f"# {report.lab}: feedback for {sub.name}", "",
             f"**Total: {fmt_points(sub.total)} / {fmt_points(max_total)} points**", ""]
    by_ex = {r.exercise: r for r in sub.results}
    for e in report.exercises:
        r = by_ex[e.exercise]
        mark = "passed" if r.status == PASS else r.status
        line = f"- Exercise {e.exercise} (`{e.function}`): {fmt_points(r.points)} / " \
               f"{fmt_points(e.points)}, {mark}"
        lines.append(line + (f": {r.message}" if r.message else ""))
    if sub.notes:
        lines += ["", "Notes on running your notebook:"]
        lines += [f"- {n}" for n in sub.notes[:20]]
        if len(sub.notes) > 20:
            lines.append(f"- ... and {len(sub.notes) - 20} more")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_dir():
        path.unlink() if path.is_symlink() else shutil.rmtree(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w",
                   **({} if isinstance(data, bytes) else {"newline": "", "encoding": "utf-8"})) as f:
        f.write(data)
    os.replace(tmp, path)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _prepare(folder: Path) -> None:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()  # only the link or file goes, not its target
    folder.mkdir(parents=True, exist_ok=True)


def write_outputs(report: GradingReport, out: str | Path,
                  originals: dict[str, bytes] | None = None) -> Path:
    """Write into ``out``: ``gradebook.csv``, ``feedback/<name>.md`` (names from
    :func:`feedback_names`, recorded in ``report.feedback``), ``index.csv`` (submission, feedback
    file), ``originals/<submission>`` for each entry of ``originals`` (the copy graded of a file
    that changed during the run), the summary (``summary.md``, ``summary.csv``, ``times.csv``,
    ``summary.png``: :mod:`.summary`) and ``warnings.txt``. Any other file found in ``out`` was not
    written by this run (an earlier run's, or planted): each is named in a warning. Returns ``out``.
    """
    out = Path(out)
    _prepare(out)
    try:
        os.chmod(out, 0o755)  # in case a submission changed the permissions
    except OSError:
        pass
    written = {out / "gradebook.csv", out / "index.csv", out / "warnings.txt"}
    _atomic_write(out / "gradebook.csv", _csv(gradebook_rows(report)))
    _prepare(out / "feedback")
    names = feedback_names([s.name for s in report.submissions])
    report.feedback = dict(sorted(names.items()))
    for sub in report.submissions:
        path = out / "feedback" / names[sub.name]
        _atomic_write(path, _feedback(report, sub))
        written.add(path)
    _atomic_write(out / "index.csv", _csv([["submission", "feedback"]] + [
        [s, f"feedback/{f}"] for s, f in report.feedback.items()]))
    for name, data in (originals or {}).items():
        _prepare(out / "originals")
        path = out / "originals" / name
        _atomic_write(path, data)
        written.add(path)
    from .summary import write_summary  # (summary uses this module's writers)

    try:
        written.update(write_summary(report, out))
    except Exception as err:  # the gradebook matters more than its summary
        report.warnings.append(f"the summary could not be written ({type(err).__name__}: {err})")
    stray = []
    for folder, dirs, files in os.walk(out):  # does not follow links
        for f in dirs + files:
            p = Path(folder, f)
            if p not in written and not (p.is_dir() and not p.is_symlink()):
                stray.append(str(p.relative_to(out)))
    if stray:
        report.warnings.append(
            f"{out} holds {len(stray)} file(s) this run did not write (from an earlier run, or "
            f"put there by someone else); they are not part of these results: "
            + ", ".join(sorted(stray)[:50]) + (" ..." if len(stray) > 50 else ""))
    if report.warnings:
        _atomic_write(out / "warnings.txt", "\n".join(report.warnings) + "\n")
    elif (out / "warnings.txt").exists() or (out / "warnings.txt").is_symlink():
        (out / "warnings.txt").unlink()
    return out
