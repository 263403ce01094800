"""A verifier as teacher: after the supervised fine-tune, a short round of reinforcement learning (GRPO) whose reward
python-chess computes.

For each training position the model samples a group of answers (``grpo_generations``, with Gemma's recommended
sampling: temperature 1.0, top-k 64, top-p 0.95); each answer is scored by three reward functions, and TRL's
GRPOTrainer moves the LoRA adapter towards the answers that scored above their group's mean:

* :func:`legal_move_reward`: +1 when the answer's first UCI move is legal in the position (``chess.parse_move``);
* :func:`solved_reward`: +2 more when that move solves the puzzle: the reference move, or any mate where the puzzle
  mates (``chess.solves_puzzle``; for ChessInstruct's "missing move" rows, the reference move only);
* :func:`format_reward`: +0.25 when the answer has exactly the reference answer's shape with one UCI move in it (for
  a puzzle: one UCI move and nothing else) and the model ended its turn there.

The reward functions are pure: they take what TRL passes (``prompts``, ``completions``, ``completion_ids``) and the
dataset's extra columns (``fen``, ``move``, ``kind``, ``answer``), one value per completion; the tests call them on
known cases. :func:`grpo_round` trains the student's existing adapter further on the training rows' prompts (the
lesson's own chat prompt, rendered as ``chess.generate_answers`` renders it) with a step count and a time budget
(``train.TimeBudget``), and records the mean reward and its parts per step (:class:`GrpoResult`,
:func:`plot_rewards`).

Where it runs: TRL's GRPOTrainer, called as Unsloth's Gemma 3 GRPO notebooks call it (``from trl import GRPOConfig,
GRPOTrainer`` after Unsloth is imported: on a GPU Unsloth swaps in its own faster trainer). TRL 1.15 scores the
sampled tokens through a fused LM head whose kernel is Triton's, which a CPU-only torch lacks; Unsloth's CPU backend
routes it to a CPU implementation, so on a CPU Unsloth must have been imported (``models.load`` does that for the
"unsloth" backend; a model loaded with backend="transformers" trains with stock TRL + PEFT once it has).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .chess import UCI_MOVE, ChessExample, parse_move, solves_puzzle
from .nf4 import config_optimizer, keep_optimizer
from .prompts import RECOMMENDED, STOP_TOKEN_IDS, chat_prompt
from .train import SCHEDULES, TimeBudget, precision_for

LEGAL_REWARD, SOLVED_REWARD, FORMAT_REWARD = 1.0, 2.0, 0.25
# Rows whose reference is "the best move here": a mate is as good as the reference there. Other one-move rows
# (ChessInstruct's FIND_LAST_MOVE: the move that was played) are solved by the reference move only.
BEST_MOVE_KINDS = ("puzzle", "FIND_NEXT_BEST_MOVE")
MOVE = "<move>"  # stands for a UCI move in an answer's shape

# ------------------------------------------------------------------------------------------- reward functions


def _text(completion: Any) -> str:
    """A completion as text: TRL passes a string for a text prompt, a list of messages for a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"a completion must be text or a list of messages, got {type(completion).__name__}")


def _column(values: Sequence[Any] | None, n: int, name: str) -> list[Any]:
    if values is None:
        raise ValueError(f"the dataset needs a {name!r} column (grpo_dataset writes it)")
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{n} completions but {len(values)} values in column {name!r}")
    return values


def legal_move_reward(prompts: Sequence[Any], completions: Sequence[Any], fen: Sequence[str] | None = None,
                      **kwargs: Any) -> list[float]:
    """+1 for each completion whose first UCI move is legal in its position (``fen``), else 0."""
    fens = _column(fen, len(completions), "fen")
    return [LEGAL_REWARD if parse_move(f, _text(c)) is not None else 0.0
            for c, f in zip(completions, fens, strict=True)]


def solves(fen: str, reference: str, kind: str, move: str | None) -> bool:
    """Whether a (legal) move solves a row: the reference move, or for a best-move row any mate
    (``chess.solves_puzzle``)."""
    if move is None or not reference:
        return False
    if kind in BEST_MOVE_KINDS:
        example = ChessExample(fen=fen, task="", prompt="", answer=reference, move=reference, kind=kind)
        return solves_puzzle(example, move)
    return move == reference


def solved_reward(prompts: Sequence[Any], completions: Sequence[Any], fen: Sequence[str] | None = None,
                  move: Sequence[str] | None = None, kind: Sequence[str] | None = None,
                  **kwargs: Any) -> list[float]:
    """+2 for each completion whose move solves its row (:func:`solves`), else 0; ``kind`` defaults to puzzles."""
    n = len(completions)
    fens, refs = _column(fen, n, "fen"), _column(move, n, "move")
    kinds = _column(kind, n, "kind") if kind is not None else ["puzzle"] * n
    return [SOLVED_REWARD if solves(f, r, k, parse_move(f, _text(c))) else 0.0
            for c, f, r, k in zip(completions, fens, refs, kinds, strict=True)]


def answer_shape(text: str) -> str:
    """An answer with each UCI move replaced by a placeholder: "e2e4" -> "<move>", '{"next best move": "<move>"}'."""
    return UCI_MOVE.sub(MOVE, text.strip())


def well_formed(text: str, reference_answer: str | None = None, ids: Sequence[int] | None = None) -> bool:
    """Exactly one UCI move, in the reference answer's shape (default: the bare move), and the turn ended there
    (when the completion's token ids are given: the last one is a stop token, so nothing was cut off)."""
    if len(UCI_MOVE.findall(text)) != 1:
        return False
    if answer_shape(text) != (answer_shape(reference_answer) if reference_answer else MOVE):
        return False
    return ids is None or (len(ids) > 0 and int(ids[-1]) in STOP_TOKEN_IDS)


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], answer: Sequence[str] | None = None,
                  completion_ids: Sequence[Sequence[int]] | None = None, **kwargs: Any) -> list[float]:
    """+0.25 for each completion that is :func:`well_formed` (the shape of its row's ``answer`` when the dataset
    has that column; the turn ended when TRL passes ``completion_ids``), else 0."""
    n = len(completions)
    answers = _column(answer, n, "answer") if answer is not None else [None] * n
    ids = _column(completion_ids, n, "completion_ids") if completion_ids is not None else [None] * n
    return [FORMAT_REWARD if well_formed(_text(c), a, i) else 0.0
            for c, a, i in zip(completions, answers, ids, strict=True)]


REWARD_FUNCS = (legal_move_reward, solved_reward, format_reward)
# The parts' short names (keys of GrpoResult.parts) and what each pays.
PARTS = {"legal": (legal_move_reward, f"legal move (+{LEGAL_REWARD:g})"),
         "solved": (solved_reward, f"puzzle solved (+{SOLVED_REWARD:g})"),
         "format": (format_reward, f"one move, turn ended (+{FORMAT_REWARD:g})")}


def total_reward(fen: str, reference: str, completion: str, kind: str = "puzzle", answer: str | None = None,
                 ids: Sequence[int] | None = None) -> float:
    """The reward GRPO gives one answer: the three parts added up (for a table or a spot check)."""
    columns = {"fen": [fen], "move": [reference], "kind": [kind], "answer": [answer or reference],
               "completion_ids": None if ids is None else [list(ids)]}
    return sum(func([""], [completion], **columns)[0] for func in REWARD_FUNCS)


# ------------------------------------------------------------------------------------------------ the data


def grpo_prompt(example: ChessExample) -> str:
    """The prompt GRPO samples from: the lesson's chat prompt as ``chess.generate_answers`` renders it, without
    ``<bos>`` (the tokenizer adds it, so the ids are the same)."""
    return chat_prompt(example.conversation(with_answer=False), bos=False)


def grpo_rows(examples: Sequence[ChessExample]) -> list[dict[str, str]]:
    """TRL rows: ``prompt`` and the columns the rewards read (fen, move, kind, answer); rows without a reference
    move (ChessInstruct's non-move tasks) are left out."""
    rows = [{"prompt": grpo_prompt(ex), "fen": ex.fen, "move": ex.move, "kind": ex.kind, "answer": ex.answer}
            for ex in examples if ex.move]
    if not rows:
        raise ValueError("no training row has a reference move: GRPO needs positions with a move to reward")
    return rows


# ------------------------------------------------------------------------------------------------ training


@dataclass
class GrpoResult:
    """What a GRPO round did: steps, seconds, the mean reward per step and its parts, why it stopped."""

    steps: int
    seconds: float
    rewards: list[tuple[int, float]] = field(default_factory=list)  # (step, mean total reward of the step's answers)
    parts: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # "legal"/"solved"/"format" -> (step, mean)
    stopped_by: str = "steps"  # "steps" (grpo_steps reached) or "time budget"
    time_budget_s: float | None = None
    output_dir: str = ""
    prompts_per_step: int = 0
    generations: int = 0
    # per step: reward_std, frac_reward_zero_std (groups whose answers all scored the same: no signal),
    # completions/mean_length, entropy, step_time, learning_rate (TRL's log, trimmed)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def seconds_per_step(self) -> float:
        """Wall seconds per optimizer step (generation, scoring and the update)."""
        return self.seconds / max(self.steps, 1)

    def table(self) -> list[dict[str, Any]]:
        """One row per step: the mean reward and each part's mean."""
        parts = {name: dict(curve) for name, curve in self.parts.items()}
        return [{"step": step, "reward": round(value, 3),
                 **{name: round(parts[name].get(step, float("nan")), 3) for name in parts}}
                for step, value in self.rewards]


HISTORY_KEYS = ("reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                "entropy", "step_time", "learning_rate", "loss")


def _from_log(log_history: Sequence[dict[str, Any]]) -> tuple[list, dict, list]:
    """(rewards, parts, history) from a trainer's log_history (one entry per step with logging_steps=1)."""
    rewards, parts, history = [], {name: [] for name in PARTS}, []
    for entry in log_history:
        if "reward" not in entry:
            continue
        step = int(entry["step"])
        rewards.append((step, float(entry["reward"])))
        for name, (func, _) in PARTS.items():
            key = f"rewards/{func.__name__}/mean"
            if key in entry:
                parts[name].append((step, float(entry[key])))
        history.append({"step": step, **{k: float(entry[k]) for k in HISTORY_KEYS if k in entry}})
    return rewards, parts, history


def _contiguous_head(model):
    """With LoRA on, generation hands the LM head a non-contiguous [batch, 1, hidden] slice and torch's CPU matmul
    then copies the 262k-row head once per row (as in chess.generate_answers): give it a contiguous tensor. Returns
    the hook handle (remove it after training), or None."""
    head = model.get_output_embeddings()
    return head.register_forward_pre_hook(lambda _, args: (args[0].contiguous(), *args[1:])) if head else None


def _stop_tokens_end_generation(model) -> None:
    """Both of Gemma's stop tokens end a sampled answer (GRPOTrainer reads them from the generation config)."""
    eos = model.generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    model.generation_config.eos_token_id = eos + [t for t in STOP_TOKEN_IDS if t not in eos]


def _check_trl_runs_here(device: str) -> None:
    if device.startswith("cuda"):
        return
    from trl.trainer import utils as trl_utils

    if getattr(trl_utils, "_ChunkedLogProbFunction", None) is None:
        raise RuntimeError("TRL's GRPOTrainer scores answers through a Triton kernel, which this CPU-only torch lacks; "
                           "Unsloth's CPU backend supplies a CPU path: `import unsloth` before transformers and trl "
                           "(models.load with backend='unsloth' does it)")


def grpo_trainer(student, rows: Sequence[dict[str, str]], settings, output_dir: str | Path, *,
                 prompts_per_step: int = 2, max_completion_length: int | None = None, beta: float = 0.0,
                 loss_type: str = "dapo", seed: int = 3407, callbacks: Sequence[Any] = ()):
    """A TRL GRPOTrainer on the student's model and adapter: ``prompts_per_step`` prompts x ``grpo_generations``
    answers a step (one generation batch per optimizer step), ``answer_tokens`` new tokens at most (the evaluations'
    budget), Gemma's recommended sampling, the ``"grpo"`` schedule of ``train.SCHEDULES``, no KL term (``beta=0``:
    no reference model; the round is short and its learning rate small), TRL's default DAPO loss (token-level,
    normalised over the batch's answer tokens)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    schedule = SCHEDULES["grpo"]
    model, tokenizer = student.model, student.tokenizer
    device = str(next(model.parameters()).device)
    _check_trl_runs_here(device)
    optimizer = schedule.optimizer or settings.optimizer
    generations = settings.grpo_generations
    batch = prompts_per_step * generations
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _stop_tokens_end_generation(model)
    args = GRPOConfig(
        output_dir=str(output_dir), max_steps=settings.grpo_steps, per_device_train_batch_size=batch,
        generation_batch_size=batch, num_generations=generations,
        max_completion_length=max_completion_length or settings.answer_tokens,
        temperature=RECOMMENDED.temperature, top_k=RECOMMENDED.top_k, top_p=RECOMMENDED.top_p,
        min_p=RECOMMENDED.min_p or None, repetition_penalty=RECOMMENDED.repeat_penalty,
        beta=beta, loss_type=loss_type, learning_rate=settings.grpo_learning_rate,
        lr_scheduler_type=schedule.scheduler, warmup_steps=schedule.warmup_steps(settings.grpo_steps),
        weight_decay=schedule.weight_decay, max_grad_norm=schedule.max_grad_norm,
        optim=config_optimizer(optimizer), logging_steps=1, save_strategy="no", report_to=[],
        seed=seed, data_seed=seed, disable_tqdm=True, gradient_checkpointing=False,
        use_cpu=not device.startswith("cuda"), **precision_for(model, student.backend).trainer_flags)
    keep_optimizer(args, optimizer)  # 8-bit AdamW on a T4 and on the CPU alike (gemma_helpers.nf4)
    trainer = GRPOTrainer(model=model, reward_funcs=list(REWARD_FUNCS), args=args,
                          train_dataset=Dataset.from_list(list(rows)), processing_class=tokenizer,
                          callbacks=list(callbacks))
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # one dict per step drowns a notebook; the rewards are plotted instead
    return trainer


def grpo_round(student, data, settings, out_dir: str | Path, time_budget_s: float | None = None, *,
               prompts_per_step: int = 2, callbacks: Sequence[Any] = ()) -> GrpoResult:
    """Train the student's existing LoRA adapter further with GRPO on the training rows' prompts, rewarded by
    python-chess; checkpoints none (a short round), writes out_dir/grpo/rewards.json.

    Stops after ``settings.grpo_steps`` steps, or after the step during which ``time_budget_s`` seconds had passed
    (None: ``settings.grpo_budget_s``; 0: no budget), whichever comes first; the result says which."""
    budget_s = getattr(settings, "grpo_budget_s", None) if time_budget_s is None else time_budget_s
    budget = TimeBudget(budget_s) if budget_s else None
    output_dir = Path(out_dir) / "grpo"
    trainer = grpo_trainer(student, grpo_rows(data.train), settings, output_dir, prompts_per_step=prompts_per_step,
                           callbacks=(*callbacks, *([budget.callback()] if budget else [])))
    hook = _contiguous_head(student.model)
    started = time.time()
    try:
        state = trainer.train()
    finally:
        if hook is not None:
            hook.remove()
        student.model.eval()
    seconds = time.time() - started
    rewards, parts, history = _from_log(trainer.state.log_history)
    steps = int(state.global_step)
    result = GrpoResult(steps, seconds, rewards, parts,
                        "time budget" if budget and budget.spent and steps < settings.grpo_steps else "steps",
                        budget_s or None, str(output_dir), prompts_per_step, settings.grpo_generations, history)
    (output_dir / "rewards.json").write_text(json.dumps(asdict(result), indent=1))
    return result


# ------------------------------------------------------------------------------------------------ pictures


def plot_rewards(result: GrpoResult, path: str | Path | None = None, smooth: int = 5):
    """The mean reward per step (raw, and a moving average when there are enough steps) and each part's mean, as a
    matplotlib figure; saved as PNG when path is given."""
    import matplotlib.pyplot as plt

    if not result.rewards:
        raise ValueError("no rewards to plot: did the GRPO round run at least one step?")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    steps, values = zip(*result.rewards, strict=True)
    ax.plot(steps, values, marker="o", markersize=3, alpha=0.5 if len(values) >= smooth else 1.0,
            label="mean reward (sum of the parts)")
    if len(values) >= smooth:
        avg = [sum(values[max(0, i - smooth + 1):i + 1]) / len(values[max(0, i - smooth + 1):i + 1])
               for i in range(len(values))]
        ax.plot(steps, avg, label=f"moving average ({smooth})")
    for name, curve in result.parts.items():
        if curve:
            s, v = zip(*curve, strict=True)
            ax.plot(s, v, linestyle="--", linewidth=1, label=PARTS[name][1] if name in PARTS else name)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward (mean over the step's answers)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"GRPO: {result.prompts_per_step} positions x {result.generations} answers a step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig

