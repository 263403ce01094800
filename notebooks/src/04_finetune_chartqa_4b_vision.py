# title: Chart question answering: a vision LoRA on Gemma 3 4B
# goal: Teach Gemma 3 4B to answer questions about charts ("Which bar is largest?", "What is the value of 2019?") with a LoRA on both its vision tower and its language model, and measure it the way ChartQA does: relaxed accuracy, overall and per question type, before and after training. The training data are synthetic charts whose answers are computed from the data they draw, so every reference answer is exact; in full mode the model is also tested on the real ChartQA.
# learn: ChartQA's relaxed accuracy (5% for numbers, exact for text) and its edge cases | how an image becomes 256 tokens in Gemma 3's prompt, and why those tokens are never learned and never cut | a LoRA on vision and language layers with Unsloth's 4B vision recipe, loss on the answer only | how to read a before/after table per question type | how much GPU memory the training takes, and why the 262K-row embedding stays frozen on a T4 | what to save for llama.cpp (model + mmproj) and for Ollama (merged safetensors)
# %%
# Configuration: every knob of this notebook comes from here (smoke mode shrinks them and picks the stand-in model).
import pandas as pd

from gemma_helpers import cell_memory, charts, train, vision, vision_lesson
from gemma_helpers.env import get_config, output_dir, record_result

CONFIG = get_config()
S = CONFIG.vision
print(CONFIG.describe())
for name in ("unsloth_vision", "hub_downloads"):
    flag = CONFIG.flag(name)
    print(f"{name}: {'on' if flag else 'off'} - {flag.reason}")
OUT = output_dir("04_chartqa_vision")
# %% [markdown]
# ## 1. The metric first: ChartQA's relaxed accuracy
#
# ChartQA (Masry et al., 2022) asks questions whose answers are read off a chart. A chart's numbers are drawn by
# hand or estimated from bar heights, so the benchmark accepts a **numeric answer within 5% of the reference**;
# any other answer must match exactly (case and surrounding spaces ignored). `charts.relaxed_accuracy` adds what
# real answers need before that test: thousands separators, percent signs (read as written *or* as a fraction, as
# ChartQA's own code does), currency and unit words, the Unicode minus sign, and a reference of zero (no relative
# error exists, so zero must be answered exactly). One quirk is kept on purpose: a year is a number, so `2019`
# counts as right for `2020`.
# %%
cases = [("105", "100"), ("106", "100"), ("1,234", "1234"), ("45%", "0.45"), ("$12 million", "12"),
         ("0.001", "0"), ("-10.4", "-10"), ("10", "-10"), ("Increasing.", "increasing"), ("2019", "2020")]
pd.DataFrame([{"prediction": p, "reference": t, "relaxed-correct": charts.relaxed_accuracy(p, t)} for p, t in cases])
# %% [markdown]
# **Your turn.** Score the seven (prediction, reference) pairs below by hand, without `charts`: what relaxed accuracy
# do they get, as a fraction?
# %%
from gemma_helpers import exercises

print(exercises.RELAXED_CASES)
ANSWER = None  # your answer here: a fraction between 0 and 1
exercises.check_chartqa_relaxed_accuracy(ANSWER)
# %% [markdown]
# ## 2. Charts with exact answers
#
# Every chart below is drawn from seeded random data, and every answer is computed from that data, not read from
# the picture, so it is exact. Training and held-out charts come from seeds far apart: no held-out chart was seen in
# training. `S.chart_set` picks one of two sets:
#
# * **chartqa-like** (full mode, for Gemma 3 4B): bar, grouped-bar, line and pie charts at 448 px and ChartQA's
#   seven question types: the **value** of a label, the **largest** and **smallest** label, the **difference**
#   between two labels, the **sum**, the **trend** of a line and the **count** of bars.
# * **simple** (smoke mode, for the CPU stand-in): 64 px bar charts of 2-4 bars, each its own colour, with whole
#   values on a 1-5 grid, and four question types of rising difficulty: **count** the bars (2, 3 or 4), name the
#   **colour** of the first or last bar (5 colours), name the colour of the **tallest** bar (one of the chart's bars),
#   read the **value** of a bar named by its colour (1 to 5). Every question is closed, so its **chance level** (a
#   uniform guess among the answers it allows) is known: accuracy at chance is guessing, above it is reading.
# %%
data = vision_lesson.make_data(S)
print(f"{len(data.train)} training questions ({S.chart_set} charts); held-out: "
      + ", ".join(f"{k} {len(v)}" for k, v in data.heldout.items()))
print(f"ChartQA test sample: {S.chartqa_items} questions (hub downloads {CONFIG.flag('hub_downloads').reason})")
print("held-out questions per type:", pd.Series([r.qtype for r in data.heldout["synthetic"]]).value_counts().to_dict())
vision_lesson.plot_answers(data.heldout["synthetic"][:8]);
# %% [markdown]
# ## 3. The model
#
# Gemma 3 4B reads an image with a SigLIP encoder: the picture is resized to 896x896, cut into 14x14-pixel patches,
# encoded, and pooled to **256 soft tokens** that take the place of `<start_of_image>` in the prompt.
#
# > **In smoke mode (CPU) the model below is a stand-in, not Gemma 3 4B.** Unsloth's vision backend needs a GPU and
# > the 4B model is too large for a CPU lesson, so a tiny randomly initialised `Gemma3ForConditionalGeneration` is
# > built on this machine: the same classes, the same chat format, the same image tokens and label masking, about
# > 700 thousand random parameters, 64x64 px images cut into 16 patches of 16 px (one soft token each). It knows
# > nothing at first; the lesson measures what it learns here, in minutes, about the simple charts. On a GPU the same
# > cells load and train the real `unsloth/gemma-3-4b-it` in 4-bit.
#
# `load` also says which **backend** trains the model: `"unsloth"` (a CUDA GPU) or `"transformers"` (PEFT and a
# torch loop: the stand-in, or a CPU). The later steps take it as an argument, so nothing is guessed from the model.
# %%
vision.reset_peak_memory()
model, processor, backend = vision_lesson.load(S)
print(vision_lesson.describe_model(S.model, model))
print(f"backend: {backend}")
# %% [markdown]
# ## 4. What the model is trained on
#
# Each training row is the prompt (the image and the question) followed by the reference answer and
# `<end_of_turn>`. Only the answer and `<end_of_turn>` carry labels (shown in [brackets] below); the prompt, the
# image soft tokens and the padding get the label -100, which the loss ignores. A row longer than `max_length` is
# an error rather than a silently truncated image: cutting image tokens would leave the model a broken picture.
# (`tests/test_vision.py` checks all of this token by token.)
# %%
print(vision_lesson.show_labels(processor, data.train[0], S.max_length))
# %% [markdown]
# ## 5. The LoRA
#
# Unsloth's Gemma 3 vision recipe: rank 16, alpha 16, adapters on **both** the vision tower and the language
# model (attention and MLP projections), learning rate 2e-4, AdamW, 30 steps of one image with 4 accumulation
# steps, the model in 4-bit. The embedding and the output head (tied, 262,208 rows) stay frozen: section 10 shows
# why. The adapters go on first, as in Unsloth's notebook: a LoRA's B matrices start at zero, so until training
# moves them the model answers exactly as the base model does, and the same model object is evaluated before and
# after (Unsloth switches it between `for_inference` and `for_training` around each evaluation).
#
# The stand-in differs in one knob, `S.train_fully`: its vision tower and projector are random, with nothing worth
# keeping, so they are trained whole (PEFT's `modules_to_save`) while the language model gets the LoRA. The 4B's
# tower already sees, so there every module gets adapters and `train_fully` is empty.
# %%
model = vision_lesson.add_adapters(model, S, backend)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
print(f"trainable parameters: {trainable:,} of {model.num_parameters():,} "
      f"(trained whole: {', '.join(S.train_fully) or 'none'})")
# %% [markdown]
# ## 6. Before training
#
# Greedy answers to the held-out questions, scored with relaxed accuracy. Each question ends with ChartQA's
# instruction as lmms-eval words it ("Answer the question using a single word or phrase."), with its 16-token
# budget in full mode, so the ChartQA numbers compare with published ones. (The untrained stand-in emits noise or
# nothing; Gemma 3 4B answers, sometimes in a sentence rather than one word.)
# %%
cell_memory.show("04 evaluate")  # full mode on a free T4: the batch of images is what fits (gemma_helpers.memory)
before = vision_lesson.evaluate_all(model, processor, data, S, backend)
for name, result in before.items():
    print(f"{name}: relaxed accuracy {result.rate:.1%} on {result.n} questions ({result.seconds:.1f} s); "
          f"first answers: {list(result.answers[:4])}")
# %% [markdown]
# ## 7. Train
#
# In full mode the training runs through TRL's `SFTTrainer` with Unsloth's vision data collator and the T4's
# `SFTConfig`: on a GPU with Unsloth's `FastVisionModel`, without one (`Config.substitutes` says why) with the same
# 4-bit model through transformers and PEFT, the same adapters on the same layers. Smoke mode's stand-in trains with
# a plain torch loop. The
# stand-in's first losses lie far above ln(vocabulary size), about 6.7: its random output layer is confidently wrong
# at first. What matters is the fall, and then the held-out table below.
# %%
cell_memory.show("04 train")
result = vision_lesson.train(model, processor, data, S, OUT, backend)
first = sum(loss for _, loss in result.losses[:5]) / len(result.losses[:5])
last = sum(loss for _, loss in result.losses[-5:]) / len(result.losses[-5:])
print(f"{result.steps} steps in {result.seconds:.1f} s ({result.seconds_per_step:.2f} s/step); "
      f"loss {first:.2f} -> {last:.2f} (mean of the first and last 5 steps, {1 - last / first:.0%} lower)")
train.plot_losses(result.losses, OUT / "loss.png", title=f"vision LoRA on {S.model}", smooth=25);
# %% [markdown]
# ## 8. After training
#
# The same held-out questions again. The table has one row per question type (for ChartQA itself: the dataset's
# `human` and `machine` questions), the chance level beside it, and the gain in points.
# %%
after = vision_lesson.evaluate_all(model, processor, data, S, backend)
for name in data.heldout:
    print(f"{name}: relaxed accuracy {before[name].rate:.1%} -> {after[name].rate:.1%} "
          f"(95% interval after: {after[name].interval()[0]:.1%}-{after[name].interval()[1]:.1%})")
pd.DataFrame(vision_lesson.accuracy_table(before["synthetic"], after["synthetic"])).set_index("question type")
# %%
# The charts as the model sees them, with its answers before and after training.
vision_lesson.plot_answers(data.heldout["synthetic"], {"before": before["synthetic"].answers,
                                                       "after": after["synthetic"].answers});
# %% [markdown]
# Read the table per question type, not only overall, and against chance: a type at its chance level is guessed,
# not read. The types are ordered by what the model must do with the picture: *count* needs the bars' layout only;
# *colour* needs one bar's colour at a place the question names; *tallest* compares the bars' heights; *value*
# finds a bar by its colour and reads its height off the grid. The stand-in learns them in about that order: in
# our CPU runs *count* and *tallest* were learned first and *colour* next, while *value*, which needs both
# (find, then measure), stayed near its chance level in the steps a CPU lesson can afford; more steps, or a larger
# stand-in, move it. On the 4B (full mode) the types are ChartQA's, where *value*, *difference* and *sum* need
# numbers read off the picture.
#
# ## 9. Save: the adapter, and a merged model
#
# The **adapter** (a few MB) needs the base model next to it. The **merged** model has the LoRA folded into the
# weights (16-bit safetensors): it is what the other tools need.
#
# * **llama.cpp** runs a Gemma 3 vision model as *two* GGUF files: the language model, and an `mmproj` file with
#   the SigLIP tower and projector (`convert_hf_to_gguf.py` on the merged folder, a second time with `--mmproj`);
#   `llama-mtmd-cli` / `llama-server --mmproj` then take both. A LoRA on the vision tower only survives this if it
#   was merged first.
# * **Ollama** builds its own single-file model from the merged safetensors folder (`ollama create` with a
#   Modelfile whose `FROM` is the folder, optionally `--quantize q4_K_M`), vision tower included. It cannot apply a
#   LoRA adapter to the vision tower, and does not pair a text GGUF with a separate mmproj; give it the merged folder.
#
# On a T4 the merged copy is off by default (`save_merged` in the configuration): merging a LoRA trained on 4-bit
# weights downloads the 16-bit 4B again (8.6 GB) and writes 8.6 GB, several more minutes than the lesson needs.
# %%
paths = vision_lesson.save(model, processor, S, OUT, backend)
if not S.save_merged:
    print(f"  merged: {vision.MERGED_SKIPPED}")
for kind, path in paths.items():
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"{kind:>8}: {path} ({size / 1e6:.1f} MB): {', '.join(sorted(f.name for f in path.iterdir()))}")
# %% [markdown]
# ## 10. Memory: what the planner predicts for 4B on a T4, and what was measured
#
# QLoRA keeps the 4B's linear layers in 4-bit (about half a byte per weight) and trains only the adapters, whose
# weights, gradients and two AdamW moments cost 16 bytes per parameter. The vocabulary is the trap: the embedding
# has 262,208 rows x 2,560 = 671M parameters. Frozen in 16-bit it costs 1.3 GB; made trainable
# (`modules_to_save=["embed_tokens", "lm_head"]`, which unties it into two fp32 copies with gradients and AdamW
# states) it costs 21 GB, more than a T4 has. That is why the recipe leaves it frozen.
# %%
plans = vision_lesson.memory_plans(S)
table = pd.DataFrame({name: {**{k: round(v, 2) for k, v in p.parts.items()}, "total GB": round(p.total_gb, 2),
                             "fits a T4 (15 GB)": p.fits("T4 (Colab)")} for name, p in plans.items()}).T
peak, what = vision.peak_memory_gb()
print(f"measured in this run: {peak:.2f} GB ({what}; GPU: {CONFIG.flag('gpu').reason})")
print("Set a T4's measured peak next to the first column; a CPU run measures the stand-in, not 4B.")
table
# %% [markdown]
# **Your turn.** The recipe trains rank-16 adapters. A learner tries rank 64 for 4B in 4-bit, everything else as in
# the recipe. How many GB more does the planner say it needs? Work out which part of the plan grows, then check it
# with `models.plan_lora_memory` (add `from gemma_helpers import models` to use it).
# %%
ANSWER = None  # your answer here, in GB (10^9 bytes)
exercises.check_qlora_rank_64_extra_gb(ANSWER)
# %% [markdown]
# ## 11. Results
#
# What was measured where: in smoke mode, everything above ran on the CPU with the stand-in model and the simple
# charts drawn at 64x64 px; its gains say that the pipeline learns to read those charts, not how well Gemma 3 reads
# real ones. In full mode (a free T4), the real
# Gemma 3 4B was trained on 120 synthetic charts (30 steps x 4) and tested on 100 held-out synthetic charts and on a
# seeded sample of 100 questions from ChartQA's test split (only that split's file is downloaded, 69 MB).
#
# **Time on a free T4 (estimated, not yet measured here):** loading the 4-bit model about 2-3 min; the 30 training
# steps about 13 min (Unsloth's Gemma 3 vision notebook records 760 s for the same 30 steps x 4 images on a T4);
# 400 greedy answers (200 before, 200 after, 16 tokens each, batches of 8) a few minutes; about 25 min in all,
# plus several minutes if you turn on the merged save. The seconds per step printed in section 7 are this run's.
# %%
results = {"vision_model": S.model, "vision_seconds_per_step": round(result.seconds_per_step, 3),
           "vision_loss_first5": round(first, 3), "vision_loss_last5": round(last, 3),
           "vision_loss_drop": round(1 - last / first, 3), "vision_peak_memory_gb": round(peak, 2),
           "vision_planned_t4_qlora_gb": round(plans["QLoRA, embeddings frozen (the recipe)"].total_gb, 2)}
for name in data.heldout:
    results[f"vision_{name}_accuracy_before"] = round(before[name].rate, 3)
    results[f"vision_{name}_accuracy_after"] = round(after[name].rate, 3)
    results[f"vision_{name}_questions"] = after[name].n
for key, value in results.items():
    record_result(key, value)
pd.Series(results, name="notebook 04").to_frame()
