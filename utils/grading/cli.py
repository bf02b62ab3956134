"""The instructors' commands::

    python -m utils.grading LAB SUBMISSIONS --out OUT                  # grade a folder
    python -m utils.grading LAB SUBMISSIONS --shard K/N --out SHARD_K  # grade shard K (0..N-1) of N
    python -m utils.grading merge SHARD_0 ... SHARD_N-1 --out OUT      # combine the N shards
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..labs import ROOT
from .results import Limits
from .runner import grade_folder
from .sandbox import SANDBOXES
from .shards import merge

__all__ = ["main"]


def _merge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading merge",
        description="Combine the shard folders written by `--shard K/N` runs (all N of them) into "
                    "OUT/gradebook.csv, OUT/feedback/, OUT/index.csv, OUT/warnings.txt and the "
                    "summary, exactly as one run over the whole folder writes them. Refuses "
                    "(exit status 2) when a shard is missing, given twice, unfinished, modified "
                    "or graded with another version of the lab.")
    parser.add_argument("shards", type=Path, nargs="+",
                        help="shard folders, or folders holding them (e.g. downloaded artifacts)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        merge(args.shards, args.out)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and grade (or merge shards); returns the exit status (0; errors
    exit with status 2 and a message)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading",
        description="Grade a folder of handed-in labs: writes OUT/gradebook.csv, "
                    "OUT/feedback/<submission>.md, OUT/index.csv, OUT/warnings.txt and a summary "
                    "(OUT/summary.md, .csv, .png, OUT/times.csv). "
                    "`python -m utils.grading merge --help`: combining shards.")
    parser.add_argument("lab", help="lab name, e.g. 01_architecture (or its number, 1)")
    parser.add_argument("submissions", type=Path, help="folder holding the submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <submissions>_grades next to it)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                        help="seconds allowed for one cell, or inf (default %(default)s)")
    parser.add_argument("--notebook-timeout", type=float, default=Limits.notebook_timeout,
                        help="seconds allowed for a whole notebook, or inf (default %(default)s)")
    parser.add_argument("--call-timeout", type=float, default=Limits.call_timeout,
                        help="seconds allowed for one call of a student's function by a check, "
                             "or inf (default %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                        help="address-space limit per kernel in MB (default %(default)s)")
    parser.add_argument("--max-submission-mb", type=int, default=Limits.submission_mb,
                        help="larger submission files score 0 without being read "
                             "(default %(default)s)")
    parser.add_argument("--sandbox", choices=SANDBOXES, default="auto",
                        help="auto: bubblewrap when it works here, else none (with a warning); "
                             "bwrap: refuse to grade without it; none: no sandbox")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="grade only shard K of N (K = 0 .. N-1; submissions sorted by name "
                             "and dealt round-robin) and write a shard folder to --out; combine "
                             "the N folders with `python -m utils.grading merge`")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                        call_timeout=args.call_timeout, memory_mb=args.memory_mb,
                        submission_mb=args.max_submission_mb)
        grade_folder(args.lab, args.submissions, args.out, jobs=args.jobs, limits=limits,
                     root=args.root, sandbox=args.sandbox, shard=args.shard)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
