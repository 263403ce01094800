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
