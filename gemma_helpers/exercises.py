"""Exercises that check themselves ("your turn"): each ``check_<name>(answer)`` prints right, or what is wrong.

A wrong answer gets a hint about the mistake it looks like (a factor of 2, the wrong log base, the interval of
another method), never the answer. The reference answers are computed here from the package's own functions (the
planner, ``chat_prompt``, the dtype policy, ``chess.score``, ``wilson_interval``, ``anls``), so they change when the
lesson's code does. Each check returns True or False and never raises on a learner's answer.

``ANSWER = None`` (the notebook's default) prints a hint and returns False, so *Run all* passes. CI checks the
checks: with ``GEMMA_EXERCISE_ANSWERS=tests/exercise_answers.py`` (a module of ``NAME = value`` constants, NAME the
exercise's name in capitals: ``KV_CACHE_4B_32K`` for :func:`check_kv_cache_4b_32k`; a relative path is looked up
from the working directory, then from the repository root), a ``None`` answer is replaced by the file's, and a file
answer that is missing or rejected raises :class:`ExerciseAnswerError`, so the notebook run fails where the lesson's
code and its answer key disagree.
"""

from __future__ import annotations

import math
import os
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

ANSWERS_ENV = "GEMMA_EXERCISE_ANSWERS"
EXERCISES: dict[str, tuple[str, Callable[[Any], bool]]] = {}  # name -> (notebook, check function)


class ExerciseAnswerError(RuntimeError):
    """The answer file named by GEMMA_EXERCISE_ANSWERS lacks an exercise's answer, or the check rejects it."""


def answers_file() -> Path | None:
    """The answer file named by GEMMA_EXERCISE_ANSWERS (relative: to the working directory, else the repo root)."""
    name = os.environ.get(ANSWERS_ENV, "").strip()
    if not name:
        return None
    for path in (Path(name), Path(__file__).resolve().parents[1] / name):
        if path.is_file():
            return path
    raise ExerciseAnswerError(f"{ANSWERS_ENV}={name!r}: no such file here or under the repository root")


def _close(value: float, target: float, rel: float = 0.02, abs_tol: float = 1e-9) -> bool:
    return math.isclose(value, target, rel_tol=rel, abs_tol=abs_tol)


def _number(answer: Any) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _run(name: str, answer: Any, judge: Callable[[Any], tuple[bool, str]], hint: str) -> bool:
    """Judge an answer (None: the answer file's, if one is named, else a hint), print the verdict, return it."""
    from_file = False
    if answer is None:
        path = answers_file()
        if path is None:
            print(f"No answer yet: set ANSWER and run this cell again. Hint: {hint}")
            return False
        key = name.upper()
        answers = runpy.run_path(str(path))
        if key not in answers:
            raise ExerciseAnswerError(f"{path} has no {key}, the answer to exercise {name!r}")
        answer, from_file = answers[key], True
    try:
        right, message = judge(answer)
    except Exception as err:  # an answer of an unexpected shape is a learner's mistake, not a crash
        right, message = False, f"could not read that answer ({type(err).__name__}: {err}). {hint}"
    print(("Right! " if right else "Not yet: ") + message)
    if from_file and not right:
        raise ExerciseAnswerError(f"the answer file's {name.upper()} is rejected by check_{name}: {message}")
    return right


def exercise(notebook: str):
    """Register a check function under its name (``check_`` dropped) and its notebook."""
    def register(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
        EXERCISES[check.__name__.removeprefix("check_")] = (notebook, check)
        return check
    return register


# ------------------------------------------------------------------------- 00: memory, the chat format, dtypes

KV_SIZE, KV_CONTEXT = "4b", 32_768


def _judge_kv_cache(answer: Any) -> tuple[bool, str]:
    from .catalog import get_size
    from .memory import kv_cache_bytes

    value = _number(answer)
    if value is None:
        return False, "give a number of GB (10^9 bytes), like 1.5"
    note = ""
    if value > 1e5:
        value, note = value / 1e9, "(read as bytes) "
    size = get_size(KV_SIZE)
    ref = kv_cache_bytes(size, KV_CONTEXT) / 1e9
    per_token = 2 * size.kv_heads * size.head_dim * 2 / 1e9  # K and V, 2 bytes each
    n_global = sum(size.layer_is_global(i) for i in range(size.layers))
    if _close(value, ref):
        return True, (f"{note}{ref:.2f} GB: the {n_global} global layers hold all {KV_CONTEXT:,} tokens, the other "
                      f"{size.layers - n_global} only their {size.sliding_window:,}-token window")
    mistakes = [
        (size.layers * KV_CONTEXT * per_token, "too large: you gave every layer the whole context. Gemma 3's "
         "sliding-window layers (five of every six) keep only their last `sliding_window` tokens"),
        (size.layers * size.sliding_window * per_token, "too small: every sixth layer is global and keeps the whole "
         "context, not just the window"),
        (2 * ref, "too large by a factor of about 2: bfloat16 takes 2 bytes per value (not 4), and grouped-query "
         "attention stores the KV heads (`kv_heads`), not the query heads"),
        (ref / 2, "too small by a factor of about 2: did you count both K and V?"),
        (ref * 1e9 / 2**30, "that looks like GiB (2^30 bytes); the question asks for GB (10^9 bytes)"),
    ]
    for wrong, message in mistakes:
        if _close(value, wrong):
            return False, note + message
    return False, (f"{note}{'too large' if value > ref else 'too small'}. Per layer: 2 (K and V) x KV heads x head "
                   "size x 2 bytes x the tokens that layer holds (the whole context on a global layer, at most the "
                   "window on a sliding one); read the numbers from models.get_size('4b')")


@exercise("00")
def check_kv_cache_4b_32k(answer: Any = None) -> bool:
    """The KV cache of Gemma 3 4B at a 32K context in bfloat16, in GB."""
    return _run("kv_cache_4b_32k", answer, _judge_kv_cache,
                "per layer, 2 (K and V) x KV heads x head size x 2 bytes x tokens held; mind the sliding window")


CHAT_CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"},
    {"role": "user", "content": "And of Italy?"},
]


def _judge_chat_prompt(answer: Any) -> tuple[bool, str]:
    from .prompts import BOS, END_OF_TURN, GENERATION_PROMPT, START_OF_TURN, chat_prompt

    if not isinstance(answer, str):
        return False, "write the prompt as one Python string"
    ref = chat_prompt(CHAT_CONVERSATION)
    if answer == ref:
        return True, "that is the string Gemma 3's template renders, byte for byte"
    problems = []
    if "\\n" in answer:
        problems.append("your string holds a backslash and an n: write newlines as \\n in a normal (not raw) string")
    if not answer.startswith(BOS) or answer.count(BOS) != 1:
        problems.append(f"{BOS} comes once, at the very start")
    if f"{START_OF_TURN}system" in answer:
        problems.append("a system message is not a turn in Gemma 3: its text is folded into the first user turn")
    if f"{START_OF_TURN}assistant" in answer:
        problems.append("Gemma 3's turns do not call the assistant 'assistant' (see prompts.GENERATION_PROMPT)")
    if not answer.endswith(GENERATION_PROMPT):
        problems.append("a prompt for generation ends by opening the model's turn (prompts.GENERATION_PROMPT)")
    if answer.count(END_OF_TURN) != ref.count(END_OF_TURN) or answer.count(START_OF_TURN) != ref.count(START_OF_TURN):
        problems.append("count the turns: each opens with <start_of_turn>, then the role and a newline, and ends "
                        "with <end_of_turn> and a newline")
    if not problems and "".join(answer.split()) == "".join(ref.split()):
        problems.append("the tags and words are right, only spaces or newlines differ (each role is followed by a "
                        "newline, each <end_of_turn> too, and the folded system text by a blank line)")
    first = next((i for i, (a, b) in enumerate(zip(answer, ref, strict=False)) if a != b), min(len(answer), len(ref)))
    problems.append(f"your string first goes wrong at character {first}: ...{answer[max(0, first - 25):first + 10]!r}")
    return False, "; ".join(problems)


@exercise("00")
def check_chat_prompt_two_turns(answer: Any = None) -> bool:
    """The exact prompt string Gemma 3 gets for exercises.CHAT_CONVERSATION, ready for the model's reply."""
    return _run("chat_prompt_two_turns", answer, _judge_chat_prompt,
                "<bos>, then each turn as <start_of_turn>ROLE\\n...<end_of_turn>\\n; where does the system text go?")


V100 = {"gpu_name": "Tesla V100-SXM2-16GB", "compute_capability": "7.0", "bf16_supported": False, "cpu_bf16": False}
_DTYPE_NAMES = {"fp32": "float32", "f32": "float32", "float": "float32", "single": "float32", "fp16": "float16",
                "f16": "float16", "half": "float16", "bf16": "bfloat16"}


def _judge_v100_dtype(answer: Any) -> tuple[bool, str]:
    from types import SimpleNamespace

    from .precision import policy

    ref = policy(SimpleNamespace(**V100), backend="transformers")
    name = str(answer).strip().lower().replace("torch.", "")
    name = _DTYPE_NAMES.get(name, name)
    if name == ref.dtype:
        return True, f"{ref.dtype}. Why: {ref.reason}"
    if name == "bfloat16":
        return False, ("a V100 (compute capability 7.0) has no bfloat16 arithmetic: that arrived with compute "
                       "capability 8.0 (Ampere). What else keeps Gemma 3's activations finite?")
    if name == "float16":
        return False, ("float16's largest number is 65,504 and Gemma 3's activations pass it: in plain transformers "
                       "the hidden state turns to inf, then the logits to NaN (section 4). Unsloth keeps the parts that "
                       "overflow in a wider type; plain transformers does not")
    return False, "answer with a torch floating-point dtype name, one of the three that section 4 probes"


@exercise("00")
def check_v100_dtype(answer: Any = None) -> bool:
    """The dtype to run Gemma 3 in on a V100 (compute capability 7.0) with plain transformers."""
    return _run("v100_dtype", answer, _judge_v100_dtype,
                "a V100 has no bfloat16; what happens to Gemma 3 in float16 (section 4)?")


# ------------------------------------------------------------------------------ 01: phones, and the KL divergence

PHONE, PHONE_CONTEXT = "phone 6 GB", 4096
PHONE_SIZES, PHONE_QUANTS = ("270m", "1b", "4b"), ("bf16", "q8_0", "q4_k_m")  # least compressed first


def _plan(size: str, quant: str):
    from .memory import plan_memory

    return plan_memory(size, quant, PHONE_CONTEXT)


def _judge_phone(answer: Any) -> tuple[bool, str]:
    from .memory import DEVICES

    if not isinstance(answer, dict):
        return False, ("answer with a dict: {'270m': ..., '1b': ..., '4b': ...}, each value one of the question's "
                       "formats (or no format, when none fits)")
    given = {str(k).lower(): (str(v).lower() if v not in (None, "", "None", "none") else None)
             for k, v in answer.items()}
    if set(given) != set(PHONE_SIZES):
        return False, f"give exactly the sizes {', '.join(PHONE_SIZES)} as keys"
    usable = DEVICES[PHONE]
    problems = []
    for size in PHONE_SIZES:
        fits = [q for q in PHONE_QUANTS if _plan(size, q).fits(PHONE)]
        choice = given[size]
        if choice is not None and choice not in PHONE_QUANTS:
            problems.append(f"{size.upper()}: {choice!r} is not one of the formats in the question")
        elif choice is None and fits:
            problems.append(f"{size.upper()}: at least one of the formats fits")
        elif choice is not None and choice not in fits:
            plan = _plan(size, choice)
            extra = " and the vision tower (kept at f16)" if size == "4b" else ""
            hint = (f" (it would fit in 6 GB, but a phone's system and apps keep about half: the planner leaves a "
                    f"model {usable:g} GB)") if plan.total_gb <= 6.0 else ""
            problems.append(f"{size.upper()}: {choice} needs more than the phone leaves a model: count the weights, "
                            f"the KV cache at {PHONE_CONTEXT:,} tokens, the runtime overhead{extra}{hint}")
        elif choice is not None and fits and choice != fits[0]:
            problems.append(f"{size.upper()}: a format with more bits per weight fits too, and loses less")
    if not problems:
        return True, f"of the {usable:g} GB a 6 GB phone leaves a model: " + "; ".join(
            f"{s.upper()} {given[s]} needs {_plan(s, given[s]).total_gb:.2f} GB" if given[s] else
            f"{s.upper()} does not fit even in {PHONE_QUANTS[-1]} ({_plan(s, PHONE_QUANTS[-1]).total_gb:.2f} GB)"
            for s in PHONE_SIZES)
    return False, "; ".join(problems)


@exercise("01")
def check_phone_6gb_quants(answer: Any = None) -> bool:
    """For 270M, 1B and 4B: the least compressed of bf16 / q8_0 / q4_k_m that fits a 6 GB phone at 4K (or None)."""
    return _run("phone_6gb_quants", answer, _judge_phone,
                "a dict {'270m': ..., '1b': ..., '4b': ...}; models.plan_memory(size, quant, 4096).fits('phone 6 GB')")


KL_P, KL_Q = (0.8, 0.15, 0.05), (0.4, 0.4, 0.2)  # the reference's and the candidate's next-token probabilities


def _kl(p, q, log=math.log) -> float:
    return sum(a * log(a / b) for a, b in zip(p, q, strict=True))


def _judge_kl(answer: Any) -> tuple[bool, str]:
    import numpy as np

    from .parity import compare_logits

    value = _number(answer)
    if value is None:
        return False, "give one number (nats)"
    ref = compare_logits(np.log([KL_P]), np.log([KL_Q]))["mean_kl"]  # log-probabilities are logits too
    if _close(value, ref, rel=0.01):
        return True, f"KL(P || Q) = {ref:.4f} nats, what parity.compare_logits reports for these two distributions"
    mistakes = [
        (_kl(KL_Q, KL_P), "that is KL(Q || P): the reference P goes first, weighting log(P(x) / Q(x))"),
        (_kl(KL_P, KL_Q, math.log2), "that is in bits (log base 2): parity reports nats (natural log)"),
        (_kl(KL_Q, KL_P, math.log2), "that is KL(Q || P), and in bits: P goes first, and parity uses natural logs"),
        (_kl(KL_P, KL_Q, math.log10), "that uses log base 10: parity reports nats (natural log)"),
        (-ref, "a KL divergence is never negative: check which probability is on top in the log ratio"),
        (sum(math.log(a / b) for a, b in zip(KL_P, KL_Q, strict=True)),
         "each log ratio must be weighted by P(x), the reference's probability"),
        (-sum(a * math.log(b) for a, b in zip(KL_P, KL_Q, strict=True)),
         "that is the cross-entropy H(P, Q): KL subtracts P's own entropy from it"),
    ]
    for wrong, message in mistakes:
        if _close(value, wrong, rel=0.01):
            return False, message
    return False, f"{'too large' if value > ref else 'too small'}: KL(P || Q) = sum over x of P(x) * ln(P(x) / Q(x))"


@exercise("01")
def check_kl_by_hand(answer: Any = None) -> bool:
    """KL(P || Q) in nats for exercises.KL_P (the reference) and exercises.KL_Q (the GGUF)."""
    return _run("kl_by_hand", answer, _judge_kl, "sum over the tokens of P(x) * ln(P(x) / Q(x)), in nats")


# ------------------------------------------------------------------------------------ 03: scoring a chess model

_AFTER_E4 = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
_AFTER_E5 = "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"
_ITALIAN = "r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4"
START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
LEGAL_RATE_CASES = [  # (position, the model's answer)
    (START, "e2e4"), (START, "Nf3"), (_AFTER_E4, "e7e5"), (_AFTER_E4, "d2d4"),
    (_AFTER_E5, "I would play g1f3, then d2d4"), (_AFTER_E5, "e4e5 or g1f3"), (_ITALIAN, "e1g1"),
]


def _judge_legal_rate(answer: Any) -> tuple[bool, str]:
    from .chess import score
    from .chess_game import position_example

    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, "give the rate as a fraction between 0 and 1 (what chess.score reports), not a count or a %"
    examples = [position_example(fen) for fen, _ in LEGAL_RATE_CASES]
    ref = score(examples, [a for _, a in LEGAL_RATE_CASES]).legal_rate
    if _close(value, ref, rel=0.01):
        return True, f"{ref:.3f}: the same rule as chess.score (parse_move) applies to every answer"
    if value > ref:
        return False, ("too high: some answers you counted are not legal moves as parse_move reads them. It reads "
                       "UCI only (from-square, to-square), takes the first move in the reply and no other, and the "
                       "move must be one the side to move can play")
    return False, ("too low: some answers you rejected hold a legal move. parse_move finds the first UCI move "
                   "anywhere in the reply, words around it do not matter, and castling is written as the king's move")


@exercise("03")
def check_legal_rate(answer: Any = None) -> bool:
    """The legal-move rate of the answers in exercises.LEGAL_RATE_CASES, as chess.score computes it."""
    return _run("legal_rate", answer, _judge_legal_rate,
                "for each answer: is its first UCI move legal for the side to move in that position?")


PROMOTION_FEN = "4k3/P7/8/8/8/8/8/4K3 w - - 0 1"  # White's pawn on a7 is one step from promotion


def _judge_promotion(answer: Any) -> tuple[bool, str]:
    import chess

    from .chess import UCI_MOVE, parse_move

    text = str(answer).strip()
    move = parse_move(PROMOTION_FEN, text)
    if move is not None and chess.Move.from_uci(move).promotion == chess.QUEEN:
        return True, f"{move}: from-square, to-square, and the new piece as a lower-case letter"
    if move is not None:
        return False, "that promotes the pawn to another piece: which letter names the queen?"
    if UCI_MOVE.search(text.lower()) and not UCI_MOVE.search(text):
        return False, "UCI writes its squares and the promotion piece in lower case"
    if "=" in text or text[:1].isupper():
        return False, "that is SAN, the notation of chess books; the lesson's parser reads UCI (from-square, to-square)"
    if UCI_MOVE.search(text):
        return False, ("that move is not legal here: a pawn reaching the last rank must become a piece, and UCI "
                       "names it with a fifth letter")
    return False, "write the pawn's move in UCI: from-square, to-square, then the piece it becomes"


@exercise("03")
def check_promotion_uci(answer: Any = None) -> bool:
    """An answer the lesson's parser reads as promoting the pawn of exercises.PROMOTION_FEN to a queen."""
    return _run("promotion_uci", answer, _judge_promotion, "UCI is from-square, to-square, and for a promotion...?")


# ------------------------------------------------------------------------------------ 05: intervals, and ANLS

WILSON_CORRECT, WILSON_N = 27, 40


def _judge_wilson(answer: Any) -> tuple[bool, str]:
    from .bench import wilson_interval

    try:
        low, high = (_number(x) for x in answer)
    except (TypeError, ValueError):
        return False, "answer with two numbers, (low, high)"
    if low is None or high is None:
        return False, "answer with two numbers, (low, high)"
    if high > 1:
        low, high = low / 100, high / 100
    ref = wilson_interval(WILSON_CORRECT, WILSON_N)
    p = WILSON_CORRECT / WILSON_N

    def near(a: tuple[float, float]) -> bool:
        return abs(low - a[0]) < 0.003 and abs(high - a[1]) < 0.003

    if near(ref):
        return True, f"({ref[0]:.3f}, {ref[1]:.3f}): not symmetric around {p:.3f}, it leans towards 1/2"
    wald = 1.96 * math.sqrt(p * (1 - p) / WILSON_N)
    if near((p - wald, p + wald)):
        return False, ("that is the normal-approximation (Wald) interval, p +- 1.96 standard errors, centred on p. "
                       "Wilson's centre and half-width each have extra z^2 terms: see bench.wilson_interval")
    if low > high:
        return False, "give the lower bound first"
    if not low < p < high:
        return False, f"a 95% interval for {WILSON_CORRECT} right out of {WILSON_N} must contain the observed rate"
    if high - low < 2 * 1.8 * math.sqrt(p * (1 - p) / WILSON_N):
        return False, "too narrow: a 95% interval uses z = 1.96"
    return False, ("not quite: centre (p + z^2/2n) / (1 + z^2/n), half-width z * sqrt(p(1-p)/n + z^2/4n^2) / "
                   "(1 + z^2/n), z = 1.96")


@exercise("05")
def check_wilson_27_of_40(answer: Any = None) -> bool:
    """The 95% Wilson interval (low, high) of 27 right answers out of 40."""
    return _run("wilson_27_of_40", answer, _judge_wilson, "(low, high) as fractions; Wilson, not p +- 1.96 SE")


ANLS_PREDICTION, ANLS_ANSWERS = "Invoice no. 1234", ("invoice 1234", "1234")


def _judge_anls(answer: Any) -> tuple[bool, str]:
    from .visual_qa import ANLS_THRESHOLD, anls, levenshtein

    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, "give one number between 0 and 1"
    ref = anls(ANLS_PREDICTION, ANLS_ANSWERS)
    if _close(value, ref, rel=0.005, abs_tol=0.002):
        return True, f"{ref:.3f}: the best reference answer counts; the other falls under the threshold and gives 0"
    pred = ANLS_PREDICTION.lower()
    nl = [levenshtein(pred, a.lower()) / max(len(pred), len(a)) for a in ANLS_ANSWERS]
    scores = [1 - x if x < ANLS_THRESHOLD else 0.0 for x in nl]
    mistakes = [
        (max(1 - levenshtein(ANLS_PREDICTION, a) / max(len(pred), len(a)) for a in ANLS_ANSWERS),
         "ANLS ignores case: lower-case both strings before counting edits"),
        (min(nl), "that is the normalized distance NL; ANLS scores 1 - NL"),
        (max(1 - levenshtein(pred, a.lower()) / min(len(pred), len(a)) for a in ANLS_ANSWERS),
         "divide the edit distance by the longer string's length, not the shorter one's"),
        (sum(scores) / len(scores), "ANLS takes the best match over a question's reference answers, not the mean"),
        (sum(1 - x for x in nl) / len(nl), "take the best reference answer, not the mean (and mind the threshold)"),
        (min(scores), "ANLS takes the best match over a question's reference answers, not the worst"),
    ]
    for wrong, message in mistakes:
        if _close(value, wrong, rel=0.005, abs_tol=0.002):
            return False, message
    return False, ("per reference answer: NL = edit distance / longer length (case-insensitive), score 1 - NL, or 0 "
                   "when NL reaches 0.5; then the best over the answers")


@exercise("05")
def check_anls_invoice(answer: Any = None) -> bool:
    """The ANLS of exercises.ANLS_PREDICTION against the reference answers exercises.ANLS_ANSWERS."""
    return _run("anls_invoice", answer, _judge_anls, "1 - edit distance / longer length, per answer; then the best")
