"""The dtype policy per device, and the float16 overflow found on the real embedded model."""

import math

import pytest

from gemma_helpers import precision
from gemma_helpers.env import Hardware


def _hw(gpu=None, bf16=False, cpu_bf16=False):
    return Hardware(gpu, "7.5" if gpu else None, 15.8 if gpu else None, bf16, cpu_bf16, 2, 24.0, "2.13.0", "3.11",
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


def test_probe_bookkeeping():
    p = precision.Probe("float16", [10.0, 60_000.0, float("inf"), float("nan")], False)
    assert p.first_overflow == 2 and p.first_nonfinite == 2 and p.peak == 60_000.0
    q = precision.Probe("float32", [10.0, 70_000.0, 9.0], True)
    assert q.first_overflow == 1 and q.first_nonfinite is None


@pytest.mark.slow
def test_float16_overflows_on_the_embedded_270m(embedded):
    model, tok = embedded
    text = "The capital of France is Paris. It is known for the Eiffel tower."
    fp32 = precision.activation_probe(model, tok, text)
    fp16 = precision.activation_probe(model, tok, text, dtype="float16")
    assert fp32.logits_finite and fp32.peak > 90_000  # the residual stream passes ~100,000 ...
    assert fp32.first_overflow is not None and fp32.first_overflow <= 9  # ... and float16's limit by layer ~7
    assert fp16.first_nonfinite == 7 and not fp16.logits_finite  # inf at decoder layer 7, NaN after
    assert math.isnan(fp16.layer_max[-1])
    bf16 = precision.activation_probe(model, tok, text, dtype="bfloat16")
    assert bf16.logits_finite and bf16.peak > 65_504  # same range as float32: the fix
