"""Instructor grading (utils.grading): declarations, argument checks, the output files, and one
grading run of synthetic submissions built from the real Lab 1 (solution and generated lab).

The submissions are the exercise part of Lab 1 (every cell up to the last graded exercise, as a
student who deleted the training part would hand in): the grader always runs every cell it is
given, so this only keeps the test fast. Well-behaved and hostile submissions are graded in the
same run; the well-behaved ones are graded again on their own, and must get identical rows and
feedback (reproducible, and undisturbed by the hostile neighbours).
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import nbformat
import pytest

from utils import grading
from utils.labs import make_lab

ROOT = Path(__file__).resolve().parent.parent
LAB = "01_architecture"
SOLUTION = nbformat.read(ROOT / "solutions" / f"{LAB}.ipynb", as_version=4)
EXERCISES = grading.read_declarations(SOLUTION)
POINTS = {e.exercise: e.points for e in EXERCISES}
FUNCTION = {e.exercise: e.function for e in EXERCISES}
FULL = sum(POINTS.values())
# generous for the notebook's cells on a loaded 2-core machine, small enough for the loop cases
TEST_LIMITS = grading.Limits(cell_timeout=45, notebook_timeout=400, call_timeout=30)


# --- building submissions ------------------------------------------------------------------------

def _exercise_part(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook up to (and including) the self-check / grading cell of the last exercise."""
    last_grading = max(e.cell_index for e in EXERCISES)
    out = nbformat.from_dict(nb)
    out.cells = out.cells[: last_grading + 1]
    return out


SOLUTION_PART = _exercise_part(SOLUTION)
LAB_PART = make_lab(SOLUTION_PART)
# the lab completed with the solution's answers (what a perfect student hands in: no grading cells)
SOLVED_PART = nbformat.from_dict(SOLUTION_PART)
SOLVED_PART.cells = [c for c in SOLVED_PART.cells if "solution-only" not in c.metadata.get("tags", [])]


def _index_of_def(nb: nbformat.NotebookNode, function: str) -> int:
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and f"def {function}(" in c.source)


def _with(nb: nbformat.NotebookNode, replace: dict[str, str] | None = None,
          insert_after: dict[str, list[str]] | None = None, append: list[str] | None = None
          ) -> nbformat.NotebookNode:
    """Copy of ``nb``: exercise cells replaced (by function name), code cells inserted after the
    exercise cell of a function, code cells appended."""
    nb = nbformat.from_dict(nb)
    for function, source in (replace or {}).items():
        nb.cells[_index_of_def(nb, function)].source = source
    for function, sources in (insert_after or {}).items():
        i = _index_of_def(nb, function)
        nb.cells[i + 1:i + 1] = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in (append or [])]
    return nb


def _solution_source(function: str) -> str:
    return SOLUTION_PART.cells[_index_of_def(SOLUTION_PART, function)].source


def _with_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """As Colab's "Download .ipynb" gives it: with outputs (which the grader ignores)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✅ PASS (in Colab)\n")]
            cell.execution_count = 1
    return nb


def _submissions(subs: Path, out: Path) -> dict[str, tuple[nbformat.NotebookNode, float]]:
    """name -> (notebook, expected total)."""
    half = ["1.1", "1.2", "1.5"]
    wrong_block = ("def dendritic_block_mask(n_units, n_branches):\n"
                   "    return torch.ones(n_units, n_units * n_branches)\n")
    daemon = (
        "import subprocess, sys\n"
        f"OUT = {str(out)!r}\n"
        "code = ('import os, time\\n'\n"
        "        'for _ in range(1500):\\n'\n"
        "        '    time.sleep(0.1)\\n'\n"
        "        '    p = os.path.join(OUT, \"gradebook.csv\")\\n'\n"
        "        '    if os.path.exists(p) and \"hacked\" not in open(p).read():\\n'\n"
        "        '        open(p, \"w\").write(\"hacked\")\\n')\n"
        "subprocess.Popen([sys.executable, '-c', 'OUT = %r\\n' % OUT + code], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")
    vandal = (
        "import glob, os\n"
        f"SUBS, OUT = {str(subs)!r}, {str(out)!r}\n"
        "for p in glob.glob(os.path.join(SUBS, '*.ipynb')) + glob.glob('../*.ipynb'):\n"
        "    if 'vandal' not in p:\n"
        "        open(p, 'w').write('{}')\n"
        "os.makedirs(OUT, exist_ok=True)\n"
        "open(os.path.join(OUT, 'gradebook.csv'), 'w').write('submission,total\\nvandal.ipynb,1000\\n')\n"
        "os.makedirs(os.path.expanduser('~/.ipython/profile_default/startup'), exist_ok=True)\n"
        "open(os.path.expanduser('~/.ipython/profile_default/startup/00-evil.py'), 'w').write(\n"
        "    'def sign_matrix(n, f):\\n    return 0\\n')\n")
    cheat = (
        "import numpy, torch, utils.checks, utils.checks.architecture as arch\n"
        "check = lambda *a, **k: True\n"
        "check_dendritic_block_mask = lambda *a, **k: print('PASS')\n"
        "arch.check_dendritic_block_mask = check_dendritic_block_mask\n"
        "utils.checks.expect_close = lambda *a, **k: None\n"
        "utils.checks.expect = lambda *a, **k: None\n"
        "torch.allclose = numpy.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True\n")
    no_checks = nbformat.from_dict(_with(SOLVED_PART, replace={"dendritic_block_mask": wrong_block},
                                         append=[cheat]))
    no_checks.cells = [c for c in no_checks.cells if not (c.cell_type == "code"
                                                          and c.source.startswith("check_"))]
    return {
        "solution.ipynb": (_with_outputs(SOLVED_PART), FULL),
        "untouched_lab.ipynb": (LAB_PART, 0.0),
        "half_done.ipynb": (_with(LAB_PART, replace={FUNCTION[e]: _solution_source(FUNCTION[e])
                                                     for e in half}),
                            sum(POINTS[e] for e in half)),
        "wrong_block_mask.ipynb": (_with(SOLVED_PART, replace={"dendritic_block_mask": wrong_block}),
                                   FULL - POINTS["1.5"]),
        "hostile_raises.ipynb": (_with(
            SOLVED_PART,
            insert_after={"sign_matrix": ["raise ValueError('a student cell that fails')"],
                          "sparsity_mask": ["x = bytearray(10**12)  # over the memory limit"]},
            replace={"dendritic_block_mask": "def dendritic_block_mask(n_units, n_branches):\n"
                                             "    raise RuntimeError('oops')\n"}),
            FULL - POINTS["1.5"]),
        "hostile_loop.ipynb": (_with(SOLVED_PART, append=["while True:\n    pass"]), FULL),
        "hostile_unstoppable.ipynb": (_with(SOLVED_PART, insert_after={"dale_mask": [
            "import time\nwhile True:\n    try:\n        time.sleep(0.5)\n"
            "    except BaseException:\n        pass"]}), FULL),
        "hostile_crash.ipynb": (_with(SOLVED_PART, insert_after={"sparsity_mask": [
            "import os\nos._exit(3)"]}), FULL),
        "hostile_prints.ipynb": (_with(SOLVED_PART, append=[
            "for _ in range(20):\n    print('x' * 1_000_000)"]), FULL),
        "hostile_renames.ipynb": (_with(SOLVED_PART, append=[
            "sign_matrix_v2 = sign_matrix\ndel sign_matrix\ndel dendritic_block_mask"]),
            FULL - POINTS["1.1"] - POINTS["1.2"] - POINTS["1.5"]),  # dale_mask calls sign_matrix: it fails too
        "hostile_cheats.ipynb": (no_checks, FULL - POINTS["1.5"]),
        "hostile_imports.ipynb": (_with(SOLVED_PART, insert_after={"sign_matrix": [
            "import a_package_that_is_not_installed"]}), FULL),
        "hostile_vandal.ipynb": (_with(SOLVED_PART, append=[vandal, daemon]), FULL),
    }


WELL_BEHAVED = ["solution.ipynb", "half_done.ipynb", "wrong_block_mask.ipynb"]


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    subs, out = base / "submissions", base / "grades"
    subs.mkdir()
    cases = _submissions(subs, out)
    for name, (nb, _) in cases.items():
        nbformat.write(nb, subs / name)
    originals = {p.name: p.read_bytes() for p in subs.iterdir()}
    t0 = time.monotonic()
    report = grading.grade_folder(LAB, subs, out, jobs=2, limits=TEST_LIMITS, progress=None)
    seconds = time.monotonic() - t0
    time.sleep(3)  # give a surviving background process the chance to overwrite the gradebook
    # the well-behaved submissions again, on their own
    subs2, out2 = base / "again", base / "again_grades"
    subs2.mkdir()
    for name in WELL_BEHAVED:
        (subs2 / name).write_bytes(originals[name])
    report2 = grading.grade_folder(LAB, subs2, out2, jobs=2, limits=TEST_LIMITS, progress=None)
    return dict(cases=cases, subs=subs, out=out, report=report, originals=originals,
                out2=out2, report2=report2, seconds=seconds)


def _totals(graded) -> dict[str, float]:
    return {s.name: s.total for s in graded["report"].submissions}


# --- the grading run -------------------------------------------------------------------------------

def test_every_submission_gets_exactly_its_expected_points(graded):
    totals = _totals(graded)
    expected = {name: pts for name, (_, pts) in graded["cases"].items()}
    assert totals == expected, {n: (totals[n], expected[n]) for n in expected if totals[n] != expected[n]}


def test_solution_full_marks_and_lab_zero(graded):
    by = {s.name: s for s in graded["report"].submissions}
    assert all(r.status == grading.PASS for r in by["solution.ipynb"].results)
    assert by["solution.ipynb"].total == FULL > 0
    assert all(r.status == grading.NOT_IMPLEMENTED and r.points == 0
               for r in by["untouched_lab.ipynb"].results)


def test_half_done_and_wrong_answers_per_exercise(graded):
    by = {s.name: {r.exercise: r for r in s.results} for s in graded["report"].submissions}
    half = by["half_done.ipynb"]
    assert {e for e, r in half.items() if r.status == grading.PASS} == {"1.1", "1.2", "1.5"}
    assert all(r.status == grading.NOT_IMPLEMENTED for e, r in half.items() if e in ("1.3", "1.4"))
    wrong = by["wrong_block_mask.ipynb"]["1.5"]
    assert wrong.status == grading.FAIL and wrong.points == 0
    assert "dendritic_block_mask" in wrong.message and "differs" in wrong.message


def test_gradebook_csv(graded):
    rows = _read_csv(graded["out"] / "gradebook.csv")
    assert rows[0] == ["submission"] + [e.column for e in EXERCISES] + [f"total ({FULL:g})"]
    assert [r[0] for r in rows[1:]] == sorted(graded["cases"])
    for row in rows[1:]:
        points = [float(x) for x in row[1:-1]]
        assert math.isclose(sum(points), float(row[-1]))
        assert float(row[-1]) == graded["cases"][row[0]][1]
        assert all(p in (0.0, e.points) for p, e in zip(points, EXERCISES))


def test_feedback_says_what_failed_and_why(graded):
    fb = graded["out"] / "feedback"
    assert sorted(p.name for p in fb.iterdir()) == sorted(Path(n).stem + ".md" for n in graded["cases"])
    wrong = (fb / "wrong_block_mask.md").read_text()
    assert f"**Total: {FULL - POINTS['1.5']:g} / {FULL:g} points**" in wrong
    assert "Exercise 1.5 (`dendritic_block_mask`): 0 / 1, fail: dendritic_block_mask(" in wrong
    assert "Exercise 1.1 (`sign_matrix`): 2 / 2, passed" in wrong
    assert "NotImplementedError" in (fb / "untouched_lab.md").read_text()
    assert "RuntimeError: oops" in (fb / "hostile_raises.md").read_text()
    assert "ModuleNotFoundError" in (fb / "hostile_imports.md").read_text()


def test_hostile_notebooks_are_contained(graded):
    fb = graded["out"] / "feedback"
    assert "time limit" in (fb / "hostile_loop.md").read_text()
    unstoppable = (fb / "hostile_unstoppable.md").read_text()
    assert "did not stop when interrupted" in unstoppable and "run again without it" in unstoppable
    assert "kernel died" in (fb / "hostile_crash.md").read_text()
    assert "discarded" in (fb / "hostile_prints.md").read_text()
    raises = (fb / "hostile_raises.md").read_text()
    assert "ValueError: a student cell that fails" in raises and "MemoryError" in raises
    renamed = {r.exercise: r for r in next(s for s in graded["report"].submissions
                                           if s.name == "hostile_renames.ipynb").results}
    assert renamed["1.1"].status == renamed["1.5"].status == grading.MISSING
    assert "renamed or deleted" in renamed["1.1"].message
    assert renamed["1.2"].status == grading.ERROR and "NameError" in renamed["1.2"].message


def test_redefined_checks_gain_nothing(graded):
    cheat = {r.exercise: r for r in next(s for s in graded["report"].submissions
                                         if s.name == "hostile_cheats.ipynb").results}
    assert cheat["1.5"].status == grading.FAIL and cheat["1.5"].points == 0
    assert all(cheat[e].status == grading.PASS for e in ("1.1", "1.2", "1.3", "1.4"))


def test_vandal_changes_nobody_elses_files_or_result(graded):
    subs, out, report = graded["subs"], graded["out"], graded["report"]
    text = (out / "gradebook.csv").read_text()
    assert "hacked" not in text and "1000" not in text
    assert _read_csv(out / "gradebook.csv") == grading.gradebook_rows(report)
    if report.sandbox == "bwrap":  # the submissions are not even visible to a kernel
        for name, data in graded["originals"].items():
            assert (subs / name).read_bytes() == data, f"{name} was changed"
        assert not (out / "warnings.txt").exists()
    else:  # without the sandbox the vandal succeeds; the grader says so and keeps what it graded
        warnings = (out / "warnings.txt").read_text()
        assert "NO SANDBOX" in warnings
        assert "solution.ipynb was changed or removed during grading" in warnings
        assert (out / "originals" / "solution.ipynb").read_bytes() == graded["originals"]["solution.ipynb"]


def test_reproducible_and_undisturbed_by_neighbours(graded):
    rows = {r[0]: r for r in _read_csv(graded["out"] / "gradebook.csv")}
    rows2 = _read_csv(graded["out2"] / "gradebook.csv")
    assert rows2[0] == rows["submission"]
    assert [r for r in rows2[1:]] == [rows[n] for n in sorted(WELL_BEHAVED)]
    for name in WELL_BEHAVED:
        stem = Path(name).stem + ".md"
        assert (graded["out"] / "feedback" / stem).read_text() == \
            (graded["out2"] / "feedback" / stem).read_text()
    warnings = graded["out2"] / "warnings.txt"
    assert not warnings.exists() or warnings.read_text().startswith("NO SANDBOX")


def test_cli(tmp_path, capsys):
    # the command line, on a folder whose only "notebook" is unreadable (no kernel needed)
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "junk.ipynb").write_text("not a notebook")
    (subs / "notes.txt").write_text("not a submission")
    assert grading.main([LAB, str(subs), "--out", str(tmp_path / "g"), "--jobs", "1"]) == 0
    rows = _read_csv(tmp_path / "g" / "gradebook.csv")
    assert rows == [["submission"] + [e.column for e in EXERCISES] + [f"total ({FULL:g})"],
                    ["junk.ipynb"] + ["0"] * (len(EXERCISES) + 1)]
    assert "not a readable notebook" in (tmp_path / "g" / "feedback" / "junk.md").read_text()
    assert "wrote" in capsys.readouterr().out
    assert grading.main([LAB, str(subs)]) == 0  # default output folder: next to the submissions
    assert (tmp_path / "subs_grades" / "gradebook.csv").is_file()


def test_outputs_replace_links_instead_of_following_them(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    (out / "feedback").mkdir(parents=True)
    (out / "gradebook.csv").symlink_to(victim)
    (out / "feedback" / "a.md").symlink_to(victim)
    report = grading.GradingReport(LAB, EXERCISES, [grading.SubmissionResult(
        "a.ipynb", [grading.ExerciseResult(e.exercise, e.points, e.points, grading.PASS)
                    for e in EXERCISES])], [], 0.0)
    grading.write_outputs(report, out)
    assert victim.read_text() == "precious"
    assert not (out / "gradebook.csv").is_symlink() and not (out / "feedback" / "a.md").is_symlink()
    assert _read_csv(out / "gradebook.csv")[1][-1] == f"{FULL:g}"


# --- declarations and the lab --------------------------------------------------------------------

def test_lab1_declarations_and_no_hidden_material_in_the_lab():
    # every exercise of the lab, numbered in notebook order (the second edition added 1.6, 1.7)
    assert len(EXERCISES) >= 5
    assert [e.exercise for e in EXERCISES] == [f"1.{i}" for i in range(1, len(EXERCISES) + 1)]
    assert all(e.points > 0 for e in EXERCISES)
    lab_text = (ROOT / "labs" / f"{LAB}.ipynb").read_text()
    assert "hidden_check" not in lab_text and '"grading"' not in lab_text
    for e in EXERCISES:
        assert e.source.split("def hidden_check", 1)[1][:40] not in lab_text
        assert f"def {e.function}(" in lab_text


def _nb_with(cell_source: str, metadata: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(cell_source)
    cell.metadata.update(metadata)
    nb.cells = [cell]
    return nb


GOOD = {"tags": ["solution-only"], "grading": {"exercise": "9.1", "function": "f", "points": 1}}


@pytest.mark.parametrize("metadata, source, match", [
    ({"grading": GOOD["grading"]}, "def hidden_check(fn):\n    pass", "solution-only"),
    ({**GOOD, "grading": {**GOOD["grading"], "points": 0}}, "def hidden_check(fn):\n    pass", "points"),
    ({**GOOD, "grading": {**GOOD["grading"], "points": True}}, "def hidden_check(fn):\n    pass", "points"),
    ({**GOOD, "grading": {**GOOD["grading"], "function": "not valid"}}, "def hidden_check(fn):\n    pass",
     "function"),
    ({**GOOD, "grading": {**GOOD["grading"], "exercise": 1.1}}, "def hidden_check(fn):\n    pass",
     "exercise"),
    ({**GOOD, "grading": {**GOOD["grading"], "pts": 1}}, "def hidden_check(fn):\n    pass", "keys"),
    (GOOD, "def check(fn):\n    pass", "hidden_check"),
])
def test_bad_declarations_are_errors(metadata, source, match):
    with pytest.raises(ValueError, match=match):
        grading.read_declarations(_nb_with(source, metadata))


def test_declarations_round_trip_and_type_errors():
    ex = grading.read_declarations(_nb_with("def hidden_check(fn):\n    pass", GOOD))
    assert ex == [grading.Exercise("9.1", "f", 1.0, "def hidden_check(fn):\n    pass", 0)]
    with pytest.raises(TypeError, match="solution"):
        grading.read_declarations(42)


def test_find_solution_and_argument_checks(tmp_path):
    path = ROOT / "solutions" / f"{LAB}.ipynb"
    assert grading.find_solution(LAB) == grading.find_solution(LAB + ".ipynb") == path
    assert grading.find_solution("1") == grading.find_solution("01") == path
    with pytest.raises(ValueError, match="lab must be one of"):
        grading.find_solution("99_nothing")
    with pytest.raises(TypeError, match="lab"):
        grading.find_solution(1)
    with pytest.raises(ValueError, match="submissions must be an existing folder"):
        grading.grade_folder(LAB, tmp_path / "missing", progress=None)
    with pytest.raises(ValueError, match="jobs"):
        grading.grade_folder(LAB, tmp_path, jobs=0, progress=None)
    with pytest.raises(ValueError, match="out must not be inside"):
        grading.grade_folder(LAB, tmp_path, tmp_path / "grades", progress=None)
    with pytest.raises(ValueError, match="cell_timeout"):
        grading.Limits(cell_timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        grading.Limits(memory_mb=1.5)
    with pytest.raises(ValueError, match="call_timeout"):
        grading.Limits(call_timeout=math.nan)
    assert grading.Limits(cell_timeout=math.inf, notebook_timeout=math.inf).cell_timeout == math.inf
    with pytest.raises(ValueError, match="sandbox must be one of"):
        grading.grade_folder(LAB, tmp_path, tmp_path.parent / "g", sandbox="docker", progress=None)
    with pytest.raises(SystemExit):
        grading.main(["99_nothing", str(tmp_path)])


def test_unreadable_file_scores_zero_without_running_anything():
    result = grading.grade_notebook(b"\x00 not json", EXERCISES, name="junk.ipynb")
    assert result.total == 0 and all(r.status == grading.ERROR for r in result.results)
    assert "not a readable notebook" in result.notes[0]
