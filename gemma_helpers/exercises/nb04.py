"""Notebook 04's exercises (04_finetune_chartqa_4b_vision): relaxed accuracy, and QLoRA memory.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

from typing import Any

from ..charts import MAX_RELATIVE_ERROR, mean_relaxed_accuracy, normalize_answer, parse_number, relaxed_accuracy
from ..memory import SIGLIP, lora_param_count, plan_lora_memory
from .core import _close, _gigabytes, _known_mistake, _number, _off_by, _t, exercise

RELAXED_CASES = [  # (the model's answer, ChartQA's reference)
    ("104", "100"), ("20", "19"), ("Increasing.", "increasing"), ("rising", "increasing"), ("9", "10"),
    ("47", "50"), ("2,480", "2500"),
]


def _relaxed_variant(prediction: str, target: str, rule: str) -> bool:
    """One answer scored by a typical misreading of ChartQA's rule (the mistake a wrong rate most likely made)."""
    p, t = parse_number(prediction), parse_number(target)
    if rule == "all text" or p is None or t is None:
        if rule == "strict text":
            return prediction.strip() == target.strip()
        return normalize_answer(prediction) == normalize_answer(target)
    if rule == "of the prediction":
        return abs(p[0] - t[0]) <= MAX_RELATIVE_ERROR * abs(p[0])
    if rule == "5 units":
        return abs(p[0] - t[0]) <= 5
    return relaxed_accuracy(prediction, target)


@exercise("04", hint=("per answer: a number within 5% of the reference, or the same text; then the fraction right",
                      "逐个答案判断：数字在参考答案的 5% 以内，或文字相同；然后算出答对的比例"))
def check_chartqa_relaxed_accuracy(answer: Any) -> tuple[bool, str]:
    """ChartQA's relaxed accuracy of the answers in exercises.RELAXED_CASES, as a fraction."""
    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, _t("give the relaxed accuracy as a fraction between 0 and 1 (what charts.mean_relaxed_accuracy "
                         "reports), not a count or a %",
                         "请把宽松准确率写成 0 到 1 之间的小数（即 `charts.mean_relaxed_accuracy` 报告的值），"
                         "不要写个数或百分数")
    predictions, targets = zip(*RELAXED_CASES, strict=True)
    ref = mean_relaxed_accuracy(predictions, targets)
    if _close(value, ref, rel=0.01):
        return True, _t(f"{ref:.3f}: numbers within 5% of the reference count, words only when they are the same "
                        "word (case and a final full stop aside)",
                        f"{ref:.3f}：与参考答案相差不超过 5% 的数字算对，文字只有在是同一个词时才算对"
                        "（不计大小写和末尾的句号）")

    def rate(rule: str) -> float:
        return sum(_relaxed_variant(p, t, rule) for p, t in RELAXED_CASES) / len(RELAXED_CASES)

    mistakes = [
        (rate("of the prediction"), _t("too high: the 5% is taken of the reference answer, not of the prediction "
                                       "(and a different word for the same thing is not the same word)",
                                       "太高了：5% 是按参考答案计算的，而不是按预测值（而且同一事物的另一个词不算"
                                       "同一个词）")),
        (rate("5 units"), _t("too high: the tolerance is 5% of the reference, not 5 units",
                             "太高了：容差是参考答案的 5%，而不是 5 个单位")),
        (rate("strict text"), _t("too low: text answers are compared after lower-casing and trimming, and a final "
                                 "full stop is dropped",
                                 "太低了：文字答案在转为小写并去掉首尾空白后再比较，末尾的句号也会去掉")),
        (rate("all text"), _t("too low: numbers are not compared as text. A number within 5% of the reference "
                              "counts, and a thousands separator does not change a number",
                              "太低了：数字不按文字比较。与参考答案相差不超过 5% 的数字算对，千位分隔符也不改变"
                              "数字")),
    ]
    hint = _known_mistake(value, [(w, t) for w, t in mistakes if w != ref], rel=0.01)
    if hint is not None:
        return False, hint
    if value > ref:
        return False, _t("too high: some answers you counted are wrong. A number must lie within 5% of the "
                         "reference (measured against the reference), and text must be the same word",
                         "太高了：你算对的答案中有些是错的。数字必须在参考答案的 5% 以内（以参考答案为基准），"
                         "文字必须是同一个词")
    return False, _t("too low: some answers you rejected are right. Numbers need only be within 5% (1,234 reads as "
                     "1234), and text is compared without case and without a final full stop",
                     "太低了：你排除的答案中有些是对的。数字只需在 5% 以内（1,234 读作 1234），文字比较时不计大小写、"
                     "不计末尾的句号")


QLORA_SIZE, QLORA_RANKS = "4b", (16, 64)  # the recipe's rank, and the rank the learner tries


@exercise("04", hint=("which part of models.plan_lora_memory's plan depends on lora_r, and by how much?",
                      "`models.plan_lora_memory` 的计划中哪一部分取决于 lora_r？变化多少？"))
def check_qlora_rank_64_extra_gb(answer: Any) -> tuple[bool, str]:
    """How many GB more the planner gives 4B's QLoRA at rank 64 than at the recipe's rank 16."""
    value, note = _gigabytes(answer)
    if value is None:
        return False, note
    low, high = (plan_lora_memory(QLORA_SIZE, "4bit", lora_r=r) for r in QLORA_RANKS)
    ref = high.total_gb - low.total_gb
    extra_params = high.lora_params - low.lora_params
    if _close(value, ref):
        return True, _t(f"{note}{ref:.2f} GB: only the adapters grow, {extra_params / 1e6:.0f}M more parameters at "
                        "16 bytes each (fp32 weight, gradient and two AdamW moments); the frozen 4-bit model, the "
                        "activations and the logits stay as they were",
                        f"{note}{ref:.2f} GB：只有适配器变大，多出 {extra_params / 1e6:.0f}M 个参数，每个 16 字节"
                        "（fp32 的权重、梯度和两个 AdamW 矩）；冻结的 4 位模型、激活值和 logits 都保持不变")
    no_vision = lora_param_count(QLORA_SIZE, QLORA_RANKS[1], False) - lora_param_count(QLORA_SIZE, QLORA_RANKS[0], False)
    mistakes = [
        (extra_params * 4 / 1e9, _t("too small by a factor of 4: you counted the adapters' weights only. Training "
                                    "also keeps a gradient and two AdamW moments per trainable parameter, all in fp32",
                                    "小了 4 倍：你只算了适配器的权重。训练还要为每个可训练参数保存一个梯度和两个 "
                                    "AdamW 矩，全部是 fp32")),
        (extra_params * 8 / 1e9, _t("too small by a factor of 2: AdamW keeps two moments per parameter, beside the "
                                    "weight and its gradient",
                                    "小了 2 倍：除了权重及其梯度，AdamW 还为每个参数保存两个矩")),
        (extra_params * 2 / 1e9, _t("too small by a factor of 8: trainable parameters are fp32 (4 bytes, not 2), "
                                    "with an fp32 gradient and two AdamW moments each",
                                    "小了 8 倍：可训练参数是 fp32（4 字节，不是 2 字节），每个还有一个 fp32 梯度和两个 "
                                    "AdamW 矩")),
        (no_vision * 16 / 1e9, _t(f"too small: the recipe puts adapters on the vision tower too (SigLIP's "
                                  f"{SIGLIP['layers']} layers), and they grow with the rank as well",
                                  f"太小了：这个配方在视觉塔上也加了适配器（SigLIP 的 {SIGLIP['layers']} 层），"
                                  "它们也随秩增长")),
        (high.total_gb, _t("that is the whole plan at the higher rank; the question asks how much more it needs",
                           "这是较高秩下的整个计划；题目问的是它多需要多少")),
        (high.parts["LoRA weights + grads + AdamW"], _t("that is the adapters' whole cost at the higher rank; "
                                                         "subtract what the recipe's rank already needs",
                                                         "这是较高秩下适配器的全部开销；请减去配方原来的秩已经需要的部分")),
        (ref * 1e9 / 2**30, _t("that looks like GiB (2^30 bytes); the planner counts GB (10^9 bytes)",
                               "这看起来是 GiB（2^30 字节）；规划器按 GB（10^9 字节）计")),
    ]
    return _off_by(value, ref, mistakes, ("only the LoRA part of the plan depends on the rank (its parameters grow in "
                                          "proportion); compare models.plan_lora_memory('4b', '4bit', lora_r=...) at "
                                          "both ranks",
                                          "计划中只有 LoRA 部分取决于秩（其参数按比例增长）；请在两个秩下比较 "
                                          "`models.plan_lora_memory('4b', '4bit', lora_r=...)`"), note)
