"""How long does grading a class take? Prints numbers; asserts nothing.

Builds N synthetic submissions of a lab (a mix of complete, half-done and untouched labs made from
the solution notebook), then

1. executes a sample of them with plain nbclient, ``--jobs`` at a time, no grading: the notebooks'
   own run time;
2. grades all N with ``utils.grading.grade_folder`` (``--jobs`` at a time): total wall time, and
   per submission the grader's time minus the notebook's own run time (kernel set-up, the hidden
   checks' calls, clean-up).

    python benchmarks/benchmark_grading.py                      # 30 full labs (slow: trains)
    python benchmarks/benchmark_grading.py --part exercises     # only the exercise part

``--part exercises`` hands in the notebook up to its last graded exercise (what a student who
deleted the rest would hand in); the per-submission overhead does not depend on the part, the
total time for full labs is about N / jobs x (full run time + overhead).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import grading  # noqa: E402
from utils.labs import make_lab  # noqa: E402


def submissions(lab: str, n: int, part: str) -> list[tuple[str, nbformat.NotebookNode]]:
    solution = nbformat.read(grading.find_solution(lab), as_version=4)
    exercises = grading.read_declarations(solution)
    if part == "exercises":
        solution.cells = solution.cells[: max(e.cell_index for e in exercises) + 1]
    lab_nb = make_lab(solution)
    solved = nbformat.from_dict(solution)
    solved.cells = [c for c in solved.cells if "solution-only" not in c.metadata.get("tags", [])]
    defs = {e.function: next(i for i, c in enumerate(lab_nb.cells)
                             if c.cell_type == "code" and f"def {e.function}(" in c.source)
            for e in exercises}
    sol_defs = {f: next(c.source for c in solved.cells
                        if c.cell_type == "code" and f"def {f}(" in c.source) for f in defs}
    out = []
    for k in range(n):
        kind = k % 3
        if kind == 0:
            nb = solved
        elif kind == 1:
            nb = lab_nb
        else:  # the first half of the exercises done
            nb = nbformat.from_dict(lab_nb)
            for f in list(defs)[: len(defs) // 2 + 1]:
                nb.cells[defs[f]].source = sol_defs[f]
        out.append((f"student_{k:03d}.ipynb", nb))
    return out


def plain_run(nb: nbformat.NotebookNode, timeout: float) -> float:
    """Seconds to execute ``nb`` with plain nbclient (a cell over ``timeout`` ends the run)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
    with tempfile.TemporaryDirectory() as wd:
        t0 = time.monotonic()
        try:
            NotebookClient(nbformat.from_dict(nb), timeout=int(timeout), allow_errors=True,
                           resources={"metadata": {"path": wd}}).execute()
        except CellTimeoutError:
            print(f"  (a cell exceeded {timeout:.0f} s in the plain run: the time below is a lower bound)")
        return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="01_architecture")
    parser.add_argument("--n", type=int, default=30, help="number of submissions (default 30)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--part", choices=["full", "exercises"], default="full")
    parser.add_argument("--plain-sample", type=int, default=6,
                        help="submissions also run with plain nbclient to time the notebook itself")
    args = parser.parse_args()
    subs = submissions(args.lab, args.n, args.part)
    limits = grading.Limits()
    print(f"lab {args.lab} ({args.part}), {args.n} submissions, {args.jobs} at a time")

    sample = subs[: max(args.jobs, args.plain_sample)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        plain = list(pool.map(lambda s: plain_run(s[1], limits.cell_timeout), sample))
    plain_wall = time.monotonic() - t0
    plain_mean = statistics.mean(plain)
    print(f"plain nbclient run of {len(sample)} notebooks, {args.jobs} at a time: "
          f"{plain_wall:.1f} s; per notebook {plain_mean:.1f} s (min {min(plain):.1f}, "
          f"max {max(plain):.1f})")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "submissions"
        folder.mkdir()
        for name, nb in subs:
            nbformat.write(nb, folder / name)
        t0 = time.monotonic()
        report = grading.grade_folder(args.lab, folder, Path(tmp) / "grades", jobs=args.jobs,
                                      limits=limits, progress=None)
        total = time.monotonic() - t0
    per = [s.total_seconds for s in report.submissions]
    runs = [s.run_seconds for s in report.submissions]
    checks = [s.total_seconds - s.run_seconds for s in report.submissions]
    print(f"grading {args.n} submissions: {total:.1f} s in total ({total / args.n:.1f} s of wall "
          f"time per submission with {args.jobs} at a time)")
    print(f"per submission inside the grader: {statistics.mean(per):.1f} s "
          f"(min {min(per):.1f}, max {max(per):.1f}); of which running the cells "
          f"{statistics.mean(runs):.1f} s, hidden checks and clean-up {statistics.mean(checks):.1f} s")
    print(f"overhead per submission beyond the notebook's own run time (grader time - plain "
          f"nbclient time): {statistics.mean(per) - plain_mean:.1f} s")
    print(f"totals: {sorted(set(s.total for s in report.submissions))}")


if __name__ == "__main__":
    main()
