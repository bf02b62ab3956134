"""The instructor's summary, written beside the gradebook by every run and every merge:

- ``summary.md``: the class at a glance (totals, a table per exercise with mean, median and how
  many submissions passed or failed it and why, the exercises most students missed, the most
  common failure messages, the slowest submissions) and the figure;
- ``summary.csv``: the per-exercise table (deterministic: the same for one run and a merge);
- ``times.csv``: every submission's time to run its notebook and to grade it, slowest first
  (these times vary from run to run);
- ``summary.png``: the status of every exercise across the class, the distribution of totals and
  of grading times.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from pathlib import Path

from .declarations import fmt_points
from .reports import _atomic_write, _csv
from .results import ERROR, FAIL, MISSING, NOT_IMPLEMENTED, PASS, GradingReport

__all__ = ["exercise_table", "failure_table", "summary_figure", "time_table", "write_summary"]

STATUSES = (PASS, FAIL, NOT_IMPLEMENTED, ERROR, MISSING)
_COLOURS = {PASS: "#4daf4a", FAIL: "#e41a1c", NOT_IMPLEMENTED: "#bdbdbd", ERROR: "#ff7f00",
            MISSING: "#984ea3"}


def _num(x: float) -> str:
    return fmt_points(round(x, 2))


def exercise_table(report: GradingReport) -> list[list[str]]:
    """Header and one row per exercise: points, number of submissions, mean and median points,
    how many got each status, and the percentage that passed."""
    rows = [["exercise", "function", "points", "submissions", "mean", "median",
             *STATUSES, "passed (%)"]]
    n = len(report.submissions)
    for e in report.exercises:
        res = [next(r for r in s.results if r.exercise == e.exercise) for s in report.submissions]
        pts = [r.points for r in res]
        counts = Counter(r.status for r in res)
        rows.append([e.exercise, e.function, fmt_points(e.points), str(n),
                     _num(statistics.fmean(pts)) if pts else "",
                     _num(statistics.median(pts)) if pts else "",
                     *[str(counts.get(s, 0)) for s in STATUSES],
                     _num(100 * counts.get(PASS, 0) / n) if n else ""])
    return rows


def failure_table(report: GradingReport, top: int = 10) -> list[tuple[int, str, str, str]]:
    """The ``top`` most common (count, exercise, status, message) among results that did not
    pass, most common first (ties by exercise, then message)."""
    counts = Counter((r.exercise, r.status, r.message) for s in report.submissions
                     for r in s.results if r.status != PASS)
    order = {e.exercise: i for i, e in enumerate(report.exercises)}
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], order.get(kv[0][0], 0), kv[0]))
    return [(c, ex, st, msg) for (ex, st, msg), c in ranked[:top]]


def time_table(report: GradingReport) -> list[list[str]]:
    """Header and one row per submission: seconds running its notebook, seconds in total
    (including the checks), slowest first."""
    subs = sorted(report.submissions, key=lambda s: (-s.total_seconds, s.name))
    return [["submission", "run (s)", "total (s)"]] + [
        [s.name, f"{s.run_seconds:.1f}", f"{s.total_seconds:.1f}"] for s in subs]


def summary_figure(report: GradingReport):
    """A matplotlib ``Figure`` (no pyplot state) of three panels: the status of each exercise
    across the class (stacked bars: a per-exercise score distribution, each exercise being all or
    nothing), the histogram of total points, and the histogram of grading time per submission."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(13, 0.9 + 0.38 * max(4, len(report.exercises))), layout="constrained")
    ax_ex, ax_tot, ax_time = fig.subplots(1, 3, width_ratios=[1.4, 1, 1])
    labels = [f"{e.exercise} {e.function} ({fmt_points(e.points)})" for e in report.exercises]
    left = [0] * len(report.exercises)
    for status in STATUSES:
        counts = [sum(1 for s in report.submissions for r in s.results
                      if r.exercise == e.exercise and r.status == status)
                  for e in report.exercises]
        if any(counts):
            ax_ex.barh(labels, counts, left=left, color=_COLOURS[status], label=status)
            left = [a + b for a, b in zip(left, counts)]
    ax_ex.invert_yaxis()
    ax_ex.set_xlabel("submissions")
    ax_ex.set_ylabel("exercise (points)")
    ax_ex.set_title("Status of each exercise")
    handles, names = ax_ex.get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower left", ncol=len(STATUSES), fontsize="small",
               frameon=False, title="status of an exercise", title_fontsize="small")
    max_total = sum(e.points for e in report.exercises)
    totals = [s.total for s in report.submissions]
    if all(float(e.points).is_integer() for e in report.exercises) and max_total <= 60:
        bins = [i - 0.5 for i in range(int(max_total) + 2)]  # one bar per whole number of points
        ax_tot.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        bins = 30
    ax_tot.hist(totals, bins=bins, range=None if isinstance(bins, list) else (0, max_total),
                color="#377eb8", edgecolor="white")
    ax_tot.set_xlabel(f"total points (of {fmt_points(max_total)})")
    ax_tot.set_ylabel("submissions")
    ax_tot.set_title("Totals")
    times = [s.total_seconds for s in report.submissions]
    ax_time.hist(times, bins=20, color="#999999", edgecolor="white")
    ax_time.set_xlabel("grading time per submission (s)")
    ax_time.set_ylabel("submissions")
    ax_time.set_title("Grading times")
    for ax in (ax_ex, ax_tot, ax_time):  # counts of submissions are whole numbers
        (ax.xaxis if ax is ax_ex else ax.yaxis).set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{report.lab}: {len(report.submissions)} submissions")
    return fig


def _md_cell(text: str, limit: int = 200) -> str:
    text = text if len(text) <= limit else text[:limit] + " …"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(c) for c in rows[0]) + " |",
           "|" + "|".join(" --- " for _ in rows[0]) + "|"]
    return out + ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows[1:]]


def _markdown(report: GradingReport, slowest: int) -> str:
    n = len(report.submissions)
    max_total = sum(e.points for e in report.exercises)
    totals = [s.total for s in report.submissions]
    lines = [f"# {report.lab}: grading summary", ""]
    if n:
        lines += [(f"{n} submissions; total points (of {fmt_points(max_total)}): mean "
                   f"{_num(statistics.fmean(totals))}, median {_num(statistics.median(totals))}, "
                   f"lowest {_num(min(totals))}, highest {_num(max(totals))}; "
                   f"{sum(t == max_total for t in totals)} with full marks. "
                   f"Sandbox: {report.sandbox}."), ""]
    else:
        lines += ["No submissions.", ""]
    lines += ["![Status of each exercise, totals and grading times](summary.png)", "",
              "## Per exercise", "", *_md_table(exercise_table(report)), ""]
    passed = {r[0]: int(r[6]) for r in exercise_table(report)[1:]}  # column 6: "pass" count
    missed = sorted((e for e in report.exercises if passed[e.exercise] < n),
                    key=lambda e: passed[e.exercise])  # stable: ties in notebook order
    lines += ["## Exercises most students missed", ""]
    for i, e in enumerate(missed[:5], 1):
        why = Counter(r.status for s in report.submissions for r in s.results
                      if r.exercise == e.exercise and r.status != PASS)
        lines.append(f"{i}. {e.exercise} `{e.function}`: {n - passed[e.exercise]} of {n} did not "
                     f"pass (" + ", ".join(f"{why[s]} {s}" for s in STATUSES if why[s]) + ")")
    if not missed:
        lines.append("Every submission passed every exercise." if n else "None.")
    lines += ["", "## Most common failure messages", ""]
    failures = failure_table(report)
    if failures:
        lines += _md_table([["count", "exercise", "status", "message"]]
                           + [[str(c), ex, st, msg or "(no message)"] for c, ex, st, msg in failures])
    else:
        lines += ["None."]
    times = time_table(report)
    lines += ["", f"## Slowest submissions ({min(slowest, n)} of {n}; all in times.csv)", "",
              ("Seconds to run the student's notebook and to grade it in total (they vary from "
               "run to run and with the machine's load; a notebook close to the time limits may "
               "score differently on a slower machine)."), "", *_md_table(times[:slowest + 1]), ""]
    return "\n".join(lines)


def write_summary(report: GradingReport, out: str | Path, *, slowest: int = 20) -> list[Path]:
    """Write ``summary.md``, ``summary.csv``, ``times.csv`` and ``summary.png`` into ``out``;
    returns their paths."""
    out = Path(out)
    paths = [out / "summary.md", out / "summary.csv", out / "times.csv", out / "summary.png"]
    _atomic_write(paths[0], _markdown(report, slowest))
    _atomic_write(paths[1], _csv(exercise_table(report)))
    _atomic_write(paths[2], _csv(time_table(report)))
    buffer = io.BytesIO()
    summary_figure(report).savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    _atomic_write(paths[3], buffer.getvalue())
    return paths
