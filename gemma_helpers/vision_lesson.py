"""The chart-question lesson (notebook 04) as steps: data -> load -> adapters -> evaluate -> train -> evaluate -> save.

Each step returns what the next needs, so a notebook cell can show one at a time; :func:`run` chains them for
``bench/vision.py`` and the tests. Evaluations are :class:`gemma_helpers.scores.EvalResult` objects: one score per
held-out question (ChartQA's relaxed accuracy), grouped by question type, with each question's chance level (a
uniform guess among the answers it allows; NaN for open questions) as the extra metric ``chance``. On ChartQA itself
the groups are the dataset's own split of questions: ``human`` (written by people) and ``machine`` (generated).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import charts, vision
from .env import TINY_VISION
from .models import plan_lora_memory
from .scores import EvalResult
from .vision_standin import describe

METRIC = "relaxed accuracy"


@dataclass
class LessonData:
    """Training rows and the held-out sets, by name ("synthetic", and "chartqa" when ChartQA items are asked)."""

    train: list[charts.ChartQuestion]
    heldout: dict[str, list[charts.ChartQuestion]]


@dataclass
class LessonResult:
    """What :func:`run` measured: evaluations before and after per held-out set, the training, the saved paths."""

    before: dict[str, EvalResult]
    after: dict[str, EvalResult]
    training: Any  # train.TrainResult
    paths: dict[str, Path]
    backend: str
    seconds: dict[str, float] = field(default_factory=dict)


def make_data(settings, seed: int = 0) -> LessonData:
    """Training charts and held-out charts (never the same chart) of the settings' chart set, plus a ChartQA test
    sample when settings.chartqa_items > 0."""
    train = charts.chart_questions(settings.chart_set, settings.train_charts, "train", seed, settings.image_size)
    heldout = {"synthetic": charts.chart_questions(settings.chart_set, settings.eval_charts, "heldout", seed,
                                                   settings.image_size)}
    if settings.chartqa_items:
        heldout["chartqa"] = charts.load_chartqa("test", settings.chartqa_items, seed)
    return LessonData(train, heldout)


def load(settings) -> tuple[Any, Any, str]:
    """(model, processor, backend): the settings' model through the backend that will train it."""
    backend = vision.choose_backend(settings.model)
    model, processor = vision.load_vision_model(settings.model, load_in_4bit=settings.load_in_4bit,
                                                max_length=settings.max_length, backend=backend)
    return model, processor, backend


def add_adapters(model, settings, backend: str):
    """The LoRA adapters (and the modules the settings train whole), added before the first evaluation."""
    return vision.add_vision_lora(model, r=settings.lora_r, alpha=settings.lora_alpha, backend=backend,
                                  train_fully=settings.train_fully)


def evaluate(model, processor, rows: Sequence[charts.ChartQuestion], max_new_tokens: int, backend: str,
             task: str = "chart QA") -> EvalResult:
    """Greedy answers to held-out questions, scored by relaxed accuracy, grouped by question type, with chance."""
    started = time.time()
    answers = vision.answer_charts(model, processor, rows, max_new_tokens, backend=backend)
    return EvalResult(task, METRIC, tuple(float(charts.relaxed_accuracy(a, r.answer)) for a, r in zip(
        answers, rows, strict=True)), groups=tuple(r.qtype for r in rows), answers=tuple(answers),
        extra={"chance": tuple(charts.chance(r) for r in rows)}, seconds=time.time() - started)


def evaluate_all(model, processor, data: LessonData, settings, backend: str) -> dict[str, EvalResult]:
    """:func:`evaluate` on every held-out set."""
    return {name: evaluate(model, processor, rows, settings.max_new_tokens, backend, f"chart QA ({name})")
            for name, rows in data.heldout.items()}


def train(model, processor, data: LessonData, settings, out_dir: str | Path, backend: str):
    """Train on the lesson's training rows; returns train.TrainResult."""
    return vision.train_vision_lora(model, processor, data.train, output_dir=Path(out_dir) / "run", backend=backend,
                                    max_steps=settings.max_steps, batch_size=settings.batch_size,
                                    learning_rate=settings.learning_rate, max_length=settings.max_length,
                                    gradient_accumulation=settings.gradient_accumulation,
                                    sft=settings.model != TINY_VISION)  # a hub model: the T4's trainer, on any machine


def save(model, processor, settings, out_dir: str | Path, backend: str) -> dict[str, Path]:
    """The adapter and, when settings.save_merged, the merged 16-bit model."""
    return vision.save_adapter_and_merged(model, processor, out_dir, base=settings.model,
                                          merged=settings.save_merged, backend=backend)


def run(settings, out_dir: str | Path) -> LessonResult:
    """The whole lesson: data, load, adapters, evaluate, train, evaluate, save; seconds per step measured."""
    seconds: dict[str, float] = {}

    def timed(name: str, fn, *args):
        started = time.time()
        out = fn(*args)
        seconds[name] = time.time() - started
        return out

    data = timed("data", make_data, settings)
    model, processor, backend = timed("load", load, settings)
    model = add_adapters(model, settings, backend)
    before = timed("evaluate before", evaluate_all, model, processor, data, settings, backend)
    training = timed("train", train, model, processor, data, settings, out_dir, backend)
    after = timed("evaluate after", evaluate_all, model, processor, data, settings, backend)
    paths = timed("save", save, model, processor, settings, out_dir, backend)
    return LessonResult(before, after, training, paths, backend, seconds)


# ------------------------------------------------------------------------------------------ what a learner sees


def _pct(value: float) -> float | None:
    return None if math.isnan(value) else round(100 * value, 1)


def accuracy_table(before: EvalResult, after: EvalResult) -> list[dict[str, Any]]:
    """Rows per question type, then "all": n, chance, relaxed accuracy before and after, and the gain, in percent.

    Chance is a uniform guess among the answers a question allows; an open question (a number to read) has none
    (NaN in its row) and counts as a wrong guess in the "all" row.
    """
    b, a, chance = before.by_group(), after.by_group(), after.by_group("chance")
    rows = []
    for group, (rate, n) in a.items():
        rows.append({"question type": group, "n": n, "chance %": _pct(chance[group][0]),
                     "before %": _pct(b[group][0]), "after %": _pct(rate), "gain (points)": _pct(rate - b[group][0])})
    closed = [c for c in after.extra.get("chance", ()) if not math.isnan(c)]
    overall_chance = sum(closed) / after.n if closed else math.nan  # an open question's guess counts as wrong
    rows.append({"question type": "all", "n": after.n, "chance %": _pct(overall_chance),
                 "before %": _pct(before.rate), "after %": _pct(after.rate), "gain (points)": _pct(after.rate -
                                                                                                   before.rate)})
    return rows


def describe_model(name: str, model=None) -> str:
    """One paragraph on what is loaded: the stand-in says loudly that it is one."""
    params = f" ({model.num_parameters():,} parameters)" if model is not None else ""
    if name == TINY_VISION:
        return describe(params)
    return f"{name}{params}: Gemma 3 with its SigLIP vision tower (896x896 px -> 256 image tokens)"


def show_labels(processor, row: charts.ChartQuestion, max_length: int = 2048) -> str:
    """A row's tokens as the model trains on them: [learned] tokens in brackets, image soft tokens counted."""
    batch = vision.build_batch(processor, [row], max_length)
    tok, out, run_length = processor.tokenizer, [], 0
    for token, label in zip(batch["input_ids"][0].tolist(), batch["labels"][0].tolist(), strict=True):
        if token == tok.image_token_id:
            run_length += 1
            continue
        if run_length:
            out.append(f"<image_soft_token> x {run_length}")
            run_length = 0
        piece = tok.decode([token])
        out.append(f"[{piece}]" if label != vision.IGNORE else piece)
    return "".join(out)


def plot_answers(rows: Sequence[charts.ChartQuestion], predictions: dict[str, Sequence[str]] | None = None,
                 n: int = 8, columns: int = 4):
    """A grid of charts, each titled with its question, the reference and each run's answer (✓ when right)."""
    import matplotlib.pyplot as plt

    predictions = predictions or {}
    shown = list(rows[:n])
    lines = 3 + len(predictions)
    n_rows = (len(shown) + columns - 1) // columns
    fig, axes = plt.subplots(n_rows, columns, squeeze=False, figsize=(3.2 * columns, (3.2 + 0.2 * lines) * n_rows))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(shown):
            continue
        row = shown[i]
        ax.imshow(row.image)
        text = [row.question if len(row.question) < 48 else row.question[:45] + "...", f"reference: {row.answer}"]
        for name, answers in predictions.items():
            mark = "✓" if charts.relaxed_accuracy(answers[i], row.answer) else "✗"
            text.append(f"{name}: {answers[i][:24]!r} {mark}")
        ax.set_title("\n".join(text), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def memory_plans(settings, seq_len: int = 384) -> dict[str, Any]:
    """The planner's estimates for 4B vision LoRA at these settings: the recipe, trained embeddings, 16-bit."""
    common = {"lora_r": settings.lora_r if settings.model != TINY_VISION else 16, "seq_len": seq_len,
              "batch_size": settings.batch_size if settings.model != TINY_VISION else 2}
    return {"QLoRA, embeddings frozen (the recipe)": plan_lora_memory("4b", "4bit", **common),
            "QLoRA + trainable embed_tokens/lm_head": plan_lora_memory("4b", "4bit", train_embeddings=True, **common),
            "16-bit LoRA, embeddings frozen": plan_lora_memory("4b", "16bit", **common)}
