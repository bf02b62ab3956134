"""Grading declarations: which exercises a solution notebook grades, for how many points, and how.

A grading cell is a code cell of ``solutions/NN_name.ipynb``, tagged ``solution-only`` (so the lab
never shows it), whose metadata says ``{"grading": {"exercise": "1.1", "function": "sign_matrix",
"points": 2}}`` and whose code defines ``hidden_check(fn)`` (see CONTRIBUTING.md, "Grading
declarations").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..labs import ROOT

__all__ = ["Exercise", "find_solution", "fmt_points", "read_declarations"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Exercise:
    """One graded exercise, as declared by a grading cell of the solution notebook."""

    exercise: str          # e.g. "1.1"
    function: str          # name of the student's function, e.g. "sign_matrix"
    points: float          # points awarded when the hidden check passes
    source: str            # trusted code of the grading cell; defines hidden_check(fn)
    cell_index: int        # position of the grading cell in the solution notebook

    @property
    def column(self) -> str:
        """Gradebook column header, e.g. ``1.1 sign_matrix (2)``."""
        return f"{self.exercise} {self.function} ({fmt_points(self.points)})"


def fmt_points(x: float) -> str:
    """Points as the gradebook prints them: ``2`` rather than ``2.0``, ``0.5`` as is."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def read_declarations(solution: nbformat.NotebookNode | str | Path) -> list[Exercise]:
    """The graded exercises declared in a solution notebook, in notebook order.

    A grading cell is a code cell whose metadata has a ``grading`` entry
    ``{"exercise": str, "function": identifier, "points": positive number}``; it must be tagged
    ``solution-only`` (so the lab never shows it) and define ``hidden_check(fn)``.

    Raises:
        TypeError: ``solution`` is not a notebook or a path.
        ValueError: a grading cell is malformed (the message names the cell and the field).
    """
    if isinstance(solution, (str, Path)):
        solution = nbformat.read(Path(solution), as_version=4)
    if not isinstance(solution, nbformat.NotebookNode):
        raise TypeError(f"solution must be a notebook or a path, got {type(solution).__name__}")
    exercises: list[Exercise] = []
    for i, cell in enumerate(solution.cells):
        decl = cell.get("metadata", {}).get("grading")
        if decl is None:
            continue
        where = f"grading cell {i}"
        if cell.cell_type != "code":
            raise ValueError(f"{where}: grading metadata must be on a code cell, not {cell.cell_type}")
        if "solution-only" not in cell.metadata.get("tags", []):
            raise ValueError(f"{where}: a grading cell must be tagged 'solution-only'")
        if not isinstance(decl, dict) or set(decl) - {"exercise", "function", "points"}:
            raise ValueError(f"{where}: metadata 'grading' must be a dict with keys "
                             f"'exercise', 'function', 'points', got {decl!r}")
        ex, fn, pts = decl.get("exercise"), decl.get("function"), decl.get("points")
        if not isinstance(ex, str) or not ex.strip():
            raise ValueError(f"{where}: 'exercise' must be a non-empty string such as '1.1', got {ex!r}")
        if not isinstance(fn, str) or not _IDENT.match(fn):
            raise ValueError(f"{where}: 'function' must be a Python identifier, got {fn!r}")
        if isinstance(pts, bool) or not isinstance(pts, (int, float)) or not pts > 0 \
                or not math.isfinite(pts):
            raise ValueError(f"{where}: 'points' must be a positive number, got {pts!r}")
        if not re.search(r"^def hidden_check\(", cell.source, re.MULTILINE):
            raise ValueError(f"{where}: the cell must define `def hidden_check(fn):`")
        if any(e.exercise == ex for e in exercises):
            raise ValueError(f"{where}: exercise {ex!r} is declared twice")
        exercises.append(Exercise(ex, fn, float(pts), cell.source, i))
    return exercises


def find_solution(lab: str, root: Path = ROOT) -> Path:
    """Path of ``solutions/<lab>.ipynb``; ``lab`` may be ``01_architecture``, with or without
    ``.ipynb``, or just the chapter number (``1`` or ``01``).

    Raises:
        TypeError: ``lab`` is not a string.
        ValueError: no (or more than one) solution notebook matches; the message lists the labs.
    """
    if not isinstance(lab, str):
        raise TypeError(f"lab must be a string such as '01_architecture', got {type(lab).__name__}")
    folder = Path(root) / "solutions"
    available = sorted(p.stem for p in folder.glob("*.ipynb"))
    name = lab.removesuffix(".ipynb")
    name = Path(name).name
    if name in available:
        return folder / f"{name}.ipynb"
    if name.isdigit():
        matches = [a for a in available if a.split("_", 1)[0].lstrip("0") == name.lstrip("0")]
        if len(matches) == 1:
            return folder / f"{matches[0]}.ipynb"
    raise ValueError(f"lab must be one of {available} (or its chapter number), got {lab!r}")


