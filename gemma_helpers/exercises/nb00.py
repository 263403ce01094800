"""Notebook 00's exercises (00_setup_and_tour): memory, the chat format, dtypes.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

from typing import Any

from ..catalog import get_size
from ..memory import kv_cache_bytes
from ..precision import policy
from ..prompts import BOS, END_OF_TURN, GENERATION_PROMPT, START_OF_TURN, chat_prompt
from .core import _close, _gigabytes, _off_by, _t, exercise

KV_SIZE, KV_CONTEXT = "4b", 32_768


@exercise("00", hint=("per layer, 2 (K and V) x KV heads x head size x 2 bytes x tokens held; mind the sliding window",
                      "每层为 2（K 和 V）× KV 头数 × 头大小 × 2 字节 × 保存的 token 数；注意滑动窗口"))
def check_kv_cache_4b_32k(answer: Any) -> tuple[bool, str]:
    """The KV cache of Gemma 3 4B at a 32K context in bfloat16, in GB."""
    value, note = _gigabytes(answer)
    if value is None:
        return False, note
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
    return _off_by(value, ref, mistakes, ("Per layer: 2 (K and V) x KV heads x head size x 2 bytes x the tokens that "
                                          "layer holds (the whole context on a global layer, at most the window on a "
                                          "sliding one); read the numbers from models.get_size('4b')",
                                          "每层：2（K 和 V）× KV 头数 × 头大小 × 2 字节 × 该层保存的 token 数（全局层为"
                                          "整个上下文，滑动窗口层最多为窗口大小）；数字请从 `models.get_size('4b')` 读取"),
                   note, sep=(". ", "。"))


CHAT_CONVERSATION = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"},
    {"role": "user", "content": "And of Italy?"},
]


@exercise("00", hint=("<bos>, then each turn as <start_of_turn>ROLE\\n...<end_of_turn>\\n; where does the system text go?",
                      "先是 <bos>，然后每个轮次写成 <start_of_turn>ROLE\\n...<end_of_turn>\\n；系统文本放在哪里？"))
def check_chat_prompt_two_turns(answer: Any) -> tuple[bool, str]:
    """The exact prompt string Gemma 3 gets for exercises.CHAT_CONVERSATION, ready for the model's reply."""
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


V100 = {"gpu_name": "Tesla V100-SXM2-16GB", "compute_capability": "7.0", "bf16_supported": False, "cpu_bf16": False}
_DTYPE_NAMES = {"fp32": "float32", "f32": "float32", "float": "float32", "single": "float32", "fp16": "float16",
                "f16": "float16", "half": "float16", "bf16": "bfloat16"}


@exercise("00", hint=("a V100 has no bfloat16; what happens to Gemma 3 in float16 (section 4)?",
                      "V100 没有 bfloat16；Gemma 3 在 float16 下会怎样（第 4 节）？"))
def check_v100_dtype(answer: Any) -> tuple[bool, str]:
    """The dtype to run Gemma 3 in on a V100 (compute capability 7.0) with plain transformers."""
    from types import SimpleNamespace

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
