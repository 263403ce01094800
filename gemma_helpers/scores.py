"""One result type for every evaluation in the curriculum: per-item scores, a headline rate and its 95% interval.

Every lesson measures something the same way: a list of items, a score in [0, 1] for each (1/0 for right/wrong, or
a graded score such as ANLS), optionally a group per item (MMLU subject, chart question type, chess position kind)
and other per-item metrics beside the headline one. :class:`EvalResult` holds exactly that, so tables, plots,
``record_result`` and the before/after comparisons read one shape whether the lesson is chess, charts or MMLU.

Self-contained: copy this file alone into another project (standard library only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (stays inside [0, 1], sensible for small n)."""
    if n <= 0:
        raise ValueError("n must be positive: an interval of no questions says nothing")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(values: Sequence[float]) -> float:
    """The mean of the values that apply (NaN marks an item a metric does not apply to); NaN if none apply."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def versus_chance(name: str, successes: float, n: int, chance: float, what: str = "") -> str:
    """One sentence on whether a rate (successes of n) is above, below or not apart from chance, from its interval.

    ``chance`` is the rate a chance player scores on the same items (an exact expectation, so it has no interval of
    its own); the rate is above chance only when its whole 95% Wilson interval lies above it. ``what`` names the
    metric ("puzzles solved").
    """
    low, high = wilson_interval(successes, n)
    return chance_sentence(name, successes / n, low, high, n, chance, what)


def chance_sentence(name: str, rate: float, low: float, high: float, n: int, chance: float, what: str = "") -> str:
    """:func:`versus_chance` for a rate whose 95% interval (low, high) is already known (a graded score's, say)."""
    rate = f"{rate:.0%}{' ' + what if what else ''} (95% interval {low:.0%}-{high:.0%}, n={n})"
    if low > chance:
        return f"{name}: {rate} is above chance ({chance:.0%}): the whole interval lies above it."
    if high < chance:
        return f"{name}: {rate} is below chance ({chance:.0%}): the whole interval lies below it."
    return f"{name}: {rate} cannot be told apart from chance ({chance:.0%}), which lies inside its interval."


@dataclass(frozen=True)
class EvalResult:
    """What one evaluation measured, item by item.

    ``scores`` are the headline metric's per-item values in [0, 1]; ``extra`` holds other per-item metrics under
    their names (NaN where a metric does not apply to an item, e.g. "puzzle solved" for a position that is no
    puzzle). ``groups`` names each item's group ("" for none), ``answers`` what the model answered.
    """

    task: str
    metric: str
    scores: tuple[float, ...]
    groups: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    extra: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: int = 0
    note: str = ""

    def __post_init__(self) -> None:
        n = len(self.scores)
        for name, values in (("groups", self.groups), ("answers", self.answers), *self.extra.items()):
            if values and len(values) != n:
                raise ValueError(f"{self.task}: {len(values)} values of {name!r} for {n} scored items; pass one "
                                 f"per item (or none)")
        if any(not 0.0 <= s <= 1.0 for s in self.scores):
            raise ValueError(f"{self.task}: scores must lie in [0, 1]; rescale the metric {self.metric!r}")

    @property
    def n(self) -> int:
        """Items scored."""
        return len(self.scores)

    @property
    def rate(self) -> float:
        """The headline metric's mean over the scored items (NaN when none were scored)."""
        return _mean(self.scores)

    def rate_of(self, metric: str | None = None) -> float:
        """The mean of the headline metric (None) or of an ``extra`` metric, over the items it applies to."""
        if metric is None or metric == self.metric:
            return self.rate
        if metric not in self.extra:
            raise KeyError(f"{self.task} has no metric {metric!r}; it has {[self.metric, *self.extra]}")
        return _mean(self.extra[metric])

    def interval(self, metric: str | None = None) -> tuple[float, float]:
        """The 95% Wilson interval of a metric's rate (exact for right/wrong scores, approximate for graded ones)."""
        values = self.scores if metric is None or metric == self.metric else self.extra[metric]
        kept = [v for v in values if not math.isnan(v)]
        return wilson_interval(sum(kept), len(kept))

    def by_group(self, metric: str | None = None) -> dict[str, tuple[float, int]]:
        """Each group's (rate, n) for a metric, groups in first-seen order."""
        values = self.scores if metric is None or metric == self.metric else self.extra[metric]
        groups = self.groups or ("",) * self.n
        out: dict[str, list[float]] = {}
        for group, value in zip(groups, values, strict=True):
            out.setdefault(group, []).append(value)
        return {g: (_mean(v), sum(not math.isnan(x) for x in v)) for g, v in out.items()}

    def versus_chance(self, name: str, chance: float, metric: str | None = None) -> str:
        """:func:`versus_chance` for one metric of this result (right/wrong scores: the successes are their sum)."""
        values = [v for v in (self.scores if metric is None or metric == self.metric else self.extra[metric])
                  if not math.isnan(v)]
        if not values:
            return f"{name}: no item to compare with chance"
        return versus_chance(name, sum(values), len(values), chance, metric or self.metric)

    def row(self, label: str = "") -> dict[str, Any]:
        """A table row: n and every metric in percent (one decimal), the headline metric first."""
        out: dict[str, Any] = {"model": label} if label else {}
        out["n"] = self.n
        for name in (self.metric, *self.extra):
            rate = self.rate_of(name)
            out[f"{name} %"] = None if math.isnan(rate) else round(100 * rate, 1)
        if self.skipped:
            out["skipped"] = self.skipped
        return out
