"""Grade a folder of handed-in labs: one command, a gradebook CSV and one feedback file per student.

Command line (from the repository root)::

    python -m utils.grading 01_architecture path/to/submissions --out path/to/grades

writes ``grades/gradebook.csv`` (one row per submitted ``.ipynb``, one column per exercise with the
points awarded, a total) and ``grades/feedback/<submission>.md`` (which checks failed and why).

**Declarations.** Points and hidden checks live in the solution notebook, in a code cell tagged
``solution-only`` right after each exercise (so ``labs/`` never contains them), whose metadata says
``{"grading": {"exercise": "1.1", "function": "sign_matrix", "points": 2}}`` and whose code defines
``hidden_check(fn)``: trusted code that calls ``fn`` like the function it grades and raises
(:class:`utils.checks.CheckFailure`, ``AssertionError``, ...) when the answer is wrong.

**Isolation.** Each submission runs top to bottom, every cell even after errors, in its own fresh
IPython kernel (``nbclient``) started in an empty temporary directory with ``HOME`` there, with a
time limit per cell and per notebook, memory and file-size limits, and a cap on the output kept.
``hidden_check`` never runs in the student's kernel: it runs in the grader, where ``fn`` is a proxy
that sends each call's arguments (plain data and tensors) to the student's kernel, calls the
student's function there and brings back only the returned *value*. The student's code therefore
decides what their function returns and nothing else: it cannot redefine the checks, the
comparison or the points. See the "Grading" section of the instructors' page for the threat model.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat

from .labs import ROOT

__all__ = [
    "Exercise",
    "Limits",
    "ExerciseResult",
    "SubmissionResult",
    "GradingReport",
    "RemoteError",
    "read_declarations",
    "find_solution",
    "grade_notebook",
    "grade_folder",
    "gradebook_rows",
    "write_outputs",
    "main",
]

PASS, FAIL, NOT_IMPLEMENTED, ERROR, MISSING = "pass", "fail", "not implemented", "error", "missing"
_MAX_MESSAGE = 400            # characters of any student-derived text kept in the feedback
_MAX_RESULT_BYTES = 20_000_000  # largest value a student's function may send back
_MAX_SUBMISSION_BYTES = 50_000_000
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- declarations ------------------------------------------------------------------------------

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
        return f"{self.exercise} {self.function} ({_fmt_points(self.points)})"


def _fmt_points(x: float) -> str:
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
        if not re.search(r"^def hidden_check\(", cell.source, re.M):
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
    name = lab[:-6] if lab.endswith(".ipynb") else lab
    name = Path(name).name
    if name in available:
        return folder / f"{name}.ipynb"
    if name.isdigit():
        matches = [a for a in available if a.split("_", 1)[0].lstrip("0") == name.lstrip("0")]
        if len(matches) == 1:
            return folder / f"{matches[0]}.ipynb"
    raise ValueError(f"lab must be one of {available} (or its chapter number), got {lab!r}")


# --- limits and results ------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission (seconds, bytes, megabytes)."""

    cell_timeout: float = 600.0       # any one cell of the student's notebook
    notebook_timeout: float = 1800.0  # the whole notebook (cells after the budget are not run)
    call_timeout: float = 60.0        # one call of a student's function by a hidden check
    output_bytes: int = 1_000_000     # output kept per notebook (the rest is discarded)
    memory_mb: int = 6000             # address-space limit of the kernel process
    file_mb: int = 200                # largest file the kernel may write
    max_restarts: int = 2             # fresh kernels after a cell that kills or hangs the kernel

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "notebook_timeout", "call_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("output_bytes", "memory_mb", "file_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) \
                or self.max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {self.max_restarts!r}")


@dataclass(frozen=True)
class ExerciseResult:
    """Outcome of one hidden check on one submission."""

    exercise: str
    points: float
    max_points: float
    status: str            # pass, fail, not implemented, error, missing
    message: str = ""


@dataclass
class SubmissionResult:
    """Everything the grader learnt about one submission."""

    name: str
    results: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)   # notebook-level problems, for the feedback
    run_seconds: float = 0.0      # executing the student's cells (not in the CSV: not reproducible)
    total_seconds: float = 0.0    # everything for this submission

    @property
    def total(self) -> float:
        return sum(r.points for r in self.results)


@dataclass
class GradingReport:
    """Result of :func:`grade_folder`."""

    lab: str
    exercises: list[Exercise]
    submissions: list[SubmissionResult]
    warnings: list[str]
    seconds: float
    out: Path | None = None


class RemoteError(Exception):
    """The student's function raised (in the student's kernel) or could not be called."""


# --- values between the grader and the student's kernel ----------------------------------------
# _encode/_decode are also sent, as source, to the student's kernel: one implementation for both
# sides. They handle None, bool, int, float, str, lists, tuples, str-keyed dicts, numpy arrays and
# scalars, torch tensors (with their gradient flag and .grad) and torch generators (as their
# state); anything else is refused.

def _encode(value, depth=0):
    import numbers as _numbers
    if depth > 20:
        raise TypeError("the value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, _numbers.Integral):
        return int(value)
    if isinstance(value, _numbers.Real):
        x = float(value)
        return x if x == x and x not in (float("inf"), float("-inf")) else {"__t": "float", "v": repr(x)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, depth + 1) for v in value]
        return items if isinstance(value, list) else {"__t": "tuple", "v": items}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dictionaries must have string keys")
        return {"__t": "dict", "v": {k: _encode(v, depth + 1) for k, v in value.items()}}
    kind = type(value).__module__.split(".")[0]
    if kind == "torch" and hasattr(value, "get_state") and hasattr(value, "manual_seed"):
        # a torch.Generator travels as its state: the student's function draws the same numbers
        return {"__t": "generator", "state": _encode(value.get_state(), depth + 1)}
    if kind == "torch" and hasattr(value, "detach"):
        t = value.detach().cpu()
        if t.numel() > 2_000_000:
            raise TypeError(f"the tensor is too large ({t.numel()} elements)")
        if t.is_complex():
            raise TypeError("complex tensors are not supported")
        out = {"__t": "tensor", "dtype": str(t.dtype).replace("torch.", ""),
               "shape": list(t.shape), "v": [_encode(x) for x in t.reshape(-1).tolist()]}
        if value.requires_grad:  # differentiable values stay so (a check may test for it)
            out["rg"] = True
            if value.is_leaf and value.grad is not None:
                out["grad"] = _encode(value.grad, depth + 1)
        return out
    if kind == "numpy" and hasattr(value, "dtype"):
        import numpy as _np
        a = _np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"numpy arrays of dtype {a.dtype} are not supported")
        if a.size > 2_000_000:
            raise TypeError(f"the array is too large ({a.size} elements)")
        if a.ndim == 0:
            return _encode(a.item(), depth + 1)
        return {"__t": "ndarray", "dtype": str(a.dtype), "shape": list(a.shape),
                "v": [_encode(x) for x in a.reshape(-1).tolist()]}
    raise TypeError(f"values of type {type(value).__name__} cannot be passed between the grader "
                    f"and the notebook")


def _decode(obj, depth=0):
    if depth > 22:
        raise ValueError("the value is nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, depth + 1) for v in obj]
    if not isinstance(obj, dict):
        raise ValueError(f"unexpected {type(obj).__name__}")
    tag = obj.get("__t")
    if tag == "float":
        return float(str(obj["v"]))
    if tag == "tuple":
        return tuple(_decode(v, depth + 1) for v in obj["v"])
    if tag == "dict":
        return {str(k): _decode(v, depth + 1) for k, v in obj["v"].items()}
    if tag == "generator":
        import torch as _torch
        state = _decode(obj["state"], depth + 1)
        if not isinstance(state, _torch.Tensor) or state.dtype != _torch.uint8:
            raise ValueError("malformed generator state")
        gen = _torch.Generator()
        try:
            gen.set_state(state)
        except RuntimeError:
            raise ValueError("malformed generator state") from None
        return gen
    if tag in ("tensor", "ndarray"):
        import math as _math
        import numpy as _np
        dtype = str(obj["dtype"])
        allowed = {"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
                   "uint8", "bool"}
        if dtype not in allowed:
            raise ValueError(f"unsupported dtype {dtype!r}")
        shape = [int(s) for s in obj["shape"]]
        flat = [float(x) if isinstance(x, (int, float)) else float(str(x["v"])) for x in obj["v"]]
        if _math.prod(shape) != len(flat):
            raise ValueError("the shape does not match the number of values")
        if tag == "ndarray":
            return _np.asarray(flat, dtype=dtype if dtype != "bfloat16" else "float32").reshape(shape)
        import torch as _torch
        t = _torch.tensor(flat, dtype=getattr(_torch, dtype)).reshape(shape).clone()
        if obj.get("rg") is True and t.is_floating_point():
            t.requires_grad_(True)
            if "grad" in obj:
                g = _decode(obj["grad"], depth + 1)
                if not isinstance(g, _torch.Tensor) or g.shape != t.shape or g.dtype != t.dtype:
                    raise ValueError("a gradient does not match its tensor")
                t.grad = g.detach()
        return t
    raise ValueError(f"unknown tag {tag!r}")


def _grad_leaves(obj, depth=0):
    """The tensors in ``obj`` (nested lists, tuples, dicts) that are leaves requiring a gradient,
    in a fixed order: the parameters a function may update in place."""
    if depth > 20:
        return []
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _grad_leaves(v, depth + 1)]
    if isinstance(obj, dict):
        return [t for k in sorted(obj, key=str) for t in _grad_leaves(obj[k], depth + 1)]
    if type(obj).__module__.split(".")[0] == "torch" and getattr(obj, "requires_grad", False) \
            and getattr(obj, "is_leaf", False):
        return [obj]
    return []


def _kernel_helper_source(prefix: str) -> str:
    """Code defining ``<prefix>call(name, payload, path)`` in the student's kernel."""
    import inspect
    enc = inspect.getsource(_encode).replace("_encode", prefix + "encode")
    dec = inspect.getsource(_decode).replace("_decode", prefix + "decode")
    leaves = inspect.getsource(_grad_leaves).replace("_grad_leaves", prefix + "grad_leaves")
    call = f'''
def {prefix}call(name, payload, path):
    import json as _json
    try:
        _fn = globals()[name]
    except KeyError:
        _result = {{"status": "missing"}}
    else:
        try:
            _args, _kwargs = {prefix}decode(_json.loads(payload))
            _value = _fn(*_args, **_kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as _err:
            _result = {{"status": "raised", "type": type(_err).__name__, "message": str(_err)[:2000]}}
        else:
            try:
                _result = {{"status": "ok", "value": {prefix}encode(_value),
                           "params": {prefix}encode({prefix}grad_leaves((_args, _kwargs)))}}
            except Exception as _err:
                _result = {{"status": "unreadable", "message": str(_err)[:500]}}
    with open(path, "w") as _f:
        _json.dump(_result, _f)
'''
    return enc + "\n" + dec + "\n" + leaves + "\n" + call


# --- running one notebook ------------------------------------------------------------------------

_LAUNCHER = textwrap.dedent("""\
    import os, resource, sys
    _mem, _fsize = (int(x) for x in os.environ.pop("LA_GRADING_LIMITS").split(","))
    for _lim, _val in ((resource.RLIMIT_AS, _mem * 2**20), (resource.RLIMIT_FSIZE, _fsize * 2**20),
                       (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(_lim, (_val, _val))
        except (ValueError, OSError):
            pass
    from ipykernel import kernelapp
    kernelapp.launch_new_instance()
""")


_QUIET = logging.getLogger("utils.grading.nbclient")  # nbclient's "Interrupting kernel" etc.
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False


def _make_kernelspec(folder: Path) -> Path:
    spec = folder / "kernels" / "la-grader"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", _LAUNCHER, "-f", "{connection_file}"],
        "display_name": "Less Artificial grader", "language": "python"}))
    return folder / "kernels"


def _client_class():
    from nbclient import NotebookClient

    class _CappedClient(NotebookClient):
        """nbclient's client, keeping at most ``output_budget`` bytes of outputs overall."""

        output_budget = 1_000_000
        output_dropped = False
        timed_out = False

        async def _async_handle_timeout(self, timeout, cell=None):
            self.timed_out = True  # nbclient interrupts the kernel and reports an error reply
            return await super()._async_handle_timeout(timeout, cell)

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            size = len(str(content.get("text", ""))) + sum(
                len(str(v)) for v in (content.get("data") or {}).values())
            if msg.get("msg_type") == "error":
                size = min(size, 2000)
            if size > self.output_budget:
                self.output_dropped = True
                return None
            self.output_budget -= size
            return super().output(outs, msg, display_id, cell_index)

    return _CappedClient


def _kill_leftovers(token: str) -> int:
    """Kill every process whose environment carries ``token`` (what a kernel left behind)."""
    killed = 0
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    needle = f"LA_GRADING_TOKEN={token}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def _clean(text: str, workdir: str | None = None) -> str:
    """Student-derived text made safe and reproducible for the feedback file."""
    text = str(text)
    if workdir:
        text = text.replace(workdir, ".")
    text = re.sub(r"/tmp/la_grade_[A-Za-z0-9_]+", ".", text)
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x…", text)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    text = "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + " …"


class _Session:
    """One student's notebook running in a fresh kernel in a private temporary directory."""

    def __init__(self, cells: list[str], limits: Limits, specdir: Path, tmp_root: Path):
        self.cells = cells
        self.limits = limits
        self.specdir = specdir
        self.workdir = Path(tempfile.mkdtemp(prefix="la_grade_", dir=tmp_root))
        self.private = Path(tempfile.mkdtemp(prefix="la_grade_results_", dir=tmp_root))
        self.token = secrets.token_hex(16)
        self.prefix = f"_la_grader_{secrets.token_hex(6)}_"
        self.client = None
        self.notes: list[str] = []
        self.alive = False
        self.run_seconds = 0.0
        self._calls = 0

    # kernel lifecycle
    def _env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "CONDA_PREFIX",
                "LD_LIBRARY_PATH", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        wd = str(self.workdir)
        pythonpath = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env.update(HOME=wd, IPYTHONDIR=os.path.join(wd, ".ipython"),
                   MPLCONFIGDIR=os.path.join(wd, ".matplotlib"), JUPYTER_RUNTIME_DIR=wd,
                   JUPYTER_DATA_DIR=os.path.join(wd, ".jupyter"), TMPDIR=wd,
                   PYTHONPATH=os.pathsep.join(pythonpath), PYTHONDONTWRITEBYTECODE="1",
                   PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,  # `!pip install` cannot download
                   LA_GRADING_TOKEN=self.token,
                   LA_GRADING_LIMITS=f"{self.limits.memory_mb},{self.limits.file_mb}")
        return env

    def start(self) -> None:
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        nb = nbformat.v4.new_notebook()
        km = AsyncKernelManager(kernel_name="la-grader",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.specdir)]))
        km.connection_file = str(self.private / f"kernel-{secrets.token_hex(4)}.json")
        client = _client_class()(nb, km=km, allow_errors=True, interrupt_on_timeout=True,
                                 error_on_timeout={"ename": "Timeout", "evalue": "time limit",
                                                   "traceback": []},
                                 iopub_timeout=5, shutdown_kernel="immediate",
                                 startup_timeout=180, record_timing=False, log=_QUIET)
        client.output_budget = self.limits.output_bytes
        # the kernel's own stdout/stderr (not the notebook's outputs) go nowhere: a submission that
        # writes to file descriptor 1 or 2 cannot flood the grader's terminal
        client.start_new_kernel(cwd=str(self.workdir), env=self._env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client.start_new_kernel_client()
        self.client = client
        self.alive = True

    def stop(self) -> None:
        client, self.client, self.alive = self.client, None, False
        if client is not None:
            try:
                from jupyter_core.utils import run_sync
                if client.kc is not None:
                    client.kc.stop_channels()
                run_sync(client.km.shutdown_kernel)(now=True)
            except Exception:
                pass
        _kill_leftovers(self.token)

    def close(self) -> None:
        self.stop()
        for folder in (self.workdir, self.private):
            shutil.rmtree(folder, ignore_errors=True)

    # execution
    def execute(self, source: str, timeout: float) -> tuple[str, str]:
        """Run ``source``; return (status, detail) with status ok, error, timeout, stuck or dead."""
        from nbclient.exceptions import DeadKernelError
        assert self.client is not None
        client = self.client
        client.timeout = max(1, int(math.ceil(timeout)))
        client.timed_out = False
        cell = nbformat.v4.new_code_cell(source)
        client.nb.cells = [cell]
        try:
            client.execute_cell(cell, 0, store_history=False)
        except DeadKernelError:
            self.alive = False
            return "dead", "the kernel died (it crashed, ran out of memory or exited)"
        except Exception as err:  # nbclient/zmq trouble: treat the kernel as lost
            self.alive = False
            return "dead", f"the kernel stopped responding ({type(err).__name__})"
        if client.timed_out:
            # interrupted: is the kernel responsive again?
            client.timeout, client.timed_out = 20, False
            probe = nbformat.v4.new_code_cell("pass")
            client.nb.cells = [probe]
            try:
                client.execute_cell(probe, 0, store_history=False)
                ok = not client.timed_out
            except Exception:
                ok = False
            if not ok:
                self.alive = False
                return "stuck", "did not stop when interrupted"
            return "timeout", f"stopped after the {timeout:.0f} s time limit"
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            err = errors[-1]
            return "error", f"{err.get('ename', 'Error')}: {err.get('evalue', '')}"
        return "ok", ""

    def run_notebook(self, record: bool = True) -> None:
        """Run every cell (errors do not stop the run); restart without a cell that kills or hangs
        the kernel; stop running cells when the notebook's time budget is used up. Problems are
        added to ``notes`` when ``record``."""
        start = time.monotonic()
        skip: set[int] = set()
        carried: list[str] = []
        events: list[str] = []
        for attempt in range(self.limits.max_restarts + 1):
            if attempt or self.client is not None:
                self.stop()
            self.start()
            events = []
            restart = False
            for i, src in enumerate(self.cells):
                if i in skip or not src.strip():
                    continue
                left = self.limits.notebook_timeout - (time.monotonic() - start)
                if left <= 1:
                    events.append(f"the notebook's {self.limits.notebook_timeout:.0f} s time limit "
                                  f"was reached before code cell {i + 1}; later cells were not run")
                    break
                status, detail = self.execute(src, min(self.limits.cell_timeout, left))
                if status == "error":
                    events.append(f"code cell {i + 1} raised {detail}")
                elif status == "timeout":
                    events.append(f"code cell {i + 1} {detail}")
                elif status in ("stuck", "dead"):
                    again = attempt < self.limits.max_restarts
                    carried.append(f"code cell {i + 1}: {detail}"
                                   + ("; the notebook was run again without it" if again else ""))
                    skip.add(i)
                    restart = True
                    break
            if not restart:
                break
        if record:
            self.notes += carried + events
            if not self.alive:
                self.notes.append("the kernel was lost; exercises could not be checked")
            if getattr(self.client, "output_dropped", False):
                self.notes.append(f"output beyond {self.limits.output_bytes} bytes was discarded")
            self.run_seconds = time.monotonic() - start

    def install_helper(self) -> bool:
        if not self.alive:
            return False
        status, _ = self.execute(_kernel_helper_source(self.prefix), self.limits.call_timeout)
        return status == "ok"

    def call(self, function: str, args: tuple, kwargs: dict) -> Any:
        """Call the student's ``function`` in the kernel; return the value or raise."""
        if not self.alive:
            raise RemoteError("the notebook's kernel is no longer running")
        payload = json.dumps(_encode((list(args), kwargs)))
        self._calls += 1
        path = self.private / f"r{self._calls}_{secrets.token_hex(4)}.json"
        code = f"{self.prefix}call({function!r}, {payload!r}, {str(path)!r})"
        status, detail = self.execute(code, self.limits.call_timeout)
        if status in ("timeout", "stuck", "dead"):
            raise RemoteError(f"{function}(...) {detail or status}")
        result = _read_result(path)
        if result is None:
            raise RemoteError(f"{function}(...) returned nothing the grader could read"
                              + (f" ({_clean(detail)})" if detail else ""))
        if result.get("status") == "missing":
            raise RemoteError(f"your notebook does not define `{function}` any more "
                              f"(was it renamed or deleted?)")
        if result.get("status") == "raised":
            kind, message = str(result.get("type")), _clean(result.get("message", ""))
            if kind == "NotImplementedError":
                raise NotImplementedError(message)
            raise RemoteError(f"your code raised {kind}: {message}")
        if result.get("status") == "unreadable":
            raise RemoteError(f"{function}(...) returned a value the grader cannot read: "
                              f"{_clean(result.get('message', ''))}")
        try:
            value = _decode(result.get("value"))
            _copy_back(_grad_leaves((list(args), kwargs)), _decode(result.get("params", [])))
            return value
        except Exception as err:
            raise RemoteError(f"{function}(...) returned a value the grader cannot read "
                              f"({type(err).__name__})") from None


def _copy_back(originals: list, updated: Any) -> None:
    """Give the grader's parameters (tensors requiring a gradient that were passed to the student's
    function) the values and gradients they have in the kernel after the call: a function that
    updates parameters in place, like an optimiser step, is graded on what it did to them."""
    import torch
    if not isinstance(updated, list) or len(updated) != len(originals):
        raise ValueError("the parameters came back in a different number")
    for orig, new in zip(originals, updated):
        if not isinstance(new, torch.Tensor) or new.shape != orig.shape:
            raise ValueError("a parameter came back with a different shape")
        with torch.no_grad():
            orig.copy_(new)
        orig.grad = None if new.grad is None else new.grad.to(orig.dtype)


def _read_result(path: Path) -> dict | None:
    """The JSON a kernel wrote at ``path``: a regular file, not a link, of bounded size."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        import stat
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_RESULT_BYTES:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read(_MAX_RESULT_BYTES + 1)
        value = json.loads(data)
        return value if isinstance(value, dict) else None
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass


class _RemoteFunction:
    """What a hidden check receives as ``fn``: calls go to the student's kernel."""

    def __init__(self, session: _Session, name: str):
        self._session, self.__name__ = session, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"


def _compile_checks(exercises: list[Exercise]) -> dict[str, Callable[[Any], Any]]:
    checks = {}
    for ex in exercises:
        namespace: dict[str, Any] = {"__name__": f"grading_{ex.exercise}"}
        exec(compile(ex.source, f"<grading cell {ex.cell_index}: exercise {ex.exercise}>", "exec"),
             namespace)
        fn = namespace.get("hidden_check")
        if not callable(fn):
            raise ValueError(f"grading cell {ex.cell_index} does not define hidden_check(fn)")
        checks[ex.exercise] = fn
    return checks


def _run_check(check: Callable[[Any], Any], fn: _RemoteFunction, ex: Exercise) -> ExerciseResult:
    from .checks import CheckFailure
    max_pts = ex.points
    try:
        check(fn)
    except NotImplementedError:
        return ExerciseResult(ex.exercise, 0.0, max_pts, NOT_IMPLEMENTED,
                              f"`{ex.function}` still raises NotImplementedError")
    except (CheckFailure, AssertionError) as err:
        return ExerciseResult(ex.exercise, 0.0, max_pts, FAIL, _clean(str(err) or "wrong answer"))
    except RemoteError as err:
        status = MISSING if "does not define" in str(err) else ERROR
        return ExerciseResult(ex.exercise, 0.0, max_pts, status, _clean(str(err)))
    except Exception as err:  # the student's value broke the check: a wrong answer, not a crash
        where = traceback.extract_tb(err.__traceback__)[-1]
        return ExerciseResult(ex.exercise, 0.0, max_pts, FAIL, _clean(
            f"the check could not use your result: {type(err).__name__}: {err} "
            f"(check line {where.lineno})"))
    return ExerciseResult(ex.exercise, max_pts, max_pts, PASS, "")


def _code_cells(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append(src if isinstance(src, str) else "".join(src))
    return out


def grade_notebook(notebook: nbformat.NotebookNode | bytes | str, exercises: list[Exercise], *,
                   name: str = "submission", limits: Limits | None = None,
                   checks: dict[str, Callable] | None = None, specdir: Path | None = None,
                   tmp_root: Path | None = None) -> SubmissionResult:
    """Run one submission in a fresh kernel and grade it with the hidden checks.

    ``notebook`` is a notebook object, or the raw bytes/text of an ``.ipynb`` file. Never raises
    because of the submission: unreadable notebooks, errors, time-outs and dead kernels give zero
    points for what they affect and a note in the result.

    Raises:
        TypeError: ``notebook``, ``exercises`` or ``limits`` have the wrong type.
    """
    t0 = time.monotonic()
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a utils.grading.Limits, got {type(limits).__name__}")
    if not isinstance(exercises, list) or not all(isinstance(e, Exercise) for e in exercises):
        raise TypeError("exercises must be a list of Exercise (see read_declarations)")
    if not isinstance(notebook, (nbformat.NotebookNode, bytes, str)):
        raise TypeError(f"notebook must be a notebook, bytes or str, got {type(notebook).__name__}")
    checks = _compile_checks(exercises) if checks is None else checks

    def zero(status: str, message: str) -> list[ExerciseResult]:
        return [ExerciseResult(e.exercise, 0.0, e.points, status, message) for e in exercises]

    if not isinstance(notebook, nbformat.NotebookNode):
        try:
            text = notebook.decode("utf-8") if isinstance(notebook, bytes) else notebook
            notebook = nbformat.reads(text, as_version=4)
            cells = _code_cells(notebook)
        except Exception as err:
            msg = _clean(f"the file is not a readable notebook ({type(err).__name__})")
            return SubmissionResult(name, zero(ERROR, msg), [msg],
                                    total_seconds=time.monotonic() - t0)
    else:
        cells = _code_cells(notebook)

    own_tmp = tmp_root is None
    tmp_root = Path(tempfile.mkdtemp(prefix="la_grade_")) if own_tmp else tmp_root
    specdir = _make_kernelspec(tmp_root) if specdir is None else specdir
    session = _Session(cells, limits, specdir, tmp_root)
    try:
        try:
            session.run_notebook()
        except Exception as err:  # e.g. the kernel could not start at all
            session.alive = False
            session.notes.append(_clean(f"the notebook could not be run: {type(err).__name__}: {err}"))
        results = []
        reruns = 0
        helper = session.install_helper()
        for ex in exercises:
            if not helper:
                results.append(ExerciseResult(ex.exercise, 0.0, ex.points, ERROR,
                                              "the notebook's kernel was lost; nothing could be checked"))
                continue
            results.append(_run_check(checks[ex.exercise], _RemoteFunction(session, ex.function), ex))
            if not session.alive and reruns < session.limits.max_restarts:
                # a call hung or killed the kernel: later exercises get a fresh run of the notebook
                reruns += 1
                session.notes.append(f"checking exercise {ex.exercise} hung or crashed the kernel; "
                                     f"the notebook was run again for the remaining exercises")
                try:
                    session.run_notebook(record=False)
                    helper = session.install_helper()
                except Exception:
                    helper = False
        notes = [_clean(n, str(session.workdir)) for n in session.notes]
        return SubmissionResult(name, results, notes, run_seconds=session.run_seconds,
                                total_seconds=time.monotonic() - t0)
    finally:
        session.close()
        if own_tmp:
            shutil.rmtree(tmp_root, ignore_errors=True)


# --- a folder of submissions ---------------------------------------------------------------------

def _safe_stem(name: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "submission"
    candidate, k = stem, 2
    while candidate.lower() in used:
        candidate, k = f"{stem}_{k}", k + 1
    used.add(candidate.lower())
    return candidate


def grade_folder(lab: str, submissions: str | Path, out: str | Path | None = None, *,
                 jobs: int = 2, limits: Limits | None = None, root: Path = ROOT,
                 progress: Callable[[str], None] | None = print) -> GradingReport:
    """Grade every ``*.ipynb`` directly inside ``submissions`` against lab ``lab``.

    Every submission is read into memory before any student code runs, graded in its own kernel
    (``jobs`` at a time), and the gradebook and feedback files are written to ``out`` (default:
    ``<submissions>_grades`` next to the folder) only after every kernel has been stopped. A
    submission file that was changed during the run is restored and reported.

    Raises:
        TypeError / ValueError: unknown lab, missing folder, bad ``jobs`` or ``limits``, or an
        output folder inside the submissions folder.
    """
    t0 = time.monotonic()
    solution = find_solution(lab, root)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a utils.grading.Limits, got {type(limits).__name__}")
    if not isinstance(submissions, (str, Path)):
        raise TypeError(f"submissions must be a folder path, got {type(submissions).__name__}")
    folder = Path(submissions).resolve()
    if not folder.is_dir():
        raise ValueError(f"submissions must be an existing folder, got {str(submissions)!r}")
    out_dir = (folder.parent / f"{folder.name}_grades") if out is None else Path(out).resolve()
    if out_dir == folder or folder in out_dir.parents:
        raise ValueError(f"out must not be inside the submissions folder, got {str(out)!r}")
    exercises = read_declarations(solution)
    if not exercises:
        raise ValueError(f"{solution.name} declares no graded exercise (see CONTRIBUTING.md, "
                         f"'Grading declarations')")
    checks = _compile_checks(exercises)

    # read everything first: nothing a student does later changes what is graded
    originals: dict[Path, bytes] = {}
    for path in sorted(folder.glob("*.ipynb"), key=lambda p: p.name):
        if path.is_file() and not path.is_symlink():
            originals[path] = path.read_bytes()[:_MAX_SUBMISSION_BYTES + 1]
    warnings: list[str] = []

    tmp_root = Path(tempfile.mkdtemp(prefix="la_grade_"))
    specdir = _make_kernelspec(tmp_root)

    def one(item: tuple[Path, bytes]) -> SubmissionResult:
        path, data = item
        if len(data) > _MAX_SUBMISSION_BYTES:
            msg = f"the file is larger than {_MAX_SUBMISSION_BYTES // 10**6} MB"
            return SubmissionResult(path.name, [ExerciseResult(e.exercise, 0.0, e.points, ERROR, msg)
                                                for e in exercises], [msg])
        try:
            result = grade_notebook(data, exercises, name=path.name, limits=limits, checks=checks,
                                    specdir=specdir, tmp_root=tmp_root)
        except Exception as err:  # a bug of ours must not stop the other submissions
            msg = _clean(f"internal grader error: {type(err).__name__}: {err}")
            result = SubmissionResult(path.name, [ExerciseResult(e.exercise, 0.0, e.points, ERROR, msg)
                                                  for e in exercises], [msg])
        if progress:
            progress(f"{path.name}: {_fmt_points(result.total)} / "
                     f"{_fmt_points(sum(e.points for e in exercises))} "
                     f"({result.total_seconds:.1f} s)")
        return result

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, originals.items()))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    for path, data in originals.items():
        try:
            unchanged = path.is_file() and not path.is_symlink() and path.read_bytes() == data
        except OSError:
            unchanged = False
        if not unchanged:
            warnings.append(f"{path.name} was changed or removed during grading (by a submission); "
                            f"it was restored and graded from the copy read before the run")
            try:
                if path.is_symlink() or path.is_dir():
                    path.unlink() if path.is_symlink() else shutil.rmtree(path)
                path.write_bytes(data)
            except OSError as err:
                warnings.append(f"could not restore {path.name}: {err}")
    report = GradingReport(solution.stem, exercises, results, warnings, time.monotonic() - t0)
    try:
        report.out = write_outputs(report, out_dir)
    except OSError as err:  # e.g. a submission made the folder unwritable: keep the results anyway
        fallback = Path(tempfile.mkdtemp(prefix=f"{folder.name}_grades_"))
        report.warnings.append(f"could not write to {out_dir} ({err}); results are in {fallback}")
        report.out = write_outputs(report, fallback)
        out_dir = fallback
    if progress:
        for w in warnings:
            progress("warning: " + w)
        progress(f"wrote {out_dir / 'gradebook.csv'} and {len(results)} feedback files "
                 f"in {report.seconds:.1f} s")
    return report


def gradebook_rows(report: GradingReport) -> list[list[str]]:
    """The gradebook as rows of strings: header, one row per submission (sorted by file name)."""
    exercises = report.exercises
    max_total = sum(e.points for e in exercises)
    rows = [["submission"] + [e.column for e in exercises] + [f"total ({_fmt_points(max_total)})"]]
    for sub in sorted(report.submissions, key=lambda s: s.name):
        by_ex = {r.exercise: r for r in sub.results}
        rows.append([sub.name] + [_fmt_points(by_ex[e.exercise].points) for e in exercises]
                    + [_fmt_points(sub.total)])
    return rows


def _feedback(report: GradingReport, sub: SubmissionResult) -> str:
    max_total = sum(e.points for e in report.exercises)
    lines = [f"# {report.lab}: feedback for {sub.name}", "",
             f"**Total: {_fmt_points(sub.total)} / {_fmt_points(max_total)} points**", ""]
    by_ex = {r.exercise: r for r in sub.results}
    for e in report.exercises:
        r = by_ex[e.exercise]
        mark = "passed" if r.status == PASS else r.status
        line = f"- Exercise {e.exercise} (`{e.function}`): {_fmt_points(r.points)} / " \
               f"{_fmt_points(e.points)}, {mark}"
        lines.append(line + (f": {r.message}" if r.message else ""))
    if sub.notes:
        lines += ["", "Notes on running your notebook:"]
        lines += [f"- {n}" for n in sub.notes[:20]]
        if len(sub.notes) > 20:
            lines.append(f"- ... and {len(sub.notes) - 20} more")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.is_dir():
        path.unlink() if path.is_symlink() else shutil.rmtree(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
    with os.fdopen(fd, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_outputs(report: GradingReport, out: str | Path) -> Path:
    """Write ``gradebook.csv`` and ``feedback/<submission>.md`` into ``out``; return ``out``."""
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        out.unlink()  # put there during the run (only the link or file goes, not its target)
    out.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(out, 0o755)  # in case a submission changed the permissions
    except OSError:
        pass
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(gradebook_rows(report))
    _atomic_write(out / "gradebook.csv", buffer.getvalue())
    feedback = out / "feedback"
    if feedback.is_symlink() or (feedback.exists() and not feedback.is_dir()):
        feedback.unlink()
    used: set[str] = set()
    for sub in sorted(report.submissions, key=lambda s: s.name):
        _atomic_write(feedback / f"{_safe_stem(sub.name, used)}.md", _feedback(report, sub))
    if report.warnings:
        _atomic_write(out / "warnings.txt", "\n".join(report.warnings) + "\n")
    elif (out / "warnings.txt").exists():
        (out / "warnings.txt").unlink()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.grading",
        description="Grade a folder of handed-in labs: writes OUT/gradebook.csv and "
                    "OUT/feedback/<submission>.md.")
    parser.add_argument("lab", help="lab name, e.g. 01_architecture (or its number, 1)")
    parser.add_argument("submissions", type=Path, help="folder holding the submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <submissions>_grades next to it)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    parser.add_argument("--cell-timeout", type=float, default=Limits.cell_timeout,
                        help="seconds allowed for one cell (default %(default)s)")
    parser.add_argument("--notebook-timeout", type=float, default=Limits.notebook_timeout,
                        help="seconds allowed for a whole notebook (default %(default)s)")
    parser.add_argument("--call-timeout", type=float, default=Limits.call_timeout,
                        help="seconds allowed for one call of a student's function by a check "
                             "(default %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                        help="address-space limit per kernel in MB (default %(default)s)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                        call_timeout=args.call_timeout, memory_mb=args.memory_mb)
        grade_folder(args.lab, args.submissions, args.out, jobs=args.jobs, limits=limits,
                     root=args.root)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
