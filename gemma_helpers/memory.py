"""What fits where: inference memory per size, quant type and context, and LoRA training memory.

* :func:`weight_bytes`, :func:`kv_cache_bytes`, :func:`plan_memory`, :func:`fit_table`, :func:`plot_memory`.
  Weights are counted tensor by tensor with llama.cpp's rules (a K-quant needs rows that are a multiple of 256
  values, else llama.cpp falls back to Q5_0/Q8_0), so the estimate matches real GGUF files.
* :func:`plan_lora_memory`: GPU memory of a LoRA / QLoRA run, part by part (notebook 04).
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import CATALOG, GemmaSize, UnknownModelError, get_size  # noqa: F401  (the error is re-exported)

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
