"""The catalog, the memory planner against real numbers, and the embedded model."""

import time

import pytest

from gemma_helpers import models
from gemma_helpers.models import CATALOG, get_size, kv_cache_bytes, plan_memory, weight_bytes


def test_catalog_facts():
    assert list(CATALOG) == ["270m", "1b", "4b", "12b", "27b"]
    assert [s.training_tokens for s in CATALOG.values()] == ["6T", "2T", "4T", "12T", "14T"]
    assert [s.image_input for s in CATALOG.values()] == [False, False, True, True, True]
    assert [s.context for s in CATALOG.values()] == [32_768, 32_768, 131_072, 131_072, 131_072]
    assert get_size("unsloth/gemma-3-4b-it").name == "4b" and get_size("27B").name == "27b"
    assert CATALOG["1b"].hub["google-it"] == "google/gemma-3-1b-it"


def test_unknown_size_names_the_known_ones():
    with pytest.raises(KeyError, match="270m, 1b, 4b, 12b, 27b"):
        get_size("gemma-3-8b")


def test_q4_k_m_estimate_matches_the_embedded_gguf():
    # the check: within 10% of the real file (253 MB, tokenizer metadata included)
    real = models.embedded_gguf().stat().st_size
    estimate = weight_bytes("270m", "q4_k_m")
    assert abs(estimate - real) / real < 0.10, (estimate, real)


def test_q4_k_m_estimate_matches_the_gguf_tensor_by_tensor():
    # sharper: the tensor bytes the GGUF itself declares (no tokenizer) agree within 2%
    from gguf import GGUFReader

    reader = GGUFReader(models.embedded_gguf())
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    assert abs(weight_bytes("270m", "q4_k_m") - tensor_bytes) / tensor_bytes < 0.02
    # 640-wide rows are not whole 256-value K-quant blocks: llama.cpp fell back to Q8_0 / Q5_0, as the planner says
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["token_embd.weight"] == "Q8_0" and types["blk.0.attn_q.weight"] == "Q5_0"


def test_weights_scale_with_bits():
    bf16, q8 = weight_bytes("4b", "bf16"), weight_bytes("4b", "q8_0")
    assert 8.3e9 < bf16 < 8.8e9  # 4.3B parameters at 2 bytes
    lm_bf16, lm_q8 = weight_bytes("4b", "bf16", include_vision=False), weight_bytes("4b", "q8_0", include_vision=False)
    assert abs(lm_q8 / lm_bf16 - 8.5 / 16) < 0.01  # Q8_0: 34 bytes per 32 weights
    assert q8 - lm_q8 == bf16 - lm_bf16 == pytest.approx(0.834e9)  # the vision tower stays f16 (mmproj file)
    assert weight_bytes("27b", "q4_0") < weight_bytes("27b", "q4_k_m") < q8 * 27 / 4
    with pytest.raises(ValueError, match="unknown quant"):
        weight_bytes("1b", "q3_k_s")


def test_kv_cache_counts_sliding_windows():
    # 270M: 18 layers, 1 KV head x 256, f16: 1 KiB per token per layer; 15 sliding layers hold <= 512 tokens
    per_layer_token = 2 * 1 * 256 * 2
    assert kv_cache_bytes("270m", 512) == 18 * 512 * per_layer_token
    assert kv_cache_bytes("270m", 8192) == (3 * 8192 + 15 * 512) * per_layer_token
    with pytest.raises(ValueError, match="32,768-token context"):
        kv_cache_bytes("1b", 65_536)


def test_what_fits_where():
    assert plan_memory("270m", "q4_k_m", 2048).fits("phone 4 GB")
    assert plan_memory("1b", "q4_k_m", 2048).fits("phone 4 GB")
    assert not plan_memory("27b", "q4_k_m", 8192).fits("phone 8 GB")
    assert plan_memory("4b", "bf16", 8192).fits("T4 (Colab)")
    assert not plan_memory("27b", "bf16", 8192).fits("24 GB card")
    assert plan_memory("27b", "q4_k_m", 8192).fits("24 GB card")
    assert plan_memory("27b", "bf16", 32_768).fits("80 GB card")
    with pytest.raises(KeyError, match="unknown device"):
        plan_memory("1b").fits("toaster")


def test_fit_table_has_every_size_and_device():
    rows = models.fit_table()
    assert [r["size"] for r in rows] == ["270M", "1B", "4B", "12B", "27B"]
    assert all(set(models.DEVICES) <= set(r) for r in rows)


def test_resolve_names():
    assert models.resolve("4b") == "unsloth/gemma-3-4b-it"
    assert models.resolve("google/gemma-3-1b-pt") == "google/gemma-3-1b-pt"
    with pytest.raises(KeyError, match="unknown Gemma 3 size"):
        models.resolve("llama-3-8b")


def test_chat_warmup_data_parses():
    rows = models.chat_warmup_conversations()
    assert len(rows) >= 40 and all(r[-1]["role"] == "assistant" for r in rows)


def test_a_cache_built_before_manifests_gets_one_and_is_not_rebuilt(tmp_path):
    import json

    from gemma_helpers import provenance

    folder = tmp_path / "gemma-3-270m-chat-hf"
    assert not models._has_manifest(folder, "train.json")  # nothing there: build it
    folder.mkdir()
    (folder / "train.json").write_text(json.dumps({"base": "/cache/gemma-3-270m-hf", "data": "chat_warmup.jsonl",
                                                   "steps": 40, "seconds": 31.2, "lora": {"r": 8, "alpha": 16}}))
    assert models._has_manifest(folder, "train.json")
    record = provenance.read(folder)
    assert (record.kind, record.base, record.data, record.steps) == ("merged", "/cache/gemma-3-270m-hf",
                                                                     "chat_warmup.jsonl", 40)
    assert record.extra == {"seconds": 31.2, "lora": {"r": 8, "alpha": 16}}


def test_a_cached_folder_without_its_tokenizer_files_is_built_again(tmp_path):
    from gemma_helpers import provenance

    folder = tmp_path / "gemma-3-270m-hf"
    folder.mkdir()
    provenance.write(folder, provenance.Provenance(kind="converted", base="google/gemma-3-270m",
                                                   made_by="gemma_helpers.models.embedded_model_dir"))
    (folder / "tokenizer.model").write_bytes(b"")
    # A manifest beside tokenizer.model alone: transformers would load the SentencePiece file and drop <bos>.
    assert not models._is_built(folder, "converted.json")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text("{}")
    assert models._is_built(folder, "converted.json")


def test_default_backend_follows_the_switch(monkeypatch):
    monkeypatch.setenv("GEMMA_NO_UNSLOTH", "1")
    assert models.default_backend() == "transformers"


@pytest.mark.slow
def test_embedded_model_loads_fast_and_tokenizes_right():
    started = time.time()
    model, tok = models.load("embedded", backend="transformers")
    assert time.time() - started < 30  # ~6 s on 2 cores once cached (the target is 10 s; slack for a busy CI box)
    assert tok("The capital of France is")["input_ids"] == [2, 818, 5279, 529, 7001, 563]
    assert tok.convert_tokens_to_ids(["<end_of_turn>", "<start_of_turn>"]) == [106, 105]
    assert model.config.num_hidden_layers == 18 and model.config.hidden_size == 640
    assert not hasattr(model, "_gemma_backend")  # the backend is passed on by the caller, not hidden on the model
    # the attached template renders exactly what prompts.chat_prompt renders
    from gemma_helpers.prompts import CHAT_TEMPLATE, chat_prompt

    assert tok.chat_template == CHAT_TEMPLATE  # a cache built with an older template is brought up to date

    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True) == chat_prompt(conv)
