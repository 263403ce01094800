"""make gpu-check: every notebook in full mode on a CUDA GPU, at a small GEMMA_FULL_SCALE, per-cell seconds and peak.

    python scripts/gpu_check.py              on a CUDA machine: runs the plan below, writes bench/results/gpu_check.json
    python scripts/gpu_check.py --dry-run    anywhere (CI): prints the plan and each GPU cell's predicted peak on a T4

The plan: every notebook in the learner's order (notebook_runner.LEARNER_ORDER) in the GPU's own dtype (bfloat16
where it has it), then the notebooks that train (00, 03, 04) again with GEMMA_FORCE_FP16=1 (precision.fp16_forced:
the float16 path with Unsloth's float32 islands that a T4 takes) where the GPU has bfloat16; a T4 runs float16 once.
Models and data come from the real Hub when it answers, else from the Hub stand-in (scripts/hub_standin, the
rehearsal's), started on a loopback port. Each notebook gets one extra first cell that records, after every cell,
its seconds and torch's peak allocated CUDA memory (reset before each cell); a cell that prints a prediction
(cell_memory.show("KEY")) is written beside the planner's T4 prediction for KEY.

Sized for a short rental: at the default scale (0.02) the whole plan is meant to fit 9 minutes on one H100 (set
by --budget-s, 540: no notebook starts after it, and the ones left are listed as not run). The dry run checks what
is cheap to check without a GPU: the plan, every cell_memory.show key the notebooks use, and that every T4 cell
fits (a few seconds; it is part of make test).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers import cell_memory, memory  # noqa: E402
from gemma_helpers.notebook_runner import LEARNER_ORDER  # noqa: E402

FP16_NOTEBOOKS = ("00", "03", "04")  # the ones that train or chat on the GPU: where float16 can overflow
SHOW = re.compile(r"""cell_memory\.show\(["']([^"']+)["']""")
OUT = ROOT / "bench" / "results" / "gpu_check.json"

# The first cell of every notebook under gpu-check: per-cell seconds and peak CUDA memory, as JSON lines.
PROBE_CELL = '''
import json as _gc_json, os as _gc_os, time as _gc_time
import torch as _gc_torch
_gc_state = {"cell": 0, "started": 0.0}
def _gc_pre(info):
    _gc_state["cell"] += 1
    _gc_state["started"] = _gc_time.perf_counter()
    if _gc_torch.cuda.is_available():
        _gc_torch.cuda.reset_peak_memory_stats()
def _gc_post(result):
    peak = _gc_torch.cuda.max_memory_allocated() / 1e9 if _gc_torch.cuda.is_available() else None
    row = {"cell": _gc_state["cell"], "seconds": round(_gc_time.perf_counter() - _gc_state["started"], 2),
           "peak_gb": None if peak is None else round(peak, 3), "ok": bool(result.success)}
    with open(_gc_os.environ["GEMMA_GPU_CHECK_LOG"], "a") as f:
        f.write(_gc_json.dumps(row) + "\\n")
get_ipython().events.register("pre_run_cell", _gc_pre)
get_ipython().events.register("post_run_cell", _gc_post)
'''


def notebooks() -> list[Path]:
    """The English notebooks in the learner's order."""
    found = {p.name[:2]: p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    return [found[n] for n in LEARNER_ORDER if n in found]


def gpu_info() -> dict[str, object] | None:
    """Name, compute capability, memory and bfloat16 of the first CUDA GPU, or None."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}", "memory_gb": props.total_memory / 1e9,
            "bf16": props.major >= 8, "torch": torch.__version__}


def plan(bf16: bool) -> list[tuple[str, Path]]:
    """(dtype, notebook) runs: all in the GPU's dtype, then fp16 forced for FP16_NOTEBOOKS where it has bf16."""
    books = notebooks()
    runs = [("bf16" if bf16 else "fp16", nb) for nb in books]
    if bf16:
        runs += [("fp16", nb) for nb in books if nb.name[:2] in FP16_NOTEBOOKS]
    return runs


def shown_keys(notebook: Path) -> dict[int, str]:
    """{code cell number (from 1): the cell_memory key it shows} for one notebook."""
    nb = json.loads(notebook.read_text())
    out, n = {}, 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        n += 1
        match = SHOW.search("".join(cell["source"]))
        if match:
            out[n] = match.group(1)
    return out


def dry_run(scale: float, budget_s: float) -> int:
    """Print the plan and the T4 predictions; 1 if a notebook shows an unknown key or a T4 cell does not fit."""
    started = time.perf_counter()
    problems = []
    print(f"[gpu-check] dry run: GEMMA_FULL_SCALE={scale}, budget {budget_s:.0f} s on the GPU")
    for dtype, nb in plan(bf16=True):
        keys = shown_keys(nb)
        for key in keys.values():
            try:
                cell_memory.predict(key)
            except KeyError as err:
                problems.append(f"{nb.name}: {err}")
        env = "GEMMA_FORCE_FP16=1 " if dtype == "fp16" else ""
        print(f"  would run {nb.name} in {dtype} ({env}GEMMA_SMOKE=0); predictions printed: "
              f"{', '.join(keys.values()) or 'none'}")
    print("[gpu-check] each GPU cell's predicted peak on a free T4 "
          f"(limit {memory.T4_LIMIT_GB} GB less a {memory.MARGIN_GB} GB margin):")
    for row in cell_memory.table("T4"):
        mark = "ok" if row["fits"] else "OVER"
        print(f"  {row['notebook']} {row['cell']:<20} {row['predicted GB']:>6.2f} GB {mark:<4} {row['what']}")
        if not row["fits"]:
            problems.append(f"{row['notebook']} {row['cell']} does not fit a T4")
    for problem in problems:
        print(f"[gpu-check] problem: {problem}")
    print(f"[gpu-check] dry run {'failed' if problems else 'ok'} in {time.perf_counter() - started:.1f} s")
    return 1 if problems else 0


def _hub_answers() -> bool:
    try:
        with urllib.request.urlopen("https://huggingface.co/api/models/unsloth/gemma-3-270m-it", timeout=5):
            return True
    except OSError:
        return False


def _start_standin(work: Path, scale: float) -> tuple[subprocess.Popen, str]:
    root = ROOT / "build" / "hub-standin"
    subprocess.run([sys.executable, "scripts/hub_standin/build.py", str(root), "--rows-scale", str(scale)],
                   cwd=ROOT, check=True)
    port_file = work / "port"
    server = subprocess.Popen([sys.executable, "scripts/hub_standin/serve.py", str(root), "--port", "0",
                               "--port-file", str(port_file), "--log", str(work / "hub.log")], cwd=ROOT)
    for _ in range(300):
        if port_file.exists() and port_file.read_text().strip():
            break
        time.sleep(0.1)
    return server, f"http://127.0.0.1:{port_file.read_text().strip()}"


def run_notebook(notebook: Path, dtype: str, env: dict[str, str], log: Path) -> dict[str, object]:
    """Execute one notebook with the probe cell first; its cells' seconds, peaks and predictions."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE_CELL))
    keys = shown_keys(notebook)
    log.unlink(missing_ok=True)
    os.environ.update(env | {"GEMMA_GPU_CHECK_LOG": str(log)})
    os.environ.pop("GEMMA_FORCE_FP16", None)
    if dtype == "fp16":
        os.environ["GEMMA_FORCE_FP16"] = "1"
    started, error = time.perf_counter(), None
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    except Exception as err:  # recorded, and the next notebook runs
        error = f"{type(err).__name__}: {str(err)[-600:]}"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    cells = []
    for row in rows[1:]:  # the probe cell itself is not reported
        number = row["cell"] - 1
        key = keys.get(number)
        predicted = round(cell_memory.predict(key).plan.total_gb, 2) if key else None
        cells.append(row | {"cell": number, "predicted_t4_gb": predicted, "shows": key})
    return {"notebook": notebook.name, "dtype": dtype, "seconds": round(time.perf_counter() - started, 1),
            "error": error, "cells": cells}


def run(scale: float, budget_s: float, out: Path) -> int:
    """The plan on this CUDA GPU; writes out (JSON) and prints one line per notebook."""
    gpu = gpu_info()
    if gpu is None:
        print("[gpu-check] no CUDA GPU here: run it on a GPU machine, or see the plan with --dry-run")
        return 2
    work = ROOT / "build" / "gpu-check"
    work.mkdir(parents=True, exist_ok=True)
    env = {"GEMMA_SMOKE": "0", "GEMMA_FULL_SCALE": str(scale), "GEMMA_ALLOW_CODE_EXECUTION": "1",
           "GEMMA_EXERCISE_ANSWERS": str(ROOT / "tests" / "exercise_answers.py"), "PYTHONPATH": str(ROOT)}
    server, hub = None, "the Hugging Face Hub"
    if not _hub_answers():
        server, endpoint = _start_standin(work, scale)
        env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_XET": "1"}
        hub = f"the Hub stand-in at {endpoint}"
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(name, None)
    print(f"[gpu-check] {gpu['name']} (cc {gpu['capability']}, {gpu['memory_gb']:.0f} GB), models from {hub}, "
          f"GEMMA_FULL_SCALE={scale}")
    started, results, skipped = time.perf_counter(), [], []
    try:
        for dtype, nb in plan(bool(gpu["bf16"])):
            if time.perf_counter() - started > budget_s:
                skipped.append(f"{nb.name} ({dtype})")
                continue
            env_run = env | {"GEMMA_OUTPUT": str(work / f"outputs-{dtype}")}
            result = run_notebook(nb, dtype, env_run, work / "cells.jsonl")
            results.append(result)
            peak = max((c["peak_gb"] or 0 for c in result["cells"]), default=0)
            print(f"[gpu-check] {nb.name} {dtype}: {result['seconds']:.0f} s, peak {peak:.2f} GB"
                  + (f", FAILED: {result['error']}" if result["error"] else ""))
    finally:
        if server is not None:
            server.terminate()
    report = {"gpu": gpu, "hub": hub, "scale": scale, "budget_s": budget_s,
              "seconds": round(time.perf_counter() - started, 1), "runs": results, "not_run": skipped}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"[gpu-check] {len(results)} runs in {report['seconds']:.0f} s; not run (budget): {skipped or 'none'}; "
          f"written to {out}")
    return 1 if any(r["error"] for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the T4 predictions; no GPU")
    parser.add_argument("--scale", type=float, default=0.02, help="GEMMA_FULL_SCALE of the runs (default 0.02)")
    parser.add_argument("--budget-s", type=float, default=540.0, help="no notebook starts after this (default 540)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.dry_run:
        return dry_run(args.scale, args.budget_s)
    return run(args.scale, args.budget_s, args.out)


if __name__ == "__main__":
    sys.exit(main())
