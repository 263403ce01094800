"""The Colab install cell and the Colab requirement files: the source it clones, the retry marker, pip's warnings
shown, Colab's torch held, and every requirement pinned. scripts/colab_check.sh runs the cell for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent
COLAB_FILES = ["requirements-colab.txt", "requirements-colab-nodeps.txt", "requirements-colab-shipped.txt"]


builder = load_script("scripts/build_notebooks.py")
CELL = builder.install_cell()


def requirement_lines(name: str) -> list[str]:
    """The requirement lines of a file, comments and blanks dropped."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [line for line in lines if line]


def pins(name: str) -> dict[str, str]:
    """{normalized name: version} of the pinned lines of a requirement file."""
    pairs = (line.split("==") for line in requirement_lines(name) if "==" in line)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pairs}


def run_cell(monkeypatch, tmp_path, fail_on: str | None = None) -> list[list[str]]:
    """Execute the install cell as on Colab, with every command faked; return the commands it ran."""
    calls: list[list[str]] = []

    def fake_run(cmd, *args, **kwargs):
        cmd = [str(c) for c in cmd]
        calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            Path(cmd[-1]).mkdir(parents=True)
        code = 1 if fail_on and fail_on in " ".join(cmd) else 0
        return subprocess.CompletedProcess(cmd, code, stdout="" if not code else "ERROR: boom\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setenv("GEMMA_HOME", str(tmp_path / "curriculum"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(CELL, "install cell", "exec"), {})
    return calls


def test_every_notebook_opens_with_the_install_cell():
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        assert "".join(cells[1]["source"]) == CELL, f"{path.name}: rebuild with scripts/build_notebooks.py"


def test_cell_clones_the_configured_repo_and_says_what_to_set_when_it_cannot(monkeypatch, tmp_path, capsys):
    assert f'os.environ.get("GEMMA_REPO", "{builder.REPO}")' in CELL
    assert f'os.environ.get("GEMMA_BRANCH", "{builder.BRANCH}")' in CELL
    assert f"/github/{builder.REPO}/blob/{builder.BRANCH}/notebooks/x.ipynb" in builder.badge("notebooks/x.ipynb")
    monkeypatch.setenv("GEMMA_REPO", str(tmp_path / "no-such-repo"))
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setenv("GEMMA_HOME", str(tmp_path / "curriculum"))
    with pytest.raises(RuntimeError, match=r"could not clone .*no-such-repo.*GEMMA_REPO"):
        exec(compile(CELL, "install cell", "exec"), {})
    assert not (tmp_path / "curriculum").exists()
    assert "no-such-repo" in capsys.readouterr().out  # git's own complaint is shown


def test_cell_installs_in_order_and_marks_success_last(monkeypatch, tmp_path):
    calls = run_cell(monkeypatch, tmp_path)
    home = tmp_path / "curriculum"
    assert calls[1][:6] == ["git", "clone", "--quiet", "--depth", "1", "--branch"]
    assert calls[1][-2] == f"https://github.com/{builder.REPO}" and calls[1][-1] == f"{home}.partial"
    pips = [c[c.index("install") + 1:] for c in calls if "pip" in c]
    keep = ["--progress-bar", "off", "-c", str(home / ".colab-keep.txt")]
    assert pips == [keep + ["-r", str(home / "requirements-colab.txt")],
                    keep + ["--no-deps", "-r", str(home / "requirements-colab-nodeps.txt")],
                    keep + ["--no-deps", "-e", str(home)]]
    assert not any(flag in c for c in calls if "pip" in c for flag in ("-q", "--quiet"))  # pip's warnings show
    assert (home / builder.INSTALL_MARKER).exists()
    # Colab's torch is pinned as installed, so pip cannot replace it.
    from importlib.metadata import version

    assert f"torch=={version('torch')}" in (home / ".colab-keep.txt").read_text().splitlines()
    assert str(home) in sys.path
    # Done once: a second run installs nothing.
    assert run_cell(monkeypatch, tmp_path) == []


def test_a_cut_off_install_is_redone(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="run this cell again"):
        run_cell(monkeypatch, tmp_path, fail_on="requirements-colab-nodeps.txt")
    home = tmp_path / "curriculum"
    assert home.is_dir() and not (home / builder.INSTALL_MARKER).exists()
    calls = run_cell(monkeypatch, tmp_path)  # the checkout is there: no second clone, every pip step again
    assert not any(c[:2] == ["git", "clone"] for c in calls)
    assert sum("pip" in c for c in calls) == 3
    assert (home / builder.INSTALL_MARKER).exists()


def test_cell_shows_pip_warnings_and_conflicts_but_not_progress(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GEMMA_HOME", str(tmp_path / "curriculum"))
    scope: dict = {}
    exec(compile(CELL, "install cell", "exec"), scope)  # not on Colab: only defines the helpers
    pip_says = tmp_path / "pip.txt"
    pip_says.write_text(
        "Requirement already satisfied: numpy in /usr/lib\n"
        "Collecting tokenizers==0.23.3\n  Downloading tokenizers-0.23.3.whl (3 MB)\n"
        "WARNING: a warning\n"
        "ERROR: pip's dependency resolver does not currently take into account all the packages installed.\n"
        "sentence-transformers 5.7.0 requires transformers<5, but you have transformers 5.17.0 which is incompatible.\n"
        "Successfully installed tokenizers-0.23.3\n")
    echo = "import sys; sys.stdout.write(open(sys.argv[1]).read())"
    assert scope["run"](sys.executable, "-c", echo, str(pip_says)) == 0
    out = capsys.readouterr().out
    assert "WARNING: a warning" in out and "dependency resolver" in out and "requires transformers<5" in out
    assert "Successfully installed tokenizers-0.23.3" in out
    assert "Requirement already satisfied" not in out and "Downloading" not in out
    # When the command fails, everything shows.
    assert scope["run"](sys.executable, "-c", "print('Collecting x'); raise SystemExit(3)") == 3
    assert "Collecting x" in capsys.readouterr().out


@pytest.mark.parametrize("name", COLAB_FILES)
def test_every_colab_requirement_is_pinned(name):
    lines = requirement_lines(name)
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+", line), f"{name}: not pinned: {line}"


def test_colab_files_never_touch_colabs_torch():
    for name in ("requirements-colab.txt", "requirements-colab-nodeps.txt"):
        for package in pins(name):
            assert package not in {"torch", "torchvision", "torchaudio", "triton"} and not package.startswith("nvidia-")
    assert pins("requirements-colab-shipped.txt")["torch"].endswith("+cu128")


def test_colab_pins_match_the_tested_cpu_stack():
    colab = {**pins("requirements-colab.txt"), **pins("requirements-colab-nodeps.txt")}
    cpu = {**pins("requirements.txt"), **pins("requirements-nodeps.txt")}
    shared = set(colab) & set(cpu)
    assert {"transformers", "trl", "peft", "datasets", "unsloth", "unsloth-zoo"} <= shared
    assert {name: colab[name] for name in shared} == {name: cpu[name] for name in shared}


def test_colab_pins_satisfy_transformers_import_time_check():
    transformers = pytest.importorskip("transformers")
    from packaging.requirements import Requirement
    from transformers.dependency_versions_table import deps

    colab = pins("requirements-colab.txt")
    if transformers.__version__ != colab["transformers"]:
        pytest.skip(f"installed transformers {transformers.__version__} is not the pinned one")
    shipped = pins("requirements-colab-shipped.txt")
    for package in ("tqdm", "regex", "packaging", "filelock", "numpy", "tokenizers", "huggingface-hub",
                    "safetensors", "accelerate", "pyyaml"):
        version = colab.get(package) or shipped[package]  # ours if pinned, else the one Colab ships
        assert Requirement(deps[package]).specifier.contains(version), f"{package} {version} fails {deps[package]}"
    # Colab's own tokenizers fails the check: that is why it is pinned.
    assert not Requirement(deps["tokenizers"]).specifier.contains(shipped["tokenizers"])
