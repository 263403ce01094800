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
6. **a guard inside the child**: an audit hook (PEP 578) that refuses sockets, new processes, threads, signals,
   ctypes, other threads' frames, the garbage collector's view of all objects, tracing, reading ``/proc``, and
   writes, renames or deletions outside the program's own directory;
7. **a throw-away directory** (its working directory, HOME and TMPDIR) removed afterwards, nothing left behind;
8. **a pass must be earned**: the program passes only when it ran to its end and the runner printed a one-time
   secret that the program never sees (exit status 0 alone means nothing: ``sys.exit(0)`` or ``os._exit(0)``
   before the tests would otherwise pass). For HumanEval the tests run as an epilogue, after the runner checked
   that the model's code left Python's builtins alone, and each value the function returns must be a plain Python
   value (an object whose ``__eq__`` always says yes cannot pass an ``assert f(x) == y``).

:func:`isolation_layers` says which of these this machine provides. This is a teaching sandbox with several real
kernel limits, not a hardened jail: run benchmarks of untrusted models in a disposable VM or container as well.
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534

# The child's runner. The main thread reads a one-time secret from a pipe and closes it; a worker thread installs the
# guard and runs the program (and an epilogue: for HumanEval, the tests); only when the worker reports that both ran
# to their end does the main thread write the secret to stdout. So a pass means "the secret came back", not "exit
# status 0": sys.exit(0) or os._exit(0) before the tests never shows it. The secret lives only in the main thread's
# frame, which the program's thread cannot reach: its frames lead back to the worker's start, and the ways to reach
# another thread's frames or every object (sys._current_frames, gc) are refused.
RUNNER = r'''
import builtins, os, sys, threading
def _main(program, secret_fd, epilogue, with_guard):
    secret = os.read(secret_fd, 128).decode()
    os.close(secret_fd)
    write, exit_now = os.write, os._exit
    finished, failure = [], []
    worker = threading.Thread(target=_run, args=(program, epilogue, with_guard, finished, failure), daemon=True)
    worker.start()
    worker.join()
    sys.stdout.flush()
    if finished == [True] and not failure:
        write(1, ("\n" + "SANDBOX-COMPLETED " + secret + "\n").encode())
        exit_now(0)
    write(2, (failure[0] if failure else "sandbox: the program stopped before it ran to its end").encode(errors="replace"))
    exit_now(1)
def _run(program, epilogue, with_guard, finished, failure):
    real_builtins = builtins
    snapshot = dict(vars(real_builtins))
    def changed():
        return any(vars(real_builtins).get(k, snapshot) is not v for k, v in snapshot.items())
    try:
        if with_guard:
            _install_guard()
        ns = {"__name__": "__main__", "__file__": program}
        with open(program) as f:
            code = compile(f.read(), program, "exec")
        exec(code, ns)
        if epilogue:
            if ns.get("__builtins__") not in (real_builtins, vars(real_builtins)) or changed():
                raise RuntimeError("sandbox: the program changed Python's builtins before its tests ran")
            with open(epilogue) as f:
                exec(compile(f.read(), epilogue, "exec"), ns)
            if changed():
                raise RuntimeError("sandbox: Python's builtins were changed while the tests ran")
        finished.append(True)
    except SystemExit as stop:  # an early exit is never a pass, whatever its status
        finished.clear()
        failure.append(f"sandbox: the program exited early (SystemExit {stop.code!r}), before it ran to its end\n")
    except BaseException as err:
        finished.clear()
        import traceback
        failure.append("".join(traceback.format_exception(err))[-3000:])
def _install_guard():
    root = os.path.realpath(os.getcwd())
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    deny = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "os.fork", "os.forkpty",
            "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.kill", "os.killpg",
            "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.setuid", "os.setgid",
            # what could reach the runner's thread, every object, or change code behind its back
            "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
            "gc.get_referents", "_thread.start_new_thread", "signal.pthread_kill", "sys.remote_exec"}
    paths = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
             "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
    def inside(path):
        if isinstance(path, int):
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))
        except Exception:
            return False
        return real == root or real.startswith(root + os.sep)
    def hook(event, args):
        if event in deny:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0] in ("signal", "_signal", "faulthandler"):
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            if isinstance(path, (str, bytes)) and os.path.realpath(os.fsdecode(path)).startswith("/proc"):
                raise PermissionError("sandbox: /proc is not readable")
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the sandbox is not allowed")
        elif event in paths:
            for path in args[:2] if event in ("os.rename", "os.link", "os.symlink", "shutil.move") else args[:1]:
                if path is not None and not inside(path):
                    raise PermissionError(f"sandbox: {event} on {path!r} outside the sandbox is not allowed")
    sys.dont_write_bytecode = True
    sys.addaudithook(hook)
_main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1")
'''
COMPLETED = "SANDBOX-COMPLETED "


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended: passed (it ran to its end: the runner's one-time secret came back, which an early
    exit cannot fake), timed out, or failed with its output's tail."""

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
               file_mb: int = 8, guard: bool = True, epilogue: str = "") -> ExecutionResult:
    """Run a Python program in the sandbox and report how it ended (see the module docstring for the layers).

    ``epilogue`` is run after the program in the same namespace (HumanEval's tests after the model's code), once the
    runner has checked that the program left Python's builtins as they were. The result passes only when the
    program and the epilogue ran to their end. ``guard=False`` leaves out the in-process audit hook, so tests can
    show that the kernel limits hold alone.
    """
    if timeout_s <= 0 or memory_mb < 64 or max_processes < 1:
        raise ValueError("need timeout_s > 0, memory_mb >= 64 (the interpreter itself needs ~30 MB), max_processes >= 1")
    work = Path(tempfile.mkdtemp(prefix="gemma_sandbox_"))
    user = _user_prefix()
    uid = NOBODY if user else os.geteuid()
    try:
        (work / "program.py").write_text(program)
        (work / "epilogue.py").write_text(epilogue)
        out_path = work / "output.txt"
        if user:
            for path in (work, work / "program.py", work / "epilogue.py"):
                os.chown(path, NOBODY, NOBODY)
        secret = secrets.token_hex(24)
        read_end, write_end = os.pipe()
        os.write(write_end, secret.encode())
        os.close(write_end)
        python = getattr(sys, "_base_executable", sys.executable) or sys.executable
        command = [*_network_prefix(), *user, python, "-I", "-S", "-B", "-c", RUNNER, "program.py", str(read_end),
                   "epilogue.py" if epilogue else "", "1" if guard else "0"]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8",
               "PYTHONIOENCODING": "utf-8"}
        started = time.perf_counter()
        with open(out_path, "wb") as out:
            try:
                proc = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(read_end,),
                                        preexec_fn=_limits(memory_mb, max_processes, int(timeout_s) + 1, file_mb, uid))
            finally:
                os.close(read_end)
            try:
                returncode: int | None = proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                returncode, timed_out = None, True
            finally:
                _kill_group(proc)
        seconds = time.perf_counter() - started
        output = out_path.read_bytes().decode("utf-8", "replace") if out_path.exists() else ""
        completed = f"\n{COMPLETED}{secret}\n" in output
        shown = output.replace(f"{COMPLETED}{secret}", "(ran to its end)")[-2000:]
        return ExecutionResult(returncode == 0 and completed and not timed_out, timed_out, returncode, seconds, shown)
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
