"""Vision LoRA on chart questions: seconds per step, peak memory, relaxed accuracy per question type before and after.

A thin caller of :func:`gemma_helpers.vision_lesson.run` with the configuration's vision settings (the tiny stand-in
on simple charts on a CPU / smoke mode, Gemma 3 4B through Unsloth on a GPU): it times the run, prints a table and
writes bench/results/vision.json. Run: `.venv/bin/python bench/vision.py [--steps N] [--eval N]`. The planner's 4B
estimate is written next to the measured peak so that a GPU run can be compared with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers import vision, vision_lesson  # noqa: E402
from gemma_helpers.env import get_config, hardware_report, output_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the lesson once, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the configuration's)")
    parser.add_argument("--eval", type=int, help="held-out charts (default: the configuration's)")
    args = parser.parse_args(argv)
    config = get_config()
    settings = replace(config.vision, max_steps=args.steps or config.vision.max_steps,
                       eval_charts=args.eval or config.vision.eval_charts)
    hw = hardware_report()
    vision.reset_peak_memory()
    result = vision_lesson.run(settings, output_dir("bench_vision"))
    peak, what = vision.peak_memory_gb()
    before, after = result.before["synthetic"], result.after["synthetic"]
    losses = [loss for _, loss in result.training.losses]
    first, last = sum(losses[:5]) / len(losses[:5]), sum(losses[-5:]) / len(losses[-5:])
    plan = vision_lesson.memory_plans(settings)["QLoRA, embeddings frozen (the recipe)"]
    row = {"model": settings.model, "chart_set": settings.chart_set, "backend": result.backend, "mode": config.mode,
           "device": hw.gpu_name or f"CPU ({hw.cpu_cores} cores)", "load_average": [round(x, 2) for x in
                                                                                    os.getloadavg()],
           "steps": result.training.steps, "batch_size": settings.batch_size,
           "seconds_per_step": round(result.training.seconds_per_step, 4),
           "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
           "loss_first5": round(first, 4), "loss_last5": round(last, 4), "peak_memory_gb": round(peak, 3),
           "peak_memory_is": what, "planned_4b_t4_qlora_gb": round(plan.total_gb, 2), "eval_charts": after.n,
           "accuracy": vision_lesson.accuracy_table(before, after),
           "python": platform.python_version(), "torch": hw.torch_version}
    for key in ("model", "chart_set", "device", "load_average", "steps", "seconds_per_step", "seconds",
                "loss_first5", "loss_last5", "peak_memory_gb", "planned_4b_t4_qlora_gb", "eval_charts"):
        print(f"{key:<24} {row[key]}")
    print(f"{'question type':<16} {'n':>4} {'chance %':>9} {'before %':>9} {'after %':>8}")
    for r in row["accuracy"]:
        print(f"{r['question type']:<16} {r['n']:>4} {r['chance %'] if r['chance %'] is not None else '-':>9} "
              f"{r['before %']:>9} {r['after %']:>8}")
    target = ROOT / "bench" / "results" / "vision.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
