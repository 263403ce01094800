"""Notebook 05's exercises (05_benchmark_reproduction): intervals, and ANLS.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

import math
from typing import Any

from ..scores import wilson_interval
from ..visual_qa import ANLS_THRESHOLD, anls, levenshtein
from .core import _close, _known_mistake, _number, _t, exercise

WILSON_CORRECT, WILSON_N = 27, 40


@exercise("05", hint=("(low, high) as fractions; Wilson, not p +- 1.96 SE",
                      "(low, high) 写成小数；用 Wilson，而不是 p +- 1.96 SE"))
def check_wilson_27_of_40(answer: Any) -> tuple[bool, str]:
    """The 95% Wilson interval (low, high) of 27 right answers out of 40."""
    try:
        low, high = (_number(x) for x in answer)
    except (TypeError, ValueError):
        return False, _t("answer with two numbers, (low, high)", "请用两个数作答：(low, high)")
    if low is None or high is None:
        return False, _t("answer with two numbers, (low, high)", "请用两个数作答：(low, high)")
    if high > 1:
        low, high = low / 100, high / 100
    ref = wilson_interval(WILSON_CORRECT, WILSON_N)
    p = WILSON_CORRECT / WILSON_N

    def near(a: tuple[float, float]) -> bool:
        return abs(low - a[0]) < 0.003 and abs(high - a[1]) < 0.003

    if near(ref):
        return True, _t(f"({ref[0]:.3f}, {ref[1]:.3f}): not symmetric around {p:.3f}, it leans towards 1/2",
                        f"({ref[0]:.3f}, {ref[1]:.3f})：它不以 {p:.3f} 为中心对称，而是偏向 1/2")
    wald = 1.96 * math.sqrt(p * (1 - p) / WILSON_N)
    if near((p - wald, p + wald)):
        return False, _t("that is the normal-approximation (Wald) interval, p +- 1.96 standard errors, centred on p. "
                         "Wilson's centre and half-width each have extra z^2 terms: see scores.wilson_interval",
                         "这是正态近似（Wald）区间，即 p +- 1.96 个标准误，以 p 为中心。Wilson 区间的中心和半宽"
                         "各多出 z^2 项：见 `scores.wilson_interval`")
    if low > high:
        return False, _t("give the lower bound first", "请先写下界")
    if not low < p < high:
        return False, _t(f"a 95% interval for {WILSON_CORRECT} right out of {WILSON_N} must contain the observed rate",
                         f"{WILSON_N} 题答对 {WILSON_CORRECT} 题的 95% 区间必须包含观测到的正确率")
    if high - low < 2 * 1.8 * math.sqrt(p * (1 - p) / WILSON_N):
        return False, _t("too narrow: a 95% interval uses z = 1.96", "太窄了：95% 区间用 z = 1.96")
    return False, _t("not quite: centre (p + z^2/2n) / (1 + z^2/n), half-width z * sqrt(p(1-p)/n + z^2/4n^2) / "
                     "(1 + z^2/n), z = 1.96",
                     "还差一点：中心为 (p + z^2/2n) / (1 + z^2/n)，半宽为 z * sqrt(p(1-p)/n + z^2/4n^2) / "
                     "(1 + z^2/n)，z = 1.96")


ANLS_PREDICTION, ANLS_ANSWERS = "Invoice no. 1234", ("invoice 1234", "1234")


@exercise("05", hint=("1 - edit distance / longer length, per answer; then the best",
                      "每个答案算 1 - 编辑距离 / 较长的长度；然后取最好的"))
def check_anls_invoice(answer: Any) -> tuple[bool, str]:
    """The ANLS of exercises.ANLS_PREDICTION against the reference answers exercises.ANLS_ANSWERS."""
    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, _t("give one number between 0 and 1", "请给出一个 0 到 1 之间的数")
    ref = anls(ANLS_PREDICTION, ANLS_ANSWERS)
    if _close(value, ref, rel=0.005, abs_tol=0.002):
        return True, _t(f"{ref:.3f}: the best reference answer counts; the other falls under the threshold and "
                        "gives 0", f"{ref:.3f}：取最好的参考答案；另一个没过阈值，得 0 分")
    pred = ANLS_PREDICTION.lower()
    nl = [levenshtein(pred, a.lower()) / max(len(pred), len(a)) for a in ANLS_ANSWERS]
    scores = [1 - x if x < ANLS_THRESHOLD else 0.0 for x in nl]
    mistakes = [
        (max(1 - levenshtein(ANLS_PREDICTION, a) / max(len(pred), len(a)) for a in ANLS_ANSWERS),
         _t("ANLS ignores case: lower-case both strings before counting edits",
            "ANLS 不区分大小写：先把两个字符串都转为小写，再数编辑次数")),
        (min(nl), _t("that is the normalized distance NL; ANLS scores 1 - NL", "这是归一化距离 NL；ANLS 的得分是 1 - NL")),
        (max(1 - levenshtein(pred, a.lower()) / min(len(pred), len(a)) for a in ANLS_ANSWERS),
         _t("divide the edit distance by the longer string's length, not the shorter one's",
            "编辑距离要除以较长字符串的长度，而不是较短的")),
        (sum(scores) / len(scores), _t("ANLS takes the best match over a question's reference answers, not the mean",
                                       "ANLS 取一道题所有参考答案中的最佳匹配，而不是平均值")),
        (sum(1 - x for x in nl) / len(nl), _t("take the best reference answer, not the mean (and mind the threshold)",
                                              "取最好的参考答案，而不是平均值（并注意阈值）")),
        (min(scores), _t("ANLS takes the best match over a question's reference answers, not the worst",
                         "ANLS 取一道题所有参考答案中的最佳匹配，而不是最差的")),
    ]
    hint = _known_mistake(value, mistakes, rel=0.005, abs_tol=0.002)
    if hint is not None:
        return False, hint
    return False, _t("per reference answer: NL = edit distance / longer length (case-insensitive), score 1 - NL, or "
                     "0 when NL reaches 0.5; then the best over the answers",
                     "对每个参考答案：NL = 编辑距离 / 较长的长度（不区分大小写），得分为 1 - NL，NL 达到 0.5 时为 0；"
                     "然后取所有答案中最好的")
