"""Can notebook 03's smoke fine-tune beat the random legal mover? The curve of what was tried, one trial per line.

Each trial trains the embedded 270M as notebook 03 does in smoke mode (LoRA r=16, the 240 s training budget, the
lesson's 400 offline puzzle rows), changing one thing at a time: the prompt (the piece list as it was, or with the
attacked and unprotected pieces marked: ``chess.format_position(marks=...)``), the rows (each puzzle's first move,
or every move of the solver along each training puzzle's line, positions of held-out lines left out) and the
learning rate. Then, legal by construction (``chess_lesson.evaluate_constrained``), the first ``--positions``
held-out puzzles are solved on their whole line (the notebook scores the first 20), and ``--games`` games are
played against the random mover (30 half-moves, Stockfish adjudicating where installed), side by side. The lesson's
targets: a whole-line solve rate whose 95% interval lies above the random legal mover's, and at least 60% of the
games won. No GRPO round here: the notebook's round comes after training, and is measured by bench/chess_grpo.py.

Run: `.venv/bin/python bench/chess_vs_chance.py [--trials NAME ...] [--positions 40] [--games 10]`; it prints a line
per trial and adds it to bench/results/chess_vs_chance.json (with the CPU and the load average: load slows the
training steps, and training stops at its time budget, so a loaded machine trains fewer steps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers.hardware import cpu_name  # noqa: E402  (after the path above; imports no heavy library)

TRIALS = {  # name: (what changes, settings overrides, marks, rows)
    "plain": ("the piece list without marks, first moves (the lesson before)", {}, False, "first"),
    "plain-line": ("the piece list without marks, every solver move of each line", {}, False, "line"),
    "plain-lr1e-3": ("the piece list without marks, learning rate 1e-3", {"learning_rate": 1e-3}, False, "first"),
    "marked": ("attacked and unprotected pieces marked, first moves (the lesson now)", {}, True, "first"),
    "marked-lr1e-3": ("marked, learning rate 1e-3", {"learning_rate": 1e-3}, True, "first"),
}


@contextmanager
def prompt_marks(marks: bool):
    """Every prompt of the trial (training rows, puzzle lines, games) written with or without the marks."""
    from gemma_helpers import chess, chess_game

    plain = chess.format_position
    chess.format_position = chess_game.format_position = partial(plain, marks=marks)
    try:
        yield
    finally:
        chess.format_position = chess_game.format_position = plain


def line_rows(train, held_out):
    """Every move of the solver along each training puzzle's line as a row; positions met on a held-out puzzle's
    line are left out (so no position the evaluation asks is trained on)."""
    import chess as pychess

    from gemma_helpers import chess

    held = set()
    for ex in held_out:
        board = pychess.Board(ex.fen)
        held.add(chess.position_key(board.fen()))
        for move in chess._line(ex):
            board.push_uci(move)
            held.add(chess.position_key(board.fen()))
    rows = []
    for ex in train:
        board, line = pychess.Board(ex.fen), chess._line(ex)
        for step in range(0, len(line), 2):
            if step and chess.position_key(board.fen()) in held:
                break
            rows.append(chess._follow_up(ex, board.fen(), line[step]) if step else ex)
            board.push_uci(line[step])
            if step + 1 < len(line):
                board.push_uci(line[step + 1])
    random.Random(1).shuffle(rows)
    return rows


def trial(name: str, positions: int, games: int) -> dict:
    """Train one way, then solve puzzles and play games legal by construction; the measurements as a dict."""
    from gemma_helpers import chess, chess_game, chess_lesson, chess_match
    from gemma_helpers.env import get_config

    what, overrides, marks, rows = TRIALS[name]
    settings = replace(get_config().chess, curve_every=0, save_every=0, **overrides)
    started = time.time()
    with prompt_marks(marks):
        train, held_out = chess.build_offline_dataset(settings.train_rows, max(positions, 100))
        if rows == "line":
            train = line_rows(train, held_out)
        data = chess_lesson.ChessData(train, held_out, f"{rows}: {len(train)} rows")
        student = chess_lesson.add_adapter(chess_lesson.load_model(settings), settings)
        result = chess_lesson.train_model(student, data, settings, tempfile.mkdtemp(prefix="vs-chance-"),
                                          resume=False).result
        trained = time.time()
        answered = chess_lesson.evaluate_constrained(student, data, settings, positions=positions)
        evaluated = time.time()
        judge = chess_match.stockfish_adjudicator()
        with chess_match.random_mover(0) as opponent:
            match = chess_match.play_match(chess_game.constrained_player(student.model, student.tokenizer), opponent,
                                           games, 30, side_by_side=games, adjudicator=judge)
        if judge is not None:
            judge.close()
    solved = list(answered.extra[chess.SOLVED])
    return {"trial": name, "what": what, "training_rows": len(train), "steps": result.steps_run,
            "s_per_step": round(result.seconds_per_step, 2), "exact": round(answered.exact_match, 3),
            "solved_first_20": int(sum(solved[:20])), "solved": int(sum(solved)), "positions": answered.n,
            "chance_solved": round(chess_lesson.chance(data, answered.n).solve_rate, 4),
            "chance_solved_first_20": round(chess_lesson.chance(data, 20).solve_rate, 4),
            "wins_draws_losses": [match.wins, match.draws, match.losses], "games": len(match.games),
            "adjudicated": match.adjudicated, "vs_chance": chess_lesson.beats_chance(answered, data, match),
            "seconds": {"train": round(trained - started), "puzzles": round(evaluated - trained),
                        "games": round(time.time() - evaluated)}}


def main(argv: list[str] | None = None) -> int:
    """Run the trials, print a line each, add them to the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", nargs="*", default=list(TRIALS), choices=list(TRIALS))
    parser.add_argument("--positions", type=int, default=40)
    parser.add_argument("--games", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chess_vs_chance.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {"trials": []}
    for name in args.trials:
        load = os.getloadavg()[0]
        row = trial(name, args.positions, args.games)
        row.update(cpu=cpu_name(), cores=os.cpu_count(), load_average_before=round(load, 2), date=str(date.today()))
        print(json.dumps(row), flush=True)
        report["trials"].append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
