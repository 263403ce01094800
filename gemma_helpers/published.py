"""Published Gemma 3 benchmark numbers with their sources, the seed guide's claims checked, and ours beside them.

Sources (primary): the Gemma 3 Technical Report (Gemma Team, arXiv:2503.19786, 2025) and the Gemma 3 model card
("Benchmark results", e.g. huggingface.co/google/gemma-3-4b-it). ``confirmed`` says whether the number was checked
against a stored copy of those texts while this module was written (the model card's tables and the report's
Table 6 were found and read); the report's PDF itself was not reachable from the build machine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scores import chance_sentence, wilson_interval

REPORT = "Gemma 3 Technical Report (arXiv:2503.19786)"
MODEL_CARD = "Gemma 3 model card, Benchmark results"
REPORT_TABLE6 = "Gemma 3 Technical Report (arXiv:2503.19786), Table 6"


@dataclass(frozen=True)
class Published:
    """One published number: benchmark, its setting, model variant and size, value (percent) and where it is."""

    benchmark: str
    setting: str
    variant: str  # "PT" (pre-trained) or "IT" (instruction-tuned)
    size: str
    value: float
    source: str
    confirmed: bool = True


def _rows(benchmark: str, setting: str, variant: str, values: dict[str, float], source: str) -> list[Published]:
    return [Published(benchmark, setting, variant, size, v, source) for size, v in values.items()]


PUBLISHED: list[Published] = [
    *_rows("MMLU", "5-shot", "PT", {"4B": 59.6, "12B": 74.5, "27B": 78.6}, MODEL_CARD),
    *_rows("MMLU-Pro CoT", "5-shot", "PT", {"4B": 29.2, "12B": 45.3, "27B": 52.2}, MODEL_CARD),
    *_rows("MMLU-Pro", "0-shot", "IT", {"1B": 14.7, "4B": 43.6, "12B": 60.6, "27B": 67.5}, REPORT_TABLE6),
    *_rows("HumanEval", "0-shot pass@1", "IT", {"1B": 41.5, "4B": 71.3, "12B": 85.4, "27B": 87.8}, MODEL_CARD),
    *_rows("HumanEval", "0-shot pass@1", "PT", {"4B": 36.0, "12B": 45.7, "27B": 48.8}, MODEL_CARD),
    *_rows("Natural2Code", "0-shot", "IT", {"1B": 56.0, "4B": 70.3, "12B": 80.7, "27B": 84.5}, MODEL_CARD),
    *_rows("Bird-SQL (dev)", "-", "IT", {"1B": 6.4, "4B": 36.3, "12B": 47.9, "27B": 54.4}, REPORT_TABLE6),
    *_rows("DocVQA", "ANLS", "IT", {"4B": 75.8, "12B": 87.1, "27B": 86.6}, MODEL_CARD),
    *_rows("DocVQA", "val, ANLS", "PT", {"4B": 72.8, "12B": 82.3, "27B": 85.6}, MODEL_CARD),
    *_rows("ChartQA", "relaxed accuracy", "IT", {"4B": 68.8, "12B": 75.7, "27B": 78.0}, MODEL_CARD),
    *_rows("ChartQA", "relaxed accuracy", "PT", {"4B": 63.6, "12B": 74.7, "27B": 76.3}, MODEL_CARD),
    *_rows("MathVista", "testmini", "IT", {"4B": 50.0, "12B": 62.9, "27B": 67.6}, MODEL_CARD),
]

# The seed guide's section "四、性能实测数据", row by row: what it says, and what the primary sources say.
GUIDE_CLAIMS: list[dict[str, str]] = [
    {"guide": "MMLU 5-shot, Gemma 3 4B: 59.6", "verdict": "matches",
     "primary": "MMLU 5-shot, Gemma 3 PT 4B = 59.6 (model card); a pre-trained model, which the guide does not say"},
    {"guide": "专业测试(COT) ('professional test, CoT'), Gemma 3 4B: 29.2", "verdict": "matches, mislabelled",
     "primary": "MMLU-Pro CoT 5-shot, Gemma 3 PT 4B = 29.2 (model card): MMLU-Pro, not a 'professional test'"},
    {"guide": "Gemma 2 7B: MMLU 55.3, CoT 24.8", "verdict": "not confirmed",
     "primary": "no such row in the Gemma 3 report or model card; there is no Gemma 2 7B (Gemma 2 has 2B, 9B, 27B; "
                "the 7B was Gemma 1)"},
    {"guide": "Llama 3 8B: MMLU 57.2, CoT 26.1", "verdict": "not confirmed",
     "primary": "not in the Gemma 3 report or model card; Meta's own Llama 3 8B card reports MMLU 5-shot 66.6 "
                "(from memory, not re-checked here), so 57.2 does not look like Meta's number"},
    {"guide": "HumanEval '基础算法' (basic algorithms), 1B 41.5% / 27B 87.8%", "verdict": "matches, mislabelled",
     "primary": "HumanEval 0-shot, Gemma 3 IT 1B = 41.5, IT 27B = 87.8 (model card): the whole HumanEval, "
                "instruction-tuned models; there is no 'basic algorithms' subset"},
    {"guide": "HumanEval 'SQL生成' (SQL generation), 1B 6.4% / 27B 54.4%", "verdict": "matches another benchmark",
     "primary": "Bird-SQL (dev), Gemma 3 IT 1B = 6.4, IT 27B = 54.4 (report Table 6, model card): not HumanEval"},
    {"guide": "HumanEval '自然语言转代码' (NL to code), 1B 56.0% / 27B 84.5%", "verdict": "matches another benchmark",
     "primary": "Natural2Code 0-shot, Gemma 3 IT 1B = 56.0, IT 27B = 84.5 (model card): Google's held-out "
                "benchmark, not HumanEval"},
    {"guide": "DocVQA 4B 75.8 / 27B 86.6", "verdict": "matches",
     "primary": "DocVQA, Gemma 3 IT 4B = 75.8, IT 27B = 86.6 (model card; IT 12B = 87.1 is higher than 27B)"},
    {"guide": "ChartQA 4B 68.8 / 27B 78.0", "verdict": "matches",
     "primary": "ChartQA, Gemma 3 IT 4B = 68.8, IT 27B = 78.0 (model card)"},
    {"guide": "MathVista 4B 50.0 / 27B 67.6", "verdict": "matches",
     "primary": "MathVista testmini, Gemma 3 IT 4B = 50.0, IT 27B = 67.6 (model card)"},
    {"guide": "27B 'close to professional developer level' at code", "verdict": "no source",
     "primary": "an opinion: no benchmark in the report measures 'professional developer level'"},
]


def model_variant_and_size(model_name: str) -> tuple[str, str] | None:
    """('PT' or 'IT', size) read from a hub id such as 'unsloth/gemma-3-4b-pt' (or the embedded 270M); else None."""
    if model_name.startswith("embedded"):  # the course's embedded model: Gemma 3 270M base (pre-trained)
        return "PT", "270M"
    match = re.search(r"gemma-3-(\d+(?:\.\d+)?)([bm])(?:-(it|pt))?", model_name.lower())
    if not match:
        return None
    size = f"{match.group(1)}{match.group(2).upper()}"
    return ("IT" if match.group(3) == "it" else "PT"), size


def published_for(benchmark: str, model_name: str) -> Published | None:
    """The published number for this benchmark and exactly this model (variant and size), if there is one; a model
    with no published number gives None, a benchmark name with none at all is an error (a typo would hide them)."""
    known = sorted({p.benchmark for p in PUBLISHED})
    if benchmark not in known:
        raise ValueError(f"no published numbers for a benchmark named {benchmark!r}: use one of {', '.join(known)}")
    parsed = model_variant_and_size(model_name)
    if parsed is None:
        return None
    variant, size = parsed
    return next((p for p in PUBLISHED if p.benchmark == benchmark and p.variant == variant and p.size == size), None)


def score_interval(scores: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of per-item scores in [0, 1]: Wilson's interval for right/wrong items, else mean +- 1.96 SE."""
    n = len(scores)
    if n == 0:
        raise ValueError("no scores: evaluate at least one item")
    mean = sum(scores) / n
    if all(s in (0, 1) for s in scores):
        return (mean, *wilson_interval(sum(scores), n))
    sd = (sum((s - mean) ** 2 for s in scores) / max(n - 1, 1)) ** 0.5
    half = 1.96 * sd / n ** 0.5
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def compare(benchmark: str, scores: Sequence[float], model_name: str, note: str = "", chance: float | None = None,
            no_chance: str = "", stand_in: str = "") -> dict[str, Any]:
    """Our score (per-item scores in [0, 1]) with n and its 95% interval, beside chance and the published one for
    the same model when there is one; ``within_interval`` says whether the published number lies inside our
    interval, ``vs chance`` whether our interval lies above chance (``chance``: a chance player's expected score;
    where there is none, ``no_chance`` says why, e.g. an open answer), ``comparable with`` what the score may be
    set beside. ``stand_in``: why the model cannot do the task at all (a tiny random stand-in): the row is then
    labelled a pipeline check, not a benchmark result."""
    mean, low, high = score_interval(scores)
    ref = published_for(benchmark, model_name)
    within = None if ref is None else low * 100 <= ref.value <= high * 100
    if ref is None:
        note = note or f"no published {benchmark} number for this model: grey bars are for reference only"
    elif not within:
        note = note or "published number outside our 95% interval: see the notes on sample, prompt and quantization"
    if stand_in:
        versus = f"pipeline check, not a benchmark result: {stand_in}"
        comparable = "nothing: it shows that the code runs end to end"
    else:
        versus = (chance_sentence(benchmark, mean, low, high, len(scores), chance) if chance is not None
                  else no_chance or "no chance level given")
        comparable = (f"the published {ref.variant} {ref.size} number ({ref.setting})" if ref is not None else
                      f"chance only: no published {benchmark} number exists for {model_name}")
    return {"benchmark": benchmark, "model": model_name, "n": len(scores), "ours": 100 * mean,
            "low": 100 * low, "high": 100 * high, "chance": None if chance is None else 100 * chance,
            "published": None if ref is None else ref.value,
            "published_as": "" if ref is None else f"{ref.variant} {ref.size}, {ref.setting}",
            "source": "" if ref is None else ref.source, "within_interval": within, "vs chance": versus,
            "comparable with": comparable, "note": note}


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a Markdown table (numbers with one decimal)."""
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        return f"{v:.1f}" if isinstance(v, float) else "-" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot_comparison(rows: Sequence[dict[str, Any]], path: str | Path | None = None):
    """One bar chart per benchmark: the published sizes (grey, IT or PT as evaluated) and ours with its 95% interval."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ModuleNotFoundError("the comparison plot needs the `matplotlib` package: pip install matplotlib",
                                  name="matplotlib") from err

    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        parsed = model_variant_and_size(row["model"])
        variant = parsed[0] if parsed else "IT"
        refs = [p for p in PUBLISHED if p.benchmark == row["benchmark"] and p.variant == variant] or \
            [p for p in PUBLISHED if p.benchmark == row["benchmark"]]
        labels = [f"{p.variant} {p.size}" for p in refs] + [f"ours\n{row['model'].split('/')[-1]}"]
        values = [p.value for p in refs] + [row["ours"]]
        colors = ["#9e9e9e"] * len(refs) + ["#1a73e8"]
        ax.bar(labels, values, color=colors)
        ax.errorbar(len(refs), row["ours"], yerr=[[row["ours"] - row["low"]], [row["high"] - row["ours"]]],
                    color="black", capsize=4)
        ax.set_title(f"{row['benchmark']} (n={row['n']})", fontsize=10)
        ax.set_ylim(0, 100)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes[0][0].set_ylabel("score (%)")
    fig.suptitle("Published (grey) vs ours (blue, 95% interval)", fontsize=11)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
