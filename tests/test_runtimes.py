"""Runtimes: the Ollama TEMPLATE renders our format byte for byte; llama.cpp gets our prompt tokens and both stops;
the loopback server answers and is always stopped; the bandwidth bound's arithmetic."""

import socket

import pytest

from gemma_helpers import runtimes, speed
from gemma_helpers.prompts import chat_prompt

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
     {"role": "user", "content": "c"}],
    [{"role": "user", "content": "Line one\nline two"}, {"role": "assistant", "content": "ok\n\nsure"},
     {"role": "user", "content": "e4 e5 Nf3?"}],
]


@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_ollama_template_renders_exactly_chat_prompt(conversation):
    rendered = runtimes.render_go_template(runtimes.OLLAMA_TEMPLATE, conversation)
    assert rendered == chat_prompt(conversation, bos=False)  # Ollama adds <bos> itself


def test_go_template_subset_follows_go_rules():
    # {{- trims all whitespace before, -}} all after; variables assigned in a range keep their value after it
    template = 'a  \n {{- $x := "" }}{{ range .Messages }}{{ $x = .Content }}{{ end }} \n -{{ $x -}}  \n b'
    assert runtimes.render_go_template(template, [{"role": "user", "content": "1"},
                                                  {"role": "user", "content": "2"}]) == "a \n -2b"
    with pytest.raises(ValueError, match="unsupported"):
        runtimes.render_go_template("{{ len .Messages }}", [])


def test_modelfile_is_checked(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    text = runtimes.modelfile(gguf)
    assert text.startswith(f"FROM {gguf.resolve()}\n")
    assert 'PARAMETER stop "<end_of_turn>"' in text and 'PARAMETER stop "<eos>"' in text
    assert "PARAMETER top_k 64" in text and "PARAMETER temperature 1.0" in text
    assert runtimes.check_modelfile(text, CONVERSATIONS) == []
    broken = text.replace("<end_of_turn>\n{{ else }}", "<end_of_turn>{{ else }}")  # a lost newline after a user turn
    problems = runtimes.check_modelfile(broken, CONVERSATIONS[2:3])
    assert len(problems) == 1 and "conversation 0" in problems[0]
    problems = runtimes.check_modelfile(text.replace('PARAMETER stop "<eos>"\n', ""), [])
    assert problems == ["no PARAMETER stop '<eos>'"]
    gguf.unlink()
    assert "FROM does not name an existing file" in runtimes.check_modelfile(text, [])[0]


def test_ollama_status_says_why_when_absent(monkeypatch):
    monkeypatch.setattr(runtimes.shutil, "which", lambda name: None)
    flag = runtimes.ollama_status()
    assert not flag and "not installed" in flag.reason


def test_bandwidth_bound_arithmetic():
    # 20 GB/s over a 250 MB file: at most 80 tokens/s
    assert speed.bandwidth_bound(250e6, 20.0) == pytest.approx(80.0)
    with pytest.raises(ValueError):
        speed.bandwidth_bound(0, 20.0)
    assert speed.memory_bandwidth(mb=32, repeats=2) > 0.5  # GB/s: any machine of this century


@pytest.fixture(scope="module")
def base_gguf():
    from gemma_helpers.models import embedded_gguf

    return embedded_gguf()


@pytest.mark.slow
def test_llama_cpp_gets_our_tokens_and_both_stops(base_gguf):
    from transformers import AutoTokenizer

    from gemma_helpers.models import embedded_model_dir

    llm = runtimes.load_llama(base_gguf, n_ctx=256)
    try:
        assert runtimes.stop_tokens_are_eog(llm) == {1: True, 106: True}
        tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
        for conv in CONVERSATIONS:
            ids = runtimes.prompt_tokens(llm, conv)
            assert ids == tokenizer(chat_prompt(conv), add_special_tokens=False)["input_ids"]
            assert ids.count(2) == 1  # exactly one <bos>
            # the chat handler renders the same text (the base GGUF carries no template of its own)
            assert runtimes.chat_formatter()(messages=conv).prompt == chat_prompt(conv)
        pieces = list(runtimes.stream_chat(llm, CONVERSATIONS[0], max_tokens=6, greedy=True))
        assert 1 <= len(pieces) <= 6 and all(isinstance(p, str) for p in pieces)
    finally:
        llm.close()


@pytest.mark.slow
def test_openai_server_answers_on_loopback_and_stops(base_gguf):
    from transformers import AutoTokenizer

    from gemma_helpers.models import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    with runtimes.openai_server(base_gguf, max_requests=1, n_ctx=256) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        port = int(server.base_url.rsplit(":", 1)[1])
        answer = server.chat(CONVERSATIONS[0], max_tokens=4)
        assert answer["usage"]["completion_tokens"] <= 4 and answer["finish_reason"] in ("length", "stop")
        # the server formatted the conversation with the GGUF's template into exactly our prompt's tokens
        assert answer["usage"]["prompt_tokens"] == len(tokenizer(chat_prompt(CONVERSATIONS[0]),
                                                                 add_special_tokens=False)["input_ids"])
        with pytest.raises(RuntimeError, match="budget"):
            server.chat(CONVERSATIONS[0], max_tokens=4)
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):  # stopped: nothing listens there any more
        s.connect(("127.0.0.1", port))
