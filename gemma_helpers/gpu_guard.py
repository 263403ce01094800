"""Loud on a GPU: where CUDA is present, what would silently run slower or differently stops instead, with the fix.

* :func:`unsloth_failed`: a failed ``import unsloth`` on a CUDA machine raises :class:`UnslothImportError` (the
  import error, and how to repair the install) instead of letting the lessons fall back to plain transformers,
  which trains the 4B in float32 without gradient checkpointing: slower, far more memory, and not the lesson.
  ``GEMMA_NO_UNSLOTH=1`` is the one deliberate way to run without Unsloth on a GPU.
* :func:`release_memory`: after ``del model``, frees Python's garbage and the CUDA cache, then checks that less
  than ``limit_gb`` stays allocated on the GPU; if more does, :class:`GpuMemoryHeldError` names the notebook
  variables that still hold GPU tensors (``del`` them and call it again).

The messages are plain English sentences that end with the fix (a message catalogue can take them whole).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping
from typing import Any

from .envcheck import pinned
from .messages import say

RELEASE_LIMIT_GB = 1.0  # what may stay allocated after release_memory: the CUDA cache of a few small tensors


class UnslothImportError(RuntimeError):
    """Unsloth did not import on a machine with a CUDA GPU."""


class GpuMemoryHeldError(RuntimeError):
    """More than the limit stayed allocated on the GPU after release_memory."""


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def unsloth_failed(error: BaseException, environ: Mapping[str, str] | None = None) -> None:
    """Called where ``import unsloth`` raised: on a CUDA GPU this raises UnslothImportError (unless
    GEMMA_NO_UNSLOTH=1 asked for the run without Unsloth); on a CPU it returns and the caller falls back."""
    environ = os.environ if environ is None else environ
    if environ.get("GEMMA_NO_UNSLOTH", "") == "1" or not _cuda():
        return
    raise UnslothImportError(unsloth_message(error)) from error


def unsloth_message(error: BaseException) -> str:
    """The message of UnslothImportError: what failed, why the notebook stops, and the fix."""
    try:
        version = f" {pinned('unsloth')}"
    except Exception:  # the message must not fail for want of pins.toml
        version = ""
    return say("gpu_guard.unsloth_failed", error=f"{type(error).__name__}: {error}", version=version)


def _gpu_bytes(value: Any) -> int:
    """Bytes of CUDA memory a notebook variable holds directly: a tensor, a module's parameters and buffers, or the
    model of a (model, tokenizer) pair or a trainer."""
    try:
        import torch
    except ImportError:
        return 0
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size() if value.is_cuda else 0
    if isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors if t.is_cuda)
    inner = getattr(value, "model", None)  # a trainer, a pipeline
    if inner is not None and inner is not value and isinstance(inner, torch.nn.Module):
        return _gpu_bytes(inner)
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        return sum(_gpu_bytes(v) for v in value)
    return 0


def holders(namespace: Mapping[str, Any], min_bytes: int = 10_000_000) -> list[tuple[str, float]]:
    """(name, GB) of the variables in namespace that hold at least min_bytes of GPU memory, largest first."""
    found = []
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        held = _gpu_bytes(value)
        if held >= min_bytes:
            found.append((name, held / 1e9))
    return sorted(found, key=lambda item: -item[1])


def _notebook_namespace() -> Mapping[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    main = sys.modules.get("__main__")
    return vars(main) if main is not None else {}


def held_message(allocated_gb: float, limit_gb: float, held: list[tuple[str, float]]) -> str:
    """The message of GpuMemoryHeldError: how much stays, who holds it, and the fix."""
    if held:
        names = ", ".join(f"{name} ({gb:.1f} GB)" for name, gb in held)
        return say("gpu_guard.held_by", allocated=allocated_gb, limit=limit_gb, names=names,
                   dels=", ".join(name for name, _ in held))
    return say("gpu_guard.held_unknown", allocated=allocated_gb, limit=limit_gb)


def release_memory(limit_gb: float = RELEASE_LIMIT_GB, namespace: Mapping[str, Any] | None = None) -> float:
    """Give back memory after ``del model``: Python's garbage, the CUDA cache, then check what stays allocated.

    Returns the GB still allocated on the GPU (0.0 without one); raises GpuMemoryHeldError above limit_gb, naming
    the variables of namespace (default: the notebook's) that hold GPU tensors."""
    gc.collect()
    if not _cuda():
        return 0.0
    import torch

    torch.cuda.empty_cache()
    allocated = torch.cuda.memory_allocated() / 1e9
    if allocated > limit_gb:
        held = holders(_notebook_namespace() if namespace is None else namespace)
        raise GpuMemoryHeldError(held_message(allocated, limit_gb, held))
    return allocated
