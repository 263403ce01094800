"""Matches against scripted stand-ins for a model: forfeits, colours, adjudication, checks, the budget, Stockfish."""

import dataclasses
import time

import chess
import pytest

from gemma_helpers import chess_match
from gemma_helpers.chess_game import MODEL, YOU, Ply
from gemma_helpers.chess_match import ILLEGAL_REPLY, MOVE_LIMIT, match_table, play_match, random_mover

# After 1. f3 e5 2. g4: Black mates with Qh4.
FOOLS_MATE = "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq g3 0 2"


def first_legal(examples):
    """The first legal move in sorted UCI order, inside some chatter, read from the example's FEN."""
    return [f"I play {sorted(m.uci() for m in chess.Board(ex.fen).legal_moves)[0]}." for ex in examples]


def junk(examples):
    """No move at all."""
    return ["Chess is a wonderful game." for _ in examples]


def mate_if_possible(examples):
    """The mating move where there is one, else the first legal move."""
    answers = []
    for ex in examples:
        board = chess.Board(ex.fen)
        moves = sorted(board.legal_moves, key=lambda m: m.uci())
        mates = [m for m in moves if _mates(board, m)]
        answers.append((mates or moves)[0].uci())
    return answers


def _mates(board, move):
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def test_a_player_that_answers_junk_loses_every_game_with_its_illegal_replies_counted():
    res = play_match(junk, random_mover(seed=1), games=4, max_plies=40)
    assert (res.wins, res.draws, res.losses, res.illegal_replies) == (0, 0, 4, 4)
    for i, game in enumerate(res.games):
        assert game.termination == ILLEGAL_REPLY and game.illegal == 1
        assert len(game.record.plies) == (0 if i % 2 == 0 else 1)  # as White it forfeits at once, as Black after 1.
        assert game.result == ("0-1" if game.model_white else "1-0")
    est = res.rating()
    assert est.rating == -float("inf") and "every game lost" in est.note


def test_colours_alternate_and_every_record_checks():
    res = play_match(first_legal, random_mover(seed=3), games=4, max_plies=30)
    assert [g.model_white for g in res.games] == [True, False, True, False]
    for game in res.games:
        assert game.check() is game
        first = game.record.plies[0]
        assert first.player == (MODEL if game.model_white else YOU)
        assert {p.player for p in game.record.plies} <= {MODEL, YOU}
    assert res.stopped_by == "games" and res.illegal_replies == 0


def test_a_game_at_the_move_limit_is_adjudicated_a_draw_and_the_table_says_so():
    res = play_match(first_legal, random_mover(seed=0), games=2, max_plies=6)
    assert all(g.termination == MOVE_LIMIT and g.result == "1/2-1/2" for g in res.games)
    assert all(len(g.record.plies) == 6 for g in res.games)
    row = match_table([res])[0]
    assert row["W/D/L"] == "0/2/0" and row["draws at the move limit"] == 2
    assert row["won or lost at the move limit"] == 0 and row["adjudicated by"] == "material"
    assert row["anchor rating"] == pytest.approx(-122.3) and row["rating (95% interval)"].startswith("-122 (95%")


def test_each_opening_is_played_with_both_colours_and_a_mate_is_scored_from_the_models_side():
    res = play_match(mate_if_possible, random_mover(seed=2), games=2, max_plies=10, openings=[FOOLS_MATE])
    as_black = res.games[1]
    assert not as_black.model_white and as_black.record.start_fen == FOOLS_MATE
    assert [p.uci for p in as_black.record.plies] == ["d8h4"]
    assert (as_black.result, as_black.termination, as_black.model_score) == ("0-1", "checkmate", 1.0)
    assert res.games[0].record.start_fen == FOOLS_MATE and res.games[0].model_white


def test_the_same_seed_replays_the_same_games():
    first = play_match(first_legal, random_mover(seed=5), games=2, max_plies=20, seed=9)
    again = play_match(first_legal, random_mover(seed=5), games=2, max_plies=20, seed=9)
    assert [g.record.plies for g in first.games] == [g.record.plies for g in again.games]


def test_games_side_by_side_are_the_games_played_one_at_a_time_asked_in_one_batch():
    calls = []

    def counting(examples):
        calls.append(len(examples))
        return first_legal(examples)

    alone = play_match(first_legal, random_mover(seed=5), games=6, max_plies=24, seed=9)
    together = play_match(counting, random_mover(seed=5), games=6, max_plies=24, seed=9, side_by_side=4)
    assert [g.record.plies for g in together.games] == [g.record.plies for g in alone.games]
    assert max(calls) == 4 and len(calls) < sum(len(g.record.plies) for g in together.games) / 2
    with pytest.raises(ValueError, match="side_by_side"):
        play_match(first_legal, random_mover(), games=2, side_by_side=0)


def test_a_tampered_record_fails_its_check():
    game = play_match(first_legal, random_mover(seed=4), games=1, max_plies=8).games[0]
    with pytest.raises(ValueError, match="recorded as 1-0"):
        dataclasses.replace(game, result="1-0").check()
    with pytest.raises(ValueError, match="recorded as"):
        dataclasses.replace(game, termination="checkmate").check()
    plies = list(game.record.plies)
    plies[2] = Ply(3, "e1e8", "Ke8", MODEL, "e1e8")  # the king cannot jump to e8
    with pytest.raises(ValueError, match="is not legal"):
        dataclasses.replace(game, record=dataclasses.replace(game.record, plies=tuple(plies))).check()
    with pytest.raises(ValueError, match="the model plays Black"):
        dataclasses.replace(game, model_white=False).check()
    board = chess.Board()
    for ply in game.record.plies:
        board.push_uci(ply.uci)
    legal = sorted(m.uci() for m in board.legal_moves)[0]  # a "forfeit" that names a legal move is no forfeit
    with pytest.raises(ValueError, match="forfeit reply"):
        dataclasses.replace(game, forfeit_reply=legal, result="0-1", termination=ILLEGAL_REPLY).check()


def test_the_time_budget_stops_new_games_and_says_so():
    def slow(examples):
        time.sleep(0.02)
        return first_legal(examples)

    res = play_match(slow, random_mover(), games=5, max_plies=4, time_budget_s=0.01)
    assert len(res.games) == 1 and res.stopped_by == "time budget"  # the first game starts, no other does
    none = play_match(slow, random_mover(), games=5, max_plies=4, time_budget_s=0)
    assert none.games == () and none.stopped_by == "time budget"
    with pytest.raises(ValueError, match="has no games"):
        none.rating()
    assert match_table([none])[0]["rating (95% interval)"] == "no games"


def test_bad_arguments_say_what_to_pass():
    with pytest.raises(ValueError, match="at least 1"):
        play_match(first_legal, random_mover(), games=0)
    with pytest.raises(ValueError, match="not a legal position with a game to play"):
        play_match(first_legal, random_mover(), games=1, openings=["8/8/8/8/8/8/8/8 w - - 0 1"])
    with pytest.raises(ValueError, match="one reply per position"):
        play_match(lambda examples: [], random_mover(), games=1)


def test_missing_stockfish_names_the_install_command(monkeypatch):
    monkeypatch.setattr(chess_match, "find_stockfish", lambda: None)
    with pytest.raises(FileNotFoundError, match="apt-get install -y stockfish"):
        chess_match.stockfish_opponent()


@pytest.mark.skipif(chess_match.find_stockfish() is None,
                    reason=f"Stockfish is not installed ({chess_match.STOCKFISH_HINT})")
def test_a_short_real_match_against_stockfish_is_checked_and_rated():
    with chess_match.stockfish_opponent(elo=1000, movetime=0.01) as sf:
        assert sf.rating >= 1320 and "accepts" in sf.note  # below every version's minimum: clamped, and said so
        res = play_match(first_legal, sf, games=2, max_plies=10)
    assert len(res.games) == 2 and res.anchor_rating == sf.rating
    assert all(g.check() for g in res.games)
    assert res.rating().n == 2


@pytest.mark.skipif(chess_match.find_stockfish() is None,
                    reason=f"Stockfish is not installed ({chess_match.STOCKFISH_HINT})")
def test_stockfish_adjudicates_the_move_limit_and_the_replay_agrees():
    from gemma_helpers.chess_match import BY_ENGINE, Adjudicator

    with Adjudicator(depth=8) as judge:
        up_a_queen = chess.Board("4k3/8/8/8/8/8/3Q4/4K3 b - - 0 1")
        assert judge.evaluate(up_a_queen) > 500 and judge.evaluate(up_a_queen.mirror()) < -500
        res = play_match(first_legal, random_mover(seed=3), games=4, max_plies=12, side_by_side=4, adjudicator=judge)
    at_limit = [g for g in res.games if len(g.record.plies) == 12 and g.forfeit_reply is None]
    assert at_limit and all(g.engine_cp is not None for g in at_limit)
    for g in at_limit:  # each verdict follows the recorded evaluation, and check() holds it to that
        assert (g.termination == BY_ENGINE) == (abs(g.engine_cp) >= chess_match.ENGINE_MARGIN_CP)
        flipped = dataclasses.replace(g, engine_cp=-g.engine_cp if g.termination == BY_ENGINE else 10_000)
        with pytest.raises(ValueError, match="recorded as"):
            flipped.check()
    assert match_table([res])[0]["adjudicated by"] == "Stockfish"


def test_at_the_move_limit_three_pawns_of_material_decide_the_game():
    from gemma_helpers.chess_match import BY_ENGINE, BY_MATERIAL, _outcome, material

    # White: K, Q, 8 pawns; Black: K, R, 8 pawns: 9 - 5 = 4 pawns ahead, a win for White when the limit is reached
    board = chess.Board("r3k3/pppppppp/8/8/8/8/PPPPPPPP/3QK3 w - - 0 1")
    assert material(board) == 4
    assert _outcome(board, 10, model_white=True, max_plies=10, forfeit_reply=None) == ("1-0", BY_MATERIAL)
    assert _outcome(board.mirror(), 10, model_white=True, max_plies=10, forfeit_reply=None) == ("0-1", BY_MATERIAL)
    # a knight against two pawns: 1 pawn ahead, under the margin of 3, so a draw
    level = chess.Board("4k3/8/8/8/8/8/pp6/4K1N1 w - - 0 1")
    assert material(level) == 1
    assert _outcome(level, 10, model_white=True, max_plies=10, forfeit_reply=None) == ("1/2-1/2", MOVE_LIMIT)
    # Stockfish's evaluation, where given, decides instead of material: 3 pawns of centipawns, either way
    assert _outcome(level, 10, True, 10, None, engine_cp=300) == ("1-0", BY_ENGINE)
    assert _outcome(board, 10, True, 10, None, engine_cp=-450) == ("0-1", BY_ENGINE)
    assert _outcome(board, 10, True, 10, None, engine_cp=299) == ("1/2-1/2", MOVE_LIMIT)
