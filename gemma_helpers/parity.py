"""Does the GGUF compute what the model it came from computes? Position by position, on the same tokens.

Both runtimes read the same token streams: transformers gives the reference logits, llama.cpp (``logits_all=True``
keeps a row per position) the GGUF's. Per quant type: top-1 next-token agreement, mean and max KL(reference || GGUF),
and how many of the disagreements were near-ties (the reference's top two within ``NEAR_TIE`` nats), which is where
a small rounding error is allowed to flip the winner.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .llamacpp import import_llama_cpp, read_gguf, tool_output_to

NEAR_TIE = 0.5  # nats between the reference's first and second choice
# Varied text (prose, a chat turn, code, science, a story): the default streams of the parity check.
PARITY_TEXTS = (
    "The capital of France is Paris. It is known for the Eiffel Tower, museums such as the Louvre, and its cafes. "
    "Every year millions of visitors walk along the Seine and climb Montmartre to see the city from above.",
    "<start_of_turn>user\nWrite a short poem about the sea.<end_of_turn>\n<start_of_turn>model\nThe sea is wide "
    "and deep and blue, it sings at night and wakes with you. Waves roll in and waves roll out, and gulls above them "
    "wheel about.<end_of_turn>\n",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n"
    "print([fibonacci(i) for i in range(10)])\n",
    "Photosynthesis converts light energy into chemical energy. Plants take in carbon dioxide and water and, using "
    "sunlight, produce glucose and oxygen. Chlorophyll in the chloroplasts absorbs mostly red and blue light.",
    "Once upon a time a small robot lived in a lighthouse. Each night it polished the great lamp and counted the "
    "ships that passed. One stormy evening the lamp went dark, and the robot had to decide whether to leave its post "
    "to find help.",
    "In chess, the opening 1. e4 e5 2. Nf3 Nc6 3. Bb5 is called the Ruy Lopez. White develops quickly and puts "
    "pressure on the knight that defends e5. Black's most popular answer is 3... a6, asking the bishop what it wants.",
    "Water boils at 100 degrees Celsius at sea level, but at lower temperatures on a mountain, because the air "
    "pressure is lower. A pressure cooker raises the boiling point, so food cooks faster.",
)

# Texts where tokenizers tend to part ways: the tokenizer check compares llama.cpp's tokens with transformers' on each.
TOKENIZER_TEXTS = (
    ("prose", "The capital of France is Paris; its museums open at 9 a.m."),
    ("Chinese", "大语言模型可以在手机上运行。今天天气很好，我们去公园散步吧！"),
    ("code", "def area(r):\n\treturn 3.14159 * r ** 2  # 圆的面积\n"),
    ("whitespace runs", "a    b\n\n\n   c\t\td  \n"),
    ("emoji", "I love chess ♞ 😀🎉👍🏽!"),
    ("chat turn", "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\n"),
    ("numbers", "1,000,000 and 2026-12-04 and 0.000123"),
)


@dataclass(frozen=True)
class ParityResult:
    """How closely a GGUF run by llama.cpp follows the transformers model, position by position."""

    quant: str
    positions: int
    top1_agreement: float
    mean_kl: float
    max_kl: float
    flips: int  # positions whose top-1 token differs
    near_tie_flips: int  # ... of which the reference itself hesitated (top two within NEAR_TIE nats)


def _log_softmax(x):
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def compare_logits(reference, candidate) -> dict[str, float]:
    """Top-1 agreement, mean and max KL(reference || candidate), flips and near-tie flips of [positions, vocab]."""
    import numpy as np

    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {reference.shape} vs {candidate.shape}")
    differ = reference.argmax(-1) != candidate.argmax(-1)
    lp, lq = _log_softmax(reference), _log_softmax(candidate)
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    top2 = np.sort(lp, axis=-1)[:, -2:]
    near_tie = (top2[:, 1] - top2[:, 0]) < NEAR_TIE
    return {"top1_agreement": float(1 - differ.mean()), "mean_kl": float(kl.mean()), "max_kl": float(kl.max()),
            "flips": int(differ.sum()), "near_tie_flips": int((differ & near_tie).sum())}


def token_streams(tokenizer, positions: int, texts: Sequence[str] = PARITY_TEXTS) -> list[list[int]]:
    """Tokenize texts (with <bos>) into streams holding at least `positions` predicted positions in total."""
    streams, total = [], 0
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        take = min(len(ids), positions - total)
        if take <= 0:
            break
        streams.append(ids[:take])
        total += take
    if total < positions:
        raise ValueError(f"the texts give {total} positions, fewer than the {positions} asked for: add text")
    return streams


def reference_logits(model, streams: Sequence[Sequence[int]]) -> list:
    """The transformers model's logits (float32 numpy, [len, vocab]) for each token stream."""
    import torch

    out = []
    with torch.no_grad():
        for ids in streams:
            logits = model(torch.tensor([list(ids)], device=model.device)).logits[0]
            out.append(logits.float().cpu().numpy())
    return out


def gguf_logits(gguf: str | Path, streams: Sequence[Sequence[int]], threads: int | None = None) -> list:
    """llama.cpp's logits for the same token streams (logits_all=True keeps every position's row)."""
    Llama = import_llama_cpp().Llama
    read_gguf(gguf)
    n_ctx = max(len(s) for s in streams)
    llm = Llama(str(gguf), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, verbose=False,
                n_threads=threads or os.cpu_count())
    out = []
    try:
        for ids in streams:
            llm.reset()
            llm.eval(list(ids))
            out.append(llm.scores[:len(ids)].copy())
    finally:
        llm.close()
    return out


def parity(gguf: str | Path, quant: str, reference: Sequence, streams: Sequence[Sequence[int]],
           candidate: Sequence | None = None) -> ParityResult:
    """Top-1 agreement and KL of a GGUF against reference logits (from reference_logits) on the same streams
    (pass `candidate`, the GGUF's logits from gguf_logits, to compare one file with several references)."""
    import numpy as np

    candidate = gguf_logits(gguf, streams) if candidate is None else candidate
    scores = compare_logits(np.concatenate(list(reference)), np.concatenate(candidate))
    return ParityResult(quant, sum(len(s) for s in streams), **scores)


@dataclass(frozen=True)
class ParityCheck:
    """Every file of an export held to its source: the token streams, each file's result and its logits (kept so
    the same files can be held to another reference, such as the model before fine-tuning)."""

    streams: list
    results: dict[str, ParityResult]
    logits: dict[str, list]


def check_files(hf_dir: str | Path, files: dict[str, Any], positions: int) -> ParityCheck:
    """Notebook 01's parity step: the source folder in float32 against each exported GGUF (files: quant ->
    ExportedFile) on `positions` tokens; the reference model is freed before llama.cpp loads the files."""
    model, tokenizer = load_reference(hf_dir)
    streams = token_streams(tokenizer, positions)
    reference = reference_logits(model, streams)
    del model
    logits = {q: gguf_logits(f.path, streams) for q, f in files.items()}
    results = {q: parity(f.path, q, reference, streams, logits[q]) for q, f in files.items()}
    return ParityCheck(streams, results, logits)


def survival_table(base_dir: str | Path, files: dict[str, Any], check: ParityCheck) -> list[dict[str, Any]]:
    """Did the fine-tune survive quantization? Each file's top-1 agreement with the fine-tune (from `check`) and
    with the model it started from (base_dir): a file closer to the base has lost the fine-tune."""
    model, _ = load_reference(base_dir)
    base_reference = reference_logits(model, check.streams)
    del model
    rows = []
    for q, f in files.items():
        with_base = parity(f.path, q, base_reference, check.streams, check.logits[q])
        rows.append({"file": q, "agreement with the fine-tune %": round(100 * check.results[q].top1_agreement, 1),
                     "agreement with the base %": round(100 * with_base.top1_agreement, 1)})
    return rows


def tokenizer_agreement(hf_dir: str | Path, gguf: str | Path,
                        texts: Sequence[tuple[str, str]] = TOKENIZER_TEXTS) -> list[dict[str, Any]]:
    """llama.cpp's tokenizer (the GGUF's vocabulary) against transformers' (the folder's) on each text: token counts,
    whether the ids are identical, and the first position where they differ. Both add <bos> and read special tokens
    such as <start_of_turn> as one token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    with tool_output_to(str(gguf) + ".log"):  # the loader's lines, not the notebook's
        llm = import_llama_cpp().Llama(str(gguf), vocab_only=True, verbose=False)
    rows = []
    try:
        for kind, text in texts:
            ours = tokenizer(text)["input_ids"]
            theirs = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
            first = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
                         None if len(ours) == len(theirs) else min(len(ours), len(theirs)))
            rows.append({"text": kind, "transformers tokens": len(ours), "llama.cpp tokens": len(theirs),
                         "identical": ours == theirs, "first difference at": "-" if first is None else first})
    finally:
        llm.close()
    return rows


def load_reference(hf_dir: str | Path):
    """(model, tokenizer) from an HF folder in float32 with plain transformers: the reference every GGUF is held to."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).to(device).eval()
    return model, AutoTokenizer.from_pretrained(str(hf_dir))


def plot_parity(results: Sequence[ParityResult], sizes_mb: dict[str, float], path: str | Path | None = None):
    """File size against top-1 agreement and mean KL, one point per quant type."""
    import matplotlib.pyplot as plt

    fig, (agree_ax, kl_ax) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        mb = sizes_mb[r.quant]
        agree_ax.scatter(mb, 100 * r.top1_agreement, s=60)
        agree_ax.annotate(r.quant, (mb, 100 * r.top1_agreement), textcoords="offset points", xytext=(6, 4))
        kl_ax.scatter(mb, r.mean_kl, s=60)
        kl_ax.annotate(r.quant, (mb, r.mean_kl), textcoords="offset points", xytext=(6, 4))
    agree_ax.set(xlabel="file size (MB)", ylabel="top-1 agreement with transformers (%)",
                 title=f"same next token ({results[0].positions} positions)")
    kl_ax.set(xlabel="file size (MB)", ylabel="mean KL (nats)", title="distance of the whole distribution",
              yscale="log")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
