"""What a chess move costs, free and legal by construction, in transformers and in llama.cpp (milliseconds a move).

Four players answer the same held-out puzzle positions one at a time, as in a game (``chess_constrained.time_answers``,
one untimed call first): the embedded 270M through transformers, writing its move (free, greedy) or ranking every
legal move (``chess_game.constrained_player``); and its Q4_K_M GGUF through llama.cpp, free (``gguf_player``) or
held by the legal-move grammar (``gguf_constrained_player``). The same positions' legal rates are printed beside the
costs. Run: `.venv/bin/python bench/chess_moves.py [--positions N]`; it prints a table and writes
bench/results/chess_moves.json (with the CPU and the load average: load changes every timing).
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

from gemma_helpers.hardware import cpu_name  # noqa: E402  (after the path above; imports no heavy library)


def players(positions: int):
    """(examples, {name: answer_fn}) for the embedded model in both runtimes, free and constrained."""
    from gemma_helpers import chess, chess_game, models, runtimes

    examples = chess.build_offline_dataset(train_rows=0, eval_rows=positions)[1][:positions]
    model, tokenizer = models.load("embedded", backend="transformers")
    llm = runtimes.load_llama(models.embedded_gguf(), n_ctx=512)
    return examples, {
        "transformers, free (greedy)": chess_game.model_player(model, tokenizer, max_new_tokens=6),
        "transformers, legal by construction (ranked)": chess_game.constrained_player(model, tokenizer),
        "llama.cpp Q4_K_M, free (greedy)": chess_game.gguf_player(llm, max_new_tokens=6),
        "llama.cpp Q4_K_M, legal by construction (grammar)": chess_game.gguf_constrained_player(llm),
    }


def main(argv: list[str] | None = None) -> int:
    """Time each player, print the table, write the JSON."""
    from gemma_helpers import chess
    from gemma_helpers.chess_constrained import time_answers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chess_moves.json"))
    args = parser.parse_args(argv)
    examples, fns = players(args.positions)
    load_before = os.getloadavg()[0]
    rows = []
    for name, fn in fns.items():
        ms = time_answers(fn, examples)
        legal = chess.score(examples, fn(examples)).legal_rate
        rows.append({"player": name, "ms_per_move": round(ms, 1), "legal_rate": round(legal, 3)})
        print(f"{name:52s} {ms:9.1f} ms/move   legal {legal:.0%}", flush=True)
    report = {"positions": len(examples), "model": "embedded Gemma 3 270M (base)", "rows": rows,
              "cpu": platform.processor() or cpu_name(), "cores": os.cpu_count(), "threads": os.cpu_count(),
              "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
              "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
