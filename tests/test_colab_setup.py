"""The notebooks' setup cell, run as Colab would run it: in a fresh virtual environment that
already has torch, numpy and matplotlib (as Colab does) but not the course, from outside the repository,
installing the course from a local clone. It must install `utils` and neurogym, and must not
touch torch, numpy or matplotlib (reinstalling them in Colab forces a runtime restart)."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path


from utils import labs

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def test_setup_cell_installs_course_in_fresh_venv(tmp_path):
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", str(ROOT), str(clone)])
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    # a Colab-like stack: Colab's numpy and matplotlib (older than neurogym's pins, numpy 2.2 and
    # matplotlib 3.10, which the setup cell must not follow) and a preinstalled torch
    import torch
    colab_torch = torch.__version__.split("+")[0]
    _run([py, "-m", "pip", "install", "--quiet", "numpy==2.0.2", "matplotlib==3.9.4",
          f"torch=={colab_torch}", "scipy", "tqdm"])
    before = _run([py, "-m", "pip", "freeze"]).stdout
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    cell = workdir / "setup_cell.py"
    cell.write_text(labs.setup_source(ROOT))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["LESS_ARTIFICIAL_SOURCE"] = str(clone)
    done = _run([py, str(cell)], cwd=workdir, env=env)
    out = done.stdout
    assert "course package" in out
    # pip's red "dependency resolver ... incompatible" note about neurogym's pins would make a
    # student think the setup failed: the cell shows installers' output only on failure
    assert "resolver" not in out + done.stderr and "ERROR" not in out + done.stderr, out + done.stderr
    after = _run([py, "-m", "pip", "freeze"]).stdout
    pins = lambda text, name: [l for l in text.splitlines() if l.lower().startswith(name + "==")]  # noqa: E731
    assert pins(before, "numpy") == pins(after, "numpy"), "the setup cell changed numpy"
    assert pins(before, "matplotlib") == pins(after, "matplotlib"), "the setup cell changed matplotlib"
    assert pins(before, "torch") == pins(after, "torch"), "the setup cell must never reinstall torch"
    # package discovery: every subpackage of utils is installed, not only the top level
    check = ("import utils, neurogym, utils.validation, utils.models, utils.tasks, utils.training, "
             "utils.constraints.masks, utils.learning.rflo, utils.analysis.lowrank_stats, "
             "utils.checks.architecture; "
             "assert utils.__course__ == 'less-artificial'; "
             "import neurogym as ngym; env = ngym.make('PerceptualDecisionMaking-v0'); print('ok')")
    assert _run([py, "-c", check], cwd=workdir, env=env).stdout.strip().endswith("ok")
    # a second run finds everything in place and installs nothing
    again = _run([py, str(cell)], cwd=workdir, env=env).stdout
    assert "course package" in again
    assert _run([py, "-m", "pip", "freeze"]).stdout == after
