"""The vision lesson's CPU stand-in: a tiny Gemma3ForConditionalGeneration and its processor, built here, cached.

Unsloth has no vision backend on a CPU and Gemma 3 4B is too large for a CPU lesson, so smoke mode trains a tiny
``Gemma3ForConditionalGeneration`` built on this machine from seeded random weights: a SigLIP tower of 2 layers on
64x64 px images cut into 16 px patches (16 image soft tokens, one per patch), a Gemma 3 text model of 2 layers and a
BPE vocabulary of about 800 tokens trained on chart questions. It has the real model's structure (image soft tokens,
bidirectional image attention, the chat format, the projector) and none of its knowledge; it is sized so that
reading the simple charts of :func:`gemma_helpers.charts.simple_charts` is learnable in a few CPU minutes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from . import charts
from .env import cache_dir
from .prompts import CHAT_TEMPLATE, END_OF_TURN

TINY_IMAGE, TINY_PATCH, TINY_MM_TOKENS = 64, 16, 16  # (64 / 16)^2 = 16 patches, one soft token each
TINY_WIDTH = 128  # hidden size of both towers: at 64 the model learned to count but not to bind a colour to a bar
TINY_RECIPE = 5  # bump when the stand-in changes, so cached copies are rebuilt
PROJECTOR_STD = 0.1  # transformers starts the projector at zero: no gradient reaches the vision tower at first
# A trained model's embeddings (tied with lm_head) are large enough that logits can be confident; the default init
# (std 0.02) caps every logit near +-1, so with embeddings frozen under LoRA the loss could hardly fall.
EMBED_STD = 0.2
_SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
            "<end_of_image>", "<image_soft_token>"]


def _tokenizer_corpus(n_charts: int = 600) -> list[str]:
    rng = random.Random(7)
    lines = ["user", "model", charts.CHARTQA_INSTRUCTION.strip(), "increasing decreasing mixed"]
    for _ in range(n_charts):
        chart = charts.random_chart(rng)
        lines += [chart.title, " ".join(chart.labels)] + [f"{q} {a}" for _, q, a in charts.questions_for(chart, rng)]
        simple = charts.simple_chart(rng)
        lines += [f"{q} {a}" for _, q, a, _ in charts.simple_questions(simple, rng)]
    lines += [" ".join(str(i) for i in range(0, 1000, 7))]
    return lines


def build_tiny_processor(vocab_size: int = 512):
    """A Gemma3Processor for the stand-in: a BPE tokenizer trained here on chart text, the PIL image processor."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers import models as tok_models
    from transformers import Gemma3Processor, GemmaTokenizer
    from transformers.models.gemma3 import Gemma3ImageProcessorPil  # the default one needs torchvision

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


def build_tiny_model(processor, seed: int = 0):
    """The stand-in's seeded random Gemma3ForConditionalGeneration for this processor's vocabulary."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    tok = processor.tokenizer
    torch.manual_seed(seed)
    text = Gemma3TextConfig(vocab_size=len(tok), hidden_size=TINY_WIDTH, intermediate_size=2 * TINY_WIDTH,
                            num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                            max_position_embeddings=512, sliding_window=64,
                            layer_types=["sliding_attention", "full_attention"], pad_token_id=tok.pad_token_id,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    vision = SiglipVisionConfig(hidden_size=TINY_WIDTH, intermediate_size=2 * TINY_WIDTH, num_hidden_layers=2,
                                num_attention_heads=2, image_size=TINY_IMAGE, patch_size=TINY_PATCH,
                                vision_use_head=False)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=TINY_MM_TOKENS,
                          image_token_index=tok.image_token_id, boi_token_index=tok.boi_token_id,
                          eoi_token_index=tok.eoi_token_id)
    model = Gemma3ForConditionalGeneration(config)
    torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=PROJECTOR_STD)
    torch.nn.init.normal_(model.get_input_embeddings().weight, std=EMBED_STD)
    model.generation_config.eos_token_id = [tok.eos_token_id, tok.convert_tokens_to_ids(END_OF_TURN)]
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def tiny_vision_dir(rebuild: bool = False, seed: int = 0) -> Path:
    """The stand-in model and processor, built once (seeded, a few seconds) into the cache and saved like a hub
    folder."""
    target = cache_dir() / "tiny-gemma3-vision"
    marker = target / "built.json"
    if marker.exists() and not rebuild and json.loads(marker.read_text()).get("recipe") == TINY_RECIPE:
        return target
    processor = build_tiny_processor()
    model = build_tiny_model(processor, seed)
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


def describe(params: str = "") -> str:
    """One paragraph that says loudly what the stand-in is."""
    return (f"STAND-IN{params}: a tiny randomly initialised Gemma3ForConditionalGeneration built on this machine "
            f"(SigLIP 2 layers, Gemma 3 text 2 layers, width {TINY_WIDTH}, {TINY_IMAGE}x{TINY_IMAGE} px images -> "
            f"{TINY_MM_TOKENS} image tokens). It has Gemma 3 4B's structure, not its knowledge: it starts at zero and "
            "learns to read simple bar charts here, in minutes. On a GPU this notebook trains the real "
            "unsloth/gemma-3-4b-it (896x896 px -> 256 image tokens).")
