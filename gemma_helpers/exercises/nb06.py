"""Notebook 06's exercises (06_past_one_gpu): the global batch, and what fits 27B.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

from typing import Any

from ..multigpu_plan import STRATEGIES, plan_strategies
from .core import _number, _t, exercise

# One T4: per-device batch 2 x gradient accumulation 8; then Kaggle's two T4s with DDP at per-device batch 2.
ONE_GPU_BATCH, ONE_GPU_ACCUM, DDP_GPUS, DDP_BATCH = 2, 8, 2, 2


@exercise("06", hint=("examples per optimizer step = per-device batch x processes x gradient accumulation",
                      "每个优化器步的样本数 = 每设备批大小 × 进程数 × 梯度累积步数"))
def check_grad_accum_two_t4(answer: Any) -> tuple[bool, str]:
    """The gradient accumulation that keeps one T4's global batch on two T4s under DDP."""
    value = _number(answer)
    if value is None:
        return False, _t("give a whole number of micro-batches, like 3", "请给出一个整数（微批次数），例如 3")
    target = ONE_GPU_BATCH * ONE_GPU_ACCUM
    ref = target // (DDP_GPUS * DDP_BATCH)
    if value == ref:
        return True, _t(f"{DDP_GPUS} GPUs x batch {DDP_BATCH} x {ref} = {target} examples per optimizer step, as on "
                        "one T4: the same global batch, so the same learning-rate and loss curve",
                        f"{DDP_GPUS} 块 GPU × 批大小 {DDP_BATCH} × {ref} = 每个优化器步 {target} 个样本，与单块 T4 "
                        "相同：全局批大小不变，学习率和损失曲线也就不变")
    if value != int(value) or value < 1:
        return False, _t("gradient accumulation counts micro-batches: a whole number, at least 1",
                         "梯度累积数的是微批次：必须是不小于 1 的整数")
    if value == ONE_GPU_ACCUM:
        return False, _t("with the same accumulation on two GPUs, each optimizer step learns from twice as many "
                         "examples: the global batch doubled", "两块 GPU 上用同样的累积步数，每个优化器步看到的样本数"
                         "翻倍了：全局批大小变成了两倍")
    if value == ONE_GPU_ACCUM * DDP_GPUS:
        return False, _t("the other way round: each of the two processes takes its own micro-batch, so fewer "
                         "accumulation steps are needed, not more", "方向反了：两个进程各取一个微批次，所以需要的"
                         "累积步数更少，而不是更多")
    return False, _t(f"the global batch is per-device batch x processes x accumulation; on one T4 it is "
                     f"{ONE_GPU_BATCH} x 1 x {ONE_GPU_ACCUM}: keep it", f"全局批大小 = 每设备批大小 × 进程数 × "
                     f"累积步数；单块 T4 上是 {ONE_GPU_BATCH} × 1 × {ONE_GPU_ACCUM}：保持它不变")


PLAN_SIZE, PLAN_METHOD, PLAN_MACHINE = "27b", "qlora", "2x T4 (Kaggle)"


@exercise("06", hint=("which strategies hold only part of the model on each GPU?",
                      "哪些方案让每块 GPU 只放模型的一部分？"))
def check_strategies_27b_two_t4(answer: Any) -> tuple[bool, str]:
    """The strategies (names from multigpu_plan.STRATEGIES) that fit Gemma 3 27B QLoRA on Kaggle's 2x T4."""
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return False, _t("answer with a list of strategy names, like ['DDP']", "请用方案名称的列表作答，例如 ['DDP']")
    names = {str(a).strip() for a in answer}
    known = {s.lower(): s for s in STRATEGIES}
    unknown = sorted(n for n in names if n.lower() not in known)
    if unknown:
        return False, _t(f"{', '.join(unknown)}: not a name in multigpu_plan.STRATEGIES",
                         f"{', '.join(unknown)}：不是 multigpu_plan.STRATEGIES 中的名称")
    given = {known[n.lower()] for n in names}
    fits = {p.strategy for p in plan_strategies(PLAN_SIZE, PLAN_METHOD, PLAN_MACHINE) if p.fits}
    if given == fits:
        return True, _t("the layer split and FSDP (with or without offload) each hold part of the model per GPU; "
                        "one GPU and DDP need the whole model on one card", "层切分和 FSDP（无论是否卸载）都让每块 "
                        "GPU 只放模型的一部分；单 GPU 和 DDP 都要在一块卡上放下整个模型")
    if "DDP" in given - fits:
        return False, _t("DDP keeps a whole copy of the model on every GPU: it is faster, not bigger than one GPU",
                         "DDP 在每块 GPU 上都保存一份完整模型：它更快，但能放下的模型并不比单 GPU 大")
    if "one GPU" in given - fits:
        return False, _t("look at the plan's GB per GPU for one GPU against the T4's usable memory",
                         "对比计划中单 GPU 的每卡显存（GB）与 T4 的可用显存")
    return False, _t(f"{len(fits - given)} strateg{'y' if len(fits - given) == 1 else 'ies'} that fit{'s' if len(fits - given) == 1 else ''} "
                     "missing: every strategy that splits the model across the two GPUs counts",
                     f"还少了 {len(fits - given)} 个能放下的方案：凡是把模型分到两块 GPU 上的方案都算")
