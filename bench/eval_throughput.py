"""MMLU scoring speed: one forward pass per question (all four answer letters) against one pass per option.

A thin caller of notebook 05's text lesson (`text_benchmarks.run`): the same 5-shot prompts (lm-evaluation-harness's
MMLU format), the same model, both methods timed question by question on the same questions; it reports questions
per second for each and whether they predict the same letters (and, with --problems N, HumanEval on N problems; the
programs run only with GEMMA_ALLOW_CODE_EXECUTION=1). Run:
`.venv/bin/python bench/eval_throughput.py [--questions N] [--model embedded] [--problems N]`; it prints a table and
writes bench/results/eval_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers import text_benchmarks  # noqa: E402
from gemma_helpers.env import BenchSettings, code_execution_consent, hardware_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the text lesson with both MMLU methods timed, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12, help="MMLU questions (one per subject, spread out)")
    parser.add_argument("--problems", type=int, default=0, help="HumanEval problems (0: MMLU only)")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--backend", default="transformers", choices=("transformers", "unsloth"))
    args = parser.parse_args(argv)
    settings = BenchSettings(model=args.model, mmlu_per_subject=1, mmlu_subjects=args.questions,
                             humaneval_problems=args.problems, vision_items=0, humaneval_model=args.model)
    load_before = os.getloadavg()[0]
    result = text_benchmarks.run(settings, ROOT / "build" / "eval_throughput", allow_code=bool(code_execution_consent()),
                                 backend=args.backend, compare_methods=True)
    hardware = hardware_report()
    report = {**result.to_dict(), "backend": args.backend,
              "machine": {"cpu_cores": hardware.cpu_cores, "gpu": hardware.gpu_name, "python": platform.python_version(),
                          "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
              "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(f"MMLU 5-shot, {result.mmlu.n} questions, {args.model} ({args.backend})")
    print(f"{'method':<12}{'seconds':>10}{'questions/s':>14}{'accuracy':>10}")
    for method, run in result.methods.items():
        print(f"{method:<12}{run.seconds:>10.1f}{run.n / run.seconds:>14.3f}{run.rate:>10.1%}")
    print(f"speed-up {report['speedup']}x; identical predictions: {report['identical_predictions']}; "
          f"load average before/after {report['machine']['load_average_1min']} on {hardware.cpu_cores} cores")
    if result.humaneval.n or result.humaneval.skipped:
        print(f"HumanEval: {result.humaneval.row()}")
    out = ROOT / "bench" / "results" / "eval_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if report["identical_predictions"] else 1


if __name__ == "__main__":
    sys.exit(main())
