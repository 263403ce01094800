"""Copying one file works: each module imports alone, names the package files it needs, and probes nothing.

The README promises that an engineer can copy one helper module into another project. Each module is imported by
itself in a fresh interpreter; the package modules it pulls in must be exactly those listed in NEEDS (so a new
hidden dependency fails here and the list stays the truth), and no heavy library (torch, transformers, ...) or
hardware probe may run at import time. A module that needs nothing else from the package is also copied alone into
an empty folder and imported from there, as a top-level module.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gemma_helpers"
# What each module needs from the package at import time (copy these files with it, inside a gemma_helpers folder).
NEEDS = {
    "catalog": [], "cell_memory": ["catalog", "env", "memory", "messages"], "charts": [], "chess": ["scores"],
    "chess_constrained": ["chess", "prompts", "scores"], "chess_game": ["chess", "scores"],
    "chess_grpo": ["chess", "prompts", "scores"], "chess_lesson": ["chess", "provenance", "scores"],
    "chess_match": ["chess", "chess_game", "rating", "scores"], "distributed": [], "env": ["messages"],
    "envcheck": ["messages"], "exercises": [],
    "export": ["env", "gguf_files", "messages", "prompts", "provenance", "tokenizer_files"], "gguf_files": [],
    "gpu_guard": ["envcheck", "messages"], "memory": ["catalog"], "messages": [],
    "models": ["catalog", "env", "envcheck", "gpu_guard", "memory", "messages", "provenance", "sources", "tokenizer_files"],
    "multigpu_lesson": [], "multigpu_plan": ["catalog", "memory"], "notebook_runner": [],
    "parity": ["env", "export", "gguf_files", "messages", "prompts", "provenance", "tokenizer_files"],
    "phone": ["env", "export", "gguf_files", "messages", "prompts", "provenance", "tokenizer_files"],
    "precision": ["messages"], "prompts": [], "provenance": [], "published": ["scores"], "rating": [],
    "runtimes": ["env", "messages", "prompts"], "sandbox": [], "scores": [], "sources": ["messages"], "speed": [],
    "split_eval": ["messages", "precision"], "text_benchmarks": ["envcheck", "gpu_guard", "messages", "scores"],
    "tokenizer_files": [], "train": ["prompts"], "train_launch": [],
    "vision": ["catalog", "cell_memory", "charts", "env", "memory", "messages", "prompts"],
    "vision_lesson": ["catalog", "cell_memory", "charts", "env", "memory", "messages", "prompts", "scores", "vision"],
    "vision_standin": ["charts", "env", "messages", "prompts"], "visual_qa": [],
}
HEAVY = ("torch", "transformers", "datasets", "unsloth", "llama_cpp", "peft", "trl", "matplotlib", "PIL")
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
own = sorted(k.split(".", 1)[1] for k in sys.modules if k.startswith("gemma_helpers.") and k != sys.argv[1])
print(json.dumps({"own": own, "heavy": [k for k in sys.argv[2:] if k in sys.modules]}))
"""


def test_every_module_is_listed():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert modules == sorted(NEEDS), "add the new module to NEEDS with what it imports from the package"


def layers() -> dict[str, int]:
    """{module: layer} from docs/design.md's numbered list "The modules, by layer"."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    section = text.split("## The modules, by layer", 1)[1].split("\n## ", 1)[0]
    found: dict[str, int] = {}
    for number, body in re.findall(r"^(\d)\. (.*?)(?=^\d\. |\Z)", section, flags=re.S | re.M):
        for name in re.findall(r"`([a-z_]+)`", body):
            if name in NEEDS:
                assert name not in found, f"docs/design.md names {name} in two layers"
                found[name] = int(number)
    return found


def test_every_module_sits_in_one_layer_and_imports_no_later_one():
    layer = layers()
    assert sorted(layer) == sorted(NEEDS), "name each module in one layer of docs/design.md"
    upward = [f"{m} (layer {layer[m]}) imports {n} (layer {layer[n]})" for m, needs in NEEDS.items() for n in needs
              if layer[n] > layer[m]]
    assert upward == [], "import it inside the function that needs it, or move a module in docs/design.md"


@pytest.mark.parametrize("module", sorted(NEEDS))
def test_module_imports_alone_with_only_what_it_lists(module):
    out = subprocess.run([sys.executable, "-c", PROBE, f"gemma_helpers.{module}", *HEAVY], capture_output=True,
                         text=True, timeout=120, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["own"] == NEEDS[module]
    assert found["heavy"] == [], f"{module} imports {found['heavy']} at import time: import them where they are used"


@pytest.mark.parametrize("module", sorted(m for m, needs in NEEDS.items() if not needs))
def test_a_self_contained_module_works_copied_alone(module, tmp_path):
    shutil.copy(PACKAGE / f"{module}.py", tmp_path / f"{module}.py")
    out = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__doc__.splitlines()[0])"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()
