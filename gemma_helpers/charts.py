"""Chart question answering: ChartQA's relaxed accuracy, synthetic charts with exact answers, ChartQA loading.

Relaxed accuracy is the metric of ChartQA (Masry et al., 2022) as its reference code computes it: an answer that
reads as a number is right when it lies within 5% of the reference number; any other answer must match exactly
(case-insensitive, after trimming). This module adds the normalisation a chart answer needs before that test:
thousands separators (``1,234``), percent signs (``45%`` is 45 *or* 0.45), currency and unit words (``$12 kg``),
the Unicode minus sign, and a reference of zero (no relative error exists: the prediction must be zero too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
