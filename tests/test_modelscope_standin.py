"""GEMMA_HUB=modelscope against the real ModelScope SDK and a loopback stand-in of the endpoints it calls.

`scripts/hub_standin/serve_modelscope.py` serves the Hub stand-in's folders under the ModelScope ids that
`gemma_helpers.sources.MODEL_TWINS` maps. The SDK keeps one configuration per process (MODELSCOPE_ENDPOINT and
MODELSCOPE_CACHE are read once), so every download runs in a child Python with its own endpoint, cache and home.
The loaders never learn where a folder came from: `sources.model_path` hands them a local folder.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from script_loader import load_script
from standin_http import get as _get

pytest.importorskip("modelscope", reason="the ModelScope SDK is pinned in requirements.txt: run make env")
msserve = load_script("scripts/hub_standin/serve_modelscope.py", "hub_standin_serve_modelscope")

HUB_ID = "unsloth/gemma-3-270m-it"  # what full mode's notebook 00 loads
MS_ID = "google/gemma-3-270m-it"  # its ModelScope twin, served from the folder of HUB_ID
UNMAPPED = "tiny-org/tiny-gemma"  # a folder the stand-in has, under an id the table does not map
SENTENCEPIECE = b"not a real SentencePiece file, but bytes to carry"


@pytest.fixture(scope="module")
def modelscope(tmp_path_factory):
    """(MODELSCOPE_ENDPOINT, ROOT, log path): the stand-in over a tiny Gemma 3 under HUB_ID and one unmapped folder."""
    from test_hub_server import _tiny_model

    root = tmp_path_factory.mktemp("standin")
    _tiny_model(root / "models" / HUB_ID)
    (root / "models" / HUB_ID / "tokenizer.model").write_bytes(SENTENCEPIECE)
    (root / "models" / HUB_ID / "added_tokens.json").write_text('{"<image_soft_token>": 262144}')
    _tiny_model(root / "models" / UNMAPPED)
    log = root.parent / "modelscope.log"
    with open(log, "w") as log_to, msserve.serving(root, log_to) as endpoint:
        yield endpoint, root, log


def run_child(code: str, endpoint: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`code` in a fresh Python with GEMMA_HUB=modelscope pointed at the stand-in; the Hub is unreachable there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELSCOPE_", "HF_", "GEMMA_HUB"))}
    env.update(GEMMA_HUB="modelscope", MODELSCOPE_ENDPOINT=endpoint, MODELSCOPE_CACHE=str(home / "cache"),
               MODELSCOPE_HOME=str(home / "home"), HF_HOME=str(home / "hf"), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def requests_in(log: Path, marker: str, wait_s: float = 5.0) -> list[str]:
    """The log's lines holding marker. The server writes a request's line after its answer has gone out, so a client
    can read the answer first: wait up to wait_s for a first match (0 for an assertion that there is none)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = [line for line in log.read_text().splitlines() if marker in line]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def test_the_real_sdk_downloads_a_mapped_model_that_transformers_loads(modelscope, tmp_path):
    endpoint, root, log = modelscope
    done = run_child("""
        import sys
        from pathlib import Path
        from gemma_helpers import models, sources, tokenizer_files
        print(sources.choose().describe())
        path = models.local_or_hub(sys.argv[1])  # what models.load, precision.check_dtypes and export open
        print(path)
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        print(AutoConfig.from_pretrained(path).model_type)
        AutoModelForCausalLM.from_pretrained(path)
        AutoTokenizer.from_pretrained(path)
        out = Path(sys.argv[2])
        out.mkdir()
        print(tokenizer_files.carry(sys.argv[1], out))  # a hub id: each file through sources.model_file
    """, endpoint, tmp_path, HUB_ID, str(tmp_path / "carried"))
    assert done.returncode == 0, done.stderr[-4000:]
    describe, path, model_type, carried = done.stdout.strip().splitlines()[-4:]
    assert describe == f"downloads from: modelscope ({endpoint}; GEMMA_HUB=modelscope; models via the ModelScope " \
                       "SDK, datasets from the Hub)"
    folder = Path(path)
    assert folder.is_relative_to(tmp_path / "cache") and folder.parts[-4:] == (
        "models", "google--gemma-3-270m-it", "snapshots", "master")  # the SDK's layout, under the twin's id
    served = sorted(p.relative_to(root / "models" / HUB_ID) for p in (root / "models" / HUB_ID).rglob("*")
                    if p.is_file())
    assert sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) == served
    for rel in served:
        assert (folder / rel).read_bytes() == (root / "models" / HUB_ID / rel).read_bytes()
    assert model_type == "gemma3_text"
    # special_tokens_map.json is not in this repository: model_file says None and carry skips it.
    assert carried == "['tokenizer.model', 'added_tokens.json']"
    assert (tmp_path / "carried" / "tokenizer.model").read_bytes() == SENTENCEPIECE
    assert requests_in(log, f"/api/v1/models/{MS_ID}/repo/files?Revision=master")
    assert requests_in(log, f"/api/v1/models/{MS_ID}/repo?Revision=master&FilePath=config.json -> 200")
    assert not requests_in(log, "UNKNOWN ROUTE", wait_s=0), "the SDK called a route the stand-in lacks"


def test_an_unmapped_id_gets_the_clear_error_and_the_stand_in_serves_only_the_table(modelscope, tmp_path):
    endpoint, _, log = modelscope
    done = run_child("""
        import sys
        from gemma_helpers import sources
        try:
            sources.model_path("ggml-org/gemma-3-270m-GGUF")
        except ValueError as err:
            print("refused:", err)
        from modelscope import snapshot_download
        snapshot_download(sys.argv[1])  # the SDK itself, past the table: the stand-in must say not found
    """, endpoint, tmp_path, UNMAPPED)
    assert "refused: ggml-org/gemma-3-270m-GGUF has no ModelScope id in gemma_helpers.sources.MODEL_TWINS; use " \
           "GEMMA_HUB=mirror" in done.stdout
    assert done.returncode != 0 and "404" in done.stderr and f"model {UNMAPPED} not found" in done.stderr
    assert requests_in(log, f"/api/v1/models/{UNMAPPED}/repo/files?Revision=master&Recursive=True -> 404")
    assert not requests_in(log, "ggml-org", wait_s=0)  # refused before the SDK was asked




def test_the_routes_answer_in_modelscopes_envelope(modelscope):
    endpoint, root, log = modelscope
    api = f"{endpoint}/api/v1/models/{MS_ID}"
    status, _, body = _get(f"{api}/revisions")
    data = json.loads(body)
    assert status == 200 and data["Success"] and data["Code"] == 200
    assert [b["Revision"] for b in data["Data"]["RevisionMap"]["Branches"]] == ["master"]
    assert data["Data"]["RevisionMap"]["Tags"] == []
    files = json.loads(_get(f"{api}/repo/files?Revision=master&Recursive=True")[2])["Data"]["Files"]
    config = next(f for f in files if f["Path"] == "config.json")
    assert config["Type"] == "blob" and config["Size"] == (root / "models" / HUB_ID / "config.json").stat().st_size
    assert len(config["Sha256"]) == 64 and config["IsLFS"] is False
    assert next(f for f in files if f["Path"] == "model.safetensors")["IsLFS"] is True
    status, headers, part = _get(f"{api}/repo?Revision=master&FilePath=tokenizer.model", {"Range": "bytes=4-7"})
    assert (status, part, headers["Content-Range"]) == (206, SENTENCEPIECE[4:8], f"bytes 4-7/{len(SENTENCEPIECE)}")
    assert _get(f"{api}/repo?Revision=v9&FilePath=config.json")[0] == 404
    status, _, body = _get(f"{endpoint}/api/v1/datasets/{MS_ID}/repo/tree")
    assert status == 404 and json.loads(body)["Success"] is False
    assert requests_in(log, "/api/v1/datasets/")[-1].endswith("-> 404  UNKNOWN ROUTE")


def test_each_modelscope_id_is_served_from_the_first_built_twin(tmp_path):
    build = load_script("scripts/hub_standin/build.py", "hub_standin_build")
    for repo in (*build.TEXT_MODELS, *build.VISION_MODELS):
        (tmp_path / "models" / repo).mkdir(parents=True)
    (tmp_path / "models" / "LLM-Research" / "gemma-3-1b-it").mkdir(parents=True)  # a ModelScope name is no hub id
    served = {ms: hub for ms, (hub, _) in msserve.folders(tmp_path).items()}
    assert served == {"google/gemma-3-270m-it": "unsloth/gemma-3-270m-it",
                      "LLM-Research/gemma-3-1b-it": "unsloth/gemma-3-1b-it",
                      "LLM-Research/gemma-3-4b-it": "unsloth/gemma-3-4b-it",
                      "LLM-Research/gemma-3-4b-pt": "unsloth/gemma-3-4b-pt"}
