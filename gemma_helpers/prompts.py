"""Gemma 3's chat format, its stop tokens and its recommended sampling, each defined once.

The format (the same string Google's official template renders):

* ``<bos>`` once, at the very start;
* a ``system`` message is not a turn: its text and a blank line are folded into the first user turn;
* turns strictly alternate user / assistant, starting with user; the assistant is written ``model``;
* each turn is ``<start_of_turn>{role}\\n{trimmed text}<end_of_turn>\\n``; an image item is ``<start_of_image>``
  (the processor expands it to the 256 soft tokens);
* the generation prompt is ``<start_of_turn>model\\n``. The model ends its turn with ``<end_of_turn>`` (id 106);
  the base model may also emit ``<eos>`` (id 1). Both must stop generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BOS = "<bos>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
START_OF_IMAGE = "<start_of_image>"
STOP_TOKENS: dict[str, int] = {"<eos>": 1, "<end_of_turn>": 106}
STOP_TOKEN_IDS: tuple[int, ...] = tuple(STOP_TOKENS.values())
GENERATION_PROMPT = f"{START_OF_TURN}model\n"

# Our Jinja rendering of the format above, attached to every tokenizer we save. Kept equivalent to chat_prompt()
# (tests render both on the same conversations and compare them byte for byte). One deliberate difference from
# Google's template: a role other than user/assistant after the first message (a late "system") is an error here,
# where Google's would render a turn the model was never trained on.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set prefix = '' -%}"
    "{%- set turns = messages -%}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set c = messages[0]['content'] -%}"
    "{%- set prefix = (c if c is string else c[0]['text']) + '\n\n' -%}"
    "{%- set turns = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for m in turns -%}"
    "{%- if m['role'] not in ['user', 'assistant'] or (m['role'] == 'user') != (loop.index0 is even) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{%- if loop.first %}{{ prefix }}{% endif -%}"
    "{%- if m['content'] is string -%}{{ m['content'] | trim }}"
    "{%- else -%}{%- for item in m['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


class ChatFormatError(ValueError):
    """A conversation that Gemma 3's format cannot express."""


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, (list, tuple)):
        parts = []
        for item in content:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "image":
                parts.append(START_OF_IMAGE)
            elif kind == "text":
                parts.append(str(item["text"]).strip())
            else:
                raise ChatFormatError(f"{where}: content items must be {{'type': 'text'|'image', ...}}, got {item!r}")
        return "".join(parts)
    raise ChatFormatError(f"{where}: content must be a string or a list of items, got {type(content).__name__}")


def chat_prompt(messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True, bos: bool = True) -> str:
    """Render a conversation in Gemma 3's format (bos=False when the tokenizer adds <bos> itself)."""
    if not messages:
        raise ChatFormatError("a conversation needs at least one user message")
    prefix, turns = "", list(messages)
    if turns[0].get("role") == "system":
        content = turns[0]["content"]
        prefix = (content if isinstance(content, str) else content[0]["text"]) + "\n\n"
        turns = turns[1:]
    out = [BOS] if bos else []
    for i, message in enumerate(turns):
        role = message.get("role")
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            raise ChatFormatError(
                f"message {i + (len(messages) - len(turns))} has role {role!r} where {expected!r} is expected: "
                "Gemma 3 needs strictly alternating user/assistant turns, starting with user "
                "(a system message may only come first)")
        text = _text_of(message.get("content", ""), f"message {i}")
        out.append(f"{START_OF_TURN}{'model' if role == 'assistant' else role}\n{prefix if i == 0 else ''}{text}"
                   f"{END_OF_TURN}\n")
    if add_generation_prompt:
        out.append(GENERATION_PROMPT)
    return "".join(out)


@dataclass(frozen=True)
class Sampling:
    """Sampling settings shared by every runtime."""

    temperature: float = 1.0
    top_k: int = 64
    top_p: float = 0.95
    min_p: float = 0.0  # Google's card gives 0.0; Unsloth's guide (and the seed) suggest 0.01. Both are fine.
    repeat_penalty: float = 1.0


RECOMMENDED = Sampling()


def generation_config(max_new_tokens: int = 128, greedy: bool = False, sampling: Sampling = RECOMMENDED):
    """A transformers GenerationConfig with the recommended sampling and both stop tokens."""
    from transformers import GenerationConfig

    if greedy:
        return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=list(STOP_TOKEN_IDS),
                                pad_token_id=0)
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=sampling.temperature,
                            top_k=sampling.top_k, top_p=sampling.top_p, min_p=sampling.min_p or None,
                            repetition_penalty=sampling.repeat_penalty, eos_token_id=list(STOP_TOKEN_IDS),
                            pad_token_id=0)


def llama_cpp_sampling(sampling: Sampling = RECOMMENDED) -> dict[str, float | int]:
    """Keyword arguments for llama-cpp-python's create_completion / create_chat_completion."""
    return {"temperature": sampling.temperature, "top_k": sampling.top_k, "top_p": sampling.top_p,
            "min_p": sampling.min_p, "repeat_penalty": sampling.repeat_penalty}


def llama_cli_args(sampling: Sampling = RECOMMENDED) -> list[str]:
    """The same settings as llama-cli / llama-server command-line flags."""
    return ["--temp", str(sampling.temperature), "--top-k", str(sampling.top_k), "--top-p", str(sampling.top_p),
            "--min-p", str(sampling.min_p), "--repeat-penalty", str(sampling.repeat_penalty)]


def ollama_parameters(sampling: Sampling = RECOMMENDED) -> list[str]:
    """PARAMETER lines for an Ollama Modelfile, both stop strings included."""
    lines = [f"PARAMETER temperature {sampling.temperature}", f"PARAMETER top_k {sampling.top_k}",
             f"PARAMETER top_p {sampling.top_p}", f"PARAMETER min_p {sampling.min_p}",
             f"PARAMETER repeat_penalty {sampling.repeat_penalty}"]
    return lines + [f'PARAMETER stop "{token}"' for token in STOP_TOKENS]


@dataclass
class Reply:
    """A generated reply: its text, token ids, what stopped it, and its speed."""

    text: str
    token_ids: list[int]
    stopped_by: str  # "<end_of_turn>", "<eos>" or "max_new_tokens"
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per wall second (prompt processing included)."""
        return len(self.token_ids) / self.seconds if self.seconds else 0.0


def chat(model, tokenizer, messages: Sequence[dict[str, Any]], max_new_tokens: int = 128, greedy: bool = False,
         stream: bool = True, seed: int | None = 0) -> Reply:
    """Generate the model's reply to a conversation, printing it piece by piece as it comes when stream=True."""
    import threading
    import time

    import torch
    from transformers import TextIteratorStreamer

    inputs = tokenizer(chat_prompt(messages), add_special_tokens=False, return_tensors="pt").to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    if seed is not None:
        torch.manual_seed(seed)
    result: dict[str, Any] = {}

    def work() -> None:
        with torch.no_grad():
            result["ids"] = model.generate(**inputs, generation_config=generation_config(max_new_tokens, greedy),
                                           streamer=streamer)

    started = time.time()
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if stream:
            print(piece, end="", flush=True)
    worker.join()
    seconds = time.time() - started
    if stream:
        print()
    ids = result["ids"][0, inputs["input_ids"].shape[1]:].tolist()
    names = {v: k for k, v in STOP_TOKENS.items()}
    stopped_by = names.get(ids[-1], "max_new_tokens") if ids else "max_new_tokens"
    return Reply("".join(pieces).strip(), ids, stopped_by, seconds)


def generate_ids(model, tokenizer, messages: Sequence[dict[str, Any]], max_new_tokens: int = 128,
                 greedy: bool = True, seed: int | None = 0) -> list[int]:
    """The reply's token ids (stop token included when the model produced one)."""
    import torch

    inputs = tokenizer(chat_prompt(messages), add_special_tokens=False, return_tensors="pt").to(model.device)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**inputs, generation_config=generation_config(max_new_tokens, greedy))
    return out[0, inputs["input_ids"].shape[1]:].tolist()
