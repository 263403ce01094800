"""Run untrusted Python (model-written code) in a throw-away sandbox process.

HumanEval asks a model to write a function and then *runs* it. Model-written code can loop forever, fork without
end, fill memory, write over your files or open network connections, so it never runs in the notebook's own
process. Each program gets, in layers (each one catches what another misses):

1. **its own process**: a fresh interpreter (``python -I -S -B``), started in a new session so that the whole
   process group can be killed at once;
2. **a wall-clock limit** (the group is killed with SIGKILL when it expires) and a CPU-time limit;
3. **resource limits** (``setrlimit``): address space (memory), number of processes (against fork bombs), file size,
   open files, no core dumps;
4. **another user**: when we run as root, the program runs as ``nobody`` (so RLIMIT_NPROC applies, which the kernel
   does not enforce for root, and it cannot write to files it does not own);
5. **no network**: a new, empty network namespace (``unshare -n``) where the system allows it;
6. **a guard inside the child**: an audit hook (PEP 578) that refuses sockets, new processes, ctypes, and writes,
   renames or deletions outside the program's own directory;
7. **a throw-away directory** (its working directory, HOME and TMPDIR) removed afterwards, nothing left behind.

:func:`isolation_layers` says which of these this machine provides. This is a teaching sandbox with several real
kernel limits, not a hardened jail: run benchmarks of untrusted models in a disposable VM or container as well.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534

# Installed in the child before the program runs; audit hooks cannot be removed once added.
GUARD = r'''
import os, sys
sys.dont_write_bytecode = True
ROOT = os.path.realpath(os.getcwd())
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
DENY = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "os.fork", "os.forkpty",
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.kill", "os.killpg",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.setuid", "os.setgid"}
PATHS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
         "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
def _inside(path):
    if isinstance(path, int):
        return True
    try:
        real = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return real == ROOT or real.startswith(ROOT + os.sep)
def _hook(event, args):
    if event in DENY:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE)
        if writing and path is not None and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox is not allowed")
    elif event in PATHS:
        for path in args[:2] if event in ("os.rename", "os.link", "os.symlink", "shutil.move") else args[:1]:
            if path is not None and not _inside(path):
                raise PermissionError(f"sandbox: {event} on {path!r} outside the sandbox is not allowed")
sys.addaudithook(_hook)
__file = sys.argv[1]
with open(__file) as __f:
    __code = compile(__f.read(), __file, "exec")
exec(__code, {"__name__": "__main__", "__file__": __file})
'''


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended: passed (exit status 0 in time), timed out, or failed with its output's tail."""

    passed: bool
    timed_out: bool
    returncode: int | None
    seconds: float
    output: str

    @property
    def status(self) -> str:
        """'passed', 'timed out' or 'failed'."""
        return "passed" if self.passed else "timed out" if self.timed_out else "failed"


@functools.lru_cache(maxsize=1)
def _network_prefix() -> tuple[str, ...]:
    """The command prefix that starts the child in an empty network namespace, or () where none is allowed."""
    unshare = shutil.which("unshare")
    if not unshare or not sys.platform.startswith("linux"):
        return ()
    for prefix in ((unshare, "-n"),) if os.geteuid() == 0 else ((unshare, "-r", "-n"),):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            pass
    return ()


@functools.lru_cache(maxsize=1)
def _user_prefix() -> tuple[str, ...]:
    """As root: run the child as nobody (setpriv), so that RLIMIT_NPROC and file permissions apply to it."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        return ()
    return (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")


def _processes_of(uid: int) -> int:
    """How many processes the user runs now (RLIMIT_NPROC counts them all)."""
    count = 0
    for entry in Path("/proc").iterdir() if Path("/proc").exists() else []:
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                pass
    return count


def isolation_layers() -> dict[str, bool]:
    """Which isolation layers this machine gives a sandboxed program."""
    return {"own process and session (group killed at the end)": True, "wall-clock and CPU-time limits": True,
            "memory limit (RLIMIT_AS)": sys.platform.startswith("linux"),
            "process-count limit (RLIMIT_NPROC)": sys.platform.startswith("linux"),
            "runs as user nobody": bool(_user_prefix()), "no network (empty network namespace)": bool(_network_prefix()),
            "audit-hook guard (sockets, processes, writes outside its folder)": True,
            "throw-away working directory": True}


def _limits(memory_mb: int, max_processes: int, cpu_s: int, file_mb: int, uid: int):
    """The function the child runs between fork and exec: only setrlimit calls (no imports, no file reading,
    which are unsafe there when the parent has threads, as a Jupyter kernel does)."""
    nproc = _processes_of(uid) + max_processes
    limits = [(resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, cpu_s), (resource.RLIMIT_FSIZE, file_mb << 20),
              (resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_NPROC, nproc)]
    setrlimit = resource.setrlimit

    def apply() -> None:
        for kind, value in limits:
            setrlimit(kind, (value, value))
    return apply


def run_python(program: str, timeout_s: float = 5.0, memory_mb: int = 512, max_processes: int = 8,
               file_mb: int = 8, guard: bool = True) -> ExecutionResult:
    """Run a Python program in the sandbox and report how it ended (see the module docstring for the layers).

    ``guard=False`` leaves out the in-process audit hook, so tests can show that the kernel limits hold alone.
    """
    if timeout_s <= 0 or memory_mb < 64 or max_processes < 1:
        raise ValueError("need timeout_s > 0, memory_mb >= 64 (the interpreter itself needs ~30 MB), max_processes >= 1")
    work = Path(tempfile.mkdtemp(prefix="gemma_sandbox_"))
    user = _user_prefix()
    uid = NOBODY if user else os.geteuid()
    try:
        (work / "program.py").write_text(program)
        out_path = work / "output.txt"
        if user:
            for path in (work, work / "program.py"):
                os.chown(path, NOBODY, NOBODY)
        python = getattr(sys, "_base_executable", sys.executable) or sys.executable
        code = ["-c", GUARD, "program.py"] if guard else ["program.py"]
        command = [*_network_prefix(), *user, python, "-I", "-S", "-B", *code]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
               "PYTHONIOENCODING": "utf-8"}
        started = time.perf_counter()
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                                    preexec_fn=_limits(memory_mb, max_processes, int(timeout_s) + 1, file_mb, uid))
            try:
                returncode: int | None = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                returncode, timed_out = None, True
            finally:
                _kill_group(proc)
        seconds = time.perf_counter() - started
        tail = out_path.read_bytes()[-2000:].decode("utf-8", "replace") if out_path.exists() else ""
        return ExecutionResult(returncode == 0 and not timed_out, timed_out, returncode, seconds, tail)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL everything left in the child's process group (a fork bomb's children included), then reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL is a kernel matter
        pass
    for _ in range(100):  # orphans of the group, until none is left
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)
