"""What fits where: inference memory per size, quant type and context, and LoRA training memory.

* :func:`weight_bytes`, :func:`kv_cache_bytes`, :func:`plan_memory`, :func:`fit_table`, :func:`plot_memory`.
  Weights are counted tensor by tensor with llama.cpp's rules (a K-quant needs rows that are a multiple of 256
  values, else llama.cpp falls back to Q5_0/Q8_0), so the estimate matches real GGUF files.
* :func:`plan_lora_memory`: GPU memory of a LoRA / QLoRA run, part by part (notebook 04).
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import CATALOG, GemmaSize, UnknownModelError, get_size  # noqa: F401  (the error is re-exported)
from .messages import say

# ------------------------------------------------------------------------------------------ the memory planner

# Bits per weight of llama.cpp's block formats (block size and bytes: Q8_0 34 B / 32, Q4_K 144 B / 256, ...).
BITS_PER_WEIGHT = {"f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.5625, "q5_0": 5.5, "q5_1": 6.0,
                   "q4_k": 4.5, "q4_0": 4.5, "q4_1": 5.0}
QUANT_TYPES = ("bf16", "f16", "q8_0", "q4_k_m", "q4_0")
# K-quants need rows that are whole 256-value super-blocks; otherwise llama.cpp falls back to these types.
_K_FALLBACK = {"q4_k": "q5_0", "q6_k": "q8_0"}


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's Q4_K_M rule for which layers keep attn_v / ffn_down at Q6_K."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _tensors(size: GemmaSize) -> list[tuple[str, int, int, int]]:
    """(kind, layer, rows, row_length) for each weight matrix of the language model."""
    h, q, kv = size.hidden, size.heads * size.head_dim, size.kv_heads * size.head_dim
    out = [("token_embd", -1, size.vocab, h)]
    for i in range(size.layers):
        out += [("attn_q", i, q, h), ("attn_k", i, kv, h), ("attn_v", i, kv, h), ("attn_output", i, h, q),
                ("ffn_gate", i, size.intermediate, h), ("ffn_up", i, size.intermediate, h),
                ("ffn_down", i, h, size.intermediate)]
    return out


def _q4_k_m_type(kind: str, layer: int, n_layers: int, row: int) -> str:
    if kind == "token_embd":  # tied with the output head, so quantized like the output: Q6_K
        wanted = "q6_k"
    elif kind in ("attn_v", "ffn_down") and _more_bits(layer, n_layers):
        wanted = "q6_k"
    else:
        wanted = "q4_k"
    return _K_FALLBACK[wanted] if row % 256 else wanted


def weight_bytes(size: GemmaSize | str, quant: str = "q4_k_m", include_vision: bool = True) -> float:
    """Bytes of the weights at a quant type (bf16, f16, q8_0, q4_k_m, q4_0); norms in f32; vision tower at f16."""
    size = get_size(size) if isinstance(size, str) else size
    quant = quant.lower()
    if quant not in QUANT_TYPES:
        raise ValueError(f"unknown quant type {quant!r}: choose one of {', '.join(QUANT_TYPES)}")
    total = 0.0
    matrices = _tensors(size)
    for kind, layer, rows, row in matrices:
        if quant == "q4_k_m":
            kind_type = _q4_k_m_type(kind, layer, size.layers, row)
        elif quant == "q4_0" and kind == "token_embd":
            kind_type = "q8_0" if row % 256 else "q6_k"
        else:
            kind_type = quant
        total += rows * row * BITS_PER_WEIGHT[kind_type] / 8
    counted = sum(rows * row for _, _, rows, row in matrices)
    lm_params = size.params - size.vision_params
    total += max(lm_params - counted, 0) * 4  # norms and other small tensors stay f32
    if include_vision and size.vision_params:
        total += size.vision_params * 2
    return total


def kv_cache_bytes(size: GemmaSize | str, context: int, bytes_per_value: float = 2.0) -> float:
    """KV cache for a context: sliding-window layers hold at most their window, global layers the whole context."""
    size = get_size(size) if isinstance(size, str) else size
    if context > size.context:
        raise ValueError(f"Gemma 3 {size.name} has a {size.context:,}-token context; {context:,} does not fit")
    per_token = 2 * size.kv_heads * size.head_dim * bytes_per_value  # K and V
    total = 0.0
    for i in range(size.layers):
        tokens = context if size.layer_is_global(i) else min(context, size.sliding_window)
        total += tokens * per_token
    return total


# Memory a model may use on each device (GB): a phone's OS and apps keep about half of it.
DEVICES: dict[str, float] = {"phone 4 GB": 1.8, "phone 6 GB": 3.0, "phone 8 GB": 4.2, "laptop 16 GB RAM": 10.0,
                             "T4 (Colab)": 15.0, "24 GB card": 23.0, "80 GB card": 79.0}


@dataclass(frozen=True)
class MemoryPlan:
    """Weights + KV cache + overhead for one model, quant type and context."""

    size: str
    quant: str
    context: int
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float

    @property
    def total_gb(self) -> float:
        """Everything together."""
        return self.weights_gb + self.kv_cache_gb + self.overhead_gb

    def fits(self, device: str | float) -> bool:
        """Does the plan fit a device name from DEVICES (or a number of usable GB)?"""
        if isinstance(device, str):
            if device not in DEVICES:
                raise KeyError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
            device = DEVICES[device]
        return self.total_gb <= device


def plan_memory(size: GemmaSize | str, quant: str = "q4_k_m", context: int = 4096, overhead_gb: float | None = None,
                include_vision: bool = True) -> MemoryPlan:
    """Plan inference memory: weights at quant, f16 KV cache for context, and runtime overhead (compute buffers)."""
    size = get_size(size) if isinstance(size, str) else size
    weights = weight_bytes(size, quant, include_vision) / 1e9
    kv = kv_cache_bytes(size, context) / 1e9
    if overhead_gb is None:  # compute buffers grow with vocabulary x batch and with the hidden size
        overhead_gb = 0.15 + 0.05 * weights
    return MemoryPlan(size.name, quant, context, weights, kv, overhead_gb)


def fit_table(quant: str = "q4_k_m", context: int = 4096) -> list[dict[str, object]]:
    """For each size: total GB at quant and context, and for each device whether it fits."""
    rows = []
    for name in CATALOG:
        plan = plan_memory(name, quant, context)
        row: dict[str, object] = {"size": name.upper(), "GB": round(plan.total_gb, 2)}
        row.update({device: plan.fits(device) for device in DEVICES})
        rows.append(row)
    return rows


def plot_memory(context: int = 4096, quants: tuple[str, ...] = ("bf16", "q8_0", "q4_k_m"), ax=None):
    """Bars of total GB per size and quant type (log scale), with each device's usable memory as a line."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ModuleNotFoundError("the memory plot needs the `matplotlib` package: pip install matplotlib",
                                  name="matplotlib") from err

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    width = 0.8 / len(quants)
    for j, quant in enumerate(quants):
        totals = [plan_memory(name, quant, context).total_gb for name in CATALOG]
        ax.bar([i + j * width for i in range(len(CATALOG))], totals, width, label=quant.upper())
    for device, gb in DEVICES.items():  # device lines, labelled outside the plot on the right
        ax.axhline(gb, color="grey", linewidth=0.8, linestyle=":")
        ax.text(1.01, gb, f"{device} ({gb:g} GB)", fontsize=7, va="center", ha="left", color="dimgrey",
                transform=ax.get_yaxis_transform())
    ax.set_xticks([i + width * (len(quants) - 1) / 2 for i in range(len(CATALOG))], [n.upper() for n in CATALOG])
    ax.set_yscale("log")
    ax.set_ylabel("GB (weights + KV cache + overhead)")
    ax.set_title(f"What fits where, at a {context:,}-token context")
    ax.legend(fontsize=8, loc="upper left")
    return ax


# ---------------------------------------------------------------------------------- LoRA training memory

SIGLIP = {"layers": 27, "hidden": 1152, "intermediate": 4304, "patches": 4096}  # Gemma 3's 896 px SigLIP tower
NF4_BITS = 4.127  # bitsandbytes NF4 with double-quantized absmax (one fp8 scale per 64 weights, fp32 per 256 blocks)


@dataclass(frozen=True)
class LoraMemoryPlan:
    """GPU memory for LoRA training, part by part (GB): what fits a T4 and what does not."""

    size: str
    quant: str
    lora_r: int
    batch_size: int
    seq_len: int
    train_embeddings: bool
    lora_params: int
    parts: dict[str, float]

    @property
    def total_gb(self) -> float:
        """Everything together."""
        return sum(self.parts.values())

    def fits(self, device: str | float = "T4 (Colab)") -> bool:
        """Does the plan fit a device name from DEVICES (or a number of usable GB)?"""
        usable = DEVICES[device] if isinstance(device, str) else device
        return self.total_gb <= usable


def lora_param_count(size: GemmaSize | str, r: int = 16, vision_layers: bool = True) -> int:
    """Trainable LoRA parameters: r x (in + out) for every attention and MLP projection (SigLIP's too)."""
    size = get_size(size) if isinstance(size, str) else size
    h, q, kv, inter = size.hidden, size.heads * size.head_dim, size.kv_heads * size.head_dim, size.intermediate
    per_layer = r * ((h + q) * 2 + (h + kv) * 2 + (h + inter) * 3)
    total = per_layer * size.layers
    if vision_layers and size.image_input:
        vh, vi = SIGLIP["hidden"], SIGLIP["intermediate"]
        total += SIGLIP["layers"] * r * (4 * 2 * vh + 2 * (vh + vi))
    return total


def plan_lora_memory(size: GemmaSize | str = "4b", quant: str = "4bit", lora_r: int = 16, batch_size: int = 2,
                     seq_len: int = 512, train_embeddings: bool = False, chunked_loss: bool = True,
                     vision_layers: bool = True, overhead_gb: float = 0.8) -> LoraMemoryPlan:
    """Estimate training memory: frozen weights, LoRA weights + grads + AdamW, activations, logits, overhead.

    quant '4bit' (QLoRA: NF4 linear layers, embedding and vision tower in 16-bit) or '16bit'. Trainable parameters
    are fp32 with fp32 gradients and two AdamW moments (16 bytes each). Activations assume gradient checkpointing
    (one saved hidden state per layer plus one layer recomputed). train_embeddings=True is what
    ``modules_to_save=["embed_tokens", "lm_head"]`` does: two trainable fp32 copies of the vocab x hidden matrix.
    """
    size = get_size(size) if isinstance(size, str) else size
    if quant not in ("4bit", "16bit"):
        raise ValueError(f"quant must be '4bit' or '16bit', not {quant!r}")
    gb = 1e9
    embed = size.vocab * size.hidden
    linear = sum(rows * row for kind, _, rows, row in _tensors(size) if kind != "token_embd")
    linear_bytes = linear * (NF4_BITS / 8 if quant == "4bit" else 2)
    lora = lora_param_count(size, lora_r, vision_layers)
    tokens = batch_size * seq_len
    layer_act = tokens * (size.hidden * 12 + size.intermediate * 4) * 2  # one layer's activations in 16-bit
    saved = tokens * size.hidden * 2 * size.layers
    vision_act = 0.0
    if size.image_input:
        vision_act = batch_size * SIGLIP["patches"] * SIGLIP["hidden"] * 2 * (SIGLIP["layers"] + 8)
    logits = tokens * size.vocab * (2 + 4 + 4)  # 16-bit logits, fp32 copy for the loss, its gradient
    if chunked_loss:  # Unsloth computes the loss in chunks of the sequence: only one chunk's logits live at once
        logits /= 8
    parts = {
        "frozen weights": (linear_bytes + embed * 2 + size.vision_params * 2) / gb,
        "LoRA weights + grads + AdamW": lora * 16 / gb,
        "trainable embed + lm_head": (2 * embed * 16 / gb) if train_embeddings else 0.0,
        "activations": (saved + layer_act + vision_act) / gb,
        "logits": logits / gb,
        "CUDA context + allocator": overhead_gb,
    }
    return LoraMemoryPlan(size.name, quant, lora_r, batch_size, seq_len, train_embeddings, lora, parts)


# ------------------------------------------------------------------------ each full-mode cell on a free GPU
#
# What a notebook cell holds on the GPU at its peak, part by part, for the GPUs learners get for free: Colab's T4,
# Kaggle's P100 and Kaggle's 2x T4 (each process one T4). gemma_helpers.cell_memory applies these to every
# full-mode cell; tests/test_cell_memory.py holds each T4 cell under T4_LIMIT_GB and checks the planner against
# Unsloth's published T4 runs.

GIB = 1024 ** 3


@dataclass(frozen=True)
class Gpu:
    """One free GPU: its name, the bytes torch may allocate on it (GB of 10^9 bytes), bfloat16, count."""

    name: str
    usable_gb: float
    bf16: bool
    count: int = 1
    compute_capability: str = ""

    dense_bytes: int = 2  # bytes of each weight that is not 4-bit: bfloat16, or float16 on a T4 (below)

    @property
    def act_bytes(self) -> int:
        """Bytes of an activation: on a GPU without bfloat16 Unsloth runs Gemma 3 with float32 islands (its T4 log:
        "Using float16 precision for gemma3 won't work! Using float32."; Unsloth 2026.10.9 unsloth/models/vision.py
        loads such a model in bfloat16 and casts the weights to float16), so activations are counted at 4 bytes."""
        return 2 if self.bf16 else 4


# torch reports a T4's total memory as 14.741 GiB (15.83e9 bytes: "Max memory: 14.741 GB" in Unsloth's T4 logs);
# the limit below is 14.7e9 bytes, which leaves the CUDA context (about 0.4 GB, outside torch's counters) and the
# allocator's slack of that. A P100 (Kaggle) has 16 GiB, of which torch sees about 15.9 GiB.
T4_LIMIT_GB = 14.7
MARGIN_GB = 1.0  # what a prediction must leave free on top: the planner's error on the public runs is within this
GPUS: dict[str, Gpu] = {
    "T4": Gpu("Tesla T4 (Colab)", T4_LIMIT_GB, bf16=False, compute_capability="7.5"),
    "P100": Gpu("Tesla P100 (Kaggle)", 16.0, bf16=False, compute_capability="6.0"),
    "2x T4": Gpu("2x Tesla T4 (Kaggle), per GPU", T4_LIMIT_GB, bf16=False, count=2, compute_capability="7.5"),
}

# The vision tower's attention. Under Unsloth on a T4 (compute capability 7.5) the SigLIP tower runs EAGER attention:
# Unsloth 2026.10.9 turns SDPA off for Gemma 3 (DISABLE_SDPA_MODEL_NAMES in unsloth/models/_utils.py) and its
# flex-attention path needs compute capability 8.0 (and Inductor's shared memory for head_dim 256). Eager attention
# (transformers 5.17, models/siglip/modeling_siglip.py, eager_attention_forward) materializes every head's
# patches x patches scores: the scaled scores (2 bytes in 16-bit, 4 in float32), softmax's float32 copy (4 bytes)
# and its cast back (2 or 0 bytes) live at once: 8 bytes per score at the peak either way. An 896 px image is
# 64 x 64 = 4,096 patches and SigLIP has 16 heads: 2.15 GB per image for one layer (layers run one after another).
# Training keeps the probabilities for backward and computes their gradient: about twice that (16 bytes a score).
SIGLIP_HEADS = 16
EAGER_BYTES_PER_SCORE = {"inference": 8, "training": 16}
ATTENTIONS = ("eager", "sdpa")
# What torch's caching allocator reserves beyond what tensors hold (the public figures are max_memory_reserved):
# a fixed part plus this fraction of the rest (fragmentation between block sizes).
ALLOCATOR_SLACK = 0.15


def vision_attention_bytes(images: int, attention: str = "eager", training: bool = False,
                           patches: int = SIGLIP["patches"]) -> float:
    """Peak bytes of the SigLIP tower's attention scores for `images` images of `patches` patches (one layer at a
    time): eager materializes them, SDPA (memory-efficient kernels) does not."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}, not {attention!r}")
    if attention == "sdpa":
        return 0.0
    per_score = EAGER_BYTES_PER_SCORE["training" if training else "inference"]
    return images * SIGLIP_HEADS * patches * patches * per_score


@dataclass(frozen=True)
class CellPlan:
    """One cell's predicted GPU peak, part by part (GB of 10^9 bytes), and what it assumed."""

    what: str
    parts: dict[str, float]
    assumptions: str = ""

    @property
    def total_gb(self) -> float:
        """Everything together."""
        return sum(self.parts.values())

    def fits(self, gpu: Gpu | str = "T4", margin_gb: float = MARGIN_GB) -> bool:
        """Does the peak fit the GPU (a key of GPUS, or a Gpu) with margin_gb to spare?"""
        gpu = GPUS[gpu] if isinstance(gpu, str) else gpu
        return self.total_gb <= gpu.usable_gb - margin_gb

    def line(self, gpu: Gpu | str = "T4") -> str:
        """One printable line: the total, the largest parts, and whether it fits."""
        gpu = GPUS[gpu] if isinstance(gpu, str) else gpu
        big = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in big if v > 0)
        return say("memory.peak_line", what=self.what, gpu=gpu.name, total=self.total_gb, parts=parts,
                   verdict=say("memory.fits" if self.fits(gpu) else "memory.does_not_fit"), usable=gpu.usable_gb,
                   margin=MARGIN_GB)


def _frozen_weights(size: GemmaSize, quant: str, dense_bytes: float) -> float:
    linear = sum(rows * row for kind, _, rows, row in _tensors(size) if kind != "token_embd")
    per_linear = NF4_BITS / 8 if quant == "4bit" else dense_bytes
    return linear * per_linear + size.vocab * size.hidden * dense_bytes + size.vision_params * dense_bytes


def plan_generation(size: GemmaSize | str, quant: str = "16bit", batch: int = 1, prompt_tokens: int = 512,
                    new_tokens: int = 16, images: int = 0, dense_bytes: float = 2, attention: str = "eager",
                    lora_r: int = 0, overhead_gb: float = 0.3, act_bytes: float | None = None) -> CellPlan:
    """Peak memory of greedy generation for a batch: weights, the LoRA adapters if any, the KV cache of the whole
    sequence, one layer's prefill activations (eager attention scores included), the vision tower's attention for
    `images` images per item, and the last position's logits."""
    size = get_size(size) if isinstance(size, str) else size
    if quant not in ("4bit", "16bit"):
        raise ValueError(f"quant must be '4bit' or '16bit', not {quant!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    gb = 1e9
    act = dense_bytes if act_bytes is None else act_bytes
    seq = prompt_tokens + new_tokens
    kv_bytes = dense_bytes
    prefill = batch * prompt_tokens * (size.hidden * 4 + size.intermediate * 3) * act
    if attention == "eager":
        prefill += batch * size.heads * prompt_tokens * prompt_tokens * EAGER_BYTES_PER_SCORE["inference"]
    vision = 0.0
    if images and size.image_input:
        n = batch * images
        hidden = n * SIGLIP["patches"] * (SIGLIP["hidden"] * 3 + SIGLIP["intermediate"]) * act
        vision = vision_attention_bytes(n, attention) + hidden
    parts = {
        "weights": _frozen_weights(size, quant, dense_bytes) / gb,
        "LoRA adapters": lora_param_count(size, lora_r) * 4 / gb if lora_r else 0.0,
        "KV cache": batch * kv_cache_bytes(size, seq, kv_bytes) / gb,
        "prefill activations": prefill / gb,
        "vision tower": vision / gb,
        "logits": batch * size.vocab * 4 * 2 / gb,
    }
    parts["allocator slack"] = overhead_gb + ALLOCATOR_SLACK * sum(parts.values())
    what = (f"generation, {size.name} {quant}, batch {batch} x ({prompt_tokens} + {new_tokens} tokens)"
            + (f", {images} image(s) per item, {attention} attention" if images and size.image_input else ""))
    return CellPlan(what, parts, f"weights {dense_bytes} bytes when not 4-bit, activations {act} bytes")


def plan_training(size: GemmaSize | str, quant: str = "4bit", lora_r: int = 16, batch: int = 1, seq_len: int = 512,
                  images: int = 0, dense_bytes: float = 2, optimizer: str = "adamw_8bit",
                  checkpointing: bool | str = "unsloth",
                  attention: str = "eager", chunked_loss: bool = True, overhead_gb: float = 0.3,
                  act_bytes: float | None = None) -> CellPlan:
    """Peak memory of a LoRA training step: frozen weights, the adapters (fp32) with their gradients and the
    optimizer's state (AdamW: 8 bytes a parameter; 8-bit AdamW: 2), activations with or without gradient
    checkpointing, the vision tower for `images` images per row (eager attention scores under gradient), logits.

    checkpointing: False (every layer's activations kept), True (one hidden state per layer kept on the GPU, one
    layer recomputed at a time) or "unsloth" (Unsloth's offloaded checkpointing, what the lessons use: the kept
    hidden states go to CPU memory, so only the recomputed layer is on the GPU)."""
    size = get_size(size) if isinstance(size, str) else size
    if quant not in ("4bit", "16bit"):
        raise ValueError(f"quant must be '4bit' or '16bit', not {quant!r}")
    states = {"adamw": 8, "adamw_torch": 8, "adamw_torch_fused": 8, "adamw_8bit": 2}
    if optimizer not in states:
        raise ValueError(f"optimizer must be one of {', '.join(states)}, not {optimizer!r}")
    gb = 1e9
    lora = lora_param_count(size, lora_r, vision_layers=bool(images))
    tokens = batch * seq_len
    act = dense_bytes if act_bytes is None else act_bytes
    layer_act = tokens * (size.hidden * 12 + size.intermediate * 4) * act
    if checkpointing not in (True, False, "unsloth"):
        raise ValueError(f"checkpointing must be True, False or 'unsloth', not {checkpointing!r}")
    kept = 0 if checkpointing == "unsloth" else 1  # offloaded to CPU memory by Unsloth
    if checkpointing:  # one saved hidden state per layer, one layer recomputed at a time
        activations = kept * tokens * size.hidden * act * size.layers + layer_act
    else:
        activations = layer_act * size.layers
    vision = 0.0
    if images and size.image_input:
        n = batch * images
        per_layer = n * SIGLIP["patches"] * (SIGLIP["hidden"] * 6 + SIGLIP["intermediate"] * 2) * act
        saved = n * SIGLIP["patches"] * SIGLIP["hidden"] * act * SIGLIP["layers"]
        vision = vision_attention_bytes(n, attention, training=True) + per_layer + (
            kept * saved if checkpointing else per_layer * SIGLIP["layers"])
    logits = tokens * size.vocab * (2 + 4 + 4)  # 16-bit logits, the loss's fp32 copy, its gradient
    if chunked_loss:  # Unsloth computes the loss in chunks: one chunk's logits at a time
        logits /= 8
    parts = {
        "frozen weights": _frozen_weights(size, quant, dense_bytes) / gb,
        "LoRA weights + grads + optimizer": lora * (4 + 4 + states[optimizer]) / gb,
        "activations": activations / gb,
        "vision tower": vision / gb,
        "logits": logits / gb,
    }
    parts["allocator slack"] = overhead_gb + ALLOCATOR_SLACK * sum(parts.values())
    what = (f"LoRA training, {size.name} {quant} r={lora_r}, batch {batch} x {seq_len} tokens, {optimizer}, "
            f"checkpointing {checkpointing}"
            + (f", {images} image(s) per row, {attention} attention" if images and size.image_input else ""))
    return CellPlan(what, parts, f"weights {dense_bytes} bytes when not 4-bit, activations {act} bytes")


def eval_batch_size(size: GemmaSize | str, gpu: Gpu | str | float, *, requested: int = 8, quant: str = "4bit",
                    prompt_tokens: int = 320, new_tokens: int = 16, images: int = 1, dense_bytes: float | None = None,
                    attention: str | None = None, lora_r: int = 0, margin_gb: float = MARGIN_GB) -> int:
    """The largest batch, at most `requested`, whose generation fits the GPU with margin_gb to spare (at least 1).

    gpu: a key of GPUS, a Gpu, or the usable GB of the GPU at hand (then a bfloat16 GPU). attention defaults to eager, what Unsloth gives Gemma 3's vision tower on a T4 (and, flex
    attention needing more shared memory than an A100 or L4 has, on most GPUs)."""
    if isinstance(gpu, (int, float)):
        gpu = Gpu("this GPU", float(gpu), bf16=True)
    elif isinstance(gpu, str):
        gpu = GPUS[gpu]
    dense = gpu.dense_bytes if dense_bytes is None else dense_bytes
    attn = attention or "eager"
    for batch in range(max(requested, 1), 0, -1):
        plan = plan_generation(size, quant, batch, prompt_tokens, new_tokens, images, dense, attn, lora_r,
                               act_bytes=gpu.act_bytes)
        if plan.total_gb <= gpu.usable_gb - margin_gb:
            return batch
    return 1
