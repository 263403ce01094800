"""Notebook 02's exercises (02_ollama_and_llamacpp): stop strings, and the decode speed bound.

Each check's reference answer comes from the lesson's own code, imported below; the checking, the hints
and both languages are :mod:`gemma_helpers.exercises.core`'s.
"""

from __future__ import annotations

import re
from typing import Any

from ..memory import plan_memory
from ..prompts import BOS, END_OF_TURN, START_OF_TURN, STOP_TOKENS, ollama_parameters
from ..speed import bandwidth_bound, gpu_spec_bandwidth
from .core import _close, _number, _off_by, _t, exercise

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


@exercise("02", hint=('one PARAMETER stop "..." line per token that ends generation; section 2 checks which those are',
                      '每个结束生成的 token 写一行 `PARAMETER stop "..."`；第 2 节检查了是哪些 token'))
def check_ollama_stop_lines(answer: Any) -> tuple[bool, str]:
    """The PARAMETER stop lines an Ollama Modelfile for Gemma 3 needs."""
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


DECODE_SIZE, DECODE_QUANT, DECODE_GPU = "4b", "q4_k_m", "Tesla T4"


def decode_weights_gb() -> float:
    """GB of weights the decode-bound exercise reads per token: the planner's text weights of 4B in Q4_K_M."""
    # the vision tower lives in a separate mmproj file and is not read while writing text
    return plan_memory(DECODE_SIZE, DECODE_QUANT, include_vision=False).weights_gb


def decode_bandwidth_gbs() -> float:
    """The exercise GPU's memory bandwidth by specification, in GB/s."""
    gbs = gpu_spec_bandwidth(DECODE_GPU)
    assert gbs is not None, f"speed.GPU_SPEC_BANDWIDTH_GBS lost {DECODE_GPU}"
    return gbs


@exercise("02", hint=("how many times a second can the memory deliver every weight once?",
                      "内存每秒能把每个权重完整送出多少次？"))
def check_decode_bound_4b_t4(answer: Any) -> tuple[bool, str]:
    """The most tokens/s a T4's memory bandwidth allows Gemma 3 4B's Q4_K_M weights when decoding."""
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
    return _off_by(value, ref, mistakes, ("each generated token reads every weight once, so tokens/s <= bandwidth "
                                          "(bytes/s) / weight bytes read per token",
                                          "每生成一个 token 都要把每个权重读一次，所以每秒 token 数 <= 带宽（字节/秒）"
                                       "/ 每个 token 读取的权重字节数"))
