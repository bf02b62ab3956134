"""The lab pipeline: labs/ is generated from solutions/, no notebook carries outputs, every
notebook starts with the generated setup cell, and the stub generation works."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from utils import labs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in labs.NOTEBOOK_DIRS for p in (ROOT / d).glob("*.ipynb"))


def test_labs_and_setup_cells_are_up_to_date():
    problems = labs.check(ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_outputs_in_git(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} stores outputs"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_code_cell_is_the_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == labs.setup_source(ROOT)
    assert labs.repo_url(ROOT) in first.source


def test_every_solution_has_exercises_and_its_lab_has_none_of_the_answers():
    for sol in sorted((ROOT / "solutions").glob("*.ipynb")):
        text = sol.read_text()
        assert "### BEGIN SOLUTION" in text, f"{sol.name} has no exercise"
        lab_text = (ROOT / "labs" / sol.name).read_text()
        for marker in ["### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS",
                       "<!-- BEGIN SOLUTION -->", "solution-only"]:
            assert marker not in lab_text, f"labs/{sol.name} contains {marker!r}"
        assert "NotImplementedError" in lab_text


def test_strip_solutions_keeps_indentation_and_stub_message():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    out = labs.strip_solutions(src, "code")
    assert "return 2 * x" not in out
    assert "    raise NotImplementedError(" in out and labs.STUB_MESSAGE in out
    compile(out, "<lab>", "exec")


def test_hidden_tests_and_markdown_answers_removed():
    code = "check(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\n"
    assert "assert" not in labs.strip_solutions(code, "code")
    md = "Why?\n<!-- BEGIN SOLUTION -->\nBecause.\n<!-- END SOLUTION -->\nNote <!-- solution-only -->"
    out = labs.strip_solutions(md, "markdown")
    assert "Because" not in out and labs.MARKDOWN_STUB in out and "Note" not in out


@pytest.mark.parametrize("src", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unbalanced_markers_are_errors(src):
    with pytest.raises(ValueError, match="SOLUTION"):
        labs.strip_solutions(src, "code", "test cell")


def test_build_regenerates_a_stale_lab(tmp_path):
    for name in ["_config.yml"]:
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ["solutions", "book", "labs"]:
        (tmp_path / folder).mkdir()
    shutil.copy(ROOT / "solutions" / "01_architecture.ipynb", tmp_path / "solutions")
    assert labs.check(tmp_path)  # lab missing
    labs.build(tmp_path)
    assert labs.check(tmp_path) == []
    lab = tmp_path / "labs" / "01_architecture.ipynb"
    lab.write_text(lab.read_text().replace("Exercise", "Exercize"))
    assert labs.check(tmp_path)
    (tmp_path / "labs" / "99_orphan.ipynb").write_text(lab.read_text())
    labs.build(tmp_path)
    assert labs.check(tmp_path) == [] and not (tmp_path / "labs" / "99_orphan.ipynb").exists()


def test_colab_url_comes_from_config():
    url = labs.colab_url("labs/01_architecture.ipynb", ROOT)
    assert url.startswith("https://colab.research.google.com/github/")
    assert url.endswith("/blob/main/labs/01_architecture.ipynb")


def test_strip_solutions_refuses_an_unknown_cell_type():
    source = "x = 1\n### BEGIN SOLUTION\nsecret = 42\n### END SOLUTION"
    assert "secret" not in labs.strip_solutions(source, "code")
    with pytest.raises(ValueError, match="cell_type must be"):  # was: returned with the solution in
        labs.strip_solutions(source, "Code")
