"""GGUF export: llama.cpp's converter and quantizer on a tiny random Gemma 3, the header check, parity, phones.

The tiny model (2 layers, hidden 64) carries the real Gemma 3 tokenizer, so the converter does all its real work
(262,144-token vocabulary, our chat template) in seconds; llama.cpp then has to reproduce transformers' logits.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from gemma_helpers import export, gguf_files, parity, phone, provenance
from gemma_helpers.prompts import CHAT_TEMPLATE

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _embedded_dir() -> Path:
    from gemma_helpers.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    """A 2-layer random Gemma3ForCausalLM with the embedded model's tokenizer (our chat template attached)."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    out = tmp_path_factory.mktemp("tiny-gemma3")
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=262_144, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=16,
                              max_position_embeddings=512, query_pre_attn_scalar=32,
                              layer_types=["sliding_attention", "full_attention"],
                              initializer_range=0.5)  # large weights: peaked predictions, few near-ties
    model = Gemma3ForCausalLM(config).eval()
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (_embedded_dir() / name).exists():
            shutil.copy(_embedded_dir() / name, out / name)
    return out


@pytest.fixture(scope="module")
def tiny_files(tiny_hf, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-gguf")
    return export.export_gguf(tiny_hf, out, ("f16", "q8_0", "q4_k_m"))


def test_converter_writes_our_chat_template_and_every_tensor(tiny_files):
    info = export.read_gguf(tiny_files["f16"].path)
    assert info.architecture == "gemma3"
    assert info.chat_template == CHAT_TEMPLATE  # so llama.cpp never falls back to another format
    # 2 layers x 13 tensors (7 matrices, 6 norms) + token_embd + output_norm; the output head is tied.
    assert info.n_tensors == 2 * 13 + 2
    # F16 matrices: the embedding alone is 262,144 x 64 x 2 bytes.
    assert info.tensor_types["F16"] == 2 * 7 + 1
    assert info.tensor_bytes >= 262_144 * 64 * 2


def test_quantizer_makes_smaller_files_and_export_is_cached(tiny_hf, tiny_files, tmp_path):
    sizes = {q: f.size_bytes for q, f in tiny_files.items()}
    assert sizes["q4_k_m"] < sizes["q8_0"] < sizes["f16"]
    q4 = export.read_gguf(tiny_files["q4_k_m"].path)
    # rows of 64 values are not whole 256-value K-quant blocks: llama.cpp falls back to Q5_0 / Q8_0
    assert "Q4_K" not in q4.tensor_types and set(q4.tensor_types) <= {"F32", "Q5_0", "Q8_0"}
    assert tiny_files["f16"].sha256 == export.sha256(tiny_files["f16"].path)
    before = Path(tiny_files["f16"].path).stat().st_mtime_ns
    again = export.export_gguf(tiny_hf, Path(tiny_files["f16"].path).parent, ("f16", "q4_k_m"))
    assert Path(again["f16"].path).stat().st_mtime_ns == before  # reused, not converted again
    assert again["q4_k_m"] == tiny_files["q4_k_m"]


def test_f16_gguf_matches_transformers_position_by_position(tiny_hf, tiny_files):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_hf)
    model = AutoModelForCausalLM.from_pretrained(tiny_hf).eval()
    streams = parity.token_streams(tokenizer, 120)
    assert sum(map(len, streams)) == 120 and all(s[0] == 2 for s in streams)  # one <bos> per stream
    reference = parity.reference_logits(model, streams)
    f16 = parity.parity(tiny_files["f16"].path, "f16", reference, streams)
    assert f16.positions == 120
    assert f16.top1_agreement >= 0.99 and f16.mean_kl < 0.01, f16  # f16 rounding of the weights only
    q4 = parity.parity(tiny_files["q4_k_m"].path, "q4_k_m", reference, streams)
    assert q4.mean_kl > f16.mean_kl  # fewer bits, further from the reference


def test_compare_logits_on_hand_checked_cases():
    same = np.array([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
    scores = parity.compare_logits(same, same)
    assert scores["top1_agreement"] == 1.0 and scores["mean_kl"] == pytest.approx(0.0, abs=1e-12)
    # p = (1/2, 1/2), q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 0.14384
    p, q = np.log([[0.5, 0.5]]), np.log([[0.25, 0.75]])
    scores = parity.compare_logits(p, q)
    assert scores["mean_kl"] == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3), rel=1e-9)
    assert scores["flips"] == 1 and scores["near_tie_flips"] == 1  # the reference's top two are tied
    with pytest.raises(ValueError, match="shapes differ"):
        parity.compare_logits(same, same[:1])


def test_bad_files_give_clear_errors(tiny_files, tmp_path):
    good = Path(tiny_files["q8_0"].path).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(export.GGUFError, match="truncated: its tensors need"):
        export.read_gguf(cut)
    cut.write_bytes(good[:5000])  # inside the header (the vocabulary)
    with pytest.raises(export.GGUFError, match="damaged or truncated in its header"):
        export.read_gguf(cut)
    (tmp_path / "model.safetensors.gguf").write_bytes(b"\x00" * 64)
    with pytest.raises(export.GGUFError, match="not a GGUF file"):
        export.read_gguf(tmp_path / "model.safetensors.gguf")
    with pytest.raises(export.GGUFError, match="does not exist"):
        export.read_gguf(tmp_path / "missing.gguf")
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(export.GGUFError):  # llama.cpp itself is never handed the broken file
        parity.gguf_logits(cut, [[2, 3, 4]])


def test_embedded_gguf_header_facts():
    from gemma_helpers.models import embedded_gguf

    info = export.read_gguf(embedded_gguf())
    assert (info.file_bytes, info.tensor_bytes, info.n_tensors) == (253_113_024, 246_587_904, 236)
    assert info.chat_template is None  # the base model ships none: runtimes must be given ours
    assert info.tensor_types == {"F32": 109, "Q8_0": 10, "Q5_0": 81, "Q4_K": 27, "Q6_K": 9}


def test_unknown_quant_types_are_refused(tiny_hf, tmp_path):
    with pytest.raises(ValueError, match="unknown quant types"):
        export.export_gguf(tiny_hf, tmp_path, ("q3_k_s",))
    with pytest.raises(ValueError, match="quantize"):
        gguf_files.to_gguf(tiny_hf, tmp_path / "x.gguf", "q4_k_m")


def test_phone_table_adds_kv_cache_and_overhead():
    from gemma_helpers.memory import kv_cache_bytes

    f = export.ExportedFile("q4_k_m", "x.gguf", 261_318_080, "0" * 64, 1.0)
    (row,) = phone.phone_table({"q4_k_m": f})
    weights = 261_318_080 / 1e9
    assert row["RAM GB @2K"] == round(weights + kv_cache_bytes("270m", 2048) / 1e9 + 0.15 + 0.05 * weights, 2)
    assert row["phones @2K"] == "4 GB, 6 GB, 8 GB"
    big = export.ExportedFile("f16", "y.gguf", int(2.5e9), "0" * 64, 1.0)
    (row,) = phone.phone_table({"f16": big})
    assert row["phones @2K"] == "6 GB, 8 GB"  # 2.5 GB of weights leave a 4 GB phone (1.8 GB usable) behind
    rows = phone.planner_phone_table()
    assert len(rows) == 5 * 3
    assert next(r for r in rows if r["size"] == "27B" and r["quant"] == "q4_k_m")["phones @2K"] == "none"


def test_a_ggufs_file_name_and_inside_name_come_from_its_provenance(tmp_path):
    chess = tmp_path / "chess"
    provenance.write(chess, provenance.Provenance(kind="merged", base="google/gemma-3-270m", finetune="chess-lora",
                                                  made_by=provenance.MADE_BY_CHESS))
    name = export.gguf_name(chess)
    assert name.file("q8_0") == "gemma-3-270m-chess-lora-q8_0.gguf" and name.name == "Gemma 3 270M chess LoRA"
    assert name.metadata["general.finetune"] == "chess-lora" and name.metadata["general.size_label"] == "270M"
    # a fine-tune of a local folder: its base followed to the released model, the kind of fine-tune from the data
    embedded = tmp_path / "embedded"
    provenance.write(embedded, provenance.Provenance(kind="converted", base="google/gemma-3-270m",
                                                     made_by=provenance.MADE_BY_EMBEDDED))
    chat = tmp_path / "chat"
    provenance.write(chat, provenance.Provenance(kind="merged", base=str(embedded), finetune="chat-warmup",
                                                 made_by=provenance.MADE_BY_CHAT_WARMUP))
    assert export.gguf_name(chat).file("f16") == "gemma-3-270m-chat-warmup-f16.gguf"
    assert export.gguf_name(embedded).name == "Gemma 3 270M"
    # what made it is not read for the name: a manifest that names no fine-tune gets none, whatever made it
    plain = tmp_path / "plain"
    provenance.write(plain, provenance.Provenance(kind="merged", base="unsloth/gemma-3-270m-it",
                                                  made_by=provenance.MADE_BY_CHESS))
    assert export.gguf_name(plain).file("q4_k_m") == "gemma-3-270m-it-q4_k_m.gguf"
    assert export.gguf_name(plain).name == "Gemma 3 270M IT"
    # a hub download without a manifest: from its repo id; a bare folder: from its own name
    assert export.gguf_name(tmp_path / "snap", "google/gemma-3-4b-it").stem == "gemma-3-4b-it"
    assert export.gguf_name(tmp_path / "My Model").stem == "my-model"
    with pytest.raises(ValueError, match="finetune must be one of"):
        provenance.write(tmp_path / "x", provenance.Provenance(kind="merged", base="b", made_by="x", finetune="lora"))


def _record(base: str, kind: str = "merged") -> provenance.Provenance:
    return provenance.Provenance(kind=kind, base=base, made_by="test", data="3 puzzles", steps=2, dtype="bfloat16")


def test_source_is_notebook_03s_finetune_read_from_its_manifest(tmp_path, monkeypatch):
    base = tmp_path / "base"
    base.mkdir()
    chess = tmp_path / "outputs" / "chess"
    source = export.choose_source(str(base), chess)
    assert source.folder == base and not source.finetune and source.record is None
    assert "run notebook 03" in source.what  # the learner is told how to export the fine-tune instead
    merged = chess / "merged-16bit"
    merged.mkdir(parents=True)
    with pytest.raises(provenance.ProvenanceError, match="no provenance.json.*run notebook 03"):
        export.choose_source(str(base), chess)  # a folder without its manifest is an error, never a guess
    other = tmp_path / "outputs" / "chess-old" / "merged-16bit"  # a newer folder elsewhere is not looked at
    other.mkdir(parents=True)
    provenance.write(other, _record(str(base)))
    provenance.write(merged, _record("unsloth/gemma-3-270m-it"))
    source = export.choose_source(str(base), chess)
    assert source.folder == merged and source.finetune and "chess fine-tune" in source.what
    assert source.record.base == "unsloth/gemma-3-270m-it" and not source.record.base_is_local


def test_base_of_passes_a_hub_id_on_as_an_id_and_a_local_folder_as_it_is(tmp_path, monkeypatch):
    # every full-mode fine-tune starts from a hub id: the survival check must not be skipped for it
    hub_base = tmp_path / "hub" / "snapshots" / "abc"
    hub_base.mkdir(parents=True)
    asked = _fake_hub(monkeypatch, {"unsloth/gemma-3-270m-it": hub_base})
    assert export.base_of(_record("unsloth/gemma-3-270m-it")) == hub_base
    assert asked == ["unsloth/gemma-3-270m-it"]
    local = tmp_path / "local-base"
    local.mkdir()
    assert export.base_of(_record(str(local))) == local and len(asked) == 1  # a local folder is never looked up
    with pytest.raises(FileNotFoundError, match="is gone: rebuild it"):
        export.base_of(_record(str(tmp_path / "gone")))  # a deleted folder: said, and no hub request
    assert len(asked) == 1 and export.base_of(None) is None  # a model with no manifest: nothing to compare


def test_an_adapter_alone_is_merged_into_the_base_its_manifest_names(tiny_hf, tmp_path, monkeypatch):
    # notebook 03 cut off after saving the adapter: the export merges it into the recorded hub base, and the merged
    # folder's manifest still names the base by its id (not by the cache folder it was downloaded to)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    snapshot = _hub_snapshot(tiny_hf, tmp_path / "hub" / "models--unsloth--gemma-3-270m-it")
    asked = _fake_hub(monkeypatch, {"unsloth/gemma-3-270m-it": snapshot})
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_hf),
                           LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    adapter = tmp_path / "outputs" / "chess" / "adapter"
    model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_hf).save_pretrained(adapter)
    provenance.write(adapter, _record("unsloth/gemma-3-270m-it", kind="adapter"))
    source = export.choose_source("unused", tmp_path / "outputs" / "chess", tmp_path / "work")
    assert source.folder == tmp_path / "work" / "merged-for-gguf" and source.finetune
    assert (source.folder / "config.json").exists() and asked == ["unsloth/gemma-3-270m-it"]
    record = provenance.read(source.folder)
    assert (record.kind, record.base, record.adapter) == ("merged", "unsloth/gemma-3-270m-it", str(adapter.resolve()))
    assert (record.data, record.steps) == ("3 puzzles", 2)  # what the adapter learned from travels with it


def test_converted_tokenizer_splits_text_like_transformers(tiny_hf, tiny_files):
    # the folder has tokenizer.json only (no SentencePiece model), so the converter writes a BPE vocabulary with a
    # pre-tokenizer it recognises by hash: check it on awkward text, not only on chat prompts
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_hf)
    llm = Llama(tiny_files["q8_0"].path, vocab_only=True, verbose=False)
    texts = list(parity.PARITY_TEXTS) + ["  two  spaces\tand\ttabs\n\n\nthree newlines", "日本語 and emoji 🎉",
                                         "x = {'a': [1,2,3]}  # c\n    indented", "1234567890 3.14159 1e-5"]
    for text in texts:
        assert llm.tokenize(text.encode(), add_bos=True, special=True) == tokenizer(text)["input_ids"], text


def _fake_hub(monkeypatch, repos: dict[str, Path]) -> list[str]:
    """huggingface_hub.snapshot_download answering from local folders laid out like the hub cache; returns the ids
    asked for. Unknown ids raise RepositoryNotFoundError, as the hub does."""
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    asked = []

    def snapshot_download(repo_id, allow_patterns=None, **kwargs):
        asked.append(repo_id)
        if repo_id not in repos:
            import httpx

            request = httpx.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
            raise RepositoryNotFoundError(f"404: {repo_id}", response=httpx.Response(404, request=request))
        return str(repos[repo_id])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return asked


def _hub_snapshot(src: Path, cache: Path) -> Path:
    """src's files as the hub cache stores them: content-named blobs, and a snapshot folder of symlinks to them."""
    import hashlib

    snapshot = cache / "snapshots" / "0123abcd"
    (cache / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for f in src.iterdir():
        blob = cache / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, blob)
        (snapshot / f.name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot


def test_hub_model_exports_end_to_end(tiny_hf, tmp_path, monkeypatch):
    # full mode exports unsloth/gemma-3-270m-it: a hub snapshot (symlinks to content-named blobs) goes through the
    # converter, which checks its architecture and tokenizer, and the GGUF computes what transformers computes
    monkeypatch.setenv("GEMMA_OUTPUT", str(tmp_path / "outputs"))
    snapshot = _hub_snapshot(tiny_hf, tmp_path / "hub" / "models--unsloth--gemma-3-270m-it")
    _fake_hub(monkeypatch, {"unsloth/gemma-3-270m-it": snapshot})
    chosen = export.choose_source("unsloth/gemma-3-270m-it", tmp_path / "outputs" / "chess")
    source = chosen.folder
    assert source == snapshot and chosen.what.startswith("unsloth/gemma-3-270m-it") and chosen.record is None
    files = export.export_gguf(source, tmp_path / "gguf", ("f16",))
    info = export.read_gguf(files["f16"].path)
    assert info.architecture == "gemma3" and info.chat_template == CHAT_TEMPLATE
    assert all(p.is_symlink() for p in snapshot.iterdir())  # the hub cache was not touched
    model, tokenizer = parity.load_reference(source)
    streams = parity.token_streams(tokenizer, 40)
    result = parity.parity(files["f16"].path, "f16", parity.reference_logits(model, streams), streams)
    assert result.top1_agreement >= 0.97, result


def test_vision_export_is_opt_in_with_its_cost(monkeypatch):
    from gemma_helpers import env

    monkeypatch.delenv("GEMMA_EXPORT_VISION", raising=False)
    on_gpu = env.build_config(env.FULL, "test", has_cuda=True).export.vision_export
    assert not on_gpu and "8.6 GB" in on_gpu.reason and "GEMMA_EXPORT_VISION=1" in on_gpu.reason
    assert not env.build_config(env.SMOKE, "test").export.vision_export
    monkeypatch.setenv("GEMMA_EXPORT_VISION", "1")
    assert env.build_config(env.FULL, "test", has_cuda=True).export.vision_export
    assert not env.build_config(env.SMOKE, "test").export.vision_export  # smoke mode stays offline


def test_export_run_chains_notebook_01s_steps_from_the_manifest(tiny_hf, tmp_path):
    # a "fine-tune" identical to its base: every file must agree with both, and the run must say it took the chess model
    from types import SimpleNamespace

    merged = tmp_path / "outputs" / "chess" / "merged-16bit"
    shutil.copytree(tiny_hf, merged)
    provenance.write(merged, _record(str(tiny_hf)))
    settings = SimpleNamespace(model="unused-when-03-ran", quant_types=("f16",), parity_positions=40)
    result = export.run(settings, tmp_path / "gguf", merged.parent)
    assert result.source.finetune and result.source.folder == merged and list(result.files) == ["f16"]
    assert result.parity.results["f16"].positions == 40 and result.parity.results["f16"].top1_agreement >= 0.97
    (row,) = result.survival
    assert row["agreement with the base %"] == row["agreement with the fine-tune %"] >= 97
    assert [r["quant"] for r in result.phones] == ["f16"]


def test_tool_output_goes_to_the_log_at_both_levels_even_when_python_streams_are_a_notebooks(tmp_path, monkeypatch):
    """In a notebook, sys.stderr is the kernel's stream, not file descriptor 2; llama-cpp-python's log callback prints
    llama.cpp's lines there. Both levels go to the log inside the block, and nothing reaches the streams."""
    import io
    import os
    import sys

    from gemma_helpers.gguf_files import tool_output_to

    kernel_out, kernel_err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", kernel_out)
    monkeypatch.setattr(sys, "stderr", kernel_err)
    log = tmp_path / "tool.log"
    with tool_output_to(log):
        print("llama_model_loader: a python-level line", file=sys.stderr)
        print("a stdout line")
        os.write(2, b"a C-level line\n")
    print("after the block")
    text = log.read_text()
    assert "python-level line" in text and "a stdout line" in text and "C-level line" in text
    assert kernel_err.getvalue() == "" and kernel_out.getvalue() == "after the block\n"
