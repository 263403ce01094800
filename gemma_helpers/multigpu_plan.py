"""Fine-tuning across GPUs: which strategy fits which machine, with per-GPU memory and an estimated step time.

* :data:`MACHINES`: 1x T4, 2x T4 (Kaggle), 1x/8x A100 80 GB, 1x/8x H100 80 GB, each number cited.
* :func:`plan_strategies`: for a size, a method ('lora' 16-bit, 'qlora' 4-bit, 'full') and a machine, every
  strategy (one GPU, layer split, DDP, FSDP, FSDP + CPU offload) with its per-GPU memory, step time, and why not.
* :func:`plan_table`: the same as rows (list of dicts) for a notebook.

The memory parts come from :func:`gemma_helpers.memory.plan_lora_memory` (frozen weights, LoRA state, activations,
logits, overhead); this module only divides them among GPUs. Estimates, not measurements: see tests/test_multigpu_plan.py
for the two public records they are checked against and the tolerances.

T4 and P100 have no bfloat16, and float16 is unsafe for Gemma 3 (activations overflow float16's 65,504;
transformers issue #36822), so on a T4 the plan keeps float32 islands (Unsloth) or float32: activations are counted
at 4 bytes instead of 2 there (an assumption: the islands are the activations, the weights stay 16-bit or 4-bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .catalog import CATALOG, GemmaSize, get_size
from .memory import DEVICES, plan_lora_memory


@dataclass(frozen=True)
class Machine:
    """GPUs of one kind in one box."""

    name: str
    gpus: int
    usable_gb: float  # per GPU, after the CUDA context's share (memory.DEVICES)
    bf16: bool
    interconnect: str
    tflops: float  # peak dense 16-bit tensor TFLOPs per GPU (bf16 where supported, else fp16)
    source: str


_T4 = ("NVIDIA T4 datasheet: 16 GB GDDR6, 65 TFLOPS mixed fp16 tensor, PCIe Gen3 x16; Turing (7.5) has no bf16 "
       "(see gemma_helpers.precision)")
_A100 = "NVIDIA A100 datasheet: 80 GB HBM2e, 312 TFLOPS bf16 dense (624 with sparsity), NVLink 600 GB/s (SXM)"
_H100 = "NVIDIA H100 datasheet: 80 GB HBM3, 989 TFLOPS bf16 dense (1,979 with sparsity), NVLink 900 GB/s (SXM)"
MACHINES: dict[str, Machine] = {
    "1x T4": Machine("1x T4", 1, DEVICES["T4 (Colab)"], False, "none", 65.0, _T4),
    "2x T4 (Kaggle)": Machine("2x T4 (Kaggle)", 2, DEVICES["T4 (Colab)"], False, "PCIe (no NVLink)", 65.0,
                              _T4 + "; Kaggle's 'GPU T4 x2' accelerator"),
    "1x A100 80GB": Machine("1x A100 80GB", 1, DEVICES["80 GB card"], True, "none", 312.0, _A100),
    "8x A100 80GB": Machine("8x A100 80GB", 8, DEVICES["80 GB card"], True, "NVLink 600 GB/s", 312.0, _A100),
    "1x H100 80GB": Machine("1x H100 80GB", 1, DEVICES["80 GB card"], True, "none", 989.0, _H100),
    "8x H100 80GB": Machine("8x H100 80GB", 8, DEVICES["80 GB card"], True, "NVLink 900 GB/s", 989.0, _H100),
}
METHODS = ("lora", "qlora", "full")
STRATEGIES = ("one GPU", "layer split", "DDP", "FSDP", "FSDP + CPU offload")
# Assumption (not measured here): model FLOPs utilisation. 0.2 on a T4 is what the Unsloth Kaggle record implies
# (tests/test_multigpu_plan.py), 0.35 on A100/H100 is a middle value of the 30-50 % usually reported for LLM training.
UTILISATION = {False: 0.2, True: 0.35}
FULL_BYTES_PER_PARAM = 16  # mixed-precision AdamW: 16-bit weights and grads, fp32 master + two moments (ZeRO, sec. 3.1)
FSDP_GATHERED_LAYERS = 2  # assumption: the layer being computed plus one prefetched, unsharded


@dataclass(frozen=True)
class StrategyPlan:
    """One strategy on one machine: per-GPU memory parts (GB), step time, and whether (or why not) it fits."""

    strategy: str
    gpus: int
    parts: dict[str, float]
    tokens_per_step: int
    step_s: float
    usable_gb: float
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def per_gpu_gb(self) -> float:
        """Peak memory on the busiest GPU."""
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        """Applicable and within each GPU's usable memory."""
        return not self.reason and self.per_gpu_gb <= self.usable_gb


def _parts(size: GemmaSize, method: str, batch_size: int, seq_len: int, lora_r: int, bf16: bool) -> dict[str, float]:
    """One replica's memory parts (GB) from memory.plan_lora_memory; full fine-tuning swaps in 16 bytes a parameter."""
    quant = "4bit" if method == "qlora" else "16bit"
    p = dict(plan_lora_memory(size, quant, lora_r, batch_size, seq_len).parts)
    if method == "full":
        p["frozen weights"] = 0.0
        p["LoRA weights + grads + AdamW"] = 0.0
        p["weights + grads + AdamW"] = size.params * FULL_BYTES_PER_PARAM / 1e9
    if not bf16:  # float32 islands: activations and logits at 4 bytes, not 2 (assumption above)
        p["activations"] *= 2
    return {k: v for k, v in p.items() if v}


def _states(p: dict[str, float]) -> float:
    return sum(v for k, v in p.items() if "weights" in k or "embed" in k)


def plan_strategies(size: GemmaSize | str, method: str = "qlora", machine: str | Machine = "2x T4 (Kaggle)",
                    batch_size: int = 2, seq_len: int = 512, lora_r: int = 16) -> list[StrategyPlan]:
    """Every strategy for a size, method and machine; batch_size and seq_len are per GPU (per replica)."""
    size = get_size(size) if isinstance(size, str) else size
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if isinstance(machine, str) and machine not in MACHINES:
        raise KeyError(f"unknown machine {machine!r}: choose one of {', '.join(MACHINES)} (or pass a Machine)")
    m = MACHINES[machine] if isinstance(machine, str) else machine
    p = _parts(size, method, batch_size, seq_len, lora_r, m.bf16)
    n, tokens = m.gpus, batch_size * seq_len
    flops = (6 if method == "full" else 4) * size.params * tokens  # per replica's batch
    one_gpu_s = flops / (m.tflops * 1e12 * UTILISATION[m.bf16])
    notes = [] if m.bf16 else ["no bfloat16: float16 overflows in Gemma 3 (transformers #36822); float32 islands "
                               "counted in activations"]
    states, rest = _states(p), {k: v for k, v in p.items() if k not in ("activations", "logits",
                                                                        "CUDA context + allocator")}
    act = {k: p[k] for k in ("activations", "logits") if k in p}
    plans = [StrategyPlan("one GPU", 1, p, tokens, one_gpu_s, m.usable_gb, notes=notes)]
    multi = "" if n > 1 else "needs more than one GPU"
    # Layer split: each GPU holds 1/n of the layers and their saved activations; the last one also the logits.
    split = {k: v / n for k, v in rest.items()} | {"activations": p["activations"] / n, "logits": p.get("logits", 0),
                                                   "CUDA context + allocator": p["CUDA context + allocator"]}
    plans.append(StrategyPlan("layer split", n, split, tokens, one_gpu_s, m.usable_gb, multi,
                              notes + ["one GPU busy at a time: no faster than one GPU"]))
    plans.append(StrategyPlan("DDP", n, p, tokens * n, one_gpu_s, m.usable_gb, multi,
                              notes + ["a full copy per GPU; gradient all-reduce assumed overlapped"]))
    gathered = states / size.layers * FSDP_GATHERED_LAYERS
    fsdp = {k: v / n for k, v in rest.items()} | {"gathered layers": gathered} | act | {
        "CUDA context + allocator": p["CUDA context + allocator"]}
    plans.append(StrategyPlan("FSDP", n, fsdp, tokens * n, one_gpu_s, m.usable_gb, multi,
                              notes + ["shards weights, grads and optimizer; communication assumed overlapped"]))
    offload = {"gathered layers": gathered} | act | {"CUDA context + allocator": p["CUDA context + allocator"]}
    plans.append(StrategyPlan("FSDP + CPU offload", n, offload, tokens * n, one_gpu_s, m.usable_gb, multi,
                              notes + [f"{states:.1f} GB of shards in CPU RAM; PCIe traffic makes it slower than "
                                       "the estimate"]))
    return plans


def why_not(plan: StrategyPlan) -> str:
    """'' if the plan fits, else the reason in words."""
    if plan.reason:
        return plan.reason
    if plan.per_gpu_gb > plan.usable_gb:
        return f"{plan.per_gpu_gb:.1f} GB per GPU > {plan.usable_gb:g} GB usable"
    return ""


def plan_table(size: GemmaSize | str = "12b", method: str = "qlora", machine: str | Machine = "2x T4 (Kaggle)",
               batch_size: int = 2, seq_len: int = 512, lora_r: int = 16) -> list[dict[str, object]]:
    """The strategies as rows for a notebook: GB per GPU, step seconds, tokens/s, fits, and why not."""
    rows = []
    for plan in plan_strategies(size, method, machine, batch_size, seq_len, lora_r):
        rows.append({"strategy": plan.strategy, "GPUs": plan.gpus, "GB per GPU": round(plan.per_gpu_gb, 2),
                     "step s (est.)": round(plan.step_s, 2), "tokens/s (est.)": round(plan.tokens_per_step /
                                                                                     plan.step_s),
                     "fits": plan.fits, "why not": why_not(plan)})
    return rows


def fit_matrix(method: str = "qlora", batch_size: int = 2, seq_len: int = 512) -> list[dict[str, object]]:
    """For each size and machine: the strategies that fit (comma-separated), or 'none'."""
    rows = []
    for name in CATALOG:
        row: dict[str, object] = {"size": name.upper()}
        for machine in MACHINES:
            fit = [p.strategy for p in plan_strategies(name, method, machine, batch_size, seq_len) if p.fits]
            row[machine] = ", ".join(fit) or "none"
        rows.append(row)
    return rows
