"""Grading a large class in pieces: ``--shard K/N`` grades a fixed 1/N of a folder and writes one
result file per submission; :func:`merge` combines the N shard folders into exactly the gradebook,
feedback files, ``index.csv`` and ``warnings.txt`` that one run over the whole folder writes.

**Which submissions a shard grades.** The folder's ``*.ipynb`` entries, sorted by name (as a
single run sorts them), are dealt round-robin: entry ``i`` goes to shard ``i % N``. Shards are
numbered from 0 (``0/3``, ``1/3``, ``2/3``), like ``SLURM_ARRAY_TASK_ID`` and GitHub's
``strategy.job-index``. The same folder always gives the same split (adding a file may move
others to another shard: re-grade every shard after changing the folder).

**A shard folder** holds ``results/<i>.json`` (submission ``i`` of the sorted listing: its name,
the SHA-256 of the bytes graded, every exercise's points, status and message, notes, timings and
the folder-level warnings about it), ``originals/<i>`` (only for a file that changed during an
unsandboxed run: the copy graded) and, written last, ``shard.json``: which shard of how many, the
lab, the SHA-256 of the solution notebook and of the course's ``utils`` code, the exercises, the
limits, the sandbox, the full sorted listing of the folder and the SHA-256 of each result file.
A shard that did not finish has no ``shard.json``.

**Merging trusts nothing it reads.** Every file is checked against a JSON schema and against the
others: every shard ``0 .. N-1`` present exactly once; the same lab, solution, course code,
limits and folder listing in every shard; each result file present, unmodified (its hash), for a
submission of its own shard, with the declared exercises and points in range. Anything else
raises a :class:`ValueError` that says what is wrong (the command exits with status 2).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .declarations import Exercise, fmt_points
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
    SubmissionResult,
)

__all__ = ["Graded", "assemble", "course_digest", "merge", "parse_shard", "shard_indices",
           "write_shard"]

SHARD_FORMAT, RESULT_FORMAT, VERSION = "less-artificial grading shard", \
    "less-artificial grading result", 1
MANIFEST = "shard.json"
UTILS_DIR = Path(__file__).resolve().parents[1]
_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_SECONDS = {"type": "number", "minimum": 0}
_TEXT = {"type": "string", "maxLength": 100_000}

RESULT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "version", "index", "submission", "sha256", "results", "notes",
                 "run_seconds", "total_seconds", "read_warning", "changed_warning", "original"],
    "properties": {
        "format": {"const": RESULT_FORMAT},
        "version": {"const": VERSION},
        "index": {"type": "integer", "minimum": 0},
        "submission": {"type": "string", "minLength": 1},
        "sha256": {"anyOf": [_HEX64, {"const": ""}]},
        "results": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["exercise", "points", "max_points", "status", "message"],
            "properties": {
                "exercise": {"type": "string"},
                "points": {"type": "number", "minimum": 0},
                "max_points": {"type": "number", "exclusiveMinimum": 0},
                "status": {"enum": [PASS, FAIL, NOT_IMPLEMENTED, ERROR, MISSING]},
                "message": _TEXT}}},
        "notes": {"type": "array", "items": _TEXT},
        "run_seconds": _SECONDS,
        "total_seconds": _SECONDS,
        "read_warning": _TEXT,
        "changed_warning": _TEXT,
        "original": {"anyOf": [{"type": "null"},
                               {"type": "string", "pattern": "^originals/[0-9]{5,}$"}]},
    },
}

MANIFEST_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "version", "shard", "of", "lab", "solution_sha256", "course_sha256",
                 "exercises", "limits", "sandbox", "warnings", "submissions", "results", "seconds"],
    "properties": {
        "format": {"const": SHARD_FORMAT},
        "version": {"const": VERSION},
        "shard": {"type": "integer", "minimum": 0},
        "of": {"type": "integer", "minimum": 1},
        "lab": {"type": "string", "minLength": 1},
        "solution_sha256": _HEX64,
        "course_sha256": _HEX64,
        "exercises": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "required": ["exercise", "function", "points", "cell_index", "source"],
            "properties": {"exercise": {"type": "string", "minLength": 1},
                           "function": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                           "points": {"type": "number", "exclusiveMinimum": 0},
                           "cell_index": {"type": "integer", "minimum": 0},
                           "source": {"type": "string"}}}},
        "limits": {"type": "object"},
        "sandbox": {"enum": ["bwrap", "none"]},
        "warnings": {"type": "array", "items": _TEXT},
        "submissions": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "results": {"type": "object", "additionalProperties": _HEX64,
                    "propertyNames": {"pattern": "^[0-9]{5,}\\.json$"}},
        "seconds": _SECONDS,
    },
}


@dataclass
class Graded:
    """One graded entry of the folder: its position ``index`` in the sorted listing, its result,
    the folder-level warnings about it (``read_warning``: a link, a folder, a file too large...;
    ``changed_warning``: the file changed during the run), the SHA-256 of the bytes graded and,
    for a file that changed during the run, the copy graded (``original``)."""

    index: int
    result: SubmissionResult
    read_warning: str = ""
    changed_warning: str = ""
    sha256: str = ""
    original: bytes | None = None


# --- which submissions a shard grades -------------------------------------------------------------

def parse_shard(text: str | tuple[int, int]) -> tuple[int, int]:
    """``"K/N"`` (shard K of N, K counted from 0) as ``(K, N)``.

    Raises:
        TypeError: ``text`` is not a string or a pair.
        ValueError: not of the form ``K/N`` with integers ``0 <= K < N``.
    """
    if isinstance(text, tuple):
        parts = text
        ok = len(parts) == 2 and all(isinstance(p, int) and not isinstance(p, bool) for p in parts)
    elif isinstance(text, str):
        parts = tuple(text.strip().split("/"))
        ok = len(parts) == 2 and all(p.strip().isascii() and p.strip().isdigit()
                                          for p in parts)
    else:
        raise TypeError(f"shard must be a string 'K/N' such as '0/4', got {type(text).__name__}")
    if not ok:
        raise ValueError(f"shard must be 'K/N' with whole numbers, e.g. '0/4', got {text!r}")
    k, n = (int(p) for p in parts)
    if n < 1 or not 0 <= k < n:
        raise ValueError(f"shard K/N needs N >= 1 and 0 <= K <= N-1 (shards are counted from 0, "
                         f"like SLURM_ARRAY_TASK_ID), got {text!r}")
    return k, n


def shard_indices(n_entries: int, shard: int, of: int) -> list[int]:
    """Positions (in the sorted listing of ``n_entries`` entries) that shard ``shard`` of ``of``
    grades: every ``of``-th entry starting at ``shard`` (round-robin, so shards differ in size by at
    most one entry)."""
    return list(range(shard, n_entries, of))


# --- digests -------------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def course_digest(utils_dir: Path = UTILS_DIR) -> str:
    """SHA-256 over the course's ``utils`` Python sources (paths and contents) when this process
    first asks (a grading run asks before any kernel starts): shards graded with different course
    code (checks, reference functions, the grader) are not merged."""
    h = hashlib.sha256()
    for path in sorted(Path(utils_dir).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(utils_dir).as_posix().encode() + b"\0")
        h.update(_sha256(path.read_bytes()).encode() + b"\n")
    return h.hexdigest()


def _limits_dict(limits: Limits) -> dict[str, float | int | str]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else "inf")
            for k, v in asdict(limits).items()}


# --- assembling a report (a single run and a merge share this) ------------------------------------

def assemble(lab: str, exercises: list[Exercise], graded: Iterable[Graded], warnings: list[str],
             seconds: float, sandbox: str) -> tuple[GradingReport, dict[str, bytes]]:
    """The report of a whole folder from its graded entries (any order) and the run's own
    warnings; also returns the originals to save (submission name -> bytes graded)."""
    graded = sorted(graded, key=lambda g: g.index)
    warnings = list(warnings) + [g.read_warning for g in graded if g.read_warning] \
        + [g.changed_warning for g in graded if g.changed_warning]
    originals = {g.result.name: g.original for g in graded if g.original is not None}
    report = GradingReport(lab, exercises, [g.result for g in graded], warnings, seconds,
                           sandbox=sandbox)
    return report, originals


# --- writing a shard -----------------------------------------------------------------------------

def _dump(obj: dict) -> str:
    # ASCII only (names that are not valid UTF-8 travel as escapes); fixed key order
    return json.dumps(obj, ensure_ascii=True, indent=1, allow_nan=False) + "\n"


def _write(path: Path, text: str | bytes) -> None:
    data = text.encode("ascii") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def check_shard_folder(out: Path) -> None:
    """``out`` may be missing, empty, or an earlier shard's folder (which is replaced).

    Raises:
        ValueError: ``out`` holds anything else (so that a shard never deletes your files).
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError(f"a shard's out must be a folder, got {str(out)!r}")
    if out.is_dir():
        content = set(os.listdir(out))
        if content and not (MANIFEST in content and content <= {MANIFEST, "results", "originals"}):
            raise ValueError(f"a shard's out must be a new or empty folder, or an earlier shard's "
                             f"folder; {str(out)!r} holds other files: "
                             f"{', '.join(sorted(content)[:10])}")


def write_shard(out: Path, *, shard: tuple[int, int], lab: str, solution: Path,
                exercises: list[Exercise], limits: Limits, sandbox: str, warnings: list[str],
                listing: list[str], graded: list[Graded], seconds: float) -> Path:
    """Write a shard folder (see the module docstring); ``shard.json`` last. Returns ``out``."""
    out = Path(out)
    check_shard_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        (out / MANIFEST).unlink()  # first: a half-rewritten folder is never taken for a shard
    for sub in ("results", "originals"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "results").mkdir()
    hashes = {}
    for g in sorted(graded, key=lambda g: g.index):
        r = g.result
        original = None
        if g.original is not None:
            (out / "originals").mkdir(exist_ok=True)
            original = f"originals/{g.index:05d}"
            _write(out / original, g.original)
        record = {"format": RESULT_FORMAT, "version": VERSION, "index": g.index,
                  "submission": r.name, "sha256": g.sha256,
                  "results": [asdict(x) for x in r.results], "notes": list(r.notes),
                  "run_seconds": r.run_seconds, "total_seconds": r.total_seconds,
                  "read_warning": g.read_warning, "changed_warning": g.changed_warning,
                  "original": original}
        text = _dump(record)
        name = f"{g.index:05d}.json"
        _write(out / "results" / name, text)
        hashes[name] = _sha256(text.encode("ascii"))
    manifest = {"format": SHARD_FORMAT, "version": VERSION, "shard": shard[0], "of": shard[1],
                "lab": lab, "solution_sha256": _sha256(Path(solution).read_bytes()),
                "course_sha256": course_digest(),
                "exercises": [{"exercise": e.exercise, "function": e.function, "points": e.points,
                               "cell_index": e.cell_index, "source": e.source} for e in exercises],
                "limits": _limits_dict(limits), "sandbox": sandbox, "warnings": list(warnings),
                "submissions": list(listing), "results": hashes, "seconds": seconds}
    _write(out / MANIFEST, _dump(manifest))
    return out


# --- reading and merging -------------------------------------------------------------------------

def _load(path: Path, schema: dict, what: str) -> dict:
    import jsonschema  # a dependency of nbformat

    try:
        with open(path, "rb") as f:
            data = f.read(50 * 2**20 + 1)
        if len(data) > 50 * 2**20:
            raise ValueError("larger than 50 MB")
        obj = json.loads(data.decode("ascii"), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{what} {path} is not a readable grading file ({err})") from None
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise ValueError(f"{what} {path} is not a valid grading file (at {where}: "
                         f"{err.message[:300]})") from None
    return obj


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _find_shards(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    found, unfinished = [], []
    for p in paths:
        p = Path(p)
        if not p.is_dir():
            raise ValueError(f"shard folder {str(p)!r} does not exist")
        if (p / MANIFEST).is_file():
            found.append(p)
            continue
        subs = sorted(q for q in p.iterdir() if q.is_dir())
        inner = [q for q in subs if (q / MANIFEST).is_file()]
        unfinished += [q for q in subs if (q / "results").is_dir() and q not in inner]
        if not inner:
            raise ValueError(f"{str(p)!r} is not a shard folder (no {MANIFEST}) and holds none"
                             + (f"; {', '.join(map(str, unfinished))} have results but no "
                                f"{MANIFEST}: those shards did not finish" if unfinished else ""))
        found += inner
    return found, unfinished


def _same(manifests: dict[Path, dict], key: str, what: str) -> None:
    values = {}
    for path, m in manifests.items():
        values.setdefault(json.dumps(m[key], sort_keys=True), []).append(path)
    if len(values) > 1:
        groups = "; ".join(f"{', '.join(str(p) for p in ps)}" for ps in values.values())
        raise ValueError(f"the shards come from different {what} and cannot be merged "
                         f"(groups: {groups}); grade every shard again with the same version")


def _exercise_of(e: dict) -> Exercise:
    return Exercise(e["exercise"], e["function"], float(e["points"]), e["source"], e["cell_index"])


def read_shards(paths: list[str | Path]) -> tuple[dict, list[Graded], list[str], str]:
    """Read and check shard folders (each path is a shard folder or a folder of them).

    Returns the first manifest, every graded entry, the run's own warnings and the sandbox kind.

    Raises:
        ValueError: a shard is missing, given twice or unfinished; shards disagree (lab, solution,
        course code, limits, folder listing, number of shards); a file is missing, modified or
        does not follow the schema; a result is for a submission of another shard.
    """
    if isinstance(paths, (str, Path)) or not paths:
        raise ValueError("give one or more shard folders (or folders holding them)")
    folders, unfinished = _find_shards([Path(p) for p in paths])
    manifests = {f: _load(f / MANIFEST, MANIFEST_SCHEMA, "shard manifest") for f in folders}
    _same(manifests, "of", "numbers of shards (N in K/N)")
    _same(manifests, "lab", "labs")
    _same(manifests, "solution_sha256", "versions of the solution notebook")
    _same(manifests, "exercises", "grading declarations")
    _same(manifests, "course_sha256", "versions of the course code (utils)")
    _same(manifests, "limits", "grading limits")
    _same(manifests, "submissions", "folders (the listing of submissions differs)")
    first = next(iter(manifests.values()))
    n = first["of"]
    by_shard: dict[int, list[Path]] = {}
    for f, m in manifests.items():
        by_shard.setdefault(m["shard"], []).append(f)
    twice = {k: v for k, v in by_shard.items() if len(v) > 1}
    if twice:
        raise ValueError("shard(s) given more than once: " + "; ".join(
            f"{k}/{n} in {', '.join(map(str, v))}" for k, v in sorted(twice.items())))
    outside = sorted(k for k in by_shard if k >= n)
    missing = sorted(set(range(n)) - set(by_shard))
    if outside:
        raise ValueError(f"shard number(s) {outside} do not exist for N = {n}")
    if missing:
        raise ValueError(f"shard(s) {', '.join(f'{k}/{n}' for k in missing)} missing: merge needs "
                         f"all {n} shards" + (f" ({', '.join(map(str, unfinished))} did not "
                                              f"finish: no {MANIFEST})" if unfinished else ""))
    listing = first["submissions"]
    if len(set(listing)) != len(listing) or listing != sorted(listing):
        raise ValueError("the shard manifests' listing of submissions is not sorted and unique")
    exercises = [_exercise_of(e) for e in first["exercises"]]
    declared = [(e.exercise, e.points) for e in exercises]
    graded, warnings, kinds = [], [], {}
    for k in range(n):
        folder = by_shard[k][0]
        m = manifests[folder]
        expected = {f"{i:05d}.json" for i in shard_indices(len(listing), k, n)}
        if set(m["results"]) != expected:
            raise ValueError(f"shard {k}/{n} ({folder}) lists results for the wrong submissions "
                             f"(expected {len(expected)}, got {len(m['results'])})")
        for name, digest in sorted(m["results"].items()):
            path = folder / "results" / name
            try:
                actual = _sha256(path.read_bytes())
            except OSError:
                raise ValueError(f"shard {k}/{n}: result file {path} is missing") from None
            if actual != digest:
                raise ValueError(f"shard {k}/{n}: result file {path} was modified after the "
                                 f"shard wrote it (its SHA-256 differs from {MANIFEST})")
            rec = _load(path, RESULT_SCHEMA, "result file")
            i = rec["index"]
            if name != f"{i:05d}.json" or listing[i] != rec["submission"]:
                raise ValueError(f"result file {path} is for another submission "
                                 f"({rec['submission']!r}, index {i})")
            got = [(r["exercise"], float(r["max_points"])) for r in rec["results"]]
            if got != declared:
                raise ValueError(f"result file {path} does not have the declared exercises and "
                                 f"points (expected {declared}, got {got})")
            if any(r["points"] > r["max_points"] for r in rec["results"]):
                raise ValueError(f"result file {path} awards more points than an exercise has")
            original = None
            if rec["original"] is not None:
                try:
                    original = (folder / rec["original"]).read_bytes()
                except OSError:
                    raise ValueError(f"shard {k}/{n}: {folder / rec['original']} is missing") \
                        from None
                if _sha256(original) != rec["sha256"]:
                    raise ValueError(f"shard {k}/{n}: {folder / rec['original']} is not the "
                                     f"copy that was graded (SHA-256 differs)")
            result = SubmissionResult(
                rec["submission"],
                [ExerciseResult(r["exercise"], float(r["points"]), float(r["max_points"]),
                                r["status"], r["message"]) for r in rec["results"]],
                list(rec["notes"]), run_seconds=float(rec["run_seconds"]),
                total_seconds=float(rec["total_seconds"]))
            graded.append(Graded(i, result, rec["read_warning"], rec["changed_warning"],
                                 rec["sha256"], original))
        for w in m["warnings"]:
            if w not in warnings:
                warnings.append(w)
        kinds[k] = m["sandbox"]
    sandbox = "bwrap" if set(kinds.values()) == {"bwrap"} else "none"
    if len(set(kinds.values())) > 1:
        warnings.append("the shards ran with different sandboxes: " + ", ".join(
            f"{k}/{n} {v}" for k, v in sorted(kinds.items())))
    return first, graded, warnings, sandbox


def merge(shards: list[str | Path], out: str | Path, *,
          progress: Callable[[str], None] | None = print) -> GradingReport:
    """Combine the shard folders of one folder of submissions into ``out``: the same
    ``gradebook.csv``, ``feedback/``, ``index.csv``, ``warnings.txt`` (and ``originals/``) as one
    run of :func:`utils.grading.grade_folder` over the whole folder, plus the summary
    (:mod:`.summary`). ``shards`` lists shard folders or folders holding them (e.g. one
    download of all of a workflow's artifacts).

    Raises:
        ValueError: see :func:`read_shards`; or ``out`` is a shard folder or inside one.
    """
    t0 = time.monotonic()
    if isinstance(shards, (str, Path)):
        shards = [shards]
    if not isinstance(out, (str, Path)):
        raise TypeError(f"out must be a folder path, got {type(out).__name__}")
    manifest, graded, warnings, sandbox = read_shards(list(shards))
    out = Path(out).resolve()
    for s in shards:
        s = Path(s).resolve()
        if out == s or s in out.parents or out in s.parents:
            raise ValueError(f"out must be outside the shard folders, got {str(out)!r}")
    exercises = [_exercise_of(e) for e in manifest["exercises"]]
    report, originals = assemble(manifest["lab"], exercises, graded, warnings,
                                 time.monotonic() - t0, sandbox)
    report.out = write_outputs(report, out, originals)
    report.seconds = time.monotonic() - t0
    if progress:
        for w in report.warnings:
            progress("warning: " + w)
        total = sum(e.points for e in exercises)
        progress(f"merged {manifest['of']} shard(s) of {len(graded)} submissions (mean "
                 f"{fmt_points(round(sum(s.total for s in report.submissions) / max(1, len(graded)), 2))}"
                 f" / {fmt_points(total)}): wrote {out / 'gradebook.csv'} and the summary in "
                 f"{report.seconds:.1f} s; sandbox: {sandbox}")
    return report

