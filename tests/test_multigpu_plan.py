"""The multi-GPU planner against two public records, within stated tolerances, and its basic promises."""

import pytest

from gemma_helpers.catalog import GemmaSize
from gemma_helpers.multigpu_plan import (
    MACHINES,
    METHODS,
    STRATEGIES,
    Machine,
    fit_matrix,
    plan_strategies,
    plan_table,
    script_plan,
    script_table,
    tool_table,
)


def by_name(plans):
    return {p.strategy: p for p in plans}


def test_every_size_method_and_machine_plans_every_strategy():
    for method in METHODS:
        for machine in MACHINES:
            plans = plan_strategies("4b", method, machine)
            assert [p.strategy for p in plans] == list(STRATEGIES)
            for p in plans:
                assert p.per_gpu_gb > 0 and p.step_s > 0
                assert p.fits or p.reason or p.per_gpu_gb > p.usable_gb
    assert len(fit_matrix()) == 5


def test_27b_needs_two_t4s_and_layer_split_or_fsdp():
    plans = by_name(plan_strategies("27b", "qlora", "2x T4 (Kaggle)"))
    assert not plans["one GPU"].fits and not plans["DDP"].fits  # a full copy does not fit 15 GB
    assert plans["layer split"].fits and plans["FSDP"].fits
    assert plans["layer split"].step_s == plans["one GPU"].step_s  # one GPU busy at a time
    assert not by_name(plan_strategies("27b", "full", "8x H100 80GB"))["DDP"].fits  # 16 B/param x 27B > 80 GB
    assert by_name(plan_strategies("27b", "full", "8x H100 80GB"))["FSDP"].fits


def test_t4_counts_float32_islands():
    t4 = by_name(plan_strategies("4b", "lora", "1x T4"))["one GPU"]
    a100 = by_name(plan_strategies("4b", "lora", "1x A100 80GB"))["one GPU"]
    assert t4.parts["activations"] == pytest.approx(2 * a100.parts["activations"])
    assert "36822" in t4.notes[0]


def test_table_rows_and_clear_errors():
    rows = plan_table("12b", "qlora", "2x T4 (Kaggle)")
    assert [r["strategy"] for r in rows] == list(STRATEGIES)
    assert all(r["fits"] == (r["why not"] == "") for r in rows)
    with pytest.raises(KeyError, match="2x T4"):
        plan_strategies("4b", "qlora", "4x V100")
    with pytest.raises(ValueError, match="qlora"):
        plan_strategies("4b", "dora")


def test_unsloth_kaggle_two_t4_layer_split_record():
    """Issue 18's record of Unsloth's Kaggle 2x T4 notebook: Gemma 4 31B QLoRA, layer split, 60 steps in 2,668 s,
    10.95 GB peak per T4. The notebook is linked as "31B (Kaggle)" from Unsloth's Gemma 4 training guide
    (unsloth.ai/docs/models/gemma-4/train: kaggle.com/code/danielhanchen/gemma4-31b-unsloth); its printed figures
    were not readable from here, so the numbers are those recorded in issue 18, not re-read.
    Gemma 4 31B is not in the catalog, so the plan for Gemma 3 27B is scaled by parameter count (31 / 27.4), which
    ignores the architectures' differences; only the weight and LoRA parts are scaled. Memory: the plan must not be
    below the record and at most 30 % above it: the notebook reports torch's peak reserved memory (no CUDA context),
    its batch and sequence length are assumed here (2 x 512), and the plan errs high (about 15 % above since the
    CUDA context is counted once, in the usable memory).
    Time tolerance 50 %: the tokens per step (2 x 4 accumulation x 512, assumed) are not in the record, and the T4
    utilisation of 0.2 was chosen with this record in view, so this check is a consistency check, not independent."""
    scale = 31e9 / 27.4e9
    plan = by_name(plan_strategies("27b", "qlora", "2x T4 (Kaggle)", batch_size=2, seq_len=512))["layer split"]
    states = sum(v for k, v in plan.parts.items() if "weights" in k)
    estimate = plan.per_gpu_gb + states * (scale - 1)
    assert 10.95 <= estimate <= 10.95 * 1.3
    step_s = plan.step_s * 4 * scale  # gradient accumulation 4
    assert step_s == pytest.approx(2668 / 60, rel=0.5)


LLAMA2_70B = GemmaSize("llama-2-70b", 69e9, 0, False, 4096, "2T", 80, 8192, 28672, 64, 8, 128, 4096, 32000)
TWO_GPUS = Machine("2 GPUs (PEFT's run)", 2, 79.0, True, "unstated", 312.0, "huggingface/peft docs")


def test_peft_fsdp_qlora_llama_70b_record():
    """huggingface/peft docs/source/accelerate/fsdp.md ("Memory usage"), with examples/sft/configs/
    fsdp_config_qlora.yaml (num_processes: 2, FULL_SHARD, fsdp_offload_params: true) and run_peft_qlora_fsdp.sh
    (Llama-2-70b, max_seq_len 2048, per_device_train_batch_size 2, lora_r 8, gradient checkpointing, flash
    attention): 19.6 GB per GPU with CPU offload, 35.6 GB per GPU without. Llama 2 70B's architecture (80 layers,
    hidden 8192, MLP 28672, 8 KV heads, vocab 32000) is passed in as a catalog entry. Tolerance 30 % without offload:
    the docs do not say whether nvidia-smi or torch's counter was read, and the allocator's cache is not modelled.
    With offload the plan is only a lower bound (it holds two gathered layers); the docs add that "GPU memory saving
    when using CPU offloading is untested", so no tighter claim is made."""
    plans = by_name(plan_strategies(LLAMA2_70B, "qlora", TWO_GPUS, batch_size=2, seq_len=2048, lora_r=8))
    assert plans["FSDP"].per_gpu_gb == pytest.approx(35.6, rel=0.3)
    assert plans["FSDP + CPU offload"].per_gpu_gb < 19.6 < plans["FSDP"].per_gpu_gb


def test_12b_qlora_fits_one_t4_as_unsloths_free_notebook_shows():
    """Unsloth's Gemma 3 announcement (unsloth.ai/blog/gemma3, 2025-03-14) and its Gemma 3 model cards on the Hub
    link a free Colab notebook that fine-tunes Gemma 3 (12B): free Colab is one T4, so 12B QLoRA fits one T4 in
    public practice, and the plan must agree (it does: about 13 GB of 15 usable at batch 2 x 512). 16-bit LoRA of 12B
    (24 GB of weights alone) and anything of 27B need more than one T4. This corrects the premise that '12B does not
    fit a free T4 for fine-tuning': it does, quantized; notebook 06 says so."""
    t4 = by_name(plan_strategies("12b", "qlora", "1x T4"))["one GPU"]
    assert t4.fits and 10 < t4.per_gpu_gb <= t4.usable_gb
    assert not by_name(plan_strategies("12b", "lora", "1x T4"))["one GPU"].fits
    assert not any(p.fits for p in plan_strategies("27b", "qlora", "1x T4"))
    assert by_name(plan_strategies("12b", "lora", "2x T4 (Kaggle)"))["FSDP + CPU offload"].fits


def test_the_script_is_planned_in_its_own_dtype_checkpointing_and_sharding():
    """The launched script is plain transformers: float32 on a T4 (4 bytes a parameter, the fp32 TFLOPs), bfloat16 on
    Ampere or newer; activations of every layer on one GPU and DDP, checkpointed under FSDP2; FSDP2's gathered part
    is two layers' weights plus the embedding, not their 16 bytes of optimizer state."""
    t4 = script_plan("4b", "2x T4 (Kaggle)", "DDP")
    h100 = script_plan("4b", "8x H100 80GB", "DDP")
    assert (t4.dtype, h100.dtype) == ("float32", "bfloat16")
    assert t4.parts["weights"] == pytest.approx(4.30 * 4, rel=1e-6) and not t4.fits  # 17.2 GB > a T4's 15 usable
    assert t4.parts["weights"] == pytest.approx(2 * h100.parts["weights"])
    unsloth = by_name(plan_strategies("4b", "lora", "1x T4", batch_size=2))["one GPU"]
    script = script_plan("4b", "1x T4", "one GPU", batch_size=2)  # the same tokens as Unsloth's plan
    assert script.step_s == pytest.approx(unsloth.step_s * 65 / 8.1)  # 8.1 fp32 TFLOPs against 65 fp16: 8x slower
    fsdp = script_plan("4b", "2x T4 (Kaggle)", "FSDP2")
    assert fsdp.checkpointing and not t4.checkpointing and fsdp.fits  # 16-bit LoRA of 4B across Kaggle's two T4s
    assert fsdp.parts["activations"] < t4.parts["activations"] / 5
    layer = (4.30e9 - 0.417e9 - 262_208 * 2560) / 34 * 4 / 1e9
    assert fsdp.parts["gathered: 2 layers + embedding"] == pytest.approx(2 * layer + 262_208 * 2560 * 4 / 1e9)
    assert not script_plan("12b", "2x T4 (Kaggle)", "FSDP2").fits and script_plan("27b", "8x H100 80GB").fits
    assert {r["strategy"] for r in script_table("4b") if r["machine"] == "8x A100 80GB"} == {"DDP", "FSDP2"}
    with pytest.raises(ValueError, match="FSDP2"):
        script_plan("4b", "1x T4", "zero3")


def test_script_fsdp_arithmetic_against_peft_fsdp_qlora_record():
    """The script plan's FSDP arithmetic (shards, gathered layers, checkpointed activations, logits, no CUDA context
    in the parts) against PEFT's FSDP-QLoRA record (Llama 2 70B, 2 GPUs, batch 2 x 2048, r 8, gradient
    checkpointing: 35.6 GB per GPU without offload; see test_peft_fsdp_qlora_llama_70b_record for the sources), with
    the 4-bit weights as 0.5 bytes a parameter and the rest in bfloat16. Tolerance 30 %, as there: the record's
    counter (nvidia-smi or torch) is not stated and the allocator's cache is not modelled. The script itself does
    not run QLoRA (fsdp2.yaml says why); this checks the sharding arithmetic it shares."""
    plan = script_plan(LLAMA2_70B, TWO_GPUS, "FSDP2", batch_size=2, seq_len=2048, lora_r=8, weight_bytes=0.5)
    assert plan.checkpointing and plan.dtype == "bfloat16"
    assert plan.per_gpu_gb == pytest.approx(35.6, rel=0.3)


def test_the_tool_table_says_which_tool_where_with_memory_per_gpu():
    rows = {(r["machine"], r["tool"].split(",")[0]): r for r in tool_table()}
    one_t4 = rows[("1x T4", "Unsloth QLoRA")]
    assert "does not fit" not in one_t4["12B"] and "does not fit" in one_t4["27B"]  # 12B QLoRA fits one T4
    assert "does not fit" not in rows[("2x T4 (Kaggle)", "Unsloth QLoRA")]["27B"]  # the layer split
    script_t4 = rows[("2x T4 (Kaggle)", "this script")]
    assert "FSDP2" in script_t4["4B"] and "does not fit" not in script_t4["4B"] and "does not fit" in script_t4["12B"]
    assert all("does not fit" not in rows[("8x H100 80GB", "this script")][s] for s in ("4B", "12B", "27B"))
    assert all("(est.)" in r[s] and r["source"] for r in rows.values() for s in ("4B", "12B", "27B"))
