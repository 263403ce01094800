"""Runtimes: the Ollama TEMPLATE renders our format byte for byte; llama.cpp gets our prompt tokens and both stops;
the loopback server answers and is always stopped; the bandwidth bound's arithmetic."""

import socket
from pathlib import Path

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
def test_greedy_agreement_counts_the_leading_tokens_that_match(base_gguf):
    from types import SimpleNamespace

    conv = CONVERSATIONS[0]
    llm = runtimes.load_llama(base_gguf, n_ctx=512)
    try:
        ids = runtimes.greedy_ids(llm, conv, max_tokens=5)
    finally:
        llm.close()
    files = {"q4_k_m": SimpleNamespace(path=base_gguf)}
    (row,) = runtimes.greedy_agreement(files, ["q4_k_m", "q4_k_m"], ids, conv, str, max_tokens=5)  # each file once
    assert row["leading tokens identical to transformers"] == row["of"] == len(ids)
    other = [*ids[:2], ids[2] + 1, *ids[3:]]
    (row,) = runtimes.greedy_agreement(files, ["q4_k_m"], other, conv, str, max_tokens=5)
    assert row["leading tokens identical to transformers"] == 2 and row["llama.cpp reply"] == str(ids)


@pytest.fixture(scope="module")
def templated_gguf(tmp_path_factory):
    """A tiny random Gemma 3 with the real tokenizer, exported with our chat template (what notebook 01 writes):
    python -m llama_cpp.server takes the template from the file, unlike llama-server (opt-in, usually absent)."""
    import shutil

    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from gemma_helpers import export
    from gemma_helpers.models import embedded_model_dir

    out = tmp_path_factory.mktemp("tiny-served")
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=262_144, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32, layer_types=["full_attention"])
    Gemma3ForCausalLM(config).save_pretrained(out / "hf")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded_model_dir() / name, out / "hf" / name)
    return Path(export.export_gguf(out / "hf", out, ("f16",))["f16"].path)


@pytest.mark.slow
def test_openai_server_answers_on_loopback_and_stops(templated_gguf):
    from transformers import AutoTokenizer

    from gemma_helpers.models import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    with runtimes.openai_server(templated_gguf, max_requests=1, n_ctx=256, prefer="python") as server:
        assert server.program == "llama_cpp.server"  # the one Colab has: llama-cpp-python's own server
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


def _hardware(gpu_name):
    from gemma_helpers.env import Hardware

    return Hardware(gpu_name, "7.5" if gpu_name else None, 15.8 if gpu_name else None, False, False, 2, 13.6,
                    "2.13", "3.12", True, False)


def test_gpu_decoding_is_bounded_by_the_gpus_memory_not_the_cpus():
    # a T4: transformers decodes from the GPU's memory (320 GB/s by specification), llama.cpp from RAM
    speeds = [speed.Speed("transformers", "fp32", 128, 900.0, 64, 100.0, "cuda"),
              speed.Speed("llama.cpp", "q4_k_m", 128, 300.0, 64, 40.0, "cpu")]
    bandwidths = speed.device_bandwidths((s.device for s in speeds), _hardware("Tesla T4"), measure_gpu=False)
    assert bandwidths["cuda"].gbs == 320.0 and "specification" in bandwidths["cuda"].source
    assert 0.5 < bandwidths["cpu"].gbs < 320.0  # RAM, measured here
    rows = {r["runtime"]: r for r in speed.speed_table(speeds, {"fp32": 1.072e9, "q4_k_m": 2.5e8}, bandwidths)}
    assert rows["transformers"]["bound tok/s"] == pytest.approx(320e9 / 1.072e9, rel=1e-3)  # 298.5, not RAM's ~20
    assert rows["transformers"]["device"] == "cuda" and rows["llama.cpp"]["bandwidth GB/s"] < 320.0
    with pytest.raises(ValueError, match="names no GPU"):
        speed.device_bandwidths(["cuda"], _hardware(None), measure_gpu=False)
    with pytest.raises(ValueError, match="no specification"):
        speed.device_bandwidths(["cuda"], _hardware("Some Future GPU"), measure_gpu=False)
    assert speed.gpu_spec_bandwidth("NVIDIA L4") == 300.0 and speed.gpu_spec_bandwidth("NVIDIA A100-SXM4-40GB") == 1555


def test_speeds_say_where_the_weights_were_read_from():
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=64_000, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                              layer_types=["full_attention"])
    torch.manual_seed(0)
    s = speed.transformers_speed(Gemma3ForCausalLM(config).eval(), "fp32", prompt_tokens=16, gen_tokens=4)
    assert s.device == "cpu" and s.decode_tps > 0


def test_server_without_its_extras_says_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setattr(runtimes, "missing_server_extras", lambda: ["uvicorn>=0.22.0"])
    with pytest.raises(ModuleNotFoundError, match=r"ensure_llama_cpp\(server=True\)"):
        with runtimes.openai_server(tmp_path / "m.gguf", prefer="python"):
            pass


def test_measure_runtimes_puts_each_runtime_beside_its_own_bound(monkeypatch, tmp_path):
    import torch

    from gemma_helpers import gguf_files

    model = torch.nn.Linear(10, 10)  # 110 parameters: 440 bytes in float32
    monkeypatch.setattr(speed, "transformers_speed", lambda m, q, p, g: speed.Speed("transformers", q, p, 50.0, g, 5.0))
    monkeypatch.setattr(speed, "llama_cpp_speed",
                        lambda path, q, p, g, threads=None: speed.Speed("llama.cpp", q, p, 80.0, g, 20.0))
    monkeypatch.setattr(speed, "memory_bandwidth", lambda threads=None: 1e-6)  # GB/s: 1,000 bytes/s

    class _Read:
        tensor_bytes = 100

    monkeypatch.setattr(gguf_files, "read_gguf", lambda path: _Read())
    measured = speed.measure_runtimes(model, {"q8_0": tmp_path / "m.gguf"}, 16, 8)
    assert measured.bytes_per_token == {"fp32": 440, "q8_0": 100}
    assert measured.bounds() == pytest.approx({"fp32": 1000 / 440, "q8_0": 10.0})
    rows = {r["weights"]: r for r in measured.table()}
    assert rows["q8_0"]["% of bound"] == 200 and rows["fp32"]["runtime"] == "transformers"
