"""Games against scripted stand-ins for a model: the counts, refused moves, checkmate, and the side-by-side view."""

import chess
import pytest

from gemma_helpers import chess_game
from gemma_helpers.chess_game import MODEL, SUBSTITUTE, YOU, Game, IllegalMoveError


def always_legal(examples):
    """The first legal move in sorted UCI order, with some chatter around it, as a model might write it."""
    return [f"I play {sorted(m.uci() for m in chess.Board(ex.fen).legal_moves)[0]}." for ex in examples]


def always_illegal(examples):
    """A UCI-shaped move from an empty square: never legal."""
    answers = []
    for ex in examples:
        board = chess.Board(ex.fen)
        empty = next(chess.square_name(s) for s in chess.SQUARES if board.piece_at(s) is None)
        answers.append(f"{empty}{'a1' if empty != 'a1' else 'h8'}")
    return answers


def junk(examples):
    """No move at all, the way an untrained base model rambles."""
    return ["Chess is a wonderful game played by two people." for _ in examples]


def scripted(replies):
    """The given replies in order (one per call)."""
    queue = list(replies)
    return lambda examples: [queue.pop(0) for _ in examples]


def test_always_legal_player_is_counted_legal_and_plays_its_own_moves():
    record = chess_game.scripted_game(["e2e4", "g1f3", "f1c4"], always_legal)
    assert (record.model_legal, record.model_illegal) == (3, 0)
    assert [p.player for p in record.plies] == [YOU, MODEL] * 3
    assert record.plies[1].uci == "a7a5"  # the first sorted legal reply to 1. e4
    assert record.model_legal_rate == 1.0
    assert record.result == "*" and record.termination == "not over"


def test_illegal_and_junk_replies_are_counted_and_a_random_move_is_played_instead():
    for player in (always_illegal, junk):
        record = chess_game.scripted_game(["e2e4", "d2d4"], player, seed=1)
        assert (record.model_legal, record.model_illegal) == (0, 2)
        replies = [p for p in record.plies if p.player != YOU]
        assert [p.player for p in replies] == [SUBSTITUTE, SUBSTITUTE]
        board = chess.Board()
        for p in record.plies:  # every substitute is a legal move where it was played
            assert chess.Move.from_uci(p.uci) in board.legal_moves
            board.push_uci(p.uci)
        assert record.model_legal_rate == 0.0
    assert "2 illegal (0%)" in record.summary()


def test_the_same_seed_replays_the_same_substitutes():
    first = chess_game.scripted_game(["e2e4", "d2d4", "g1f3"], junk, seed=7)
    again = chess_game.scripted_game(["e2e4", "d2d4", "g1f3"], junk, seed=7)
    assert [p.uci for p in first.plies] == [p.uci for p in again.plies]


def test_mixed_replies_give_the_right_counts_and_rows():
    record = chess_game.scripted_game(["e2e4", "g1f3", "f1c4"], scripted(["e7e5", "Nc6 please", "b8c6"]))
    assert (record.model_legal, record.model_illegal) == (2, 1)
    rows = record.rows()
    assert rows[1] == {"ply": 2, "move": "e5", "uci": "e7e5", "played by": MODEL, "model's reply": "e7e5"}
    assert rows[3]["played by"] == SUBSTITUTE and rows[3]["model's reply"] == "Nc6 please"
    assert rows[0]["model's reply"] == ""


def test_an_illegal_move_of_yours_is_refused_with_the_legal_moves_named_and_changes_nothing():
    game = Game()
    before = game.board.fen()
    with pytest.raises(IllegalMoveError) as err:
        game.play("e2e5")
    message = str(err.value)
    assert "'e2e5' is not a legal move" in message
    assert "e2e4" in message and "g1f3" in message and "b1c3" in message  # some of White's 20 legal moves
    assert message.count(",") == 19
    assert game.board.fen() == before and game.plies == []
    with pytest.raises(IllegalMoveError):
        game.play("Nf3")  # SAN is not UCI
    with pytest.raises(chess_game.TurnError):
        game.reply(always_legal)  # White (you) to move
    game.play("E2E4")  # upper case is forgiven
    with pytest.raises(chess_game.TurnError):
        game.play("d2d4")


def test_fools_mate_ends_the_game():
    record = chess_game.scripted_game(["f2f3", "g2g4", "a2a3", "b2b3"], scripted(["e7e5", "d8h4#"]))
    assert [p.san for p in record.plies] == ["f3", "e5", "g4", "Qh4#"]
    assert (record.result, record.termination) == ("0-1", "checkmate")
    assert (record.model_legal, record.model_illegal) == (2, 0)
    game = Game()
    for uci in ("f2f3", "e7e5", "g2g4", "d8h4"):
        game._push(uci, YOU if game.your_turn else MODEL)
    assert game.over
    with pytest.raises(chess_game.GameOverError, match="0-1"):
        game.play("a2a3")


def test_playing_black_the_model_opens():
    record = chess_game.scripted_game(["e7e5"], scripted(["e2e4", "g1f3"]), you_play="black")
    assert [(p.player, p.uci) for p in record.plies] == [(MODEL, "e2e4"), (YOU, "e7e5"), (MODEL, "g1f3")]


def test_a_script_made_illegal_by_the_model_raises_or_plays_a_random_move():
    with pytest.raises(IllegalMoveError):  # 1. e4 d5 2. e4e5?? the pawn is already on e4
        chess_game.scripted_game(["e2e4", "e2e5"], scripted(["d7d5"]))
    record = chess_game.scripted_game(["e2e4", "e2e5"], scripted(["d7d5", "a7a6"]), on_illegal="random")
    assert len(record.plies) == 4 and record.plies[2].player == YOU


def test_compare_on_a_known_position():
    board = chess.Board()
    for uci in ("f2f3", "e7e5", "g2g4"):
        board.push_uci(uci)
    rows = chess_game.compare(board.fen(), {"base": junk, "fine-tune": scripted(["Qh4 is d8h4"]),
                                            "wrong side": scripted(["e2e4"])})
    assert rows == [
        {"player": "base", "answer": "Chess is a wonderful game played by two people.", "move": "-", "legal": False},
        {"player": "fine-tune", "answer": "Qh4 is d8h4", "move": "Qh4#", "legal": True},
        {"player": "wrong side", "answer": "e2e4", "move": "-", "legal": False},
    ]


def test_the_model_is_asked_with_the_lesson_prompt():
    seen = []

    def spy(examples):
        seen.extend(examples)
        return ["e7e5"]

    game = Game()
    game.play("e2e4")
    game.reply(spy)
    (example,) = seen
    assert example.conversation(with_answer=False)[1]["content"].startswith("Black to move.\nBlack: K e8, Q d8")
    assert example.fen == chess.Board("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1").fen()


def test_take_turn_logs_both_moves_and_refusals():
    game = Game()
    assert take_lines(game, "e2e5")[0].startswith("not played: 'e2e5' is not a legal move")
    lines = take_lines(game, "e2e4", junk)
    assert lines[0] == "1. you: e4"
    assert "not a legal move here (counted as illegal)" in lines[1]


def take_lines(game, uci, answer_fn=always_legal):
    return chess_game.take_turn(game, uci, answer_fn)


def test_widget_without_front_end_prints_and_with_one_plays_on_click(capsys):
    assert chess_game.play_widget(Game(), always_legal, front_end=False) is None
    assert "No widget front end" in capsys.readouterr().out
    game = Game()
    ui = chess_game.play_widget(game, always_legal, front_end=True)
    board_html, right = ui.children
    (box, button), log = right.children[0].children, right.children[1]
    box.value = "e2e4"
    button.click()
    assert [p.uci for p in game.plies] == ["e2e4", "a7a5"]
    assert "1. you: e4" in log.value and "<svg" in board_html.value and box.value == ""


def test_board_svg_marks_the_last_move_and_check():
    game = Game()
    for uci in ("e2e4", "f7f6", "d2d4", "g7g5", "d1h5"):
        game._push(uci, YOU)
    svg = game.board_svg()
    assert svg.startswith("<svg") and "lastmove" in svg and "check" in svg


def test_gguf_player_asks_llama_cpp_with_the_lessons_prompt_greedily():
    import chess

    asked = []

    class _Llama:  # what runtimes.chat needs of a llama_cpp.Llama: a streamed chat completion
        def create_chat_completion(self, messages, max_tokens, stream, seed, **settings):
            asked.append((messages, max_tokens, settings))
            return iter([{"choices": [{"delta": {"content": "e2"}}]}, {"choices": [{"delta": {"content": "e4"}}]}])

    example = chess_game.position_example(chess.STARTING_FEN)
    replies = chess_game.gguf_player(_Llama(), max_new_tokens=6)([example])
    assert replies == ["e2e4"]
    messages, max_tokens, settings = asked[0]
    assert messages == example.conversation(with_answer=False) and max_tokens == 6
    assert settings == {"temperature": 0.0, "top_k": 1}  # greedy, as the lesson scores


def test_a_record_that_holds_together_passes_its_check_and_a_tampered_one_does_not():
    from dataclasses import replace

    record = chess_game.scripted_game(["e2e4", "g1f3", "f1c4"], scripted(["e7e5", "Nc6 please", "b8c6"]))
    assert record.check() is record  # one illegal reply, a substitute played for it, counts 2 and 1
    assert (record.model_legal, record.model_illegal) == (2, 1)
    black = chess_game.scripted_game(["e7e5"], scripted(["e2e4", "g1f3"]), you_play="black")
    assert black.check() is black
    from_fen = chess_game.Game(fen="4k3/8/8/8/8/8/4P3/4K3 w - - 0 1")
    from_fen.play("e2e4")
    from_fen.reply(scripted(["e8d7"]))
    assert from_fen.record().check().start_fen == from_fen.fen

    plies = list(record.plies)
    with pytest.raises(ValueError, match="2 legal and 1 illegal, but the record counts 3 and 0"):
        replace(record, model_legal=3, model_illegal=0).check()
    with pytest.raises(ValueError, match=r"half-move 3 \(e2e5, you\) is not legal"):
        replace(record, plies=(*plies[:2], replace(plies[2], uci="e2e5"), *plies[3:])).check()
    with pytest.raises(ValueError, match="does not name the move played"):
        replace(record, plies=(plies[0], replace(plies[1], answer="d7d5"), *plies[2:])).check()
    substitute = next(i for i, p in enumerate(plies) if p.player == SUBSTITUTE)
    with pytest.raises(ValueError, match="names a legal move, yet a substitute was played"):
        replace(record, plies=(*plies[:substitute], replace(plies[substitute], answer=plies[substitute].uci),
                               *plies[substitute + 1:])).check()
    with pytest.raises(ValueError, match="do not each keep one colour"):
        replace(record, plies=(plies[0], replace(plies[1], player=YOU), *plies[2:])).check()
    with pytest.raises(ValueError, match="on the board"):
        replace(record, result="1-0").check()


def test_a_game_asks_each_model_the_way_it_was_trained():
    import json

    from gemma_helpers import chess_lesson, provenance
    from gemma_helpers.chess import PUZZLE_TASK, ChessExample, format_position, parse_move
    from gemma_helpers.chess_constrained import answer_text
    from gemma_helpers.chess_game import CHESS_INSTRUCT, Game, PromptStyle

    piece_list = Game().style.example(Game().board)
    assert piece_list.prompt == format_position(piece_list.fen) and piece_list.task == PUZZLE_TASK
    style = PromptStyle(CHESS_INSTRUCT, "Find the next best move.")
    asked = []
    game = Game(style=style)
    game.play("e2e4")
    game.reply(lambda examples: asked.extend(examples) or ['{"next best move": "e7e5"}'])
    assert json.loads(asked[0].prompt) == {"moves": ["e2e4"]} and asked[0].task == "Find the next best move."
    assert game.plies[-1].uci == "e7e5"  # the JSON answer is read by the same parser
    text = answer_text(asked[0], "g8f6")  # legal by construction, in the trained answer format
    assert json.loads(text) == {"next best move": "g8f6"} and parse_move(asked[0].fen, text) == "g8f6"
    with pytest.raises(ValueError, match="from the usual starting position"):
        style.example("8/8/8/8/8/8/8/K6k w - - 0 1")  # no move list to give a ChessInstruct model
    record = provenance.Provenance("merged", "unsloth/gemma-3-270m-it", "test",
                                   extra={"prompt_style": {"name": CHESS_INSTRUCT, "task": "Find the next best move."}})
    assert PromptStyle.of(record) == style and PromptStyle.of(None) == PromptStyle()
    rows = [ChessExample(fen="", task="Find the next best move.", prompt="{}", answer="", move="",
                         kind="FIND_NEXT_BEST_MOVE")]
    data = chess_lesson.ChessData(rows, [], "ChessInstruct rows")
    assert chess_lesson.prompt_style(data) == style
    assert chess_lesson.prompt_style(chess_lesson.ChessData([], [], "puzzles")) == PromptStyle()
