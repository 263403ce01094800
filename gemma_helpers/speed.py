"""How fast a model reads prompts and writes tokens, and how fast memory lets it write them.

Decoding one token reads every weight once (Gemma ties the output head to the token embedding, so even the
embedding matrix is read in full for the logits). So tokens/s can never exceed
``memory bandwidth / bytes of weights``: :func:`bandwidth_bound`, where the bandwidth is that of the memory the
weights sit in: RAM for a CPU runtime (:func:`memory_bandwidth`, large numpy copies), the GPU's own memory for a GPU
runtime (:func:`gpu_memory_bandwidth`, a device-to-device copy; a T4's is 320 GB/s by specification).
:func:`device_bandwidths` picks the right one for each device a measurement ran on. :func:`llama_cpp_speed` and
:func:`transformers_speed` measure prompt and decode tokens/s the same way (greedy, a warm-up first);
:func:`speed_table` puts each next to its bound and :func:`plot_speed` draws them. :func:`measure_runtimes` does the
whole measurement of notebook 02 (and of ``bench/runtimes.py``): transformers and llama.cpp on every GGUF, the bytes
each reads per token, and each device's bandwidth.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import gguf_files
from .hardware import hardware_report
from .llamacpp import import_llama_cpp


@dataclass(frozen=True)
class Speed:
    """Prompt (prefill) and generation (decode) tokens per second of one runtime on one file or model."""

    runtime: str
    quant: str
    prompt_tokens: int
    prompt_tps: float
    gen_tokens: int
    decode_tps: float
    device: str = "cpu"  # where the weights sit while decoding: "cpu" (RAM) or "cuda" (the GPU's memory)


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


# Memory bandwidth by specification (GB/s) of GPUs a learner meets on Colab and in clouds; matched in this order
# against torch's device name ("Tesla T4", "NVIDIA A100-SXM4-80GB", ...).
GPU_SPEC_BANDWIDTH_GBS = (("T4", 320.0), ("L4", 300.0), ("V100", 900.0), ("A100-SXM4-40GB", 1555.0),
                          ("A100-SXM4-80GB", 2039.0), ("H100 80GB HBM3", 3350.0), ("H200", 4800.0))


def gpu_spec_bandwidth(gpu_name: str | None) -> float | None:
    """The GPU's memory bandwidth by specification in GB/s (None for a GPU not in GPU_SPEC_BANDWIDTH_GBS)."""
    for key, gbs in GPU_SPEC_BANDWIDTH_GBS:
        if gpu_name and key.lower() in gpu_name.lower():
            return gbs
    return None


def gpu_memory_bandwidth(mb: int = 512, repeats: int = 10) -> float:
    """Best-of-`repeats` device-to-device copy bandwidth of the first CUDA GPU in GB/s (bytes read + bytes written)."""
    import torch

    src = torch.ones(mb * (1 << 20) // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):  # the first copy warms the allocator and the clocks up
        torch.cuda.synchronize()
        started = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * mb * (1 << 20) / best / 1e9


@dataclass(frozen=True)
class Bandwidth:
    """The memory bandwidth that bounds decoding on one device, and where the number comes from."""

    device: str  # "cpu" or "cuda"
    gbs: float
    source: str
    spec_gbs: float | None = None  # the GPU's specification, when known


def device_bandwidths(devices, hardware=None, measure_gpu: bool = True,
                      threads: int | None = None) -> dict[str, Bandwidth]:
    """For each device a speed was measured on, the bandwidth of the memory its weights were read from: RAM for
    "cpu" (measured with `threads` copying threads), the GPU's memory for "cuda" (measured with a device-to-device
    copy, or its specification when measure_gpu=False). `hardware` is a hardware.Hardware report (probed when None)."""
    out: dict[str, Bandwidth] = {}
    for device in dict.fromkeys(devices):
        if device == "cpu":
            out[device] = Bandwidth("cpu", memory_bandwidth(threads=threads), "RAM, measured with large array copies")
            continue
        if device != "cuda":
            raise ValueError(f"no bandwidth for device {device!r}: speeds run on 'cpu' or 'cuda'")
        if hardware is None:
            hardware = hardware_report()
        if not hardware.gpu_name:
            raise ValueError("a speed was measured on CUDA, but the hardware report names no GPU")
        spec = gpu_spec_bandwidth(hardware.gpu_name)
        spec_text = f" (specification: {spec:.0f} GB/s)" if spec else ""
        if measure_gpu:
            out[device] = Bandwidth("cuda", gpu_memory_bandwidth(),
                                    f"{hardware.gpu_name} memory, measured with a device-to-device copy{spec_text}",
                                    spec)
        elif spec:
            out[device] = Bandwidth("cuda", spec, f"{hardware.gpu_name} memory, by specification", spec)
        else:
            raise ValueError(f"no specification known for {hardware.gpu_name}: measure it (measure_gpu=True)")
    return out


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
    Llama = import_llama_cpp().Llama

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
    # the weights stay in RAM: llama-cpp-python offloads no layer to a GPU unless n_gpu_layers is given
    return Speed("llama.cpp", quant, prompt_tokens, prompt_tokens / (first - started), gen_tokens,
                 (gen_tokens - 1) / (done - first), "cpu")


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
                 (gen_tokens - 1) / max(total - prefill, 1e-9), model.device.type)


def speed_table(speeds: Sequence[Speed], bytes_per_token: dict[str, float],
                bandwidths: dict[str, Bandwidth]) -> list[dict[str, Any]]:
    """One row per speed: where it ran, MB read per token, tokens/s, and its bound from *its* device's bandwidth."""
    rows = []
    for s in speeds:
        bw = bandwidths[s.device]
        bound = bandwidth_bound(bytes_per_token[s.quant], bw.gbs)
        rows.append({"runtime": s.runtime, "weights": s.quant, "device": s.device,
                     "MB read per token": round(bytes_per_token[s.quant] / 1e6), "prompt tok/s": round(s.prompt_tps, 1),
                     "decode tok/s": round(s.decode_tps, 1), "bandwidth GB/s": round(bw.gbs, 1),
                     "bound tok/s": round(bound, 1), "% of bound": round(100 * s.decode_tps / bound)})
    return rows


@dataclass
class RuntimeSpeeds:
    """Every runtime's speed, the bytes each reads per generated token, and the bandwidth of each device used."""

    speeds: list[Speed]
    bytes_per_token: dict[str, float]
    bandwidths: dict[str, Bandwidth]

    def bounds(self) -> dict[str, float]:
        """Each runtime's decode bound (tokens/s) from its own device's bandwidth, by quant type."""
        return {s.quant: bandwidth_bound(self.bytes_per_token[s.quant], self.bandwidths[s.device].gbs)
                for s in self.speeds}

    def table(self) -> list[dict[str, Any]]:
        """:func:`speed_table` of these measurements."""
        return speed_table(self.speeds, self.bytes_per_token, self.bandwidths)


def measure_runtimes(model, ggufs: Mapping[str, str | Path], prompt_tokens: int = 128, gen_tokens: int = 64,
                     threads: int | None = None) -> RuntimeSpeeds:
    """transformers on `model` (float32) and llama.cpp on each GGUF (quant -> path), the bytes each reads per token
    (4 per parameter; the GGUF's tensor table), and the bandwidth of the memory of each device they ran on."""
    speeds = [transformers_speed(model, "fp32", prompt_tokens, gen_tokens)]
    bytes_per_token = {"fp32": 4 * sum(p.numel() for p in model.parameters())}
    for quant, path in ggufs.items():
        speeds.append(llama_cpp_speed(path, quant, prompt_tokens, gen_tokens, threads=threads))
        bytes_per_token[quant] = gguf_files.read_gguf(path).tensor_bytes
    return RuntimeSpeeds(speeds, bytes_per_token, device_bandwidths((s.device for s in speeds), threads=threads))


def plot_speed(speeds: Sequence[Speed], bounds: dict[str, float], bandwidths: dict[str, Bandwidth],
               path: str | Path | None = None):
    """Bars of decode and prompt tokens/s per runtime and quant; the bandwidth bound per quant drawn on decode."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ModuleNotFoundError("the speed plot needs the `matplotlib` package: pip install matplotlib",
                                  name="matplotlib") from err

    fig, (decode_ax, prompt_ax) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{s.runtime}\n{s.quant} ({s.device})" for s in speeds]
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
    if any(s.device == "cuda" for s in speeds):
        decode_ax.set_yscale("log")  # a GPU's bound is ten times a CPU's and more
    memory = ", ".join(f"{d} {b.gbs:.0f} GB/s" for d, b in bandwidths.items())
    decode_ax.set_title(f"decode (bound: bandwidth / weight bytes; {memory})", fontsize=10)
    decode_ax.legend(fontsize=8)
    prompt_ax.bar(x, [s.prompt_tps for s in speeds], color="tab:green")
    prompt_ax.set_xticks(list(x), labels, fontsize=8)
    prompt_ax.set_title("prompt (prefill)")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig
