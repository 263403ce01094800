"""Each full-mode cell's GPU memory, predicted before it runs: on Colab's T4, Kaggle's P100 and Kaggle's 2x T4.

:func:`cells` lists every full-mode cell that puts a model on the GPU, with the planner's prediction of its peak
(:mod:`gemma_helpers.memory`: weights by quant, LoRA and optimizer state, activations with Unsloth's offloaded
gradient checkpointing, the vision tower's eager attention at 896 px, the KV cache of generation) for the settings
full mode uses (:func:`gemma_helpers.env.build_config`). ``tests/test_cell_memory.py`` holds every T4 cell under
``memory.T4_LIMIT_GB`` less ``memory.MARGIN_GB``; ``scripts/gpu_check.py`` prints the same table as its dry run and
measures the real peaks on a GPU. A notebook prints a cell's prediction with one call, :func:`show`, before the
cell that needs the memory.

:func:`vision_eval_batch` is how a batched image evaluation sizes its batch on the GPU at hand (notebooks 04 and
05): the largest batch, at most 8, that the planner fits, not a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import memory
from .env import FULL, build_config
from .messages import say

# Assumed prompt lengths, in tokens (the planner needs one; each is an upper end of what the cell sends):
# ChessInstruct rows average 1,626 bytes (train.csv 161 MB / 99,000 rows; Gemma writes each digit of a move as
# its own token), about 1,000 tokens; an image is 256 soft tokens and a ChartQA/DocVQA question under 64 more;
# lm-evaluation-harness's MMLU 5-shot prompts stay under 2,048 tokens.
CHESS_PROMPT = 1024
IMAGE_PROMPT = 320
MMLU_PROMPT = 2048
HUMANEVAL_PROMPT = 512
CUDA_CONTEXT_GB = 1.13  # a T4's 15.83e9 bytes less this is memory.T4_LIMIT_GB
REQUESTED_EVAL_BATCH = 8  # what the image evaluations asked for before the planner sized them


@dataclass(frozen=True)
class Cell:
    """One full-mode cell: its notebook, a short name, and the planner's prediction for a GPU."""

    notebook: str  # "03"
    name: str  # "train"
    plan: memory.CellPlan
    gpu: str  # a key of memory.GPUS

    @property
    def key(self) -> str:
        """'03 train'."""
        return f"{self.notebook} {self.name}"

    def fits(self) -> bool:
        """Within the GPU's usable memory less memory.MARGIN_GB."""
        return self.plan.fits(self.gpu)


def _cells_for(gpu: str) -> list[Cell]:
    config = build_config(FULL, "the planner", has_cuda=True, scale=1.0)
    g = memory.GPUS[gpu]
    ch, vi, be, mg = config.chess, config.vision, config.bench, config.multigpu
    common = {"dense_bytes": g.dense_bytes, "act_bytes": g.act_bytes}
    vision_batch = memory.eval_batch_size("4b", g, requested=REQUESTED_EVAL_BATCH, prompt_tokens=IMAGE_PROMPT,
                                          new_tokens=vi.max_new_tokens, lora_r=vi.lora_r)
    out = [
        ("00", "chat", memory.plan_generation("270m", "16bit", 1, 256, config.max_new_tokens, **common)),
        ("03", "evaluate", memory.plan_generation("270m", "16bit", 25, CHESS_PROMPT, ch.answer_tokens,
                                                  lora_r=ch.lora_r, **common)),
        ("03", "train", memory.plan_training("270m", "16bit", ch.lora_r, ch.batch_size, ch.max_length,
                                             optimizer=ch.optimizer, **common)),
        ("03", "legal moves ranked", memory.plan_generation("270m", "16bit", 16, CHESS_PROMPT, 8, lora_r=ch.lora_r,
                                                            **common)),
        ("03", "GRPO", memory.plan_training("270m", "16bit", ch.lora_r, 2 * ch.grpo_generations,
                                            CHESS_PROMPT + ch.answer_tokens, optimizer=ch.optimizer, **common)),
        ("01", "parity", memory.plan_generation("270m", "16bit", 1, config.export.parity_positions, 1, **common)),
        ("04", "evaluate", memory.plan_generation("4b", "4bit", vision_batch, IMAGE_PROMPT, vi.max_new_tokens, 1,
                                                  lora_r=vi.lora_r, **common)),
        ("04", "train", memory.plan_training("4b", "4bit", vi.lora_r, vi.batch_size, vi.max_length, images=1,
                                             optimizer="adamw_torch_fused", **common)),
        ("05", "MMLU", memory.plan_generation("4b", "16bit", 1, MMLU_PROMPT, 1, **common)),
        ("05", "HumanEval", memory.plan_generation("1b", "16bit", 1, HUMANEVAL_PROMPT, be.humaneval_max_new_tokens,
                                                   **common)),
    ]
    for bench in ("ChartQA", "DocVQA", "MathVista"):
        new = be.max_new_tokens(bench)
        batch = memory.eval_batch_size("4b", g, requested=REQUESTED_EVAL_BATCH, prompt_tokens=IMAGE_PROMPT,
                                       new_tokens=new)
        quant = "4bit" if be.vision_load_in_4bit else "16bit"
        out.append(("05", bench, memory.plan_generation("4b", quant, batch, IMAGE_PROMPT, new, 1, **common)))
    out.append(("06", "launch, per GPU", memory.plan_training("270m", "16bit", ch.lora_r, mg.per_device_batch,
                                                              mg.seq_len, optimizer=ch.optimizer, **common)))
    return [Cell(nb, name, plan, gpu) for nb, name, plan in out]


def cells(gpu: str = "T4") -> list[Cell]:
    """Every full-mode cell that puts a model on the GPU, with its predicted peak on `gpu` (a key of memory.GPUS)."""
    if gpu not in memory.GPUS:
        raise KeyError(f"unknown GPU {gpu!r}: choose one of {', '.join(memory.GPUS)}")
    return _cells_for(gpu)


def table(gpu: str = "T4") -> list[dict[str, object]]:
    """The cells as rows: notebook, cell, predicted GB, whether it fits, what was assumed."""
    return [{"notebook": c.notebook, "cell": c.name, "predicted GB": round(c.plan.total_gb, 2), "fits": c.fits(),
             "what": c.plan.what} for c in cells(gpu)]


def predict(key: str, gpu: str = "T4") -> Cell:
    """The cell named like '04 train' (notebook, space, name)."""
    found = [c for c in cells(gpu) if c.key == key]
    if not found:
        raise KeyError(f"no full-mode cell {key!r}; the cells are: {', '.join(c.key for c in cells(gpu))}")
    return found[0]


def show(key: str, gpu: str = "T4") -> str:
    """The line a notebook prints before a cell: its predicted peak on a free T4 (and Kaggle's GPUs)."""
    lines = [predict(key, gpu).plan.line(gpu)]
    if gpu == "T4":
        others = [f"{name} {predict(key, name).plan.total_gb:.1f} GB" for name in memory.GPUS if name != "T4"]
        lines.append(say("memory.kaggle", others=", ".join(others)))
    text = "\n".join(lines)
    print(text)
    return text


def vision_eval_batch(model, max_new_tokens: int, requested: int = REQUESTED_EVAL_BATCH,
                      prompt_tokens: int = IMAGE_PROMPT) -> int:
    """The batch an image evaluation uses: `requested` on a CPU (the stand-in), else the largest batch up to it
    that the planner fits on this GPU (a T4 gets 3 at 896 px, where 8 would need about 27 GB)."""
    import torch

    param = next(model.parameters())
    if param.device.type != "cuda":
        return requested
    props = torch.cuda.get_device_properties(param.device)
    # what torch reports less CUDA_CONTEXT_GB: on a T4 (15.83e9 bytes) exactly memory.T4_LIMIT_GB
    gpu = memory.Gpu(props.name, props.total_memory / 1e9 - CUDA_CONTEXT_GB, bf16=props.major >= 8)
    name = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "4b")
    try:
        size = memory.get_size(name)
    except memory.UnknownModelError:
        size = memory.get_size("4b")
    quant = "4bit" if getattr(model, "is_loaded_in_4bit", False) else "16bit"
    return memory.eval_batch_size(size, gpu, requested=requested, quant=quant, prompt_tokens=prompt_tokens,
                                  new_tokens=max_new_tokens)
