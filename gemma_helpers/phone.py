"""Carrying a GGUF to a phone: how much memory it needs at 2K and 8K context, which phones hold it, and the apps.

Phones are the planner's (:data:`gemma_helpers.memory.DEVICES`): a 4 / 6 / 8 GB phone leaves a model about
1.8 / 3.0 / 4.2 GB. For a file we made, the weights are its measured size; for the five sizes, the planner's estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .catalog import CATALOG
from .llamacpp import ExportedFile
from .memory import plan_memory
from .prompts import RECOMMENDED

_SAMPLING = (f"temperature {RECOMMENDED.temperature}, top-k {RECOMMENDED.top_k}, top-p {RECOMMENDED.top_p}, "
             f"min-p {RECOMMENDED.min_p}")

PHONES = ("phone 4 GB", "phone 6 GB", "phone 8 GB")
PHONE_APPS: dict[str, list[str]] = {
    "PocketPal AI (Android, iOS)": [
        "Copy the .gguf to the phone (USB, cloud drive or the Files app) and check its sha256 if you can.",
        "Models tab -> the + button -> Add Local Model -> pick the file.",
        f"Open the model's settings: keep its chat template (the GGUF carries ours), set {_SAMPLING}; "
        "context 2048 on a 4 GB phone.",
        "Load the model and chat; the reply ends at <end_of_turn>.",
    ],
    "ChatterUI (Android)": [
        "Copy the .gguf to the phone.",
        "Switch to Local mode -> Models -> Import Model -> pick the file (ChatterUI copies it into its storage).",
        f"Sampler: {_SAMPLING}; instruct format: the model's own template.",
        "Load it and chat.",
    ],
    "AnythingLLM (desktop; its phone app does not import files)": [
        "LLM preference -> AnythingLLM (built-in) -> Import custom model -> pick the .gguf; wait for the import.",
        "Or serve the file with Ollama (notebook 02's Modelfile) and choose the Ollama provider.",
    ],
}


def _plan_for_file(size: str, quant: str, context: int, file_bytes: int):
    """The planner's plan for a context, with the weights replaced by a measured file size."""
    from dataclasses import replace

    estimate = plan_memory(size, quant if quant in ("bf16", "f16", "q8_0", "q4_k_m", "q4_0") else "f16", context)
    weights_gb = file_bytes / 1e9
    return replace(estimate, quant=quant, weights_gb=weights_gb, overhead_gb=0.15 + 0.05 * weights_gb)


def phone_table(files: dict[str, ExportedFile], size: str = "270m",
                contexts: Sequence[int] = (2048, 8192)) -> list[dict[str, Any]]:
    """Per exported file: MB, RAM (GB) at each context (file + KV cache + runtime overhead), which phones hold it."""
    rows = []
    for quant, f in files.items():
        row: dict[str, Any] = {"quant": quant, "file MB": round(f.size_mb, 1)}
        for ctx in contexts:
            plan = _plan_for_file(size, quant, ctx, f.size_bytes)
            row[f"RAM GB @{ctx // 1024}K"] = round(plan.total_gb, 2)
            row[f"phones @{ctx // 1024}K"] = ", ".join(p.split()[1] + " GB" for p in PHONES if plan.fits(p)) or "none"
        rows.append(row)
    return rows


def planner_phone_table(quants: Sequence[str] = ("f16", "q8_0", "q4_k_m"),
                        contexts: Sequence[int] = (2048, 8192)) -> list[dict[str, Any]]:
    """The planner's estimate for all five Gemma 3 sizes: GB per quant and context, and the phones that hold it."""
    rows = []
    for name in CATALOG:
        for quant in quants:
            row: dict[str, Any] = {"size": name.upper(), "quant": quant,
                                   "weights GB": round(plan_memory(name, quant, contexts[0]).weights_gb, 2)}
            for ctx in contexts:
                plan = plan_memory(name, quant, ctx)
                row[f"RAM GB @{ctx // 1024}K"] = round(plan.total_gb, 2)
                row[f"phones @{ctx // 1024}K"] = ", ".join(p.split()[1] + " GB" for p in PHONES if plan.fits(p)) \
                    or "none"
            rows.append(row)
    return rows
