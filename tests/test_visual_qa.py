"""The vision benchmarks: each asked with its own prompt and budget (lmms-eval's chartqa, docvqa_val,
mathvista_testmini), MathVista's answer read out of a worked solution, ANLS, and loaders that fetch one split."""

import pytest

from gemma_helpers import charts, env, visual_qa
from gemma_helpers.visual_qa import VQAItem, anls, extract_choice, extract_number, levenshtein, mathvista_correct

# ------------------------------------------------------------------------------------------------ metrics


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
    assert extract_choice("**C**", choices) == "7"
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
    assert mathvista_correct("There are 7 dots.", integer) and not mathvista_correct("8", integer)
    assert mathvista_correct("7.5", integer)  # lmms-eval's normalization: str(int(float("7.5"))) == "7"
    floats = VQAItem(None, "q", "22.5", answer_type="float", precision=1)
    assert mathvista_correct("22.50", floats) and not mathvista_correct("22.6", floats)
    two = VQAItem(None, "q", "1.50", answer_type="float", precision=2)
    assert mathvista_correct("The ratio is 1.5", two)  # compared as numbers, not as the strings "1.5" and "1.50"
    listed = VQAItem(None, "q", "[3, 5, 2]", answer_type="list")
    assert mathvista_correct("Reading the bars: 3, 5 and 2.\nAnswer: [3, 5, 2]", listed)
    assert not mathvista_correct("Answer: [3, 2, 5]", listed)


def test_the_answer_is_read_from_the_end_of_a_worked_solution():
    """MathVista's prompt asks for a solution with the answer at the end; the answer, not the first line or the first
    number, is scored."""
    angle = VQAItem(None, "q", "60", answer_type="integer")
    worked = "The angles of a triangle add up to 180.\nSo x = 180 - 70 - 50 = 60"
    assert visual_qa.mathvista_extract(worked, angle) == "60" and mathvista_correct(worked, angle)
    assert visual_qa.mathvista_extract("x = 180 - 120.\nThe answer is 60 degrees.", angle) == "60 degrees"
    assert mathvista_correct("x = 180 - 120.\nThe answer is 60 degrees.", angle)
    assert mathvista_correct("We get $\\boxed{60}$.", angle)
    assert not mathvista_correct("The first angle is 60... no: the answer is 70.", angle)
    fruit = VQAItem(None, "q", "pear", choices=("apple", "pear", "plum"), answer_type="text")
    reply = "The apple bar reaches 4, the pear bar 7 and the plum bar 5.\nThe correct option is (B)."
    assert visual_qa.final_answer("MathVista", fruit, reply) == "pear" and mathvista_correct(reply, fruit)
    assert visual_qa.final_answer("MathVista", fruit, "I cannot tell.") == ""


# ------------------------------------------------------------------------------------------------ prompts and budgets


def test_each_benchmark_gets_its_own_prompt():
    chart, doc = visual_qa.load_items("ChartQA", 1, image_size=64)[0], visual_qa.synthetic_documents(1, size=64)[0]
    assert visual_qa.prompt_for("ChartQA", chart) == chart.question + charts.CHARTQA_INSTRUCTION
    assert visual_qa.prompt_for("DocVQA", doc) == doc.question + "\nAnswer the question using a single word or phrase."
    item = VQAItem(None, "Which bar is tallest?", "pear", qtype="multi_choice", choices=("apple", "pear"),
                   answer_type="text")
    assert visual_qa.prompt_for("MathVista", item) == (  # lmms-eval's create_one_query, shot_type "solution"
        "Question: Which bar is tallest?\nChoices:\n(A) apple\n(B) pear\n"
        "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
        "Solution:")
    ratio = VQAItem(None, "What is the ratio?", "1.25", answer_type="float", precision=2, unit="cm")
    assert visual_qa.prompt_for("MathVista", ratio) == (
        "Question: What is the ratio? (Unit: cm)\nHint: Please answer the question requiring a floating-point number "
        "with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.\nSolution:")
    with pytest.raises(ValueError, match="benchmark"):
        visual_qa.prompt_for("VQAv2", doc)


def test_budgets_are_lmms_evals_per_benchmark():
    full = env.build_config(env.FULL, has_cuda=True, scale=1.0).bench
    assert [full.max_new_tokens(b) for b in visual_qa.VISION_BENCHMARKS] == [16, 32, 1024]
    rehearsal = env.build_config(env.FULL, has_cuda=False, scale=0.05).bench
    assert full.vision_load_in_4bit and rehearsal.vision_load_in_4bit  # NF4 on the CPU too: bitsandbytes 0.50 runs it
    smoke = env.build_config(env.SMOKE).bench
    assert all(smoke.max_new_tokens(b) <= 8 for b in visual_qa.VISION_BENCHMARKS)  # the tiny stand-in: keep it quick
    with pytest.raises(ValueError, match="benchmark"):
        full.max_new_tokens("VQAv2")


def test_evaluate_asks_each_benchmark_its_own_way(monkeypatch):
    seen = {}

    def fake_generate(model, processor, images, prompts, max_new_tokens, batch_size=8):
        seen["prompts"], seen["budget"] = list(prompts), max_new_tokens
        return ["Step one.\nStep two.\nThe answer is 7."] * len(prompts)

    monkeypatch.setattr(visual_qa, "generate_replies", fake_generate)
    items = [VQAItem(None, "How many dots?", "7", qtype="free_form", answer_type="integer")]
    run = visual_qa.evaluate(None, None, "MathVista", items, 1024)
    assert seen["budget"] == 1024 and seen["prompts"][0].endswith("Solution:")
    assert run["answers"] == ["7"] and run["scores"] == [1.0]  # the answer at the end, not the first line
    docs = [VQAItem(None, "Who?", "Acme Ltd", ("Acme Ltd",))]
    visual_qa.evaluate(None, None, "DocVQA", docs, 32)
    assert seen["prompts"] == ["Who?\nAnswer the question using a single word or phrase."] and seen["budget"] == 32


def test_generate_replies_on_the_tiny_stand_in():
    from gemma_helpers import vision, vision_standin

    model, processor = vision.load_vision_model(env.TINY_VISION)
    items = visual_qa.synthetic_math(3, size=vision_standin.TINY_IMAGE)
    prompts = [visual_qa.prompt_for("MathVista", item) for item in items]
    processor.tokenizer.padding_side = "right"
    replies = visual_qa.generate_replies(model, processor, [i.image for i in items], prompts, max_new_tokens=5,
                                         batch_size=2)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert all(len(processor.tokenizer(r, add_special_tokens=False)["input_ids"]) <= 6 for r in replies)
    assert processor.tokenizer.padding_side == "right"  # left only while generating: training pads on the right


# ------------------------------------------------------------------------------------------------ data


def test_offline_items_are_seeded_and_answerable():
    docs = visual_qa.synthetic_documents(4, seed=1, size=224)
    assert [d.answer for d in docs] == [d.answer for d in visual_qa.synthetic_documents(4, seed=1, size=224)]
    assert all(d.image.size == (224, 224) and d.answer in d.answers for d in docs)
    maths = visual_qa.synthetic_math(6, seed=0)
    assert [m.answer_type for m in maths[:3]] == ["integer", "integer", "float"]
    assert maths[1].choices and maths[1].answer in maths[1].choices
    assert "Choices:\n(A)" in visual_qa.prompt_for("MathVista", maths[1])
    assert all(mathvista_correct(m.answer, m) for m in maths)


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


def test_hub_loaders_fetch_one_split(monkeypatch):
    """MathVista reads only its testmini file (not the 744 MB test split); DocVQA streams its validation split."""
    import datasets
    from PIL import Image

    calls = []
    picture = Image.new("RGB", (4, 4))
    math_row = {"pid": "1", "question": "How many?", "decoded_image": picture, "choices": None, "unit": None,
                "precision": None, "answer": "3", "question_type": "free_form", "answer_type": "integer"}

    class Rows(list):
        def shuffle(self, seed=None, buffer_size=None):
            return self

        def select(self, indices):
            return Rows(self[i] for i in indices)

        def take(self, n):
            return Rows(self[:n])

    def fake_load_dataset(path, *args, **kwargs):
        calls.append((path, args, kwargs))
        if path == visual_qa.MATHVISTA:
            return Rows([math_row] * 4)
        return Rows([{"image": picture, "question": "Who?", "answers": ["Acme", "ACME"]}] * 4)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    maths = visual_qa.load_items("MathVista", 2, "hub")
    docs = visual_qa.load_items("DocVQA", 2, "hub")
    assert calls[0] == ("AI4Math/MathVista", (), {"data_files": {"testmini": "data/testmini-*.parquet"},
                                                  "split": "testmini", "verification_mode": "no_checks"})
    assert calls[1] == ("lmms-lab/DocVQA", ("DocVQA",), {"split": "validation", "streaming": True})
    assert len(maths) == 2 and maths[0].question == "How many?" and maths[0].unit == ""
    assert docs[0].answers == ("Acme", "ACME")


def test_chance_is_one_over_the_choices_and_open_answers_have_none():
    two = VQAItem(None, "q", "pear", qtype="multi_choice", choices=("apple", "pear"))
    four = VQAItem(None, "q", "5", qtype="multi_choice", choices=("5", "6", "7", "8"))
    free = VQAItem(None, "q", "60", qtype="free_form", answer_type="integer")
    assert visual_qa.chance_level("MathVista", [two, four]) == (pytest.approx((1 / 2 + 1 / 4) / 2), "")
    level, why = visual_qa.chance_level("MathVista", [two, free])
    assert level is None and "1 of 2 items are open answers" in why and "50% by chance" in why
    assert visual_qa.chance_level("DocVQA", [free]) == (None, "no chance level: open answer")
