"""Build the course website: every chapter executed, two at a time (authoring tool).

``python -m utils.website`` executes every notebook in ``_toc.yml`` afresh, as many at a time as
the machine has cores (each kernel on one thread, like the tests), stores the executed notebooks
in Jupyter Book's cache (``_build/.jupyter_cache``, emptied first, so that no figure is ever
older than the code), then runs ``jupyter-book build . -W --keep-going``, which finds every
chapter in the cache and only renders. Jupyter Book 1 on its own executes the chapters one after
another; on a 2-core machine this halves the build time.

Exit status: 0 if every notebook ran and the build had no warning; otherwise 1, with the failing
notebooks named (their tracebacks are in ``_build/.jupyter_cache``'s reports, shown here).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .labs import ROOT

__all__ = ["toc_notebooks", "execute_into_cache", "main"]


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks (``.ipynb``) that ``_toc.yml`` lists, in order."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [Path(root) / f"{f}.ipynb" for f in files if (Path(root) / f"{f}.ipynb").exists()]


def execute_into_cache(notebooks: list[Path], cache_path: Path, timeout: int = 1800) -> list[str]:
    """Execute ``notebooks`` in parallel into a fresh jupyter-cache at ``cache_path``.

    Returns the paths of the notebooks that failed (empty if all ran).
    """
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    if cache_path.exists():
        shutil.rmtree(cache_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cache = get_cache(str(cache_path))
    for nb in notebooks:
        cache.add_nb_to_project(str(nb))
    logger = logging.getLogger("utils.website")
    executor = load_executor("local-parallel", cache, logger=logger)
    result = executor.run_and_cache(timeout=timeout)
    failed = list(result.errored) + list(result.excepted)
    for record in cache.list_project_records():
        if record.uri in failed and record.traceback:
            print(f"\n=== {record.uri} failed:\n{record.traceback}", file=sys.stderr)
    return [str(f) for f in failed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.website", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell (default 1800)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one thread per kernel: kernels run side by side
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    notebooks = toc_notebooks(root)
    start = time.perf_counter()
    print(f"executing {len(notebooks)} notebooks, {os.cpu_count()} at a time ...", flush=True)
    failed = execute_into_cache(notebooks, root / "_build" / ".jupyter_cache", args.timeout)
    print(f"executed in {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print("these notebooks failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    done = subprocess.run(["jupyter-book", "build", str(root), "-W", "--keep-going"])
    print(f"website built in {time.perf_counter() - start:.0f} s (exit status {done.returncode})")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
