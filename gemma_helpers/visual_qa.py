"""Document and math questions about images: DocVQA's ANLS, MathVista's rule-based answer checking, and offline
stand-ins for both (rendered documents and drawn math problems whose answers are known exactly).

* **ANLS** (Biten et al., 2019, the DocVQA metric): per question, the best over the reference answers of
  ``1 - NL`` where NL is the Levenshtein distance divided by the longer string's length (case-insensitive,
  trimmed), and 0 when NL reaches the threshold 0.5; the mean over questions.
* **MathVista** answers are checked by rules, no LLM judge: a choice question accepts the option letter or the
  option's text; a free-form question takes the last number in the reply, compared as an integer, or rounded to
  the question's precision for floats.
ChartQA's relaxed accuracy lives in :mod:`gemma_helpers.charts`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ANLS_THRESHOLD = 0.5


@dataclass(frozen=True)
class VQAItem:
    """One question about an image: the prompt text, the answer(s), and for MathVista its kind and choices."""

    image: Any  # PIL.Image.Image
    question: str
    answer: str
    answers: tuple[str, ...] = ()
    qtype: str = ""
    choices: tuple[str, ...] = ()
    answer_type: str = "text"  # MathVista: integer, float, text, list
    precision: int | None = None
    source: str = "synthetic"
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


def extract_choice(response: str, choices: Sequence[str]) -> str | None:
    """The option a reply picks: '(B)', 'B', 'B.', 'Answer: B', 'option B', or an option's text; None if unclear."""
    text = response.strip()
    letters = "ABCDEFGH"[:len(choices)]
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


def mathvista_correct(response: str, item: VQAItem) -> bool:
    """Whether a reply answers a MathVista-style item, by the rules in the module docstring."""
    if item.choices:
        return extract_choice(response, item.choices) == item.answer
    if item.answer_type in ("integer", "float"):
        value = extract_number(response)
        if value is None:
            return False
        if item.answer_type == "integer":
            return value == int(float(item.answer))
        digits = item.precision if item.precision is not None else 1
        return round(value, digits) == round(float(item.answer), digits)
    if item.answer_type == "list":
        return [float(x.replace(",", "")) for x in _NUMBER.findall(response)] == \
            [float(x) for x in _NUMBER.findall(item.answer)]
    return " ".join(response.lower().split()).rstrip(".") == " ".join(item.answer.lower().split())


def mathvista_prompt(question: str, choices: Sequence[str] = (), answer_type: str = "integer",
                     precision: int | None = None) -> str:
    """A question with MathVista's hint line (the form of its 'query' field) and its lettered choices."""
    if choices:
        hint = "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
        listed = "\n".join(f"({letter}) {c}" for letter, c in zip("ABCDEFGH", choices, strict=False))
        return f"Hint: {hint}\nQuestion: {question}\nChoices:\n{listed}"
    if answer_type == "float":
        hint = (f"Please answer the question requiring a floating-point number with {precision or 1} decimal "
                "place(s) and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.")
    else:
        hint = "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end."
    return f"Hint: {hint}\nQuestion: {question}"


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
        prompt = mathvista_prompt(question, choices, kind, precision)
        image = image if final == size else image.resize((final, final))
        items.append(VQAItem(image, prompt, answer, (answer,), "math", choices, kind, precision))
    return items


# ------------------------------------------------------------------------------------------------ hub data (full mode)


def load_docvqa(n: int, seed: int = 0) -> list[VQAItem]:
    """A seeded sample of DocVQA validation questions (lmms-lab/DocVQA on the hub; the test split has no answers).

    Streamed, so only the shards the sample touches are downloaded, not all 5,349 page images."""
    from datasets import load_dataset

    stream = load_dataset("lmms-lab/DocVQA", "DocVQA", split="validation", streaming=True)
    data = list(stream.shuffle(seed=seed, buffer_size=max(1000, 4 * n)).take(n))
    return [VQAItem(r["image"].convert("RGB"), r["question"], r["answers"][0], tuple(r["answers"]), "docvqa",
                    source="docvqa") for r in data]


def load_mathvista(n: int, seed: int = 0) -> list[VQAItem]:
    """A seeded sample of MathVista testmini (AI4Math/MathVista), prompted with its own 'query' text."""
    from datasets import load_dataset

    data = load_dataset("AI4Math/MathVista", split="testmini").shuffle(seed=seed).select(range(n))
    items = []
    for r in data:
        choices = tuple(r["choices"] or ()) if r["question_type"] == "multi_choice" else ()
        precision = int(r["precision"]) if r.get("precision") not in (None, "") else None
        items.append(VQAItem(r["decoded_image"].convert("RGB"), r["query"], str(r["answer"]), (str(r["answer"]),),
                             r["question_type"], choices, r["answer_type"], precision, "mathvista"))
    return items


# ------------------------------------------------------------------------------------------------ one call per benchmark

VISION_BENCHMARKS = ("ChartQA", "DocVQA", "MathVista")


def load_items(benchmark: str, n: int, source: str = "synthetic", seed: int = 0, image_size: int = 448) -> list:
    """n items of a vision benchmark: the real test set from the hub (``source='hub'``) or the offline stand-in."""
    from . import charts

    if benchmark not in VISION_BENCHMARKS or source not in ("hub", "synthetic"):
        raise ValueError(f"benchmark must be one of {VISION_BENCHMARKS} and source 'hub' or 'synthetic', "
                         f"not {benchmark!r}, {source!r}")
    if benchmark == "ChartQA":
        return charts.load_chartqa("test", n, seed) if source == "hub" else \
            charts.synthetic_charts(n, "heldout", seed, image_size)
    if benchmark == "DocVQA":
        return load_docvqa(n, seed) if source == "hub" else synthetic_documents(n, seed, image_size)
    return load_mathvista(n, seed) if source == "hub" else synthetic_math(n, seed, image_size)


def score(benchmark: str, items: Sequence[Any], predictions: Sequence[str]) -> list[float]:
    """Per-item scores in [0, 1]: relaxed accuracy (ChartQA), ANLS (DocVQA), rule-checked answer (MathVista)."""
    from .charts import relaxed_accuracy

    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} items but {len(predictions)} predictions: pass one prediction per item")
    if benchmark == "ChartQA":
        return [float(relaxed_accuracy(p, item.answer)) for item, p in zip(items, predictions, strict=True)]
    if benchmark == "DocVQA":
        return [anls(p, item.answers or (item.answer,)) for item, p in zip(items, predictions, strict=True)]
    if benchmark == "MathVista":
        return [float(mathvista_correct(p, item)) for item, p in zip(items, predictions, strict=True)]
    raise ValueError(f"benchmark must be one of {VISION_BENCHMARKS}, not {benchmark!r}")


def evaluate(model, processor, benchmark: str, items: Sequence[Any], max_new_tokens: int = 32) -> dict[str, Any]:
    """Greedy answers from a Gemma 3 vision model (or the tiny stand-in), their per-item scores and the time taken."""
    import time

    from .vision import answer_charts

    started = time.perf_counter()
    print(f"{benchmark}: {len(items)} items, up to {max_new_tokens} new tokens each")
    predictions = answer_charts(model, processor, items, max_new_tokens)
    return {"predictions": predictions, "scores": score(benchmark, items, predictions),
            "seconds": time.perf_counter() - started}
