"""llama.cpp for every runtime: installing llama-cpp-python where it is missing, importing it, reading a GGUF.

* :func:`ensure_llama_cpp`: llama-cpp-python (and its server's extras) where it is missing, as on Colab: a prebuilt
  CPU wheel from llama-cpp-python's own index, else a build from source; it says what it will do and what it costs
  before it starts (:func:`llama_cpp_plan`), and does nothing where it is installed.
* :func:`import_llama_cpp`: the ``llama_cpp`` module, or an ImportError that says how to get it.
* :func:`missing_server_extras`: what ``python -m llama_cpp.server`` would lack here.
* :func:`read_gguf`, :func:`tool_output_to` (llama.cpp's C-level log sent to a file, not the notebook) and
  :class:`ExportedFile` are :mod:`gemma_helpers.gguf_files`'s, re-exported so that a runtime imports one module.

The export lesson (:mod:`gemma_helpers.export`), the parity check, the phone table, the runtimes, the chess lesson's
grammar and the speed measurements all take llama.cpp from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .gguf_files import (  # noqa: F401  (re-exported: what every runtime reads from a GGUF)
    LLAMA_CPP_PYTHON,
    ExportedFile,
    GGUFError,
    GGUFInfo,
    read_gguf,
    tool_output_to,
)

LLAMA_CPP_WHEELS = "https://abetlen.github.io/llama-cpp-python/whl/cpu"  # llama-cpp-python's own CPU wheel index
# What `python -m llama_cpp.server` needs beyond llama-cpp-python (its [server] extras): pip name -> module imported.
SERVER_EXTRAS = {"uvicorn>=0.22.0": "uvicorn", "fastapi>=0.100.0": "fastapi", "pydantic-settings>=2.0.1":
                 "pydantic_settings", "sse-starlette>=1.6.1": "sse_starlette",
                 "starlette-context>=0.3.6,<0.4": "starlette_context", "PyYAML>=5.1": "yaml"}


@dataclass(frozen=True)
class InstallStep:
    """One way to install something, with what it does and what it costs, said before it runs."""

    what: str
    cost: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def build_minutes(cores: int) -> int:
    """Minutes to compile llama-cpp-python with `cores` compiler jobs (about 7 on 2 cores, like Colab's free CPU)."""
    return 10 // max(1, cores) + 2


def installed_llama_cpp() -> str | None:
    """The installed llama-cpp-python's version, or None."""
    from importlib import metadata

    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return None


def llama_cpp_plan(server: bool = False, installed: str | None = None, missing: Sequence[str] | None = None,
                   cores: int | None = None) -> list[InstallStep]:
    """How ensure_llama_cpp would install llama-cpp-python (and the server's extras when server=True): alternatives,
    the first that succeeds wins; [] when nothing is missing. Defaults read this Python."""
    installed = installed_llama_cpp() if installed is None else installed or None
    missing = (missing_server_extras() if missing is None else list(missing)) if server else []
    cores = cores or os.cpu_count() or 1
    pip = (sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check")
    if installed:
        if not missing:
            return []
        return [InstallStep(f"the OpenAI-compatible server's extras ({', '.join(p.split('>')[0] for p in missing)})",
                            "a few small pure-Python wheels, about 15 s", pip + tuple(missing))]
    wanted = f"llama-cpp-python{'[server]' if server else ''}=={LLAMA_CPP_PYTHON}"
    return [
        InstallStep(f"llama-cpp-python {LLAMA_CPP_PYTHON}, a prebuilt CPU wheel from its own index",
                    "a download of about 25 MB, about 20 s",
                    pip + ("--only-binary", "llama-cpp-python", "--extra-index-url", LLAMA_CPP_WHEELS, wanted)),
        InstallStep(f"llama-cpp-python {LLAMA_CPP_PYTHON}, built from source for this CPU (no prebuilt wheel here)",
                    f"about {build_minutes(cores)} min with {cores} compiler jobs, once per runtime",
                    pip + ("--no-binary", "llama-cpp-python", "--no-cache-dir", wanted),
                    (("CMAKE_ARGS", "-DGGML_NATIVE=OFF"), ("CMAKE_BUILD_PARALLEL_LEVEL", str(cores)))),
    ]


def ensure_llama_cpp(server: bool = False, run=subprocess.run) -> str:
    """Install llama-cpp-python (server=True: with its server's extras) where it is missing; nothing where it is there.

    Each way is printed with its cost before it starts: a prebuilt CPU wheel first, a build from source if none fits.
    llama.cpp then runs on the CPU, as it would on a laptop or a phone. Returns what was done."""
    import importlib

    steps = llama_cpp_plan(server)
    if not steps:
        done = f"llama-cpp-python {installed_llama_cpp()}{' and its server extras' if server else ''}: installed"
        print(done + ", nothing to do")
        return done
    errors = []
    for step in steps:
        print(f"installing {step.what}: {step.cost}...", flush=True)
        started = time.time()
        result = run(list(step.command), env=dict(os.environ, **dict(step.env)), capture_output=True, text=True)
        if result.returncode == 0:
            importlib.invalidate_caches()
            print(f"  done in {time.time() - started:.0f} s")
            return f"{step.what}: done in {time.time() - started:.0f} s"
        errors.append(f"{step.what}: pip said\n{(result.stderr or result.stdout)[-1500:]}")
        print(f"  not possible here ({time.time() - started:.0f} s)", flush=True)
    raise RuntimeError("could not install llama-cpp-python:\n" + "\n".join(errors))


def import_llama_cpp():
    """The llama_cpp module, or an ImportError that says how to get it (ensure_llama_cpp)."""
    try:
        import llama_cpp
    except ImportError as err:
        raise ImportError("llama-cpp-python is not installed here: run gemma_helpers.llamacpp.ensure_llama_cpp() "
                          "(a prebuilt CPU wheel, about 20 s)") from err
    return llama_cpp


def missing_server_extras() -> list[str]:
    """The [server] extras of llama-cpp-python that this Python lacks (pip requirement strings)."""
    import importlib.util

    return [pkg for pkg, module in SERVER_EXTRAS.items() if importlib.util.find_spec(module) is None]
