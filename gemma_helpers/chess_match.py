"""A match between a model and a rated opponent, every game checked move by move, and the model's Elo from it.

The model is asked exactly as in :mod:`gemma_helpers.chess_game` (an ``answer_fn`` over the lesson's prompt, its reply
read by :func:`gemma_helpers.chess.parse_move`). Its opponents are anchors whose rating is taken as known:
:func:`random_mover` (a uniform choice among the legal moves) and :func:`stockfish_opponent` (Stockfish at limited
strength, ``UCI_Elo``). :func:`play_match` plays the games (side by side where asked: :func:`play_games` asks the
model once a round for every game still going); :meth:`MatchResult.rating` turns them into an Elo estimate with its
95% interval (:mod:`gemma_helpers.rating`), on the anchor's scale (see ``rating.ANCHORS``).

The rules, so that a rating means what it says:

* Colours alternate: the model is White in games 0, 2, 4, ... . With ``openings`` (FENs), each opening is played
  twice in a row, once with each colour, so that no opening favours the model.
* **A reply that names no legal move loses the game** (as in maxim-saplin/llm_chess, where a player that cannot make
  a legal move loses); it is counted in ``illegal replies``. Unlike :class:`chess_game.Game`, no random move is
  played for it: a rating has to pay for illegal moves.
* A game still going after ``max_plies`` half-moves is **adjudicated** and recorded as such: by Stockfish's
  evaluation where the engine is installed (:func:`stockfish_adjudicator`: the side :data:`ENGINE_MARGIN_CP`
  centipawns or more ahead, or mating, wins), else by material (the side :data:`MATERIAL_MARGIN` pawns or more
  ahead, pawn 1, knight and bishop 3, rook 5, queen 9, the textbook values, wins); otherwise it is a draw. The
  table counts each kind. A weak player's rating from draws at the limit is generous.
* Every game is replayed and checked before it is counted (:meth:`MatchGame.check`): each move legal in turn, the
  sides alternating with the model on its colour, each model move the one its reply names, and the result the
  board's or the stated adjudication.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chess import parse_move
from .chess_game import MODEL, YOU, AnswerFn, Game, GameRecord, PromptStyle
from .rating import ANCHORS, RatingEstimate, format_estimate, match_rating

ILLEGAL_REPLY = "illegal reply (the model loses)"
MOVE_LIMIT = "move limit (adjudicated a draw)"
BY_MATERIAL = "move limit (adjudicated by material)"
BY_ENGINE = "move limit (adjudicated by Stockfish's evaluation)"
MATERIAL_MARGIN = 3  # pawns ahead at the move limit that win the game: a minor piece, a usual adjudication margin
ENGINE_MARGIN_CP = 100 * MATERIAL_MARGIN  # the same margin in Stockfish's centipawns
ENGINE_DEPTH = 12  # plies Stockfish searches to adjudicate: a fixed depth gives the same verdict on a replay
PIECE_VALUES = {"p": 1, "n": 3, "b": 3, "r": 5, "q": 9}
STOCKFISH_HINT = "apt-get install -y stockfish"  # Debian, Ubuntu, Colab (prefix sudo where you are not root)
DEBIAN_STOCKFISH = Path("/usr/games/stockfish")  # Debian installs games outside PATH


@dataclass
class Opponent:
    """A rated opponent: its anchor rating and where that comes from, and ``move(board) -> uci``.

    ``start(game_seed)`` is called before each game (a fresh random stream, a new game for an engine); ``close()``
    ends an engine process. Use it as a context manager to close it for sure.
    """

    name: str
    rating: float
    scale: str
    source: str
    move: Callable[[Any], str]
    start: Callable[[int], None] = lambda game_seed: None
    close: Callable[[], None] = lambda: None
    note: str = ""  # e.g. that the requested strength was clamped to what the engine accepts
    # for_game(game_seed) -> move(board): a mover with the game's own state (a random stream, an engine game key),
    # so that games played side by side each replay as they would alone; None: start(game_seed), then move
    for_game: Callable[[int], Callable[[Any], str]] | None = None

    def mover(self, game_seed: int) -> Callable[[Any], str]:
        """``move(board) -> uci`` for one game, its state its own (:attr:`for_game`; else start() and move)."""
        if self.for_game is not None:
            return self.for_game(game_seed)
        self.start(game_seed)
        return self.move

    def __enter__(self) -> Opponent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def random_mover(seed: int = 0) -> Opponent:
    """An opponent that plays a uniformly random legal move; each game's moves depend only on ``seed`` and the game."""
    anchor = ANCHORS["random mover"]
    rng = random.Random(seed)

    def start(game_seed: int) -> None:
        rng.seed(seed * 1_000_003 + game_seed)

    def move(board) -> str:
        return rng.choice(sorted(m.uci() for m in board.legal_moves))

    def for_game(game_seed: int) -> Callable[[Any], str]:
        own = random.Random(seed * 1_000_003 + game_seed)  # the stream start(game_seed) gives
        return lambda board: own.choice(sorted(m.uci() for m in board.legal_moves))

    return Opponent(anchor.name, anchor.rating, anchor.scale, anchor.source, move, start, for_game=for_game)


def find_stockfish() -> str | None:
    """The Stockfish program's path (on PATH, or Debian's /usr/games/stockfish), or None when it is not installed."""
    found = shutil.which("stockfish")
    if found:
        return found
    return str(DEBIAN_STOCKFISH) if DEBIAN_STOCKFISH.is_file() else None


def ensure_stockfish(install: bool | None = None, run=None) -> str | None:
    """Stockfish's path; where it is missing and `install` (default: on Colab, where the notebook runs as root),
    install Debian's package with apt-get first. None, with the one command to run printed, when it is not there."""
    import os
    import subprocess

    found = find_stockfish()
    if found:
        return found
    install = ("COLAB_RELEASE_TAG" in os.environ) if install is None else install
    if install and shutil.which("apt-get"):
        print("installing Stockfish with apt-get (about 20 s)...", flush=True)
        run = run or subprocess.run
        for cmd in (["apt-get", "install", "-y", "-q", "stockfish"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "stockfish"]):
            run(cmd, capture_output=True)
            if cmd[1] == "install" and find_stockfish():
                return find_stockfish()
    print(f"Stockfish is not installed: the matches play the random mover only. To add the engine: {STOCKFISH_HINT}")
    return None


def stockfish_opponent(elo: int = 1350, movetime: float = 0.05, depth: int | None = None,
                       path: str | None = None) -> Opponent:
    """Stockfish at limited strength (``UCI_LimitStrength``, ``UCI_Elo``), thinking ``movetime`` seconds a move, or
    to ``depth`` plies when given.

    ``elo`` is clamped to the range the engine advertises (Debian's Stockfish 15.1: 1350-2850; from 16: 1320-3190);
    the opponent's ``note`` says so when it was. The anchor rating is the level actually set. Stockfish calibrated
    ``UCI_Elo`` at 60 s + 0.6 s per game (120 s + 1 s from 16): at a short ``movetime`` it plays weaker than its
    number, so a rating against it reads high.
    """
    import chess.engine

    path = path or find_stockfish()
    if path is None:
        raise FileNotFoundError(f"Stockfish is not on PATH nor at {DEBIAN_STOCKFISH}: install it with "
                                f"`{STOCKFISH_HINT}` (Debian/Ubuntu/Colab), or pass path=")
    engine = chess.engine.SimpleEngine.popen_uci(path)
    if "UCI_Elo" not in engine.options:
        engine.quit()
        raise ValueError(f"{path} offers no UCI_Elo option, so its strength cannot be set: use Stockfish 11 or later")
    option, name = engine.options["UCI_Elo"], engine.id.get("name", "Stockfish")
    level = min(max(int(elo), option.min), option.max)
    note = "" if level == elo else (f"asked for UCI_Elo {elo}; {name} accepts {option.min}-{option.max}, so it "
                                    f"plays at {level}")
    engine.configure({"UCI_LimitStrength": True, "UCI_Elo": level})
    limit = chess.engine.Limit(depth=depth) if depth else chess.engine.Limit(time=movetime)
    game = [object()]

    def start(game_seed: int) -> None:
        game[0] = object()  # a new key: python-chess sends ucinewgame before the next move

    def move(board) -> str:
        return engine.play(board, limit, game=game[0]).move.uci()

    def for_game(game_seed: int) -> Callable[[Any], str]:
        key = object()  # this game's own: python-chess sends ucinewgame when the key changes between moves
        return lambda board: engine.play(board, limit, game=key).move.uci()

    anchor = ANCHORS["stockfish UCI_Elo"]
    return Opponent(f"{name} UCI_Elo {level}", float(level), anchor.scale, anchor.source, move, start, engine.quit,
                    note, for_game)


class Adjudicator:
    """Stockfish at full strength, searching :data:`ENGINE_DEPTH` plies: ``evaluate(board)`` is White's advantage in
    centipawns (a mate found: +-100,000). Close it (or use it as a context manager) to end the engine."""

    def __init__(self, path: str | None = None, depth: int = ENGINE_DEPTH):
        import chess.engine

        path = path or find_stockfish()
        if path is None:
            raise FileNotFoundError(f"Stockfish is not on PATH nor at {DEBIAN_STOCKFISH}: install it with "
                                    f"`{STOCKFISH_HINT}`, or adjudicate by material (adjudicator=None)")
        self.depth = depth
        self.engine = chess.engine.SimpleEngine.popen_uci(path)
        self.engine.configure({"Threads": 1})  # one thread: the same depth gives the same evaluation on a replay

    def evaluate(self, board) -> int:
        """White's advantage at ``board`` in centipawns, from a search of self.depth plies."""
        import chess.engine

        info = self.engine.analyse(board, chess.engine.Limit(depth=self.depth), game=object())
        return int(info["score"].white().score(mate_score=100_000))

    def close(self) -> None:
        self.engine.quit()

    def __enter__(self) -> Adjudicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stockfish_adjudicator(depth: int = ENGINE_DEPTH) -> Adjudicator | None:
    """An :class:`Adjudicator` where Stockfish is installed, else None (then material adjudicates)."""
    return Adjudicator(depth=depth) if find_stockfish() else None


@dataclass(frozen=True)
class MatchGame:
    """One game of a match: the moves as played (a :class:`chess_game.GameRecord`, the opponent's moves recorded as
    "you"), the model's colour, and the game's result and how it ended, which may be an illegal reply or the move
    limit rather than the board."""

    record: GameRecord
    model_white: bool
    result: str  # "1-0", "0-1" or "1/2-1/2"
    termination: str  # the board's ("checkmate", ...), ILLEGAL_REPLY, MOVE_LIMIT or BY_MATERIAL
    max_plies: int
    forfeit_reply: str | None = None  # the reply that named no legal move (the game ended there)
    game_seed: int = 0
    engine_cp: int | None = None  # Stockfish's evaluation at the move limit (White's view), when it adjudicated

    @property
    def illegal(self) -> int:
        """Illegal replies in this game (0 or 1: the first one ends it)."""
        return int(self.forfeit_reply is not None)

    @property
    def model_score(self) -> float:
        """1 for a model win, 0.5 for a draw, 0 for a loss."""
        if self.result == "1/2-1/2":
            return 0.5
        return float((self.result == "1-0") == self.model_white)

    def check(self) -> MatchGame:
        """Replay the game and check it; return it, or raise ValueError naming what does not hold.

        The record's own check (every move legal in turn, each side one colour, each model move the one its reply
        names), then: the model plays its colour and never needed a substitute, and the result and termination are
        the board's, or the stated forfeit (a reply naming no legal move, on the model's turn) or adjudication.
        """
        import chess

        self.record.check()
        board = chess.Board(self.record.start_fen) if self.record.start_fen else chess.Board()
        model_colour = chess.WHITE if self.model_white else chess.BLACK
        for ply in self.record.plies:
            if (ply.player == MODEL) != (board.turn == model_colour) or ply.player not in (MODEL, YOU):
                raise ValueError(f"half-move {ply.number} ({ply.uci}) is played by {ply.player!r} on "
                                 f"{'White' if board.turn else 'Black'}'s turn; the model plays "
                                 f"{'White' if self.model_white else 'Black'}, and no substitute is allowed")
            board.push(chess.Move.from_uci(ply.uci))
        expected = _outcome(board, len(self.record.plies), self.model_white, self.max_plies, self.forfeit_reply,
                            self.engine_cp)
        if (self.result, self.termination) != expected:
            raise ValueError(f"the game is recorded as {self.result} ({self.termination}), but its moves give "
                             f"{expected[0]} ({expected[1]})")
        return self

    def row(self, number: int) -> dict[str, Any]:
        """A table row for this game."""
        return {"game": number, "model plays": "White" if self.model_white else "Black",
                "half-moves": len(self.record.plies), "result": self.result, "termination": self.termination,
                "model's score": self.model_score, "illegal replies": self.illegal,
                "moves (UCI)": " ".join(p.uci for p in self.record.plies)}


def _outcome(board, plies: int, model_white: bool, max_plies: int, forfeit_reply: str | None,
             engine_cp: int | None = None) -> tuple[str, str]:
    """The result and termination that the rules give a game whose moves end on ``board`` (``engine_cp``: Stockfish's
    evaluation there, White's view, when it adjudicates the move limit; None: material does)."""
    import chess

    if plies > max_plies:
        raise ValueError(f"{plies} half-moves were played, more than the limit of {max_plies}")
    if forfeit_reply is not None:
        model_to_move = board.turn == (chess.WHITE if model_white else chess.BLACK)
        asked = model_to_move and not board.is_game_over() and plies < max_plies
        if not asked or parse_move(board.fen(), forfeit_reply) is not None:
            raise ValueError(f"the forfeit reply {forfeit_reply!r} is not an illegal reply on the model's turn of "
                             f"a game in progress")
        return ("0-1" if model_white else "1-0"), ILLEGAL_REPLY
    outcome = board.outcome()
    if outcome is not None:
        return board.result(), outcome.termination.name.lower().replace("_", " ")
    if plies == max_plies and engine_cp is not None:
        if abs(engine_cp) >= ENGINE_MARGIN_CP:
            return ("1-0" if engine_cp > 0 else "0-1"), BY_ENGINE
        return "1/2-1/2", MOVE_LIMIT
    if plies == max_plies:
        ahead = material(board)
        if abs(ahead) >= MATERIAL_MARGIN:
            return ("1-0" if ahead > 0 else "0-1"), BY_MATERIAL
        return "1/2-1/2", MOVE_LIMIT
    raise ValueError(f"the game stops after {plies} half-moves, neither over, nor forfeited, nor at the limit")


def material(board) -> int:
    """White's material minus Black's, in pawns (:data:`PIECE_VALUES`; kings do not count)."""
    total = 0
    for piece in board.piece_map().values():
        value = PIECE_VALUES.get(piece.symbol().lower(), 0)
        total += value if piece.color else -value
    return total


def _ask(player: AnswerFn, games: Sequence[Game]) -> list[str]:
    """The model's replies on the games' positions, asked in each game's prompt style, in one call (one batch)."""
    answers = player([game.style.example(game.board) for game in games])
    if len(answers) != len(games):
        raise ValueError(f"answer_fn must return one reply per position; it returned {len(answers)} for "
                         f"{len(games)}")
    return [str(a) for a in answers]


def play_games(player: AnswerFn, opponent: Opponent, games: Sequence[tuple[bool, str | None, int]], max_plies: int,
               style: PromptStyle | None = None, adjudicator: Adjudicator | None = None) -> list[MatchGame]:
    """Games played side by side, each to its end (the board's, an illegal reply, or ``max_plies``) and checked:
    ``games`` holds (model plays White, start FEN or None, game seed) per game. At each round the opponent moves in
    every game where it is to move, then the model is asked once for all games where it is to move (a model ranks
    or writes their replies in one batch). Each game's moves are those it would have alone. A game at the move limit
    is adjudicated by ``adjudicator`` (Stockfish's evaluation) when given, else by material."""
    live = []
    for model_white, start_fen, game_seed in games:
        game = Game(fen=start_fen, you_play="black" if model_white else "white", seed=game_seed,
                    style=style or PromptStyle())
        live.append({"game": game, "white": model_white, "seed": game_seed, "forfeit": None,
                     "move": opponent.mover(game_seed)})

    def going(g: dict) -> bool:
        return g["forfeit"] is None and not g["game"].over and len(g["game"].plies) < max_plies

    while any(going(g) for g in live):
        for g in live:
            if going(g) and g["game"].your_turn:  # "you" is the opponent here
                g["game"].play(g["move"](g["game"].board.copy()))
        asked = [g for g in live if going(g) and not g["game"].your_turn]
        for g, answer in zip(asked, _ask(player, [g["game"] for g in asked]) if asked else [], strict=True):
            if parse_move(g["game"].board.fen(), answer) is None:
                g["forfeit"] = answer
                continue
            g["game"].reply(lambda _examples, answer=answer: [answer])  # the same parse, recorded as the model's
    played = []
    for g in live:
        game = g["game"]
        at_limit = g["forfeit"] is None and not game.over and len(game.plies) == max_plies
        cp = adjudicator.evaluate(game.board) if adjudicator is not None and at_limit else None
        result, termination = _outcome(game.board, len(game.plies), g["white"], max_plies, g["forfeit"], cp)
        played.append(MatchGame(game.record(), g["white"], result, termination, max_plies, g["forfeit"],
                                g["seed"], cp).check())
    return played


def play_game(player: AnswerFn, opponent: Opponent, model_white: bool, max_plies: int, start_fen: str | None = None,
              game_seed: int = 0, style: PromptStyle | None = None) -> MatchGame:
    """One game to its end (the board's, an illegal reply, or ``max_plies``), checked before it is returned; the
    model is asked in `style` (default: the lesson's piece list)."""
    return play_games(player, opponent, [(model_white, start_fen, game_seed)], max_plies, style)[0]


@dataclass(frozen=True)
class MatchResult:
    """A match's games against one opponent, from the model's side, and why it stopped."""

    opponent: str
    anchor_rating: float
    anchor_scale: str
    games: tuple[MatchGame, ...]
    stopped_by: str  # "games" (all played) or "time budget"
    seconds: float = 0.0
    opponent_note: str = ""

    @property
    def scores(self) -> tuple[float, ...]:
        """The model's score in each game (1, 0.5 or 0)."""
        return tuple(g.model_score for g in self.games)

    @property
    def wins(self) -> int:
        return self.scores.count(1.0)

    @property
    def draws(self) -> int:
        return self.scores.count(0.5)

    @property
    def losses(self) -> int:
        return self.scores.count(0.0)

    @property
    def illegal_replies(self) -> int:
        return sum(g.illegal for g in self.games)

    @property
    def adjudicated(self) -> int:
        """Games decided at the move limit rather than on the board (by Stockfish or material, or drawn)."""
        return sum(g.termination in (MOVE_LIMIT, BY_MATERIAL, BY_ENGINE) for g in self.games)

    @property
    def limit_draws(self) -> int:
        """Games drawn at the move limit (neither side enough material ahead)."""
        return sum(g.termination == MOVE_LIMIT for g in self.games)

    @property
    def adjudicated_by(self) -> str:
        """What decided this match's games at the move limit: Stockfish's evaluation, material, both, or none."""
        kinds = sorted({"Stockfish" if g.engine_cp is not None else "material" for g in self.games
                        if g.termination in (MOVE_LIMIT, BY_MATERIAL, BY_ENGINE)})
        return " and ".join(kinds) or "-"

    def rating(self) -> RatingEstimate:
        """The model's Elo from these games, on the opponent's anchor scale (ValueError when no game was played)."""
        if not self.games:
            raise ValueError(f"the match against {self.opponent} has no games (stopped by {self.stopped_by}): give "
                             f"it more time or games")
        return match_rating([(self.anchor_rating, s) for s in self.scores])

    def rows(self) -> list[dict[str, Any]]:
        """One row per game, for a DataFrame."""
        return [g.row(i) for i, g in enumerate(self.games)]


def play_match(player: AnswerFn, opponent: Opponent, games: int, max_plies: int = 200, seed: int = 0,
               openings: Sequence[str] | None = None, time_budget_s: float | None = None,
               style: PromptStyle | None = None, side_by_side: int = 1,
               adjudicator: Adjudicator | None = None) -> MatchResult:
    """Play ``games`` games (colours alternating, the model White in even games) and return them, each checked.
    ``style``: how the model is asked (chess_game.PromptStyle: as it was trained; default the lesson's piece list).

    ``openings``: starting FENs, each played twice in a row (once per colour); None starts from the usual position.
    ``seed`` seeds each game (game i: seed + i), so a random mover replays the same moves. ``time_budget_s``: no new
    game starts once this many seconds have passed (a game under way is finished); ``stopped_by`` records which
    limit ended the match. ``side_by_side``: games played at once (:func:`play_games`: the model's replies for all
    of them in one call per round); the time budget is checked before each such wave of games. ``adjudicator``:
    Stockfish's evaluation decides the games at the move limit (:func:`stockfish_adjudicator`); None: material.
    """
    if games < 1 or max_plies < 1 or side_by_side < 1:
        raise ValueError(f"games, max_plies and side_by_side must be at least 1 (got {games}, {max_plies} and "
                         f"{side_by_side})")
    starts = _openings(openings)
    began, played, stopped_by = time.monotonic(), [], "games"
    for first in range(0, games, side_by_side):
        if time_budget_s is not None and time.monotonic() - began >= time_budget_s:
            stopped_by = "time budget"
            break
        wave = [(i % 2 == 0, starts[(i // 2) % len(starts)], seed + i)
                for i in range(first, min(first + side_by_side, games))]
        played += play_games(player, opponent, wave, max_plies, style, adjudicator)
    return MatchResult(opponent.name, opponent.rating, opponent.scale, tuple(played), stopped_by,
                       time.monotonic() - began, opponent.note)


def _openings(openings: Sequence[str] | None) -> list[str | None]:
    """The starting positions, each checked to be a legal position with a game still to play."""
    import chess

    if not openings:
        return [None]
    for fen in openings:
        board = chess.Board(fen)  # ValueError names a FEN that does not parse
        if not board.is_valid() or board.is_game_over():
            raise ValueError(f"opening {fen!r} is not a legal position with a game to play; pass FENs of positions "
                             f"in progress")
    return list(openings)


def match_table(results: Sequence[MatchResult]) -> list[dict[str, Any]]:
    """One row per match, for a DataFrame: the opponent, its anchor rating and scale, the games, W/D/L, the games
    adjudicated at the move limit (drawn, or won or lost) and by what, illegal replies, and the rating with its
    interval."""
    rows = []
    for res in results:
        est = format_estimate(res.rating()) if res.games else "no games"
        rows.append({"opponent": res.opponent, "anchor rating": res.anchor_rating, "anchor scale": res.anchor_scale,
                     "games": len(res.games), "W/D/L": f"{res.wins}/{res.draws}/{res.losses}",
                     "draws at the move limit": res.limit_draws,
                     "won or lost at the move limit": res.adjudicated - res.limit_draws,
                     "adjudicated by": res.adjudicated_by,
                     "illegal replies": res.illegal_replies,
                     "rating (95% interval)": est, "stopped by": res.stopped_by})
    return rows
