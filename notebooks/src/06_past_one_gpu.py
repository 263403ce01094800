# title: Past one GPU: a plan, one script on several processes, and an evaluation split across them
# goal: The lessons so far fit one free T4. The next question is how to go past it: fine-tune Gemma 3 12B or 27B, or evaluate on thousands of items in an hour. This notebook first asks the memory planner which strategy fits which machine (one GPU, a layer split, DDP, FSDP, FSDP with CPU offload) for 12B and 27B. Then it launches one training script with accelerate, unchanged, on one process, on two with DDP and on two with FSDP2, and checks that two processes learn what one process learns from the same batches; it resumes a sharded checkpoint on a different number of processes; and it splits an evaluation across processes and checks the merged answers item for item against one process. Full mode runs on every GPU the machine has (Kaggle's 2x T4); smoke mode runs the same launches as two CPU processes.
# learn: which multi-GPU strategy fits which size and machine, and why the others do not | that 12B fits one T4 quantized, and 27B needs two | how accelerate launches one script as N processes, and what the global batch is | why DDP and one process give the same loss curve for the same global batch, and by how much they may differ | what FSDP shards, and how a sharded checkpoint resumes on another process count | how to split an evaluation across processes and prove the merged result equals one process's
# %%
# Configuration: every knob of this notebook comes from here (smoke mode: two CPU processes, a few short steps).
import pandas as pd
from IPython.display import display

from gemma_helpers import multigpu_lesson, multigpu_plan
from gemma_helpers.env import get_config, output_dir, record_result

CONFIG = get_config()
S = CONFIG.multigpu
print(CONFIG.describe())
OUT = output_dir("06_past_one_gpu")
HERE = multigpu_lesson.here(S)
print(HERE.describe())
# %% [markdown]
# ## 1. A plan before a launch
#
# Training memory has parts: the frozen weights, the LoRA weights with their gradients and AdamW's two moments, the
# activations saved for the backward pass, the logits, and the CUDA context. Each strategy divides them differently:
#
# - **one GPU**: everything on one card;
# - **layer split** (Unsloth's `device_map="balanced"`): each GPU holds a slice of the layers; only one GPU works at a
#   time, so it is no faster than one GPU, but it holds a bigger model;
# - **DDP**: a full copy on every GPU, each on its own slice of the batch, gradients averaged: faster, not bigger;
# - **FSDP**: weights, gradients and optimizer states sharded across GPUs, each layer gathered just before it runs;
# - **FSDP + CPU offload**: the shards wait in CPU memory, at the price of PCIe traffic.
#
# **Your turn.** Predict before you ask the planner. Gemma 3 27B with QLoRA needs about 23 GB on one card, and a
# T4 has about 15 GB usable. Which of the five strategies above fit it on Kaggle's **two T4s**? Answer with a list of
# names as written in `multigpu_plan.STRATEGIES`.
# %%
from gemma_helpers import exercises

print(multigpu_plan.STRATEGIES)
ANSWER = None  # your answer here, e.g. ["DDP"]
exercises.check_strategies_27b_two_t4(ANSWER)
# %% [markdown]
# The planner (`gemma_helpers.multigpu_plan`, built on notebook 00's memory planner) says which fit, per GPU. Each
# cell of the table lists the strategies that fit; QLoRA (4-bit weights) first:
# %%
pd.DataFrame(multigpu_plan.fit_matrix("qlora"))
# %%
pd.DataFrame(multigpu_plan.fit_matrix("lora"))  # 16-bit LoRA: the weights alone are 2 bytes a parameter
# %% [markdown]
# Read it: **12B QLoRA fits one T4** (about 13 of its 15 usable GB; Unsloth's free Colab notebook for Gemma 3 12B
# does exactly this), while 16-bit LoRA of 12B needs about 29 GB. **27B fits no single T4**, even quantized; on
# Kaggle's two T4s it fits as a layer split or with FSDP. The details for 27B on two T4s, with the reason each
# strategy fails where it fails:
# %%
for size in S.plan_sizes:
    print(f"Gemma 3 {size.upper()}, QLoRA, 2x T4 (Kaggle), batch 2 x 512 tokens per GPU:")
    display(pd.DataFrame(multigpu_plan.plan_table(size, "qlora", "2x T4 (Kaggle)")))
# %% [markdown]
# The step times are estimates (datasheet TFLOPs and an assumed utilisation), and a T4 has no bfloat16: Gemma 3's
# activations overflow float16 (notebook 00), so on a T4 the plan counts float32 activations, and a multi-GPU run
# there must keep them (Unsloth's float32 islands) or train in float32.
#
# The plans above are Unsloth's path. This notebook's own training script (next section) is plain transformers and
# PEFT, and it is planned apart: float32 on a T4 (4 bytes a parameter and the T4's 8.1 float32 TFLOPs, about 8x
# slower than Unsloth's float16), bfloat16 on Ampere or newer, every layer's activations kept on one GPU and with
# DDP, activation checkpointing with FSDP2. Which tool to use on which machine, with the memory per GPU each one
# predicts for the three sizes that need more than one free GPU (estimates from the architecture, batch 1 x 512
# tokens per GPU, computed by `multigpu_plan.tool_table`; sources in the last column):
# %%
pd.DataFrame(multigpu_plan.tool_table())
# %% [markdown]
# Read it: on **one T4**, Unsloth's QLoRA (12B fits, 27B does not). On **Kaggle's two T4s**, Unsloth's layer split
# for QLoRA up to 27B, or this script for 16-bit LoRA of the 4B with FSDP2 (in float32, about 14 of 15 GB: tight).
# On **A100 or H100 nodes**, this script with FSDP2 in bfloat16 for every size. Sharded QLoRA is not in the table:
# it works with FSDP1 and a 4-bit storage dtype equal to the compute dtype; under FSDP2, 4-bit weights stored as
# uint8 are left unsharded (no saving) and a float storage gives wrong outputs (bitsandbytes#1945).
# `gemma_helpers/launch_configs/fsdp2.yaml` says this with its sources. An adapter is merged only after training,
# on one process, from the saved adapter.
#
# ## 2. One script, launched as one process and as two
#
# `gemma_helpers.train_launch` is one training script: the chess LoRA of notebook 03, through the Hugging Face
# Trainer. `accelerate launch` starts it as N processes; the config file names the strategy
# (`gemma_helpers/launch_configs/`: `single`, `ddp`, `fsdp2`), and the script does not change. In full mode it
# trains the 4B where one GPU here holds it (single and DDP keep a whole copy per GPU), else the 270M: the 4B has
# the architecture of 12B and 27B, a vision tower beside the language model, and the script puts LoRA on the
# language model only. This is the command the notebook runs. On the CPU the launcher also gets
# `ACCELERATE_USE_CPU=true` in its environment (gloo between the processes); on a GPU machine the same line starts
# one process per GPU (nccl):
# %%
MODEL, WHY = multigpu_lesson.lesson_model(S)
print(f"the launches train {MODEL} ({WHY})")
print(multigpu_lesson.command_line(S, "ddp", HERE.processes))
# %% [markdown]
# The **global batch** is what one optimizer step learns from: per-device batch x processes x gradient accumulation.
# Keeping it equal, one process with gradient accumulation sees the same examples in the same order as N processes
# that each take a slice, so their loss curves should agree up to floating-point noise.
#
# **Your turn.** A fine-tune on one T4 used a per-device batch of 2 and gradient accumulation 8. You move it to
# Kaggle's two T4s with DDP, still 2 examples per device. What gradient accumulation keeps the global batch (and so
# the learning-rate schedule and the loss curve) the same?
# %%
ANSWER = None  # your answer here: a whole number
exercises.check_grad_accum_two_t4(ANSWER)
# %% [markdown]
# The lesson's launches keep the global batch the same way (`multigpu_lesson.grad_accum`). Both launches:
# %%
single = multigpu_lesson.train(S, OUT, "single", processes=1)
ddp = multigpu_lesson.train(S, OUT, "ddp", processes=HERE.processes)
pd.DataFrame(multigpu_lesson.runs_table([single, ddp]))
# %%
agreement = multigpu_lesson.loss_agreement(single, ddp)
print(agreement.describe())
multigpu_lesson.plot_runs([single, ddp], OUT / "runs.png");
# %% [markdown]
# On two CPU processes the throughput is no better than one process, and usually worse: the two processes share
# the same two cores (one thread each) and also average their gradients over gloo. The launcher's start-up (seconds
# of imports in every process) is counted apart. On two GPUs each process has its own card, and tokens per second
# should nearly double. The memory column is per process: DDP keeps a full copy in each.
#
# ## 3. FSDP2: a sharded checkpoint, resumed on another number of processes
#
# FSDP shards the model across processes, and so is its checkpoint: each process writes its shard. A run that
# stops (a Kaggle session ends after 12 hours) must go on, perhaps on a machine with a different number of GPUs.
# The FSDP2 launch is planned for the whole run (its learning-rate schedule too) but stops after its first checkpoint,
# as a disconnect would; a second launch copies the checkpoint into its own folder and resumes it on a different
# process count. Its losses after the resume must match the unbroken one-process run's:
# %%
fsdp = multigpu_lesson.train(S, OUT, "fsdp2", processes=HERE.processes, stop_at=S.save_steps)
resumed = multigpu_lesson.train(S, OUT, "fsdp2", processes=HERE.other_count(), resume=fsdp)
print(multigpu_lesson.resume_report(fsdp, resumed, single))
pd.DataFrame(multigpu_lesson.runs_table([fsdp, resumed]))
# %% [markdown]
# ## 4. An evaluation split across processes
#
# Evaluating is easier to split than training: every item is independent. `gemma_helpers.split_eval` gives each
# process its share of the items (accelerate's `split_between_processes`), gathers the per-item answers
# (`gather_object`) and writes them in the original order. The merged result must equal one process's, item for
# item: the same prediction for every question, and scores within a small tolerance.
# %%
evaluation = multigpu_lesson.evaluate(S, OUT, processes=HERE.processes)
print(evaluation.describe())
pd.DataFrame(evaluation.rows())
# %% [markdown]
# On GPUs, lm-evaluation-harness does the same for every benchmark it knows: data parallel through accelerate, or
# vLLM with tensor and data parallelism. The dtype rule applies there too: a T4 has no bfloat16, and vLLM's
# maintainers call Gemma 3 unstable in float16. So on a T4 the weights take 4 bytes a parameter, and that decides
# which size an evaluation can hold: with hf every GPU keeps a whole copy, with vLLM one copy is split across them.
# The commands for this machine's GPUs (for Kaggle's two T4s when it has none), each for the largest size that fits:
# %%
for backend in ("hf", "vllm"):
    print(multigpu_lesson.lm_eval_line(HERE, backend))
# %% [markdown]
# ## 5. What you measured
#
# Each check beside what it is held to. The loss tolerance is relative, per logged step: the order of floating-point
# sums differs between one process and two (threads, the all-reduce), and the chess positions' losses carry five
# or six significant digits of it, no more. The throughput row is a measurement of this machine, not a verdict.
# %%
checks = multigpu_lesson.measured(single, ddp, fsdp, resumed, evaluation)
pd.DataFrame(checks)
# %%
record_result("06.ddp_loss_max_abs_diff", round(agreement.max_abs_diff, 7))
record_result("06.ddp_loss_agrees", agreement.ok)
record_result("06.fsdp2_resume_agrees", checks[1]["ok"])
record_result("06.split_eval_items_equal", evaluation.ok)
record_result("06.tokens_per_s", {run.label: round(run.tokens_per_s, 1) for run in (single, ddp, fsdp, resumed)})
assert all(row["ok"] is not False for row in checks), "the launches disagree: see the table above"
