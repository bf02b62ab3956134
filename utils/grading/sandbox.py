"""Where a student's kernel runs: a bubblewrap sandbox when ``bwrap`` works here, else a plain
process (and the grader says so).

Under bubblewrap (Debian/Ubuntu package ``bubblewrap``) each kernel gets its own PID, mount,
network, IPC and UTS namespaces, no capabilities, and a filesystem made of: the system directories
(``/usr``, ``/etc``, ``/bin``, ``/lib``...), Python's installation and the course's ``utils``
package, all read-only; a fresh ``/tmp`` and ``/dev``; and two writable folders of its own (its
working directory and the folder holding its connection sockets and results). The submissions,
the solutions, the output folder, the grader's other files and the other kernels are not in that
filesystem; the grader's processes are not in its PID namespace; it has no network. When the
grader stops a kernel (or dies), the namespace's first process dies and the kernel takes every
process it started with it.

The kernel's command line is built in memory for each kernel (no kernel spec file exists), so a
kernel cannot change how the next one starts.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SANDBOXES", "Sandbox", "find_sandbox"]

SANDBOXES = ("auto", "bwrap", "none")
UTILS_DIR = Path(__file__).resolve().parents[1]  # the course package the kernels import

# The kernel's first Python code (run with -c: nothing on disk to tamper with). Limits memory and
# file size, and drops JPY_PARENT_PID: in its own PID namespace the kernel's parent is PID 1, which
# ipykernel would take for "my parent died" (the sandbox already dies with the grader).
LAUNCHER = textwrap.dedent("""\
    import os, resource, sys
    os.environ.pop("JPY_PARENT_PID", None)
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

_INSTALL_HINT = "install it (Debian/Ubuntu: `apt-get install bubblewrap`)"


@dataclass(frozen=True)
class Sandbox:
    """How kernels are isolated: ``kind`` is ``"bwrap"`` or ``"none"``; ``reason`` says why there
    is no sandbox (empty under bwrap)."""

    kind: str
    reason: str = ""

    @property
    def isolated(self) -> bool:
        return self.kind == "bwrap"

    def warning(self) -> str:
        """The sentence the grader prints and writes to warnings.txt when there is no sandbox."""
        if self.isolated:
            return ""
        return (f"NO SANDBOX: {self.reason}. Each kernel ran as this user with this user's rights: "
                f"a submission could read other submissions and the solutions, change files "
                f"(other submissions, the output folder, the Python installation), stop the "
                f"grader, or leave processes behind that outlive the run. For a class you do not "
                f"trust, {_INSTALL_HINT} and grade again.")

    def command(self, workdir: Path, private: Path, hidden: tuple[Path, ...] = ()) -> list[str]:
        """The kernel's command line (``{connection_file}`` is filled in by jupyter_client)."""
        kernel = [sys.executable, "-c", LAUNCHER, "-f", "{connection_file}"]
        if not self.isolated:
            return kernel
        return _bwrap_args(workdir, private, hidden) + ["--"] + kernel

    def kill_leftovers(self, token: str) -> int:
        """Without a sandbox: kill every process whose environment carries ``token`` (what a kernel
        left behind, unless it cleared its environment). Under bwrap this is not needed: stopping
        the sandbox kills everything in it."""
        return 0 if self.isolated else _kill_by_token(token)


def _read_only_paths() -> list[Path]:
    """System and Python folders a kernel needs, outermost first, without duplicates."""
    candidates = [Path("/usr"), Path("/etc")]
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, Path(sys.executable).resolve().parent.parent,
              *site.getsitepackages(), site.getusersitepackages(), UTILS_DIR):
        candidates.append(Path(p).resolve())
    out: list[Path] = []
    for p in sorted({c for c in candidates if c.is_dir()}, key=lambda c: len(c.parts)):
        if not any(q == p or q in p.parents for q in out):
            out.append(p)
    return out


def _bwrap_args(workdir: Path, private: Path, hidden: tuple[Path, ...]) -> list[str]:
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL",
            "--hostname", "grader"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    ro = _read_only_paths()
    for p in ro:
        args += ["--ro-bind", str(p), str(p)]
    # anything of the grader's that happens to lie inside a read-only folder is covered up
    for h in hidden:
        h = Path(h).resolve()
        if h.is_dir() and any(q in h.parents for q in ro):
            args += ["--tmpfs", str(h)]
    for p in (workdir, private):
        args += ["--bind", str(p), str(p)]
    return args + ["--chdir", str(workdir)]


@functools.cache
def _bwrap_problem() -> str:
    """Empty if a kernel can run under bwrap here, else why not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (`bwrap`) is not installed"
    with tempfile.TemporaryDirectory(prefix="la_grade_probe_") as tmp:
        work, private = Path(tmp, "w"), Path(tmp, "p")
        work.mkdir(), private.mkdir()
        cmd = _bwrap_args(work, private, ()) + ["--", sys.executable, "-c", "import ipykernel"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"`bwrap` could not be run ({type(err).__name__})"
    if proc.returncode != 0:
        return f"`bwrap` does not work here ({' '.join(proc.stderr.split())[:200]})"
    return ""


def find_sandbox(mode: str = "auto") -> Sandbox:
    """The sandbox to use: ``"auto"`` (bubblewrap when it works here, else none), ``"bwrap"``
    (required) or ``"none"``.

    Raises:
        TypeError / ValueError: ``mode`` is not one of those; ``"bwrap"`` when it cannot run here.
    """
    if not isinstance(mode, str) or mode not in SANDBOXES:
        raise ValueError(f"sandbox must be one of {list(SANDBOXES)}, got {mode!r}")
    if mode == "none":
        return Sandbox("none", "the sandbox was turned off (sandbox='none')")
    problem = _bwrap_problem()
    if not problem:
        return Sandbox("bwrap")
    if mode == "bwrap":
        raise ValueError(f"sandbox='bwrap' was asked for, but {problem}; {_INSTALL_HINT}")
    return Sandbox("none", problem)


def _kill_by_token(token: str) -> int:
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


def spec_manager(argv: list[str], interrupt_mode: str):
    """A jupyter_client kernel-spec manager that knows one kernel, held in memory."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class _OneKernel(KernelSpecManager):
        def find_kernel_specs(self):
            return {}

        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=list(argv), display_name="Less Artificial grader",
                              language="python", interrupt_mode=interrupt_mode, resource_dir="")

    return _OneKernel()
