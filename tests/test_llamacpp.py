"""Installing llama.cpp says what it will do and what it costs before it starts, and prefers a prebuilt wheel."""

import pytest

from gemma_helpers import export, llamacpp


def test_llama_cpp_install_plan_prefers_the_prebuilt_wheel():
    steps = llamacpp.llama_cpp_plan(server=True, installed="", missing=list(llamacpp.SERVER_EXTRAS), cores=2)
    wheel, build = steps
    assert wheel.command[-1] == f"llama-cpp-python[server]=={llamacpp.LLAMA_CPP_PYTHON}"  # the server's extras too
    assert "--only-binary" in wheel.command and llamacpp.LLAMA_CPP_WHEELS in wheel.command  # never a silent build
    assert "--no-binary" in build.command and ("CMAKE_ARGS", "-DGGML_NATIVE=OFF") in build.env
    assert "7 min" in build.cost and "20 s" in wheel.cost
    assert llamacpp.llama_cpp_plan(server=False, installed="", cores=2)[0].command[-1] == \
        f"llama-cpp-python=={llamacpp.LLAMA_CPP_PYTHON}"
    (extras,) = llamacpp.llama_cpp_plan(server=True, installed="0.3.36", missing=["uvicorn>=0.22.0"])
    assert extras.command[-1] == "uvicorn>=0.22.0"  # llama-cpp-python itself is not rebuilt
    assert llamacpp.llama_cpp_plan(server=True, installed="0.3.36", missing=[]) == []
    assert llamacpp.llama_cpp_plan(server=False, installed="0.3.36", missing=["uvicorn>=0.22.0"]) == []


def test_ensure_llama_cpp_says_the_cost_first_and_falls_back_to_a_build(monkeypatch, capsys):
    calls = []

    def fake_pip(cmd, env, **kwargs):
        calls.append((cmd, capsys.readouterr().out))  # what had been printed when pip started
        import subprocess

        return subprocess.CompletedProcess(cmd, 1 if "--only-binary" in cmd else 0, "", "no matching distribution")

    monkeypatch.setattr(llamacpp, "installed_llama_cpp", lambda: None)
    done = llamacpp.ensure_llama_cpp(server=True, run=fake_pip)
    assert len(calls) == 2 and "built from source" in done
    assert "about 20 s" in calls[0][1] and "min with" in calls[1][1]  # each cost printed before its step ran
    monkeypatch.undo()
    # here (make env) llama-cpp-python and the server's extras are installed: nothing runs
    assert "installed" in llamacpp.ensure_llama_cpp(server=True, run=lambda *a, **k: pytest.fail("pip ran"))
    assert "nothing to do" in capsys.readouterr().out


def test_the_export_lessons_old_names_still_reach_llamacpp():
    # learners' copies of notebooks 01 and 02 call export.ensure_llama_cpp: one release of re-exports
    assert export.ensure_llama_cpp is llamacpp.ensure_llama_cpp and export.import_llama_cpp is llamacpp.import_llama_cpp
