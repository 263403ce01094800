"""Each full-mode cell's GPU memory on a free T4, predicted (memory, cell_memory) and held under the T4's memory.

The planner is checked against the two public T4 runs it can be compared with, both Unsloth's own Colab notebooks
(github.com/unslothai/notebooks at bdda2efc, nb/Gemma3_(270M).ipynb and nb/Gemma3_(4B)-Vision.ipynb, their saved
outputs). Both print ``torch.cuda.max_memory_reserved() / 1024**3`` as "GB", so their figures are GiB:

* Gemma 3 270M, 16-bit LoRA r=128 on every projection, batch 4, max_seq_length 2048, adamw_8bit, Unsloth's
  gradient checkpointing, ChessInstruct: "Peak reserved memory = 4.268 GB" on a Tesla T4.
* Gemma 3 4B (pt) in 4-bit, LoRA r=16 on vision and language layers, batch 1 x 4 accumulation, adamw_torch_fused,
  one LaTeX-OCR image per row: "Peak reserved memory = 6.061 GB" (5.416 GB after loading). Its training added
  0.645 GiB, less than one eager attention map of one 896 px image would take (1.07 GB in float32), so its vision
  tower ran memory-efficient attention (SDPA) then (Unsloth 2025.6.6); it is compared under that assumption.

Assumed for the 270M run: the batch padded to 1,536 tokens (ChessInstruct's rows average 1,626 bytes: 161 MB over
99,000 rows, about 1,000 tokens; a batch of four is padded to its longest); for the 4B: 384 tokens (256 image
tokens and a LaTeX formula). The planner comes within TOLERANCE of both totals (it predicts 0.88x and 0.92x of
them); MARGIN_GB on top of the T4 limit covers that error for the cells checked below. The 4B run's 5.416 GiB
after loading is more than the planner's 16-bit weights (4.4 GB with the allocator's share): that Unsloth kept the
weights it did not quantize in float32, where Unsloth 2026.10.9 loads them in bfloat16 and casts them to float16
(unsloth/models/vision.py, "Forced float32 loads in bfloat16 then casts to float16"), so only totals are compared.
"""

import pytest

from gemma_helpers import cell_memory, memory

GIB = memory.GIB / 1e9  # GB per GiB
TOLERANCE = 0.2  # the prediction within 20% of the public figure


def test_t4_limit_and_margin_are_stated():
    # torch sees 14.741 GiB on a T4 (15.83e9 bytes); the limit the cells are held under is less than that
    assert memory.T4_LIMIT_GB == 14.7 and memory.T4_LIMIT_GB < 14.741 * GIB
    assert memory.MARGIN_GB >= 1.0


@pytest.mark.parametrize("gpu", sorted(memory.GPUS))
def test_every_full_mode_cell_fits_the_free_gpus(gpu):
    over = [f"{c.key}: {c.plan.total_gb:.1f} GB ({c.plan.what})" for c in cell_memory.cells(gpu) if not c.fits()]
    assert over == [], f"over {memory.GPUS[gpu].usable_gb} GB less {memory.MARGIN_GB} GB on {gpu}"


def test_cells_cover_every_notebook_that_uses_the_gpu():
    notebooks = {c.notebook for c in cell_memory.cells("T4")}
    assert notebooks == {"00", "01", "03", "04", "05", "06"}  # 02 runs llama.cpp on the CPU


def test_unsloth_270m_t4_run():
    plan = memory.plan_training("270m", "16bit", lora_r=128, batch=4, seq_len=1536, optimizer="adamw_8bit",
                                act_bytes=memory.GPUS["T4"].act_bytes)
    measured = 4.268 * GIB
    assert plan.total_gb == pytest.approx(measured, rel=TOLERANCE)


def test_unsloth_4b_vision_t4_run():
    plan = memory.plan_training("4b", "4bit", lora_r=16, batch=1, seq_len=384, images=1,
                                optimizer="adamw_torch_fused", attention="sdpa",
                                act_bytes=memory.GPUS["T4"].act_bytes)
    measured = 6.061 * GIB
    assert plan.total_gb == pytest.approx(measured, rel=TOLERANCE)


def test_eager_attention_of_eight_896px_images_does_not_fit_a_t4():
    # 8 images x 16 heads x 4096^2 scores x 8 bytes: 17.2 GB for one layer of the vision tower
    assert memory.vision_attention_bytes(8) / 1e9 == pytest.approx(17.18, abs=0.01)
    assert memory.vision_attention_bytes(8, "sdpa") == 0
    plan = memory.plan_generation("4b", "4bit", 8, 320, 16, images=1, act_bytes=4)
    assert not plan.fits("T4")


def test_image_evaluations_no_longer_batch_8_on_a_t4():
    batch = memory.eval_batch_size("4b", "T4", requested=8, lora_r=16)
    assert 1 <= batch < 8
    assert memory.plan_generation("4b", "4bit", batch, 320, 16, images=1, lora_r=16, act_bytes=4).fits("T4")
    assert not memory.plan_generation("4b", "4bit", batch + 1, 320, 16, images=1, lora_r=16, act_bytes=4).fits("T4")
    for key in ("04 evaluate", "05 ChartQA", "05 DocVQA", "05 MathVista"):
        assert "batch 8 " not in cell_memory.predict(key).plan.what, key
    assert memory.eval_batch_size("4b", 79.0) == 8  # an 80 GB card keeps the batch asked for


def test_checkpointing_and_optimizer_change_the_plan():
    on = memory.plan_training("4b", "4bit", 16, 2, 1024, checkpointing=True)
    off = memory.plan_training("4b", "4bit", 16, 2, 1024, checkpointing=False)
    offloaded = memory.plan_training("4b", "4bit", 16, 2, 1024, checkpointing="unsloth")
    assert off.parts["activations"] > 5 * on.parts["activations"]
    assert offloaded.parts["activations"] < on.parts["activations"]
    adam = memory.plan_training("1b", "16bit", 16, optimizer="adamw_torch")
    eight = memory.plan_training("1b", "16bit", 16, optimizer="adamw_8bit")
    lora = memory.lora_param_count("1b", 16, vision_layers=False)
    diff = adam.parts["LoRA weights + grads + optimizer"] - eight.parts["LoRA weights + grads + optimizer"]
    assert diff == pytest.approx(lora * 6 / 1e9)  # 8 bytes of AdamW state a parameter against 2


def test_kv_cache_grows_with_batch_and_tokens():
    small = memory.plan_generation("4b", "4bit", 1, 320, 16)
    big = memory.plan_generation("4b", "4bit", 4, 320, 1024)
    assert big.parts["KV cache"] > 4 * small.parts["KV cache"]


def test_bad_arguments_say_what_to_pass():
    with pytest.raises(ValueError, match="attention must be"):
        memory.vision_attention_bytes(1, "flash")
    with pytest.raises(ValueError, match="optimizer must be"):
        memory.plan_training("270m", optimizer="sgd")
    with pytest.raises(KeyError, match="04 train"):
        cell_memory.predict("04 nothing")
    with pytest.raises(KeyError, match="unknown GPU"):
        cell_memory.cells("K80")


def test_show_prints_one_line_per_prediction(capsys):
    text = cell_memory.show("04 train")
    assert text.startswith("predicted GPU peak of LoRA training, 4b 4bit") and "Kaggle" in text
    assert capsys.readouterr().out.strip() == text


def test_vision_eval_batch_keeps_the_requested_batch_on_a_cpu():
    import torch

    assert cell_memory.vision_eval_batch(torch.nn.Linear(2, 2), 16) == 8


def test_vision_eval_batch_sizes_a_t4(monkeypatch):
    import torch

    class Props:
        name, major, total_memory = "Tesla T4", 7, 15_828_320_256

    class FakeParam:
        device = torch.device("cuda", 0)

    class Model:
        config = type("C", (), {"_name_or_path": "unsloth/gemma-3-4b-it"})()
        is_loaded_in_4bit = True

        def parameters(self):
            yield FakeParam()

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props)
    assert cell_memory.vision_eval_batch(Model(), 16) == memory.eval_batch_size("4b", "T4", prompt_tokens=320)
