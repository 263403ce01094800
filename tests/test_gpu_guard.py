"""Loud on a GPU (gpu_guard), with torch.cuda mocked: a failed Unsloth import stops, memory left allocated is named."""

import pytest
import torch

from gemma_helpers import gpu_guard, models


@pytest.fixture
def cuda(monkeypatch):
    """torch.cuda as on a GPU machine: available, an empty cache, `allocated` bytes in use (set by the test)."""
    state = {"allocated": 0, "emptied": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a, **k: state["allocated"])
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: state.__setitem__("emptied", state["emptied"] + 1))
    return state


def _unsloth_breaks(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "unsloth":
            raise ImportError("libcudart.so.13: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delenv("GEMMA_NO_UNSLOTH", raising=False)


def test_a_failed_unsloth_import_on_a_gpu_stops_with_the_error_and_the_fix(cuda, monkeypatch):
    _unsloth_breaks(monkeypatch)
    with pytest.raises(gpu_guard.UnslothImportError) as err:
        models.default_backend()
    text = str(err.value)
    assert "libcudart.so.13" in text and "run the install cell again" in text and "GEMMA_NO_UNSLOTH=1" in text
    assert isinstance(err.value.__cause__, ImportError)


def test_the_vision_lesson_stops_too(cuda, monkeypatch):
    from gemma_helpers import vision

    _unsloth_breaks(monkeypatch)
    with pytest.raises(gpu_guard.UnslothImportError):
        vision.choose_backend("unsloth/gemma-3-4b-it")


def test_without_a_gpu_or_when_asked_the_fallback_stays(monkeypatch):
    _unsloth_breaks(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.default_backend() == "transformers"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("GEMMA_NO_UNSLOTH", "1")
    assert models.default_backend() == "transformers"
    gpu_guard.unsloth_failed(ImportError("x"), {"GEMMA_NO_UNSLOTH": "1"})  # returns: a deliberate choice


def test_release_memory_passes_under_the_limit(cuda):
    cuda["allocated"] = 300_000_000
    assert gpu_guard.release_memory(namespace={}) == pytest.approx(0.3)
    assert cuda["emptied"] == 1


def test_release_memory_names_what_still_holds_the_gpu(cuda, monkeypatch):
    cuda["allocated"] = 8_600_000_000
    vmodel, small = torch.nn.Linear(4, 4), torch.zeros(2)
    sizes = {id(vmodel): 8_400_000_000, id(small): 1000}
    monkeypatch.setattr(gpu_guard, "_gpu_bytes", lambda value: sizes.get(id(value), 0))
    with pytest.raises(gpu_guard.GpuMemoryHeldError) as err:
        gpu_guard.release_memory(namespace={"vmodel": vmodel, "small": small, "_": vmodel})
    text = str(err.value)
    assert "8.6 GB is still allocated" in text and "vmodel (8.4 GB)" in text and "del vmodel" in text
    assert "small" not in text.split("Still held by")[1]


def test_release_memory_says_so_when_no_variable_holds_it(cuda):
    cuda["allocated"] = 3_000_000_000
    with pytest.raises(gpu_guard.GpuMemoryHeldError, match="no notebook variable holds it directly"):
        gpu_guard.release_memory(namespace={"x": 1})


def test_gpu_bytes_counts_cuda_tensors_only():
    assert gpu_guard._gpu_bytes(torch.nn.Linear(10, 10)) == 0  # on the CPU
    assert gpu_guard._gpu_bytes("text") == 0


def test_notebook_05_releases_through_the_guard():
    from gemma_helpers import text_benchmarks

    assert text_benchmarks.release_memory is gpu_guard.release_memory


def test_fp16_can_be_forced_on_a_bf16_gpu(monkeypatch):
    from gemma_helpers import precision
    from gemma_helpers.env import Hardware

    h100 = Hardware("NVIDIA H100", "9.0", 80.0, True, True, 16, 128.0, "2.13", "3.12", False, False)
    monkeypatch.delenv("GEMMA_FORCE_FP16", raising=False)
    assert precision.policy(h100).dtype == "bfloat16"
    monkeypatch.setenv("GEMMA_FORCE_FP16", "1")
    forced = precision.policy(h100)
    assert forced.dtype == "float16" and "GEMMA_FORCE_FP16=1" in forced.reason
