"""MMLU scoring speed: one forward pass per question (all four answer letters) against one pass per option.

Both methods score the same 5-shot prompts (lm-evaluation-harness's MMLU format) with the same model; the script
checks that they predict the same letters and reports questions per second for each. Run:
`.venv/bin/python bench/eval_throughput.py [--questions N] [--model embedded]`; it prints a table and writes
bench/results/eval_throughput.json.
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

from gemma_helpers import models, text_benchmarks  # noqa: E402
from gemma_helpers.env import hardware_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Measure both methods on the same questions, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12, help="MMLU questions (one per subject, spread out)")
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--backend", default="transformers", choices=("transformers", "unsloth"))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    items, fewshot = text_benchmarks.load_mmlu(subjects=args.questions, per_subject=1)
    model, tokenizer = models.load(args.model, backend=args.backend)
    warm = text_benchmarks.mmlu_prompt(items[0], fewshot[items[0].subject])
    text_benchmarks.score_one_pass(model, tokenizer, warm)  # the first calls of a process are slow: not timed
    # Interleaved, question by question, so that other load on the machine slows both methods alike.
    seconds = {"one_pass": 0.0, "per_choice": 0.0}
    predictions: dict[str, list[int]] = {"one_pass": [], "per_choice": []}
    letter_ids = text_benchmarks.letter_token_ids(tokenizer)
    for item in text_benchmarks.progress(items, "MMLU, both methods"):
        prompt = text_benchmarks.mmlu_prompt(item, fewshot[item.subject])
        for method in ("one_pass", "per_choice"):
            started = time.perf_counter()
            scores = (text_benchmarks.score_one_pass(model, tokenizer, prompt, letter_ids) if method == "one_pass"
                      else text_benchmarks.score_per_choice(model, tokenizer, prompt))
            seconds[method] += time.perf_counter() - started
            predictions[method].append(max(range(4), key=scores.__getitem__))

    def summary(method: str) -> dict:
        right = sum(p == i.answer for p, i in zip(predictions[method], items, strict=True))
        return {"seconds": round(seconds[method], 2), "questions_per_s": round(len(items) / seconds[method], 3),
                "accuracy": right / len(items)}

    tokens = sum(len(text_benchmarks.text_tokenizer(tokenizer).encode(text_benchmarks.mmlu_prompt(i, fewshot[i.subject]))) for i in items)
    tokens /= len(items)
    report = {
        "model": args.model, "backend": args.backend, "questions": len(items), "mean_prompt_tokens": round(tokens),
        "one_pass": summary("one_pass"), "per_choice": summary("per_choice"),
        "speedup": round(seconds["per_choice"] / seconds["one_pass"], 2),
        "identical_predictions": predictions["one_pass"] == predictions["per_choice"],
        "machine": {"cpu_cores": hardware_report().cpu_cores, "gpu": hardware_report().gpu_name,
                    "python": platform.python_version(),
                    "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(f"MMLU 5-shot, {len(items)} questions, ~{report['mean_prompt_tokens']} prompt tokens each, {args.model}")
    print(f"{'method':<12}{'seconds':>10}{'questions/s':>14}{'accuracy':>10}")
    for method in ("one_pass", "per_choice"):
        row = report[method]
        print(f"{method:<12}{row['seconds']:>10.1f}{row['questions_per_s']:>14.3f}{row['accuracy']:>10.1%}")
    print(f"speed-up {report['speedup']}x; identical predictions: {report['identical_predictions']}; "
          f"load average before/after {report['machine']['load_average_1min']} on {report['machine']['cpu_cores']} cores")
    out = ROOT / "bench" / "results" / "eval_throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if report["identical_predictions"] else 1


if __name__ == "__main__":
    sys.exit(main())
