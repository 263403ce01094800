"""Vision LoRA on the tiny Gemma 3 stand-in: which tokens are learned, that training lowers the loss, that the
merged model equals the adapter model; and the LoRA memory planner's arithmetic for Gemma 3 4B."""

import pytest

from gemma_helpers import charts, models, vision
from gemma_helpers.env import TINY_VISION
from gemma_helpers.prompts import END_OF_TURN
from gemma_helpers.vision_standin import TINY_IMAGE, TINY_MM_TOKENS


@pytest.fixture(scope="module")
def stand_in():
    model, processor = vision.load_vision_model(TINY_VISION)
    rows = charts.synthetic_charts(16, "train", image_size=TINY_IMAGE)
    return model, processor, rows


def test_labels_are_the_answer_and_end_of_turn_only(stand_in):
    _, processor, rows = stand_in
    tok = processor.tokenizer
    batch = vision.build_batch(processor, rows[:3], max_length=128)
    for i, row in enumerate(rows[:3]):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        learned = labels[labels != vision.IGNORE].tolist()
        assert learned == tok(row.answer + END_OF_TURN, add_special_tokens=False)["input_ids"]
        assert learned[-1] == tok.convert_tokens_to_ids(END_OF_TURN)
        # the learned tokens are the last real tokens of the row; everything after them is padding
        real = int(batch["attention_mask"][i].sum())
        assert ids[real - len(learned):real].tolist() == learned
        assert (labels[real:] == vision.IGNORE).all() and (ids[real:] == tok.pad_token_id).all()
        # one <bos>, at the start; every image soft token present and masked, and marked for image attention
        assert ids.tolist().count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
        image = ids == tok.image_token_id
        assert int(image.sum()) == TINY_MM_TOKENS
        assert (labels[image] == vision.IGNORE).all()
        assert (batch["token_type_ids"][i] == image.long()).all()
    assert batch["pixel_values"].shape == (3, 3, TINY_IMAGE, TINY_IMAGE)


def test_max_length_never_cuts_the_image(stand_in):
    _, processor, rows = stand_in
    prompt_len = int(vision.build_batch(processor, rows[:1], 128)["labels"][0].eq(vision.IGNORE).sum())
    with pytest.raises(ValueError, match="image is never cut"):
        vision.build_batch(processor, rows[:1], max_length=prompt_len - 5)
    cut = vision.build_batch(processor, rows[:1], max_length=prompt_len + 1)  # room for one answer token only
    assert cut["input_ids"].shape[1] == prompt_len + 1
    assert int((cut["input_ids"][0] == processor.tokenizer.image_token_id).sum()) == TINY_MM_TOKENS


def test_lora_training_lowers_the_loss_and_the_merged_model_matches(stand_in, tmp_path):
    _, processor, rows = stand_in
    model, _ = vision.load_vision_model(TINY_VISION)
    model = vision.add_vision_lora(model, r=8, alpha=16, backend="transformers")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("vision_tower" in n for n in trainable) and any("language_model" in n for n in trainable)
    assert all("lora_" in n for n in trainable)
    assert not any("embed_tokens" in n or "lm_head" in n for n in trainable)
    result = vision.train_vision_lora(model, processor, rows, output_dir=tmp_path / "run", backend="transformers",
                                      max_steps=30, batch_size=8, learning_rate=3e-3)
    losses = [loss for _, loss in result.losses]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5

    answers = vision.answer_charts(model, processor, rows[:4], max_new_tokens=4)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)

    paths = assert_merged_matches(model, processor, rows, tmp_path / "out")
    assert (paths["adapter"] / "adapter_config.json").exists()


def assert_merged_matches(model, processor, rows, out):
    """Save the adapter and the merged model; the merged one must compute what the model with its adapter does."""
    import torch
    from transformers import AutoModelForImageTextToText

    paths = vision.save_adapter_and_merged(model, processor, out, backend="transformers")
    merged = AutoModelForImageTextToText.from_pretrained(paths["merged"]).eval()
    batch = vision.build_batch(processor, rows[:2], 128)
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, model(**batch).logits, atol=1e-4, rtol=1e-4)
    return paths


def test_lora_parameter_count_for_4b_by_hand():
    # language: 34 layers x 16 x ((2560+2048)*2 q,o + (2560+1024)*2 k,v + (2560+10240)*3 gate,up,down)
    language = 34 * 16 * ((2560 + 2048) * 2 + (2560 + 1024) * 2 + (2560 + 10240) * 3)
    # SigLIP: 27 layers x 16 x (4 attention projections 1152->1152 + fc1, fc2 1152<->4304)
    siglip = 27 * 16 * (4 * 2 * 1152 + 2 * (1152 + 4304))
    assert models.lora_param_count("4b", 16) == language + siglip == 38_497_792
    assert models.lora_param_count("4b", 16, vision_layers=False) == language


def test_frozen_embeddings_fit_a_t4_and_trained_ones_do_not():
    frozen = models.plan_lora_memory("4b")
    trained = models.plan_lora_memory("4b", train_embeddings=True)
    assert frozen.fits("T4 (Colab)") and not trained.fits("T4 (Colab)")
    # two fp32 copies (embed_tokens, lm_head) of 262,208 x 2560 with gradients and two AdamW moments
    assert trained.parts["trainable embed + lm_head"] == pytest.approx(2 * 262_208 * 2560 * 16 / 1e9)
    assert models.plan_lora_memory("4b", quant="16bit").parts["frozen weights"] > 2 * frozen.parts["frozen weights"]
    with pytest.raises(ValueError, match="4bit"):
        models.plan_lora_memory("4b", quant="8bit")


def test_a_hub_vision_model_loads_through_transformers_without_cuda(tmp_path):
    """Full mode on a CPU (the rehearsal): the hub id loads with transformers + PEFT, not FastVisionModel."""
    import torch

    folder = tmp_path / "gemma-3-4b-it"  # a local folder stands in for the hub id
    model, processor = vision.load_vision_model(TINY_VISION)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert vision.choose_backend(str(folder)) == "transformers"  # no CUDA here
    loaded, _ = vision.load_vision_model(str(folder), load_in_4bit=False, backend="transformers")
    assert not loaded.training
    assert next(loaded.parameters()).dtype == torch.float32  # the policy's dtype for transformers on a CPU
    # Full mode's 4-bit load, on the CPU as on a T4: NF4 through bitsandbytes. Then the rehearsal's order: answer
    # (eval, no gradient: where bitsandbytes' CPU repack would strike), then train LoRA on the same model.
    four, processor = vision.load_vision_model(str(folder), load_in_4bit=True, backend="transformers")
    layers = [m for m in four.modules() if type(m).__name__ == "Linear4bit"]
    assert layers and all(m.weight.quant_state.quant_type == "nf4" for m in layers)
    rows = charts.synthetic_charts(2, "train", image_size=TINY_IMAGE)
    vision.generate_replies(four, processor, [r.image for r in rows], [r.question for r in rows], max_new_tokens=2)
    lora = vision.add_vision_lora(four, r=4, alpha=4, backend="transformers")
    # the T4's trainer: Unsloth's vision collator, TRL's SFTTrainer, the one SFTConfig (vision_sft_config)
    result = vision.train_vision_lora(lora, processor, rows, output_dir=tmp_path / "run", backend="transformers",
                                      max_steps=2, batch_size=1, learning_rate=1e-2, max_length=512, sft=True)
    assert result.steps == 2 and len(result.losses) == 2
    # every adapter moved, the vision tower's (under the language model) too: the backward crossed each 4-bit layer
    moved = {n: bool(p.abs().sum() > 0) for n, p in lora.named_parameters() if "lora_B" in n}
    assert moved and all(moved.values()), [n for n, m in moved.items() if not m]
    assert not lora.training


def test_lora_first_leaves_the_baseline_answers_unchanged(stand_in):
    """Unsloth's order (LoRA, then evaluate, train, evaluate) measures the base model before training: B starts at 0."""
    import torch

    _, processor, rows = stand_in
    base, _ = vision.load_vision_model(TINY_VISION)
    batch = vision.build_batch(processor, rows[:2], 128)
    batch.pop("labels")
    with torch.no_grad():
        expected = base(**batch).logits
    wrapped = vision.add_vision_lora(base, r=8, alpha=16, backend="transformers")
    with torch.no_grad():
        torch.testing.assert_close(wrapped(**batch).logits, expected)


def test_save_without_the_merged_copy(stand_in, tmp_path):
    _, processor, _ = stand_in
    model, _ = vision.load_vision_model(TINY_VISION)
    model = vision.add_vision_lora(model, r=4, alpha=8, backend="transformers")
    paths = vision.save_adapter_and_merged(model, processor, tmp_path, merged=False, backend="transformers")
    assert set(paths) == {"adapter"} and (paths["adapter"] / "adapter_config.json").exists()
    assert not (tmp_path / "merged").exists()


def test_modules_trained_whole_get_no_adapters_and_survive_the_merge(stand_in, tmp_path):
    """The stand-in's recipe: vision tower and projector trained whole, LoRA on the language model only."""
    _, processor, rows = stand_in
    model, _ = vision.load_vision_model(TINY_VISION)
    model = vision.add_vision_lora(model, r=4, alpha=8, backend="transformers",
                                   train_fully=("vision_tower", "multi_modal_projector"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert not any("vision_tower" in n and "lora_" in n for n in trainable)
    assert any("vision_tower" in n and "modules_to_save" in n and "patch_embedding" in n for n in trainable)
    assert any("multi_modal_projector" in n for n in trainable) and any("language_model" in n for n in trainable)
    vision.train_vision_lora(model, processor, rows, output_dir=tmp_path / "run", backend="transformers",
                             max_steps=3, batch_size=4, learning_rate=3e-3)
    assert_merged_matches(model, processor, rows, tmp_path / "out")


def test_backend_is_said_not_guessed():
    model, _ = vision.load_vision_model(TINY_VISION)
    assert vision.choose_backend(TINY_VISION) == "transformers"
    with pytest.raises(ValueError, match="backend must be"):
        vision.add_vision_lora(model, backend="torch")
    with pytest.raises(ValueError, match="train_fully=\\(\\)"):
        vision.add_vision_lora(model, backend="unsloth", train_fully=("vision_tower",))
    assert not hasattr(model, "_gemma_backend")
