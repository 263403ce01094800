"""How fast a model reads prompts and writes tokens, and how fast memory lets it write them.

Decoding one token reads every weight once (Gemma ties the output head to the token embedding, so even the
embedding matrix is read in full for the logits). So tokens/s can never exceed
``memory bandwidth / bytes of weights``: :func:`bandwidth_bound`. :func:`memory_bandwidth` measures this machine's
bandwidth with large numpy copies; :func:`llama_cpp_speed` and :func:`transformers_speed` measure prompt and
decode tokens/s the same way (greedy, a warm-up first); :func:`plot_speed` draws them with the bound.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Speed:
    """Prompt (prefill) and generation (decode) tokens per second of one runtime on one file or model."""

    runtime: str
    quant: str
    prompt_tokens: int
    prompt_tps: float
    gen_tokens: int
    decode_tps: float


def memory_bandwidth(mb: int = 256, repeats: int = 5, threads: int | None = None) -> float:
    """Best-of-`repeats` copy bandwidth in GB/s (bytes read + bytes written), arrays far larger than the caches."""
    import numpy as np

    threads = threads or os.cpu_count() or 1
    src = np.ones(mb * (1 << 20) // 8)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), threads)
    bounds = [(int(p[0]), int(p[-1]) + 1) for p in parts if p.size]

    def copy(bound: tuple[int, int]) -> None:
        np.copyto(dst[bound[0]:bound[1]], src[bound[0]:bound[1]])  # numpy releases the GIL while copying

    best = float("inf")
    with ThreadPoolExecutor(len(bounds)) as pool:
        for _ in range(repeats + 1):  # the first pass faults the pages in
            started = time.perf_counter()
            list(pool.map(copy, bounds))
            best = min(best, time.perf_counter() - started)
    return 2 * src.nbytes / best / 1e9


def bandwidth_bound(bytes_per_token: float, bandwidth_gbs: float) -> float:
    """The most tokens/s memory allows when each token reads bytes_per_token bytes."""
    if bytes_per_token <= 0:
        raise ValueError("bytes_per_token must be positive (the GGUF's tensor bytes, or the model's parameter bytes)")
    return bandwidth_gbs * 1e9 / bytes_per_token


def _prompt_ids(n: int, vocab_start: int = 1000) -> list[int]:
    """A fixed prompt of n ordinary token ids after <bos> (speed does not depend on which tokens)."""
    return [2] + [vocab_start + (i * 7919) % 50_000 for i in range(n - 1)]


def llama_cpp_speed(gguf: str | Path, quant: str, prompt_tokens: int = 128, gen_tokens: int = 64,
                    threads: int | None = None) -> Speed:
    """llama-cpp-python: prompt tokens/s (first token latency) and greedy decode tokens/s, after a warm-up."""
    from llama_cpp import Llama

    ids = _prompt_ids(prompt_tokens)
    llm = Llama(str(gguf), n_ctx=prompt_tokens + gen_tokens + 8, n_batch=512, n_threads=threads or os.cpu_count(),
                verbose=False)
    try:
        llm.eval(ids[:16])  # warm-up: weights paged in, buffers allocated
        llm.reset()
        started = time.perf_counter()
        first = None
        for n, _token in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=True), 1):
            if first is None:
                first = time.perf_counter()
            if n >= gen_tokens:
                break
        done = time.perf_counter()
    finally:
        llm.close()
    return Speed("llama.cpp", quant, prompt_tokens, prompt_tokens / (first - started), gen_tokens,
                 (gen_tokens - 1) / (done - first))


def transformers_speed(model, quant: str = "fp32", prompt_tokens: int = 128, gen_tokens: int = 64) -> Speed:
    """transformers: one forward pass over the prompt, then greedy generate of exactly gen_tokens, after a warm-up."""
    import torch

    ids = torch.tensor([_prompt_ids(prompt_tokens)], device=model.device)
    mask = torch.ones_like(ids)
    kwargs = dict(do_sample=False, pad_token_id=0, attention_mask=mask)
    with torch.no_grad():
        model.generate(ids[:, :16], attention_mask=mask[:, :16], max_new_tokens=4, min_new_tokens=4, do_sample=False,
                       pad_token_id=0)  # warm-up: the first calls of a process run several times slower
        started = time.perf_counter()
        model(ids)
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        model.generate(ids, max_new_tokens=gen_tokens, min_new_tokens=gen_tokens, **kwargs)
        total = time.perf_counter() - started
    return Speed("transformers", quant, prompt_tokens, prompt_tokens / prefill, gen_tokens,
                 (gen_tokens - 1) / max(total - prefill, 1e-9))


def plot_speed(speeds: Sequence[Speed], bounds: dict[str, float], bandwidth_gbs: float, path: str | Path | None = None):
    """Bars of decode and prompt tokens/s per runtime and quant; the bandwidth bound per quant drawn on decode."""
    import matplotlib.pyplot as plt

    fig, (decode_ax, prompt_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{s.runtime}\n{s.quant}" for s in speeds]
    x = range(len(speeds))
    decode_ax.bar(x, [s.decode_tps for s in speeds], color="tab:blue", label="measured")
    labelled = False
    for i, s in enumerate(speeds):
        bound = bounds.get(s.quant)
        if bound:
            decode_ax.hlines(bound, i - 0.4, i + 0.4, colors="tab:red", linestyles="--",
                             label=None if labelled else "memory-bandwidth bound")
            labelled = True
            decode_ax.text(i, bound, f"{100 * s.decode_tps / bound:.0f}%", ha="center", va="bottom", fontsize=8)
    decode_ax.set_xticks(list(x), labels, fontsize=8)
    decode_ax.set_ylabel("tokens / s")
    decode_ax.set_title(f"decode (bound: {bandwidth_gbs:.1f} GB/s / weight bytes)")
    decode_ax.legend(fontsize=8)
    prompt_ax.bar(x, [s.prompt_tps for s in speeds], color="tab:green")
    prompt_ax.set_xticks(list(x), labels, fontsize=8)
    prompt_ax.set_title("prompt (prefill)")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
