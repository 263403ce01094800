"""The chess fine-tune of notebook 03, timed: seconds per step, tokens per second, peak memory, metrics before/after.

Calls ``chess_lesson.run`` (smoke mode on a CPU: the embedded base 270M on the offline puzzles), which measures the
greedy legal-move rate on the held-out positions before training, every `--curve-every` steps, and after; then the
sampled rates after. Run: `.venv/bin/python bench/chess_finetune.py [--steps N] [--curve-every N]`; it prints a
table and writes bench/results/chess.json. Load on the machine changes every timing: the JSON records the load
average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Run the lesson, print the table, write the JSON."""
    import unsloth  # noqa: F401  (Unsloth patches transformers and TRL: import it first)

    from gemma_helpers import chess_lesson, train
    from gemma_helpers.env import get_config, hardware_report, output_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the configuration's)")
    parser.add_argument("--curve-every", type=int, default=50, help="greedy legal-move rate every N steps (0: off)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chess.json"))
    args = parser.parse_args(argv)
    config = get_config()
    s = config.chess
    s = replace(s, max_steps=args.steps or s.max_steps, learning_rate=args.learning_rate or s.learning_rate,
                curve_every=args.curve_every, save_every=0)
    out_dir = output_dir("chess-bench")
    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh run: nothing resumed, nothing reused
    lesson = chess_lesson.run(s, out_dir)
    result, training = lesson.training.result, lesson.training
    rows = [r.conversation() for r in lesson.data.train]
    tokenized = train.tokenize_rows(_tokenizer(lesson.saved.merged_dir), train.to_prompt_completion(rows))
    tokens_per_row = sum(len(r["input_ids"]) for r in tokenized) / len(rows)
    table = lesson.table()
    report = {
        "mode": config.mode, "model": s.model, "steps": result.steps, "batch_size": s.batch_size,
        "learning_rate": s.learning_rate, "lora_r": s.lora_r, "train_rows": len(lesson.data.train),
        "held_out": len(lesson.data.held_out), "mean_tokens_per_row": round(tokens_per_row, 1),
        "train_seconds": round(training.train_seconds, 1),
        "seconds_per_step": round(training.train_seconds / result.steps, 3),
        "train_tokens_per_s": round(tokens_per_row * s.batch_size * result.steps / training.train_seconds, 1),
        "eval_seconds_per_100_positions": round(100 * lesson.before.seconds / lesson.before.n, 1),
        "peak_memory_gb": round(train.peak_memory_gb(), 2),
        "before": table[0], "after": table[1], "after_sampled": table[2],
        "legal_rate_curve": [(step, round(rate, 3)) for step, rate in lesson.curve],
        "first_loss": result.losses[0][1], "last_loss": result.losses[-1][1],
        "saved": str(lesson.saved.merged_dir), "total_seconds": round(lesson.seconds, 1),
        "machine": {"cpu_cores": hardware_report().cpu_cores, "gpu": hardware_report().gpu_name,
                    "load_average": os.getloadavg(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    metrics = [key for key in table[0] if key.endswith(" %")]
    print(f"{'model':<18}" + "".join(f"{m:>18}" for m in metrics))
    for row in table:
        print(f"{row['model']:<18}" + "".join(f"{row[m]!s:>18}" for m in metrics))
    for key in ("steps", "seconds_per_step", "train_tokens_per_s", "eval_seconds_per_100_positions", "peak_memory_gb",
                "legal_rate_curve", "total_seconds"):
        print(f"{key}: {report[key]}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _tokenizer(folder: Path):
    """The tokenizer saved with the fine-tune (to count the tokens of a training row)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


if __name__ == "__main__":
    sys.exit(main())
