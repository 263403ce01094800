"""chess_grpo: the rewards python-chess gives (legal, illegal, junk, the puzzle move, a mate, extra text, a cut-off
answer), and a GRPO round of 2 steps on a tiny model that records the reward and its parts per step.

The round uses test_train's tiny Gemma 3 (2 layers, hidden 16, LoRA) with the embedded model's real tokenizer: what
is under test (the prompts TRL samples from, the columns the rewards read, the per-step record, the time budget)
does not need the 270M.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest

from gemma_helpers import chess_grpo
from gemma_helpers.chess import ChessExample, format_position
from gemma_helpers.chess_grpo import (
    format_reward,
    legal_move_reward,
    solved_reward,
    total_reward,
    well_formed,
)

START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
MATE_FEN = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"  # a1a8 mates
TWO_MATES_FEN = "6k1/5ppp/8/8/8/8/8/RR4K1 w - - 0 1"  # a1a8 and b1b8 both mate


def rewards(func, completions, fen, move=None, kind=None, answer=None, completion_ids=None):
    n = len(completions)
    columns = {"fen": [fen] * n, "move": [move or ""] * n}
    if kind is not None:
        columns["kind"] = [kind] * n
    if answer is not None:
        columns["answer"] = [answer] * n
    return func(["prompt"] * n, completions, completion_ids=completion_ids, **columns)


def test_a_legal_move_earns_one_and_illegal_or_junk_earn_nothing():
    got = rewards(legal_move_reward, ["e2e4", "e2e5", "hello", "", "d6d6", "g1f3<end_of_turn>", "e7e5"], START)
    assert got == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # e7e5 is Black's move: not legal with White to move
    # The first UCI move counts, as chess.parse_move reads an answer: extra text around it does not matter here.
    assert rewards(legal_move_reward, ["The best move is e2e4 because", "e2e5 or e2e4"], START) == [1.0, 0.0]


def test_the_puzzle_move_or_any_mate_earns_two_more():
    assert rewards(solved_reward, ["a1a8", "a1a7", "g1f1", "x"], MATE_FEN, move="a1a8", kind="puzzle") == \
        [2.0, 0.0, 0.0, 0.0]
    # Where the puzzle mates, any mate solves it (chess.solves_puzzle), not only the reference move.
    assert rewards(solved_reward, ["b1b8", "a1a8", "b1b7"], TWO_MATES_FEN, move="a1a8", kind="puzzle") == \
        [2.0, 2.0, 0.0]
    # A "missing move" row of ChessInstruct is solved by the move that was played only, not by another mate.
    assert rewards(solved_reward, ["b1b8", "a1a8"], TWO_MATES_FEN, move="a1a8", kind="FIND_LAST_MOVE") == [0.0, 2.0]
    # No kind column: a puzzle; no reference move (a row that is no move task): nothing to solve.
    assert rewards(solved_reward, ["b1b8"], TWO_MATES_FEN, move="a1a8") == [2.0]
    assert rewards(solved_reward, ["a1a8"], MATE_FEN, move="") == [0.0]


def test_the_format_reward_wants_one_move_and_nothing_else():
    got = rewards(format_reward, ["e2e4", " e2e4\n", "e2e4.", "Move: e2e4", "e2e4 e7e5", "e2e4e7e5", "", "e9e4",
                                  "e7e8q"], START)
    assert got == [0.25, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25]  # shape only: e7e8q is illegal here, well formed
    # With the token ids TRL passes, an answer cut off before <end_of_turn> (106) or <eos> (1) is not well formed.
    ids = [[10, 11, 12, 13, 106], [10, 11, 12, 13], [10, 11, 12, 13, 1]]  # the move's tokens, then a stop
    assert rewards(format_reward, ["e2e4"] * 3, START, completion_ids=ids) == [0.25, 0.0, 0.25]
    # The shape is the reference answer's: ChessInstruct answers are JSON around the move.
    answer = '{"next best move": "g1f3"}'
    assert rewards(format_reward, ['{"next best move": "e2e4"}', "e2e4"], START, answer=answer) == [0.25, 0.0]


def test_the_parts_add_up():
    assert total_reward(MATE_FEN, "a1a8", "a1a8", ids=[1, 106]) == 3.25  # legal + solved + format
    assert total_reward(MATE_FEN, "a1a8", "a1a8 is mate") == 3.0  # extra text: no format reward
    assert total_reward(MATE_FEN, "a1a8", "g1f1") == 1.25  # legal, well formed, does not solve it
    assert total_reward(MATE_FEN, "a1a8", "g1g3") == 0.25  # well formed, illegal
    assert total_reward(MATE_FEN, "a1a8", "I resign") == 0.0
    assert well_formed("a1a8") and not well_formed("a1a8", ids=[])


def test_conversational_completions_are_read_too():
    completions = [[{"role": "assistant", "content": "e2e4"}], [{"role": "assistant", "content": "no"}]]
    assert rewards(legal_move_reward, completions, START) == [1.0, 0.0]
    with pytest.raises(TypeError):
        rewards(legal_move_reward, [3], START)
    with pytest.raises(ValueError, match="'fen' column"):
        legal_move_reward(["p"], ["e2e4"])


def test_prompts_are_the_lessons_chat_prompt_without_bos():
    ex = ChessExample(fen=START, task="Reply with the best move in UCI notation, like e2e4.",
                      prompt=format_position(START), answer="e2e4", move="e2e4", kind="puzzle")
    other = replace(ex, move="", answer="1-0", kind="FIND_FINAL_SCORE")
    rows = chess_grpo.grpo_rows([ex, other])
    assert len(rows) == 1  # a row with no reference move has nothing to reward
    from gemma_helpers.prompts import chat_prompt

    assert "<bos>" + rows[0]["prompt"] == chat_prompt(ex.conversation(with_answer=False))  # generate_answers' text
    assert {k: rows[0][k] for k in ("fen", "move", "kind", "answer")} == \
        {"fen": START, "move": "e2e4", "kind": "puzzle", "answer": "e2e4"}
    with pytest.raises(ValueError, match="no training row"):
        chess_grpo.grpo_rows([other])


def test_plot_rewards_saves_a_png(tmp_path):
    result = chess_grpo.GrpoResult(steps=3, seconds=3.0, rewards=[(1, 0.5), (2, 1.0), (3, 1.5)],
                                   parts={"legal": [(1, 0.5), (2, 0.75), (3, 1.0)], "solved": [], "format": []},
                                   prompts_per_step=2, generations=4)
    chess_grpo.plot_rewards(result, tmp_path / "rewards.png")
    assert (tmp_path / "rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = result.table()[0]
    assert (first["step"], first["reward"], first["legal"]) == (1, 0.5, 0.5) and math.isnan(first["solved"])
    with pytest.raises(ValueError, match="no rewards"):
        chess_grpo.plot_rewards(chess_grpo.GrpoResult(steps=0, seconds=0.0))


# ------------------------------------------------------------------------------------- a round on a tiny model


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("unsloth")  # on a CPU, TRL's GRPO log-probs need Unsloth's CPU path (no Triton here)
    from transformers import AutoTokenizer

    from gemma_helpers import models

    return AutoTokenizer.from_pretrained(models.embedded_model_dir())


def tiny_student(tokenizer):
    from test_train import tiny_lora_model

    from gemma_helpers.chess_lesson import Student

    return Student(tiny_lora_model(tokenizer), tokenizer, "transformers", "tiny")


def tiny_data():
    from gemma_helpers.chess import build_offline_dataset
    from gemma_helpers.chess_lesson import ChessData

    train, held_out = build_offline_dataset(train_rows=8, eval_rows=2)
    return ChessData(train, held_out, "8 puzzles")


def grpo_settings(**overrides):
    values = dict(grpo_steps=2, grpo_generations=2, grpo_learning_rate=1e-3, grpo_budget_s=None, answer_tokens=6,
                  optimizer="adamw_torch")
    return SimpleNamespace(**{**values, **overrides})


def test_a_grpo_round_records_the_reward_and_its_parts_per_step(tokenizer, tmp_path):
    student = tiny_student(tokenizer)
    result = chess_grpo.grpo_round(student, tiny_data(), grpo_settings(), tmp_path)
    assert (result.steps, result.stopped_by, result.generations, result.prompts_per_step) == (2, "steps", 2, 2)
    assert [step for step, _ in result.rewards] == [1, 2]
    for step, total in result.rewards:  # the mean reward is the sum of its parts' means
        parts = sum(dict(curve)[step] for curve in result.parts.values())
        assert total == pytest.approx(parts, abs=1e-5)
        assert 0.0 <= total <= 3.25
    assert set(result.parts) == {"legal", "solved", "format"}
    assert [h["step"] for h in result.history] == [1, 2] and "frac_reward_zero_std" in result.history[0]
    assert (tmp_path / "grpo" / "rewards.json").exists()
    assert not student.model.training
    assert 106 in student.model.generation_config.eos_token_id  # <end_of_turn> ends a sampled answer


def test_the_existing_adapter_moves_towards_the_answers_that_scored_higher(tokenizer, tmp_path, monkeypatch):
    import torch

    # The random tiny model never writes a legal move, so every chess reward is 0 and GRPO has no signal (all
    # advantages 0): an arbitrary reward that differs between answers stands in, to see the update reach the adapter.
    def arbitrary(prompts, completions, completion_ids, **kwargs):
        return [float(ids[0] % 7) for ids in completion_ids]

    monkeypatch.setattr(chess_grpo, "REWARD_FUNCS", (arbitrary,))
    student = tiny_student(tokenizer)
    before = {k: v.detach().clone() for k, v in student.model.named_parameters() if "lora_B" in k}
    assert before and all(not v.any() for v in before.values())  # PEFT starts B at zero
    result = chess_grpo.grpo_round(student, tiny_data(), grpo_settings(grpo_steps=1), tmp_path)
    assert result.steps == 1 and result.history[0]["reward_std"] > 0
    after = dict(student.model.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in before)  # weight decay alone leaves a zero B at zero


def test_a_time_budget_stops_the_round_early_and_says_so(tokenizer, tmp_path):
    result = chess_grpo.grpo_round(tiny_student(tokenizer), tiny_data(), grpo_settings(grpo_steps=5), tmp_path,
                                   time_budget_s=1e-6)  # spent during the first step
    assert (result.steps, result.stopped_by, result.time_budget_s) == (1, "time budget", 1e-6)
    assert len(result.rewards) == 1


def test_the_trainer_samples_as_gemma_recommends_and_follows_the_grpo_schedule(tokenizer, tmp_path):
    from gemma_helpers.train import SCHEDULES

    trainer = chess_grpo.grpo_trainer(tiny_student(tokenizer), chess_grpo.grpo_rows(tiny_data().train),
                                      grpo_settings(grpo_steps=30, grpo_generations=4), tmp_path, prompts_per_step=3)
    args = trainer.args
    assert (args.temperature, args.top_k, args.top_p) == (1.0, 64, 0.95)
    assert (args.num_generations, args.per_device_train_batch_size, args.generation_batch_size) == (4, 12, 12)
    assert (args.max_completion_length, args.beta, args.loss_type) == (6, 0.0, "dapo")
    grpo = SCHEDULES["grpo"]
    assert (args.lr_scheduler_type, args.warmup_steps, args.weight_decay, args.max_grad_norm) == \
        (grpo.scheduler, 3, grpo.weight_decay, grpo.max_grad_norm)
    # full mode's optimizer, on the CPU as on a T4: bitsandbytes' 8-bit AdamW, not a silent swap to torch's
    eight = chess_grpo.grpo_trainer(tiny_student(tokenizer), chess_grpo.grpo_rows(tiny_data().train),
                                    grpo_settings(optimizer="adamw_8bit"), tmp_path)
    built = eight.create_optimizer()
    assert type(built).__module__.startswith("bitsandbytes.") and built.args.optim_bits == 8


def test_the_lesson_step_measures_the_same_positions_before_and_after_the_round(tokenizer, tmp_path):
    from gemma_helpers import chess_lesson

    student, data = tiny_student(tokenizer), tiny_data()
    settings = SimpleNamespace(**vars(grpo_settings(grpo_steps=1)), eval_budget_s=None)
    before = chess_lesson.evaluate(student, data, settings, positions=1)
    reinforced = chess_lesson.reinforce(student, data, settings, tmp_path, before)
    assert reinforced.grpo.steps == 1 and reinforced.before is before
    assert reinforced.after.n == before.n == 1
    rows = reinforced.table(data)
    assert [r["model, answers"] for r in rows] == [chess_lesson.ROUND_BEFORE, chess_lesson.ROUND_AFTER,
                                                   chess_lesson.CHANCE]  # chance on the same position
    assert all(r["positions"] == 1 for r in rows)
