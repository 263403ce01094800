"""Questions about images, asked and scored the way the reference evaluations do: ChartQA, DocVQA and MathVista.

Each benchmark keeps its own prompt, new-token budget and answer check, as lmms-eval's task definitions set them
(github.com/EvolvingLMMs-Lab/lmms-eval, ``lmms_eval/tasks``), so that a number measured here compares with the
Gemma 3 report's:

* **ChartQA** (``chartqa/chartqa.yaml``): the question, then ChartQA's one-line instruction
  (:data:`gemma_helpers.charts.CHARTQA_INSTRUCTION`); greedy, 16 new tokens; the whole reply scored by relaxed
  accuracy (numbers within 5%, text exact; :mod:`gemma_helpers.charts`).
* **DocVQA** (``docvqa/docvqa_val.yaml`` with ``_default_template_docvqa_yaml``): the question, then
  "Answer the question using a single word or phrase."; greedy, 32 new tokens; the reply scored by **ANLS**
  (Biten et al., 2019): per question, the best over the reference answers of ``1 - NL``, NL the Levenshtein distance
  divided by the longer string's length (case-insensitive, spaces collapsed), and 0 when NL reaches 0.5.
* **MathVista** (``mathvista/mathvista_testmini_solution.yaml``, built by ``MathVistaEvaluator.create_one_query``
  with shot type "solution", 0-shot): question, unit, lettered choices, a hint asking for the answer *at the end*,
  then "Solution:"; greedy, 1024 new tokens, so the model works the problem out before it answers. lmms-eval then
  asks an LLM (GPT) to pull the answer out of the solution; here rules do it (:func:`mathvista_extract`), then
  lmms-eval's normalization: an option letter becomes the option's text, an integer is cut to ``int``, a float is
  rounded to the question's precision.

Offline stand-ins (rendered invoices, drawn math problems) have exact answers and go through the same prompts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import charts, vision
from .charts import CHARTQA_INSTRUCTION, relaxed_accuracy
from .sources import announce_dataset

ANLS_THRESHOLD = 0.5
DOCVQA_INSTRUCTION = "\nAnswer the question using a single word or phrase."  # lmms-eval docvqa, default post_prompt


@dataclass(frozen=True)
class VQAItem:
    """One question about an image: the question, the answer(s), and for MathVista its kind, choices and unit."""

    image: Any  # PIL.Image.Image
    question: str
    answer: str
    answers: tuple[str, ...] = ()
    qtype: str = ""  # MathVista: "multi_choice" or "free_form"
    choices: tuple[str, ...] = ()
    answer_type: str = "text"  # MathVista: integer, float, text, list
    precision: int | None = None
    source: str = "synthetic"
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ ANLS


def levenshtein(a: str, b: str) -> int:
    """Edit distance: insertions, deletions and substitutions, each costing 1."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str, answers: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """ANLS of one prediction against its reference answers (the best match counts)."""
    if not answers:
        raise ValueError("a question needs at least one reference answer")
    pred = " ".join(str(prediction).lower().split())
    best = 0.0
    for answer in answers:
        ref = " ".join(str(answer).lower().split())
        longest = max(len(pred), len(ref))
        nl = levenshtein(pred, ref) / longest if longest else 0.0
        best = max(best, 1.0 - nl if nl < threshold else 0.0)
    return best


# ------------------------------------------------------------------------------------------------ MathVista

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
# Where a worked solution states its result: "The answer is 12", "Final answer: (B)", "the correct option is C".
_ANSWER_CUE = re.compile(r"(?i)\b(?:answer|option(?: letter)?)\s*(?:is\s*:?|:|=)\s*")
_DECIMALS = {1: ("one decimal place", "1.2, 1.3, 1.4"), 2: ("two decimal places", "1.23, 1.34, 1.45")}


def mathvista_prompt(question: str, choices: Sequence[str] = (), answer_type: str = "integer",
                     precision: int | None = None, unit: str = "") -> str:
    """lmms-eval's 0-shot "solution" query for MathVista: question (and unit), lettered choices, the hint that asks
    for the answer at the end, and "Solution:" (``MathVistaEvaluator.create_one_query``, shot_type="solution")."""
    lines = [f"Question: {question}" + (f" (Unit: {unit})" if unit else "")]
    if choices:
        lines.append("Choices:\n" + "\n".join(f"({letter}) {c}" for letter, c in zip("ABCDEFGHIJ", choices,
                                                                                          strict=False)))
        hint = "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
    elif answer_type == "float":
        digits = int(precision or 1)
        words, examples = _DECIMALS.get(digits, (f"{digits} decimal places", "1.2, 1.3, 1.4"))
        hint = (f"Please answer the question requiring a floating-point number with {words} and provide the final "
                f"value, e.g., {examples}, at the end.")
    elif answer_type == "list":
        hint = ("Please answer the question requiring a Python list as an answer and provide the final list, "
                "e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.")
    else:
        hint = ("Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, "
                "at the end.")
    return "\n".join([*lines, f"Hint: {hint}", "Solution:"])


def extract_choice(response: str, choices: Sequence[str]) -> str | None:
    """The option a reply picks: '(B)', 'B', 'B.', 'Answer: B', 'option B', or an option's text; None if unclear."""
    text = response.strip().strip("*").strip()
    letters = "ABCDEFGHIJ"[:len(choices)]
    for pattern in (rf"^\(?([{letters}])\)?[.:)]?$", rf"\(([{letters}])\)",
                    rf"(?i:answer|option)\s*(?:is|:)?\s*\(?([{letters}])\b", rf"^([{letters}])[.:)]\s"):
        match = re.search(pattern, text)
        if match:
            return choices[letters.index(match.group(1).upper())]
    norm = " ".join(text.lower().split()).rstrip(".")
    exact = [c for c in choices if " ".join(str(c).lower().split()) == norm]
    if exact:
        return exact[0]
    inside = [c for c in choices if re.search(rf"(?<![\w.]){re.escape(str(c).lower())}(?![\w.])", norm)]
    return inside[0] if len(inside) == 1 else None


def extract_number(response: str) -> float | None:
    """The last number in a reply ('1,234' -> 1234.0), or None."""
    found = _NUMBER.findall(response)
    return float(found[-1].replace(",", "")) if found else None


def mathvista_extract(response: str, item: VQAItem) -> str:
    """The final answer a worked solution states, as text: the whole reply when it is a bare answer, else the last
    ``\\boxed{..}``, else what follows the last "answer is" / "Answer:" / "option is" (to the end of its line), else
    the reply's last line. A rule-based stand-in for lmms-eval's GPT extractor, which sees the same reply."""
    text = response.strip()
    bare = text.rstrip(".").strip()
    if not text or bare in item.choices or _NUMBER.fullmatch(bare):
        return bare
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        return boxed[-1].strip()
    cues = list(_ANSWER_CUE.finditer(text))
    if cues:
        span = text[cues[-1].end():].split("\n")[0]
    elif item.answer_type in ("integer", "float") and not item.choices:
        span = (_NUMBER.findall(text) or [""])[-1]  # "... = 180 - 70 - 50 = 60": the result comes last
    else:
        span = text.splitlines()[-1]
    return span.strip().strip("*").strip().rstrip(".").strip()


def mathvista_normalize(extraction: str, item: VQAItem) -> str | None:
    """lmms-eval's ``normalize_extracted_answer``: choice questions -> the chosen option's text; integers ->
    ``str(int(x))`` (7.5 becomes 7, as there); floats -> rounded to the question's precision; lists -> the numbers.
    None when nothing fits (lmms-eval would take the option nearest by edit distance; we count it wrong)."""
    if item.choices:
        return extract_choice(extraction, item.choices)
    numbers = [float(x.replace(",", "")) for x in _NUMBER.findall(extraction)]
    if item.answer_type == "integer":
        return str(int(numbers[0])) if numbers else None
    if item.answer_type == "float":
        return str(round(numbers[0], int(item.precision or 1))) if numbers else None
    if item.answer_type == "list":
        return str(numbers) if numbers else None
    return " ".join(extraction.lower().split()) or None


def mathvista_correct(response: str, item: VQAItem) -> bool:
    """Whether a reply answers a MathVista item: its extracted, normalized answer equals the reference (numbers
    compared as numbers, so "1.50" and "1.5" agree)."""
    got = mathvista_normalize(mathvista_extract(response, item), item)
    if got is None:
        return False
    if item.choices:
        return got == item.answer
    if item.answer_type == "integer":
        return float(got) == float(item.answer)
    if item.answer_type == "float":
        return float(got) == round(float(item.answer), int(item.precision or 1))
    if item.answer_type == "list":
        return got == str([float(x.replace(",", "")) for x in _NUMBER.findall(item.answer)])
    return got == " ".join(item.answer.lower().split())


# ------------------------------------------------------------------------------------------------ offline stand-ins

DRAW_SIZE = 448  # pictures are drawn at this size, then resized to the size asked for
_NAMES = ["Acme Ltd", "Blue Harbor Inc", "Nordlicht GmbH", "Sakura Trading", "Atlas Foods", "Kite & Co"]
_ITEMS = ["Paper A4", "Toner", "Desk lamp", "USB cable", "Stapler", "Notebook"]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def synthetic_documents(n: int, seed: int = 0, size: int = 448) -> list[VQAItem]:
    """n rendered invoices, one question each (number, date, customer, total, a line's price) with the exact answer."""
    from PIL import Image, ImageDraw

    rng = random.Random(10_000 + seed)
    items = []
    final, size = size, DRAW_SIZE  # draw at DRAW_SIZE, hand out at the size asked for
    for _ in range(n):
        number, customer = str(rng.randint(1000, 99999)), rng.choice(_NAMES)
        date = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        lines = [(name, rng.randint(2, 400) + rng.choice([0, 0.5, 0.99])) for name in rng.sample(_ITEMS, 3)]
        total = sum(price for _, price in lines)
        image = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(image)
        draw.text((24, 20), "INVOICE", fill="black", font=_font(30))
        y = 70
        for label, value in (("Invoice number:", number), ("Date:", date), ("Customer:", customer)):
            draw.text((24, y), f"{label} {value}", fill="black", font=_font(18))
            y += 28
        y += 12
        for name, price in lines:
            draw.text((24, y), name, fill="black", font=_font(18))
            draw.text((size - 140, y), f"${price:,.2f}", fill="black", font=_font(18))
            y += 26
        draw.line((24, y + 6, size - 24, y + 6), fill="black", width=2)
        draw.text((24, y + 16), "Total", fill="black", font=_font(20))
        draw.text((size - 140, y + 16), f"${total:,.2f}", fill="black", font=_font(20))
        name, price = rng.choice(lines)
        question, answer = rng.choice([("What is the invoice number?", number), ("What is the invoice date?", date),
                                       ("Who is the customer?", customer), ("What is the total?", f"${total:,.2f}"),
                                       (f"What is the price of the {name.lower()}?", f"${price:,.2f}")])
        image = image if final == size else image.resize((final, final))
        items.append(VQAItem(image, question, answer, (answer, answer.lstrip("$")), "document"))
    return items


def synthetic_math(n: int, seed: int = 0, size: int = 448) -> list[VQAItem]:
    """n drawn math problems with exact answers, in rotation: counting dots (integer), a right triangle's hypotenuse
    (multiple choice), a rectangle's area (float, one decimal)."""
    from PIL import Image, ImageDraw

    rng = random.Random(20_000 + seed)
    items = []
    final, size = size, DRAW_SIZE  # draw at DRAW_SIZE, hand out at the size asked for
    for i in range(n):
        image = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(image)
        if i % 3 == 0:
            k = rng.randint(3, 9)
            for _ in range(k):
                x, y = rng.randint(30, size - 60), rng.randint(30, size - 60)
                draw.ellipse((x, y, x + 28, y + 28), fill="#1a73e8")
            question, answer, choices, kind, precision = "How many dots are there?", str(k), (), "integer", None
        elif i % 3 == 1:
            a, b, c = rng.choice([(3, 4, 5), (6, 8, 10), (5, 12, 13), (8, 15, 17), (9, 12, 15)])
            draw.polygon([(60, size - 60), (size - 60, size - 60), (60, 80)], outline="black", width=3)
            draw.text((size // 2 - 10, size - 50), str(b), fill="black", font=_font(24))
            draw.text((25, size // 2), str(a), fill="black", font=_font(24))
            draw.text((size // 2 + 20, size // 2 - 30), "?", fill="black", font=_font(28))
            options = sorted({c, c + 1, c + 2, c - 1})
            question, answer, choices, kind, precision = ("What is the length of the hypotenuse?", str(c),
                                                          tuple(str(o) for o in options), "integer", None)
        else:
            w, h = rng.randint(2, 9) + 0.5, rng.randint(2, 9)
            draw.rectangle((80, 120, size - 80, size - 120), outline="black", width=3)
            draw.text((size // 2 - 20, size - 110), str(w), fill="black", font=_font(24))
            draw.text((40, size // 2 - 12), str(h), fill="black", font=_font(24))
            question, answer, choices, kind, precision = ("What is the area of the rectangle?", f"{w * h:.1f}", (),
                                                          "float", 1)
        image = image if final == size else image.resize((final, final))
        items.append(VQAItem(image, question, answer, (answer,), "multi_choice" if choices else "free_form", choices,
                             kind, precision))
    return items


# ------------------------------------------------------------------------------------------------ hub data (full mode)

DOCVQA, MATHVISTA = "lmms-lab/DocVQA", "AI4Math/MathVista"
MATHVISTA_FILES = {"testmini": "data/testmini-*.parquet"}  # 1,000 questions, 142 MB (the test split adds 744 MB)


def _load_dataset(dataset_id: str):
    """datasets.load_dataset, or an error that says how to install it."""
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise ModuleNotFoundError("DocVQA or MathVista from the hub needs the `datasets` package: pip install "
                                  "datasets", name="datasets") from err

    announce_dataset(dataset_id)
    return load_dataset


def load_docvqa(n: int, seed: int = 0) -> list[VQAItem]:
    """A seeded sample of DocVQA validation questions (lmms-lab/DocVQA, as lmms-eval's docvqa_val; the test split
    has no answers). Streamed: only the validation shards the shuffle buffer reaches are read, not the 5,349 pages."""
    load_dataset = _load_dataset(DOCVQA)
    stream = load_dataset(DOCVQA, "DocVQA", split="validation", streaming=True)
    data = list(stream.shuffle(seed=seed, buffer_size=max(1000, 4 * n)).take(n))
    return [VQAItem(r["image"].convert("RGB"), r["question"], r["answers"][0], tuple(r["answers"]), "docvqa",
                    source="docvqa") for r in data]


def load_mathvista(n: int, seed: int = 0) -> list[VQAItem]:
    """A seeded sample of MathVista testmini (AI4Math/MathVista); only the testmini file is downloaded."""
    load_dataset = _load_dataset(MATHVISTA)
    # no_checks: the card records both splits, and datasets would otherwise insist on finding the test split too
    data = load_dataset(MATHVISTA, data_files=MATHVISTA_FILES, split="testmini", verification_mode="no_checks")
    data = data.shuffle(seed=seed).select(range(min(n, len(data))))
    items = []
    for r in data:
        choices = tuple(r["choices"] or ()) if r["question_type"] == "multi_choice" else ()
        precision = int(r["precision"]) if r.get("precision") not in (None, "") else None
        items.append(VQAItem(r["decoded_image"].convert("RGB"), r["question"], str(r["answer"]), (str(r["answer"]),),
                             r["question_type"], choices, r["answer_type"], precision, "mathvista", r.get("unit") or "",
                             {"pid": r.get("pid")}))
    return items


# ------------------------------------------------------------------------------------------------ one call per benchmark

VISION_BENCHMARKS = ("ChartQA", "DocVQA", "MathVista")


def chance_level(benchmark: str, items: Sequence[Any]) -> tuple[float | None, str]:
    """(what a chance player scores in expectation, or None; and when None, why there is no chance level).

    A multiple-choice MathVista item has a chance of 1/k (k choices); an open answer (ChartQA's, DocVQA's,
    MathVista's free-form items) has none: guessing a number or a phrase has no probability to state.
    """
    _check(benchmark)
    choice = [it for it in items if getattr(it, "qtype", "") == "multi_choice" and getattr(it, "choices", ())]
    if items and len(choice) == len(items):
        return sum(1 / len(it.choices) for it in choice) / len(choice), ""
    if choice:
        part = sum(1 / len(it.choices) for it in choice) / len(choice)
        return None, (f"no chance level: {len(items) - len(choice)} of {len(items)} items are open answers (the "
                      f"{len(choice)} multiple-choice ones: {part:.0%} by chance)")
    return None, "no chance level: open answer"


def _check(benchmark: str) -> None:
    if benchmark not in VISION_BENCHMARKS:
        raise ValueError(f"benchmark must be one of {VISION_BENCHMARKS}, not {benchmark!r}")


def load_items(benchmark: str, n: int, source: str = "synthetic", seed: int = 0, image_size: int = 448) -> list:
    """n items of a vision benchmark: the real test set from the hub (``source='hub'``) or the offline stand-in."""
    _check(benchmark)
    if source not in ("hub", "synthetic"):
        raise ValueError(f"source must be 'hub' or 'synthetic', not {source!r}")
    if benchmark == "ChartQA":
        return charts.load_chartqa("test", n, seed) if source == "hub" else \
            charts.synthetic_charts(n, "heldout", seed, image_size)
    if benchmark == "DocVQA":
        return load_docvqa(n, seed) if source == "hub" else synthetic_documents(n, seed, image_size)
    return load_mathvista(n, seed) if source == "hub" else synthetic_math(n, seed, image_size)


def prompt_for(benchmark: str, item: Any) -> str:
    """The text sent with the image: the question with the benchmark's own instruction (see the module docstring)."""
    _check(benchmark)
    if benchmark == "ChartQA":
        return item.question + CHARTQA_INSTRUCTION
    if benchmark == "DocVQA":
        return item.question + DOCVQA_INSTRUCTION
    return mathvista_prompt(item.question, item.choices, item.answer_type, item.precision, item.unit)


def final_answer(benchmark: str, item: Any, reply: str) -> str:
    """What is scored of a reply: the whole reply, trimmed (ChartQA, DocVQA); the normalized answer a MathVista
    solution ends with ('' when none is found)."""
    _check(benchmark)
    if benchmark != "MathVista":
        return reply.strip()
    return mathvista_normalize(mathvista_extract(reply, item), item) or ""


def score(benchmark: str, items: Sequence[Any], predictions: Sequence[str]) -> list[float]:
    """Per-item scores in [0, 1] of whole replies: relaxed accuracy (ChartQA), ANLS (DocVQA), the answer a
    solution ends with (MathVista)."""
    _check(benchmark)
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions: pass one prediction per item")
    pairs = list(zip(items, predictions, strict=True))
    if benchmark == "ChartQA":
        return [float(relaxed_accuracy(p.strip(), item.answer)) for item, p in pairs]
    if benchmark == "DocVQA":
        return [anls(p.strip(), item.answers or (item.answer,)) for item, p in pairs]
    return [float(mathvista_correct(p, item)) for item, p in pairs]


def generate_replies(model, processor, images: Sequence[Any], prompts: Sequence[str], max_new_tokens: int,
                     batch_size: int | None = None) -> list[str]:
    """Greedy whole replies, one image and one prompt per item (:func:`gemma_helpers.vision.generate_replies`; its
    batch sized by the memory planner on a GPU)."""
    return vision.generate_replies(model, processor, images, prompts, max_new_tokens, batch_size)


def evaluate(model, processor, benchmark: str, items: Sequence[Any], max_new_tokens: int) -> dict[str, Any]:
    """Ask every item with its benchmark's prompt and budget: the replies, the answers scored, per-item scores and
    the seconds taken."""
    import time

    started = time.perf_counter()
    print(f"{benchmark}: {len(items)} items, up to {max_new_tokens} new tokens each")
    replies = generate_replies(model, processor, [item.image for item in items],
                               [prompt_for(benchmark, item) for item in items], max_new_tokens)
    return {"predictions": replies, "answers": [final_answer(benchmark, item, r) for item, r in zip(items, replies,
                                                                                                   strict=True)],
            "scores": score(benchmark, items, replies), "seconds": time.perf_counter() - started}
