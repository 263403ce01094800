"""Fine-tuning across GPUs: which strategy fits which machine, with per-GPU memory and an estimated step time.

* :data:`MACHINES`: 1x T4, 2x T4 (Kaggle), 1x/8x A100 80 GB, 1x/8x H100 80 GB, each number cited.
* :func:`plan_strategies`: for a size, a method ('lora' 16-bit, 'qlora' 4-bit, 'full') and a machine, every
  strategy (one GPU, layer split, DDP, FSDP, FSDP + CPU offload) with its per-GPU memory, step time, and why not.
* :func:`plan_table`: the same as rows (list of dicts) for a notebook.
* :func:`script_plan` / :func:`script_table`: the launched script (``gemma_helpers.train_launch``: plain transformers
  and PEFT, 16-bit LoRA) as it runs on each machine, apart from Unsloth's one-GPU path: its own dtype (float32 on
  a T4, bfloat16 on Ampere or newer), no checkpointing on one GPU and DDP, FSDP2 with activation checkpointing.
* :func:`tool_table`: which tool to use on which machine (notebook 06), with the memory per GPU each predicts.

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
from .memory import DEVICES, lora_param_count, plan_lora_memory


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
    fp32_tflops: float = 0.0  # peak float32 TFLOPs per GPU (no tensor cores): what a float32 run gets


_T4 = ("NVIDIA T4 datasheet: 16 GB GDDR6, 65 TFLOPS mixed fp16 tensor, 8.1 TFLOPS fp32, PCIe Gen3 x16; Turing (7.5) "
       "has no bf16 (see gemma_helpers.precision)")
_A100 = ("NVIDIA A100 datasheet: 80 GB HBM2e, 312 TFLOPS bf16 dense (624 with sparsity), 19.5 TFLOPS fp32, NVLink "
         "600 GB/s (SXM)")
_H100 = ("NVIDIA H100 datasheet: 80 GB HBM3, 989 TFLOPS bf16 dense (1,979 with sparsity), 67 TFLOPS fp32, NVLink "
         "900 GB/s (SXM)")
MACHINES: dict[str, Machine] = {
    "1x T4": Machine("1x T4", 1, DEVICES["T4 (Colab)"], False, "none", 65.0, _T4, 8.1),
    "2x T4 (Kaggle)": Machine("2x T4 (Kaggle)", 2, DEVICES["T4 (Colab)"], False, "PCIe (no NVLink)", 65.0,
                              _T4 + "; Kaggle's 'GPU T4 x2' accelerator", 8.1),
    "1x A100 80GB": Machine("1x A100 80GB", 1, DEVICES["80 GB card"], True, "none", 312.0, _A100, 19.5),
    "8x A100 80GB": Machine("8x A100 80GB", 8, DEVICES["80 GB card"], True, "NVLink 600 GB/s", 312.0, _A100, 19.5),
    "1x H100 80GB": Machine("1x H100 80GB", 1, DEVICES["80 GB card"], True, "none", 989.0, _H100, 67.0),
    "8x H100 80GB": Machine("8x H100 80GB", 8, DEVICES["80 GB card"], True, "NVLink 900 GB/s", 989.0, _H100, 67.0),
}
METHODS = ("lora", "qlora", "full")
STRATEGIES = ("one GPU", "layer split", "DDP", "FSDP", "FSDP + CPU offload")
# Assumption (not measured here): model FLOPs utilisation. 0.2 on a T4 is what the Unsloth Kaggle record implies
# (tests/test_multigpu_plan.py), 0.35 on A100/H100 is a middle value of the 30-50 % usually reported for LLM training.
UTILISATION = {False: 0.2, True: 0.35}
FULL_BYTES_PER_PARAM = 16  # mixed-precision AdamW: 16-bit weights and grads, fp32 master + two moments (ZeRO, sec. 3.1)
FSDP_GATHERED_LAYERS = 2  # assumption: the layer being computed plus one prefetched, unsharded
CONTEXT = "CUDA context + allocator"  # a part of memory.plan_lora_memory's plans; Machine.usable_gb has it taken off


class _PerGpu:
    """What both kinds of plan read off their memory parts (GB per GPU) and their reason for not applying."""

    parts: dict[str, float]
    usable_gb: float
    reason: str

    @property
    def per_gpu_gb(self) -> float:
        """Peak memory on the busiest GPU."""
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        """Applicable and within each GPU's usable memory."""
        return not self.reason and self.per_gpu_gb <= self.usable_gb


@dataclass(frozen=True)
class StrategyPlan(_PerGpu):
    """One strategy on one machine: per-GPU memory parts (GB), step time, and whether (or why not) it fits."""

    strategy: str
    gpus: int
    parts: dict[str, float]
    tokens_per_step: int
    step_s: float
    usable_gb: float
    reason: str = ""
    notes: list[str] = field(default_factory=list)



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
    p.pop(CONTEXT, None)  # counted once: Machine.usable_gb is the card less its CUDA context (memory.DEVICES)
    return {k: v for k, v in p.items() if v}


def _states(p: dict[str, float]) -> float:
    return sum(v for k, v in p.items() if "weights" in k or "embed" in k)


def _weights(p: dict[str, float]) -> float:
    """The weights FSDP gathers: frozen ones, and for full fine-tuning the 16-bit copy (2 of its 16 bytes)."""
    return p.get("frozen weights", 0.0) + p.get("weights + grads + AdamW", 0.0) * 2 / FULL_BYTES_PER_PARAM


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
    states, rest = _states(p), {k: v for k, v in p.items() if k not in ("activations", "logits")}
    act = {k: p[k] for k in ("activations", "logits") if k in p}
    plans = [StrategyPlan("one GPU", 1, p, tokens, one_gpu_s, m.usable_gb, notes=notes)]
    multi = "" if n > 1 else "needs more than one GPU"
    # Layer split: each GPU holds 1/n of the layers and their saved activations; the last one also the logits.
    split = {k: v / n for k, v in rest.items()} | {"activations": p["activations"] / n, "logits": p.get("logits", 0)}
    plans.append(StrategyPlan("layer split", n, split, tokens, one_gpu_s, m.usable_gb, multi,
                              notes + ["one GPU busy at a time: no faster than one GPU"]))
    plans.append(StrategyPlan("DDP", n, p, tokens * n, one_gpu_s, m.usable_gb, multi,
                              notes + ["a full copy per GPU; gradient all-reduce assumed overlapped"]))
    # FSDP gathers weights only (gradients and optimizer states stay sharded): two layers' worth, unsharded
    gathered = _weights(p) / size.layers * FSDP_GATHERED_LAYERS
    fsdp = {k: v / n for k, v in rest.items()} | {"gathered layers": gathered} | act
    plans.append(StrategyPlan("FSDP", n, fsdp, tokens * n, one_gpu_s, m.usable_gb, multi,
                              notes + ["shards weights, grads and optimizer; communication assumed overlapped"]))
    offload = {"gathered layers": gathered} | act
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


# ------------------------------------------------------------------------------ the launched script, per machine

SCRIPT_STRATEGIES = ("one GPU", "DDP", "FSDP2")
LOGIT_BYTES_EXTRA = 4 + 4  # transformers' loss upcasts the logits to float32 and keeps their gradient


@dataclass(frozen=True)
class ScriptPlan(_PerGpu):
    """``gemma_helpers.train_launch`` on one machine with one strategy: its dtype, whether it checkpoints, and the
    memory per GPU by part (GB). An estimate from the architecture, not a measurement."""

    size: str
    machine: str
    strategy: str
    gpus: int
    dtype: str
    checkpointing: bool
    parts: dict[str, float]
    usable_gb: float
    tokens_per_step: int
    step_s: float
    reason: str = ""



def script_dtype(machine: Machine) -> str:
    """The dtype the script trains in there (precision.policy for plain transformers): bfloat16 where the GPU has
    it, else float32 (Gemma 3 overflows float16, and the script has no float32 islands as Unsloth does)."""
    return "bfloat16" if machine.bf16 else "float32"


def script_plan(size: GemmaSize | str, machine: str | Machine, strategy: str = "FSDP2", batch_size: int = 1,
                seq_len: int = 512, lora_r: int = 8, *, weight_bytes: float | None = None,
                checkpointing: bool | None = None) -> ScriptPlan:
    """Memory per GPU and step time of the launched script: 16-bit LoRA (the language model only) of `size`.

    Parts: the weights (4 bytes a parameter in float32, 2 in bfloat16; the vision tower is loaded, frozen, too),
    the LoRA adapters (float32 weight, gradient and two AdamW moments: 16 bytes each), the activations (every layer's
    kept without checkpointing, as on one GPU and DDP; one hidden state per layer plus one layer recomputed with
    FSDP2's activation checkpointing), the logits (transformers' loss: the logits in the dtype, a float32 copy and
    its gradient). FSDP2 shards the weights and the adapters' state over the GPUs and gathers, unsharded, two
    decoder layers at a time (the one computing and the one prefetched) plus the tied embedding, whose unit stays
    gathered from the forward to the backward (accelerate's tail unit). The CUDA context is not a part: the
    machine's usable memory already has it taken off. ``weight_bytes`` overrides the bytes a frozen linear weight
    takes (0.5 for 4-bit storage), for checking the arithmetic against a QLoRA record."""
    size = get_size(size) if isinstance(size, str) else size
    m = MACHINES[machine] if isinstance(machine, str) else machine
    if strategy not in SCRIPT_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(SCRIPT_STRATEGIES)}")
    dtype = script_dtype(m)
    b = 2 if m.bf16 else 4
    checkpoint = strategy == "FSDP2" if checkpointing is None else checkpointing
    n = m.gpus if strategy != "one GPU" else 1
    gb = 1e9
    embed = size.vocab * size.hidden
    linear = size.params - size.vision_params - embed  # the decoder layers' weights
    weights = (linear * (weight_bytes or b) + (embed + size.vision_params) * b) / gb
    adapters = lora_param_count(size, lora_r, vision_layers=False) * 16 / gb
    tokens = batch_size * seq_len
    layer_act = tokens * (size.hidden * 12 + size.intermediate * 4) * b
    acts = ((tokens * size.hidden * b * size.layers + layer_act) if checkpoint else layer_act * size.layers) / gb
    logits = tokens * size.vocab * (b + LOGIT_BYTES_EXTRA) / gb
    if strategy == "FSDP2":
        gathered = (linear * (weight_bytes or b) / size.layers * FSDP_GATHERED_LAYERS + embed * b) / gb
        parts = {"weights (shard)": weights / n, "LoRA + grads + AdamW (shard)": adapters / n,
                 "gathered: 2 layers + embedding": gathered, "activations": acts, "logits": logits}
    else:
        parts = {"weights": weights, "LoRA + grads + AdamW": adapters, "activations": acts, "logits": logits}
    flops = 4 * size.params * tokens  # forward + backward of the frozen base (no weight gradients), per replica
    if checkpoint:
        flops += 2 * size.params * tokens  # the recomputed forward
    speed = (m.tflops if m.bf16 else (m.fp32_tflops or m.tflops)) * 1e12 * UTILISATION[m.bf16]
    reason = "needs more than one GPU" if strategy != "one GPU" and m.gpus < 2 else ""
    return ScriptPlan(size.name, m.name, strategy, n, dtype, checkpoint, {k: v for k, v in parts.items() if v},
                      m.usable_gb, tokens * n, flops / speed, reason)


def script_table(size: GemmaSize | str = "4b", batch_size: int = 1, seq_len: int = 512,
                 lora_r: int = 8) -> list[dict[str, object]]:
    """The launched script's strategies on every machine: dtype, checkpointing, GB per GPU, fits (estimates)."""
    rows = []
    for machine in MACHINES:
        for strategy in SCRIPT_STRATEGIES:
            plan = script_plan(size, machine, strategy, batch_size, seq_len, lora_r)
            if plan.reason or (strategy == "one GPU" and MACHINES[machine].gpus > 1):
                continue
            rows.append({"machine": machine, "strategy": strategy, "dtype": plan.dtype,
                         "checkpointing": plan.checkpointing, "GB per GPU (est.)": round(plan.per_gpu_gb, 1),
                         "usable GB": plan.usable_gb, "fits": plan.fits,
                         "step s (est.)": round(plan.step_s, 2)})
    return rows


# Where the tool-per-machine table's claims come from (notebook 06 cites them beside the table).
TOOL_SOURCES = {
    "unsloth": "Unsloth's Gemma 3 notebooks (unsloth.ai/blog/gemma3: a free Colab T4 fine-tunes 12B with QLoRA) and "
               "its Kaggle 2x T4 notebook (a 31B QLoRA split by layers, 10.95 GB peak per T4: "
               "tests/test_multigpu_plan.py)",
    "script": "this curriculum's gemma_helpers.train_launch (launch_configs/ddp.yaml, fsdp2.yaml), rehearsed on the "
              "CPU on the 4B architecture (tests/test_distributed.py)",
    "fsdp_qlora": "PEFT's FSDP-QLoRA example (docs/source/accelerate/fsdp.md: Llama 2 70B on 2 GPUs, 35.6 GB per "
                  "GPU) is FSDP1; under FSDP2 see bitsandbytes#1945 (fsdp2.yaml)",
}


def _best(plans: list) -> object:
    fitting = [p for p in plans if p.fits]
    return min(fitting, key=lambda p: p.per_gpu_gb) if fitting else min(plans, key=lambda p: p.per_gpu_gb)


def tool_table(sizes: tuple[str, ...] = ("4b", "12b", "27b"), batch_size: int = 1,
               seq_len: int = 512) -> list[dict[str, object]]:
    """Which tool to use on which machine, and the memory per GPU it predicts for each size (estimates):

    * one T4: Unsloth QLoRA on one GPU (:func:`plan_strategies`, 'one GPU');
    * two T4s: Unsloth's layer split for QLoRA, or this script for 16-bit LoRA (float32 there) where it fits;
    * A100 / H100 nodes: this script with FSDP2 in bfloat16 (:func:`script_plan`)."""
    rows = []
    setups = [("1x T4", "Unsloth QLoRA, one GPU", "unsloth", lambda s: [
                  by_strategy(plan_strategies(s, "qlora", "1x T4", batch_size, seq_len))["one GPU"]]),
              ("2x T4 (Kaggle)", "Unsloth QLoRA, layer split", "unsloth", lambda s: [
                  by_strategy(plan_strategies(s, "qlora", "2x T4 (Kaggle)", batch_size, seq_len))["layer split"]]),
              ("2x T4 (Kaggle)", "this script, 16-bit LoRA (float32), DDP or FSDP2", "script", lambda s: [
                  script_plan(s, "2x T4 (Kaggle)", st, batch_size, seq_len) for st in ("DDP", "FSDP2")]),
              ("8x A100 80GB", "this script, FSDP2 in bfloat16", "script", lambda s: [
                  script_plan(s, "8x A100 80GB", "FSDP2", batch_size, seq_len)]),
              ("8x H100 80GB", "this script, FSDP2 in bfloat16", "script", lambda s: [
                  script_plan(s, "8x H100 80GB", "FSDP2", batch_size, seq_len)])]
    for machine, tool, source, plans_of in setups:
        row: dict[str, object] = {"machine": machine, "tool": tool}
        for size in sizes:
            plan = _best(plans_of(size))
            label = f"{plan.per_gpu_gb:.1f} GB/GPU (est.)"
            if len(plans_of(size)) > 1:
                label += f", {plan.strategy}"
            row[size.upper()] = label + ("" if plan.fits else f": does not fit {plan.usable_gb:g} GB")
        row["source"] = TOOL_SOURCES[source]
        rows.append(row)
    return rows


def by_strategy(plans: list) -> dict[str, object]:
    """Plans by their strategy name."""
    return {p.strategy: p for p in plans}
