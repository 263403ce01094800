"""The dtype policy per device, and the float16 overflow found on the real embedded model."""

import math

import pytest

from gemma_helpers import models, precision
from gemma_helpers.hardware import Hardware


def _hw(gpu=None, bf16=False, cpu_bf16=False):
    return Hardware(gpu, ("8.0" if bf16 else "7.5") if gpu else None, 15.8 if gpu else None, bf16, cpu_bf16, 2, 24.0, "2.13.0", "3.11",
                    False, False)


def test_policy_per_device():
    assert precision.policy(_hw()).dtype == "float32"
    assert precision.policy(_hw(cpu_bf16=True), backend="unsloth").dtype == "bfloat16"  # Unsloth's CPU backend
    assert precision.policy(_hw(cpu_bf16=True), backend="transformers").dtype == "float32"
    assert precision.policy(_hw("NVIDIA A100", bf16=True)).dtype == "bfloat16"
    t4 = precision.policy(_hw("Tesla T4"), backend="unsloth")
    assert t4.dtype == "float16" and "float32 islands" in t4.reason
    assert precision.policy(_hw("Tesla T4"), backend="transformers").dtype == "float32"
    assert precision.policy(_hw("NVIDIA A100", bf16=True)).trainer_flags == {"bf16": True, "fp16": False}
    with pytest.raises(ValueError):
        precision.policy(_hw(), backend="jax")


def _gpu(name, cap, bf16):
    return Hardware(name, cap, 16.0, bf16, False, 4, 30.0, "2.11.0", "3.11", False, False)


@pytest.mark.parametrize("name,cap,torch_says_bf16,unsloth,plain", [
    ("Tesla P100-PCIE-16GB", "6.0", False, "float16", "float32"),  # Kaggle P100
    ("Tesla T4", "7.5", False, "float16", "float32"),  # Colab and Kaggle T4
    ("Tesla T4", "7.5", True, "float16", "float32"),  # torch's emulation flag does not make a T4 a bf16 GPU
    ("NVIDIA A10", "8.6", True, "bfloat16", "bfloat16"),  # ModelScope DSW's A10
])
def test_policy_on_the_free_platforms_gpus(name, cap, torch_says_bf16, unsloth, plain):
    assert precision.policy(_gpu(name, cap, torch_says_bf16), backend="unsloth").dtype == unsloth
    assert precision.policy(_gpu(name, cap, torch_says_bf16), backend="transformers").dtype == plain


def test_p100_is_below_unsloths_minimum_and_says_what_to_do():
    assert "backend='transformers'" in precision.policy(_gpu("Tesla P100-PCIE-16GB", "6.0", False)).reason
    assert "minimum" not in precision.policy(_gpu("Tesla T4", "7.5", False)).reason


def test_capability_parsing():
    assert precision.capability("8.6") == (8, 6) and precision.capability(None) is None
    with pytest.raises(ValueError, match="major.minor"):
        precision.capability("Ampere")


def test_probe_bookkeeping():
    p = precision.Probe("float16", [10.0, 60_000.0, float("inf"), float("nan")], False)
    assert p.first_overflow == 2 and p.first_nonfinite == 2 and p.peak == 60_000.0
    q = precision.Probe("float32", [10.0, 70_000.0, 9.0], True)
    assert q.first_overflow == 1 and q.first_nonfinite is None


def test_verdicts_are_read_off_the_values():
    overflow = precision.DtypeCheck(precision.Probe("float16", [10.0, float("inf"), float("nan")], False), "<pad>", False)
    assert overflow.verdict.startswith("float16: inf/NaN from decoder layer 1, logits finite: False")
    calm = precision.DtypeCheck(precision.Probe("float16", [10.0, 1234.0], True), " Paris", True)
    assert "largest |h| 1,234 (stays below 65,504)" in calm.verdict  # a model that does not overflow is not said to
    big = precision.DtypeCheck(precision.Probe("float32", [10.0, 70_000.0], True), " Paris", True)
    assert "passes 65,504 at layer 1" in big.verdict


@pytest.fixture(scope="module")
def tiny_gemma_dir(tmp_path_factory):
    """A 2-layer random Gemma 3 saved with the embedded model's tokenizer: a model folder to probe by name."""
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from gemma_helpers import models

    folder = tmp_path_factory.mktemp("tiny-gemma")
    tok = AutoTokenizer.from_pretrained(models.embedded_model_dir())
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=16)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_plain_copy_probe_is_the_same_in_a_fresh_process(tiny_gemma_dir):
    here = precision.check_dtypes(str(tiny_gemma_dir), "The capital of France", "The Eiffel Tower is in",
                                  fresh_process=False)
    child = precision.check_dtypes(str(tiny_gemma_dir), "The capital of France", "The Eiffel Tower is in",
                                   fresh_process=True)
    assert list(here) == list(child) == ["float32", "float16", "bfloat16"]
    for dtype in here:
        assert here[dtype].probe.layer_max == pytest.approx(child[dtype].probe.layer_max)
        assert here[dtype].probe.dtype == dtype and here[dtype].next_token == child[dtype].next_token
        assert len(here[dtype].probe.layer_max) == 2  # one value per decoder layer


def test_fresh_process_once_unsloth_patched_gemma3_for_float16(monkeypatch, tiny_gemma_dir):
    """After Unsloth loads Gemma 3 in float16 (a T4), transformers' Gemma 3 classes carry its float32 islands for
    every model of the process: the plain copy must then be probed in a fresh process."""
    calls = []

    def fake_child(path, text, prompt, dtypes):
        calls.append(path)
        return [{"dtype": d, "layer_max": [1.0], "logits_finite": True, "token": "x", "token_finite": True}
                for d in dtypes]

    monkeypatch.setattr(precision, "_check_in_child", fake_child)
    monkeypatch.setenv("UNSLOTH_FORCE_FLOAT32", "1")
    precision.check_dtypes(str(tiny_gemma_dir), "a", "b")
    assert calls == [str(tiny_gemma_dir)]
    monkeypatch.setenv("UNSLOTH_FORCE_FLOAT32", "0")
    precision.check_dtypes(str(tiny_gemma_dir), "a", "b", dtypes=("float32",))
    assert len(calls) == 1  # unpatched: probed in this process


@pytest.mark.slow
def test_plain_copy_of_the_embedded_270m_overflows_in_float16():
    checks = precision.check_dtypes(models.loadable("embedded"), "The capital of France is Paris. It is known for the Eiffel tower.",
                                    "The Eiffel Tower is in the city of")
    fp32, fp16, bf16 = (checks[d].probe for d in ("float32", "float16", "bfloat16"))
    assert fp32.logits_finite and fp32.peak > 90_000  # the residual stream passes ~100,000 ...
    assert fp32.first_overflow is not None and fp32.first_overflow <= 9  # ... and float16's limit by layer ~7
    assert fp16.first_nonfinite == 7 and not fp16.logits_finite and math.isnan(fp16.layer_max[-1])  # inf, then NaN
    assert not checks["float16"].next_token_finite
    assert checks["float32"].next_token == " Paris"
    assert bf16.logits_finite and bf16.peak > 65_504  # float32's range: the fix
