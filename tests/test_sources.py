"""GEMMA_HUB: its parsing and errors, the ModelScope table's completeness, and that the loaders get what it says."""

import re
from pathlib import Path

import pytest

from gemma_helpers import catalog, sources
from gemma_helpers.env import FULL, SMOKE, build_config

ROOT = Path(__file__).resolve().parent.parent


def test_default_is_the_hub():
    src = sources.choose({})
    assert (src.name, src.endpoint) == ("hub", "https://huggingface.co")
    assert src.describe().startswith("downloads from: hub (https://huggingface.co; GEMMA_HUB unset")


def test_mirror_needs_hf_endpoint_and_names_an_example():
    with pytest.raises(ValueError, match=r"HF_ENDPOINT=https://hf-mirror\.com"):
        sources.choose({"GEMMA_HUB": "mirror"})
    with pytest.raises(ValueError, match="is not a URL"):
        sources.choose({"GEMMA_HUB": "mirror", "HF_ENDPOINT": "hf-mirror.com"})
    src = sources.choose({"GEMMA_HUB": " Mirror ", "HF_ENDPOINT": "https://hf-mirror.com/"})
    assert (src.name, src.endpoint) == ("mirror", "https://hf-mirror.com")


def test_unknown_value_lists_the_choices():
    with pytest.raises(ValueError, match="not one of hub, mirror, modelscope"):
        sources.choose({"GEMMA_HUB": "ms"})


def test_hub_and_mirror_hand_the_id_on_unchanged():
    env = {"GEMMA_HUB": "mirror", "HF_ENDPOINT": "http://127.0.0.1:1"}
    assert sources.model_path("unsloth/gemma-3-270m-it", env) == "unsloth/gemma-3-270m-it"
    assert sources.dataset_source("cais/mmlu", env) == "cais/mmlu from http://127.0.0.1:1"


def test_modelscope_endpoint_is_read_as_the_sdk_reads_it():
    assert sources.choose({"GEMMA_HUB": "modelscope"}).endpoint == "https://modelscope.cn"
    assert sources.modelscope_endpoint({"MODELSCOPE_DOMAIN": "www.modelscope.ai"}) == "https://www.modelscope.ai"
    both = {"MODELSCOPE_ENDPOINT": "http://127.0.0.1:8/", "MODELSCOPE_DOMAIN": "www.modelscope.ai"}
    assert sources.modelscope_endpoint(both) == "http://127.0.0.1:8"  # MODELSCOPE_ENDPOINT first, as HubConfig


def test_modelscope_without_the_sdk_names_the_pinned_install(monkeypatch):
    """The real SDK's downloads: tests/test_modelscope_standin.py. Here: what a machine without it is told."""
    import sys

    from gemma_helpers import envcheck

    monkeypatch.setitem(sys.modules, "modelscope", None)  # import modelscope now raises ImportError
    with pytest.raises(ImportError, match=f"pip install modelscope=={envcheck.pinned('modelscope')} "):
        sources.model_path("unsloth/gemma-3-4b-it", {"GEMMA_HUB": "modelscope"})
    with pytest.raises(ValueError, match="no ModelScope id"):  # the table is asked first, SDK or not
        sources.model_file("ggml-org/gemma-3-270m-GGUF", "x.gguf", {"GEMMA_HUB": "modelscope"})


def test_model_file_goes_to_the_hub_unless_modelscope(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    def fake(repo_id, filename):
        if filename == "absent.json":
            raise EntryNotFoundError("no such file")
        return str(tmp_path / f"{repo_id.replace('/', '--')}--{filename}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake)
    env = {"GEMMA_HUB": "mirror", "HF_ENDPOINT": "http://127.0.0.1:1"}
    assert sources.model_file("google/gemma-3-1b-it", "tokenizer.model", env) == \
        tmp_path / "google--gemma-3-1b-it--tokenizer.model"
    assert sources.model_file("google/gemma-3-1b-it", "absent.json", env) is None


def test_model_folder_downloads_a_snapshot_unless_modelscope(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: str(tmp_path / repo_id))
    env = {"GEMMA_HUB": "mirror", "HF_ENDPOINT": "http://127.0.0.1:1"}
    assert sources.model_folder("unsloth/gemma-3-270m-it", env) == str(tmp_path / "unsloth/gemma-3-270m-it")
    monkeypatch.setattr(sources, "model_path", lambda hub_id, environ=None: f"ms:{hub_id}")
    assert sources.model_folder("unsloth/gemma-3-270m-it", {"GEMMA_HUB": "modelscope"}) == \
        "ms:unsloth/gemma-3-270m-it"


def test_modelscope_datasets_say_why_they_come_from_the_hub():
    line = sources.dataset_source("HuggingFaceM4/ChartQA", {"GEMMA_HUB": "modelscope"})
    assert line.startswith("HuggingFaceM4/ChartQA from https://huggingface.co: GEMMA_HUB=modelscope covers models")


def _curriculum_ids() -> set[str]:
    """Every hub model id the configurations and the catalog's text sizes name, and every dataset the loaders read."""
    ids = set()
    for mode in (SMOKE, FULL):
        text = repr(build_config(mode, has_cuda=False))
        ids |= set(re.findall(r"'((?:google|unsloth|ggml-org)/gemma-3-[\w.-]+)'", text))
    for size in ("270m", "1b", "4b"):
        hub = catalog.get_size(size).hub
        ids |= {hub["unsloth-it"], hub["google-it"], hub["google-pt"]}
    return ids


def test_every_model_the_curriculum_downloads_is_in_the_table():
    missing = _curriculum_ids() - set(sources.MODEL_TWINS)
    assert not missing, f"add these to sources.MODEL_TWINS with a cited ModelScope id (or mark unverified): {missing}"


def test_every_dataset_the_loaders_read_is_in_the_table():
    from gemma_helpers import charts, chess, text_benchmarks, visual_qa

    used = {chess.CHESS_INSTRUCT, charts.CHARTQA, visual_qa.DOCVQA, visual_qa.MATHVISTA, text_benchmarks.CAIS_MMLU}
    assert used == set(sources.DATASET_TWINS)


def test_verified_rows_cite_a_source_and_unverified_rows_carry_no_id():
    for twin in sources.MODEL_TWINS.values():
        assert twin.verified == (twin.modelscope_id is not None)
        assert twin.source


def test_docs_carry_the_table():
    assert sources.twins_markdown() in (ROOT / "docs" / "design.md").read_text()


def test_mirror_serves_a_model_and_a_dataset(tmp_path):
    """The Hub stand-in on its own port, reached as a mirror: GEMMA_HUB=mirror with HF_ENDPOINT pointing at it."""
    from test_hub_server import PLAIN, _datasets, _tiny_model, run_child, serve

    root = tmp_path / "mirror"
    _tiny_model(root / "models" / "tiny-org" / "tiny-gemma")
    _datasets(root / "datasets")
    with open(tmp_path / "mirror.log", "w") as log, serve.serving(root, log) as endpoint:
        out = run_child(f"""
            import os
            from pathlib import Path
            os.environ["GEMMA_HUB"] = "mirror"
            from datasets import load_dataset
            from huggingface_hub import snapshot_download
            from transformers import AutoModelForCausalLM
            from gemma_helpers import models, sources
            print(sources.choose().describe())
            path = models.local_or_hub("tiny-org/tiny-gemma")
            assert path == "tiny-org/tiny-gemma"
            AutoModelForCausalLM.from_pretrained(path)
            snap = Path(snapshot_download(path))
            assert (snap / "config.json").read_bytes() == Path("{root}/models/tiny-org/tiny-gemma/config.json").read_bytes()
            print(list(load_dataset("{PLAIN}", split="test")["n"]))
        """, endpoint, tmp_path / "hf")
    line, numbers = out.strip().splitlines()[-2:]
    assert line == f"downloads from: mirror ({endpoint}; GEMMA_HUB=mirror; models and datasets through HF_ENDPOINT)"
    assert numbers == "[7, 8, 9]"
    assert "tiny-org/tiny-gemma" in (tmp_path / "mirror.log").read_text()
