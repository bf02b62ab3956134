"""The website builder finds every chapter of the table of contents."""

from pathlib import Path

from utils.website import toc_notebooks

ROOT = Path(__file__).resolve().parent.parent


def test_toc_notebooks_lists_every_book_chapter_in_the_toc():
    found = toc_notebooks(ROOT)
    toc = (ROOT / "_toc.yml").read_text()
    assert found, "no notebook found in _toc.yml"
    for nb in found:
        assert nb.exists() and nb.suffix == ".ipynb"
        assert f"file: {nb.relative_to(ROOT).with_suffix('')}" in toc
    # every chapter notebook in book/ that the toc names is found, in toc order
    named = [line.split("file:")[1].strip() for line in toc.splitlines() if "file:" in line]
    expected = [n for n in named if (ROOT / f"{n}.ipynb").exists()]
    assert [str(p.relative_to(ROOT).with_suffix("")) for p in found] == expected
