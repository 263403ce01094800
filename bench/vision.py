"""Vision LoRA on chart questions: seconds per step, peak memory, relaxed accuracy before and after.

Runs the configuration's vision model (the tiny stand-in on CPU / smoke mode, Gemma 3 4B through Unsloth on a GPU)
on the synthetic held-out charts, prints a table and writes bench/results/vision.json. Run:
`.venv/bin/python bench/vision.py [--steps N] [--eval N]`. The planner's 4B estimate is written next to the
measured peak so that a GPU run can be compared with it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers import charts, vision  # noqa: E402
from gemma_helpers.env import get_config, hardware_report, output_dir  # noqa: E402


def run(settings, out: Path) -> dict:
    """Train and evaluate once with these settings; return the measurements."""
    started = time.time()
    train_rows = charts.synthetic_charts(settings.train_charts, "train", image_size=settings.image_size)
    heldout = charts.synthetic_charts(settings.eval_charts, "heldout", image_size=settings.image_size)
    charts_seconds = time.time() - started
    vision.reset_peak_memory()
    model, processor = vision.load_vision_model(settings.model, settings.load_in_4bit, settings.max_length)
    model = vision.add_vision_lora(model, settings.lora_r, settings.lora_alpha)  # first, as Unsloth's recipe does
    before = vision.evaluate(model, processor, heldout, settings.max_new_tokens)
    result = vision.train_vision_lora(model, processor, train_rows, output_dir=out / "run",
                                      max_steps=settings.max_steps, batch_size=settings.batch_size,
                                      learning_rate=settings.learning_rate, max_length=settings.max_length,
                                      gradient_accumulation=settings.gradient_accumulation)
    after = vision.evaluate(model, processor, heldout, settings.max_new_tokens)
    peak, what = vision.peak_memory_gb()
    losses = [loss for _, loss in result.losses]
    first, last = sum(losses[:5]) / len(losses[:5]), sum(losses[-5:]) / len(losses[-5:])
    plan = vision.memory_plans(settings)["QLoRA, embeddings frozen (the recipe)"]
    return {
        "model": settings.model, "steps": result.steps, "batch_size": settings.batch_size,
        "gradient_accumulation": settings.gradient_accumulation,
        "seconds_per_step": round(result.seconds_per_step, 4), "train_seconds": round(result.seconds, 1),
        "charts_seconds": round(charts_seconds, 1), "loss_first5": round(first, 4), "loss_last5": round(last, 4),
        "loss_drop": round(1 - last / first, 4), "peak_memory_gb": round(peak, 3), "peak_memory_is": what,
        "planned_4b_t4_qlora_gb": round(plan.total_gb, 2), "eval_charts": len(heldout),
        "accuracy_before": {k: round(v, 4) for k, v in before["accuracy"].items()},
        "accuracy_after": {k: round(v, 4) for k, v in after["accuracy"].items()},
        "eval_seconds_after": round(after["seconds"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the configuration's)")
    parser.add_argument("--eval", type=int, help="held-out charts (default: the configuration's)")
    args = parser.parse_args(argv)
    config = get_config()
    settings = config.vision
    settings = replace(settings, max_steps=args.steps or settings.max_steps,
                       eval_charts=args.eval or settings.eval_charts)
    hw = hardware_report()
    row = run(settings, output_dir("bench_vision"))
    row.update({"mode": config.mode, "device": hw.gpu_name or f"CPU ({hw.cpu_cores} cores)",
                "python": platform.python_version(), "torch": hw.torch_version})
    print(f"{'measure':<28} value")
    for key in ("model", "device", "steps", "seconds_per_step", "loss_first5", "loss_last5", "loss_drop",
                "peak_memory_gb", "planned_4b_t4_qlora_gb", "eval_charts"):
        print(f"{key:<28} {row[key]}")
    print(f"{'question type':<28} {'before':>7} {'after':>7}")
    for kind, value in row["accuracy_after"].items():
        print(f"{kind:<28} {row['accuracy_before'][kind]:>7.3f} {value:>7.3f}")
    target = ROOT / "bench" / "results" / "vision.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
