"""The HumanEval sandbox: each hostile program is stopped, the harness carries on, nothing is left behind.

Limits are kept small (256 MB, 8 processes, 2-3 s) so that a failing sandbox still cannot hurt the machine much.
"""

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from gemma_helpers import sandbox
from gemma_helpers.sandbox import run_python

SMALL = dict(timeout_s=3.0, memory_mb=256, max_processes=8)


@pytest.fixture()
def private_tmp(monkeypatch):
    """Sandbox folders go into a fresh folder, so a test can see that none is left behind.

    It lies in the system temp folder, readable by all, because the sandboxed program may run as nobody.
    """
    root = Path(tempfile.mkdtemp(prefix="test_sandbox_"))
    root.chmod(0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _nobody_processes() -> int:
    return sandbox._processes_of(sandbox.NOBODY)


def test_passing_and_failing_programs(private_tmp):
    ok = run_python("def f(x):\n    return x + 1\nassert f(1) == 2\nprint('fine')", **SMALL)
    assert ok.passed and ok.status == "passed" and "fine" in ok.output
    bad = run_python("assert 1 + 1 == 3", **SMALL)
    assert not bad.passed and bad.status == "failed" and "AssertionError" in bad.output
    syntax = run_python("def broken(:\n", **SMALL)
    assert syntax.status == "failed" and "SyntaxError" in syntax.output
    assert list(private_tmp.iterdir()) == []  # the throw-away folders are gone


@pytest.mark.parametrize("guard", [True, False])
def test_infinite_loop_times_out(guard, private_tmp):
    result = run_python("while True:\n    pass", timeout_s=1.5, memory_mb=256, max_processes=4, guard=guard)
    assert result.status == "timed out" and result.returncode is None
    assert 1.4 < result.seconds < 4


@pytest.mark.parametrize("guard", [True, False])
def test_fork_bomb_is_contained_and_cleaned_up(guard, private_tmp):
    before = _nobody_processes()
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_python(bomb, timeout_s=2.0, memory_mb=256, max_processes=8, guard=guard)
    assert not result.passed  # stopped by the guard (fork refused) or by RLIMIT_NPROC and the timeout
    if sandbox._user_prefix():  # the children ran as nobody: none survives (killed zombies take a moment to reap)
        deadline = time.time() + 10
        while _nobody_processes() > before and time.time() < deadline:
            time.sleep(0.1)
        assert _nobody_processes() <= before
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("guard", [True, False])
def test_memory_fill_fails(guard, private_tmp):
    result = run_python("x = []\nwhile True:\n    x.append(bytearray(10 ** 7))", **SMALL, guard=guard)
    assert result.status == "failed" and "MemoryError" in result.output


def test_write_outside_its_folder_is_refused(tmp_path, private_tmp):
    target = tmp_path / "outside.txt"
    result = run_python(f"open({str(target)!r}, 'w').write('pwned')", **SMALL)
    assert result.status == "failed" and "PermissionError" in result.output
    assert not target.exists()
    victim = tmp_path / "keep.txt"
    victim.write_text("mine")
    deleted = run_python(f"import os\nos.remove({str(victim)!r})", **SMALL)
    assert deleted.status == "failed" and victim.read_text() == "mine"


def test_write_inside_its_folder_is_allowed_and_removed(private_tmp):
    result = run_python("open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())", **SMALL)
    assert result.passed and "ok" in result.output
    assert list(private_tmp.iterdir()) == []


@pytest.mark.skipif(not sandbox._user_prefix(), reason="needs root to run the program as nobody")
def test_write_outside_is_refused_by_the_kernel_without_the_guard(tmp_path, private_tmp):
    target = tmp_path / "outside.txt"  # tmp_path belongs to root, mode 700: nobody may not write there
    result = run_python(f"open({str(target)!r}, 'w').write('pwned')", **SMALL, guard=False)
    assert result.status == "failed" and not target.exists()


@pytest.mark.parametrize("guard", [True, False])
def test_socket_cannot_reach_a_listening_server(guard, private_tmp):
    if not guard and not sandbox._network_prefix():
        pytest.skip("no network namespace on this machine: only the guard blocks sockets")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n",
                            **SMALL, guard=guard)
        assert result.status == "failed" and ("PermissionError" in result.output or "OSError" in result.output
                                               or "unreachable" in result.output)
        with pytest.raises(OSError):  # nothing ever connected
            server.accept()
    finally:
        server.close()


def test_harness_carries_on_after_hostile_programs(private_tmp):
    hostile = ["while True: pass", "import os\nwhile True: os.fork()", "x = bytearray(10 ** 10)",
               "import socket; socket.socket()"]
    statuses = [run_python(p, timeout_s=1.0, memory_mb=256, max_processes=4).status for p in hostile]
    assert statuses == ["timed out", "failed", "failed", "failed"]
    assert run_python("assert sum(range(4)) == 6", **SMALL).passed
    assert list(private_tmp.iterdir()) == []


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=1)


def test_isolation_layers_reported():
    layers = sandbox.isolation_layers()
    assert layers["memory limit (RLIMIT_AS)"] and layers["throw-away working directory"]
    assert layers["runs as user nobody"] == (os.geteuid() == 0 and bool(sandbox._user_prefix()))
    assert len(layers) == 8


# Ways a program could look as if it passed without its tests having run to their end. Each must fail.
FAKE_PASSES = {
    "sys.exit(0) before the tests": "import sys\nsys.exit(0)\n",
    "os._exit(0) before the tests": "import os\nos._exit(0)\n",
    "raise SystemExit": "raise SystemExit\n",
    "exit() builtin": "exit(0)\n",
    "exit from inside the function": "def f():\n    import os\n    os._exit(0)\nf()\n",
    "printing a guessed marker": "print('\\nSANDBOX-COMPLETED 0123456789abcdef')\nimport os\nos._exit(0)\n",
    "reading the secret from its own process": "print(open('/proc/self/cmdline').read())\n",
    "walking frames to the runner": ("import sys\nf = sys._getframe()\nwhile f:\n    print(f.f_locals)\n"
                                     "    f = f.f_back\nimport os\nos._exit(0)\n"),
    "frames through a traceback": ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    f = e.__traceback__.tb_frame\n"
                                   "    while f:\n        print(f.f_locals)\n        f = f.f_back\nimport os\nos._exit(0)\n"),
    "the other threads' frames": "import sys\nprint(sys._current_frames())\n",
    "a tracer": "import sys\nsys.settrace(lambda *a: None)\n",
    "the garbage collector's view": "import gc\nprint(len(gc.get_objects()))\n",
    "an alarm signal": "import signal\nsignal.alarm(1)\n",
}


@pytest.mark.parametrize("name", sorted(FAKE_PASSES))
def test_an_early_exit_or_a_forged_marker_never_passes(name, private_tmp):
    result = run_python(FAKE_PASSES[name], epilogue="assert False, 'the tests ran and failed'\n", **SMALL)
    assert not result.passed, (name, result)
    assert result.status == "failed"


def test_only_a_program_that_ran_to_its_end_passes(private_tmp):
    done = run_python("x = 1\n", epilogue="assert x == 1\n", **SMALL)
    assert done.passed and "(ran to its end)" in done.output
    assert not run_python("x = 1\n", epilogue="assert x == 2\n", **SMALL).passed


def _problem():
    return {"prompt": "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n", "entry_point": "add",
            "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9\n"}


HOSTILE_COMPLETIONS = {
    "sys.exit(0) in the body": "    import sys\n    sys.exit(0)\n",
    "os._exit(0) in the body": "    import os\n    os._exit(0)\n",
    "an object equal to everything": ("    class Yes:\n        def __eq__(self, other):\n            return True\n"
                                      "        def __sub__(self, other):\n            return 0\n    return Yes()\n"),
    "an int subclass equal to everything": ("    class Yes(int):\n        def __eq__(self, other):\n"
                                            "            return True\n    return Yes(0)\n"),
    "patching a builtin the tests use": "    return 0\nimport builtins\nbuiltins.abs = lambda x: 0\n",
    "its own builtins for the tests": "    return 0\n__builtins__ = {'abs': lambda x: 0}\n",
    "an exit hook": "    return 0\nimport atexit, os\natexit.register(lambda: os._exit(0))\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_COMPLETIONS))
def test_humaneval_tricks_do_not_pass(name, private_tmp):
    from gemma_helpers import text_benchmarks

    program, epilogue = text_benchmarks.humaneval_program(_problem(), HOSTILE_COMPLETIONS[name])
    result = run_python(program, epilogue=epilogue, **SMALL)
    assert not result.passed, (name, result)
    honest_program, honest_epilogue = text_benchmarks.humaneval_program(_problem(), "    return a + b\n")
    assert run_python(honest_program, epilogue=honest_epilogue, **SMALL).passed
