"""Imports tell the truth: every import between the package's modules follows the layer map, and one file copies.

Two checks, read two ways:

* **The map** (``docs/design.md``, "The modules, by layer"): every import of one package module by another, at the
  top of a module or inside a function alike (read with ``ast`` by ``scripts/package_imports.py``), goes to the same
  layer or a lower one, and no group of modules imports itself round a circle. An import that must go up needs an
  entry in ``UPWARD`` with its reason; the fix is nearly always to move a definition down, not to hide an import.
* **Copying one file** (the README's promise): each module is imported by itself in a fresh interpreter; the package
  modules it pulls in at import time must be exactly those its top-level imports name, followed through
  (``NEEDS``; ``python scripts/package_imports.py --needs MODULE`` prints them: copy those files with it), and no
  heavy library (torch, transformers, ...) or hardware probe may run at import time. A module that needs nothing
  else from the package is also copied alone into an empty folder and imported from there.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from script_loader import load_script

PACKAGE = Path(__file__).resolve().parent.parent / "gemma_helpers"
imports = load_script("scripts/package_imports.py")
# Imports that go up the map, each with its reason (importer, imported): keep this short; an entry is a debt.
UPWARD: dict[tuple[str, str], str] = {}
HEAVY = ("torch", "transformers", "datasets", "unsloth", "llama_cpp", "peft", "trl", "matplotlib", "PIL",
         "bitsandbytes")
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
own = sorted(k.split(".", 1)[1] for k in sys.modules if k.startswith("gemma_helpers.") and k != sys.argv[1])
print(json.dumps({"own": own, "heavy": [k for k in sys.argv[2:] if k in sys.modules]}))
"""
GRAPH = imports.graph(PACKAGE)
# What each module needs from the package at import time (copy these files with it, inside a gemma_helpers folder).
NEEDS = {module: imports.needs(GRAPH, module) for module in GRAPH}


def layers() -> dict[str, int]:
    """{module: layer} from docs/design.md's numbered list "The modules, by layer" (a package's modules: its layer)."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text()
    section = text.split("## The modules, by layer", 1)[1].split("\n## ", 1)[0]
    found: dict[str, int] = {}
    for number, body in re.findall(r"^(\d)\. (.*?)(?=^\d\. |\Z)", section, flags=re.S | re.M):
        for name in re.findall(r"`([a-z_][a-z0-9_]*)`", body):
            if name in NEEDS:
                assert found.get(name, int(number)) == int(number), f"docs/design.md names {name} in two layers"
                found[name] = int(number)
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_module_sits_in_one_layer():
    assert sorted(layers()) == sorted({_top(m) for m in NEEDS}), "name each module in one layer of docs/design.md"


def test_the_package_docstring_lists_each_module_in_its_layer():
    """gemma_helpers/__init__.py's numbered list names every module once, in the layer docs/design.md gives it."""
    doc = (PACKAGE / "__init__.py").read_text().split('"""')[1]
    listed = {name: int(number) for number, body in re.findall(r"^(\d)\. (.*?)(?=^\d\. |\Z)", doc, flags=re.S | re.M)
              for name in re.findall(r"``([a-z_][a-z0-9_]*)``", body)}
    assert listed == layers(), "gemma_helpers/__init__.py and docs/design.md disagree on the modules and their layers"


def upward_imports(graph: dict[str, list[dict]], layer: dict[str, int]) -> list[str]:
    """Each import, wherever it sits, of a module of a later layer than its importer's, not in UPWARD."""
    found = []
    for module, targets in sorted(graph.items()):
        for imp in targets:
            here, there = layer[_top(module)], layer[_top(imp["to"])]
            if there > here and (module, imp["to"]) not in UPWARD:
                where = "inside a function" if imp["in_function"] else "at the top"
                found.append(f"{module}.py:{imp['line']} ({where}, layer {here}) imports {imp['to']} (layer {there})")
    return found


def test_no_import_goes_up_the_map_wherever_it_sits():
    upward = upward_imports(GRAPH, layers())
    assert upward == [], ("an import inside a function counts like one at the top. Move the definition it needs "
                          "down to a module of a lower layer (or pass it in as an argument); if the importer "
                          "belongs higher, move it in docs/design.md; only as a last resort add an entry with its "
                          "reason to UPWARD:\n" + "\n".join(upward))


def test_the_check_sees_an_import_hidden_inside_a_function(tmp_path):
    package = tmp_path / "gemma_helpers"
    package.mkdir()
    (package / "low.py").write_text("def f():\n    from .high import g\n    return g()\n")
    (package / "high.py").write_text("from .low import f\n\n\ndef g():\n    return 1\n")
    found = upward_imports(imports.graph(package), {"low": 1, "high": 2})
    assert found == ["low.py:2 (inside a function, layer 1) imports high (layer 2)"]
    assert imports.circles({m: {i["to"] for i in t} for m, t in imports.graph(package).items()}) == [["high", "low"]]


def test_the_allowed_upward_imports_are_few_explained_and_still_there():
    assert len(UPWARD) <= 3, "move definitions down instead of allowing more imports up"
    present = {(m, i["to"]) for m, targets in GRAPH.items() for i in targets}
    for pair, reason in UPWARD.items():
        assert pair in present, f"{pair} no longer imports upward: remove its entry"
        assert len(reason) > 20, f"say why {pair} goes up"


def test_no_circle_counting_imports_inside_functions():
    edges = {m: {i["to"] for i in targets if _top(i["to"]) != _top(m)} for m, targets in GRAPH.items()}
    assert imports.circles(edges) == [], "modules that import each other round a circle: move the shared part down"


@pytest.mark.parametrize("module", sorted(NEEDS))
def test_module_imports_alone_with_only_what_it_lists(module):
    out = subprocess.run([sys.executable, "-c", PROBE, f"gemma_helpers.{module}", *HEAVY], capture_output=True,
                         text=True, timeout=120, cwd=PACKAGE.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["own"] == NEEDS[module]
    assert found["heavy"] == [], f"{module} imports {found['heavy']} at import time: import them where they are used"


@pytest.mark.parametrize("module", sorted(m for m, needs in NEEDS.items() if not needs and "." not in m))
def test_a_self_contained_module_works_copied_alone(module, tmp_path):
    shutil.copy(PACKAGE / f"{module}.py", tmp_path / f"{module}.py")
    out = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__doc__.splitlines()[0])"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()
