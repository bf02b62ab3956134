"""Grading in shards (issue 16): three ``--shard K/3`` runs merged give byte for byte the outputs
of one run, on a folder with hostile cases (from tests/test_grading_hostile.py: exit(), a link, a
broken link, a folder named ``x.ipynb``, a 3 GB file, names whose feedback files used to collide,
files that are not notebooks); the merge refuses missing, duplicated, unfinished, modified and
mismatched shards; the instructor's summary; the Slurm and GitHub Actions recipes (shell syntax,
workflow structure, and that their command lines are accepted by the grader's parser).

The synthetic one-exercise lab of the hostile tests keeps the kernels small: five submissions
start a kernel, twice (one run, three shards).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml
from test_grading_hostile import CORRECT, HIDDEN, LAB, LIMITS, NAMES, _notebook, _root

from utils import grading
from utils.grading import cli, shards

RECIPES = Path(grading.__file__).parent / "recipes"
KERNELS = {"correct.ipynb": (CORRECT,), "exits.ipynb": (CORRECT, "exit()", "y = 1"),
           "wrong.ipynb": ("def absolute(x):\n    return x\n",),
           "stub.ipynb": ("def absolute(x):\n    raise NotImplementedError\n",)}
VARYING = {"times.csv", "summary.png", "summary.md"}  # carry timings; compared separately


def _folder(base: Path) -> Path:
    subs, elsewhere = base / "subs", base / "elsewhere"
    subs.mkdir(), elsewhere.mkdir()
    for name, cells in KERNELS.items():
        nbformat.write(_notebook(*cells), subs / name)
    nbformat.write(_notebook(CORRECT), elsewhere / "downloaded.ipynb")
    (subs / "linked.ipynb").symlink_to(elsewhere / "downloaded.ipynb")
    (subs / "broken.ipynb").symlink_to(elsewhere / "gone.ipynb")
    (subs / "folder.ipynb").mkdir()
    with open(subs / "huge.ipynb", "wb") as f:  # sparse: costs no disk, must not be read
        f.truncate(3 * 10**9)
    for name in NAMES:
        (subs / name).write_text("not a notebook")
    return subs


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("shards")
    root, subs = _root(base), _folder(base)
    single = grading.grade_folder(LAB, subs, base / "single", jobs=2, limits=LIMITS, root=root,
                                  progress=None)
    parts = []
    for k in range(3):
        parts.append(grading.grade_folder(LAB, subs, base / "shards" / f"shard-{k}", jobs=2,
                                          limits=LIMITS, root=root, shard=f"{k}/3",
                                          progress=None))
    lines: list[str] = []
    merged = grading.merge([base / "shards"], base / "merged", progress=lines.append)
    return {"base": base, "root": root, "subs": subs, "single": single, "parts": parts,
            "merged": merged, "lines": lines}


def test_three_shards_and_a_merge_write_what_one_run_writes(runs):
    base = runs["base"]
    one, merged = _files(base / "single"), _files(base / "merged")
    assert sorted(one) == sorted(merged)
    assert {k for k in one if k.startswith("feedback/")} and "warnings.txt" in one
    for name in sorted(set(one) - VARYING):
        assert one[name] == merged[name], name
    # the summary differs only in its timings
    cut = "## Slowest submissions"
    assert one["summary.md"].decode().split(cut)[0] == merged["summary.md"].decode().split(cut)[0]
    assert sorted(r[0] for r in csv.reader(one["times.csv"].decode().splitlines())) == \
        sorted(r[0] for r in csv.reader(merged["times.csv"].decode().splitlines()))
    rows = {r[0]: r[-1] for r in csv.reader(one["gradebook.csv"].decode().splitlines())}
    assert rows["correct.ipynb"] == rows["exits.ipynb"] == rows["linked.ipynb"] == "2"
    assert rows["wrong.ipynb"] == rows["stub.ipynb"] == rows["huge.ipynb"] == "0"
    assert runs["merged"].sandbox == runs["single"].sandbox
    assert "merged 3 shard(s) of 15 submissions" in runs["lines"][-1]


def test_each_shard_grades_a_fixed_round_robin_third(runs):
    listing = sorted(p.name for p in runs["subs"].iterdir())
    graded = []
    for k, part in enumerate(runs["parts"]):
        names = [s.name for s in part.submissions]
        assert names == listing[k::3]
        folder = runs["base"] / "shards" / f"shard-{k}"
        manifest = json.loads((folder / "shard.json").read_text())
        assert (manifest["shard"], manifest["of"], manifest["submissions"]) == (k, 3, listing)
        assert sorted(p.name for p in (folder / "results").iterdir()) == sorted(manifest["results"])
        assert not (folder / "gradebook.csv").exists()  # a shard is not a gradebook
        graded += names
    assert sorted(graded) == listing
    assert grading.shard_indices(15, 1, 3) == [1, 4, 7, 10, 13]
    assert [grading.shard_indices(2, k, 3) for k in range(3)] == [[0], [1], []]


@pytest.mark.parametrize("bad", ["3/3", "-1/3", "0/0", "1", "a/b", "1/2/3", "1.0/2", "²/3"])
def test_bad_shard_arguments_are_refused(bad):
    with pytest.raises(ValueError, match="shard"):
        grading.parse_shard(bad)
    with pytest.raises(TypeError, match="shard"):
        grading.parse_shard(3)
    assert grading.parse_shard(" 2/5 ") == (2, 5) and grading.parse_shard((0, 1)) == (0, 1)


def _copy_shards(runs, dest: Path) -> list[Path]:
    shutil.copytree(runs["base"] / "shards", dest)
    return [dest / f"shard-{k}" for k in range(3)]


def _edit(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))


def _rehash(folder: Path) -> None:
    """Make shard.json agree with edited result files (as a forger would)."""
    def change(m):
        for name in m["results"]:
            m["results"][name] = shards._sha256((folder / "results" / name).read_bytes())
    _edit(folder / "shard.json", change)


def test_merge_refuses_missing_duplicated_unfinished_and_mixed_shards(runs, tmp_path):
    base = runs["base"]
    folders = [base / "shards" / f"shard-{k}" for k in range(3)]
    with pytest.raises(ValueError, match="shard\\(s\\) 1/3 missing"):
        grading.merge([folders[0], folders[2]], tmp_path / "a", progress=None)
    copy = tmp_path / "copy"
    shutil.copytree(folders[1], copy)
    with pytest.raises(ValueError, match="given more than once: 1/3"):
        grading.merge([*folders, copy], tmp_path / "b", progress=None)
    unfinished = _copy_shards(runs, tmp_path / "unfinished")
    (unfinished[2] / "shard.json").unlink()
    with pytest.raises(ValueError, match="2/3 missing.*did not finish"):
        grading.merge([tmp_path / "unfinished"], tmp_path / "c", progress=None)
    other = _copy_shards(runs, tmp_path / "other_n")
    _edit(other[0] / "shard.json", lambda m: m.update(of=4))
    with pytest.raises(ValueError, match="different numbers of shards"):
        grading.merge(other, tmp_path / "d", progress=None)
    with pytest.raises(ValueError, match="outside the shard folders"):
        grading.merge(folders, folders[0] / "out", progress=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a shard folder"):
        grading.merge([tmp_path / "empty"], tmp_path / "e", progress=None)
    assert not any((tmp_path / x).exists() for x in "abcde")  # nothing written on refusal


def test_merge_refuses_modified_or_forged_results(runs, tmp_path):
    forged = _copy_shards(runs, tmp_path / "forged")
    result = min((forged[0] / "results").iterdir())
    text = result.read_text()
    result.write_text(text.replace('"points": 0.0', '"points": 2.0'))
    with pytest.raises(ValueError, match="modified after the shard wrote it"):
        grading.merge(forged, tmp_path / "a", progress=None)
    result.write_text(re.sub(r'"points": [0-9.]+', '"points": 200.0', text))
    _rehash(forged[0])
    with pytest.raises(ValueError, match="more points than an exercise has"):
        grading.merge(forged, tmp_path / "b", progress=None)
    result.write_text(text.replace('"status": "', '"status": "excellent-'))
    _rehash(forged[0])
    with pytest.raises(ValueError, match="not a valid grading file.*status"):
        grading.merge(forged, tmp_path / "c", progress=None)
    result.write_text(text.replace('"format"', '"extra": 1, "format"'))
    _rehash(forged[0])
    with pytest.raises(ValueError, match="not a valid grading file"):
        grading.merge(forged, tmp_path / "d", progress=None)
    result.write_text(text)  # a shard claiming another shard's submission
    swapped = _copy_shards(runs, tmp_path / "swapped")
    a, b = sorted((swapped[0] / "results").iterdir())[:2]
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text), b.write_text(a_text)
    _rehash(swapped[0])
    with pytest.raises(ValueError, match="is for another submission"):
        grading.merge(swapped, tmp_path / "e", progress=None)
    gone = _copy_shards(runs, tmp_path / "gone")
    min((gone[1] / "results").iterdir()).unlink()
    with pytest.raises(ValueError, match="is missing"):
        grading.merge(gone, tmp_path / "f", progress=None)
    bad_json = _copy_shards(runs, tmp_path / "bad_json")
    (bad_json[2] / "shard.json").write_text('{"format": NaN}')
    with pytest.raises(ValueError, match="not a readable grading file"):
        grading.merge(bad_json, tmp_path / "g", progress=None)


def test_merge_refuses_shards_of_another_solution(runs, tmp_path):
    # a folder whose entries start no kernel: cheap to grade twice against two solutions
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        (subs / name).write_text("not a notebook")
    other_root = _root(tmp_path / "other")
    path = other_root / "solutions" / f"{LAB}.ipynb"
    path.write_text(path.read_text().replace("(0, 0)", "(-1, 1)"))
    assert HIDDEN.count("(0, 0)") == 1
    grading.grade_folder(LAB, subs, tmp_path / "s0", limits=LIMITS, root=runs["root"],
                         shard="0/2", progress=None)
    grading.grade_folder(LAB, subs, tmp_path / "s1", limits=LIMITS, root=other_root,
                         shard="1/2", progress=None)
    with pytest.raises(ValueError, match="different versions of the solution notebook"):
        grading.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "out", progress=None)
    (subs / "c.ipynb").write_text("not a notebook")  # the folder changed between shards
    grading.grade_folder(LAB, subs, tmp_path / "s1", limits=LIMITS, root=runs["root"],
                         shard="1/2", progress=None)  # (rewrites an earlier shard's folder)
    with pytest.raises(ValueError, match="different folders"):
        grading.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "out", progress=None)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(ValueError, match="new or empty folder"):
        grading.grade_folder(LAB, subs, tmp_path / "mine", root=runs["root"], shard="0/2",
                             progress=None)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


def test_merge_command_exits_nonzero_with_a_message(runs, tmp_path, capsys):
    folder = runs["base"] / "shards" / "shard-0"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["merge", str(folder), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "shard(s) 1/3, 2/3 missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main([LAB, str(runs["subs"]), "--shard", "3/3", "--root", str(runs["root"])])
    assert exit_info.value.code == 2 and "0 <= K <= N-1" in capsys.readouterr().err
    assert cli.main(["merge", str(runs["base"] / "shards"), "--out", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / "gradebook.csv").read_bytes() == \
        (runs["base"] / "single" / "gradebook.csv").read_bytes()


def test_the_summary_beside_the_gradebook(runs):
    out = runs["base"] / "single"
    table = list(csv.reader((out / "summary.csv").read_text().splitlines()))
    assert table[0][:6] == ["exercise", "function", "points", "submissions", "mean", "median"]
    row = dict(zip(table[0], table[1]))
    # passed: correct, exits, linked; wrong fails; stub not implemented; 10 unreadable/unread
    assert (row["exercise"], row["submissions"], row["pass"], row["fail"], row["not implemented"],
            row["error"], row["missing"]) == ("9.1", "15", "3", "1", "1", "10", "0")
    assert row["mean"] == "0.4" and row["median"] == "0" and row["passed (%)"] == "20"
    text = (out / "summary.md").read_text()
    assert "15 submissions; total points (of 2): mean 0.4, median 0" in text
    assert "1. 9.1 `absolute`: 12 of 15 did not pass (1 fail, 1 not implemented, 10 error)" in text
    assert "| 7 | 9.1 | error | the file is not a readable notebook (NotJSONError) |" in text
    assert "| 1 | 9.1 | fail | absolute(-3) should be 3 |" in text
    times = list(csv.reader((out / "times.csv").read_text().splitlines()))
    assert times[0] == ["submission", "run (s)", "total (s)"] and len(times) == 16
    assert [float(r[2]) for r in times[1:]] == sorted((float(r[2]) for r in times[1:]),
                                                      reverse=True)
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = grading.summary_figure(runs["single"])
    assert len(fig.axes) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    assert "summary.md" not in (out / "warnings.txt").read_text()  # not taken for a stray file


# --- the recipes ---------------------------------------------------------------------------------

def _grader_commands(text: str) -> list[list[str]]:
    """Every `python -m utils.grading ...` command of a recipe, shell variables replaced."""
    text = re.sub(r"\\\n\s*", " ", text)
    cmds = []
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)  # ${VAR:-default}: the default
    text = re.sub(r"\$\{\{[^}]*\}\}|\$\{\w+\}|\$\(\([^)]*\)\)|\$\w+", "1", text)
    for m in re.finditer(r"python -m utils\.grading ([^\n;&|]+)", text):
        args = [a.strip("\"'") for a in m.group(1).split("#")[0].split()]
        cmds.append(args)
    return cmds


def _parses(args: list[str]) -> None:
    """The grader's own argument parser accepts ``args`` (nothing is run)."""
    parser_calls = []

    def fake(*a, **k):
        parser_calls.append((a, k))

    import utils.grading.cli as c
    saved = (c.grade_folder, c.merge)
    c.grade_folder, c.merge = fake, fake
    try:
        assert c.main(args) == 0
    finally:
        c.grade_folder, c.merge = saved
    assert len(parser_calls) == 1


def test_slurm_recipe_shell_syntax_and_commands():
    scripts = sorted(RECIPES.glob("slurm*"))
    assert {p.name for p in scripts} >= {"slurm_submit.sh", "slurm_grade.sbatch",
                                         "slurm_merge.sbatch"}
    for script in scripts:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, (script.name, proc.stderr)
        if shutil.which("shellcheck"):
            proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True,
                                  text=True, check=False)
            assert proc.returncode == 0, (script.name, proc.stdout)
    grade = (RECIPES / "slurm_grade.sbatch").read_text()
    assert "#SBATCH --array" not in grade or "SLURM_ARRAY_TASK_ID" in grade
    assert "--shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\"" in grade
    submit = (RECIPES / "slurm_submit.sh").read_text()
    assert "--array=\"0-$((N - 1))\"" in submit and "--dependency=afterok:" in submit
    commands = [c for p in scripts for c in _grader_commands(p.read_text())]
    assert len(commands) == 2 and commands[1][0] == "merge"
    for args in commands:
        _parses(args)


def test_github_actions_recipe_structure_and_commands():
    text = (RECIPES / "github_actions_grade.yml").read_text()
    wf = yaml.safe_load(text)
    jobs = wf["jobs"]
    shards_list = jobs["grade"]["strategy"]["matrix"]["shard"]
    assert shards_list == list(range(len(shards_list))) and len(shards_list) >= 2
    assert jobs["grade"]["strategy"]["fail-fast"] is False
    assert jobs["merge"]["needs"] == "grade"
    steps = " ".join(json.dumps(s) for s in jobs["grade"]["steps"])
    assert "${{ matrix.shard }}/${{ strategy.job-total }}" in steps
    assert "actions/upload-artifact@v4" in steps and "bubblewrap" in steps
    merge_steps = " ".join(json.dumps(s) for s in jobs["merge"]["steps"])
    assert "actions/download-artifact@v4" in merge_steps
    commands = _grader_commands("\n".join(step["run"] for job in jobs.values()
                                           for step in job["steps"] if "run" in step))
    assert len(commands) == 2 and commands[1][0] == "merge"
    assert commands[0][-6:] == ["--out", "shard-1", "--jobs", "2", "--sandbox", "bwrap"]
    for args in commands:
        _parses(args)
