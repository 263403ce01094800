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


def fake_commands(monkeypatch, fail_on: str | None = None) -> list[list[str]]:
    """Fake subprocess.run: record every command (a clone makes its folder; a command containing fail_on fails);
    returns the list the commands are recorded in."""
    calls: list[list[str]] = []

    def fake_run(cmd, *args, **kwargs):
        cmd = [str(c) for c in cmd]
        calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            Path(cmd[-1]).mkdir(parents=True)
        code = 1 if fail_on and fail_on in " ".join(cmd) else 0
        return subprocess.CompletedProcess(cmd, code, stdout="" if not code else "ERROR: boom\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    return calls


def run_cell(monkeypatch, tmp_path, fail_on: str | None = None) -> list[list[str]]:
    """Execute the install cell as on Colab, with every command faked; return the commands it ran."""
    calls = fake_commands(monkeypatch, fail_on)
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


# Kaggle: the same install cell and the same pins, on top of what Kaggle's image ships (requirements-kaggle-shipped.txt,
# dated, with its source). Kaggle's image is an older Colab runtime (torch 2.10), so the question is the Colab one:
# do our pins resolve against it without replacing torch?
SHIPPED_LISTS = ["requirements-colab-shipped.txt", "requirements-kaggle-shipped.txt"]
# What pip changes beyond our pins, per platform, with the reason it is allowed.
ALLOWED_CHANGES = {
    "requirements-colab-shipped.txt": {},
    "requirements-kaggle-shipped.txt": {
        # huggingface-hub 1.33 asks click>=8.4.2; Kaggle's base ships 8.3.3 (Colab: 8.4.2): pip upgrades click,
        # a command-line library none of our code imports.
        "click": "huggingface-hub",
    },
}


def unmet_dependencies(shipped_name: str) -> tuple[list[tuple[str, str, str]], int]:
    """Declared dependencies of our pinned packages that we do not pin and the platform ships at a version that fails
    them: (package, requirement, shipped version); and how many of our pins this environment could read."""
    from importlib import metadata

    from packaging.requirements import Requirement

    ours = {**pins("requirements-colab.txt"), **pins("requirements-colab-nodeps.txt")}
    nodeps = set(pins("requirements-colab-nodeps.txt"))  # installed --no-deps: what they declare is not resolved
    shipped = pins(shipped_name)
    unmet, read = [], 0
    for package, version in ours.items():
        try:
            dist = metadata.distribution(package)
        except metadata.PackageNotFoundError:
            continue  # GPU-only packages (xformers, torchao ...) are not in the CPU environment
        if dist.version != version or package in nodeps:
            continue
        read += 1
        for line in dist.requires or []:
            req = Requirement(line)
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            if (req.marker and not req.marker.evaluate({"extra": ""})) or name in ours or name not in shipped:
                continue
            if not req.specifier.contains(shipped[name].split("+")[0], prereleases=True):
                unmet.append((package, str(req), shipped[name]))
    return unmet, read


def test_kaggle_list_is_dated_pinned_and_an_older_torch():
    header = (ROOT / "requirements-kaggle-shipped.txt").read_text().split("\n\n")[0]
    assert "Kaggle/docker-python at commit 78aaa43 (2026-08-12" in header and "6f38803 (2026-05-08)" in header
    for line in requirement_lines("requirements-kaggle-shipped.txt"):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+", line), f"not pinned: {line}"
    kaggle, colab = pins("requirements-kaggle-shipped.txt"), pins("requirements-colab-shipped.txt")
    assert kaggle["torch"] == "2.10.0+cu128" and colab["torch"] == "2.11.0+cu128"
    assert "trl" not in kaggle and "bitsandbytes" not in kaggle  # the install cell brings both, pinned


@pytest.mark.parametrize("shipped_name", SHIPPED_LISTS)
def test_our_pins_resolve_against_each_platforms_shipped_list(shipped_name):
    pytest.importorskip("packaging")
    unmet, read = unmet_dependencies(shipped_name)
    if read < 5:
        pytest.skip(f"only {read} of our pinned packages are installed here at their pinned version")
    from packaging.requirements import Requirement

    changed = {re.sub(r"[-_.]+", "-", Requirement(spec).name).lower(): package for package, spec, _ in unmet}
    # torch and its family are never among them: the cell's constraint holds them, so pip would fail, not replace.
    assert not {"torch", "torchvision", "torchaudio", "triton"} & set(changed), unmet
    assert changed == ALLOWED_CHANGES[shipped_name], unmet


def test_cell_installs_on_kaggle_too_and_nowhere_else(monkeypatch, tmp_path):
    calls = fake_commands(monkeypatch)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setenv("GEMMA_HOME", str(tmp_path / "curriculum"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(CELL, "install cell", "exec"), {})
    assert calls == []  # a laptop or CI: .venv is already built
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    exec(compile(CELL, "install cell", "exec"), {})
    assert ["git", "clone"] in [c[:2] for c in calls] and (tmp_path / "curriculum" / ".install-complete").exists()
    assert any("requirements-colab.txt" in " ".join(c) for c in calls)
