"""How far an evaluation split across processes strays from one process: the measurement behind split_eval.ATOL.

Runs `python -m gemma_helpers.split_eval` once as a single process (all cores' threads) and once under accelerate's
launcher with N CPU processes (`distributed.launch`, gloo; each gets cores / N threads, at least 1), for MMLU and
for the chess positions, on the same items, and compares them item for item (`split_eval.compare`): identical
predictions, and the largest difference of any log-probability. Run:
`.venv/bin/python bench/split_eval_agreement.py [--model embedded] [--mmlu 8] [--chess 6] [--processes 2]`; it prints
a table and writes bench/results/split_eval_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers import distributed, split_eval  # noqa: E402


def run(task: str, model: str, items: int, processes: int, out: Path) -> tuple[dict, float]:
    """One run of split_eval (processes 1: plain python), its merged.json and wall seconds."""
    args = ["--task", task, "--model", model, "--out", str(out), "--items", str(items)]
    started = time.perf_counter()
    if processes == 1:  # plain python, no launcher: torch's default threads (every core)
        command = [sys.executable, "-m", "gemma_helpers.split_eval", *args]
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                              text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    else:
        distributed.launch("gemma_helpers.split_eval", args, strategy="ddp", num_processes=processes, cpu=True,
                           env={"HF_HUB_OFFLINE": "1"})
    return json.loads((out / split_eval.MERGED).read_text()), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Both tasks, one process against N, printed and written as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--mmlu", type=int, default=8, help="MMLU questions")
    parser.add_argument("--chess", type=int, default=6, help="chess positions")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    rows = []
    for task, items in (("mmlu", args.mmlu), ("chess", args.chess)):
        base = ROOT / "build" / "split_eval_agreement" / task
        single, single_s = run(task, args.model, items, 1, base / "single")
        merged, merged_s = run(task, args.model, items, args.processes, base / f"{args.processes}proc")
        agreement = split_eval.compare(single, merged)
        print(agreement.report())
        rows.append({"task": task, "items": items, "identical_predictions": not any(
            "prediction" in d for d in agreement.disagreements), "max_abs_score_diff": agreement.max_score_diff,
            "threads": {"single": single["ranks"][0]["threads"], "split": [r["threads"] for r in merged["ranks"]]},
            "wall_s": {"single": round(single_s, 1), "split": round(merged_s, 1)},
            "eval_s": {"single": single["ranks"][0]["seconds"], "split": [r["seconds"] for r in merged["ranks"]]}})
    print(f"{'task':6} {'items':>5} {'same predictions':>16} {'max |diff| (nats)':>18} {'threads 1 vs N':>16}")
    for r in rows:
        print(f"{r['task']:6} {r['items']:5d} {str(r['identical_predictions']):>16} {r['max_abs_score_diff']:18.2e} "
              f"{str(r['threads']['single']) + ' vs ' + str(r['threads']['split']):>16}")
    record = {"model": args.model, "dtype": "float32 (CPU policy)", "processes": args.processes, "rows": rows,
              "atol_chosen": split_eval.ATOL, "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores", "load_average_before": round(os.getloadavg()[0], 2),
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "split_eval_agreement.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
