"""train: answers-only labels, checkpoint + resume after a disconnect, the loss plot, saving adapter and merged model.

A tiny randomly initialised Gemma 3 (2 layers, hidden 16) with the embedded model's real tokenizer: the facts under
test (which tokens carry loss, which step a resumed run ends at, what the optimizer counted) do not need the 270M.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

unsloth = pytest.importorskip("unsloth")  # TRL's SFTTrainer needs Unsloth's patches to train on a CPU

import torch  # noqa: E402

from gemma_helpers import train  # noqa: E402
from gemma_helpers.prompts import END_OF_TURN  # noqa: E402

CONVERSATIONS = [[{"role": "system", "content": "Reply with one move in UCI notation."},
                  {"role": "user", "content": f"FEN: 8/8/8/8/8/8/{i % 8}P6/K6k w - - 0 1"},
                  {"role": "assistant", "content": ["a2a3", "a2a4", "e2e4", "g1f3"][i % 4]}] for i in range(24)]


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded Gemma 3 tokenizer (262,144 tokens)."""
    from transformers import AutoTokenizer

    from gemma_helpers import models

    return AutoTokenizer.from_pretrained(models.embedded_model_dir())


def tiny_lora_model(tokenizer, seed: int = 0, r: int = 4):
    """A 2-layer Gemma 3 with LoRA, the same weights for the same seed."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=256,
                              sliding_window=16, layer_types=["sliding_attention", "full_attention"],
                              pad_token_id=0, bos_token_id=2, eos_token_id=1)
    torch.manual_seed(seed)
    return train.add_lora(Gemma3ForCausalLM(config), r=r, alpha=2 * r, backend="transformers")


def test_prompt_tokens_are_masked_and_answer_tokens_are_not(tokenizer, tmp_path):
    trainer = train.sft_trainer(tiny_lora_model(tokenizer), tokenizer, CONVERSATIONS, output_dir=tmp_path, max_steps=1)
    for index in (0, 2):
        ids, labels = train.masked_example(trainer, index)
        answer = tokenizer(CONVERSATIONS[index][-1]["content"] + END_OF_TURN, add_special_tokens=False)["input_ids"]
        n = len(answer)
        assert ids[0] == 2 and ids.count(2) == 1  # one <bos>, from the tokenizer
        assert labels[:-n] == [-100] * (len(ids) - n)  # every prompt token, the generation prompt included
        assert labels[-n:] == ids[-n:] == answer  # the move's tokens and <end_of_turn> carry the loss
        assert labels[-1] == 106
        assert tokenizer.decode(ids[:-n]).endswith("<start_of_turn>model\n")


def test_the_trainer_takes_its_recipe_from_the_one_table(tokenizer, tmp_path):
    text = train.SCHEDULES["text"]
    assert [text.warmup_steps(n) for n in (4, 30, 100, 1000)] == [0, 3, 5, 5]  # a tenth of the run, at most 5
    assert [train.SCHEDULES["vision_cpu"].warmup_steps(n) for n in (10, 60, 1200)] == [1, 2, 40]
    assert train.SCHEDULES["vision_gpu"].warmup_steps(60) == 2
    args = train.sft_trainer(tiny_lora_model(tokenizer), tokenizer, CONVERSATIONS, output_dir=tmp_path,
                             max_steps=30).args
    assert (args.lr_scheduler_type, args.warmup_steps, args.weight_decay, args.max_grad_norm) == ("linear", 3, 0.0, 1.0)
    cosine = train.Schedule("cosine", warmup_every=10, weight_decay=0.01, max_grad_norm=0.3)
    args = train.sft_trainer(tiny_lora_model(tokenizer), tokenizer, CONVERSATIONS, output_dir=tmp_path / "c",
                             max_steps=30, schedule=cosine).args
    assert (args.lr_scheduler_type, args.weight_decay, args.max_grad_norm) == ("cosine", 0.01, 0.3)
    # No trainer of the package types a schedule of its own.
    package = Path(train.__file__).parent
    typed = [p.name for p in package.glob("*.py") if p.name != "train.py"
             and re.search(r"lr_scheduler_type=\"|max_grad_norm=\d|weight_decay=\d|warmup_steps=max\(", p.read_text())]
    assert typed == []


def test_interrupted_run_resumes_to_the_same_final_step_and_optimizer_state(tokenizer, tmp_path):
    """With full mode's optimizer, bitsandbytes' 8-bit AdamW, on the CPU as on a T4 (the step counting and data order
    are the Trainer's whatever the optimizer; the 8-bit state is the part that could fail to come back). bitsandbytes
    keeps a tensor under 4,096 elements in 32-bit state, so the adapters are rank 256 here (16 x 256 = 4,096)."""
    optimizer, r = "adamw_8bit", 256
    kwargs = dict(max_steps=4, batch_size=2, learning_rate=1e-2, save_steps=2, max_length=64, optimizer=optimizer)
    straight = train.lora_sft(tiny_lora_model(tokenizer, r=r), tokenizer, CONVERSATIONS,
                              output_dir=tmp_path / "straight", **kwargs)
    cut = tmp_path / "cut"
    first = train.lora_sft(tiny_lora_model(tokenizer, r=r), tokenizer, CONVERSATIONS, output_dir=cut,
                           callbacks=[train.stop_at_step(3)], **kwargs)
    assert first.steps == 3  # the "disconnect" came after step 3; only checkpoint-2 was written
    assert train.last_checkpoint(cut).endswith("checkpoint-2")
    resumed = train.lora_sft(tiny_lora_model(tokenizer, r=r), tokenizer, CONVERSATIONS, output_dir=cut, **kwargs)
    assert resumed.resumed_from.endswith("checkpoint-2")
    assert (resumed.steps, resumed.steps_run) == (4, 2)  # steps 3 and 4 again, not 4 more
    for run in (straight, resumed):
        opt = torch.load(f"{run.output_dir}/checkpoint-4/optimizer.pt", weights_only=False)
        assert {int(s["step"]) for s in opt["state"].values()} == {4}  # Adam counted 4 updates, not 2 or 6
        # the moments really are 8-bit (blockwise-quantized uint8) where a tensor is big enough, not torch's AdamW
        moments = [s["__bnb_optimizer_quant_state__"] for s in opt["state"].values()]
        assert sum(m["state1"].dtype == m["state2"].dtype == torch.uint8 for m in moments) >= len(moments) // 2
        state = json.loads((tmp_path / run.output_dir / "checkpoint-4" / "trainer_state.json").read_text())
        assert state["global_step"] == 4
    # the same data order and weights: the resumed run's losses at steps 3-4 are the uninterrupted run's
    after_cut, reference = dict(resumed.losses), dict(straight.losses)
    assert [after_cut[s] for s in (3, 4)] == pytest.approx([reference[s] for s in (3, 4)], rel=1e-4)


def test_plot_losses_saves_a_png(tmp_path):
    fig = train.plot_losses([(i, 3.0 / i) for i in range(1, 30)], tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes[0].lines) == 2  # raw and moving average
    with pytest.raises(ValueError, match="no losses"):
        train.plot_losses([])


def test_save_adapter_and_merged_16bit(tokenizer, tmp_path):
    model = tiny_lora_model(tokenizer)
    for module in model.modules():  # give the adapters non-zero weights so that the merge changes something
        if hasattr(module, "lora_B"):
            for b in module.lora_B.values():
                torch.nn.init.normal_(b.weight, std=0.5)
    ids = torch.tensor([[2, 105, 2364, 107]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    adapter = train.save_adapter(model, tokenizer, tmp_path / "adapter")
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    merged_dir = train.save_merged(model, tokenizer, tmp_path / "merged")
    config = json.loads((merged_dir / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    from safetensors import safe_open

    with safe_open(str(merged_dir / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}
        assert "lm_head.weight" not in weights.keys()  # tied to the embedding: stored once
    with torch.no_grad():
        merged = model(input_ids=ids).logits
    assert torch.allclose(before, merged, atol=1e-5)  # the merge keeps the adapted model's outputs
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    assert not any("lora" in name for name in reloaded.state_dict())
    in_memory = dict(model.named_parameters())
    some = "layers.0.self_attn.q_proj.weight"
    expected = next(v for k, v in in_memory.items() if k.endswith(some)).detach()
    saved = next(v for k, v in reloaded.state_dict().items() if k.endswith(some))
    untrained = next(v for k, v in tiny_lora_model(tokenizer).state_dict().items()
                     if k.endswith("layers.0.self_attn.q_proj.base_layer.weight"))
    assert torch.equal(saved, expected.to(torch.bfloat16).float())  # the merged weight, rounded to bf16
    assert not torch.equal(expected, untrained)  # and the merge did change it


class _FakeModel:
    """Just enough of a model for precision_for: where its weights are."""

    def __init__(self, device: str):
        self._device = torch.device(device) if device == "cpu" else type("D", (), {"type": device})()

    def parameters(self):
        yield type("P", (), {"device": self._device})()


def _hardware(gpu=None, bf16=False):
    from gemma_helpers.hardware import Hardware

    capability = None if not gpu else "8.0" if "A100" in gpu else "7.5"  # the precision policy reads it
    return Hardware(gpu, capability, 15.0 if gpu else None, bf16, False, 2, 16.0, "2", "3.12", False, False)


@pytest.mark.parametrize("gpu, bf16, device, backend, flags", [
    ("Tesla T4", False, "cuda", "unsloth", {"bf16": False, "fp16": True}),  # Unsloth's fp32 islands make fp16 safe
    ("Tesla T4", False, "cuda", "transformers", {"bf16": False, "fp16": False}),  # GEMMA_NO_UNSLOTH=1: float32
    ("NVIDIA A100", True, "cuda", "transformers", {"bf16": True, "fp16": False}),
    ("Tesla T4", False, "cpu", "unsloth", {"bf16": False, "fp16": False}),  # on the CPU whatever the GPU
    (None, False, "cpu", "unsloth", {"bf16": False, "fp16": False}),
])
def test_trainer_precision_follows_the_backend_that_loaded_the_model(monkeypatch, gpu, bf16, device, backend,
                                                                     flags):
    monkeypatch.setattr(train, "hardware_report", lambda: _hardware(gpu, bf16))
    assert train.precision_for(_FakeModel(device), backend).trainer_flags == flags


def test_backend_is_said_not_guessed():
    with pytest.raises(ValueError, match="the one models.load used"):
        train.precision_for(_FakeModel("cpu"), "Unsloth")
    with pytest.raises(ValueError, match="the one models.load used"):
        train.add_lora(object(), backend="peft")
    assert train.precision_for(_FakeModel("cpu")).dtype == "float32"  # default: a model plain transformers loaded


def test_a_time_budget_stops_training_early_and_says_so(tokenizer, tmp_path):
    kwargs = dict(max_steps=50, batch_size=2, learning_rate=1e-2, max_length=64)
    slow = train.lora_sft(tiny_lora_model(tokenizer), tokenizer, CONVERSATIONS, output_dir=tmp_path / "budget",
                          time_budget_s=1e-6, **kwargs)  # spent during the first step
    assert (slow.steps, slow.stopped_by, slow.time_budget_s) == (1, "time budget", 1e-6)
    quick = train.lora_sft(tiny_lora_model(tokenizer), tokenizer, CONVERSATIONS, output_dir=tmp_path / "steps",
                           time_budget_s=600, **{**kwargs, "max_steps": 2})
    assert (quick.steps, quick.stopped_by) == (2, "steps")  # the steps ran out first
