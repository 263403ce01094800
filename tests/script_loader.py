"""Import a script of scripts/ as a module, for the tests of the set-up, the docs, the kit and the Hub stand-in."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(relative: str, name: str | None = None):
    """The module of ROOT/relative (e.g. "scripts/render_docs.py"), registered in sys.modules under its name
    (dataclasses look their module up there)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
