"""The notebooks as committed: built from their sources, with the house opening, and without outputs."""

import json
import subprocess
import sys
from pathlib import Path

from gemma_helpers import notebook_runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = notebook_runner.notebooks_in(ROOT / "notebooks")


def test_every_notebook_matches_its_source():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_notebooks_are_stripped_and_open_the_house_way():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert notebook_runner.is_stripped(path), f"{path.name} carries outputs"
        cells = json.loads(path.read_text())["cells"]
        assert "colab-badge" in "".join(cells[0]["source"]), path.name
        assert "google.colab" in "".join(cells[1]["source"]), path.name  # the install cell
        assert "environment_summary" in "".join(cells[2]["source"]), path.name
        assert "get_config()" in "".join(cells[3]["source"]), path.name  # the configuration cell


def test_notebooks_never_hard_code_the_device_or_the_mode():
    for path in NOTEBOOKS:
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "code")
        assert '.to("cuda")' not in code and ".cuda()" not in code, path.name
        assert "if False" not in code and "GEMMA_SMOKE" not in code, path.name


def test_strip_removes_outputs(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "metadata": {}, "source": ["1"],
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1"]}]}],
          "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "00_x.ipynb"
    path.write_text(json.dumps(nb))
    assert not notebook_runner.is_stripped(path)
    notebook_runner.strip(path)
    assert notebook_runner.is_stripped(path)


def test_notebooks_run_in_the_learners_order():
    """03 saves the chess fine-tune that 01 exports and 02 serves: CI and `make run` take them in that order."""
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "03", "01", "02", "04", "05", "06"]
