"""Notebook 06's pure steps: the global batch kept across process counts, loss agreement, and the lm_eval command
sized to the GPUs' dtype. The launches themselves run in notebook 06 (smoke and full-mode rehearsal)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from gemma_helpers import multigpu_lesson as lesson


def test_the_global_batch_is_kept_on_fewer_processes():
    s = SimpleNamespace(per_device_batch=2)
    assert lesson.global_batch(s, 2) == 4
    assert lesson.grad_accum(s, 1, 2) == 2 and lesson.grad_accum(s, 2, 2) == 1
    with pytest.raises(ValueError, match="divide"):
        lesson.grad_accum(s, 3, 2)


def run(label, losses, steps_run=None):
    summary = {"losses": losses, "steps_run": steps_run or len(losses), "steps": losses[-1][0],
               "resumed_from": None, "tokens_per_second": 1.0}
    return lesson.Run(label, "ddp", 1, 1, summary, 1.0, Path("."), [])


def test_loss_agreement_is_relative_and_over_common_steps():
    a = run("a", [[1, 10.0], [2, 8.0], [3, 7.0]])
    assert lesson.loss_agreement(a, run("b", [[1, 10.0], [2, 8.004]])).ok  # 5e-4 relative, step 3 not compared
    far = lesson.loss_agreement(a, run("c", [[1, 10.0], [2, 8.8]]))
    assert not far.ok and "DISAGREE" in far.describe()
    with pytest.raises(ValueError, match="no common step"):
        lesson.loss_agreement(a, run("d", [[1, 10.0]]), after=1)


def test_lm_eval_sizes_the_model_to_the_dtype_the_gpus_must_use():
    t4 = lesson.Here(2, True)  # no GPU here: Kaggle's two T4s, float32 (no bfloat16, Gemma 3 overflows float16)
    hf, vllm = lesson.lm_eval_line(t4, "hf"), lesson.lm_eval_line(t4, "vllm")
    assert "gemma-3-1b-it,dtype=float32" in hf and "--num_processes 2" in hf  # a 4B copy (17 GB) fits no T4
    assert "gemma-3-4b-it,tensor_parallel_size=2" in vllm and "dtype=float32" in vllm  # 8.6 GB per T4
    h100 = lesson.Here(8, False, "NVIDIA H100 80GB HBM3", "9.0", 85.0)
    assert "gemma-3-27b-it,dtype=bfloat16" in lesson.lm_eval_line(h100, "hf")


def test_the_lesson_trains_the_4b_architecture_where_one_gpu_holds_it(monkeypatch):
    """Single and DDP keep a whole copy per GPU: the 4B where one GPU holds it in the script's dtype (bf16 on an
    H100), the fallback on a T4 (float32 there: ~17 GB of weights alone), the settings' model on the CPU."""
    from gemma_helpers.env import build_config

    s = build_config("full", has_cuda=True, scale=0.05).multigpu
    assert s.model == "unsloth/gemma-3-4b-it" and s.fallback_model == "unsloth/gemma-3-270m-it"
    monkeypatch.setattr(lesson, "here", lambda _: lesson.Here(2, False, "Tesla T4", "7.5", 15.8))
    model, why = lesson.lesson_model(s)
    assert model == s.fallback_model and "float32" in why
    monkeypatch.setattr(lesson, "here", lambda _: lesson.Here(8, False, "NVIDIA H100 80GB HBM3", "9.0", 85.0))
    assert lesson.lesson_model(s)[0] == s.model and "bfloat16" in lesson.lesson_model(s)[1]
    monkeypatch.setattr(lesson, "here", lambda _: lesson.Here(2, True))
    assert lesson.lesson_model(s)[0] == s.model  # the full-mode rehearsal: the stand-in's tiny 4B
