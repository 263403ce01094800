"""LoRA fine-tuning with loss on the model's answers only: Unsloth where it runs, else PEFT, both through TRL.

Rows are conversations (lists of messages); the last message is the assistant's answer. Each row becomes a
``prompt`` (the conversation so far, rendered by :func:`gemma_helpers.prompts.chat_prompt`, without ``<bos>``
because the tokenizer adds it) and a ``completion`` (the answer and ``<end_of_turn>``), tokenized here
(:func:`tokenize_rows`) with a ``completion_mask``. TRL masks the prompt (label -100) and trains on the
completion only: the effect of Unsloth's ``train_on_responses_only``, without searching the text for the turn
markers (and without TRL hashing the 262k-token tokenizer for its own tokenizing pass, ~10 s on a CPU).
:func:`masked_example` shows one row as the trainer sees it.

Checkpoints: with ``save_steps``, the trainer writes ``checkpoint-N`` folders (adapter, optimizer, scheduler,
random state, data position). :func:`lora_sft` resumes from the newest one, so a run cut off by a Colab
disconnect goes on where it stopped and ends at the same step with the same optimizer state. On Colab, point
``GEMMA_OUTPUT`` at Google Drive so the checkpoints outlive the runtime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hardware import hardware_report
from .nf4 import config_optimizer, keep_optimizer
from .precision import policy
from .prompts import CHAT_TEMPLATE, END_OF_TURN, chat_prompt
from .tokenizer_files import saved_with_tokenizer_files

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class Schedule:
    """How a trainer moves the weights, apart from the lesson's own knobs (steps, batch, learning rate, LoRA rank,
    which live in ``gemma_helpers.env``'s settings): the learning-rate shape, the warm-up, weight decay, gradient
    clipping and, where the recipe fixes it, the optimizer. Every trainer of the curriculum reads one of
    :data:`SCHEDULES`; nothing else types these numbers."""

    scheduler: str  # "linear" or "cosine" (the transformers name)
    warmup_every: int  # one warm-up step per this many training steps ...
    warmup_min: int = 0  # ... but at least this many
    warmup_max: int | None = None  # ... and at most this many (None: no cap)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optimizer: str | None = None  # None: the lesson's settings choose (per machine)
    why: str = ""

    def warmup_steps(self, max_steps: int) -> int:
        """Warm-up steps for a run of ``max_steps``."""
        steps = max(self.warmup_min, max_steps // self.warmup_every)
        return steps if self.warmup_max is None else min(steps, self.warmup_max)


# The trainer recipes, in one table: text LoRA through TRL (the chess lesson, the chat warm-up, bench/cpu_precision),
# and the chart lesson's two trainers (Unsloth's vision recipe on a GPU; a plain torch loop on the CPU stand-in).
SCHEDULES = {
    "text": Schedule("linear", warmup_every=10, warmup_max=5,
                     why="TRL's defaults (no decay, clip at 1.0) with a short warm-up, as Unsloth's Gemma 3 notebooks"),
    "vision_gpu": Schedule("cosine", warmup_every=30, warmup_min=1, weight_decay=0.01, max_grad_norm=0.3,
                           optimizer="adamw_torch_fused",
                           why="Unsloth's Gemma 3 vision recipe: a random projector needs a gentle start"),
    "vision_cpu": Schedule("linear", warmup_every=30, warmup_min=1, optimizer="adamw_torch",
                           why="the same warm-up on the CPU stand-in, a linear decay, AdamW without decay"),
    "grpo": Schedule("cosine", warmup_every=10, weight_decay=0.1, max_grad_norm=0.1,
                     why="Unsloth's Gemma 3 (1B) GRPO notebook: cosine, 10% warm-up, weight decay 0.1, clip at 0.1 "
                         "(chess_grpo's reinforcement round after the fine-tune)"),
}


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


def tokenize_rows(tokenizer, rows: Sequence[dict[str, str]]) -> list[dict[str, list[int]]]:
    """prompt/completion rows -> input_ids and completion_mask (1 on the answer and its <end_of_turn>).

    The prompt and the answer are tokenized apart, so the answer's tokens are exactly those the model writes after
    the generation prompt at inference; TRL turns completion_mask == 0 into label -100.
    """
    out = []
    for row in rows:
        prompt = tokenizer(row["prompt"])["input_ids"]  # the tokenizer adds <bos>
        answer = tokenizer(row["completion"] + END_OF_TURN, add_special_tokens=False)["input_ids"]
        out.append({"input_ids": prompt + answer, "completion_mask": [0] * len(prompt) + [1] * len(answer)})
    return out


BACKENDS = ("unsloth", "transformers")


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (the one models.load used), not {backend!r}")
    return backend


def add_lora(model, r: int = 16, alpha: int = 32, dropout: float = 0.0, seed: int = 3407, *,
             backend: str = "transformers"):
    """Wrap a model with LoRA adapters on every attention and MLP projection.

    ``backend`` is the library that loaded the model (``models.load``'s ``backend``; ``models.default_backend()``
    when it chose): Unsloth's own call for a model Unsloth loaded, PEFT's otherwise.
    """
    if _check_backend(backend) == "unsloth":
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
    resumed_from: str | None = None  # the checkpoint this run went on from, if any
    steps_run: int = 0  # optimizer steps taken by this call (steps minus the resumed checkpoint's step)
    stopped_by: str = "steps"  # "steps" (max_steps reached) or "time budget" (time_budget_s spent first)
    time_budget_s: float | None = None

    @property
    def seconds_per_step(self) -> float:
        """Wall seconds per optimizer step taken by this call."""
        return self.seconds / max(self.steps_run or self.steps, 1)


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest checkpoint-N folder under output_dir, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    output_dir = Path(output_dir)
    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def precision_for(model, backend: str = "transformers"):
    """The precision policy for this model: the hardware it sits on and the library that loaded it (``backend``).

    The trainer's bf16/fp16 flags come from here, so a model that plain transformers loaded on a T4 (Unsloth off,
    ``GEMMA_NO_UNSLOTH=1``) trains in float32 rather than in the float16 where Gemma 3 overflows.
    """
    from dataclasses import replace

    hardware = hardware_report()
    if next(model.parameters()).device.type != "cuda":  # on the CPU, whatever GPU the machine has
        hardware = replace(hardware, gpu_name=None, compute_capability=None, vram_gb=None, bf16_supported=False)
    return policy(hardware, backend=_check_backend(backend))


def sft_trainer(model, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *, output_dir: str | Path,
                max_steps: int = 30, batch_size: int = 4, learning_rate: float = 2e-4, max_length: int = 256,
                save_steps: int | None = None, optimizer: str = "adamw_torch", logging_steps: int = 1,
                seed: int = 3407, callbacks: Sequence[Any] = (), backend: str = "transformers",
                schedule: Schedule = SCHEDULES["text"]):
    """A TRL SFTTrainer on prompt/completion rows, loss on the completion only, ``schedule``'s learning-rate shape
    (precision from the hardware and ``backend``, the library that loaded the model)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset = Dataset.from_list(tokenize_rows(tokenizer, to_prompt_completion(conversations)))
    device = str(next(model.parameters()).device)
    flags = precision_for(model, backend).trainer_flags
    args = SFTConfig(
        output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
        learning_rate=learning_rate, lr_scheduler_type=schedule.scheduler,
        warmup_steps=schedule.warmup_steps(max_steps), weight_decay=schedule.weight_decay,
        max_grad_norm=schedule.max_grad_norm,
        logging_steps=logging_steps, save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500,
        save_total_limit=2, report_to=[], max_length=max_length, optim=config_optimizer(optimizer), seed=seed, data_seed=seed,
        eos_token=END_OF_TURN, completion_only_loss=True, dataset_num_proc=1, disable_tqdm=True,
        gradient_checkpointing=False, use_cpu=not device.startswith("cuda"), **flags)
    keep_optimizer(args, optimizer)  # 8-bit AdamW on a T4 and on the CPU alike (gemma_helpers.nf4)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args,
                         callbacks=list(callbacks))
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # one dict per step drowns a notebook; the losses are plotted instead
    return trainer


def lora_sft(model, tokenizer, conversations: Sequence[Sequence[dict[str, Any]]], *, output_dir: str | Path,
             max_steps: int = 30, batch_size: int = 4, learning_rate: float = 2e-4, max_length: int = 256,
             save_steps: int | None = None, resume: bool = True, optimizer: str = "adamw_torch",
             logging_steps: int = 1, seed: int = 3407, callbacks: Sequence[Any] = (),
             backend: str = "transformers", time_budget_s: float | None = None) -> TrainResult:
    """Train LoRA adapters (already added with :func:`add_lora`) on answers only; resume from the last checkpoint.

    With `time_budget_s`, training also stops after the step during which that many seconds had passed, whichever
    comes first; the result says which (``stopped_by``). The learning-rate schedule is still laid out for
    `max_steps`, so a run stopped by its budget ends with a higher rate than one that ran every step."""
    budget = TimeBudget(time_budget_s) if time_budget_s else None
    trainer = sft_trainer(model, tokenizer, conversations, output_dir=output_dir, max_steps=max_steps,
                          batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
                          save_steps=save_steps, optimizer=optimizer, logging_steps=logging_steps, seed=seed,
                          callbacks=(*callbacks, *([budget.callback()] if budget else [])), backend=backend)
    last = last_checkpoint(output_dir) if resume and save_steps else None
    start_step = _checkpoint_step(last)
    started = time.time()
    try:
        state = trainer.train(resume_from_checkpoint=last)
    finally:
        model.eval()
    seconds = time.time() - started
    losses = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    stopped = "time budget" if budget and budget.spent and state.global_step < max_steps else "steps"
    result = TrainResult(int(state.global_step), seconds, losses, str(output_dir), last,
                         int(state.global_step) - start_step, stopped, time_budget_s)
    (Path(output_dir) / "losses.json").write_text(json.dumps(result.losses))
    return result


def _checkpoint_step(path: str | None) -> int:
    if not path:
        return 0
    state = json.loads((Path(path) / "trainer_state.json").read_text())
    return int(state["global_step"])


def masked_example(trainer, index: int = 0) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one training row as the trainer's collator builds them (-100 = no loss)."""
    batch = trainer.data_collator([trainer.train_dataset[index]])
    return batch["input_ids"][0].tolist(), batch["labels"][0].tolist()


class TimeBudget:
    """Seconds a training may take: its trainer callback stops at the end of the step in which they run out
    (slow CPUs then train fewer steps, and the result says so, instead of passing a notebook's cell limit)."""

    def __init__(self, seconds: float):
        self.seconds, self.started, self.spent = seconds, None, False

    def callback(self):
        from transformers import TrainerCallback

        budget = self

        class StopOnTimeBudget(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                budget.started = time.time()

            def on_step_end(self, args, state, control, **kwargs):
                if budget.started is not None and time.time() - budget.started >= budget.seconds:
                    budget.spent = True
                    control.should_training_stop = True
                return control

        return StopOnTimeBudget()


def stop_at_step(step: int):
    """A trainer callback that ends training after `step` without saving: a stand-in for a Colab disconnect."""
    from transformers import TrainerCallback

    class StopAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True
                control.should_save = False  # a disconnect saves nothing: the last checkpoint is what is left
            return control

    return StopAtStep()


# ------------------------------------------------------------------------------------------- after training


def plot_losses(losses: Sequence[tuple[int, float]], path: str | Path | None = None, title: str = "training loss",
                smooth: int = 10):
    """The loss curve (raw and a moving average) as a matplotlib figure; saved as PNG when path is given."""
    import matplotlib.pyplot as plt

    if not losses:
        raise ValueError("no losses to plot: was logging_steps set, and did training run at least one step?")
    steps, values = zip(*losses, strict=True)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, values, alpha=0.35, label="loss per step")
    if len(values) >= smooth:
        avg = [sum(values[max(0, i - smooth + 1):i + 1]) / len(values[max(0, i - smooth + 1):i + 1])
               for i in range(len(values))]
        ax.plot(steps, avg, label=f"moving average ({smooth})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy on answers")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def save_adapter(model, tokenizer, path: str | Path, base: str | Path | None = None) -> Path:
    """Save the LoRA adapter alone (a few MB) with the tokenizer; reload with peft's PeftModel.from_pretrained.

    The base's tokenizer.model and added tokens are carried over (``tokenizer_files.carry``; `base` defaults to where
    the tokenizer was loaded from): transformers 5 writes tokenizer.json only, and llama.cpp's converter needs them."""
    path = Path(path)
    model.save_pretrained(str(path))
    saved_with_tokenizer_files(tokenizer, path, base)
    return path


def save_merged(model, tokenizer, path: str | Path, dtype: str = "bfloat16", base: str | Path | None = None) -> Path:
    """Merge the LoRA into the base weights and save a plain 16-bit Hugging Face folder (for GGUF export), with the
    base's tokenizer files as :func:`save_adapter` carries them.

    The merge happens in place: afterwards ``model`` (use the returned folder's weights, or keep using ``model``)
    answers as before but has no adapter left to train.
    bfloat16 by default: Gemma 3's weights fit it and its activations overflow float16 (see ``precision``).
    """
    import torch

    path = Path(path)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    target = getattr(torch, dtype)
    state = {name: tensor.to(target) for name, tensor in merged.state_dict().items()}
    if getattr(merged.config.get_text_config(), "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # the same matrix as the embedding: saved once (Gemma ties them)
    merged.save_pretrained(str(path), state_dict=state, safe_serialization=True)
    config_file = path / "config.json"  # transformers writes the in-memory dtype; record what the files hold
    config = json.loads(config_file.read_text())
    config["dtype"] = dtype
    config_file.write_text(json.dumps(config, indent=2) + "\n")

    saved_with_tokenizer_files(tokenizer, path, base)

    (path / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return path


def peak_memory_gb() -> float:
    """Peak memory of this process so far: CUDA's allocator peak on a GPU, else the peak resident set (RSS)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 1e9
    except ImportError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9
