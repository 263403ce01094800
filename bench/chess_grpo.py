"""How far GRPO takes notebook 03's fine-tune: the free legal-move rate after rounds of GRPO, smoke settings.

The smoke lesson as notebook 03 runs it (data, supervised LoRA with its time budget), then ``--rounds`` GRPO rounds of
``--steps`` steps each (``chess_lesson.reinforce``; each round restarts the "grpo" schedule's warm-up), measuring the
greedy legal-move and solve rates on the same held-out positions after each. Prints a table and writes
bench/results/chess_grpo.json with the CPU and the load average. Run: `.venv/bin/python bench/chess_grpo.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Train, run the GRPO rounds, print the curve, write the JSON."""
    os.environ.setdefault("GEMMA_SMOKE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gemma_helpers import chess_lesson
    from gemma_helpers.env import cpu_native_bf16, get_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chess_grpo.json"))
    args = parser.parse_args(argv)
    settings = get_config().chess
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        data = chess_lesson.load_data(settings, offline=True)
        student = chess_lesson.load_model(settings)
        before = chess_lesson.evaluate(student, data, settings, time_budget_s=settings.eval_budget_s)
        student = chess_lesson.add_adapter(student, settings)
        training = chess_lesson.train_model(student, data, settings, out, before, resume=False)
        after = chess_lesson.evaluate(student, data, settings, positions=before.n)
        rows = [{"grpo_steps": 0, "seconds": round(training.result.seconds, 1), "legal_rate": after.legal_rate,
                 "solve_rate": after.solve_rate, "note": f"after {training.result.steps} supervised steps "
                                                          f"(stopped by {training.result.stopped_by})"}]
        print(rows[-1], flush=True)
        steps = 0
        for r in range(args.rounds):
            round_settings = dataclasses.replace(settings, grpo_steps=args.steps, grpo_budget_s=None)
            done = chess_lesson.reinforce(student, data, round_settings, Path(out) / f"round{r}", after)
            steps += done.grpo.steps
            rows.append({"grpo_steps": steps, "seconds": round(done.grpo.seconds, 1),
                         "legal_rate": done.after.legal_rate, "solve_rate": done.after.solve_rate,
                         "last_mean_reward": done.grpo.rewards[-1][1] if done.grpo.rewards else None})
            print(rows[-1], flush=True)
    report = {"positions": before.n, "settings": "smoke (notebook 03), GRPO rounds of "
              f"{args.steps} steps", "rows": rows, "cpu": _cpu(), "native_bf16": cpu_native_bf16(),
              "cores": os.cpu_count(), "load_average_before": round(load_before, 2),
              "load_average_after": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
