# title: Export to GGUF for phones and llama.cpp, and check the file
# goal: Turn a Gemma 3 model (the chess fine-tune from notebook 03 when you have run it, else the chat model of this curriculum) into GGUF files with llama.cpp's own converter and quantizer, then prove that each file still computes what the model computed: llama.cpp and transformers read the same tokens and we compare their next-token predictions position by position. Finally: how much memory each file needs on a phone, which phones can hold it, and how to load it in ChatterUI or PocketPal AI.
# learn: what a GGUF holds (tensors, tokenizer, chat template) and why the template must travel with it | f16, Q8_0 and Q4_K_M: size against fidelity, measured as top-1 agreement and KL divergence | why a 270M model's Q4_K_M file is mostly its 262K-token embedding | RAM at 2K and 8K context, and which 4 / 6 / 8 GB phones can run which file | how to check a file on the phone is the file you made (sha256)
# %%
# Configuration: every knob of this notebook comes from here (smoke mode shrinks them and picks the embedded model).
import pandas as pd
from IPython.display import display

from gemma_helpers import export, parity, phone
from gemma_helpers.env import get_config, output_dir, record_result
from gemma_helpers.prompts import CHAT_TEMPLATE

CONFIG = get_config()
S = CONFIG.export
print(CONFIG.describe())
OUT = output_dir("01_gguf_export")
# Section 8 exports the 4B vision model with its projector only when you opt in (GEMMA_EXPORT_VISION=1): it is big.
VISION_EXPORT = S.vision_export
print(f"vision export: {'on' if VISION_EXPORT else 'off'} - {VISION_EXPORT.reason}")
# %% [markdown]
# ## 0. llama.cpp for Python
#
# The quantizer and the parity check run llama.cpp through **llama-cpp-python**. Colab does not ship it, and PyPI
# has only its source, whose build takes about 7 minutes on Colab's two CPU cores. So the helper first tries the
# prebuilt CPU wheel from llama-cpp-python's own wheel index (about 20 s), and builds from source only where no
# wheel fits; it prints which one and how long before it starts. Where it is installed (`make env`), it does nothing.
# %%
export.ensure_llama_cpp()
# %% [markdown]
# ## 1. What we export
#
# If notebook 03 has run, its merged chess fine-tune is exported: that is the model you would carry to a phone.
# Notebook 03 saved it with a `provenance.json` (base model, adapter, data, steps, dtype, what made it, when), and
# this cell reads that manifest rather than guessing from folder names; a folder without one is an error that says
# to run notebook 03 again. Before notebook 03 has run, the configured chat model is exported instead, and the cell
# says so. (CI runs 03 before this notebook, as a learner would, so it exports the fine-tune.)
# %%
SOURCE = export.choose_source(S.model, output_dir(S.chess_output_glob), OUT)
source, what = SOURCE.folder, SOURCE.what
print("exporting:", what)
print("from the Hugging Face folder:", source)
if SOURCE.record:
    print("its provenance.json:", {k: v for k, v in vars(SOURCE.record).items() if k != "extra"})
# %% [markdown]
# ## 2. HF folder -> GGUF, with llama.cpp's own tools
#
# * **f16** and **Q8_0** are written by llama.cpp's `convert_hf_to_gguf.py` (it ships inside the llama-cpp-python
#   source package; the helper unpacks it once into the cache). Nobody should write their own GGUF converter: the
#   converter knows every architecture's tensor names, the tokenizer, and Gemma 3's quirks.
# * **Q4_K_M** is made from the f16 file by llama.cpp's quantizer (`llama_model_quantize`, the function behind the
#   `llama-quantize` program).
# * The converter also stores the **chat template**. We give it ours (the one `prompts.chat_prompt` renders), so
#   every runtime that reads the file formats conversations exactly the way the model was trained.
#
# Files from an earlier run on the same source are reused (the folder's `export.json` records the source).
# Each step of this notebook is one package call (`export.choose_source`, `export.export_gguf`,
# `parity.check_files`, `parity.survival_table`, `phone.phone_table`); `export.run(settings, out_dir, chess_dir)`
# chains them for scripts and tests.
# %%
NAME = export.gguf_name(SOURCE)  # the file names and the name inside, both from the model's provenance.json
files = export.export_gguf(SOURCE, OUT, S.quant_types)
print(f"named {NAME.name!r}: {NAME.file('<quant>')}")
print("the converter's and quantizer's own output (a line per tensor) is in", NAME.log(OUT))
pd.DataFrame([{"quant": q, "file": f.path.split("/")[-1], "MB": round(f.size_mb, 1), "seconds to make": f.seconds,
               "sha256": f.sha256[:16] + "..."} for q, f in files.items()])
# %% [markdown]
# Each file carries a **name** and where it came from, written from the model's `provenance.json`: phone apps and
# Ollama list the model under `general.name`, and `general.base_model.*` says which released model it started from.
# The tokenizer type is SentencePiece ("llama" in llama.cpp's words) because the saved folder carries the base's
# `tokenizer.model`, as Google's own GGUF does; without that file llama.cpp's converter would have guessed another
# tokenizer (or stopped), and `export_gguf` would have said which file to copy before it started.
# %%
pd.DataFrame([{"quant": q, "name": i.name, "basename": i.metadata.get("general.basename"),
               "size label": i.metadata.get("general.size_label"), "license": i.metadata.get("general.license"),
               "base model": i.metadata.get("general.base_model.0.repo_url"),
               "tokenizer": i.metadata.get("tokenizer.ggml.model")}
              for q, i in ((q, export.read_gguf(f.path)) for q, f in files.items())])
# %% [markdown]
# ## 3. What is inside a GGUF
#
# The header lists every tensor with its type. Norms stay in f32; matrices take the quant type. Look at Q4_K_M:
# Gemma 3 270M's rows are 640 values long, and K-quants need whole blocks of 256, so llama.cpp falls back to Q5_0 /
# Q8_0 for most matrices (the quantizer's log says so 90 times: "not divisible by 256 -> falling back"). That is why
# the 270M's Q4_K_M file is barely smaller than its Q8_0 one, unlike the larger sizes, whose widths (1,152 for 1B,
# 2,560 for 4B) are multiples of 256. And the 262,144 x 640 embedding, which is also the output head, is over two
# thirds of the file: for this model, vocabulary dominates size.
# %%
infos = {q: export.read_gguf(f.path) for q, f in files.items()}
pd.DataFrame([{"quant": q, "tensors": i.n_tensors, "tensor MB": round(i.tensor_bytes / 1e6, 1),
               "types": ", ".join(f"{k} x{v}" for k, v in sorted(i.tensor_types.items())),
               "our chat template inside": i.chat_template == CHAT_TEMPLATE} for q, i in infos.items()])
# %% [markdown]
# ## 4. Does the file compute what the model computed?
#
# Unsloth and most tutorials stop at "the file was written". We check it. The same token streams (prose, a chat
# turn, code, a story) go through the transformers model in float32 and through llama.cpp reading each GGUF, and at
# every position we compare the two predictions of the next token:
#
# * **top-1 agreement**: how often both pick the same most likely token (targets: f16 >= 99%, Q8_0 >= 97%);
# * **mean KL divergence** of llama.cpp's distribution from the reference: 0 means identical;
# * **near-tie flips**: disagreements where the reference itself hesitated (its top two tokens within 0.5 nats).
#   Rounding may flip such a coin toss without the model getting worse.
# %%
check = parity.check_files(source, files, S.parity_positions)
results = list(check.results.values())
pd.DataFrame([{"quant": r.quant, "positions": r.positions, "top-1 agreement %": round(100 * r.top1_agreement, 1),
               "mean KL": f"{r.mean_kl:.2e}", "max KL": f"{r.max_kl:.2e}", "flips": r.flips,
               "of which near-ties": r.near_tie_flips} for r in results])
# %% [markdown]
# The logits above were compared on the **same token ids** in both runtimes. A phone app does not get ids: it gets
# text, and llama.cpp's own tokenizer (the GGUF's vocabulary) turns it into ids. So the second check is the
# tokenizer: the same texts through transformers' tokenizer and llama.cpp's, on the kinds of text where tokenizers
# part ways (Chinese, code, runs of spaces and newlines, emoji, the chat markers). All quant types share one
# vocabulary, so one file is enough.
# %%
tokens = pd.DataFrame(parity.tokenizer_agreement(source, files["f16"].path))
print(f"llama.cpp tokenizes {tokens['identical'].sum()} of {len(tokens)} texts exactly as transformers does")
tokens
# %% [markdown]
# **Your turn.** The table's KL is KL(reference || GGUF) in nats, averaged over positions. Compute one by hand: the
# reference gives three tokens the probabilities P below, the GGUF gives them Q. What is KL(P || Q)?
# %%
from gemma_helpers import exercises

print("P =", exercises.KL_P, " Q =", exercises.KL_Q)
ANSWER = None  # your answer here, in nats
exercises.check_kl_by_hand(ANSWER)
# %% [markdown]
# How to read it: f16 should agree almost everywhere (it only rounds weights to 16 bits). Q8_0 moves the
# distribution a little (a small KL); where it changes the top token, look at how many of those positions were
# near-ties. If Q4_K_M is far off, the next cell shows why.
#
# ## 5. Did the fine-tune survive quantization?
#
# A fine-tune (LoRA) adds small changes to the weights. Quantization rounds every weight to a grid. If the changes
# are smaller than the grid's steps, rounding can take them away again, and the file behaves like the model
# *before* fine-tuning. We compare each file with both models: the fine-tuned one (above) and its base. A file that
# agrees better with the base than with the fine-tune has lost the fine-tune.
#
# In smoke mode this can happen to Q4_K_M, for a reason worth knowing: the embedded base model was itself
# dequantized from a Q4_K_M file, so its weights sit exactly on Q4_K grid points, and a short LoRA (the 40-step chat
# LoRA, or a few CPU minutes of chess) moves many of them by less than a step. Real checkpoints (bf16 weights) are not on any grid, but the lesson holds: **check the quantized file,
# not only the model you trained**, and prefer Q8_0 (or Q5_K_M / Q6_K) when a small fine-tune must survive.
# %%
base = export.base_of(SOURCE.record)
print("fine-tuned from:", SOURCE.record.base if base else "nothing recorded (not a model this curriculum made): "
      "nothing to compare")
if base:
    display(pd.DataFrame(parity.survival_table(base, files, check)))
# %% [markdown]
#
# A damaged file must fail with a message, not crash the kernel. Here is a copy cut in half:
# %%
broken = OUT / "broken-copy.gguf"
broken.write_bytes(open(files["q4_k_m"].path, "rb").read(files["q4_k_m"].size_bytes // 2))
try:
    export.read_gguf(broken)
except export.GGUFError as err:
    print("GGUFError:", err)
broken.unlink()
# %% [markdown]
# ## 6. Which phone can run it?
#
# RAM needed = the file (its weights are mapped into memory) + the KV cache for the context + llama.cpp's compute
# buffers. A phone's OS and apps keep about half its memory, so the planner gives a model about 1.8 / 3.0 / 4.2 GB on
# a 4 / 6 / 8 GB phone. First the files we made, measured; then the planner's estimate for every Gemma 3 size.
# %%
pd.DataFrame(phone.phone_table(files))
# %%
pd.DataFrame(phone.planner_phone_table())
# %% [markdown]
# **Your turn.** A learner's phone has **6 GB** and they want a **4,096-token** context. For Gemma 3 270M, 1B and 4B,
# which is the least compressed of `bf16`, `q8_0`, `q4_k_m` that fits (`None` if none does)? Use the planner:
# `models.plan_memory(size, quant, 4096)` and its `.fits("phone 6 GB")` (4B counted with its vision tower; add
# `from gemma_helpers import models` to use it).
# %%
ANSWER = None  # your answer here, e.g. {"270m": "q4_k_m", "1b": "q4_k_m", "4b": "q4_k_m"}
exercises.check_phone_6gb_quants(ANSWER)
# %% [markdown]
# ## 7. Carry it to the phone
#
# Copy the Q4_K_M file (the usual choice on a phone: the smallest file that still agrees well) and compare its
# sha256 with the one below (on Android, apps such as "Hash Droid" compute it; on a computer, `sha256sum FILE`).
# %%
chosen = files["q4_k_m"]
print(f"file:   {chosen.path}\nsize:   {chosen.size_mb:.1f} MB\nsha256: {chosen.sha256}\n")
for app, steps in phone.PHONE_APPS.items():
    print(app)
    for i, step in enumerate(steps, 1):
        print(f"  {i}. {step}")
# %% [markdown]
# ## 8. Vision models: the model file and its projector
#
# Gemma 3 4B, 12B and 27B read images. llama.cpp keeps the SigLIP vision encoder and its projector in a second file,
# the **mmproj**, written by the same converter with `--mmproj`; both files are loaded together. Exporting the 4B
# downloads 8.6 GB, adds 15-25 minutes on a T4 and needs about 20 GB of disk, so this cell runs only when you opt in:
# set `GEMMA_EXPORT_VISION=1` (in Colab: `%env GEMMA_EXPORT_VISION=1`) and run the configuration cell again.
# Either way it prints the commands that load the pair.
# %%
if VISION_EXPORT:
    vision_files = export.export_vision(S.vision_model, output_dir("01_gguf_export_vision"))
    commands = export.vision_commands(vision_files["model"], vision_files["mmproj"])
else:
    print(f"skipped: {VISION_EXPORT.reason}")
    commands = export.vision_commands("gemma-3-4b-it-q4_k_m.gguf", "mmproj-gemma-3-4b-it-f16.gguf")
print("\n".join(commands))
# %% [markdown]
# ## 9. Results
#
# Size against fidelity, one point per file. The key numbers are recorded for the curriculum's run summary.
# %%
parity.plot_parity(results, {q: f.size_mb for q, f in files.items()}, OUT / "parity.png")
for r in results:
    record_result(f"01.{r.quant}.top1_agreement", round(r.top1_agreement, 4))
    record_result(f"01.{r.quant}.mean_kl", float(f"{r.mean_kl:.3g}"))
    record_result(f"01.{r.quant}.file_mb", round(files[r.quant].size_mb, 1))
record_result("01.exported", what.split(" (")[0]);
