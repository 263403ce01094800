"""Play a game against your fine-tuned model, and put two models side by side on one position.

The model is asked exactly as in the lesson (notebook 03): the position as a piece list
(:func:`gemma_helpers.chess.format_position`) under the lesson's task, rendered by
``ChessExample.conversation(with_answer=False)``; its reply is read by :func:`gemma_helpers.chess.parse_move`
(the first UCI move in the reply, if it is legal there). How the model is asked is a function,
``answer_fn(examples) -> list[str]`` (one reply per position): :func:`model_player` builds one from a model, :func:`gguf_player` from a GGUF
file in llama.cpp, and tests pass a scripted stub.

**When the model's reply is not a legal move**, the game goes on: the reply is shown and counted as illegal, and a
random legal move (from the game's own seeded random generator, so a replay is identical) is played in its place,
marked as a substitute in the record. A legal-move rate over a whole game is then the number to read: the same
measurement as the lesson's, on positions the model was not trained on and that you chose.

* :class:`Game`: ``play(uci)`` for your move (an illegal one raises :class:`IllegalMoveError` naming the legal
  moves, and changes nothing), ``reply(answer_fn)`` for the model's, ``record()``, ``board_svg()``.
* :func:`compare`: each player's answer on one position and whether it is legal (base model vs fine-tune).
* :func:`play_widget`: a text box, a button, the board and a log (ipywidgets); a printed message where there is no
  widget front end. :func:`scripted_game` plays a short game headlessly and returns its record (what CI runs).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chess import PUZZLE_TASK, ChessExample, format_position, generate_answers, parse_move
from .chess_constrained import constrained_answers, gguf_constrained_answers
from .hardware import in_ci
from .runtimes import chat

AnswerFn = Callable[[Sequence[ChessExample]], list[str]]
YOU, MODEL, SUBSTITUTE = "you", "model", "random (model's reply was illegal)"


class IllegalMoveError(ValueError):
    """A move that is not legal in the game's position (the message names the legal ones)."""


class GameOverError(RuntimeError):
    """A move asked for after the game has ended."""


class TurnError(RuntimeError):
    """A move asked of the side that is not to move (yours during the model's turn, or the other way round)."""


@dataclass(frozen=True)
class Ply:
    """One half-move: the move played, who played it, and the model's raw reply when the model was asked."""

    number: int  # 1, 2, ... counted in half-moves
    uci: str
    san: str
    player: str  # YOU, MODEL or SUBSTITUTE
    answer: str = ""  # the model's reply, word for word (empty for your moves)


@dataclass(frozen=True)
class GameRecord:
    """A game as it stands: every half-move with its player, the model's legal/illegal counts, the result."""

    plies: tuple[Ply, ...]
    model_legal: int
    model_illegal: int
    result: str  # "1-0", "0-1", "1/2-1/2", or "*" while the game is not over
    termination: str  # "checkmate", "stalemate", ... or "not over"
    start_fen: str | None = None  # the starting position (None: the usual one)

    @property
    def model_legal_rate(self) -> float | None:
        """The share of the model's replies that were legal moves (None before its first reply)."""
        asked = self.model_legal + self.model_illegal
        return self.model_legal / asked if asked else None

    def rows(self) -> list[dict[str, Any]]:
        """One row per half-move, for a DataFrame."""
        return [{"ply": p.number, "move": p.san, "uci": p.uci, "played by": p.player,
                 "model's reply": p.answer if p.player != YOU else ""} for p in self.plies]

    def check(self) -> GameRecord:
        """Replay the record from its start and check that it holds together; return it, or raise ValueError naming
        the first half-move that does not.

        Every move must be legal in turn; your moves and the model's must each keep one colour; a move the model
        played must be the one its reply names, and a substitute must follow a reply that names no legal move; the
        legal and illegal counts must be those replies; the result must be the board's.
        """
        import chess

        board = chess.Board(self.start_fen) if self.start_fen else chess.Board()
        colours: dict[str, set[bool]] = {YOU: set(), "model": set()}
        legal = illegal = 0
        for i, ply in enumerate(self.plies, 1):
            where = f"half-move {i} ({ply.uci}, {ply.player})"
            if ply.number != i:
                raise ValueError(f"{where} is numbered {ply.number}")
            if ply.uci not in {m.uci() for m in board.legal_moves}:
                raise ValueError(f"{where} is not legal in {board.fen()}")
            named = parse_move(board.fen(), ply.answer) if ply.player != YOU else None
            if ply.player == MODEL and named != ply.uci:
                raise ValueError(f"{where}: the model's reply {ply.answer!r} does not name the move played")
            if ply.player == SUBSTITUTE and named is not None:
                raise ValueError(f"{where}: the reply {ply.answer!r} names a legal move, yet a substitute was played")
            if ply.player not in (YOU, MODEL, SUBSTITUTE):
                raise ValueError(f"{where}: unknown player")
            legal, illegal = legal + (ply.player == MODEL), illegal + (ply.player == SUBSTITUTE)
            colours[YOU if ply.player == YOU else "model"].add(board.turn)
            board.push(chess.Move.from_uci(ply.uci))
        if any(len(c) > 1 for c in colours.values()) or colours[YOU] & colours["model"]:
            raise ValueError("you and the model do not each keep one colour")
        if (legal, illegal) != (self.model_legal, self.model_illegal):
            raise ValueError(f"the model's replies were {legal} legal and {illegal} illegal, but the record counts "
                             f"{self.model_legal} and {self.model_illegal}")
        if board.result() != self.result:
            raise ValueError(f"the result is {board.result()} on the board, {self.result} in the record")
        return self

    def summary(self) -> str:
        """One line: moves played, the model's legal replies, the result."""
        rate = self.model_legal_rate
        share = f" ({rate:.0%})" if rate is not None else ""
        return (f"{len(self.plies)} half-moves; the model's replies: {self.model_legal} legal, {self.model_illegal} "
                f"illegal{share}; result {self.result} ({self.termination})")


PIECE_LIST, CHESS_INSTRUCT = "piece list", "ChessInstruct next best move"
NO_MOVE = "0000"  # UCI's null move: marks where the move goes in a game position's answer (it has no reference move)


@dataclass(frozen=True)
class PromptStyle:
    """How a chess model was asked in training, so that a game, a match or a rating asks it the same way.

    * ``PIECE_LIST`` (the smoke lesson, offline puzzles): the task ``PUZZLE_TASK`` and the position as a piece list;
      the answer is a bare UCI move.
    * ``CHESS_INSTRUCT`` (full mode, Thytu/ChessInstruct): the dataset's FIND_NEXT_BEST_MOVE task text, the game so far
      as ``{"moves": [...]}`` in UCI from the usual starting position, and the answer ``{"next best move": "e2e4"}``.

    A saved chess model records its style in its provenance (``extra["prompt_style"]``); :meth:`of` reads it back.
    """

    name: str = PIECE_LIST
    task: str = PUZZLE_TASK

    def example(self, position: Any) -> ChessExample:
        """The position (a FEN, Board or Game; ChessInstruct needs the moves from the start) as this style's prompt."""
        board = _board(position)
        fen = board.fen()
        if self.name == PIECE_LIST:
            return ChessExample(fen=fen, task=self.task, prompt=format_position(fen), answer="", move="", kind="game")
        if self.name != CHESS_INSTRUCT:
            raise ValueError(f"unknown prompt style {self.name!r}: {PIECE_LIST!r} or {CHESS_INSTRUCT!r}")
        import chess

        if board.root().fen() != chess.STARTING_FEN:
            raise ValueError("a ChessInstruct-trained model is asked with the game's moves from the usual starting "
                             "position: start the game there (Game() without fen), or pass a Board with its moves")
        moves = [m.uci() for m in board.move_stack]
        return ChessExample(fen=fen, task=self.task, prompt=json.dumps({"moves": moves}),
                            answer=json.dumps({"next best move": NO_MOVE}), move=NO_MOVE, kind="game")

    @classmethod
    def of(cls, record: Any) -> PromptStyle:
        """The style a saved model's provenance records (a Provenance, or None); the piece list when it says none."""
        style = (getattr(record, "extra", None) or {}).get("prompt_style") if record is not None else None
        return cls(**style) if style else cls()


def position_example(position: Any, style: PromptStyle | None = None) -> ChessExample:
    """A position (FEN, Board or Game) as a model is asked about it in a game (default: the lesson's piece list);
    it has no reference move."""
    return (style or PromptStyle()).example(position)


def _board(position: Any):
    """A python-chess board from a FEN, a Board or a Game (copied, never shared)."""
    import chess

    if isinstance(position, Game):
        return position.board.copy()
    if isinstance(position, chess.Board):
        return position.copy()
    return chess.Board(position)


@dataclass
class Game:
    """A game between you and a model: the board, the half-moves so far, and the model's legal/illegal counts."""

    fen: str | None = None  # the starting position (None: the usual one)
    you_play: str = "white"
    seed: int = 0
    style: PromptStyle = field(default_factory=PromptStyle)  # how the model is asked (as it was trained)
    plies: list[Ply] = field(default_factory=list)
    model_legal: int = 0
    model_illegal: int = 0

    def __post_init__(self) -> None:
        import chess

        if self.you_play not in ("white", "black"):
            raise ValueError(f"you_play must be 'white' or 'black', not {self.you_play!r}")
        self.board = chess.Board(self.fen) if self.fen else chess.Board()
        self._rng = random.Random(self.seed)

    @property
    def your_turn(self) -> bool:
        """True when the side to move is yours."""
        return self.board.turn == (self.you_play == "white")

    @property
    def over(self) -> bool:
        """True after checkmate, stalemate, insufficient material, the 75-move rule or fivefold repetition."""
        return self.board.is_game_over()

    def legal_moves(self) -> list[str]:
        """The side to move's legal moves in UCI, sorted."""
        return sorted(m.uci() for m in self.board.legal_moves)

    def _push(self, uci: str, player: str, answer: str = "") -> Ply:
        import chess

        move = chess.Move.from_uci(uci)
        ply = Ply(len(self.plies) + 1, uci, self.board.san(move), player, answer)
        self.board.push(move)
        self.plies.append(ply)
        return ply

    def _check_playable(self, yours: bool) -> None:
        if self.over:
            raise GameOverError(f"the game is over: {self.record().result} ({self.record().termination})")
        if yours != self.your_turn:
            raise TurnError("it is the model's turn: call reply(answer_fn)" if yours
                               else "it is your turn: call play(uci)")

    def play(self, uci: str) -> Ply:
        """Play your move (UCI, like e2e4 or e7e8q); an illegal move raises IllegalMoveError and changes nothing."""
        self._check_playable(yours=True)
        text = str(uci).strip().lower()
        if parse_move(self.board.fen(), text) != text:  # only a bare, legal UCI move is accepted
            raise IllegalMoveError(f"{text!r} is not a legal move here ({'White' if self.board.turn else 'Black'} "
                                   f"to move). Legal moves: {', '.join(self.legal_moves())}")
        return self._push(text, YOU)

    def reply(self, answer_fn: AnswerFn) -> Ply:
        """Ask the model for its move; an illegal reply is counted and a random legal move is played for it."""
        self._check_playable(yours=False)
        answers = answer_fn([self.style.example(self.board)])
        if len(answers) != 1:
            raise ValueError(f"answer_fn must return one reply per position; it returned {len(answers)}")
        answer = str(answers[0])
        move = parse_move(self.board.fen(), answer)
        if move is not None:
            self.model_legal += 1
            return self._push(move, MODEL, answer)
        self.model_illegal += 1
        return self._push(self.random_move(), SUBSTITUTE, answer)

    def random_move(self) -> str:
        """A legal move of the side to move, drawn from the game's seeded generator (a replay draws the same)."""
        return self._rng.choice(self.legal_moves())

    def record(self) -> GameRecord:
        """The game so far: half-moves with their players, the model's legal/illegal counts, the result."""
        outcome = self.board.outcome()
        termination = outcome.termination.name.lower().replace("_", " ") if outcome else "not over"
        return GameRecord(tuple(self.plies), self.model_legal, self.model_illegal, self.board.result(), termination,
                          self.fen)

    def board_svg(self, size: int = 320) -> str:
        """The board from your side, the last move highlighted (and the king in red when in check)."""
        import chess.svg

        last = self.board.peek() if self.board.move_stack else None
        check = self.board.king(self.board.turn) if self.board.is_check() else None
        return chess.svg.board(self.board, lastmove=last, check=check, size=size,
                               orientation=self.you_play == "white")


def describe(ply: Ply) -> str:
    """A log line for a half-move: who played what, and for the model, what it said."""
    if ply.player == YOU:
        return f"{ply.number}. you: {ply.san}"
    if ply.player == MODEL:
        return f"{ply.number}. model: {ply.san} (its reply: {ply.answer[:40]!r})"
    return (f"{ply.number}. model replied {ply.answer[:40]!r}: not a legal move here (counted as illegal); "
            f"a random legal move was played for it: {ply.san}")


def take_turn(game: Game, uci: str, answer_fn: AnswerFn) -> list[str]:
    """Your move, then the model's reply unless the game ended: the log lines (an illegal move of yours: the error)."""
    try:
        lines = [describe(game.play(uci))]
    except (IllegalMoveError, GameOverError, TurnError) as err:
        return [f"not played: {err}"]
    if not game.over:
        lines.append(describe(game.reply(answer_fn)))
    if game.over:
        lines.append(f"game over: {game.record().summary()}")
    return lines


def scripted_game(moves: Sequence[str], answer_fn: AnswerFn, you_play: str = "white", seed: int = 0,
                  on_illegal: str = "raise", style: PromptStyle | None = None) -> GameRecord:
    """Play your scripted moves against answer_fn until the script ends or the game does; return the record.

    ``on_illegal``: what happens when a scripted move of yours is not legal when its turn comes (the model's
    replies can change the position): "raise" (:class:`IllegalMoveError`) or "random" (a random legal move is
    played instead, recorded as yours, and a line says so). Use "random" with a real model, whose replies vary.
    """
    if on_illegal not in ("raise", "random"):
        raise ValueError(f"on_illegal must be 'raise' or 'random', not {on_illegal!r}")
    game = Game(you_play=you_play, seed=seed, style=style or PromptStyle())
    script = list(moves)
    while not game.over:
        if not game.your_turn:
            game.reply(answer_fn)
            continue
        if not script:
            break
        uci = script.pop(0)
        try:
            game.play(uci)
        except IllegalMoveError:
            if on_illegal == "raise":
                raise
            instead = game.random_move()
            print(f"scripted move {uci} is not legal after the model's replies; playing {instead} instead")
            game.play(instead)
    return game.record()


def compare(position: Any, players: dict[str, AnswerFn], style: PromptStyle | None = None) -> list[dict[str, Any]]:
    """Each player's answer on one position (a FEN, Board or Game), its move, and whether that move is legal."""
    board = _board(position)
    example = position_example(board, style)
    rows = []
    for name, answer_fn in players.items():
        answer = str(answer_fn([example])[0])
        move = parse_move(example.fen, answer)
        san = board.san(board.parse_uci(move)) if move else ""
        rows.append({"player": name, "answer": answer, "move": san or "-", "legal": move is not None})
    return rows


def model_player(model, tokenizer, max_new_tokens: int = 6, greedy: bool = True, adapter: bool = True) -> AnswerFn:
    """An answer_fn that asks a model through the lesson's prompt; adapter=False asks a LoRA model's base instead.

    ``adapter=False`` runs generation inside PEFT's ``disable_adapter()``: the base model's answers without loading
    it a second time (only while the adapter is not merged: ``train.save_merged`` merges it in place).
    """
    if not adapter and not hasattr(model, "disable_adapter"):
        raise ValueError("adapter=False needs a model with a LoRA adapter (PEFT); this one has none: pass the base "
                         "model itself instead")

    def ask(examples: Sequence[ChessExample]) -> list[str]:
        if adapter:
            return generate_answers(model, tokenizer, examples, greedy=greedy, max_new_tokens=max_new_tokens)
        with model.disable_adapter():
            return generate_answers(model, tokenizer, examples, greedy=greedy, max_new_tokens=max_new_tokens)

    return ask


def gguf_player(llm, max_new_tokens: int = 6) -> AnswerFn:
    """An answer_fn that asks a GGUF opened with llama.cpp (``runtimes.load_llama``) through the lesson's prompt,
    greedily: the fine-tune as a phone app runs it (notebook 02)."""

    def ask(examples: Sequence[ChessExample]) -> list[str]:
        return [chat(llm, ex.conversation(with_answer=False), max_tokens=max_new_tokens, greedy=True, echo=False)
                for ex in examples]

    return ask


def constrained_player(model, tokenizer, adapter: bool = True, batch_size: int = 64) -> AnswerFn:
    """An answer_fn whose reply is always legal: the model's best-ranked legal move
    (:func:`gemma_helpers.chess_constrained.constrained_answers`); adapter=False ranks with a LoRA model's base, as
    in :func:`model_player`."""
    if not adapter and not hasattr(model, "disable_adapter"):
        raise ValueError("adapter=False needs a model with a LoRA adapter (PEFT); this one has none: pass the base "
                         "model itself instead")

    def ask(examples: Sequence[ChessExample]) -> list[str]:
        if adapter:
            return constrained_answers(model, tokenizer, examples, batch_size)
        with model.disable_adapter():
            return constrained_answers(model, tokenizer, examples, batch_size)

    return ask


def gguf_constrained_player(llm, max_new_tokens: int | None = None) -> AnswerFn:
    """An answer_fn that asks a GGUF in llama.cpp greedily, held by a grammar to the legal moves' answers
    (:func:`gemma_helpers.chess_constrained.gguf_constrained_answers`; the token budget always fits the longest)."""
    return lambda examples: gguf_constrained_answers(llm, examples, max_new_tokens)


def has_widget_front_end() -> bool:
    """True in a Jupyter kernel with ipywidgets installed, outside CI (where no browser draws the widgets)."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel") and not in_ci()


def play_widget(game: Game, answer_fn: AnswerFn, front_end: bool | None = None):
    """A move box, a button, the board and a log, to display (None, and a printed message, without a front end)."""
    if not (has_widget_front_end() if front_end is None else front_end):
        print("No widget front end here (CI, or ipywidgets missing): play with game.play('e2e4') and "
              "game.reply(answer_fn), or scripted_game(moves, answer_fn).")
        return None
    import ipywidgets as widgets

    box = widgets.Text(placeholder="your move in UCI, e.g. e2e4", description="Move:")
    button = widgets.Button(description="Play", button_style="primary")
    board = widgets.HTML(game.board_svg())
    log = widgets.Textarea(value="", layout=widgets.Layout(width="32em", height="20em"), disabled=True)
    if not game.your_turn and not game.over:  # you play black: the model opens
        log.value = describe(game.reply(answer_fn)) + "\n"
        board.value = game.board_svg()

    def on_click(_button) -> None:
        lines = take_turn(game, box.value, answer_fn)
        log.value += "\n".join(lines) + "\n"
        board.value = game.board_svg()
        box.value = ""
        button.disabled = game.over

    button.on_click(on_click)
    return widgets.HBox([board, widgets.VBox([widgets.HBox([box, button]), log])])
