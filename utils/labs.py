"""Generate the student labs from the solution notebooks, and keep every notebook's setup cell.

``solutions/NN_name.ipynb`` is the single source of each lab. In it:

- Exercise answers in code cells sit between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
  lines (nbgrader's markers). In the lab the block becomes ``raise NotImplementedError(...)``
  with the same indentation.
- Written answers in markdown cells sit between ``<!-- BEGIN SOLUTION -->`` and
  ``<!-- END SOLUTION -->``; the lab shows "*Write your answer here.*".
- Code between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``, cells tagged
  ``solution-only``, and markdown lines ending in ``<!-- solution-only -->`` are dropped.
- Outputs are cleared everywhere.

The first code cell of every notebook in ``book/``, ``solutions/`` and ``labs/`` is the Colab setup
cell rendered from :data:`SETUP_TEMPLATE` with the repository URL read from ``_config.yml``: the
one place the URL is defined.

Command line (from the repository root)::

    python -m utils.labs build        # sync setup cells, regenerate labs/ from solutions/
    python -m utils.labs check        # exit 1 if anything is out of date or has outputs
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

__all__ = [
    "STUB_MESSAGE",
    "SETUP_TEMPLATE",
    "repo_url",
    "setup_source",
    "colab_url",
    "lab_link_source",
    "make_lab",
    "strip_solutions",
    "build",
    "check",
    "main",
]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("book", "solutions", "labs")

STUB_MESSAGE = ("Exercise not done yet: replace this line with your code, "
                "then run the self-check below.")
MARKDOWN_STUB = "*Write your answer here.*"

SETUP_TEMPLATE = '''\
# Setup: run this cell first.
# In Google Colab it installs the course package (`utils`) and neurogym, without touching
# Colab's torch, numpy or matplotlib (so no runtime restart is needed). On your own machine,
# after the README's install command, it finds everything in place and does nothing.
REPO_URL = "{repo_url}"
import importlib, os, subprocess, sys

def _installed(module, attribute=None):
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return attribute is None or hasattr(mod, attribute)

def _pip(*args):
    # pip's own messages (e.g. its red "dependency resolver" note about neurogym's pins, which
    # are deliberately not followed) are shown only if an install fails.
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout + done.stderr)
        raise RuntimeError("installing " + " ".join(args) + " failed (pip's output is above)")

if not _installed("utils", "__course__"):
    sys.modules.pop("utils", None)
    _pip("--no-deps", os.environ.get("LESS_ARTIFICIAL_SOURCE", "git+" + REPO_URL))
if not _installed("neurogym"):
    _pip("--no-deps", "neurogym==2.3.1")
    # neurogym's own pins would downgrade numpy and matplotlib: install only what is missing.
    _pip("gymnasium>=0.29,<0.30", "loguru", "natsort", "tomlkit", "pydantic-settings")
importlib.invalidate_caches()
import utils
print(f"Less Artificial course package {{utils.__version__}} ready.")'''

_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"
_HBEGIN, _HEND = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_MBEGIN, _MEND = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
_MONLY = "<!-- solution-only -->"


def repo_url(root: Path = ROOT) -> str:
    """The repository URL, read from ``_config.yml`` (``repository: url:``)."""
    text = (Path(root) / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError("_config.yml has no 'repository: url:' entry")
    return match.group(1).strip("'\"")


def setup_source(root: Path = ROOT) -> str:
    """The setup cell's source for this repository."""
    return SETUP_TEMPLATE.format(repo_url=repo_url(root))


def colab_url(relative_path: str, root: Path = ROOT) -> str:
    """Colab link that opens ``relative_path`` (e.g. ``labs/01_architecture.ipynb``) from GitHub."""
    url = repo_url(root)
    match = re.match(r"https?://github\.com/(.+?)/?$", url)
    if not match:
        raise ValueError(f"the repository url in _config.yml must be a GitHub URL, got {url!r}")
    return f"https://colab.research.google.com/github/{match.group(1)}/blob/main/{relative_path}"


def lab_link_source(name: str, root: Path = ROOT) -> str:
    """Markdown of the "open the lab in Colab" cell of the book chapter ``name``."""
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    return (f"[![Open the lab in Colab]({badge})]({colab_url('labs/' + name, root)}) "
            f"**Lab:** practise this chapter in the lab notebook `labs/{name}` "
            f"(opens in Google Colab; the solutions are in `solutions/{name}`).")


def _set_lab_link(nb: nbformat.NotebookNode, source: str) -> None:
    for cell in nb.cells:
        if "lab-link" in cell.metadata.get("tags", []):
            cell.source = source
            return
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = ["lab-link"]
    nb.cells.insert(1, cell)


def _replace_blocks(lines: list[str], begin: str, end: str, stub: str | None, where: str) -> list[str]:
    out: list[str] = []
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped == begin:
            if inside:
                raise ValueError(f"{where}: '{begin}' inside an open block")
            inside = True
            if stub is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(indent + stub)
        elif stripped == end:
            if not inside:
                raise ValueError(f"{where}: '{end}' without '{begin}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{begin}' is never closed by '{end}'")
    return out


def strip_solutions(source: str, cell_type: str, where: str = "cell") -> str:
    """Return the lab version of one cell's source (see the module docstring).

    Raises:
        ValueError: ``cell_type`` is not ``"code"``, ``"markdown"`` or ``"raw"`` (raw cells are
            returned unchanged).
    """
    if cell_type not in ("code", "markdown", "raw"):
        raise ValueError(f"cell_type must be 'code', 'markdown' or 'raw', got {cell_type!r}")
    lines = source.split("\n")
    if cell_type == "code":
        lines = _replace_blocks(lines, _BEGIN, _END, f"raise NotImplementedError({STUB_MESSAGE!r})", where)
        lines = _replace_blocks(lines, _HBEGIN, _HEND, None, where)
    elif cell_type == "markdown":
        lines = _replace_blocks(lines, _MBEGIN, _MEND, MARKDOWN_STUB, where)
        lines = [ln for ln in lines if not ln.rstrip().endswith(_MONLY)]
    return "\n".join(lines)


def _clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
    return nb


def _set_setup_cell(nb: nbformat.NotebookNode, source: str, where: str) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code:
        raise ValueError(f"{where}: a notebook needs a setup cell as its first code cell")
    first = code[0]
    if "REPO_URL" not in first.source:
        raise ValueError(f"{where}: the first code cell must be the setup cell (it defines REPO_URL)")
    first.source = source
    tags = first.metadata.setdefault("tags", [])
    if "hide-cell" not in tags:
        tags.append("hide-cell")


def make_lab(solution: nbformat.NotebookNode, where: str = "notebook") -> nbformat.NotebookNode:
    """Student version of a solution notebook (a new object; the input is not modified)."""
    lab = nbformat.from_dict(solution)
    cells = []
    for i, cell in enumerate(lab.cells):
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        cell.source = strip_solutions(cell.source, cell.cell_type, f"{where}, cell {i}")
        cells.append(cell)
    lab.cells = cells
    return _clean(lab)


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _expected(root: Path) -> dict[Path, str]:
    """Every notebook's expected text: setup cell synced, outputs cleared, labs regenerated."""
    root = Path(root)
    setup = setup_source(root)
    expected: dict[Path, str] = {}
    for folder in ("book", "solutions"):
        for path in sorted((root / folder).glob("*.ipynb")):
            nb = _read(path)
            _set_setup_cell(nb, setup, str(path.relative_to(root)))
            if folder == "book" and (root / "solutions" / path.name).exists():
                _set_lab_link(nb, lab_link_source(path.name, root))
            expected[path] = _dumps(_clean(nb))
            if folder == "solutions":
                lab = make_lab(nb, str(path.relative_to(root)))
                expected[root / "labs" / path.name] = _dumps(lab)
    return expected


def build(root: Path = ROOT) -> list[Path]:
    """Sync setup cells, clear outputs and regenerate ``labs/``; return the files written."""
    root = Path(root)
    expected = _expected(root)
    (root / "labs").mkdir(exist_ok=True)
    written = []
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    for stale in (root / "labs").glob("*.ipynb"):
        if stale not in expected:
            stale.unlink()
            written.append(stale)
    return written


def check(root: Path = ROOT) -> list[str]:
    """Problems that ``build`` would fix (empty list when everything is up to date)."""
    root = Path(root)
    problems = []
    expected = _expected(root)
    for path, text in expected.items():
        rel = path.relative_to(root)
        if not path.exists():
            problems.append(f"{rel} is missing (run `python -m utils.labs build`)")
        elif path.read_text() != text:
            problems.append(f"{rel} is out of date or carries outputs (run `python -m utils.labs build`)")
    for path in sorted((root / "labs").glob("*.ipynb")):
        if path not in expected:
            problems.append(f"{path.relative_to(root)} has no solution notebook")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.labs", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "check"])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build(args.root):
            print(f"wrote {path.relative_to(args.root)}")
        return 0
    problems = check(args.root)
    for problem in problems:
        print(problem)
    print("labs and setup cells are up to date" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
