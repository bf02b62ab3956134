"""Every lab with grading declarations grades its own solution to full marks and the untouched
lab to zero (the exercise part only: the cells up to the last grading cell), and Lab 2's
in-place optimiser step is graded on what it does to the parameters it is given."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from utils import grading
from utils.labs import make_lab

ROOT = Path(__file__).resolve().parent.parent
LIMITS = grading.Limits(cell_timeout=60, notebook_timeout=400, call_timeout=30)
GRADED_LABS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb")
                     if p.stem != "01_architecture"  # graded at length in test_grading.py
                     and grading.read_declarations(p))


def _exercise_part(lab: str) -> tuple[nbformat.NotebookNode, list[grading.Exercise]]:
    solution = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    exercises = grading.read_declarations(solution)
    solution.cells = solution.cells[: max(e.cell_index for e in exercises) + 1]
    return solution, exercises


def _without_grading_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if "solution-only" not in c.metadata.get("tags", [])]
    return out


def test_every_lab_is_graded():
    labs = {p.stem for p in (ROOT / "solutions").glob("*.ipynb")} - {"01_architecture"}
    assert set(GRADED_LABS) == labs


@pytest.mark.parametrize("lab", GRADED_LABS)
def test_solution_full_marks_and_untouched_lab_zero(lab):
    solution, exercises = _exercise_part(lab)
    solved = grading.grade_notebook(_without_grading_cells(solution), exercises, limits=LIMITS)
    assert all(r.status == grading.PASS for r in solved.results), solved.results
    assert solved.total == sum(e.points for e in exercises) > 0
    untouched = grading.grade_notebook(make_lab(solution), exercises, limits=LIMITS)
    assert all(r.status == grading.NOT_IMPLEMENTED and r.points == 0 for r in untouched.results), \
        untouched.results


def test_lab2_per_parameter_clipping_loses_only_exercise_2_4():
    solution, exercises = _exercise_part("02_cost_function")
    nb = _without_grading_cells(solution)
    i = next(k for k, c in enumerate(nb.cells) if "def clipped_sgd_step(" in c.source)
    nb.cells[i].source = (
        "def clipped_sgd_step(params, lr, max_norm):\n"
        "    total = 0.0\n"
        "    with torch.no_grad():\n"
        "        for p in params:\n"
        "            if p.grad is None:\n"
        "                continue\n"
        "            n = float(p.grad.norm())\n"
        "            total += n ** 2\n"
        "            p -= lr * p.grad * min(1.0, max_norm / n) if n > 0 else 0.0\n"
        "    return total ** 0.5\n")
    result = grading.grade_notebook(nb, exercises, limits=LIMITS)
    by = {r.exercise: r for r in result.results}
    assert by["2.4"].status == grading.FAIL and by["2.4"].points == 0
    assert "parameter" in by["2.4"].message
    assert all(by[e].status == grading.PASS for e in ["2.1", "2.2", "2.3"])
