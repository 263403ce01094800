"""LoRA fine-tuning with loss on the model's answers only: Unsloth where it runs, else PEFT, both through TRL.

Rows are conversations (lists of messages); the last message is the assistant's answer. Each row becomes a
``prompt`` (the conversation so far, rendered by :func:`gemma_helpers.prompts.chat_prompt`, without ``<bos>``
because the tokenizer adds it) and a ``completion`` (the answer; TRL appends ``<end_of_turn>``, set as the
trainer's end token). TRL then masks the prompt (label -100) and trains on the completion only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .prompts import END_OF_TURN, chat_prompt

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def to_prompt_completion(conversations: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, str]]:
    """Conversations ending in an assistant message -> TRL prompt/completion rows."""
    rows = []
    for i, conv in enumerate(conversations):
        if not conv or conv[-1].get("role") != "assistant":
            raise ValueError(f"row {i}: the last message must be the assistant's answer, got {conv[-1:]!r}")
        answer = conv[-1]["content"]
        if not isinstance(answer, str):
            raise ValueError(f"row {i}: the answer must be text")
        rows.append({"prompt": chat_prompt(conv[:-1], add_generation_prompt=True, bos=False),
                     "completion": answer.strip()})
    return rows


def add_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.0, seed: int = 3407):
    """Wrap a model with LoRA adapters on every attention and MLP projection (Unsloth's call when it loaded it)."""
    if getattr(model, "_gemma_backend", "") == "unsloth":
        from unsloth import FastModel

        return FastModel.get_peft_model(model, r=r, lora_alpha=alpha, lora_dropout=dropout,
                                        target_modules=LORA_TARGETS, random_state=seed,
                                        finetune_vision_layers=False, finetune_language_layers=True,
                                        finetune_attention_modules=True, finetune_mlp_modules=True)
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                                            target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))


@dataclass
class TrainResult:
    """What a run did: steps, seconds, losses per logged step, where checkpoints went."""

    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    output_dir: str = ""

    @property
    def seconds_per_step(self) -> float:
        """Wall seconds per optimizer step."""
        return self.seconds / max(self.steps, 1)


def lora_sft(model, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *, output_dir: str | Path,
             max_steps: int = 30, batch_size: int = 4, learning_rate: float = 2e-4, max_length: int = 256,
             save_steps: int | None = None, resume: bool = True, optimizer: str = "adamw_torch",
             logging_steps: int = 1, seed: int = 3407) -> TrainResult:
    """Train LoRA adapters (already added with :func:`add_lora`) on answers only; resume from the last checkpoint."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    from .precision import policy

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_list(to_prompt_completion(conversations))
    device = str(next(model.parameters()).device)
    flags = policy().trainer_flags if device.startswith("cuda") else {"bf16": False, "fp16": False}
    args = SFTConfig(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type="linear", warmup_steps=min(5, max_steps // 10),
        logging_steps=logging_steps, save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        save_total_limit=2, report_to=[], max_length=max_length, optim=optimizer, seed=seed,
        eos_token=END_OF_TURN, completion_only_loss=True, dataset_num_proc=1, disable_tqdm=True,
        gradient_checkpointing=False, use_cpu=not device.startswith("cuda"), **flags)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args)
    last = get_last_checkpoint(str(output_dir)) if resume and save_steps else None
    started = time.time()
    state = trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - started
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    model.eval()
    return TrainResult(int(state.global_step), seconds, losses, str(output_dir))
