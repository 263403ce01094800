"""Notebook 06's steps: past one GPU. One training script launched as one process, as N with DDP and with FSDP2,
a sharded checkpoint resumed on another process count, and an evaluation split across processes.

Every training launch learns from the same **global batch** (per-device batch x processes x gradient accumulation):
with N processes the per-device batch is the settings' and the accumulation 1; with fewer, the accumulation makes up
the difference. accelerate hands the N processes consecutive batches of one sampler round-robin, so one process
accumulating N batches sees the same examples in the same order, and the two loss curves agree up to float noise
(:func:`loss_agreement`, :data:`LOSS_REL`). :func:`run` is the whole lesson for ``bench/`` and the tests.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed, sources, split_eval
from .catalog import CATALOG, get_size
from .models import resolve
from .multigpu_plan import Machine, script_plan

# Relative tolerance on each logged loss between launches of the same global batch. tests/test_distributed.py holds
# DDP to 1e-4 against one process on a tiny model; on the 270M the order of float sums (threads per process, the
# all-reduce) moves losses in the fifth digit, so the lesson allows 1e-3 and prints the largest difference found.
LOSS_REL = 1e-3


@dataclass(frozen=True)
class Here:
    """Where the launches run: processes, CPU or GPUs, and the GPU's name."""

    processes: int
    cpu: bool
    gpu_name: str | None = None
    compute_capability: str | None = None
    gpu_gb: float | None = None  # memory of one GPU

    def describe(self) -> str:
        if self.cpu:
            return (f"launches here: {self.processes} CPU processes (gloo backend, "
                    f"{max(1, (os.cpu_count() or 1) // self.processes)} thread(s) each); on a machine with GPUs: "
                    "one process per GPU (nccl)")
        return f"launches here: {self.processes} process(es), one per GPU ({self.gpu_name}, nccl backend)"

    def other_count(self) -> int:
        """A different process count to resume on: one after several; two after one on the CPU; on one GPU, one
        (two processes cannot share one GPU under nccl)."""
        return 1 if self.processes > 1 or not self.cpu else 2


def here(settings) -> Here:
    """The machine's launch shape: one process per GPU, or the settings' count (2) of CPU processes."""
    import torch

    if torch.cuda.is_available():
        cap = torch.cuda.get_device_capability(0)
        return Here(settings.processes or torch.cuda.device_count(), False, torch.cuda.get_device_name(0),
                    f"{cap[0]}.{cap[1]}", torch.cuda.get_device_properties(0).total_memory / 1e9)
    return Here(settings.processes or 2, True)


def lesson_model(settings) -> tuple[str, str]:
    """(model id, why): the settings' model where one GPU here holds it for the launched script (single and DDP keep
    a whole copy per GPU; multigpu_plan.script_plan in the script's dtype), else ``settings.fallback_model``. On the
    CPU (the full-mode rehearsal, or smoke mode) the settings' model."""
    import re

    h = here(settings)
    size = re.search(r"gemma-3-(\d+[mb])", settings.model)
    if h.cpu or not settings.fallback_model or not size or size.group(1) not in CATALOG:
        return settings.model, "the settings' model"
    bf16 = h.compute_capability is not None and float(h.compute_capability) >= 8.0
    gpu = Machine(h.gpu_name or "this GPU", 1, max(0.0, (h.gpu_gb or 0.0) - 1.0), bf16, "none", 100.0, "torch")
    plan = script_plan(size.group(1), gpu, "one GPU", settings.per_device_batch, settings.seq_len)
    if plan.fits:
        return settings.model, f"one {h.gpu_name} holds it in {plan.dtype} (about {plan.per_gpu_gb:.0f} GB, est.)"
    return settings.fallback_model, (f"{settings.model} needs about {plan.per_gpu_gb:.0f} GB in {plan.dtype} on one "
                                     f"GPU (est.), more than this {h.gpu_name}'s {gpu.usable_gb:.0f} GB usable")


def model_folder(settings) -> Path:
    """The lesson's model (:func:`lesson_model`) as a local folder (the launched processes load it; a hub id is
    downloaded once here)."""
    path = resolve(lesson_model(settings)[0])
    return Path(path) if Path(path).expanduser().exists() else Path(sources.model_folder(path))


def global_batch(settings, processes_here: int) -> int:
    """Examples per optimizer step in every launch: the per-device batch on each of the machine's processes."""
    return settings.per_device_batch * processes_here


def grad_accum(settings, processes: int, processes_here: int) -> int:
    """Gradient accumulation that keeps the global batch on `processes` processes."""
    total = global_batch(settings, processes_here)
    if total % (settings.per_device_batch * processes):
        raise ValueError(f"{processes} processes x batch {settings.per_device_batch} do not divide the global batch "
                         f"{total}: choose a process count that divides {processes_here}")
    return total // (settings.per_device_batch * processes)


def _args(settings, out: Path, processes: int, processes_here: int, stop_at: int | None, resume: bool) -> list[str]:
    # --steps is always the whole run's: a run stopped early keeps the learning-rate schedule of the whole run, so
    # that its resumed continuation matches an unbroken run
    args = ["--model", str(model_folder(settings)), "--out", str(out), "--steps", str(settings.steps),
            "--per-device-batch", str(settings.per_device_batch),
            "--grad-accum", str(grad_accum(settings, processes, processes_here)),
            "--seq-len", str(settings.seq_len), "--save-steps", str(settings.save_steps),
            "--rows", str(settings.train_rows)]
    if stop_at:  # a run cut off leaves only its checkpoints (gathering the adapter would also cost a launch's time)
        args += ["--stop-at", str(stop_at), "--no-adapter"]
    if resume:
        args.append("--resume")
    if settings.time_budget_s and not stop_at:  # --stop-at bounds it; a budget could end it before its checkpoint
        args += ["--time-budget-s", str(settings.time_budget_s)]
    return args


def command_line(settings, strategy: str, processes: int) -> str:
    """The launch command a training step runs, as one shell line (for reading)."""
    h = here(settings)
    cmd = distributed.launch_command(distributed.TRAIN_MODULE,
                                     _args(settings, Path("OUT") / f"{strategy}-{processes}p", processes,
                                           h.processes, None, False),
                                     strategy=strategy, num_processes=processes, cpu=h.cpu)
    return shlex.join(["python", *cmd[1:]])


@dataclass
class Run:
    """One training launch as the notebook shows it."""

    label: str
    strategy: str
    processes: int
    grad_accum: int
    summary: dict[str, Any]
    launch_seconds: float
    out_dir: Path
    ranks: list[dict] = field(default_factory=list)

    @property
    def losses(self) -> list[tuple[int, float]]:
        return [(int(s), float(v)) for s, v in self.summary["losses"]]

    @property
    def resumed_from(self) -> str | None:
        return self.summary.get("resumed_from")

    @property
    def tokens_per_s(self) -> float:
        return float(self.summary["tokens_per_second"] or 0.0)

    def row(self) -> dict[str, Any]:
        s = self.summary
        return {"run": self.label, "processes": self.processes, "grad accum": self.grad_accum,
                "backend": s.get("backend") or "none (1 process)", "steps run": s["steps_run"], "last step": s["steps"],
                "stopped by": self.ranks[0].get("stopped_by", "") if self.ranks else "",
                "resumed from": Path(s["resumed_from"]).name if s.get("resumed_from") else "",
                "start-up s": round(s["startup_seconds"], 1), "train s": round(s["train_seconds"], 1),
                "launch s": round(self.launch_seconds, 1), "tokens/s": round(self.tokens_per_s, 1),
                f"peak memory per process, GB ({s['peak_memory_kind']})":
                    ", ".join(f"{r['peak_memory_gb']:.2f}" for r in self.ranks)}


def train(settings, out_dir: str | Path, strategy: str, processes: int, stop_at: int | None = None,
          resume: Run | None = None) -> Run:
    """Launch the training script with a strategy on `processes` processes, keeping the global batch.

    ``stop_at``: end at that step (a checkpoint is written every ``settings.save_steps``). ``resume``: go on from
    the newest checkpoint of that earlier run's folder, to ``settings.steps``."""
    import shutil

    h = here(settings)
    out = Path(out_dir) / f"{strategy}-{processes}p"
    if resume:
        # The resumed run gets its own folder holding a copy of the first run's checkpoints: the first run's files
        # (its rank files of another process count, its adapter) stay where they were, and this run's are not mixed
        # with them.
        out = Path(out_dir) / f"{Path(resume.out_dir).name}-resumed-{processes}p"
    if out.exists():  # a fresh run: no checkpoint of an earlier one may be resumed by accident
        shutil.rmtree(out)
    if resume:
        shutil.copytree(resume.out_dir, out, ignore=shutil.ignore_patterns("rank*.json", "adapter", "launch-*.log"))
    result = distributed.launch(distributed.TRAIN_MODULE,
                                _args(settings, out, processes, h.processes, stop_at, resume is not None),
                                strategy=strategy, num_processes=processes, cpu=h.cpu)
    if not result.ranks:
        raise RuntimeError(f"the {strategy} launch wrote no rank files in {out}: see {result.log_path}")
    label = f"{strategy}, {processes} process{'es' if processes > 1 else ''}" + (", resumed" if resume else "")
    return Run(label, strategy, processes, grad_accum(settings, processes, h.processes),
               distributed.summary(result.ranks), result.seconds, out, result.ranks)


@dataclass(frozen=True)
class LossAgreement:
    """Two loss curves, step for step."""

    a: str
    b: str
    steps: int
    max_abs_diff: float
    max_rel_diff: float
    rel: float = LOSS_REL

    @property
    def ok(self) -> bool:
        return self.steps > 0 and self.max_rel_diff <= self.rel

    def describe(self) -> str:
        verdict = "agree" if self.ok else "DISAGREE"
        return (f"{self.a} vs {self.b}: {self.steps} logged steps {verdict}; largest difference {self.max_abs_diff:.2e}"
                f" ({self.max_rel_diff:.1e} relative, tolerance {self.rel:.0e})")


def loss_agreement(a: Run, b: Run, after: int = 0) -> LossAgreement:
    """Compare two runs' losses at the steps both logged (after step `after`)."""
    la, lb = dict(a.losses), dict(b.losses)
    common = sorted(s for s in la.keys() & lb.keys() if s > after)
    if not common:
        raise ValueError(f"{a.label} and {b.label} logged no common step after {after}: compare runs of one lesson")
    diffs = [abs(la[s] - lb[s]) for s in common]
    rels = [d / max(abs(la[s]), abs(lb[s]), 1e-12) for d, s in zip(diffs, common, strict=True)]
    return LossAgreement(a.label, b.label, len(common), max(diffs), max(rels))


def resume_report(first: Run, resumed: Run, reference: Run) -> str:
    """Where the first run stopped, where the second went on, and whether its losses match the reference's."""
    stop = first.summary["steps_run"]
    agree = loss_agreement(resumed, reference, after=stop)
    return (f"{first.label} stopped at step {stop} with a sharded checkpoint; {resumed.label} went on from "
            f"{Path(resumed.resumed_from or '?').name} to step {resumed.summary['steps']} "
            f"({resumed.summary['steps_run']} steps run).\nAfter the resume, against {reference.label}: "
            f"{agree.describe()}")


def runs_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per launch."""
    return [r.row() for r in runs]


def plot_runs(runs: Sequence[Run], path: str | Path | None = None):
    """Loss curves of the launches over one another, and tokens per second beside peak memory per process."""
    import matplotlib.pyplot as plt

    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(14, 3.6))
    for i, r in enumerate(runs):
        steps, losses = zip(*r.losses, strict=True) if r.losses else ((), ())
        left.plot(steps, losses, marker="o", linestyle="-" if i == 0 else "--", label=r.label)
    left.set(xlabel="step", ylabel="training loss", title="same global batch, same curve")
    left.legend(fontsize=8)
    labels = [r.label for r in runs]
    mid.bar(labels, [r.tokens_per_s for r in runs], color="tab:green")
    mid.set(ylabel="tokens / s (all processes)", title="throughput")
    for r_i, r in enumerate(runs):
        for k, rank in enumerate(r.ranks):
            right.bar(r_i + (k - (len(r.ranks) - 1) / 2) * 0.3, rank["peak_memory_gb"], width=0.28,
                      color=f"C{k}", label=f"rank {k}" if r_i == 0 or k >= len(runs[0].ranks) else None)
    right.set_xticks(range(len(runs)), labels)
    right.set(ylabel=f"peak GB ({runs[0].summary['peak_memory_kind']})", title="memory per process")
    right.legend(fontsize=8)
    for ax in (mid, right):
        ax.tick_params(axis="x", labelsize=8, rotation=10)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


@dataclass
class Evaluation:
    """The split evaluation of each task against one process, item for item."""

    agreements: dict[str, Any]  # task -> split_eval.Agreement
    single: dict[str, dict]  # task -> merged.json of one process
    split: dict[str, dict]  # task -> merged.json of the split run
    processes: int

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.agreements.values())

    def describe(self) -> str:
        return "\n".join(f"{task}: {a.report()}" for task, a in self.agreements.items())

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for task, agreement in self.agreements.items():
            split = self.split[task]
            rows.append({"task": task, "items": split["items_total"], "processes": self.processes,
                         "items per process": ", ".join(str(r["count"]) for r in split["ranks"]),
                         "seconds per process": ", ".join(f"{r['seconds']:.1f}" for r in split["ranks"]),
                         "one process, s": sum(r["seconds"] for r in self.single[task]["ranks"]),
                         "result (split)": split["result"], "equal item for item": agreement.ok})
        return rows


def evaluate(settings, out_dir: str | Path, processes: int) -> Evaluation:
    """Each task (MMLU, chess) once in this process and once split across `processes` launched processes."""
    h = here(settings)
    model = str(model_folder(settings))
    single, split, agreements = {}, {}, {}
    for task, items in (("mmlu", settings.mmlu_items), ("chess", settings.chess_items)):
        base = Path(out_dir) / f"eval-{task}"
        one = split_eval.main(["--task", task, "--model", model, "--out", str(base / "1p"), "--items", str(items)])
        distributed.launch(split_eval.__name__, ["--task", task, "--model", model, "--out",
                                                 str(base / f"{processes}p"), "--items", str(items)],
                           strategy="ddp", num_processes=processes, cpu=h.cpu,
                           log_path=base / f"launch-{processes}p.log")
        many = json.loads((base / f"{processes}p" / split_eval.MERGED).read_text())
        single[task], split[task] = one, many
        agreements[task] = split_eval.compare(one, many)
    return Evaluation(agreements, single, split, processes)


# Share of a GPU the weights may take in an lm_eval command: the rest is for activations and vLLM's KV cache.
LM_EVAL_WEIGHT_SHARE = 0.7
T4_GB = 15.0  # a T4's 16 GB less the CUDA context (multigpu_plan's usable figure)


def lm_eval_line(where: Here, backend: str, sizes: Sequence[str] = ("27b", "12b", "4b", "1b")) -> str:
    """lm-evaluation-harness's command for this machine's GPUs (Kaggle's two T4s when it has none), for the largest
    Gemma 3 size whose weights, in the dtype those GPUs must use, take at most LM_EVAL_WEIGHT_SHARE of each GPU: hf
    keeps a whole copy per GPU, vLLM splits one copy over all of them (tensor parallel)."""
    gpus, gpu, cap, gb = ((2, "T4", "7.5", T4_GB) if where.cpu else
                          (where.processes, where.gpu_name, where.compute_capability, where.gpu_gb or T4_GB))
    dtype, _ = split_eval.lm_eval_dtype(gpu, cap)
    split = gpus if backend == "vllm" else 1

    def per_gpu(size: str) -> float:
        return get_size(size).params * (4 if dtype == "float32" else 2) / split / 1e9

    size = next((s for s in sizes if per_gpu(s) <= LM_EVAL_WEIGHT_SHARE * gb), sizes[-1])
    cmd = split_eval.lm_eval_command(f"google/gemma-3-{size}-it", gpus, gpu, cap, backend=backend,
                                     tensor_parallel=split)
    machine = "Kaggle's 2x T4 (none here)" if where.cpu else f"{gpus}x {gpu}"
    return (f"# {backend} on {machine}: Gemma 3 {size.upper()} in {dtype}, {per_gpu(size):.1f} GB of weights per GPU "
            f"(the largest size within {LM_EVAL_WEIGHT_SHARE:.0%} of a {gb:.0f} GB GPU)\n{shlex.join(cmd)}")


def run(settings, out_dir: str | Path) -> dict[str, Any]:
    """The whole lesson: one process, DDP, FSDP2 stopped and resumed on another count, and the split evaluation."""
    h = here(settings)
    out = Path(out_dir)
    single = train(settings, out, "single", processes=1)
    ddp = train(settings, out, "ddp", processes=h.processes)
    fsdp = train(settings, out, "fsdp2", processes=h.processes, stop_at=settings.save_steps)
    resumed = train(settings, out, "fsdp2", processes=h.other_count(), resume=fsdp)
    evaluation = evaluate(settings, out, h.processes)
    return {"runs": runs_table([single, ddp, fsdp, resumed]), "ddp": loss_agreement(single, ddp),
            "resume": resume_report(fsdp, resumed, single), "evaluation": evaluation}


def measured(single: Run, ddp: Run, fsdp: Run, resumed: Run, evaluation: Evaluation) -> list[dict[str, Any]]:
    """The lesson's result: each check beside what it is held to, and the throughput of N processes against one."""
    ddp_agree = loss_agreement(single, ddp)
    resume_agree = loss_agreement(resumed, single, after=fsdp.summary["steps_run"])
    rows = [
        {"check": f"DDP x{ddp.processes} vs 1 process, same global batch", "measured":
         f"largest loss difference {ddp_agree.max_rel_diff:.1e} (relative), {ddp_agree.steps} steps",
         "held to": f"<= {LOSS_REL:.0e}", "ok": ddp_agree.ok},
        {"check": f"FSDP2 x{fsdp.processes} stopped at step {fsdp.summary['steps_run']}, resumed on "
                  f"{resumed.processes}", "measured": f"largest loss difference after the resume "
                                                      f"{resume_agree.max_rel_diff:.1e} (relative) against 1 process",
         "held to": f"<= {LOSS_REL:.0e}", "ok": resume_agree.ok},
    ]
    for task, agreement in evaluation.agreements.items():
        rows.append({"check": f"{task} split across {evaluation.processes} processes vs 1",
                     "measured": agreement.report(), "held to": "same prediction for every item",
                     "ok": agreement.ok})
    ratio = ddp.tokens_per_s / single.tokens_per_s if single.tokens_per_s else float("nan")
    rows.append({"check": f"throughput, DDP x{ddp.processes} / 1 process", "measured": f"{ratio:.2f}x",
                 "held to": "about 2x on two GPUs; below 1x on two CPU processes sharing the same cores",
                 "ok": None})
    return rows
