"""Vision LoRA for chart questions: load, mask labels, train, answer, save, for Gemma 3 4B or its tiny stand-in.

* **full mode** (CUDA): ``unsloth/gemma-3-4b-it`` through Unsloth's ``FastVisionModel`` (4-bit, LoRA r=16 on vision
  and language layers), trained by TRL's ``SFTTrainer`` with Unsloth's vision data collator. Without CUDA (the
  full-mode rehearsal) the same hub id loads through transformers, in NF4 through bitsandbytes as on the T4
  (:mod:`gemma_helpers.nf4`), with PEFT's LoRA, and trains through the same collator, trainer and ``SFTConfig``
  (:func:`vision_sft_config`).
* **smoke mode** (CPU): Unsloth has no vision backend on CPU, and TRL's SFTTrainer without Unsloth needs triton,
  so the tiny stand-in of :mod:`gemma_helpers.vision_standin` is trained with PEFT and a plain torch loop.

Which of the two trains a model is said, not guessed: :func:`choose_backend` names it ("unsloth" or
"transformers") and the caller passes it to the functions that add adapters, train, answer and save.

Labels (:func:`build_batch`): -100 on the prompt (image tokens included) and on padding; the answer and its
``<end_of_turn>`` are learned. A prompt longer than ``max_length`` is an error, never a truncated image.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import charts, vision_standin
from .cell_memory import vision_eval_batch
from .env import TINY_VISION
from .hardware import cuda_available, hardware_report
from .models import _unsloth_importable
from .nf4 import keep_trainable, nf4_config
from .precision import policy
from .prompts import END_OF_TURN, chat_prompt
from .sources import model_path
from .tokenizer_files import carry
from .train import SCHEDULES, TrainResult, precision_for

IGNORE = -100
BACKENDS = ("unsloth", "transformers")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'unsloth' or 'transformers', not {backend!r}; ask choose_backend(name)")


def choose_backend(name: str) -> str:
    """"unsloth" for a hub model on a CUDA machine where Unsloth imports, else "transformers" (the stand-in, a CPU,
    or ``GEMMA_NO_UNSLOTH=1``)."""
    if name == TINY_VISION:
        return "transformers"

    return "unsloth" if cuda_available() and _unsloth_importable() else "transformers"


def tiny_vision_dir(rebuild: bool = False) -> Path:
    """The stand-in's cached folder, built once (:func:`gemma_helpers.vision_standin.tiny_vision_dir`)."""
    return vision_standin.tiny_vision_dir(rebuild)


def load_vision_model(name: str, load_in_4bit: bool = True, max_length: int = 2048, backend: str | None = None):
    """(model, processor): the tiny stand-in, or a hub model through `backend` (default: :func:`choose_backend`):
    Unsloth's FastVisionModel, ready to answer, or transformers in the precision policy's dtype."""
    backend = backend or choose_backend(name)
    _check_backend(backend)
    if name == TINY_VISION:
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging

        logging.disable_progress_bar()  # a progress bar for a 1 MB file is noise
        path = tiny_vision_dir()
        return AutoModelForImageTextToText.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)
    if "/" in name and not Path(name).expanduser().exists():
        name = model_path(name)  # the id itself, or a local folder when GEMMA_HUB=modelscope
    if backend == "unsloth":
        from unsloth import FastVisionModel

        dtype = policy(hardware_report(), backend="unsloth").torch_dtype  # float16 on a T4 (or GEMMA_FORCE_FP16=1)
        model, processor = FastVisionModel.from_pretrained(name, load_in_4bit=load_in_4bit, dtype=dtype,
                                                           max_seq_length=max_length,
                                                           use_gradient_checkpointing="unsloth")
        FastVisionModel.for_inference(model)  # ready to answer; training switches it and switches it back
        return model, processor
    return _load_with_transformers(name, load_in_4bit)


def _load_with_transformers(name: str, load_in_4bit: bool):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    pol = policy(hardware_report(), backend="transformers")
    extra: dict[str, Any] = {}
    if load_in_4bit:  # NF4 through bitsandbytes, on a GPU or on this CPU (gemma_helpers.nf4)
        extra["quantization_config"] = nf4_config(pol.torch_dtype)
    model = AutoModelForImageTextToText.from_pretrained(name, dtype=pol.torch_dtype, device_map=pol.device, **extra)
    keep_trainable(model)  # bitsandbytes' CPU repack would break the backward of LoRA training (nf4's note)
    return model.eval(), AutoProcessor.from_pretrained(name)


VISION_LORA_TARGETS = r".*(language_model|vision_tower).*\.(q_proj|k_proj|v_proj|o_proj|out_proj|gate_proj|up_proj|down_proj|fc1|fc2)"


def add_vision_lora(model, r: int = 16, alpha: int = 16, seed: int = 3407, *, backend: str,
                    train_fully: Sequence[str] = ()):
    """LoRA on the vision tower and the language model (attention and MLP); embeddings and lm_head stay frozen.

    `train_fully` names modules trained whole beside the adapters (PEFT's ``modules_to_save``, e.g. the stand-in's
    random ``vision_tower`` and ``multi_modal_projector``); they get no LoRA of their own.
    """
    _check_backend(backend)
    if backend == "unsloth":
        if train_fully:
            raise ValueError("Unsloth's vision LoRA trains adapters only: pass train_fully=() with backend='unsloth'")
        from unsloth import FastVisionModel

        return FastVisionModel.get_peft_model(model, finetune_vision_layers=True, finetune_language_layers=True,
                                              finetune_attention_modules=True, finetune_mlp_modules=True, r=r,
                                              lora_alpha=alpha, lora_dropout=0, bias="none", random_state=seed,
                                              target_modules="all-linear")
    import torch
    from peft import LoraConfig, get_peft_model

    towers = [t for t in ("language_model", "vision_tower") if t not in train_fully]
    if not towers:
        raise ValueError("train_fully names both towers: leave at least one of them to the LoRA adapters")
    targets = VISION_LORA_TARGETS.replace("language_model|vision_tower", "|".join(towers))
    torch.manual_seed(seed)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets,
                                            modules_to_save=list(train_fully) or None))


def _prompt(row: charts.ChartQuestion) -> str:
    # <bos> written once here; the processor is called with add_special_tokens=False, so never a second one
    return chat_prompt(charts.to_messages(row, with_answer=False), add_generation_prompt=True, bos=True)


@contextmanager
def _cpu_threads_for(model):
    """One CPU thread for a tiny model (threads cost more than they save at this size); unchanged otherwise."""
    import torch

    before = torch.get_num_threads()
    tiny = next(model.parameters()).device.type == "cpu" and model.num_parameters() < 10_000_000
    if tiny:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_batch(processor, rows: Sequence[charts.ChartQuestion], max_length: int = 512) -> dict[str, Any]:
    """Tensors for a training step: prompt (with its image tokens) + answer + <end_of_turn>; labels on the answer only."""
    import torch

    tok = processor.tokenizer
    tok.padding_side = "right"
    enc = processor(text=[_prompt(r) for r in rows], images=[[r.image] for r in rows], padding=True,
                    add_special_tokens=False, return_tensors="pt")
    sequences, starts = [], []
    for i, row in enumerate(rows):
        prompt_ids = enc["input_ids"][i][enc["attention_mask"][i].bool()].tolist()
        if len(prompt_ids) >= max_length:
            raise ValueError(f"row {i}: the prompt alone is {len(prompt_ids)} tokens (image tokens included) but "
                             f"max_length is {max_length}; raise max_length so the image is never cut away")
        answer_ids = tok(row.answer + END_OF_TURN, add_special_tokens=False)["input_ids"]
        sequences.append((prompt_ids + answer_ids)[:max_length])  # only the answer's tail can be cut
        starts.append(len(prompt_ids))
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        input_ids[i, :len(seq)] = torch.tensor(seq)
        attention[i, :len(seq)] = 1
    labels = input_ids.clone()
    for i, start in enumerate(starts):
        labels[i, :start] = IGNORE
    labels[attention == 0] = IGNORE
    labels[input_ids == tok.image_token_id] = IGNORE
    token_type_ids = (input_ids == tok.image_token_id).long()
    return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_type_ids,
            "pixel_values": enc["pixel_values"], "labels": labels}


def train_vision_lora(model, processor, rows: Sequence[charts.ChartQuestion], *, output_dir: str | Path,
                      backend: str, max_steps: int = 60, batch_size: int = 2, learning_rate: float = 2e-4,
                      max_length: int = 2048, gradient_accumulation: int = 1, seed: int = 3407, sft: bool = False):
    """Train what requires a gradient; returns train.TrainResult (losses per step): Unsloth + TRL's SFTTrainer
    (``backend="unsloth"``; with ``sft`` the same collator, trainer and :func:`vision_sft_config` on the
    transformers backend too, where Unsloth imports: full mode on a CPU), or a torch loop (AdamW, a short warm-up,
    then a linear decay: the stand-in's smoke run); their recipes are ``train.SCHEDULES["vision_gpu"]`` and
    ``["vision_cpu"]``."""
    _check_backend(backend)
    if not rows:
        raise ValueError("no training rows: pass at least one chart question")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if backend == "unsloth" or (sft and _unsloth_importable()):
        return _train_sft(model, processor, rows, output_dir, max_steps, batch_size, learning_rate, max_length,
                          gradient_accumulation, seed, backend)
    import torch

    recipe = SCHEDULES["vision_cpu"]  # a linear decay after the warm-up, AdamW: the loop below implements just that
    torch.manual_seed(seed)
    rng = random.Random(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=recipe.weight_decay)
    warmup = recipe.warmup_steps(max_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (1.0 - s / max(max_steps, 1)))
    model.train()
    started = time.time()
    with _cpu_threads_for(model):
        losses = _torch_loop(model, processor, rows, optimizer, schedule, trainable, max_steps, batch_size,
                             max_length, gradient_accumulation, rng, recipe.max_grad_norm)
    model.eval()
    return TrainResult(max_steps, time.time() - started, losses, str(output_dir))


def _on_model(model, batch: dict[str, Any]) -> dict[str, Any]:
    """A batch moved to the model's device, its pixels in the dtype of the model's floating-point weights."""
    param = next(p for p in model.parameters() if p.is_floating_point())  # 4-bit weights are stored as uint8
    return {k: v.to(param.device, dtype=param.dtype if k == "pixel_values" else v.dtype) for k, v in batch.items()}


def _torch_loop(model, processor, rows, optimizer, schedule, trainable, max_steps, batch_size, max_length,
                gradient_accumulation, rng, max_grad_norm) -> list[tuple[int, float]]:
    import torch

    order: list[int] = []
    losses: list[tuple[int, float]] = []
    for step in range(1, max_steps + 1):
        for _ in range(gradient_accumulation):
            if len(order) < batch_size:
                order += rng.sample(range(len(rows)), len(rows))
            picked, order = order[:batch_size], order[batch_size:]
            loss = model(**_on_model(model, build_batch(processor, [rows[i] for i in picked], max_length))).loss
            (loss / gradient_accumulation).backward()
        torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append((step, float(loss.detach())))
    return losses


def vision_sft_config(model, output_dir: str | Path, *, backend: str, max_steps: int, batch_size: int,
                      learning_rate: float, max_length: int, gradient_accumulation: int, seed: int):
    """The T4's ``SFTConfig`` for Unsloth's Gemma 3 vision recipe (``train.SCHEDULES["vision_gpu"]``), built in this
    one place for both trainers that use it: Unsloth's on the GPU and the CPU rehearsal's (precision from the
    hardware and the backend that loaded the model, as everywhere)."""
    from trl import SFTConfig

    recipe = SCHEDULES["vision_gpu"]
    return SFTConfig(output_dir=str(output_dir), per_device_train_batch_size=batch_size,
                     gradient_accumulation_steps=gradient_accumulation, max_steps=max_steps,
                     learning_rate=learning_rate, warmup_steps=recipe.warmup_steps(max_steps),
                     lr_scheduler_type=recipe.scheduler, weight_decay=recipe.weight_decay,
                     max_grad_norm=recipe.max_grad_norm, optim=recipe.optimizer, logging_steps=1, seed=seed,
                     save_strategy="no", report_to=[], gradient_checkpointing=True,
                     gradient_checkpointing_kwargs={"use_reentrant": False}, remove_unused_columns=False,
                     dataset_text_field="", dataset_kwargs={"skip_prepare_dataset": True}, max_length=max_length,
                     disable_tqdm=True, **precision_for(model, backend).trainer_flags)


def _train_sft(model, processor, rows, output_dir, max_steps, batch_size, learning_rate, max_length,
               gradient_accumulation, seed, backend):
    """Unsloth's Gemma 3 vision recipe: its data collator, answers-only loss, TRL SFTTrainer, the T4's SFTConfig.

    On a CPU (``backend="transformers"``: the full-mode rehearsal) the collator is unsloth_zoo's
    ``UnslothVisionDataCollator``, the class ``unsloth.trainer``'s extends (it adds checks of video file paths;
    Unsloth's CPU backend replaces it by a stub that raises), so the rows are collated as on the T4."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    if backend == "unsloth":
        from unsloth import FastVisionModel
        from unsloth.trainer import UnslothVisionDataCollator

        FastVisionModel.for_training(model)
    else:
        from unsloth_zoo.vision_utils import UnslothVisionDataCollator
    collator = UnslothVisionDataCollator(model, processor, max_seq_length=max_length, train_on_responses_only=True,
                                         instruction_part="<start_of_turn>user\n",
                                         response_part="<start_of_turn>model\n")
    args = vision_sft_config(model, output_dir, backend=backend, max_steps=max_steps, batch_size=batch_size,
                             learning_rate=learning_rate, max_length=max_length,
                             gradient_accumulation=gradient_accumulation, seed=seed)
    # TRL 1.15 takes a datasets.Dataset, not a list (Unsloth's notebooks, on TRL 0.22, passed a list)
    data = Dataset.from_list([{"messages": charts.to_messages(r)} for r in rows])
    trainer = SFTTrainer(model=model, processing_class=processor.tokenizer, data_collator=collator,
                         train_dataset=data, args=args)
    trainer.remove_callback(PrinterCallback)  # one dict per step drowns a notebook; the losses are plotted instead
    started = time.time()
    try:
        with _cpu_threads_for(model):
            state = trainer.train()
    finally:
        if backend == "unsloth":
            FastVisionModel.for_inference(model)
        else:
            model.eval()
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    return TrainResult(int(state.global_step), time.time() - started, losses, str(output_dir))


def generate_replies(model, processor, images: Sequence[Any], prompts: Sequence[str], max_new_tokens: int,
                     batch_size: int | None = None, backend: str = "transformers") -> list[str]:
    """Greedy replies of a Gemma 3 vision model (or the tiny stand-in), one image and one prompt per item, whole and
    trimmed, batched with left padding; generation ends at <end_of_turn> or after max_new_tokens.

    batch_size None: 8 on a CPU, and on a GPU the largest batch up to 8 that the memory planner fits
    (:func:`gemma_helpers.cell_memory.vision_eval_batch`; a T4 gets 3 images of 896 px, not 8)."""
    import torch

    _check_backend(backend)
    if batch_size is None:
        batch_size = vision_eval_batch(model, max_new_tokens)
    if backend == "unsloth":
        from unsloth import FastVisionModel

        FastVisionModel.for_inference(model)
    tok = processor.tokenizer
    side, tok.padding_side = tok.padding_side, "left"
    stops = [tok.eos_token_id, tok.convert_tokens_to_ids(END_OF_TURN)]
    replies: list[str] = []
    model.eval()
    try:
        with _cpu_threads_for(model), torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                texts = [chat_prompt([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": t}]}])
                         for t in prompts[i:i + batch_size]]
                enc = processor(text=texts, images=[[im] for im in images[i:i + batch_size]], padding=True,
                                add_special_tokens=False, return_tensors="pt")  # <bos> is in the text already
                enc = _on_model(model, dict(enc))
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                                     pad_token_id=tok.pad_token_id)
                replies += [tok.decode(seq, skip_special_tokens=True).strip()
                            for seq in out[:, enc["input_ids"].shape[1]:]]
    finally:
        tok.padding_side = side
    return replies


def answer_charts(model, processor, rows: Sequence[charts.ChartQuestion], max_new_tokens: int = 16,
                  batch_size: int | None = None, backend: str = "transformers") -> list[str]:
    """The model's greedy answers to chart questions (ChartQA's instruction; the reply's first line, trimmed)."""
    replies = generate_replies(model, processor, [r.image for r in rows],
                               [r.question + charts.CHARTQA_INSTRUCTION for r in rows], max_new_tokens, batch_size,
                               backend)
    return [reply.splitlines()[0].strip() if reply else "" for reply in replies]


MERGED_SKIPPED = ("not saved: save_merged is off. Merging 4B's LoRA from 4-bit weights downloads the 8.6 GB "
                  "16-bit model again and writes 8.6 GB (several minutes on Colab). For llama.cpp or Ollama, set "
                  "S = dataclasses.replace(S, save_merged=True) in the configuration cell, or merge the adapter "
                  "later with peft's merge_and_unload.")


def save_adapter_and_merged(model, processor, output_dir: str | Path, base: str = TINY_VISION,
                            merged: bool = True, *, backend: str) -> dict[str, Path]:
    """Save the LoRA adapter and, when `merged`, a merged 16-bit model (what Ollama and llama.cpp's converter need).

    Both carry the base's tokenizer.model and added tokens where the base has them (``tokenizer_files.carry``)."""
    _check_backend(backend)
    output_dir = Path(output_dir)
    adapter, merged_dir = output_dir / "adapter", output_dir / "merged"
    model.save_pretrained(adapter)
    processor.save_pretrained(adapter)
    source = tiny_vision_dir() if base == TINY_VISION else base
    carry(source, adapter)
    if not merged:
        return {"adapter": adapter}
    if backend == "unsloth":
        model.save_pretrained_merged(str(merged_dir), processor, save_method="merged_16bit")
    else:  # merge into a fresh copy of the base, so the trained model in memory keeps its adapters
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        fresh = AutoModelForImageTextToText.from_pretrained(source)
        PeftModel.from_pretrained(fresh, adapter).merge_and_unload().save_pretrained(merged_dir)
        processor.save_pretrained(merged_dir)
    carry(source, merged_dir)
    return {"adapter": adapter, "merged": merged_dir}


def peak_memory_gb() -> tuple[float, str]:
    """(GB, what was measured): torch's peak CUDA allocation on a GPU, else this process's peak resident memory."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9, f"peak CUDA memory allocated on {torch.cuda.get_device_name()}"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, "peak resident memory of this CPU process"


def reset_peak_memory() -> None:
    """Start a fresh peak-memory measurement on the GPU (the CPU's peak RSS cannot be reset)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
