"""The chat format, byte for byte, and the sampling settings as each runtime writes them."""

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gemma_helpers import prompts
from gemma_helpers.prompts import ChatFormatError, chat_prompt

# Expected strings are what Google's official Gemma 3 template renders for these conversations.
CASES = [
    (  # a single user turn with the generation prompt
        [{"role": "user", "content": "Hello!"}], True,
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
    ),
    (  # system text folded into the first user turn, followed by a blank line; user text trimmed, system not
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "  Hi there \n"}], True,
        "<bos><start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n<start_of_turn>model\n",
    ),
    (  # multi-turn: assistant written as model, no generation prompt
        [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
         {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": " 6 "}], False,
        "<bos><start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n6<end_of_turn>\n",
    ),
    (  # image items become <start_of_image>; text items trimmed and joined without separators
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is the largest bar? "}]}],
        True,
        "<bos><start_of_turn>user\n<start_of_image>What is the largest bar?<end_of_turn>\n<start_of_turn>model\n",
    ),
    (  # a system message given as a list of items, then an image conversation with an answer
        [{"role": "system", "content": [{"type": "text", "text": "Answer with a number."}]},
         {"role": "user", "content": [{"type": "text", "text": "Chart:"}, {"type": "image"}]},
         {"role": "assistant", "content": [{"type": "text", "text": "42"}]}], False,
        "<bos><start_of_turn>user\nAnswer with a number.\n\nChart:<start_of_image><end_of_turn>\n"
        "<start_of_turn>model\n42<end_of_turn>\n",
    ),
    (  # the system prefix goes into the first turn only
        [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
         {"role": "user", "content": "c"}], True,
        "<bos><start_of_turn>user\nS\n\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
        "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n",
    ),
]


def _jinja(messages, add_generation_prompt):
    def raise_exception(message):
        raise ChatFormatError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(prompts.CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                         bos_token="<bos>")


@pytest.mark.parametrize("messages, gen, expected", CASES)
def test_chat_prompt_exact(messages, gen, expected):
    assert chat_prompt(messages, add_generation_prompt=gen) == expected


@pytest.mark.parametrize("messages, gen, expected", CASES)
def test_jinja_template_renders_the_same(messages, gen, expected):
    # the Jinja template we attach to tokenizers (and GGUF files) must agree with the Python renderer
    assert _jinja(messages, gen) == expected


@pytest.mark.parametrize("messages", [
    [{"role": "assistant", "content": "I speak first"}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}],
    [{"role": "user", "content": "a"}, {"role": "system", "content": "late system"}],
])
def test_roles_must_alternate(messages):
    with pytest.raises(ChatFormatError, match="alternat"):
        chat_prompt(messages)
    with pytest.raises(ChatFormatError, match="alternate"):
        _jinja(messages, True)


def test_bad_content_is_a_clear_error():
    with pytest.raises(ChatFormatError, match="content"):
        chat_prompt([{"role": "user", "content": [{"type": "audio"}]}])
    with pytest.raises(ChatFormatError, match="at least one"):
        chat_prompt([])


def test_no_double_bos_when_tokenizer_adds_its_own():
    assert not chat_prompt([{"role": "user", "content": "x"}], bos=False).startswith("<bos>")


def test_stop_tokens_are_gemma3s():
    assert prompts.STOP_TOKENS == {"<eos>": 1, "<end_of_turn>": 106}


def test_sampling_is_one_definition_in_three_dialects():
    s = prompts.RECOMMENDED
    assert (s.temperature, s.top_k, s.top_p, s.min_p) == (1.0, 64, 0.95, 0.0)
    assert prompts.llama_cpp_sampling() == {"temperature": 1.0, "top_k": 64, "top_p": 0.95, "min_p": 0.0,
                                            "repeat_penalty": 1.0}
    lines = prompts.ollama_parameters()
    assert "PARAMETER top_k 64" in lines and "PARAMETER top_p 0.95" in lines
    assert 'PARAMETER stop "<end_of_turn>"' in lines and 'PARAMETER stop "<eos>"' in lines
    args = prompts.llama_cli_args(prompts.Sampling(min_p=0.01))
    assert args[args.index("--min-p") + 1] == "0.01" and args[args.index("--top-k") + 1] == "64"
    cfg = prompts.generation_config(32)
    assert cfg.do_sample and cfg.top_k == 64 and cfg.top_p == 0.95 and cfg.temperature == 1.0
    assert cfg.eos_token_id == [1, 106]
    assert not prompts.generation_config(8, greedy=True).do_sample
