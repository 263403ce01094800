"""Notebook 01's exercises (01_gguf_phone_export): phones, and the KL divergence.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

import math
from typing import Any

from ..memory import DEVICES, plan_memory
from ..parity import compare_logits
from .core import _close, _number, _off_by, _t, exercise, language

PHONE, PHONE_CONTEXT = "phone 6 GB", 4096
PHONE_SIZES, PHONE_QUANTS = ("270m", "1b", "4b"), ("bf16", "q8_0", "q4_k_m")  # least compressed first


def _plan(size: str, quant: str):
    return plan_memory(size, quant, PHONE_CONTEXT)


@exercise("01", hint=("a dict {'270m': ..., '1b': ..., '4b': ...}; "
                      "models.plan_memory(size, quant, 4096).fits('phone 6 GB')",
                      "一个字典 `{'270m': ..., '1b': ..., '4b': ...}`；用 "
                      "`models.plan_memory(size, quant, 4096).fits('phone 6 GB')` 判断"))
def check_phone_6gb_quants(answer: Any) -> tuple[bool, str]:
    """For 270M, 1B and 4B: the least compressed of bf16 / q8_0 / q4_k_m that fits a 6 GB phone at 4K (or None)."""
    if not isinstance(answer, dict):
        return False, _t("answer with a dict: {'270m': ..., '1b': ..., '4b': ...}, each value one of the question's "
                         "formats (or no format, when none fits)",
                         "请用一个字典作答：`{'270m': ..., '1b': ..., '4b': ...}`，每个值是题目中的格式之一"
                         "（哪种都装不下时，不填格式）")
    given = {str(k).lower(): (str(v).lower() if v not in (None, "", "None", "none") else None)
             for k, v in answer.items()}
    if set(given) != set(PHONE_SIZES):
        return False, _t(f"give exactly the sizes {', '.join(PHONE_SIZES)} as keys",
                         f"键必须恰好是这几个尺寸：{', '.join(PHONE_SIZES)}")
    usable = DEVICES[PHONE]
    problems = []
    for size in PHONE_SIZES:
        fits = [q for q in PHONE_QUANTS if _plan(size, q).fits(PHONE)]
        choice = given[size]
        if choice is not None and choice not in PHONE_QUANTS:
            problems.append(_t(f"{size.upper()}: {choice!r} is not one of the formats in the question",
                            f"{size.upper()}：{choice!r} 不是题目中的格式之一"))
        elif choice is None and fits:
            problems.append(_t(f"{size.upper()}: at least one of the formats fits",
                            f"{size.upper()}：至少有一种格式装得下"))
        elif choice is not None and choice not in fits:
            plan = _plan(size, choice)
            zh = language() == "zh"
            extra = ("以及视觉塔（保持 f16）" if zh else " and the vision tower (kept at f16)") if size == "4b" else ""
            hint = _t(f" (it would fit in 6 GB, but a phone's system and apps keep about half: the planner leaves a "
                      f"model {usable:g} GB)", f"（它能装进 6 GB，但手机的系统和应用会占去约一半：规划器只给模型留 "
                      f"{usable:g} GB）") if plan.total_gb <= 6.0 else ""
            problems.append(_t(f"{size.upper()}: {choice} needs more than the phone leaves a model: count the weights, "
                               f"the KV cache at {PHONE_CONTEXT:,} tokens, the runtime overhead{extra}{hint}",
                               f"{size.upper()}：{choice} 需要的内存超过手机留给模型的：把权重、{PHONE_CONTEXT:,} 个 "
                            f"token 的 KV cache、运行时开销{extra}都算上{hint}"))
        elif choice is not None and fits and choice != fits[0]:
            problems.append(_t(f"{size.upper()}: a format with more bits per weight fits too, and loses less",
                            f"{size.upper()}：每个权重位数更多的格式也装得下，损失也更小"))
    if not problems:
        if language() == "zh":
            return True, f"6 GB 手机留给模型的 {usable:g} GB 中：" + "；".join(
                f"{s.upper()} {given[s]} 需要 {_plan(s, given[s]).total_gb:.2f} GB" if given[s] else
                f"{s.upper()} 即使用 {PHONE_QUANTS[-1]} 也装不下（{_plan(s, PHONE_QUANTS[-1]).total_gb:.2f} GB）"
                for s in PHONE_SIZES)
        return True, f"of the {usable:g} GB a 6 GB phone leaves a model: " + "; ".join(
            f"{s.upper()} {given[s]} needs {_plan(s, given[s]).total_gb:.2f} GB" if given[s] else
            f"{s.upper()} does not fit even in {PHONE_QUANTS[-1]} ({_plan(s, PHONE_QUANTS[-1]).total_gb:.2f} GB)"
            for s in PHONE_SIZES)
    return False, _t("; ", "；").join(problems)


KL_P, KL_Q = (0.8, 0.15, 0.05), (0.4, 0.4, 0.2)  # the reference's and the candidate's next-token probabilities


def _kl(p, q, log=math.log) -> float:
    return sum(a * log(a / b) for a, b in zip(p, q, strict=True))


@exercise("01", hint=("sum over the tokens of P(x) * ln(P(x) / Q(x)), in nats",
                      "对所有 token 求和 P(x) * ln(P(x) / Q(x))，单位 nat"))
def check_kl_by_hand(answer: Any) -> tuple[bool, str]:
    """KL(P || Q) in nats for exercises.KL_P (the reference) and exercises.KL_Q (the GGUF)."""
    import numpy as np

    value = _number(answer)
    if value is None:
        return False, _t("give one number (nats)", "请给出一个数（单位 nat）")
    ref = compare_logits(np.log([KL_P]), np.log([KL_Q]))["mean_kl"]  # log-probabilities are logits too
    if _close(value, ref, rel=0.01):
        return True, _t(f"KL(P || Q) = {ref:.4f} nats, what parity.compare_logits reports for these two distributions",
                        f"KL(P || Q) = {ref:.4f} nat，正是 `parity.compare_logits` 对这两个分布报告的值")
    mistakes = [
        (_kl(KL_Q, KL_P), _t("that is KL(Q || P): the reference P goes first, weighting log(P(x) / Q(x))",
                             "这是 KL(Q || P)：参考分布 P 放在前面，用它加权 log(P(x) / Q(x))")),
        (_kl(KL_P, KL_Q, math.log2), _t("that is in bits (log base 2): parity reports nats (natural log)",
                                        "这是以 bit 为单位（以 2 为底的对数）：parity 报告的是 nat（自然对数）")),
        (_kl(KL_Q, KL_P, math.log2), _t("that is KL(Q || P), and in bits: P goes first, and parity uses natural logs",
                                        "这是 KL(Q || P)，而且单位是 bit：P 放在前面，parity 用的是自然对数")),
        (_kl(KL_P, KL_Q, math.log10), _t("that uses log base 10: parity reports nats (natural log)",
                                         "这用的是以 10 为底的对数：parity 报告的是 nat（自然对数）")),
        (-ref, _t("a KL divergence is never negative: check which probability is on top in the log ratio",
                  "KL 散度永远不会是负数：检查对数比中哪个概率在分子上")),
        (sum(math.log(a / b) for a, b in zip(KL_P, KL_Q, strict=True)),
         _t("each log ratio must be weighted by P(x), the reference's probability",
            "每个对数比都必须用 P(x)（参考分布的概率）加权")),
        (-sum(a * math.log(b) for a, b in zip(KL_P, KL_Q, strict=True)),
         _t("that is the cross-entropy H(P, Q): KL subtracts P's own entropy from it",
            "这是交叉熵 H(P, Q)：KL 要从中减去 P 自身的熵")),
    ]
    return _off_by(value, ref, mistakes, ("KL(P || Q) = sum over x of P(x) * ln(P(x) / Q(x))",
                                          "KL(P || Q) = 对所有 x 求和 P(x) * ln(P(x) / Q(x))"), rel=0.01)
