"""chess_constrained: answers in the example's own format, a grammar of exactly the legal answers, and ranking that
is exact (batched and chunked = one at a time) and always legal, on the embedded 270M."""

import json
import re

import chess
import pytest

from gemma_helpers import chess as C
from gemma_helpers import chess_constrained as K
from gemma_helpers import chess_game

PROMOTION = "8/4P3/8/8/8/8/k7/4K3 w - - 0 1"  # White promotes on e8: e7e8q, e7e8r, e7e8b, e7e8n


def json_example() -> C.ChessExample:
    """A ChessInstruct-format row: the answer is JSON around the move."""
    row = {"task": "Find the next best move.", "input": json.dumps({"moves": ["e2e4", "e7e5"]}),
           "expected_output": json.dumps({"next best move": "g1f3"}), "KIND": "FIND_NEXT_BEST_MOVE"}
    return C.chess_instruct_example(row)


def positions() -> list[C.ChessExample]:
    """A smoke-lesson puzzle (bare UCI), a promotion (a game position, no answer) and a JSON-answer row."""
    _, held_out = C.build_offline_dataset(10, 1)
    return [held_out[0], chess_game.position_example(PROMOTION), json_example()]


def test_answer_text_replaces_the_reference_move_in_the_examples_own_format():
    ex = json_example()
    assert K.answer_text(ex, "d2d4") == '{"next best move": "d2d4"}'
    assert K.answer_text(chess_game.position_example(PROMOTION), "e7e8q") == "e7e8q"
    texts = K.answer_texts(ex)
    assert set(texts) == {m.uci() for m in chess.Board(ex.fen).legal_moves}
    assert all(C.parse_move(ex.fen, t) == m for m, t in texts.items())  # the JSON round-trips through parse_move


def literals(grammar: str) -> list[str]:
    """The grammar's string literals, unescaped; raises if anything but `root ::=`, literals and `|` is left."""
    pattern = r'"((?:[^"\\]|\\.)*)"'
    rest = re.sub(pattern, "", grammar.split("::=", 1)[1])
    assert grammar.startswith("root ::=") and set(rest.split()) <= {"|"}
    unescape = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\r": "\r", "\\t": "\t"}
    return [re.sub(r"\\.", lambda m: unescape[m.group()], s) for s in re.findall(pattern, grammar)]


@pytest.mark.parametrize("example", [json_example(), chess_game.position_example(PROMOTION)],
                         ids=["json", "promotion"])
def test_the_grammar_holds_every_legal_answer_and_nothing_else(example):
    grammar = K.legal_move_grammar(example)
    found = literals(grammar)
    assert sorted(found) == sorted(K.answer_texts(example).values())
    assert '"{\\"next best move\\": \\"' in grammar or example.kind == "game"  # quotes escaped for GBNF
    assert K.answer_token_bound(example) == max(len(t) for t in found) + 1
    # llama.cpp parses it only with a model's vocabulary (LlamaGrammar.from_string stores the text): see the test below


def test_a_finished_game_has_nothing_to_constrain():
    mated = chess_game.position_example("rnb1kbnr/pppp1ppp/8/4p3/6Pq/5P2/PPPPP2P/RNBQKBNR w KQkq - 1 3")
    assert K.answer_texts(mated) == {}
    with pytest.raises(ValueError, match="game is over"):
        K.legal_move_grammar(mated)


def test_time_answers_counts_one_call_per_position_after_a_warm_up():
    calls = []
    ms = K.time_answers(lambda examples: calls.append(len(examples)) or ["e2e4"], positions()[:2])
    assert calls == [1, 1, 1] and ms >= 0


def reference_logprob(model, tokenizer, example, move) -> float:
    """One candidate alone: the whole sequence, no padding, log-softmax over every position."""
    import torch

    prompt = K.prompt_ids(tokenizer, example)
    cont = K.continuation_ids(tokenizer, K.answer_text(example, move))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + cont])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(logprobs[len(prompt) - 1 + j, t].item() for j, t in enumerate(cont))


@pytest.mark.slow
def test_ranking_is_exact_and_every_constrained_answer_is_legal(embedded):
    model, tokenizer = embedded
    examples = positions()
    ranked = K.rank_legal_moves(model, tokenizer, examples[0], batch_size=5)  # several chunks, padded
    # the first position's answer is read off that ranking, not from a second, unchunked ranking of it
    answers = [K.answer_text(examples[0], ranked[0][0]), *K.constrained_answers(model, tokenizer, examples[1:])]
    assert C.score(examples, answers).legal_rate == 1.0
    assert json.loads(answers[2])["next best move"] == C.parse_move(examples[2].fen, answers[2])
    assert sorted(m for m, _ in ranked) == K.legal_moves(examples[0])
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    for move, logprob in (ranked[0], ranked[len(ranked) // 2], ranked[-1]):
        assert logprob == pytest.approx(reference_logprob(model, tokenizer, examples[0], move), abs=1e-4)


@pytest.mark.slow
def test_the_prompt_cache_gives_the_same_scores_as_recomputing_the_prompt(embedded):
    """The prompts' cache gives the sums of recomputing each prompt with each candidate, also when prompts of
    different lengths share one left-padded pass and candidates of different positions one batch (a wrong position
    id, or a cache row of another prompt, changes them): bare UCI, a promotion, a multi-token JSON answer."""
    model, tokenizer = embedded
    pad_id, lengths = tokenizer.pad_token_id, set()
    examples = positions()
    prompts = [K.prompt_ids(tokenizer, ex) for ex in examples]
    assert len({len(p) for p in prompts}) > 1  # the left padding is exercised
    owners, chunks = [], []
    for row, example in enumerate(examples):  # 7 candidates of each (the promotions among them)
        texts = K.answer_texts(example)
        chunk = [K.continuation_ids(tokenizer, texts[m]) for m in sorted(texts, key=lambda m: (len(m) < 5, m))[:7]]
        lengths |= {len(c) for c in chunk}
        owners += [row] * len(chunk)
        chunks += chunk
    cached = K.prompt_caches(model, prompts, pad_id)  # one pass for the three prompts, reused by both batches
    half = len(chunks) // 2 + 1  # a batch that straddles positions
    reused = (K.continuation_logprobs_cached(model, cached, owners[:half], chunks[:half], pad_id)
              + K.continuation_logprobs_cached(model, cached, owners[half:], chunks[half:], pad_id))
    plain = [s for row, ex in enumerate(examples)
             for s in K.continuation_logprobs(model, prompts[row], [c for o, c in zip(owners, chunks, strict=True)
                                                                    if o == row], pad_id)]
    assert max(abs(a - b) for a, b in zip(reused, plain, strict=True)) < 1e-3
    assert len(lengths) > 1  # candidates of different lengths: right padding inside a batch was exercised
    # and rank_legal_moves' switch between the two paths, on the position with the fewest legal moves
    promotion = examples[1]
    cached_rank = dict(K.rank_legal_moves(model, tokenizer, promotion, batch_size=7))
    plain_rank = dict(K.rank_legal_moves(model, tokenizer, promotion, batch_size=7, reuse_prompt=False))
    assert cached_rank.keys() == plain_rank.keys()
    assert max(abs(cached_rank[m] - plain_rank[m]) for m in plain_rank) < 1e-3
    # a finished game among the positions has nothing to rank, and the others are ranked as before
    mate = chess_game.position_example("7k/6Q1/6K1/8/8/8/8/8 b - - 0 1")
    together = K.rank_many(model, tokenizer, [promotion, mate])
    assert together[1] == [] and dict(together[0]).keys() == cached_rank.keys()


@pytest.mark.slow
def test_promotions_are_scored_with_their_piece_letter_and_end_of_turn(embedded):
    model, tokenizer = embedded
    example = chess_game.position_example(PROMOTION)
    ranked = dict(K.rank_legal_moves(model, tokenizer, example))
    assert {"e7e8q", "e7e8r", "e7e8b", "e7e8n"} <= set(ranked) and "e7e8" not in ranked
    assert len({ranked[f"e7e8{p}"] for p in "qrbn"}) == 4
    assert tokenizer.decode(K.continuation_ids(tokenizer, "e7e8q")).endswith("q<end_of_turn>")
    assert ranked["e7e8q"] == pytest.approx(reference_logprob(model, tokenizer, example, "e7e8q"), abs=1e-4)


@pytest.mark.slow
def test_the_constrained_player_plays_only_legal_moves_in_a_game(embedded):
    model, tokenizer = embedded
    record = chess_game.scripted_game(["e2e4", "g1f3"], chess_game.constrained_player(model, tokenizer))
    assert (record.model_legal, record.model_illegal) == (2, 0)
    record.check()
    with pytest.raises(ValueError, match="adapter=False needs"):
        chess_game.constrained_player(model, tokenizer, adapter=False)


@pytest.mark.slow
def test_llama_cpp_held_to_the_grammar_answers_a_legal_move():
    pytest.importorskip("llama_cpp")
    from gemma_helpers import runtimes
    from gemma_helpers.models import embedded_gguf

    example = json_example()
    llm = runtimes.load_llama(embedded_gguf(), n_ctx=512)
    try:
        parsed = [K.grammar_parses(llm, K.legal_move_grammar(ex)) for ex in positions()]
        broken = K.grammar_parses(llm, 'root ::= "a"\n    | "b"\n')  # "|" opening a line ends the rule: an error
        answers = chess_game.gguf_constrained_player(llm, max_new_tokens=2)([example])  # the budget is raised
    finally:
        llm.close()
    assert parsed == [True, True, True] and broken is False
    assert answers[0] in K.answer_texts(example).values()
