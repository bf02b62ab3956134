"""One student's notebook running in a fresh kernel (see :mod:`utils.grading.sandbox` for where),
and the proxy through which hidden checks call the student's functions."""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from ..labs import ROOT
from .results import Limits, RemoteError, clean
from .sandbox import Sandbox, spec_manager
from .values import (
    _copy_back,
    _decode,
    _encode,
    _grad_leaves,
    _kernel_helper_source,
    _read_result,
)

__all__: list[str] = []  # private to utils.grading

_QUIET = logging.getLogger("utils.grading.nbclient")  # nbclient's "Interrupting kernel" etc.
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False

# run before the student's first cell: exit() and quit() end the notebook's run in Jupyter, but the
# grader still needs the kernel afterwards, so they do nothing here (a correct notebook that ends
# with exit() is graded like one without it)
_PREAMBLE = "get_ipython().ask_exit = lambda *a, **k: None\n"


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


def _seconds(timeout: float) -> int | None:
    """nbclient's timeout: whole seconds, or None for no limit."""
    return None if math.isinf(timeout) else max(1, int(math.ceil(timeout)))


class _Session:
    """One student's notebook running in a fresh kernel with two private folders of its own."""

    def __init__(self, cells: list[str], limits: Limits, sandbox: Sandbox, tmp_root: Path,
                 hidden: tuple[Path, ...] = ()):
        self.cells = cells
        self.limits = limits
        self.sandbox = sandbox
        self.hidden = hidden
        self.workdir = Path(tempfile.mkdtemp(prefix="la_grade_", dir=tmp_root))
        self.private = Path(tempfile.mkdtemp(prefix="la_grade_", dir=tmp_root))
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
                "LD_LIBRARY_PATH", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        wd = str(self.workdir)
        # only the course package: under the sandbox the rest of the repository (the solutions)
        # is not there; without it, the kernel could read it anyway
        pythonpath = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                    if p and not self.sandbox.isolated]
        env.update(HOME=wd, IPYTHONDIR=os.path.join(wd, ".ipython"),
                   MPLCONFIGDIR=os.path.join(wd, ".matplotlib"),
                   JUPYTER_RUNTIME_DIR=str(self.private),
                   JUPYTER_DATA_DIR=os.path.join(wd, ".jupyter"), TMPDIR=wd,
                   PYTHONPATH=os.pathsep.join(pythonpath), PYTHONDONTWRITEBYTECODE="1",
                   PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,  # `!pip install` cannot download
                   LA_GRADING_TOKEN=self.token,
                   LA_GRADING_LIMITS=f"{self.limits.memory_mb},{self.limits.file_mb}")
        return env

    def start(self) -> None:
        from jupyter_client.manager import AsyncKernelManager
        argv = self.sandbox.command(self.workdir, self.private, self.hidden)
        # under bwrap a signal would reach bwrap, not the kernel: interrupt by message instead
        mode = "message" if self.sandbox.isolated else "signal"
        km = AsyncKernelManager(kernel_name="la-grader", kernel_spec_manager=spec_manager(argv, mode))
        if self.sandbox.isolated:  # no network inside: unix sockets in the kernel's own folder
            km.transport = "ipc"
            km.ip = str(self.private / "k")
        km.connection_file = str(self.private / "connection.json")
        client = _client_class()(nbformat.v4.new_notebook(), km=km, allow_errors=True,
                                 interrupt_on_timeout=True,
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
        if self.execute(_PREAMBLE, 60)[0] != "ok":
            raise RuntimeError("the kernel did not run the grader's first cell")

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
        self.sandbox.kill_leftovers(self.token)

    def close(self) -> None:
        self.stop()
        for folder in (self.workdir, self.private):
            shutil.rmtree(folder, ignore_errors=True)

    def kernel_alive(self) -> bool:
        try:
            from jupyter_core.utils import run_sync
            return bool(self.client is not None and run_sync(self.client.km.is_alive)())
        except Exception:
            return False

    # execution
    def execute(self, source: str, timeout: float) -> tuple[str, str]:
        """Run ``source``; return (status, detail) with status ok, error, timeout, stuck or dead."""
        from nbclient.exceptions import DeadKernelError
        assert self.client is not None
        client = self.client
        client.timeout = _seconds(timeout)
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
        the kernel (during the cell, or just after it finished); stop running cells when the
        notebook's time budget is used up. Problems are added to ``notes`` when ``record``."""
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
            previous = None
            for i, src in enumerate(self.cells):
                if i in skip or not src.strip():
                    continue
                left = self.limits.notebook_timeout - (time.monotonic() - start)
                if left <= 1:
                    events.append(f"the notebook's {self.limits.notebook_timeout:.0f} s time limit "
                                  f"was reached before code cell {i + 1}; later cells were not run")
                    break
                if previous is not None and not self.kernel_alive():
                    status, detail, culprit = "dead", "the kernel ended after this cell", previous
                else:
                    status, detail = self.execute(src, min(self.limits.cell_timeout, left))
                    culprit = i
                if status == "error":
                    events.append(f"code cell {i + 1} raised {detail}")
                elif status == "timeout":
                    events.append(f"code cell {i + 1} {detail}")
                elif status in ("stuck", "dead"):
                    self.alive = False
                    again = attempt < self.limits.max_restarts
                    carried.append(f"code cell {culprit + 1}: {detail}"
                                   + ("; the notebook was run again without it" if again else ""))
                    skip.add(culprit)
                    restart = True
                    break
                previous = i
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
                              + (f" ({clean(detail)})" if detail else ""))
        if result.get("status") == "missing":
            raise RemoteError(f"your notebook does not define `{function}` any more "
                              f"(was it renamed or deleted?)")
        if result.get("status") == "raised":
            kind, message = str(result.get("type")), clean(result.get("message", ""))
            if kind == "NotImplementedError":
                raise NotImplementedError(message)
            raise RemoteError(f"your code raised {kind}: {message}")
        if result.get("status") == "unreadable":
            raise RemoteError(f"{function}(...) returned a value the grader cannot read: "
                              f"{clean(result.get('message', ''))}")
        try:
            value = _decode(result.get("value"))
            _copy_back(_grad_leaves((list(args), kwargs)), _decode(result.get("params", [])))
            return value
        except Exception as err:
            raise RemoteError(f"{function}(...) returned a value the grader cannot read "
                              f"({type(err).__name__})") from None


class _RemoteFunction:
    """What a hidden check receives as ``fn``: calls go to the student's kernel."""

    def __init__(self, session: _Session, name: str):
        self._session, self.__name__ = session, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"
