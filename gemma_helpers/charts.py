"""Chart question answering: ChartQA's relaxed accuracy, synthetic charts with exact answers, ChartQA loading.

Relaxed accuracy is the metric of ChartQA (Masry et al., 2022) as its reference code computes it: an answer that
reads as a number is right when it lies within 5% of the reference number; any other answer must match exactly
(case-insensitive, after trimming). This module adds the normalisation a chart answer needs before that test:
thousands separators (``1,234``), percent signs (``45%`` is 45 *or* 0.45), currency and unit words (``$12 kg``),
the Unicode minus sign, and a reference of zero (no relative error exists: the prediction must be zero too).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .sources import announce_dataset

MAX_RELATIVE_ERROR = 0.05  # ChartQA's tolerance for numeric answers

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$")
_CURRENCY = "$€£¥₹"
_UNIT = re.compile(r"^[a-z%°/²³µ.]+(?:\s+[a-z%°/²³µ.]+)?$")  # at most two short unit words after the number


def normalize_answer(text: object) -> str:
    """Lower-case, trimmed, single-spaced text without wrapping quotes or a trailing full stop."""
    out = " ".join(str(text).strip().lower().split())
    out = out.strip("\"'`")
    while out.endswith((".", "!", "。")) and not _NUMBER.match(out):
        out = out[:-1].rstrip()
    return out


def parse_number(text: object) -> tuple[float, bool] | None:
    """(value, had_percent_sign) when the text is one number with optional currency, unit or %; else None.

    ``"1,234.5"`` -> (1234.5, False); ``"-3%"`` -> (-3.0, True); ``"$12 million"`` -> (12.0, False);
    ``"2 apples and 3 pears"`` -> None (two numbers are not one answer).
    """
    s = normalize_answer(text).replace("\u2212", "-").replace("\u2013", "-")
    s = s.lstrip(_CURRENCY).strip()
    if s.startswith(("-", "+")) and len(s) > 1 and s[1] in _CURRENCY:
        s = s[0] + s[2:]
    match = re.match(r"^([+-]?[\d.,]*\d(?:e[+-]?\d+)?)\s*(.*)$", s)
    if not match:
        return None
    number, rest = match.group(1), match.group(2).strip()
    percent = rest.startswith("%")
    if percent:
        rest = rest[1:].strip()
    if rest and not _UNIT.match(rest):
        return None
    if "," in number:
        # thousands separators only: 1,234 or 12,345,678.9 (a decimal comma such as 3,5 is not a number here)
        if not re.match(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$", number):
            return None
        number = number.replace(",", "")
    if not _NUMBER.match(number):
        return None
    return float(number), percent


def _close(prediction: float, target: float, tolerance: float) -> bool:
    if target == 0:
        return abs(prediction) <= 1e-9
    return abs(prediction - target) / abs(target) <= tolerance


def relaxed_accuracy(prediction: object, target: object, tolerance: float = MAX_RELATIVE_ERROR) -> bool:
    """ChartQA's relaxed correctness of one answer: numbers within ``tolerance`` relative error, text exact.

    A percent sign may be read as written or as a fraction: ``"45%"`` matches both ``45`` and ``0.45``.
    """
    pred_num, target_num = parse_number(prediction), parse_number(target)
    if pred_num is not None and target_num is not None:
        (p, p_pct), (t, t_pct) = pred_num, target_num
        candidates = [(p, t)]
        if p_pct and not t_pct:
            candidates.append((p / 100.0, t))
        if t_pct and not p_pct:
            candidates.append((p, t / 100.0))
        return any(_close(a, b, tolerance) for a, b in candidates)
    return normalize_answer(prediction) == normalize_answer(target)


def mean_relaxed_accuracy(predictions: Iterable[object], targets: Iterable[object]) -> float:
    """The fraction of predictions that are relaxed-correct against their targets (pairs in order)."""
    preds, refs = list(predictions), list(targets)
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} targets: pass one prediction per target")
    if not refs:
        raise ValueError("no answers to score: pass at least one (prediction, target) pair")
    return sum(relaxed_accuracy(p, t) for p, t in zip(preds, refs, strict=True)) / len(refs)


# ------------------------------------------------------------------------------------- synthetic charts

CHART_KINDS = ("bar", "grouped_bar", "line", "pie")
QUESTION_TYPES = ("value", "largest", "smallest", "difference", "sum", "trend", "count")

_TOPICS = [  # (title, unit, labels to draw from)
    ("Fruit sold per stall", "kg", ["Apples", "Pears", "Plums", "Figs", "Grapes", "Limes", "Kiwis"]),
    ("Visitors per museum", "thousand", ["North", "South", "East", "West", "Central", "Harbour"]),
    ("Rainfall by city", "mm", ["Oslo", "Lima", "Cairo", "Perth", "Quito", "Hanoi", "Dakar"]),
    ("Revenue by product", "million $", ["Alpha", "Beta", "Gamma", "Delta", "Omega", "Sigma"]),
    ("Share of energy sources", "%", ["Solar", "Wind", "Hydro", "Gas", "Coal", "Nuclear"]),
]
_YEARS = [str(y) for y in range(2015, 2025)]
_SERIES = [("2023", "2024"), ("Men", "Women"), ("Online", "In store")]


@dataclass(frozen=True)
class Chart:
    """The data behind one chart: what is drawn, so every answer can be computed exactly."""

    kind: str
    title: str
    unit: str
    labels: tuple[str, ...]
    values: tuple[float, ...]  # the first (or only) series
    series: tuple[str, ...] = ()  # grouped bars: the two series' names
    values2: tuple[float, ...] = ()  # grouped bars: the second series


@dataclass(frozen=True)
class ChartQuestion:
    """One row: a chart, its picture, a question, the exact answer and the question's type."""

    chart: Chart
    image: Any  # PIL.Image.Image
    question: str
    answer: str
    qtype: str
    source: str = "synthetic"
    choices: tuple[str, ...] = ()  # the answers the question allows, when few (chance = 1 / len); () when open


def random_chart(rng: random.Random, kind: str | None = None) -> Chart:
    """A seeded random chart: a topic, 3-6 labels, whole-number values (percent shares that sum to 100 for pies)."""
    kind = kind or rng.choice(CHART_KINDS)
    if kind not in CHART_KINDS:
        raise ValueError(f"unknown chart kind {kind!r}: choose one of {', '.join(CHART_KINDS)}")
    n = rng.randint(3, 6)
    if kind == "line":
        start = rng.randint(0, len(_YEARS) - n)
        labels = tuple(_YEARS[start:start + n])
        base, step = rng.randint(10, 60), rng.choice([-1, 1]) * rng.randint(3, 9)
        values = tuple(float(max(1, base + step * i + rng.randint(-2, 2))) for i in range(n))
        return Chart(kind, "Yearly " + rng.choice(["sales", "members", "exports", "orders"]), "units", labels, values)
    title, unit, pool = rng.choice(_TOPICS)
    labels = tuple(rng.sample(pool, n))
    if kind == "pie":
        cuts = sorted(rng.sample(range(5, 96), n - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        while len(set(shares)) < n or min(shares) < 3:  # distinct, visible slices so largest/smallest are unique
            cuts = sorted(rng.sample(range(5, 96), n - 1))
            shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        pie_title = title if unit == "%" else title.replace(" per ", " by ").split(" by ")[0] + " (share)"
        return Chart(kind, pie_title, "%", labels,
                     tuple(float(s) for s in shares))
    values = tuple(float(v) for v in rng.sample(range(5, 100), n))  # distinct values: one largest, one smallest
    if kind == "grouped_bar":
        return Chart(kind, title, unit, labels, values, rng.choice(_SERIES),
                     tuple(float(v) for v in rng.sample(range(5, 100), n)))
    return Chart(kind, title, unit, labels, values)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def questions_for(chart: Chart, rng: random.Random) -> list[tuple[str, str, str]]:
    """(question type, question, exact answer) for every question type that fits the chart."""
    a, b = rng.sample(range(len(chart.labels)), 2)
    la, lb = chart.labels[a], chart.labels[b]
    values, of = chart.values, ""
    if chart.kind == "grouped_bar":
        of = f" for {chart.series[0]}"
    noun = {"line": "year", "pie": "slice"}.get(chart.kind, "bar")
    out = [
        ("value", f"What is the value of {la}{of}?", _fmt(values[a])),
        ("largest", f"Which {'year' if chart.kind == 'line' else 'label'} has the largest value{of}?",
         chart.labels[values.index(max(values))]),
        ("smallest", f"Which {'year' if chart.kind == 'line' else 'label'} has the smallest value{of}?",
         chart.labels[values.index(min(values))]),
        ("difference", f"What is the difference between {la} and {lb}{of}?", _fmt(abs(values[a] - values[b]))),
        ("count", f"How many {noun}s are shown{' per series' if chart.kind == 'grouped_bar' else ''}?",
         str(len(chart.labels))),
    ]
    if chart.kind != "pie":  # a pie's shares always sum to 100: not a question worth asking
        out.append(("sum", f"What is the sum of all values{of}?", _fmt(sum(values))))
    if chart.kind == "line":
        rising = all(y > x for x, y in zip(values, values[1:], strict=False))
        falling = all(y < x for x, y in zip(values, values[1:], strict=False))
        out.append(("trend", "Is the trend increasing, decreasing or mixed?",
                    "increasing" if rising else "decreasing" if falling else "mixed"))
    return out


def render_chart(chart: Chart, size: int = 448):
    """Draw a chart with matplotlib and return it as a square RGB PIL image (no pyplot: the backend is untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(4, 4), dpi=max(size // 4, 16))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = list(range(len(chart.labels)))
    if chart.kind == "bar":
        bars = ax.bar(x, chart.values, color="#4C72B0")
        ax.bar_label(bars, labels=[_fmt(v) for v in chart.values], fontsize=8)
    elif chart.kind == "grouped_bar":
        w = 0.4
        for offset, vals, name, color in ((-w / 2, chart.values, chart.series[0], "#4C72B0"),
                                          (w / 2, chart.values2, chart.series[1], "#DD8452")):
            bars = ax.bar([i + offset for i in x], vals, w, label=name, color=color)
            ax.bar_label(bars, labels=[_fmt(v) for v in vals], fontsize=7)
        ax.legend(fontsize=7)
    elif chart.kind == "line":
        ax.plot(x, chart.values, marker="o", color="#55A868")
        for i, v in zip(x, chart.values, strict=True):
            ax.annotate(_fmt(v), (i, v), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    else:
        ax.pie(chart.values, labels=chart.labels, autopct="%.0f%%", textprops={"fontsize": 8})
    if chart.kind != "pie":
        ax.set_xticks(x, chart.labels, fontsize=8, rotation=30)
        ax.set_ylabel(chart.unit, fontsize=8)
    ax.set_title(chart.title, fontsize=9)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.16, top=0.9)  # fixed margins: tight_layout costs 2x time
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return image.convert("RGB").resize((size, size), Image.BILINEAR)


SPLIT_SEEDS = {"train": 1_000, "heldout": 2_000_000}  # far apart: the two splits never share a chart


def _split_rng(split: str, seed: int, n: int) -> random.Random:
    """The random generator of a split ('train' or 'heldout'), after checking the request."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_SEEDS)}, not {split!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    return random.Random(SPLIT_SEEDS[split] + seed)


def synthetic_charts(n: int, split: str = "train", seed: int = 0, image_size: int = 448,
                     kinds: Sequence[str] = CHART_KINDS) -> list[ChartQuestion]:
    """n chart questions for a split ('train' or 'heldout'): one question per chart, question types in rotation."""
    rng = _split_rng(split, seed, n)
    rows = []
    for i in range(n):
        chart = random_chart(rng, kinds[i % len(kinds)])
        options = questions_for(chart, rng)
        qtype, question, answer = rng.choice(options)
        rows.append(ChartQuestion(chart, render_chart(chart, image_size), question, answer, qtype,
                                  choices=_choices(chart, qtype)))
    return rows


def _choices(chart: Chart, qtype: str) -> tuple[str, ...]:
    """The few answers a closed question allows (a label, a count, a trend); () for open numeric questions."""
    if qtype in ("largest", "smallest"):
        return chart.labels
    if qtype == "count":
        return ("3", "4", "5", "6")  # random_chart draws 3-6 labels
    if qtype == "trend":
        return ("increasing", "decreasing", "mixed")
    return ()


# ------------------------------------------------------------------------------ simple charts (the stand-in's)
# Four question types of rising difficulty about bar charts a tiny model can see at 64 px: each bar has its own
# colour (its label), values are whole numbers on a gridded 1-5 scale. Every question is closed, so its chance level
# (a uniform guess among the answers it allows) is known and printed beside the accuracy.

SIMPLE_COLOURS = {"red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 119, 230), "orange": (255, 150, 14),
                  "purple": (148, 80, 189)}
SIMPLE_VALUES = ("1", "2", "3", "4", "5")
SIMPLE_BARS = (2, 3, 4)
SIMPLE_TYPES = ("count", "colour", "tallest", "value")  # easiest first


def simple_chart(rng: random.Random) -> Chart:
    """A bar chart of 2-4 bars, each a different colour (its label), with distinct whole values from 1 to 5."""
    n = rng.choice(SIMPLE_BARS)
    labels = tuple(rng.sample(list(SIMPLE_COLOURS), n))
    return Chart("simple_bar", "", "", labels, tuple(float(v) for v in rng.sample(range(1, 6), n)))


def simple_questions(chart: Chart, rng: random.Random) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(question type, question, exact answer, the answers it allows) for each of SIMPLE_TYPES."""
    which = rng.randrange(len(chart.labels))
    first_or_last = rng.choice(["first", "last"])
    at = 0 if first_or_last == "first" else len(chart.labels) - 1
    return [
        ("count", "How many bars are there?", str(len(chart.labels)), tuple(str(n) for n in SIMPLE_BARS)),
        ("colour", f"What colour is the {first_or_last} bar?", chart.labels[at], tuple(SIMPLE_COLOURS)),
        ("tallest", "Which colour is the tallest bar?", chart.labels[chart.values.index(max(chart.values))],
         chart.labels),
        ("value", f"What is the value of the {chart.labels[which]} bar?", _fmt(chart.values[which]), SIMPLE_VALUES),
    ]


def render_simple_chart(chart: Chart, size: int = 64):
    """Draw a simple chart with PIL (a grid line per unit, coloured bars in fixed slots), as a square RGB image.

    The slots are the image's quarters, left to right, so at 64 px each bar stands in its own column of 16 px
    patches: what a tiny vision tower sees is one bar per column.
    """
    from PIL import Image, ImageDraw

    scale = 4  # drawn large, then shrunk: smooth edges at any size
    side = size * scale
    image = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(image)
    top, bottom = int(0.04 * side), int(0.96 * side)
    unit = (bottom - top) / len(SIMPLE_VALUES)
    for k in range(1, len(SIMPLE_VALUES) + 1):
        y = round(bottom - k * unit)
        draw.line([(0, y), (side, y)], fill=(205, 205, 205), width=scale)
    slot = side / max(SIMPLE_BARS)
    for i, (label, value) in enumerate(zip(chart.labels, chart.values, strict=True)):
        x0 = i * slot + 0.2 * slot
        draw.rectangle([x0, bottom - value * unit, x0 + 0.6 * slot, bottom], fill=SIMPLE_COLOURS[label])
    draw.line([(0, bottom), (side, bottom)], fill="black", width=2 * scale)
    return image.resize((size, size), Image.LANCZOS)


def simple_charts(n: int, split: str = "train", seed: int = 0, image_size: int = 64) -> list[ChartQuestion]:
    """n questions about simple charts for a split ('train' or 'heldout'), question types in rotation."""
    rng = _split_rng(split, seed, n)
    rows = []
    for i in range(n):
        chart = simple_chart(rng)
        qtype, question, answer, choices = simple_questions(chart, rng)[i % len(SIMPLE_TYPES)]
        rows.append(ChartQuestion(chart, render_simple_chart(chart, image_size), question, answer, qtype,
                                  choices=choices))
    return rows


CHART_SETS = {"chartqa-like": synthetic_charts, "simple": simple_charts}


def chart_questions(kind: str, n: int, split: str = "train", seed: int = 0, image_size: int = 448
                    ) -> list[ChartQuestion]:
    """n synthetic chart questions of a kind: 'chartqa-like' (ChartQA's question types) or 'simple' (the stand-in's)."""
    if kind not in CHART_SETS:
        raise ValueError(f"chart set must be one of {', '.join(CHART_SETS)}, not {kind!r}")
    return CHART_SETS[kind](n, split, seed, image_size)


def chance(row: ChartQuestion) -> float:
    """The probability that a uniform guess among the answers a question allows is right (NaN for open questions)."""
    return 1.0 / len(row.choices) if row.choices else math.nan


# ------------------------------------------------------------------------------------------------ ChartQA

CHARTQA = "HuggingFaceM4/ChartQA"
# The instruction after each question, worded as lmms-eval's chartqa task does (its default post_prompt), so that
# numbers measured here compare with published ones; greedy, 16 new tokens, as there.
CHARTQA_INSTRUCTION = "\nAnswer the question using a single word or phrase."


def chartqa_data_files(split: str) -> dict[str, str]:
    """The hub files of one ChartQA split (``data/test-*.parquet``, ...), so only that split is downloaded.

    Without it, ``load_dataset`` fetches every split (about 1 GB, most of it train) to use a few hundred test items.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"ChartQA's splits are train, val and test, not {split!r}")
    return {split: f"data/{split}-*.parquet"}


def load_chartqa(split: str = "test", n: int | None = None, seed: int = 0) -> list[ChartQuestion]:
    """Rows of the real ChartQA (from the Hugging Face hub; full mode), optionally a seeded sample of n.

    Only the split's own parquet file is downloaded (the test split: 2,500 questions, 69 MB).
    """
    try:
        from datasets import load_dataset
    except ImportError as err:  # pragma: no cover - datasets is in requirements
        raise ModuleNotFoundError("ChartQA needs the `datasets` package: pip install datasets", name="datasets") \
            from err
    # The card's dataset_info lists all three splits; with one split's files datasets would call the others
    # missing (ExpectedMoreSplitsError), so the split check is off: the other splits are left out on purpose.

    announce_dataset(CHARTQA)
    data = load_dataset(CHARTQA, data_files=chartqa_data_files(split), split=split, verification_mode="no_checks")
    if n is not None and n < len(data):
        data = data.shuffle(seed=seed).select(range(n))
    rows = []
    for item in data:
        label = item["label"][0] if isinstance(item["label"], list) else item["label"]
        qtype = "human" if item.get("human_or_machine", 0) in (0, "human") else "machine"
        empty = Chart("chartqa", "", "", (), ())
        rows.append(ChartQuestion(empty, item["image"].convert("RGB"), item["query"], str(label), qtype, "chartqa"))
    return rows


def to_messages(row: ChartQuestion, with_answer: bool = True) -> list[dict[str, Any]]:
    """A row as a Gemma 3 conversation: the image and the question with ChartQA's instruction, then the answer."""
    ask = row.question + CHARTQA_INSTRUCTION
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "image", "image": row.image},
                                                                   {"type": "text", "text": ask}]}]
    if with_answer:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": row.answer}]})
    return messages


def accuracy_by_type(rows: Sequence[ChartQuestion], predictions: Sequence[str]) -> dict[str, float]:
    """Relaxed accuracy overall ('all') and per question type, in QUESTION_TYPES order."""
    if len(rows) != len(predictions):
        raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions: pass one prediction per row")
    out = {"all": mean_relaxed_accuracy(predictions, [r.answer for r in rows])}
    for qtype in [*QUESTION_TYPES, "human", "machine"]:
        pairs = [(p, r.answer) for p, r in zip(predictions, rows, strict=True) if r.qtype == qtype]
        if pairs:
            out[qtype] = mean_relaxed_accuracy(*zip(*pairs, strict=True))
    return out
