"""Vision LoRA for chart questions: load, mask labels, train, answer, save, for Gemma 3 4B or its tiny stand-in.

* **full mode** (CUDA): ``unsloth/gemma-3-4b-it`` through Unsloth's ``FastVisionModel`` (4-bit, LoRA r=16 on vision
  and language layers), trained by TRL's ``SFTTrainer`` with Unsloth's vision data collator. Without CUDA (the
  full-mode rehearsal) the same hub id loads through transformers in 16/32-bit and trains like the stand-in below.
* **smoke mode** (CPU): Unsloth has no vision backend on CPU, and TRL's SFTTrainer without Unsloth needs triton,
  so a tiny randomly initialised ``Gemma3ForConditionalGeneration`` (a SigLIP tower of 2 layers, a Gemma 3 text
  model of 2 layers, a 512-token vocabulary) is trained with PEFT and a plain torch loop. It has the real model's
  structure (image soft tokens, bidirectional image attention, the chat format) and none of its knowledge: it is a
  stand-in that proves the pipeline, not a chart reader.

Labels (:func:`build_batch`): -100 on the prompt (image tokens included) and on padding; the answer and its
``<end_of_turn>`` are learned. A prompt longer than ``max_length`` is an error, never a truncated image.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import charts
from .env import TINY_VISION, cache_dir
from .prompts import END_OF_TURN, chat_prompt

IGNORE = -100
TINY_IMAGE, TINY_PATCH, TINY_MM_TOKENS = 64, 8, 16
TINY_RECIPE = 3  # bump when the stand-in changes, so cached copies are rebuilt
EMBED_STD = 0.2  # logits start near uniform (loss ~ ln vocab) yet can become confident
_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
            "<end_of_image>", "<image_soft_token>"]


def _tokenizer_corpus(n_charts: int = 600) -> list[str]:
    rng = random.Random(7)
    lines = ["user", "model", charts.CHARTQA_INSTRUCTION.strip(), "increasing decreasing mixed"]
    for _ in range(n_charts):
        chart = charts.random_chart(rng)
        lines += [chart.title, " ".join(chart.labels)] + [f"{q} {a}" for _, q, a in charts.questions_for(chart, rng)]
    lines += [" ".join(str(i) for i in range(0, 1000, 7))]
    return lines


def build_tiny_processor(vocab_size: int = 512):
    """A Gemma3Processor for the stand-in: a BPE tokenizer trained here on chart text, the PIL image processor."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers import models as tok_models
    from transformers import Gemma3Processor, GemmaTokenizer
    from transformers.models.gemma3 import Gemma3ImageProcessorPil  # the default one needs torchvision

    from .prompts import CHAT_TEMPLATE

    bpe = Tokenizer(tok_models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    bpe.normalizer = normalizers.Replace(" ", "▁")  # Gemma's scheme: spaces become ▁, no pre-splitting of words
    bpe.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    bpe.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    special = _SPECIAL + [f"<0x{i:02X}>" for i in range(256)]
    bpe.train_from_iterator(_tokenizer_corpus(), trainers.BpeTrainer(vocab_size=vocab_size + len(special),
                                                                      special_tokens=special, show_progress=False))
    state = json.loads(bpe.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    tokenizer = GemmaTokenizer(vocab=state["model"]["vocab"], merges=merges, extra_special_tokens={
        "image_token": "<image_soft_token>", "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    image_processor = Gemma3ImageProcessorPil(size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    return Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=TINY_MM_TOKENS,
                           chat_template=CHAT_TEMPLATE)


def tiny_vision_dir(rebuild: bool = False, seed: int = 0) -> Path:
    """The stand-in model and processor, built once (seeded, about 2 s) into the cache and saved like a hub folder."""
    target = cache_dir() / "tiny-gemma3-vision"
    marker = target / "built.json"
    if marker.exists() and not rebuild and json.loads(marker.read_text()).get("recipe") == TINY_RECIPE:
        return target
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    processor = build_tiny_processor()
    tok = processor.tokenizer
    torch.manual_seed(seed)
    text = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
                            sliding_window=64, layer_types=["sliding_attention", "full_attention"],
                            pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=TINY_IMAGE, patch_size=TINY_PATCH, vision_use_head=False)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=TINY_MM_TOKENS,
                          image_token_index=tok.image_token_id, boi_token_index=tok.boi_token_id,
                          eoi_token_index=tok.eoi_token_id)
    model = Gemma3ForConditionalGeneration(config)
    # A trained model's embeddings (tied with lm_head) are large enough that logits can be confident; the default
    # init (std 0.02 at width 64) caps every logit near +-1.3, so no adapter could lower the loss much.
    torch.nn.init.normal_(model.get_input_embeddings().weight, std=EMBED_STD)
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.convert_tokens_to_ids(END_OF_TURN)]
    model.generation_config.pad_token_id = tok.pad_token_id
    work = target.with_name(f"{target.name}.partial-{os.getpid()}")  # per process: tests and a notebook may race
    model.save_pretrained(work)
    processor.save_pretrained(work)
    (work / "built.json").write_text(json.dumps({"recipe": TINY_RECIPE, "seed": seed, "parameters": model.num_parameters(),
                                                 "note": "random weights: a stand-in for Gemma 3 4B"}, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    try:
        work.rename(target)
    except OSError:  # another process finished first: its copy is the same seeded model
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_vision_model(name: str, load_in_4bit: bool = True, max_length: int = 2048, backend: str | None = None):
    """(model, processor): the tiny stand-in, or a hub model through Unsloth's FastVisionModel where it runs (CUDA)
    and through transformers elsewhere (a CPU, or ``GEMMA_NO_UNSLOTH=1``), in the precision policy's dtype."""
    if name == TINY_VISION:
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging

        logging.disable_progress_bar()  # a progress bar for a 0.6 MB file is noise
        path = tiny_vision_dir()
        model = AutoModelForImageTextToText.from_pretrained(path).eval()
        model._gemma_backend = "transformers"
        return model, AutoProcessor.from_pretrained(path)
    from .env import cuda_available

    if backend is None:
        from .models import _unsloth_importable

        backend = "unsloth" if cuda_available() and _unsloth_importable() else "transformers"
    if backend == "unsloth":
        from unsloth import FastVisionModel

        model, processor = FastVisionModel.from_pretrained(name, load_in_4bit=load_in_4bit,
                                                           max_seq_length=max_length,
                                                           use_gradient_checkpointing="unsloth")
    elif backend == "transformers":
        model, processor = _load_with_transformers(name, load_in_4bit)
    else:
        raise ValueError(f"backend must be 'unsloth' or 'transformers', not {backend!r}")
    model._gemma_backend = backend
    return model, processor


def _load_with_transformers(name: str, load_in_4bit: bool):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .env import hardware_report
    from .precision import policy

    pol = policy(hardware_report(), backend="transformers")
    extra: dict[str, Any] = {}
    if load_in_4bit:
        if pol.device != "cuda":
            raise RuntimeError("4-bit loading needs a CUDA GPU (bitsandbytes); load the 16-bit weights on a CPU")
        from transformers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                          bnb_4bit_compute_dtype=pol.torch_dtype)
    model = AutoModelForImageTextToText.from_pretrained(name, dtype=pol.torch_dtype, device_map=pol.device, **extra)
    return model.eval(), AutoProcessor.from_pretrained(name)


VISION_LORA_TARGETS = r".*(language_model|vision_tower).*\.(q_proj|k_proj|v_proj|o_proj|out_proj|gate_proj|up_proj|down_proj|fc1|fc2)"


def add_vision_lora(model, r: int = 16, alpha: int = 16, seed: int = 3407):
    """LoRA on the vision tower and the language model (attention and MLP); embeddings and lm_head stay frozen."""
    if getattr(model, "_gemma_backend", "") == "unsloth":
        from unsloth import FastVisionModel

        return FastVisionModel.get_peft_model(model, finetune_vision_layers=True, finetune_language_layers=True,
                                              finetune_attention_modules=True, finetune_mlp_modules=True, r=r,
                                              lora_alpha=alpha, lora_dropout=0, bias="none", random_state=seed,
                                              target_modules="all-linear")
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0,
                                                  target_modules=VISION_LORA_TARGETS))
    peft_model._gemma_backend = "transformers"
    return peft_model


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
                      max_steps: int = 60, batch_size: int = 2, learning_rate: float = 2e-4, max_length: int = 2048,
                      gradient_accumulation: int = 1, seed: int = 3407):
    """Train the LoRA adapters; returns train.TrainResult (losses per step). Unsloth + TRL on CUDA, a torch loop on CPU."""
    from .train import TrainResult

    if not rows:
        raise ValueError("no training rows: pass at least one chart question")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if getattr(model, "_gemma_backend", "") == "unsloth":
        return _train_unsloth(model, processor, rows, output_dir, max_steps, batch_size, learning_rate, max_length,
                              gradient_accumulation, seed)
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - s / max(max_steps, 1))
    model.train()
    started = time.time()
    with _cpu_threads_for(model):
        losses = _torch_loop(model, processor, rows, optimizer, schedule, trainable, max_steps, batch_size,
                             max_length, gradient_accumulation, rng)
    model.eval()
    return TrainResult(max_steps, time.time() - started, losses, str(output_dir))


def _on_model(model, batch: dict[str, Any]) -> dict[str, Any]:
    """A batch moved to the model's device, its pixels in the dtype of the model's floating-point weights."""
    param = next(p for p in model.parameters() if p.is_floating_point())  # 4-bit weights are stored as uint8
    return {k: v.to(param.device, dtype=param.dtype if k == "pixel_values" else v.dtype) for k, v in batch.items()}


def _torch_loop(model, processor, rows, optimizer, schedule, trainable, max_steps, batch_size, max_length,
                gradient_accumulation, rng) -> list[tuple[int, float]]:
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
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append((step, float(loss.detach())))
    return losses


def _train_unsloth(model, processor, rows, output_dir, max_steps, batch_size, learning_rate, max_length,
                   gradient_accumulation, seed):
    """Unsloth's Gemma 3 vision recipe: its data collator, answers-only loss, TRL SFTTrainer."""
    from trl import SFTConfig, SFTTrainer
    from unsloth import FastVisionModel
    from unsloth.trainer import UnslothVisionDataCollator

    from .train import TrainResult, precision_for

    FastVisionModel.for_training(model)
    collator = UnslothVisionDataCollator(model, processor, max_seq_length=max_length, train_on_responses_only=True,
                                         instruction_part="<start_of_turn>user\n",
                                         response_part="<start_of_turn>model\n")
    args = SFTConfig(output_dir=str(output_dir), per_device_train_batch_size=batch_size,
                     gradient_accumulation_steps=gradient_accumulation, max_steps=max_steps,
                     learning_rate=learning_rate, warmup_steps=max(1, max_steps // 30), lr_scheduler_type="cosine",
                     weight_decay=0.01, max_grad_norm=0.3, optim="adamw_torch_fused", logging_steps=1, seed=seed,
                     save_strategy="no", report_to=[], gradient_checkpointing=True,
                     gradient_checkpointing_kwargs={"use_reentrant": False}, remove_unused_columns=False,
                     dataset_text_field="", dataset_kwargs={"skip_prepare_dataset": True}, max_length=max_length,
                     **precision_for(model).trainer_flags)
    data = [{"messages": charts.to_messages(r)} for r in rows]
    trainer = SFTTrainer(model=model, processing_class=processor.tokenizer, data_collator=collator,
                         train_dataset=data, args=args)
    started = time.time()
    state = trainer.train()
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    FastVisionModel.for_inference(model)
    return TrainResult(int(state.global_step), time.time() - started, losses, str(output_dir))


def generate_replies(model, processor, images: Sequence[Any], prompts: Sequence[str], max_new_tokens: int,
                     batch_size: int = 8) -> list[str]:
    """Greedy replies of a Gemma 3 vision model (or the tiny stand-in), one image and one prompt per item, whole and
    trimmed, batched with left padding; generation ends at <end_of_turn> or after max_new_tokens."""
    import torch

    if getattr(model, "_gemma_backend", "") == "unsloth":
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
                  batch_size: int = 8) -> list[str]:
    """The model's greedy answers to chart questions (ChartQA's instruction; the reply's first line, trimmed)."""
    replies = generate_replies(model, processor, [r.image for r in rows],
                               [r.question + charts.CHARTQA_INSTRUCTION for r in rows], max_new_tokens, batch_size)
    return [reply.splitlines()[0].strip() if reply else "" for reply in replies]


def evaluate(model, processor, rows: Sequence[charts.ChartQuestion], max_new_tokens: int = 16) -> dict[str, Any]:
    """Answers, relaxed accuracy overall and per question type, and seconds taken."""
    started = time.time()
    predictions = answer_charts(model, processor, rows, max_new_tokens)
    return {"predictions": predictions, "accuracy": charts.accuracy_by_type(rows, predictions),
            "seconds": time.time() - started, "n": len(rows)}


MERGED_SKIPPED = ("not saved: save_merged is off. Merging 4B's LoRA from 4-bit weights downloads the 8.6 GB "
                  "16-bit model again and writes 8.6 GB (several minutes on Colab). For llama.cpp or Ollama, set "
                  "S = dataclasses.replace(S, save_merged=True) in the configuration cell, or merge the adapter "
                  "later with peft's merge_and_unload.")


def save_adapter_and_merged(model, processor, output_dir: str | Path, base: str = TINY_VISION,
                            merged: bool = True) -> dict[str, Path]:
    """Save the LoRA adapter and, when `merged`, a merged 16-bit model (what Ollama and llama.cpp's converter need)."""
    output_dir = Path(output_dir)
    adapter, merged_dir = output_dir / "adapter", output_dir / "merged"
    model.save_pretrained(adapter)
    processor.save_pretrained(adapter)
    if not merged:
        return {"adapter": adapter}
    if getattr(model, "_gemma_backend", "") == "unsloth":
        model.save_pretrained_merged(str(merged_dir), processor, save_method="merged_16bit")
    else:  # merge into a fresh copy of the base, so the trained model in memory keeps its adapters
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        fresh = AutoModelForImageTextToText.from_pretrained(tiny_vision_dir() if base == TINY_VISION else base)
        PeftModel.from_pretrained(fresh, adapter).merge_and_unload().save_pretrained(merged_dir)
        processor.save_pretrained(merged_dir)
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


# ------------------------------------------------------------------------------------------ for the notebook


def describe_model(name: str, model=None) -> str:
    """One paragraph on what is loaded: the stand-in says loudly that it is one."""
    params = f" ({model.num_parameters():,} parameters)" if model is not None else ""
    if name == TINY_VISION:
        return (f"STAND-IN{params}: a tiny randomly initialised Gemma3ForConditionalGeneration built on this machine "
                f"(SigLIP 2 layers, Gemma 3 text 2 layers, {TINY_IMAGE}x{TINY_IMAGE} px images -> "
                f"{TINY_MM_TOKENS} image tokens). It has Gemma 3 4B's structure, not its knowledge: its accuracy "
                "numbers prove that the pipeline runs, not that a model can read charts. On a GPU this notebook "
                "trains the real unsloth/gemma-3-4b-it (896x896 px -> 256 image tokens).")
    return f"{name}{params}: Gemma 3 with its SigLIP vision tower (896x896 px -> 256 image tokens)"


def heldout_sets(settings, seed: int = 0) -> dict[str, list[charts.ChartQuestion]]:
    """The evaluation sets: synthetic held-out charts, plus a ChartQA test sample when settings.chartqa_items > 0."""
    sets = {"synthetic": charts.synthetic_charts(settings.eval_charts, "heldout", seed, settings.image_size)}
    if settings.chartqa_items:
        sets["chartqa"] = charts.load_chartqa("test", settings.chartqa_items, seed)
    return sets


def show_labels(processor, row: charts.ChartQuestion, max_length: int = 2048) -> str:
    """A row's tokens as the model trains on them: [learned] tokens in brackets, image soft tokens counted."""
    batch = build_batch(processor, [row], max_length)
    tok, out, run = processor.tokenizer, [], 0
    for token, label in zip(batch["input_ids"][0].tolist(), batch["labels"][0].tolist(), strict=True):
        if token == tok.image_token_id:
            run += 1
            continue
        if run:
            out.append(f"<image_soft_token> x {run}")
            run = 0
        piece = tok.decode([token])
        out.append(f"[{piece}]" if label != IGNORE else piece)
    return "".join(out)


def accuracy_table(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (question type x run) of relaxed accuracy, e.g. {'before': evaluate(...), 'after': evaluate(...)}."""
    kinds = list(next(iter(results.values()))["accuracy"])
    return [{"question type": k, **{run: round(r["accuracy"].get(k, float("nan")), 3) for run, r in results.items()}}
            for k in kinds]


def plot_answers(rows: Sequence[charts.ChartQuestion], predictions: dict[str, Sequence[str]] | None = None,
                 n: int = 8, columns: int = 4):
    """A grid of charts, each titled with its question, the reference and each run's answer (✓ when right)."""
    import matplotlib.pyplot as plt

    predictions = predictions or {}
    shown = list(rows[:n])
    lines = 3 + len(predictions)
    fig, axes = plt.subplots((len(shown) + columns - 1) // columns, columns, squeeze=False,
                             figsize=(3.2 * columns, (3.2 + 0.2 * lines) * ((len(shown) + columns - 1) // columns)))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(shown):
            continue
        row = shown[i]
        ax.imshow(row.image)
        text = [row.question if len(row.question) < 48 else row.question[:45] + "...", f"reference: {row.answer}"]
        for run, answers in predictions.items():
            mark = "✓" if charts.relaxed_accuracy(answers[i], row.answer) else "✗"
            text.append(f"{run}: {answers[i][:24]!r} {mark}")
        ax.set_title("\n".join(text), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def memory_plans(settings, seq_len: int = 384) -> dict[str, Any]:
    """The planner's estimates for 4B vision LoRA at these settings: the recipe, trained embeddings, 16-bit."""
    from .models import plan_lora_memory

    common = {"lora_r": settings.lora_r if settings.model != TINY_VISION else 16, "seq_len": seq_len,
              "batch_size": settings.batch_size if settings.model != TINY_VISION else 2}
    return {"QLoRA, embeddings frozen (the recipe)": plan_lora_memory("4b", "4bit", **common),
            "QLoRA + trainable embed_tokens/lm_head": plan_lora_memory("4b", "4bit", train_embeddings=True, **common),
            "16-bit LoRA, embeddings frozen": plan_lora_memory("4b", "16bit", **common)}
