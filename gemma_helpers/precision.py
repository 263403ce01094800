"""Which dtype to run Gemma 3 in, and the probe that shows why float16 breaks it.

Gemma 3's residual stream grows far past float16's largest finite value, 65,504 (the embedded 270M reaches
about 104,000 by layer 14). In float16 the hidden state turns to ``inf`` and then every logit to ``NaN``.
bfloat16 has float32's exponent range and is safe; the free Colab T4 has no bfloat16, so there Unsloth keeps
the overflowing parts in float32 ("fp32 islands") and plain transformers must run in float32.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .hardware import Hardware, hardware_report
from .messages import say

FP16_MAX = 65504.0


@dataclass(frozen=True)
class Policy:
    """A dtype decision for one device and backend, with its reason."""

    device: str  # "cuda" or "cpu"
    dtype: str  # "bfloat16", "float16" or "float32": what the weights and activations are computed in
    backend: str  # "unsloth" or "transformers"
    reason: str

    @property
    def torch_dtype(self):
        """The torch dtype object."""
        import torch

        return getattr(torch, self.dtype)

    @property
    def trainer_flags(self) -> dict[str, bool]:
        """bf16/fp16 flags for a transformers/TRL TrainingArguments."""
        return {"bf16": self.dtype == "bfloat16", "fp16": self.dtype == "float16"}


# bfloat16 tensor cores arrive with compute capability 8.0 (Ampere: A100, A10 is 8.6); Kaggle's P100 (6.0) and the
# T4 of Colab and Kaggle (7.5) have none, whatever torch's emulation flag says. Unsloth states 7.0 as its minimum
# (unsloth.ai/docs, "Unsloth Requirements": V100, T4 and newer; GTX 10xx cards run, slowly).
BF16_MIN_CAPABILITY = (8, 0)
UNSLOTH_MIN_CAPABILITY = (7, 0)


def capability(value: str | None) -> tuple[int, int] | None:
    """'7.5' -> (7, 5); None or '' -> None; anything else is an error that says the expected form."""
    if not value:
        return None
    major, _, minor = str(value).partition(".")
    if not (major.isdigit() and (minor or "0").isdigit()):
        raise ValueError(f"compute capability must look like '7.5' (major.minor), not {value!r}")
    return int(major), int(minor or 0)


def gpu_bf16(hardware) -> bool:
    """bfloat16 on this GPU: the probe said so and, where the capability is known, it is 8.0 or newer."""
    cap = capability(hardware.compute_capability)
    return bool(hardware.bf16_supported) and (cap is None or cap >= BF16_MIN_CAPABILITY)


def fp16_forced(environ: Mapping[str, str] | None = None) -> bool:
    """GEMMA_FORCE_FP16=1 (``make gpu-check``): a bfloat16 GPU takes the float16 path a T4 takes."""
    environ = os.environ if environ is None else environ
    return environ.get("GEMMA_FORCE_FP16", "").strip() == "1"


def policy(hardware: Hardware | None = None, backend: str = "unsloth") -> Policy:
    """The dtype policy: bf16 where supported; on fp16-only GPUs Unsloth's fp32 islands or plain fp32; else fp32."""
    if backend not in ("unsloth", "transformers"):
        raise ValueError(f"backend must be 'unsloth' or 'transformers', not {backend!r}")
    if hardware is None:
        hardware = hardware_report()
    if hardware.gpu_name is None:
        if backend == "unsloth" and hardware.cpu_bf16:
            return Policy("cpu", "bfloat16", backend, say("precision.cpu_bf16"))
        if backend == "unsloth":
            return Policy("cpu", "float32", backend, say("precision.cpu_no_bf16"))
        return Policy("cpu", "float32", backend, say("precision.cpu_plain"))
    forced = say("precision.forced_fp16") if fp16_forced() else ""
    if gpu_bf16(hardware) and not forced:
        return Policy("cuda", "bfloat16", backend, say("precision.gpu_bf16", gpu=hardware.gpu_name))
    if backend == "unsloth":
        cap = capability(hardware.compute_capability)
        old_gpu = say("precision.old_gpu") if cap is not None and cap < UNSLOTH_MIN_CAPABILITY else ""
        return Policy("cuda", "float16", backend,
                      say("precision.gpu_fp16_unsloth", gpu=hardware.gpu_name, old_gpu=old_gpu) + forced)
    return Policy("cuda", "float32", backend, say("precision.gpu_fp32", gpu=hardware.gpu_name))


@dataclass
class Probe:
    """Per-decoder-layer max |hidden state| of one forward pass (index i = output of decoder layer i, from 0)."""

    dtype: str
    layer_max: list[float]
    logits_finite: bool

    @property
    def first_overflow(self) -> int | None:
        """First layer whose max |h| passes float16's limit (or is already inf/NaN), else None."""
        for i, value in enumerate(self.layer_max):
            if not value == value or value > FP16_MAX:  # NaN compares unequal to itself
                return i
        return None

    @property
    def first_nonfinite(self) -> int | None:
        """First layer whose hidden state holds inf or NaN, else None."""
        for i, value in enumerate(self.layer_max):
            if not (value == value) or value == float("inf"):
                return i
        return None

    @property
    def peak(self) -> float:
        """Largest finite per-layer value."""
        finite = [v for v in self.layer_max if v == v and v != float("inf")]
        return max(finite) if finite else float("nan")


def in_dtype(model, dtype: str | None):
    """The model itself if it already runs in dtype (or dtype is None), else a copy cast to dtype."""
    import copy

    import torch

    if dtype is None or next(model.parameters()).dtype == getattr(torch, dtype):
        return model
    return copy.deepcopy(model).to(getattr(torch, dtype))


def decoder_layers(model):
    """The model's list of decoder layers (text or image+text Gemma 3)."""
    import torch

    for name, module in model.named_modules():
        if name.endswith("layers") and isinstance(module, torch.nn.ModuleList) and "vision" not in name:
            return module
    raise ValueError(f"no decoder layers found in {type(model).__name__}")


def activation_probe(model, tokenizer, text: str, dtype: str | None = None) -> Probe:
    """Run one forward pass (optionally on a copy cast to dtype) and record max |h| after every decoder layer."""
    import torch

    run = in_dtype(model, dtype)
    layer_max: list[float] = []

    def record(_module, _inputs, output):
        h = (output[0] if isinstance(output, tuple) else output).detach().float().abs()
        layer_max.append(float("nan") if torch.isnan(h).any() else float(h.max()))

    hooks = [layer.register_forward_hook(record) for layer in decoder_layers(run)]
    try:
        ids = tokenizer(text, return_tensors="pt").to(next(run.parameters()).device)
        with torch.no_grad():
            logits = run(**ids).logits
    finally:
        for hook in hooks:
            hook.remove()
    used = str(next(run.parameters()).dtype).replace("torch.", "")
    return Probe(used, layer_max, bool(torch.isfinite(logits).all()))


def next_token(model, tokenizer, text: str, dtype: str | None = None) -> tuple[str, bool]:
    """The greedy next token after text in a dtype (on a copy), and whether all logits were finite."""
    import torch

    run = in_dtype(model, dtype)
    ids = tokenizer(text, return_tensors="pt").to(next(run.parameters()).device)
    with torch.no_grad():
        logits = run(**ids).logits[0, -1]
    return tokenizer.decode([int(logits.float().argmax())]), bool(torch.isfinite(logits).all())


PROBE_DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class DtypeCheck:
    """One dtype on a plain copy of a model: the per-layer probe of a text, and the greedy next token of a prompt."""

    probe: Probe
    next_token: str
    next_token_finite: bool

    @property
    def verdict(self) -> str:
        """What this dtype did, in words read off the measured values."""
        p = self.probe
        if p.first_nonfinite is not None:
            return say("precision.verdict_nonfinite", dtype=p.dtype, layer=p.first_nonfinite,
                       finite=p.logits_finite, token=self.next_token)
        where = (say("precision.passes_at", layer=p.first_overflow) if p.first_overflow is not None
                 else say("precision.stays_below"))
        return say("precision.verdict_finite", dtype=p.dtype, peak=p.peak, where=where, finite=p.logits_finite,
                   token=self.next_token)


def _forced_float32_patched() -> bool:
    """True once Unsloth has loaded Gemma 3 in float16 in this process: it then patches transformers' Gemma 3 classes
    (float32 islands, clamping to float16's range) for every model of this process, a plain copy included."""
    import os

    return os.environ.get("UNSLOTH_FORCE_FLOAT32", "0") == "1"


def check_dtypes(path: str, text: str, prompt: str, dtypes: Sequence[str] = PROBE_DTYPES,
                 fresh_process: bool | None = None) -> dict[str, DtypeCheck]:
    """Probe a **plain transformers copy** of a model (a folder or hub id as transformers opens it; for one of the
    curriculum's names, ``models.loadable(name)``), loaded in float32 on the CPU and cast to each dtype: no Unsloth
    float32 islands, and the same arithmetic on every machine (on a T4, bfloat16 would only be emulated). Runs in a
    fresh Python process when Unsloth's float16 patches are active here (``fresh_process=None`` decides), so that
    they cannot hide the overflow."""
    fresh = _forced_float32_patched() if fresh_process is None else fresh_process
    rows = _check_in_child(path, text, prompt, dtypes) if fresh else _check_here(path, text, prompt, dtypes)
    return {row["dtype"]: DtypeCheck(Probe(row["dtype"], row["layer_max"], row["logits_finite"]), row["token"],
                                     row["token_finite"]) for row in rows}


def _check_here(path: str, text: str, prompt: str, dtypes: Sequence[str]) -> list[dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, device_map="cpu").eval()
    rows = []
    for dtype in dtypes:
        run = in_dtype(model, dtype)  # one copy per dtype, for both measurements
        probe = activation_probe(run, tokenizer, text)
        token, finite = next_token(run, tokenizer, prompt)
        del run
        rows.append({"dtype": dtype, "layer_max": probe.layer_max, "logits_finite": probe.logits_finite,
                     "token": token, "token_finite": finite})
    return rows


def _check_in_child(path: str, text: str, prompt: str, dtypes: Sequence[str]) -> list[dict[str, Any]]:
    import json
    import subprocess
    import sys

    args = json.dumps({"path": path, "text": text, "prompt": prompt, "dtypes": list(dtypes)})
    done = subprocess.run([sys.executable, "-m", "gemma_helpers.precision", args], capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"the fresh-process probe failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot_probe(*probes: Probe, ax: Any = None, title: str = "Largest |hidden state| per layer"):
    """Plot per-layer magnitudes on a log scale against float16's limit; NaN/inf layers marked with x."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ModuleNotFoundError("the activation plot needs the `matplotlib` package: pip install matplotlib",
                                  name="matplotlib") from err

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    styles = [("-", "o", 2.5), ("--", "s", 1.5), (":", "^", 1.5)]
    for k, probe in enumerate(probes):
        xs = list(range(len(probe.layer_max)))
        finite = [(x, v) for x, v in zip(xs, probe.layer_max, strict=True) if v == v and v != float("inf")]
        line, marker, width = styles[k % len(styles)]
        ax.plot([x for x, _ in finite], [v for _, v in finite], linestyle=line, marker=marker, linewidth=width,
                markersize=4, label=probe.dtype)
        bad = probe.first_nonfinite
        if bad is not None:
            top = FP16_MAX * 3
            ax.scatter(xs[bad:], [top] * (len(xs) - bad), marker="x", color="red",
                       label=f"{probe.dtype}: inf/NaN from layer {bad}")
    ax.axhline(FP16_MAX, color="black", linestyle="--", linewidth=1, label="float16 max (65,504)")
    ax.set_yscale("log")
    ax.set_xlabel("decoder layer")
    ax.set_xticks(range(0, max(len(p.layer_max) for p in probes), 2))
    ax.set_ylabel("max |h|")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


if __name__ == "__main__":  # the fresh process of check_dtypes: one JSON argument in, one JSON line out
    import json
    import sys

    _job = json.loads(sys.argv[1])
    print(json.dumps(_check_here(_job["path"], _job["text"], _job["prompt"], _job["dtypes"])))
