"""The chess fine-tune of notebook 03, timed: seconds per step, tokens per second, peak memory, metrics before/after.

Runs the configured fine-tune (smoke mode on a CPU: the embedded base 270M on the offline puzzles) and measures the
greedy legal-move rate on the held-out positions before training, every `--curve-every` steps, and after; then the
sampled rates after. Run: `.venv/bin/python bench/chess.py [--steps N] [--curve-every N]`; it prints a table and
writes bench/results/chess.json. Load on the machine changes every timing: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is bench/chess.py: keep its folder off the path, or `import chess` (python-chess) would find this script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import unsloth  # noqa: E402,F401  (Unsloth patches transformers and TRL: import it first)

from gemma_helpers import chess, models, train  # noqa: E402
from gemma_helpers.env import get_config, hardware_report, output_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Fine-tune, measure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the configuration's)")
    parser.add_argument("--curve-every", type=int, default=50, help="greedy legal-move rate every N steps (0: off)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chess.json"))
    args = parser.parse_args(argv)
    config = get_config()
    s = config.chess
    s = replace(s, max_steps=args.steps or s.max_steps, learning_rate=args.learning_rate or s.learning_rate)
    started = time.time()
    train_rows, held_out = chess.build_dataset(s, offline=not config.flag("hub_downloads"))
    model, tokenizer = models.load(s.model, max_seq_length=s.max_length)
    before = chess.evaluate(model, tokenizer, held_out, max_new_tokens=s.answer_tokens)
    model = train.add_lora(model, r=s.lora_r, alpha=s.lora_alpha)
    curve = [(0, before.legal_rate)]
    callbacks = [chess.legal_rate_callback(model, tokenizer, held_out, args.curve_every, curve, s.answer_tokens)] \
        if args.curve_every else []
    rows = [r.conversation() for r in train_rows]
    tokens_per_row = sum(len(r["input_ids"]) for r in train.tokenize_rows(
        tokenizer, train.to_prompt_completion(rows))) / len(rows)
    out_dir = output_dir("chess-bench") / "run"
    result = train.lora_sft(model, tokenizer, rows, output_dir=out_dir, max_steps=s.max_steps,
                            batch_size=s.batch_size, learning_rate=s.learning_rate, max_length=s.max_length,
                            optimizer=s.optimizer, resume=False, callbacks=callbacks)
    after = chess.evaluate(model, tokenizer, held_out, max_new_tokens=s.answer_tokens)
    sampled = chess.evaluate(model, tokenizer, held_out[:s.sampled_positions], greedy=False,
                             max_new_tokens=s.answer_tokens)
    if not curve or curve[-1][0] != result.steps:
        curve.append((result.steps, after.legal_rate))
    # time spent in the curve's evaluations is inside result.seconds: take it out for the training speed
    eval_seconds = callbacks[0].seconds if callbacks else 0.0
    train_seconds = max(result.seconds - eval_seconds, 1e-9)
    report = {
        "mode": config.mode, "model": s.model, "steps": result.steps, "batch_size": s.batch_size,
        "learning_rate": s.learning_rate, "lora_r": s.lora_r, "train_rows": len(train_rows),
        "held_out": len(held_out), "mean_tokens_per_row": round(tokens_per_row, 1),
        "train_seconds": round(train_seconds, 1), "seconds_per_step": round(train_seconds / result.steps, 3),
        "train_tokens_per_s": round(tokens_per_row * s.batch_size * result.steps / train_seconds, 1),
        "eval_seconds_per_100_positions": round(100 * before.seconds / before.n, 1),
        "peak_memory_gb": round(train.peak_memory_gb(), 2),
        "before": before.row("before (greedy)"), "after": after.row("after (greedy)"),
        "after_sampled": sampled.row("after (sampled)"),
        "legal_rate_curve": [(step, round(rate, 3)) for step, rate in curve],
        "first_loss": result.losses[0][1], "last_loss": result.losses[-1][1],
        "total_seconds": round(time.time() - started, 1),
        "machine": {"cpu_cores": hardware_report().cpu_cores, "gpu": hardware_report().gpu_name,
                    "load_average": os.getloadavg(), "python": platform.python_version()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    print(f"{'model':<18}{'legal %':>9}{'exact %':>9}{'solved %':>10}")
    for row in (report["before"], report["after"], report["after_sampled"]):
        print(f"{row['model']:<18}{row['legal move %']:>9}{row['exact match %']:>9}{row['puzzles solved %']!s:>10}")
    for key in ("steps", "seconds_per_step", "train_tokens_per_s", "eval_seconds_per_100_positions", "peak_memory_gb",
                "legal_rate_curve", "total_seconds"):
        print(f"{key}: {report[key]}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
