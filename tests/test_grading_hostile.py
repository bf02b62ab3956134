"""The grader against a hostile class (issue 12): each case is a submission that broke an earlier
version of the grader. A synthetic one-exercise lab keeps the kernels small and the test fast.

Run A works with or without bubblewrap: exit()/quit(), stored outputs of 60 MB, a 3 GB file,
infinite time limits, links and folders named ``x.ipynb``, names whose feedback files used to
collide, files planted in the output folder, and a kernel spec another kernel could rewrite.
Run B needs bubblewrap (skipped, saying so, without it): it runs the command line in a separate
process with a submission that kills its parent, one that starts a daemon with a clean
environment in its own session to rewrite the gradebook later, one that rewrites every kernel
spec and connection file it can find, and one that reports what it can see and write.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import nbformat
import pytest

from utils import grading

LAB = "90_hostile"
CORRECT = "def absolute(x):\n    return abs(x)\n"
HIDDEN = ("def hidden_check(fn):\n"
          "    for x, y in [(-3, 3), (2.5, 2.5), (0, 0)]:\n"
          "        assert fn(x) == y, f'absolute({x}) should be {y}'\n")
LIMITS = grading.Limits(cell_timeout=math.inf, notebook_timeout=math.inf, call_timeout=math.inf)
BWRAP = grading.find_sandbox("auto")
needs_bwrap = pytest.mark.skipif(
    not BWRAP.isolated, reason=f"needs bubblewrap: {BWRAP.reason} (apt-get install bubblewrap)")


def _notebook(*cells: str, outputs: bytes = b"") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    if outputs:  # a figure saved with the notebook, as Colab's download keeps it
        nb.cells[0].outputs = [nbformat.v4.new_output(
            "display_data", data={"image/png": outputs.decode("ascii"), "text/plain": "<Figure>"})]
    return nb


def _root(base: Path) -> Path:
    """A repository root whose only solution is the synthetic lab."""
    root = base / "root"
    (root / "solutions").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(HIDDEN)
    cell.metadata.update({"tags": ["solution-only"],
                          "grading": {"exercise": "9.1", "function": "absolute", "points": 2}})
    nb.cells = [nbformat.v4.new_code_cell(CORRECT), cell]
    nbformat.write(nb, root / "solutions" / f"{LAB}.ipynb")
    return root


def _digests(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.stat().st_size < 10**9:
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[p.name] = f"{p.is_symlink()} {p.is_dir()} {p.lstat().st_size} {p.lstat().st_mtime_ns}"
    return out


def _rows(out: Path) -> dict[str, list[str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        return {r[0]: r[1:] for r in list(csv.reader(f))[1:]}


def _index(out: Path) -> dict[str, str]:
    with open(out / "index.csv", newline="", encoding="utf-8") as f:
        return {r[0]: r[1] for r in list(csv.reader(f))[1:]}


# looks around its own folder and the grader's temporary folder (run A points that at a fresh
# folder: without the sandbox, /tmp may hold other programs' kernel specs)
SPEC_HUNTER = ("import glob\n"
               "found = [p for pat in ('../**/kernel.json', '../../**/kernel.json')\n"
               "         for p in glob.glob(pat, recursive=True)]\n"
               "raise RuntimeError('SPECS %s' % sorted(set(found)))\n")
NAMES = ["a b.ipynb", "a_b.ipynb", "學生.ipynb", unicodedata.normalize("NFC", "Zoë.ipynb"),
         unicodedata.normalize("NFD", "Zoë.ipynb"), "zoe.ipynb", "Zoe.ipynb"]


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_a")
    root, subs, out, elsewhere = _root(base), base / "subs", base / "out", base / "elsewhere"
    subs.mkdir(), elsewhere.mkdir()
    nbformat.write(_notebook(CORRECT), subs / "correct.ipynb")
    nbformat.write(_notebook(CORRECT, "exit()", "y = 1"), subs / "exits.ipynb")
    nbformat.write(_notebook(CORRECT, "print('done')\nquit()"), subs / "quits.ipynb")
    nbformat.write(_notebook(CORRECT, SPEC_HUNTER), subs / "spec_hunter.ipynb")
    figure = (b"iVBORw0KGgo" * 6_000_000)[:60_000_000]  # 60 MB of stored "figure"
    nbformat.write(_notebook(CORRECT, "z = 2", outputs=figure), subs / "big_outputs.ipynb")
    with open(subs / "huge.ipynb", "wb") as f:  # 3 GB, sparse: costs no disk, must not be read
        f.truncate(3 * 10**9)
    nbformat.write(_notebook(CORRECT), elsewhere / "downloaded.ipynb")
    (subs / "linked.ipynb").symlink_to(elsewhere / "downloaded.ipynb")
    (subs / "broken.ipynb").symlink_to(elsewhere / "gone.ipynb")
    (subs / "folder.ipynb").mkdir()
    for name in NAMES:
        (subs / name).write_text("not a notebook")
    for p in subs.iterdir():
        if p.is_file() and not p.is_symlink():
            p.chmod(0o444)  # the grader never opens a submission for writing
    (out / "feedback").mkdir(parents=True)
    (out / "feedback" / "planted.md").write_text("**Total: 10 / 2 points**")
    (out / "extra.csv").write_text("submission,total\ncorrect.ipynb,1000\n")
    before = _digests(subs)
    lines: list[str] = []
    t0 = time.monotonic()
    (base / "tmp").mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(base / "tmp")
    try:
        report = grading.grade_folder(LAB, subs, out, jobs=2, limits=LIMITS, root=root,
                                      progress=lines.append)
    finally:
        tempfile.tempdir = saved
    return dict(report=report, subs=subs, out=out, before=before, lines=lines,
                seconds=time.monotonic() - t0)


def _by_name(report) -> dict[str, grading.SubmissionResult]:
    return {s.name: s for s in report.submissions}


def test_infinite_time_limits_and_exit_quit_score_right(run_a):
    by = _by_name(run_a["report"])
    for name in ("correct.ipynb", "exits.ipynb", "quits.ipynb"):
        assert by[name].total == 2, (name, by[name].results, by[name].notes)
        assert not by[name].notes, by[name].notes  # nobody is blamed for exit() / quit()


def test_submissions_are_never_written_and_large_files_handled_by_size(run_a):
    assert _digests(run_a["subs"]) == run_a["before"]
    by = _by_name(run_a["report"])
    assert by["big_outputs.ipynb"].total == 2, by["big_outputs.ipynb"].notes  # outputs ignored
    huge = by["huge.ipynb"]
    assert huge.total == 0 and "larger than the 200 MB limit" in huge.results[0].message
    assert "not read" in huge.results[0].message


def test_links_and_folders_get_a_row_and_a_warning(run_a):
    rows, warnings = _rows(run_a["out"]), (run_a["out"] / "warnings.txt").read_text()
    assert rows["linked.ipynb"][-1] == "2"  # a link to a file: that file is graded
    assert rows["folder.ipynb"][-1] == rows["broken.ipynb"][-1] == "0"
    assert "linked.ipynb is a symbolic link" in warnings
    assert "folder.ipynb is a folder, not a notebook file" in warnings
    assert "broken.ipynb is a link to nothing" in warnings


def test_every_submission_maps_to_its_own_feedback_file(run_a):
    out, index = run_a["out"], _index(run_a["out"])
    names = sorted(p.name for p in run_a["subs"].iterdir())
    assert sorted(index) == names == sorted(_rows(out))
    assert len(set(index.values())) == len(index)
    for submission, feedback in index.items():
        assert (out / feedback).read_text().startswith(f"# {LAB}: feedback for {submission}\n")
    assert index["correct.ipynb"] == "feedback/correct.md"
    assert index["a b.ipynb"] == "feedback/a b.md" and index["a_b.ipynb"] == "feedback/a_b.md"
    assert index["學生.ipynb"] == "feedback/學生.md"


def test_planted_output_files_are_reported(run_a):
    warnings = (run_a["out"] / "warnings.txt").read_text()
    assert "did not write" in warnings and "feedback/planted.md" in warnings
    assert "extra.csv" in warnings


def test_no_kernel_spec_for_a_kernel_to_rewrite(run_a):
    notes = _by_name(run_a["report"])["spec_hunter.ipynb"].notes
    assert notes == ["code cell 2 raised RuntimeError: SPECS []"]


def test_the_sandbox_is_stated(run_a):
    report, text = run_a["report"], "\n".join(run_a["lines"])
    assert report.sandbox == BWRAP.kind
    assert ("NO SANDBOX" in text) is (not BWRAP.isolated)
    assert ("sandbox: bwrap" in text) is BWRAP.isolated


# --- run B: bubblewrap -------------------------------------------------------------------------

def _marked(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def run_b(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_b")
    root, subs, out, tmp = _root(base), base / "subs", base / "out", base / "tmp"
    subs.mkdir(), tmp.mkdir()
    marker = f"la_daemon_{secrets.token_hex(6)}"
    daemon = (
        "import subprocess, sys\n"
        f"code = '''import os, time  # {marker}\n"
        "if os.fork():\n    os._exit(0)\n"
        f"p = os.path.join({str(out)!r}, 'gradebook.csv')\n"
        "for _ in range(300):\n"
        "    time.sleep(0.1)\n"
        "    if os.path.exists(p):\n"
        "        time.sleep(0.5)\n"
        "        open(p, 'w').write('submission,total\\\\nhacked,10\\\\n')\n"
        "'''\n"
        "subprocess.Popen([sys.executable, '-c', code], env={}, start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n")
    injector = (
        "import glob, json, os\n"
        "hits = 0\n"
        "for p in glob.glob('/tmp/**/*.json', recursive=True) + glob.glob('../**/*.json', recursive=True):\n"
        "    try:\n"
        "        spec = json.load(open(p))\n"
        "        if 'argv' in spec:\n"
        "            spec['argv'][2] = 'import builtins; builtins.abs = lambda x: -1\\n' + spec['argv'][2]\n"
        "        else:\n"
        "            continue\n"
        "        json.dump(spec, open(p, 'w')); hits += 1\n"
        "    except Exception:\n"
        "        pass\n")
    probe = (
        "import os, site, utils\n"
        f"SUBS, OUT, ROOT = {str(subs)!r}, {str(out)!r}, {str(root)!r}\n"
        f"REPO = {str(Path(grading.__file__).resolve().parents[2])!r}\n"
        "seen = dict(\n"
        "    site=any(os.access(p, os.W_OK) for p in site.getsitepackages()),\n"
        "    utils=os.access(os.path.dirname(utils.__file__), os.W_OK),\n"
        "    subs=os.path.exists(SUBS), out=os.path.exists(OUT), root=os.path.exists(ROOT),\n"
        "    solutions=os.path.exists(os.path.join(REPO, 'solutions')),\n"
        "    git=os.path.exists(os.path.join(REPO, '.git')),\n"
        "    ppid=os.getppid(), procs=len([p for p in os.listdir('/proc') if p.isdigit()]) < 10,\n"
        "    net=sorted({l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]} - {'lo'}),\n"
        "    others=set(os.listdir('..')) == {os.path.basename(os.getcwd()),\n"
        "                                     os.path.basename(os.environ['JUPYTER_RUNTIME_DIR'])})\n"
        "raise RuntimeError('SEEN ' + ' '.join(f'{k}={v}' for k, v in seen.items()))\n")
    cases = {
        "a_killer.ipynb": _notebook(CORRECT, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
        "b_daemon.ipynb": _notebook(CORRECT, daemon),
        "c_injector.ipynb": _notebook(CORRECT, injector),
        "d_probe.ipynb": _notebook(CORRECT, probe),
        "e_correct.ipynb": _notebook(CORRECT),
    }
    for name, nb in cases.items():
        nbformat.write(nb, subs / name)
    before = _digests(subs)
    env = dict(os.environ, TMPDIR=str(tmp))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "utils.grading", LAB, str(subs), "--out", str(out),
                           "--root", str(root), "--jobs", "1", "--sandbox", "bwrap",
                           "--cell-timeout", "60", "--call-timeout", "30"],
                          capture_output=True, text=True, env=env, timeout=600)
    seconds = time.monotonic() - t0
    survivors = _marked(marker)
    for _ in range(30):  # a surviving daemon gets its chance to rewrite the gradebook
        if not survivors:
            break
        time.sleep(0.2)
        survivors = _marked(marker)
    time.sleep(1.5 if survivors else 0)
    hacked = (out / "gradebook.csv").exists() and "hacked" in (out / "gradebook.csv").read_text()
    for pid in survivors:  # clean up what an unsandboxed run left behind (started by this test)
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    yield dict(proc=proc, subs=subs, out=out, tmp=tmp, before=before, survivors=survivors,
               hacked=hacked, seconds=seconds)


@needs_bwrap
def test_a_submission_cannot_kill_the_grader(run_b):
    proc = run_b["proc"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _rows(run_b["out"])["a_killer.ipynb"][-1] == "2"
    assert list(run_b["tmp"].iterdir()) == []  # the grader's temporary folder is gone


@needs_bwrap
def test_no_process_outlives_the_run_or_touches_the_outputs(run_b):
    assert run_b["survivors"] == [] and not run_b["hacked"]
    assert _rows(run_b["out"])["b_daemon.ipynb"][-1] == "2"


@needs_bwrap
def test_one_submission_cannot_change_another_ones_score(run_b):
    rows = _rows(run_b["out"])
    assert {name: row[-1] for name, row in rows.items()} == dict.fromkeys(
        ["a_killer.ipynb", "b_daemon.ipynb", "c_injector.ipynb", "d_probe.ipynb", "e_correct.ipynb"],
        "2")
    assert _digests(run_b["subs"]) == run_b["before"]
    assert not (run_b["out"] / "warnings.txt").exists()  # nothing planted, nothing changed


@needs_bwrap
def test_a_kernel_sees_only_its_own_folders_read_only_environment_no_network(run_b):
    text = (run_b["out"] / "feedback" / "d_probe.md").read_text()
    assert ("SEEN site=False utils=False subs=False out=False root=False solutions=False "
            "git=False ppid=1 procs=True net=[] others=True") in text, text
