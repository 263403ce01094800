"""Execute the curriculum's notebooks headlessly, and keep committed notebooks free of outputs.

``python -m gemma_helpers.notebook_runner notebooks --out build`` runs every notebook in the learner's order, writes the executed
copies under ``build/``, and prints and saves (``build/summary.json``) each one's status, seconds and key numbers
(what the notebook passed to :func:`gemma_helpers.env.record_result`).
``--list`` prints the notebooks in that order (the Makefile and the rehearsal run them so).
``--check-stripped`` fails when a notebook carries outputs; ``--strip`` removes them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# The order a learner takes: 03 saves the chess fine-tune (with its provenance manifest) that 01 exports to GGUF and
# 02 serves. Numbered notebooks not listed here follow in number order.
LEARNER_ORDER = ("00", "03", "01", "02", "04", "05", "06")


def notebooks_in(folder: str | Path) -> list[Path]:
    """The numbered notebooks of a folder, in the learner's order (:data:`LEARNER_ORDER`)."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    rank = {n: i for i, n in enumerate(LEARNER_ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.name[:2], len(rank)), p.name))


def is_stripped(path: str | Path) -> bool:
    """True when no code cell has outputs or an execution count and there is no widget state."""
    nb = json.loads(Path(path).read_text())
    dirty = any(c.get("outputs") or c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")
    return not dirty and "widgets" not in nb.get("metadata", {})


def strip(path: str | Path) -> None:
    """Remove outputs, execution counts and widget state, in place."""
    path = Path(path)
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def run_notebook(path: str | Path, out_dir: str | Path, timeout: int = 1800) -> dict:
    """Execute one notebook (cwd = its folder); return status, seconds and the results it recorded."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as err:
        raise ModuleNotFoundError(f"running notebooks needs the `{err.name}` package: pip install -r "
                                  "requirements-dev.txt (nbclient, nbformat)", name=err.name) from err

    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_file = (out_dir / f"{path.stem}.results.json").resolve()
    results_file.unlink(missing_ok=True)
    os.environ["GEMMA_RESULTS"] = str(results_file)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    started, status, error = time.time(), "ok", ""
    try:
        client.execute()
    except Exception as exc:  # report and carry on with the next notebook
        status, error = "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    seconds = round(time.time() - started, 1)
    nbformat.write(nb, out_dir / path.name)
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    os.environ.pop("GEMMA_RESULTS", None)
    return {"notebook": path.name, "status": status, "seconds": seconds, "results": results, "error": error}


def fresh_outputs(out_dir: str | Path) -> Path:
    """Point GEMMA_OUTPUT at an emptied out_dir/outputs, so a run trains and exports from scratch (no resuming)."""
    import shutil

    path = (Path(out_dir) / "outputs").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["GEMMA_OUTPUT"] = str(path)
    return path


def run_all(folder: str | Path, out_dir: str | Path) -> list[dict]:
    """Run every notebook of a folder from scratch; print a summary table and write summary.json."""
    fresh_outputs(out_dir)
    rows = []
    for path in notebooks_in(folder):
        print(f"[run] {path.name} ...", flush=True)
        row = run_notebook(path, out_dir)
        print(f"[run] {path.name}: {row['status']} in {row['seconds']} s {row['error']}", flush=True)
        rows.append(row)
    Path(out_dir, "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    print(f"\n{'notebook':<40} {'status':<8} {'seconds':>8}  key numbers")
    for row in rows:
        numbers = ", ".join(f"{k}={v}" for k, v in list(row["results"].items())[:6])
        print(f"{row['notebook']:<40} {row['status']:<8} {row['seconds']:>8}  {numbers}")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: run, check or strip notebooks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="notebooks")
    parser.add_argument("--out", default="build")
    parser.add_argument("--check-stripped", action="store_true", help="fail if a notebook carries outputs")
    parser.add_argument("--strip", action="store_true", help="remove outputs in place")
    parser.add_argument("--list", action="store_true", help="print the notebooks in the learner's order")
    args = parser.parse_args(argv)
    paths = notebooks_in(args.folder)
    if args.list:
        print(" ".join(str(p) for p in paths))
        return 0
    if args.strip:
        for path in paths:
            strip(path)
        return 0
    if args.check_stripped:
        dirty = [p.name for p in paths if not is_stripped(p)]
        if dirty:
            print("notebooks with outputs (run `python -m gemma_helpers.notebook_runner --strip`):", *dirty)
            return 1
        print(f"{len(paths)} notebooks stripped")
        return 0
    rows = run_all(args.folder, args.out)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
