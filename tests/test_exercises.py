"""The notebooks' exercises: reference answers accepted, typical mistakes rejected with a hint that keeps the answer."""

import math
import re
import runpy
from pathlib import Path

import pytest

from gemma_helpers import exercises
from gemma_helpers.exercises import ANSWERS_ENV, EXERCISES, ExerciseAnswerError

ANSWERS_PATH = Path(__file__).with_name("exercise_answers.py")
ANSWERS = runpy.run_path(str(ANSWERS_PATH))
REF_CHAT = ANSWERS["CHAT_PROMPT_TWO_TURNS"]
REF_STOPS = ANSWERS["OLLAMA_STOP_LINES"]
_KV_PER_TOKEN = 2 * 4 * 256 * 2  # K and V x 4 KV heads x head size 256 x 2 bytes (Gemma 3 4B)

# exercise -> (typical wrong answers with a fragment of the hint each must get, strings that would give it away)
WRONG = {
    "kv_cache_4b_32k": ([(34 * 32768 * _KV_PER_TOKEN / 1e9, "every layer the whole context"),
                         (1.585, "factor of about 2"), (0.396, "both K and V"), (0.738, "GiB"),
                         (34 * 1024 * _KV_PER_TOKEN / 1e9, "every sixth layer is global"),
                         (2 * 792_723_456, "(read as bytes) too large by a factor of about 2"),
                         (3.0, "too large. Per layer"), ("lots", "give a number")],
                        ["0.79", "792", "793"]),
    "chat_prompt_two_turns": ([(REF_CHAT.removeprefix("<bos>"), "<bos> comes once"),
                               (REF_CHAT.replace("user\nAnswer in one word.\n\n", "system\nAnswer in one word."
                                                 "<end_of_turn>\n<start_of_turn>user\n"), "not a turn"),
                               (REF_CHAT.replace("model\nParis", "assistant\nParis"), "'assistant'"),
                               (REF_CHAT.removesuffix("<start_of_turn>model\n"), "opening the model's turn"),
                               (REF_CHAT.replace("\n\n", "\n"), "only spaces or newlines differ"),
                               (REF_CHAT.replace("\n", "\\n"), "backslash"),
                               (REF_CHAT.replace("Italy", "Spain"), "first goes wrong at character 145"),
                               (42, "one Python string")],
                              [REF_CHAT]),
    "v100_dtype": ([("bfloat16", "no bfloat16 arithmetic"), ("torch.float16", "65,504"), ("fp16", "65,504"),
                    ("int8", "floating-point dtype")],
                   ["float32", "fp32"]),
    "phone_6gb_quants": ([({"270m": "q4_k_m", "1b": "q4_k_m", "4b": "q4_k_m"}, "more bits per weight fits too"),
                          ({"270m": "q4_k_m", "1b": "q4_k_m", "4b": "q4_k_m"}, "vision tower"),
                          ({"270m": "q8_0", "1b": "q8_0", "4b": "q8_0"}, "keep about half"),
                          ({"270M": None, "1B": "q4_k_m", "4B": "q4_k_m"}, "270M: at least one of the formats fits"),
                          ({"270m": "q2_k", "1b": "q4_k_m", "4b": "q4_k_m"}, "not one of the formats"),
                          ({"270m": "q4_k_m"}, "exactly the sizes"), (["bf16"], "answer with a dict")],
                         ["bf16", "None"]),
    "kl_by_hand": ([(0.3923, "KL(Q || P)"), (0.4878, "bits"), (0.5660, "KL(Q || P), and in bits"),
                    (0.1468, "base 10"), (-0.3381, "never negative"), (-1.674, "weighted by P(x)"),
                    (0.9509, "cross-entropy"), (0.2, "too small"), ("a lot", "one number")],
                   ["0.338", "0.34"]),
    "ollama_stop_lines": ([('PARAMETER stop "<end_of_turn>"', "end-of-sequence token (id 1)"),
                           ('PARAMETER stop "<eos>"', "closes every reply"), ([1, 106], "not its id"),
                           ('PARAMETER stop "<|eot_id|>"', "Llama 3"), (REF_STOPS.replace('"', ""), "quote each"),
                           (["<eos>", "<end_of_turn>"], "as a Modelfile line"),
                           (REF_STOPS + '\nPARAMETER stop "<start_of_turn>"', "opens a turn"),
                           (REF_STOPS.replace('"<end_of_turn>"', '"end_of_turn"'), "angle brackets"),
                           (REF_STOPS.replace("\n", " "), "one PARAMETER stop line per"), (42, "one string")],
                          ["<eos>", "<end_of_turn>"]),
    "decode_bound_4b_t4": ([(16.04, "factor of 8"), (64.1, "factor of 2"), (0.0078, "seconds per token"),
                            (7.79, "milliseconds per token"), (798.2, "not their product"), (0.128, "factor of 1,000"),
                            (119.5, "GiB"), (200, "too large: each"), (50, "too small: each"), ("fast", "positive")],
                           ["128"]),
    "chartqa_relaxed_accuracy": ([(4 / 7, "not of the prediction"), (5 / 7, "not 5 units"), (2 / 7, "lower-casing"),
                                  (1 / 7, "not compared as text"), (1.0, "too high: some"), (0.0, "too low: some"),
                                  (3, "not a count"), ("43%", "fraction")],
                                 ["0.429", "0.43", "3/7", "3 of 7", "42.9"]),
    "qlora_rank_64_extra_gb": ([(0.462, "factor of 4"), (0.924, "factor of 2"), (0.231, "factor of 8"),
                                (1.4305, "vision tower"), (8.417, "whole plan"), (2.464, "subtract"), (1.721, "GiB"),
                                (2 * 1.848e9, "(read as bytes) too large"), (5.0, "too large: only the LoRA part"),
                                ("more", "give a number")],
                               ["1.85", "1.848", "1.8"]),
    "legal_rate": ([(5 / 7, "too high"), (1.0, "too high"), (3 / 7, "too low"), (4, "not a count"),
                    ("57%", "fraction")],
                   ["0.571", "0.57", "57", "4/7", "4 of 7", "4 out of 7"]),
    "promotion_uci": ([("a7a8", "fifth letter"), ("a8=Q", "SAN"), ("Qa8", "SAN"), ("a7a8Q", "lower case"),
                       ("a7a8n", "another piece"), ("e2e4", "not legal here"), ("queen!", "in UCI")],
                      ["a7a8q"]),
    "wilson_27_of_40": ([((0.5298, 0.8202), "Wald"), ((53.0, 82.0), "Wald"), ((0.80, 0.52), "lower bound first"),
                         ((0.70, 0.90), "must contain"), ((0.60, 0.74), "too narrow"), ((0.50, 0.85), "not quite"),
                         (0.5, "two numbers")],
                        ["0.520", "0.52", "0.799", "0.80", "52.0", "79.9"]),
    "anls_invoice": ([(0.6875, "ignores case"), (0.25, "1 - NL"), (2 / 3, "longer string"), (0.375, "not the mean"),
                      (0.5, "mind the threshold"), (0.0, "not the worst"), (0.9, "per reference answer"),
                      (2, "between 0 and 1")],
                     ["0.75", "75"]),
    "grad_accum_two_t4": ([(8, "global batch doubled"), (16, "the other way round"), (2, "per-device batch x processes"),
                           (2.5, "whole number"), (0, "whole number"), ("many", "whole number")],
                          []),
    "strategies_27b_two_t4": ([(["DDP", "FSDP"], "whole copy"), (["one GPU"], "GB per GPU"),
                               (["FSDP"], "2 strategies that fit missing"), (["ZeRO-3"], "not a name"),
                               ("FSDP", "list of strategy names")],
                              []),
}


def check(name):
    return EXERCISES[name][1]


@pytest.fixture(autouse=True)
def no_answer_file(monkeypatch):
    monkeypatch.delenv(ANSWERS_ENV, raising=False)


def test_every_notebook_has_two_or_three_exercises_and_every_exercise_an_answer_and_tests():
    per_notebook = {}
    for name, (notebook, function) in EXERCISES.items():
        per_notebook[notebook] = per_notebook.get(notebook, 0) + 1
        assert function.__name__ == f"check_{name}" and function.__doc__
    assert per_notebook == {"00": 3, "01": 2, "02": 2, "03": 2, "04": 2, "05": 2, "06": 2}
    assert set(WRONG) == set(EXERCISES)
    assert {name.upper() for name in EXERCISES} == {k for k in ANSWERS if k.isupper()}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_reference_answer_is_right(name, capsys):
    assert check(name)(ANSWERS[name.upper()]) is True
    assert capsys.readouterr().out.startswith("Right! ")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_typical_wrong_answers_get_their_hint_and_not_the_answer(name, capsys):
    answers, giveaways = WRONG[name]
    for answer, hint in answers:
        assert check(name)(answer) is False, answer
        out = capsys.readouterr().out
        assert out.startswith("Not yet: "), out
        assert hint in out, (answer, out)
        for secret in giveaways:  # a string the learner did not write must not appear in the message
            assert secret in str(answer) or secret not in out, (answer, secret, out)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_no_answer_gives_a_hint_and_false(name, capsys):
    assert check(name)(None) is False
    out = capsys.readouterr().out
    assert out.startswith("No answer yet") and "Hint:" in out
    assert not any(secret in out for secret in WRONG[name][1])


def test_the_literal_answers_are_what_the_package_computes():
    from gemma_helpers import charts, chess, memory, prompts, scores, speed, visual_qa

    assert ANSWERS["KV_CACHE_4B_32K"] == memory.kv_cache_bytes("4b", 32768) / 1e9
    assert REF_CHAT == prompts.chat_prompt(exercises.CHAT_CONVERSATION)
    assert math.isclose(ANSWERS["KL_BY_HAND"], sum(p * math.log(p / q) for p, q in
                                                   zip(exercises.KL_P, exercises.KL_Q, strict=True)), rel_tol=1e-4)
    examples = [chess.ChessExample(fen, "", "", "", "", "game") for fen, _ in exercises.LEGAL_RATE_CASES]
    assert chess.score(examples, [a for _, a in exercises.LEGAL_RATE_CASES]).legal_rate == ANSWERS["LEGAL_RATE"]
    low, high = scores.wilson_interval(27, 40)
    assert (round(low, 4), round(high, 4)) == ANSWERS["WILSON_27_OF_40"]
    assert visual_qa.anls(exercises.ANLS_PREDICTION, exercises.ANLS_ANSWERS) == ANSWERS["ANLS_INVOICE"]
    assert REF_STOPS.splitlines() == [line for line in prompts.ollama_parameters() if line.startswith("PARAMETER stop")]
    weights = memory.plan_memory("4b", "q4_k_m", include_vision=False).weights_gb * 1e9
    assert math.isclose(ANSWERS["DECODE_BOUND_4B_T4"], speed.bandwidth_bound(weights, 320.0), rel_tol=1e-5)
    assert speed.gpu_spec_bandwidth("Tesla T4") == 320.0
    predictions, targets = zip(*exercises.RELAXED_CASES, strict=True)
    assert charts.mean_relaxed_accuracy(predictions, targets) == ANSWERS["CHARTQA_RELAXED_ACCURACY"]
    extra = memory.plan_lora_memory("4b", "4bit", lora_r=64).total_gb - memory.plan_lora_memory("4b", "4bit").total_gb
    assert math.isclose(ANSWERS["QLORA_RANK_64_EXTRA_GB"], extra, rel_tol=1e-9)


def test_the_answer_file_fills_in_none_from_any_working_directory(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ANSWERS_ENV, "tests/exercise_answers.py")  # relative to the repository root
    assert all(function(None) for _, function in EXERCISES.values())
    assert capsys.readouterr().out.count("Right! ") == len(EXERCISES)
    assert exercises.check_legal_rate(0.9) is False  # a learner's own answer still counts when given


def test_a_missing_or_rejected_file_answer_raises(monkeypatch, tmp_path):
    bad = tmp_path / "answers.py"
    bad.write_text("LEGAL_RATE = 0.9\n")
    monkeypatch.setenv(ANSWERS_ENV, str(bad))
    with pytest.raises(ExerciseAnswerError, match="rejected"):
        exercises.check_legal_rate(None)
    with pytest.raises(ExerciseAnswerError, match="has no PROMOTION_UCI"):
        exercises.check_promotion_uci(None)
    monkeypatch.setenv(ANSWERS_ENV, str(tmp_path / "nowhere.py"))
    with pytest.raises(ExerciseAnswerError, match="no such file"):
        exercises.check_legal_rate(None)


# Text that may stay English in a Chinese message: `code`, and quoted strings (a learner's answer echoed, a token).
_CODE_OR_QUOTED = re.compile(r"`[^`]*`|'[^'\n]*'|\"[^\"\n]*\"")
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'-]*(?:[ ,;:.]+[A-Za-z][A-Za-z'-]*){3,}")  # four or more English words


def _english_sentences(text):
    return _ENGLISH_RUN.findall(_CODE_OR_QUOTED.sub(" ", text))


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_message_answers_in_chinese_under_gemma_lang_zh(name, monkeypatch, capsys):
    answers, _ = WRONG[name]
    cases = [(answer, False) for answer, _ in answers] + [(None, False), (ANSWERS[name.upper()], True)]
    for answer, right in cases:
        monkeypatch.delenv(exercises.LANG_ENV, raising=False)
        assert check(name)(answer) is right
        english = capsys.readouterr().out
        monkeypatch.setenv(exercises.LANG_ENV, "zh")
        assert check(name)(answer) is right
        chinese = capsys.readouterr().out
        assert chinese.startswith(("还没有答案", "正确！", "还不对：")), chinese
        assert re.search(r"[\u4e00-\u9fff]", chinese), chinese
        assert "英文" not in chinese, chinese  # no "(in English)" caveat: the hints are Chinese now
        assert _english_sentences(chinese) == [], (answer, chinese)
        for sentence in _english_sentences(english):
            assert sentence not in chinese, (answer, sentence, chinese)
        for secret in WRONG[name][1]:  # a Chinese hint gives away no more than the English one
            assert secret in english or secret in str(answer) or secret not in chinese, (answer, secret, chinese)


def test_the_06_answers_are_what_the_lesson_and_the_planner_compute():
    from types import SimpleNamespace

    from gemma_helpers import multigpu_lesson, multigpu_plan

    one_t4 = SimpleNamespace(per_device_batch=exercises.ONE_GPU_BATCH)
    # the lesson's own rule: the global batch of a run, kept on another process count (same per-device batch)
    assert exercises.ONE_GPU_BATCH * exercises.ONE_GPU_ACCUM == multigpu_lesson.global_batch(one_t4, 1) * 8
    assert multigpu_lesson.grad_accum(one_t4, 2, 8) == ANSWERS["GRAD_ACCUM_TWO_T4"]
    fits = [p.strategy for p in multigpu_plan.plan_strategies("27b", "qlora", "2x T4 (Kaggle)") if p.fits]
    assert fits == ANSWERS["STRATEGIES_27B_TWO_T4"]
