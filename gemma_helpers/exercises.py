"""Exercises that check themselves ("your turn"): each ``check_<name>(answer)`` prints right, or what is wrong.

A wrong answer gets a hint about the mistake it looks like (a factor of 2, the wrong log base, the interval of
another method), never the answer. The reference answers are computed here from the package's own functions (the
planners, ``chat_prompt``, the dtype policy, ``ollama_parameters``, ``bandwidth_bound``, ``mean_relaxed_accuracy``,
``chess.score``, ``wilson_interval``, ``anls``), so they change when the lesson's code does. Each check returns
True or False and never raises on a learner's answer. Every message a learner can see (verdict, explanation, hint)
comes in English and in simplified Chinese (terms as in ``notebooks/src/zh/glossary.tsv``), chosen by
:func:`language` from GEMMA_LANG, which the Chinese notebooks set to ``zh``; English is the default.

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
import re
import runpy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ANSWERS_ENV = "GEMMA_EXERCISE_ANSWERS"
# The notebook's language: the Chinese notebooks' environment cell sets GEMMA_LANG=zh; English is the default.
LANG_ENV = "GEMMA_LANG"
# The verdict's framing in each language; the judges' explanations and hints pick theirs with _t.
FRAMES = {
    "en": {"no_answer": "No answer yet: set ANSWER and run this cell again. Hint: {hint}", "right": "Right! ",
           "not_yet": "Not yet: ", "unreadable": "could not read that answer ({kind}: {err}). {hint}"},
    "zh": {"no_answer": "还没有答案：请设置 ANSWER 后重新运行本单元格。提示：{hint}", "right": "正确！",
           "not_yet": "还不对：", "unreadable": "无法读取这个答案（{kind}：{err}）。{hint}"},
}


def language() -> str:
    """The language the checks answer in: GEMMA_LANG's value if it is one of FRAMES, else English."""
    lang = os.environ.get(LANG_ENV, "en").strip().lower().split("-")[0].split("_")[0]
    return lang if lang in FRAMES else "en"


def _t(en: str, zh: str) -> str:
    """The message in the notebook's language: the Chinese text under GEMMA_LANG=zh, else the English one."""
    return zh if language() == "zh" else en


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


def _known_mistake(value: float, mistakes: Sequence[tuple[float, str]], **tolerance: float) -> str | None:
    """The hint for the first typical wrong answer that value matches, or None."""
    return next((message for wrong, message in mistakes if _close(value, wrong, **tolerance)), None)


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
            print(FRAMES[language()]["no_answer"].format(hint=hint))
            return False
        key = name.upper()
        answers = runpy.run_path(str(path))
        if key not in answers:
            raise ExerciseAnswerError(f"{path} has no {key}, the answer to exercise {name!r}")
        answer, from_file = answers[key], True
    try:
        right, message = judge(answer)
    except Exception as err:  # an answer of an unexpected shape is a learner's mistake, not a crash
        right, message = False, FRAMES[language()]["unreadable"].format(kind=type(err).__name__, err=err, hint=hint)
    print(FRAMES[language()]["right" if right else "not_yet"] + message)
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
        return False, _t("give a number of GB (10^9 bytes), like 1.5", "请给出一个以 GB（10^9 字节）为单位的数，例如 1.5")
    note = ""
    if value > 1e5:
        value, note = value / 1e9, _t("(read as bytes) ", "（按字节数读取）")
    size = get_size(KV_SIZE)
    ref = kv_cache_bytes(size, KV_CONTEXT) / 1e9
    per_token = 2 * size.kv_heads * size.head_dim * 2 / 1e9  # K and V, 2 bytes each
    n_global = sum(size.layer_is_global(i) for i in range(size.layers))
    if _close(value, ref):
        return True, _t(f"{note}{ref:.2f} GB: the {n_global} global layers hold all {KV_CONTEXT:,} tokens, the "
                        f"other {size.layers - n_global} only their {size.sliding_window:,}-token window",
                        f"{note}{ref:.2f} GB：{n_global} 个全局层保存全部 {KV_CONTEXT:,} 个 token，其余 "
                        f"{size.layers - n_global} 层只保存各自 {size.sliding_window:,} 个 token 的窗口")
    mistakes = [
        (size.layers * KV_CONTEXT * per_token, _t(
            "too large: you gave every layer the whole context. Gemma 3's sliding-window layers (five of every "
            "six) keep only their last `sliding_window` tokens",
            "太大了：你让每一层都保存了整个上下文。Gemma 3 的滑动窗口层（每六层中有五层）只保存最后 "
            "`sliding_window` 个 token")),
        (size.layers * size.sliding_window * per_token, _t(
            "too small: every sixth layer is global and keeps the whole context, not just the window",
            "太小了：每六层中有一层是全局层，它保存整个上下文，而不只是窗口")),
        (2 * ref, _t(
            "too large by a factor of about 2: bfloat16 takes 2 bytes per value (not 4), and grouped-query "
            "attention stores the KV heads (`kv_heads`), not the query heads",
            "大了约 2 倍：bfloat16 每个值占 2 字节（不是 4 字节），而分组查询注意力保存的是 KV 头（`kv_heads`），"
            "不是查询头")),
        (ref / 2, _t("too small by a factor of about 2: did you count both K and V?",
                     "小了约 2 倍：你把 K 和 V 都算进去了吗？")),
        (ref * 1e9 / 2**30, _t("that looks like GiB (2^30 bytes); the question asks for GB (10^9 bytes)",
                               "这看起来是 GiB（2^30 字节）；题目要的是 GB（10^9 字节）")),
    ]
    hint = _known_mistake(value, mistakes)
    if hint is not None:
        return False, note + hint
    if language() == "zh":
        return False, (f"{note}{'太大了' if value > ref else '太小了'}。每层：2（K 和 V）× KV 头数 × 头大小 × 2 字节 × "
                       "该层保存的 token 数（全局层为整个上下文，滑动窗口层最多为窗口大小）；数字请从 "
                       "`models.get_size('4b')` 读取")
    return False, (f"{note}{'too large' if value > ref else 'too small'}. Per layer: 2 (K and V) x KV heads x head "
                   "size x 2 bytes x the tokens that layer holds (the whole context on a global layer, at most the "
                   "window on a sliding one); read the numbers from models.get_size('4b')")


@exercise("00")
def check_kv_cache_4b_32k(answer: Any = None) -> bool:
    """The KV cache of Gemma 3 4B at a 32K context in bfloat16, in GB."""
    return _run("kv_cache_4b_32k", answer, _judge_kv_cache,
                _t("per layer, 2 (K and V) x KV heads x head size x 2 bytes x tokens held; mind the sliding window",
                   "每层为 2（K 和 V）× KV 头数 × 头大小 × 2 字节 × 保存的 token 数；注意滑动窗口"))


CHAT_CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"},
    {"role": "user", "content": "And of Italy?"},
]


def _judge_chat_prompt(answer: Any) -> tuple[bool, str]:
    from .prompts import BOS, END_OF_TURN, GENERATION_PROMPT, START_OF_TURN, chat_prompt

    if not isinstance(answer, str):
        return False, _t("write the prompt as one Python string", "请把提示词写成一个 Python 字符串")
    ref = chat_prompt(CHAT_CONVERSATION)
    if answer == ref:
        return True, _t("that is the string Gemma 3's template renders, byte for byte",
                        "这正是 Gemma 3 的模板渲染出的字符串，逐字节一致")
    problems = []
    if "\\n" in answer:
        problems.append(_t("your string holds a backslash and an n: write newlines as \\n in a normal (not raw) "
                           "string", "你的字符串里有一个反斜杠加 n：请在普通（非 raw）字符串中用 \\n 表示换行"))
    if not answer.startswith(BOS) or answer.count(BOS) != 1:
        problems.append(_t(f"{BOS} comes once, at the very start", f"{BOS} 只出现一次，位于最开头"))
    if f"{START_OF_TURN}system" in answer:
        problems.append(_t("a system message is not a turn in Gemma 3: its text is folded into the first user turn",
                           "在 Gemma 3 中，系统消息不是一个轮次：它的文本被并入第一个用户轮次"))
    if f"{START_OF_TURN}assistant" in answer:
        problems.append(_t("Gemma 3's turns do not call the assistant 'assistant' (see prompts.GENERATION_PROMPT)",
                           "Gemma 3 的轮次不把助手称为 'assistant'（见 `prompts.GENERATION_PROMPT`）"))
    if not answer.endswith(GENERATION_PROMPT):
        problems.append(_t("a prompt for generation ends by opening the model's turn (prompts.GENERATION_PROMPT)",
                           "用于生成的提示词以打开模型的轮次结尾（`prompts.GENERATION_PROMPT`）"))
    if answer.count(END_OF_TURN) != ref.count(END_OF_TURN) or answer.count(START_OF_TURN) != ref.count(START_OF_TURN):
        problems.append(_t("count the turns: each opens with <start_of_turn>, then the role and a newline, and ends "
                           "with <end_of_turn> and a newline",
                           "数一数轮次：每个轮次以 <start_of_turn> 开始，接着是角色和一个换行，并以 <end_of_turn> "
                           "和一个换行结束"))
    if not problems and "".join(answer.split()) == "".join(ref.split()):
        problems.append(_t("the tags and words are right, only spaces or newlines differ (each role is followed by a "
                           "newline, each <end_of_turn> too, and the folded system text by a blank line)",
                           "标签和文字都对，只有空格或换行不同（每个角色后面跟一个换行，每个 <end_of_turn> 也是，"
                           "并入的系统文本后面跟一个空行）"))
    first = next((i for i, (a, b) in enumerate(zip(answer, ref, strict=False)) if a != b), min(len(answer), len(ref)))
    excerpt = answer[max(0, first - 25):first + 10]
    problems.append(_t(f"your string first goes wrong at character {first}: ...{excerpt!r}",
                       f"你的字符串第一次出错在第 {first} 个字符：...{excerpt!r}"))
    return False, _t("; ", "；").join(problems)


@exercise("00")
def check_chat_prompt_two_turns(answer: Any = None) -> bool:
    """The exact prompt string Gemma 3 gets for exercises.CHAT_CONVERSATION, ready for the model's reply."""
    return _run("chat_prompt_two_turns", answer, _judge_chat_prompt,
                _t("<bos>, then each turn as <start_of_turn>ROLE\\n...<end_of_turn>\\n; where does the system text go?",
                   "先是 <bos>，然后每个轮次写成 <start_of_turn>ROLE\\n...<end_of_turn>\\n；系统文本放在哪里？"))


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
        return True, _t(f"{ref.dtype}. Why: {ref.reason}",
                        f"{ref.dtype}。原因：V100 没有 bfloat16，而纯 transformers 在 float16 下运行 Gemma 3 会溢出，"
                        f"所以用 {ref.dtype}")
    if name == "bfloat16":
        return False, _t("a V100 (compute capability 7.0) has no bfloat16 arithmetic: that arrived with compute "
                         "capability 8.0 (Ampere). What else keeps Gemma 3's activations finite?",
                         "V100（计算能力 7.0）没有 bfloat16 运算：它从计算能力 8.0（Ampere）才开始支持。"
                         "还有什么能让 Gemma 3 的激活值保持有限？")
    if name == "float16":
        return False, _t("float16's largest number is 65,504 and Gemma 3's activations pass it: in plain transformers "
                         "the hidden state turns to inf, then the logits to NaN (section 4). Unsloth keeps the parts "
                         "that overflow in a wider type; plain transformers does not",
                         "float16 能表示的最大数是 65,504，而 Gemma 3 的激活值会超过它：在纯 transformers 中，隐藏状态"
                         "变成 inf，随后 logits 变成 NaN（第 4 节）。Unsloth 把会溢出的部分保留在更宽的类型中；"
                         "纯 transformers 不会")
    return False, _t("answer with a torch floating-point dtype name, one of the three that section 4 probes",
                     "请用一个 torch 浮点 dtype 的名字作答，即第 4 节测试的三种之一")


@exercise("00")
def check_v100_dtype(answer: Any = None) -> bool:
    """The dtype to run Gemma 3 in on a V100 (compute capability 7.0) with plain transformers."""
    return _run("v100_dtype", answer, _judge_v100_dtype,
                _t("a V100 has no bfloat16; what happens to Gemma 3 in float16 (section 4)?",
                   "V100 没有 bfloat16；Gemma 3 在 float16 下会怎样（第 4 节）？"))


# ------------------------------------------------------------------------------ 01: phones, and the KL divergence

PHONE, PHONE_CONTEXT = "phone 6 GB", 4096
PHONE_SIZES, PHONE_QUANTS = ("270m", "1b", "4b"), ("bf16", "q8_0", "q4_k_m")  # least compressed first


def _plan(size: str, quant: str):
    from .memory import plan_memory

    return plan_memory(size, quant, PHONE_CONTEXT)


def _judge_phone(answer: Any) -> tuple[bool, str]:
    from .memory import DEVICES

    if not isinstance(answer, dict):
        return False, _t("answer with a dict: {'270m': ..., '1b': ..., '4b': ...}, each value one of the question's "
                         "formats (or no format, when none fits)",
                         "请用一个字典作答：`{'270m': ..., '1b': ..., '4b': ...}`，每个值是题目中的格式之一"
                         "（哪种都装不下时，不填格式）")
    given = {str(k).lower(): (str(v).lower() if v not in (None, "", "None", "none") else None)
             for k, v in answer.items()}
    if set(given) != set(PHONE_SIZES):
        return False, _t(f"give exactly the sizes {', '.join(PHONE_SIZES)} as keys",
                         f"键必须恰好是这几个尺寸：{', '.join(PHONE_SIZES)}")
    usable = DEVICES[PHONE]
    problems = []
    for size in PHONE_SIZES:
        fits = [q for q in PHONE_QUANTS if _plan(size, q).fits(PHONE)]
        choice = given[size]
        if choice is not None and choice not in PHONE_QUANTS:
            problems.append(_t(f"{size.upper()}: {choice!r} is not one of the formats in the question",
                               f"{size.upper()}：{choice!r} 不是题目中的格式之一"))
        elif choice is None and fits:
            problems.append(_t(f"{size.upper()}: at least one of the formats fits",
                               f"{size.upper()}：至少有一种格式装得下"))
        elif choice is not None and choice not in fits:
            plan = _plan(size, choice)
            zh = language() == "zh"
            extra = ("以及视觉塔（保持 f16）" if zh else " and the vision tower (kept at f16)") if size == "4b" else ""
            hint = _t(f" (it would fit in 6 GB, but a phone's system and apps keep about half: the planner leaves a "
                      f"model {usable:g} GB)", f"（它能装进 6 GB，但手机的系统和应用会占去约一半：规划器只给模型留 "
                      f"{usable:g} GB）") if plan.total_gb <= 6.0 else ""
            problems.append(_t(f"{size.upper()}: {choice} needs more than the phone leaves a model: count the weights, "
                               f"the KV cache at {PHONE_CONTEXT:,} tokens, the runtime overhead{extra}{hint}",
                               f"{size.upper()}：{choice} 需要的内存超过手机留给模型的：把权重、{PHONE_CONTEXT:,} 个 "
                               f"token 的 KV cache、运行时开销{extra}都算上{hint}"))
        elif choice is not None and fits and choice != fits[0]:
            problems.append(_t(f"{size.upper()}: a format with more bits per weight fits too, and loses less",
                               f"{size.upper()}：每个权重位数更多的格式也装得下，损失也更小"))
    if not problems:
        if language() == "zh":
            return True, f"6 GB 手机留给模型的 {usable:g} GB 中：" + "；".join(
                f"{s.upper()} {given[s]} 需要 {_plan(s, given[s]).total_gb:.2f} GB" if given[s] else
                f"{s.upper()} 即使用 {PHONE_QUANTS[-1]} 也装不下（{_plan(s, PHONE_QUANTS[-1]).total_gb:.2f} GB）"
                for s in PHONE_SIZES)
        return True, f"of the {usable:g} GB a 6 GB phone leaves a model: " + "; ".join(
            f"{s.upper()} {given[s]} needs {_plan(s, given[s]).total_gb:.2f} GB" if given[s] else
            f"{s.upper()} does not fit even in {PHONE_QUANTS[-1]} ({_plan(s, PHONE_QUANTS[-1]).total_gb:.2f} GB)"
            for s in PHONE_SIZES)
    return False, _t("; ", "；").join(problems)


@exercise("01")
def check_phone_6gb_quants(answer: Any = None) -> bool:
    """For 270M, 1B and 4B: the least compressed of bf16 / q8_0 / q4_k_m that fits a 6 GB phone at 4K (or None)."""
    return _run("phone_6gb_quants", answer, _judge_phone,
                _t("a dict {'270m': ..., '1b': ..., '4b': ...}; models.plan_memory(size, quant, 4096).fits('phone 6 GB')",
                   "一个字典 `{'270m': ..., '1b': ..., '4b': ...}`；用 "
                   "`models.plan_memory(size, quant, 4096).fits('phone 6 GB')` 判断"))


KL_P, KL_Q = (0.8, 0.15, 0.05), (0.4, 0.4, 0.2)  # the reference's and the candidate's next-token probabilities


def _kl(p, q, log=math.log) -> float:
    return sum(a * log(a / b) for a, b in zip(p, q, strict=True))


def _judge_kl(answer: Any) -> tuple[bool, str]:
    import numpy as np

    from .parity import compare_logits

    value = _number(answer)
    if value is None:
        return False, _t("give one number (nats)", "请给出一个数（单位 nat）")
    ref = compare_logits(np.log([KL_P]), np.log([KL_Q]))["mean_kl"]  # log-probabilities are logits too
    if _close(value, ref, rel=0.01):
        return True, _t(f"KL(P || Q) = {ref:.4f} nats, what parity.compare_logits reports for these two distributions",
                        f"KL(P || Q) = {ref:.4f} nat，正是 `parity.compare_logits` 对这两个分布报告的值")
    mistakes = [
        (_kl(KL_Q, KL_P), _t("that is KL(Q || P): the reference P goes first, weighting log(P(x) / Q(x))",
                             "这是 KL(Q || P)：参考分布 P 放在前面，用它加权 log(P(x) / Q(x))")),
        (_kl(KL_P, KL_Q, math.log2), _t("that is in bits (log base 2): parity reports nats (natural log)",
                                        "这是以 bit 为单位（以 2 为底的对数）：parity 报告的是 nat（自然对数）")),
        (_kl(KL_Q, KL_P, math.log2), _t("that is KL(Q || P), and in bits: P goes first, and parity uses natural logs",
                                        "这是 KL(Q || P)，而且单位是 bit：P 放在前面，parity 用的是自然对数")),
        (_kl(KL_P, KL_Q, math.log10), _t("that uses log base 10: parity reports nats (natural log)",
                                         "这用的是以 10 为底的对数：parity 报告的是 nat（自然对数）")),
        (-ref, _t("a KL divergence is never negative: check which probability is on top in the log ratio",
                  "KL 散度永远不会是负数：检查对数比中哪个概率在分子上")),
        (sum(math.log(a / b) for a, b in zip(KL_P, KL_Q, strict=True)),
         _t("each log ratio must be weighted by P(x), the reference's probability",
            "每个对数比都必须用 P(x)（参考分布的概率）加权")),
        (-sum(a * math.log(b) for a, b in zip(KL_P, KL_Q, strict=True)),
         _t("that is the cross-entropy H(P, Q): KL subtracts P's own entropy from it",
            "这是交叉熵 H(P, Q)：KL 要从中减去 P 自身的熵")),
    ]
    hint = _known_mistake(value, mistakes, rel=0.01)
    if hint is not None:
        return False, hint
    if language() == "zh":
        return False, f"{'太大了' if value > ref else '太小了'}：KL(P || Q) = 对所有 x 求和 P(x) * ln(P(x) / Q(x))"
    return False, f"{'too large' if value > ref else 'too small'}: KL(P || Q) = sum over x of P(x) * ln(P(x) / Q(x))"


@exercise("01")
def check_kl_by_hand(answer: Any = None) -> bool:
    """KL(P || Q) in nats for exercises.KL_P (the reference) and exercises.KL_Q (the GGUF)."""
    return _run("kl_by_hand", answer, _judge_kl, _t("sum over the tokens of P(x) * ln(P(x) / Q(x)), in nats",
                                                    "对所有 token 求和 P(x) * ln(P(x) / Q(x))，单位 nat"))


# --------------------------------------------------------------- 02: stop strings, and the decode speed bound

_OTHER_FAMILIES = {"</s>": "Llama 2 and Mistral", "<|eot_id|>": "Llama 3", "<|im_end|>": "ChatML (Qwen and others)",
                   "<|endoftext|>": "GPT-2 and Phi", "<|end|>": "Phi-3"}
_OTHER_FAMILIES_ZH = {"</s>": "Llama 2 和 Mistral", "<|im_end|>": "ChatML（Qwen 等）", "<|endoftext|>": "GPT-2 和 Phi"}


def _not_an_id() -> str:
    return _t("Ollama's stop takes the token's text, not its id", "Ollama 的 stop 接受的是 token 的文本，而不是它的 id")


_QUOTED_STOP, _BARE_STOP = re.compile(r'PARAMETER\s+stop\s+"([^"]*)"'), re.compile(r"PARAMETER\s+stop\s+([^\s\"]+)")


def _stop_values(answer: Any) -> tuple[list[str], list[str]]:
    """The stop strings an answer names (from PARAMETER stop lines, or bare), and what is wrong with its form."""
    lines = answer.splitlines() if isinstance(answer, str) else list(answer)
    values, form = [], []
    for line in lines:
        if not isinstance(line, str):
            form.append(_not_an_id())
            continue
        line = line.strip()
        if not line:
            continue
        quoted, bare = _QUOTED_STOP.fullmatch(line), _BARE_STOP.fullmatch(line)
        if quoted:
            values.append(quoted.group(1))
        elif bare:
            form.append(_t('quote each stop string: PARAMETER stop "..." (the form runtimes.check_modelfile looks for)',
                           '给每个停止字符串加上引号：`PARAMETER stop "..."`（`runtimes.check_modelfile` 检查的形式）'))
            values.append(bare.group(1))
        elif line.startswith("PARAMETER stop"):
            form.append(_t("one PARAMETER stop line per stop string", "每个停止字符串单独一行 PARAMETER stop"))
            values.extend(re.findall(r'"([^"]*)"', line))
        elif line.startswith("PARAMETER"):
            continue  # a sampling line pasted along with the stops does no harm
        else:
            form.append(_t('write each stop as a Modelfile line: PARAMETER stop "..."',
                           '把每个停止字符串写成一行 Modelfile：`PARAMETER stop "..."`'))
            values.append(line)
    return values, form


def _judge_stop_lines(answer: Any) -> tuple[bool, str]:
    from .prompts import BOS, END_OF_TURN, START_OF_TURN, STOP_TOKENS, ollama_parameters

    if not isinstance(answer, (str, list, tuple, set)):
        return False, _t('write the lines as one string (one line each) or a list of lines: PARAMETER stop "..."',
                         '请把这些行写成一个字符串（每行一条）或一个行列表：`PARAMETER stop "..."`')
    values, form = _stop_values(answer)
    want = {line.split(" ", 2)[2].strip('"') for line in ollama_parameters() if line.startswith("PARAMETER stop ")}
    given = set(values)
    if given == want and not form:
        ids = ", ".join(f"{token} = id {STOP_TOKENS[token]}" for token in sorted(want))
        return True, _t(f"both of Gemma 3's end-of-generation tokens ({ids}): the instruction-tuned model ends its "
                        "turn with one, the base model may write the other",
                        f"Gemma 3 的两个结束生成的 token（{ids}）：指令微调模型用其中一个结束它的轮次，"
                        "基础模型可能写出另一个")
    problems = list(form)
    for value in sorted(given - want):
        if value in _OTHER_FAMILIES:
            family = _t(_OTHER_FAMILIES[value], _OTHER_FAMILIES_ZH.get(value, _OTHER_FAMILIES[value]))
            problems.append(_t(f"{value} is the stop token of {family}: Gemma 3's vocabulary has no such token, so "
                               "Ollama would never see it",
                               f"{value} 是 {family} 的停止 token：Gemma 3 的词表里没有这个 token，"
                               "所以 Ollama 永远不会看到它"))
        elif value == START_OF_TURN:
            problems.append(_t(f"{START_OF_TURN} opens a turn: the model should have stopped before it",
                               f"{START_OF_TURN} 用来打开一个轮次：模型应该在它之前就停下"))
        elif value == BOS:
            problems.append(_t(f"{BOS} begins the sequence; the model never writes it",
                               f"{BOS} 是序列的开头；模型从不写出它"))
        elif f"<{value.strip().strip('<>')}>" in want:
            problems.append(_t("write each token exactly as the tokenizer spells it: angle brackets included, no "
                               "spaces or newlines inside the quotes",
                               "每个 token 都要严格按分词器的写法书写：包括尖括号，引号内不要有空格或换行"))
        elif value.isdigit():
            problems.append(_not_an_id())
        else:
            problems.append(_t(f"{value!r} is not one of the tokens that end Gemma 3's generation",
                               f"{value!r} 不是结束 Gemma 3 生成的 token 之一"))
    # a token the answer misspells has had its hint; only one it leaves out entirely counts as missing
    missing = want - {f"<{value.strip().strip('<>')}>" for value in given}
    for token in sorted(missing):
        if token == END_OF_TURN:
            problems.append(_t(f"a stop is missing: the token the instruction-tuned model closes every reply with (id "
                               f"{STOP_TOKENS[token]}). Without it Ollama writes on into a turn of its own invention",
                               f"缺少一个停止 token：指令微调模型用来结束每次回复的 token（id {STOP_TOKENS[token]}）。"
                               "没有它，Ollama 会继续写下去，写进一个它自己编出来的轮次"))
        else:
            problems.append(_t(f"a stop is missing: the end-of-sequence token (id {STOP_TOKENS[token]}), which the "
                               "base model, and a fine-tune of it, may write instead of closing its turn",
                               f"缺少一个停止 token：序列结束 token（id {STOP_TOKENS[token]}），基础模型及其微调版本"
                               "可能写出它，而不是结束自己的轮次"))
    return False, (_t("; ", "；").join(dict.fromkeys(problems))
                   or _t("not quite: compare with the stop tokens section 2 checks", "还差一点：请对照第 2 节检查的停止 token"))


@exercise("02")
def check_ollama_stop_lines(answer: Any = None) -> bool:
    """The PARAMETER stop lines an Ollama Modelfile for Gemma 3 needs."""
    return _run("ollama_stop_lines", answer, _judge_stop_lines,
                _t('one PARAMETER stop "..." line per token that ends generation; section 2 checks which those are',
                   '每个结束生成的 token 写一行 `PARAMETER stop "..."`；第 2 节检查了是哪些 token'))


DECODE_SIZE, DECODE_QUANT, DECODE_GPU = "4b", "q4_k_m", "Tesla T4"


def decode_weights_gb() -> float:
    """GB of weights the decode-bound exercise reads per token: the planner's text weights of 4B in Q4_K_M."""
    from .memory import plan_memory

    # the vision tower lives in a separate mmproj file and is not read while writing text
    return plan_memory(DECODE_SIZE, DECODE_QUANT, include_vision=False).weights_gb


def decode_bandwidth_gbs() -> float:
    """The exercise GPU's memory bandwidth by specification, in GB/s."""
    from .speed import gpu_spec_bandwidth

    gbs = gpu_spec_bandwidth(DECODE_GPU)
    assert gbs is not None, f"speed.GPU_SPEC_BANDWIDTH_GBS lost {DECODE_GPU}"
    return gbs


def _judge_decode_bound(answer: Any) -> tuple[bool, str]:
    from .speed import bandwidth_bound

    value = _number(answer)
    if value is None or value <= 0:
        return False, _t("give one positive number of tokens per second", "请给出一个正数，单位为每秒 token 数")
    size_gb, gbs = decode_weights_gb(), decode_bandwidth_gbs()
    ref = bandwidth_bound(size_gb * 1e9, gbs)
    if _close(value, ref):
        return True, _t(f"about {ref:.0f} tokens/s: every token reads all {size_gb:.2f} GB once, and {gbs:.0f} GB/s "
                        "allows that so many times a second. Real runtimes reach a fraction of it (the KV cache is "
                        "read too, and no kernel runs at the full bandwidth)",
                        f"约 {ref:.0f} token/s：每个 token 都要把全部 {size_gb:.2f} GB 读一遍，而 {gbs:.0f} GB/s "
                        "每秒只允许读这么多次。实际的运行时只能达到其中一部分（KV cache 也要读，而且没有哪个内核"
                        "能跑满带宽）")
    thousand = _t("off by a factor of 1,000: put the size and the bandwidth in the same unit (GB and GB/s)",
                  "差了 1,000 倍：把大小和带宽换成同一单位（GB 和 GB/s）")
    mistakes = [
        (ref / 8, _t("too small by a factor of 8: GB and GB/s both count bytes, no bits are involved",
                     "小了 8 倍：GB 和 GB/s 都以字节计，不涉及 bit")),
        (ref * 8, _t("too large by a factor of 8: GB and GB/s both count bytes, no bits are involved",
                     "大了 8 倍：GB 和 GB/s 都以字节计，不涉及 bit")),
        (ref / 2, _t(f"too small by a factor of 2: all {gbs:.0f} GB/s of the specification can go to reading, and "
                     "a token reads each weight once and writes nothing back (a copy benchmark is different: it "
                     "counts a read and a write)",
                     f"小了 2 倍：规格中的全部 {gbs:.0f} GB/s 都可以用来读取，而每个 token 把每个权重读一次、"
                     "不写回任何东西（复制基准测试不同：它把一次读和一次写都计入）")),
        (1 / ref, _t("that is seconds per token: the bound asks for tokens per second",
                     "这是每个 token 的秒数：上限问的是每秒 token 数")),
        (1000 / ref, _t("that is milliseconds per token: the bound asks for tokens per second",
                        "这是每个 token 的毫秒数：上限问的是每秒 token 数")),
        (size_gb * gbs, _t("tokens/s is bytes per second divided by bytes per token, not their product",
                           "每秒 token 数等于每秒字节数除以每个 token 的字节数，而不是两者相乘")),
        (ref / 1000, thousand),
        (ref * 1000, thousand),
        (gbs * 1e9 / (size_gb * 2**30), _t("you read the size as GiB (2^30 bytes): the planner's GB are 10^9 bytes",
                                           "你把大小当成了 GiB（2^30 字节）：规划器的 GB 是 10^9 字节")),
    ]
    hint = _known_mistake(value, mistakes)
    if hint is not None:
        return False, hint
    if language() == "zh":
        return False, (f"{'太大了' if value > ref else '太小了'}：每生成一个 token 都要把每个权重读一次，"
                       "所以每秒 token 数 <= 带宽（字节/秒）/ 每个 token 读取的权重字节数")
    return False, (f"{'too large' if value > ref else 'too small'}: each generated token reads every weight once, "
                   "so tokens/s <= bandwidth (bytes/s) / weight bytes read per token")


@exercise("02")
def check_decode_bound_4b_t4(answer: Any = None) -> bool:
    """The most tokens/s a T4's memory bandwidth allows Gemma 3 4B's Q4_K_M weights when decoding."""
    return _run("decode_bound_4b_t4", answer, _judge_decode_bound,
                _t("how many times a second can the memory deliver every weight once?",
                   "内存每秒能把每个权重完整送出多少次？"))


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
        return False, _t("give the rate as a fraction between 0 and 1 (what chess.score reports), not a count or a %",
                         "请把比率写成 0 到 1 之间的小数（即 `chess.score` 报告的值），不要写个数或百分数")
    examples = [position_example(fen) for fen, _ in LEGAL_RATE_CASES]
    ref = score(examples, [a for _, a in LEGAL_RATE_CASES]).legal_rate
    if _close(value, ref, rel=0.01):
        return True, _t(f"{ref:.3f}: the same rule as chess.score (parse_move) applies to every answer",
                        f"{ref:.3f}：每个答案都按与 `chess.score`（`parse_move`）相同的规则判定")
    if value > ref:
        return False, _t("too high: some answers you counted are not legal moves as parse_move reads them. It reads "
                         "UCI only (from-square, to-square), takes the first move in the reply and no other, and the "
                         "move must be one the side to move can play",
                         "太高了：你算进去的答案中，有些按 `parse_move` 的读法并不是合法着法。它只读 UCI（起始格、"
                         "目标格），只取回复中的第一步着法，而且这步必须是轮到走棋的一方能走的")
    return False, _t("too low: some answers you rejected hold a legal move. parse_move finds the first UCI move "
                     "anywhere in the reply, words around it do not matter, and castling is written as the king's "
                     "move",
                     "太低了：你排除的答案中，有些包含合法着法。`parse_move` 会在回复的任何位置找到第一步 UCI 着法，"
                     "周围的文字无关紧要，而王车易位写成王的走法")


@exercise("03")
def check_legal_rate(answer: Any = None) -> bool:
    """The legal-move rate of the answers in exercises.LEGAL_RATE_CASES, as chess.score computes it."""
    return _run("legal_rate", answer, _judge_legal_rate,
                _t("for each answer: is its first UCI move legal for the side to move in that position?",
                   "对每个答案：它的第一步 UCI 着法在该局面下对轮到走棋的一方是否合法？"))


PROMOTION_FEN = "4k3/P7/8/8/8/8/8/4K3 w - - 0 1"  # White's pawn on a7 is one step from promotion


def _judge_promotion(answer: Any) -> tuple[bool, str]:
    import chess

    from .chess import UCI_MOVE, parse_move

    text = str(answer).strip()
    move = parse_move(PROMOTION_FEN, text)
    if move is not None and chess.Move.from_uci(move).promotion == chess.QUEEN:
        return True, _t(f"{move}: from-square, to-square, and the new piece as a lower-case letter",
                        f"{move}：起始格、目标格，再加上用小写字母表示的新棋子")
    if move is not None:
        return False, _t("that promotes the pawn to another piece: which letter names the queen?",
                         "这把兵升变成了别的棋子：哪个字母代表后？")
    if UCI_MOVE.search(text.lower()) and not UCI_MOVE.search(text):
        return False, _t("UCI writes its squares and the promotion piece in lower case", "UCI 的格子和升变棋子都用小写字母")
    if "=" in text or text[:1].isupper():
        return False, _t("that is SAN, the notation of chess books; the lesson's parser reads UCI (from-square, "
                         "to-square)", "这是 SAN，即棋书上的记谱法；本课的解析器读的是 UCI（起始格、目标格）")
    if UCI_MOVE.search(text):
        return False, _t("that move is not legal here: a pawn reaching the last rank must become a piece, and UCI "
                         "names it with a fifth letter",
                         "这步在这里不合法：走到底线的兵必须变成一个棋子，而 UCI 用第五个字母写出它")
    return False, _t("write the pawn's move in UCI: from-square, to-square, then the piece it becomes",
                     "用 UCI 写出兵的着法：起始格、目标格，然后是它变成的棋子")


@exercise("03")
def check_promotion_uci(answer: Any = None) -> bool:
    """An answer the lesson's parser reads as promoting the pawn of exercises.PROMOTION_FEN to a queen."""
    return _run("promotion_uci", answer, _judge_promotion, _t("UCI is from-square, to-square, and for a promotion...?",
                                                              "UCI 是起始格、目标格，而升变时还要……？"))


# ----------------------------------------------------------------------- 04: relaxed accuracy, and QLoRA memory

RELAXED_CASES = [  # (the model's answer, ChartQA's reference)
    ("104", "100"), ("20", "19"), ("Increasing.", "increasing"), ("rising", "increasing"), ("9", "10"),
    ("47", "50"), ("2,480", "2500"),
]


def _relaxed_variant(prediction: str, target: str, rule: str) -> bool:
    """One answer scored by a typical misreading of ChartQA's rule (the mistake a wrong rate most likely made)."""
    from .charts import MAX_RELATIVE_ERROR, normalize_answer, parse_number, relaxed_accuracy

    p, t = parse_number(prediction), parse_number(target)
    if rule == "all text" or p is None or t is None:
        if rule == "strict text":
            return prediction.strip() == target.strip()
        return normalize_answer(prediction) == normalize_answer(target)
    if rule == "of the prediction":
        return abs(p[0] - t[0]) <= MAX_RELATIVE_ERROR * abs(p[0])
    if rule == "5 units":
        return abs(p[0] - t[0]) <= 5
    return relaxed_accuracy(prediction, target)


def _judge_relaxed(answer: Any) -> tuple[bool, str]:
    from .charts import mean_relaxed_accuracy

    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, _t("give the relaxed accuracy as a fraction between 0 and 1 (what charts.mean_relaxed_accuracy "
                         "reports), not a count or a %",
                         "请把宽松准确率写成 0 到 1 之间的小数（即 `charts.mean_relaxed_accuracy` 报告的值），"
                         "不要写个数或百分数")
    predictions, targets = zip(*RELAXED_CASES, strict=True)
    ref = mean_relaxed_accuracy(predictions, targets)
    if _close(value, ref, rel=0.01):
        return True, _t(f"{ref:.3f}: numbers within 5% of the reference count, words only when they are the same "
                        "word (case and a final full stop aside)",
                        f"{ref:.3f}：与参考答案相差不超过 5% 的数字算对，文字只有在是同一个词时才算对"
                        "（不计大小写和末尾的句号）")

    def rate(rule: str) -> float:
        return sum(_relaxed_variant(p, t, rule) for p, t in RELAXED_CASES) / len(RELAXED_CASES)

    mistakes = [
        (rate("of the prediction"), _t("too high: the 5% is taken of the reference answer, not of the prediction "
                                       "(and a different word for the same thing is not the same word)",
                                       "太高了：5% 是按参考答案计算的，而不是按预测值（而且同一事物的另一个词不算"
                                       "同一个词）")),
        (rate("5 units"), _t("too high: the tolerance is 5% of the reference, not 5 units",
                             "太高了：容差是参考答案的 5%，而不是 5 个单位")),
        (rate("strict text"), _t("too low: text answers are compared after lower-casing and trimming, and a final "
                                 "full stop is dropped",
                                 "太低了：文字答案在转为小写并去掉首尾空白后再比较，末尾的句号也会去掉")),
        (rate("all text"), _t("too low: numbers are not compared as text. A number within 5% of the reference "
                              "counts, and a thousands separator does not change a number",
                              "太低了：数字不按文字比较。与参考答案相差不超过 5% 的数字算对，千位分隔符也不改变"
                              "数字")),
    ]
    hint = _known_mistake(value, [(w, t) for w, t in mistakes if w != ref], rel=0.01)
    if hint is not None:
        return False, hint
    if value > ref:
        return False, _t("too high: some answers you counted are wrong. A number must lie within 5% of the "
                         "reference (measured against the reference), and text must be the same word",
                         "太高了：你算对的答案中有些是错的。数字必须在参考答案的 5% 以内（以参考答案为基准），"
                         "文字必须是同一个词")
    return False, _t("too low: some answers you rejected are right. Numbers need only be within 5% (1,234 reads as "
                     "1234), and text is compared without case and without a final full stop",
                     "太低了：你排除的答案中有些是对的。数字只需在 5% 以内（1,234 读作 1234），文字比较时不计大小写、"
                     "不计末尾的句号")


@exercise("04")
def check_chartqa_relaxed_accuracy(answer: Any = None) -> bool:
    """ChartQA's relaxed accuracy of the answers in exercises.RELAXED_CASES, as a fraction."""
    return _run("chartqa_relaxed_accuracy", answer, _judge_relaxed,
                _t("per answer: a number within 5% of the reference, or the same text; then the fraction right",
                   "逐个答案判断：数字在参考答案的 5% 以内，或文字相同；然后算出答对的比例"))


QLORA_SIZE, QLORA_RANKS = "4b", (16, 64)  # the recipe's rank, and the rank the learner tries


def _judge_qlora_rank(answer: Any) -> tuple[bool, str]:
    from .memory import SIGLIP, lora_param_count, plan_lora_memory

    value = _number(answer)
    if value is None:
        return False, _t("give a number of GB (10^9 bytes), like 1.5", "请给出一个以 GB（10^9 字节）为单位的数，例如 1.5")
    note = ""
    if value > 1e5:
        value, note = value / 1e9, _t("(read as bytes) ", "（按字节数读取）")
    low, high = (plan_lora_memory(QLORA_SIZE, "4bit", lora_r=r) for r in QLORA_RANKS)
    ref = high.total_gb - low.total_gb
    extra_params = high.lora_params - low.lora_params
    if _close(value, ref):
        return True, _t(f"{note}{ref:.2f} GB: only the adapters grow, {extra_params / 1e6:.0f}M more parameters at "
                        "16 bytes each (fp32 weight, gradient and two AdamW moments); the frozen 4-bit model, the "
                        "activations and the logits stay as they were",
                        f"{note}{ref:.2f} GB：只有适配器变大，多出 {extra_params / 1e6:.0f}M 个参数，每个 16 字节"
                        "（fp32 的权重、梯度和两个 AdamW 矩）；冻结的 4 位模型、激活值和 logits 都保持不变")
    no_vision = lora_param_count(QLORA_SIZE, QLORA_RANKS[1], False) - lora_param_count(QLORA_SIZE, QLORA_RANKS[0], False)
    mistakes = [
        (extra_params * 4 / 1e9, _t("too small by a factor of 4: you counted the adapters' weights only. Training "
                                    "also keeps a gradient and two AdamW moments per trainable parameter, all in fp32",
                                    "小了 4 倍：你只算了适配器的权重。训练还要为每个可训练参数保存一个梯度和两个 "
                                    "AdamW 矩，全部是 fp32")),
        (extra_params * 8 / 1e9, _t("too small by a factor of 2: AdamW keeps two moments per parameter, beside the "
                                    "weight and its gradient",
                                    "小了 2 倍：除了权重及其梯度，AdamW 还为每个参数保存两个矩")),
        (extra_params * 2 / 1e9, _t("too small by a factor of 8: trainable parameters are fp32 (4 bytes, not 2), "
                                    "with an fp32 gradient and two AdamW moments each",
                                    "小了 8 倍：可训练参数是 fp32（4 字节，不是 2 字节），每个还有一个 fp32 梯度和两个 "
                                    "AdamW 矩")),
        (no_vision * 16 / 1e9, _t(f"too small: the recipe puts adapters on the vision tower too (SigLIP's "
                                  f"{SIGLIP['layers']} layers), and they grow with the rank as well",
                                  f"太小了：这个配方在视觉塔上也加了适配器（SigLIP 的 {SIGLIP['layers']} 层），"
                                  "它们也随秩增长")),
        (high.total_gb, _t("that is the whole plan at the higher rank; the question asks how much more it needs",
                           "这是较高秩下的整个计划；题目问的是它多需要多少")),
        (high.parts["LoRA weights + grads + AdamW"], _t("that is the adapters' whole cost at the higher rank; "
                                                         "subtract what the recipe's rank already needs",
                                                         "这是较高秩下适配器的全部开销；请减去配方原来的秩已经需要的部分")),
        (ref * 1e9 / 2**30, _t("that looks like GiB (2^30 bytes); the planner counts GB (10^9 bytes)",
                               "这看起来是 GiB（2^30 字节）；规划器按 GB（10^9 字节）计")),
    ]
    hint = _known_mistake(value, mistakes)
    if hint is not None:
        return False, note + hint
    if language() == "zh":
        return False, (f"{note}{'太大了' if value > ref else '太小了'}：计划中只有 LoRA 部分取决于秩（其参数按比例增长）；"
                       "请在两个秩下比较 `models.plan_lora_memory('4b', '4bit', lora_r=...)`")
    return False, (f"{note}{'too large' if value > ref else 'too small'}: only the LoRA part of the plan depends on "
                   "the rank (its parameters grow in proportion); compare models.plan_lora_memory('4b', '4bit', "
                   "lora_r=...) at both ranks")


@exercise("04")
def check_qlora_rank_64_extra_gb(answer: Any = None) -> bool:
    """How many GB more the planner gives 4B's QLoRA at rank 64 than at the recipe's rank 16."""
    return _run("qlora_rank_64_extra_gb", answer, _judge_qlora_rank,
                _t("which part of models.plan_lora_memory's plan depends on lora_r, and by how much?",
                   "`models.plan_lora_memory` 的计划中哪一部分取决于 lora_r？变化多少？"))


# ------------------------------------------------------------------------------------ 05: intervals, and ANLS

WILSON_CORRECT, WILSON_N = 27, 40


def _judge_wilson(answer: Any) -> tuple[bool, str]:
    from .scores import wilson_interval

    try:
        low, high = (_number(x) for x in answer)
    except (TypeError, ValueError):
        return False, _t("answer with two numbers, (low, high)", "请用两个数作答：(low, high)")
    if low is None or high is None:
        return False, _t("answer with two numbers, (low, high)", "请用两个数作答：(low, high)")
    if high > 1:
        low, high = low / 100, high / 100
    ref = wilson_interval(WILSON_CORRECT, WILSON_N)
    p = WILSON_CORRECT / WILSON_N

    def near(a: tuple[float, float]) -> bool:
        return abs(low - a[0]) < 0.003 and abs(high - a[1]) < 0.003

    if near(ref):
        return True, _t(f"({ref[0]:.3f}, {ref[1]:.3f}): not symmetric around {p:.3f}, it leans towards 1/2",
                        f"({ref[0]:.3f}, {ref[1]:.3f})：它不以 {p:.3f} 为中心对称，而是偏向 1/2")
    wald = 1.96 * math.sqrt(p * (1 - p) / WILSON_N)
    if near((p - wald, p + wald)):
        return False, _t("that is the normal-approximation (Wald) interval, p +- 1.96 standard errors, centred on p. "
                         "Wilson's centre and half-width each have extra z^2 terms: see scores.wilson_interval",
                         "这是正态近似（Wald）区间，即 p +- 1.96 个标准误，以 p 为中心。Wilson 区间的中心和半宽"
                         "各多出 z^2 项：见 `scores.wilson_interval`")
    if low > high:
        return False, _t("give the lower bound first", "请先写下界")
    if not low < p < high:
        return False, _t(f"a 95% interval for {WILSON_CORRECT} right out of {WILSON_N} must contain the observed rate",
                         f"{WILSON_N} 题答对 {WILSON_CORRECT} 题的 95% 区间必须包含观测到的正确率")
    if high - low < 2 * 1.8 * math.sqrt(p * (1 - p) / WILSON_N):
        return False, _t("too narrow: a 95% interval uses z = 1.96", "太窄了：95% 区间用 z = 1.96")
    return False, _t("not quite: centre (p + z^2/2n) / (1 + z^2/n), half-width z * sqrt(p(1-p)/n + z^2/4n^2) / "
                     "(1 + z^2/n), z = 1.96",
                     "还差一点：中心为 (p + z^2/2n) / (1 + z^2/n)，半宽为 z * sqrt(p(1-p)/n + z^2/4n^2) / "
                     "(1 + z^2/n)，z = 1.96")


@exercise("05")
def check_wilson_27_of_40(answer: Any = None) -> bool:
    """The 95% Wilson interval (low, high) of 27 right answers out of 40."""
    return _run("wilson_27_of_40", answer, _judge_wilson, _t("(low, high) as fractions; Wilson, not p +- 1.96 SE",
                                                             "(low, high) 写成小数；用 Wilson，而不是 p +- 1.96 SE"))


ANLS_PREDICTION, ANLS_ANSWERS = "Invoice no. 1234", ("invoice 1234", "1234")


def _judge_anls(answer: Any) -> tuple[bool, str]:
    from .visual_qa import ANLS_THRESHOLD, anls, levenshtein

    value = _number(answer)
    if value is None or not 0 <= value <= 1:
        return False, _t("give one number between 0 and 1", "请给出一个 0 到 1 之间的数")
    ref = anls(ANLS_PREDICTION, ANLS_ANSWERS)
    if _close(value, ref, rel=0.005, abs_tol=0.002):
        return True, _t(f"{ref:.3f}: the best reference answer counts; the other falls under the threshold and "
                        "gives 0", f"{ref:.3f}：取最好的参考答案；另一个没过阈值，得 0 分")
    pred = ANLS_PREDICTION.lower()
    nl = [levenshtein(pred, a.lower()) / max(len(pred), len(a)) for a in ANLS_ANSWERS]
    scores = [1 - x if x < ANLS_THRESHOLD else 0.0 for x in nl]
    mistakes = [
        (max(1 - levenshtein(ANLS_PREDICTION, a) / max(len(pred), len(a)) for a in ANLS_ANSWERS),
         _t("ANLS ignores case: lower-case both strings before counting edits",
            "ANLS 不区分大小写：先把两个字符串都转为小写，再数编辑次数")),
        (min(nl), _t("that is the normalized distance NL; ANLS scores 1 - NL", "这是归一化距离 NL；ANLS 的得分是 1 - NL")),
        (max(1 - levenshtein(pred, a.lower()) / min(len(pred), len(a)) for a in ANLS_ANSWERS),
         _t("divide the edit distance by the longer string's length, not the shorter one's",
            "编辑距离要除以较长字符串的长度，而不是较短的")),
        (sum(scores) / len(scores), _t("ANLS takes the best match over a question's reference answers, not the mean",
                                       "ANLS 取一道题所有参考答案中的最佳匹配，而不是平均值")),
        (sum(1 - x for x in nl) / len(nl), _t("take the best reference answer, not the mean (and mind the threshold)",
                                              "取最好的参考答案，而不是平均值（并注意阈值）")),
        (min(scores), _t("ANLS takes the best match over a question's reference answers, not the worst",
                         "ANLS 取一道题所有参考答案中的最佳匹配，而不是最差的")),
    ]
    hint = _known_mistake(value, mistakes, rel=0.005, abs_tol=0.002)
    if hint is not None:
        return False, hint
    return False, _t("per reference answer: NL = edit distance / longer length (case-insensitive), score 1 - NL, or "
                     "0 when NL reaches 0.5; then the best over the answers",
                     "对每个参考答案：NL = 编辑距离 / 较长的长度（不区分大小写），得分为 1 - NL，NL 达到 0.5 时为 0；"
                     "然后取所有答案中最好的")


@exercise("05")
def check_anls_invoice(answer: Any = None) -> bool:
    """The ANLS of exercises.ANLS_PREDICTION against the reference answers exercises.ANLS_ANSWERS."""
    return _run("anls_invoice", answer, _judge_anls, _t("1 - edit distance / longer length, per answer; then the best",
                                                        "每个答案算 1 - 编辑距离 / 较长的长度；然后取最好的"))


# --------------------------------------------------------------------- 06: the global batch, and what fits 27B

# One T4: per-device batch 2 x gradient accumulation 8; then Kaggle's two T4s with DDP at per-device batch 2.
ONE_GPU_BATCH, ONE_GPU_ACCUM, DDP_GPUS, DDP_BATCH = 2, 8, 2, 2


def _judge_grad_accum(answer: Any) -> tuple[bool, str]:
    value = _number(answer)
    if value is None:
        return False, _t("give a whole number of micro-batches, like 3", "请给出一个整数（微批次数），例如 3")
    target = ONE_GPU_BATCH * ONE_GPU_ACCUM
    ref = target // (DDP_GPUS * DDP_BATCH)
    if value == ref:
        return True, _t(f"{DDP_GPUS} GPUs x batch {DDP_BATCH} x {ref} = {target} examples per optimizer step, as on "
                        "one T4: the same global batch, so the same learning-rate and loss curve",
                        f"{DDP_GPUS} 块 GPU × 批大小 {DDP_BATCH} × {ref} = 每个优化器步 {target} 个样本，与单块 T4 "
                        "相同：全局批大小不变，学习率和损失曲线也就不变")
    if value != int(value) or value < 1:
        return False, _t("gradient accumulation counts micro-batches: a whole number, at least 1",
                         "梯度累积数的是微批次：必须是不小于 1 的整数")
    if value == ONE_GPU_ACCUM:
        return False, _t("with the same accumulation on two GPUs, each optimizer step learns from twice as many "
                         "examples: the global batch doubled", "两块 GPU 上用同样的累积步数，每个优化器步看到的样本数"
                         "翻倍了：全局批大小变成了两倍")
    if value == ONE_GPU_ACCUM * DDP_GPUS:
        return False, _t("the other way round: each of the two processes takes its own micro-batch, so fewer "
                         "accumulation steps are needed, not more", "方向反了：两个进程各取一个微批次，所以需要的"
                         "累积步数更少，而不是更多")
    return False, _t(f"the global batch is per-device batch x processes x accumulation; on one T4 it is "
                     f"{ONE_GPU_BATCH} x 1 x {ONE_GPU_ACCUM}: keep it", f"全局批大小 = 每设备批大小 × 进程数 × "
                     f"累积步数；单块 T4 上是 {ONE_GPU_BATCH} × 1 × {ONE_GPU_ACCUM}：保持它不变")


@exercise("06")
def check_grad_accum_two_t4(answer: Any = None) -> bool:
    """The gradient accumulation that keeps one T4's global batch on two T4s under DDP."""
    return _run("grad_accum_two_t4", answer, _judge_grad_accum,
                _t("examples per optimizer step = per-device batch x processes x gradient accumulation",
                   "每个优化器步的样本数 = 每设备批大小 × 进程数 × 梯度累积步数"))


PLAN_SIZE, PLAN_METHOD, PLAN_MACHINE = "27b", "qlora", "2x T4 (Kaggle)"


def _judge_strategies_27b(answer: Any) -> tuple[bool, str]:
    from .multigpu_plan import STRATEGIES, plan_strategies

    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        return False, _t("answer with a list of strategy names, like ['DDP']", "请用方案名称的列表作答，例如 ['DDP']")
    names = {str(a).strip() for a in answer}
    known = {s.lower(): s for s in STRATEGIES}
    unknown = sorted(n for n in names if n.lower() not in known)
    if unknown:
        return False, _t(f"{', '.join(unknown)}: not a name in multigpu_plan.STRATEGIES",
                         f"{', '.join(unknown)}：不是 multigpu_plan.STRATEGIES 中的名称")
    given = {known[n.lower()] for n in names}
    fits = {p.strategy for p in plan_strategies(PLAN_SIZE, PLAN_METHOD, PLAN_MACHINE) if p.fits}
    if given == fits:
        return True, _t("the layer split and FSDP (with or without offload) each hold part of the model per GPU; "
                        "one GPU and DDP need the whole model on one card", "层切分和 FSDP（无论是否卸载）都让每块 "
                        "GPU 只放模型的一部分；单 GPU 和 DDP 都要在一块卡上放下整个模型")
    if "DDP" in given - fits:
        return False, _t("DDP keeps a whole copy of the model on every GPU: it is faster, not bigger than one GPU",
                         "DDP 在每块 GPU 上都保存一份完整模型：它更快，但能放下的模型并不比单 GPU 大")
    if "one GPU" in given - fits:
        return False, _t("look at the plan's GB per GPU for one GPU against the T4's usable memory",
                         "对比计划中单 GPU 的每卡显存（GB）与 T4 的可用显存")
    return False, _t(f"{len(fits - given)} strateg{'y' if len(fits - given) == 1 else 'ies'} that fit{'s' if len(fits - given) == 1 else ''} "
                     "missing: every strategy that splits the model across the two GPUs counts",
                     f"还少了 {len(fits - given)} 个能放下的方案：凡是把模型分到两块 GPU 上的方案都算")


@exercise("06")
def check_strategies_27b_two_t4(answer: Any = None) -> bool:
    """The strategies (names from multigpu_plan.STRATEGIES) that fit Gemma 3 27B QLoRA on Kaggle's 2x T4."""
    return _run("strategies_27b_two_t4", answer, _judge_strategies_27b,
                _t("which strategies hold only part of the model on each GPU?", "哪些方案让每块 GPU 只放模型的一部分？"))
