"""The loopback hub stand-in (`scripts/hub_standin/serve.py`) against the real client libraries.

`huggingface_hub` reads `HF_ENDPOINT` when it is imported, so every client check runs in a child Python process with
`HF_ENDPOINT` pointing at the server, a fresh `HF_HOME` and the offline switches unset. The repositories are tiny
and built here: a 2-layer Gemma 3, parquet datasets laid out as on the hub, a README with `configs:` the way
cais/mmlu declares its subjects, and an Image() column.
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

SERVE_PY = Path(__file__).resolve().parents[1] / "scripts" / "hub_standin" / "serve.py"
serve = load_script("scripts/hub_standin/serve.py", "hub_standin_serve")

MODEL = "tiny-org/tiny-gemma"
PLAIN = "tiny-org/plain-ds"
CONFIGS = "tiny-org/configs-ds"
IMAGES = "tiny-org/image-ds"
COLORS = [(255, 0, 0), (0, 128, 255), (10, 200, 30)]
CONFIGS_README = """\
---
configs:
- config_name: algebra
  data_files:
  - split: test
    path: algebra/test-*
- config_name: anatomy
  data_files:
  - split: test
    path: anatomy/test-*
---
# Two subjects, declared the way cais/mmlu declares its 57
"""


def _tiny_model(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3} | {f"w{i}": i for i in range(4, 300)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    ).save_pretrained(folder)
    config = Gemma3TextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64)
    Gemma3ForCausalLM(config).save_pretrained(folder)


def _datasets(root: Path) -> None:
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    plain = root / PLAIN / "data"
    Dataset.from_dict({"q": ["a", "b", "c", "d"], "n": [0, 1, 2, 3]}).to_parquet(plain / "train-00000-of-00001.parquet")
    Dataset.from_dict({"q": ["x", "y", "z"], "n": [7, 8, 9]}).to_parquet(plain / "test-00000-of-00001.parquet")
    for subject, rows in (("algebra", 2), ("anatomy", 5)):
        Dataset.from_dict({"question": [f"{subject} {i}" for i in range(rows)], "subject": [subject] * rows}).to_parquet(
            root / CONFIGS / subject / "test-00000-of-00001.parquet")
    (root / CONFIGS / "README.md").write_text(CONFIGS_README)
    images = [PILImage.new("RGB", (4, 3), c) for c in COLORS]
    features = Features({"image": Image(), "question": Value("string")})
    Dataset.from_dict({"image": images, "question": ["q0", "q1", "q2"]}, features=features).to_parquet(
        root / IMAGES / "data" / "test-00000-of-00001.parquet")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """(endpoint, ROOT, log path) of a server over the tiny repositories, shared by this module's tests."""
    root = tmp_path_factory.mktemp("hub")
    _tiny_model(root / "models" / MODEL)
    _datasets(root / "datasets")
    log = root.parent / "hub.log"
    with open(log, "w") as log_to, serve.serving(root, log_to) as endpoint:
        yield endpoint, root, log


def run_child(code: str, endpoint: str, hf_home: Path, *args: str) -> str:
    """Run `code` in a fresh Python against the server; fail with its stderr if it fails; return its stdout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_HOME")}
    # No HF_HUB_DISABLE_XET: the server never offers Xet, and these tests show the clients then do not try it.
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout




def test_hub_download_and_snapshot(hub, tmp_path):
    endpoint, root, _ = hub
    out = run_child("""
        import sys
        from pathlib import Path
        from huggingface_hub import hf_hub_download, snapshot_download
        root = Path(sys.argv[1])
        cfg = hf_hub_download("tiny-org/tiny-gemma", "config.json")
        assert Path(cfg).read_bytes() == (root / "models/tiny-org/tiny-gemma/config.json").read_bytes()
        pq = hf_hub_download("tiny-org/plain-ds", "data/test-00000-of-00001.parquet", repo_type="dataset")
        assert Path(pq).read_bytes() == (root / "datasets/tiny-org/plain-ds/data/test-00000-of-00001.parquet").read_bytes()
        snap = Path(snapshot_download("tiny-org/tiny-gemma"))
        print(sorted(p.name for p in snap.iterdir()))
        snap = Path(snapshot_download("tiny-org/configs-ds", repo_type="dataset"))
        print(sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()))
        print(snap.name)
        # What HfFileSystem (and so `datasets`) asks for: folder listings and paths-info.
        from huggingface_hub import HfApi, HfFileSystem
        infos = HfApi().get_paths_info("tiny-org/configs-ds", ["README.md", "algebra", "nope"], repo_type="dataset")
        print([(type(i).__name__, i.path) for i in infos])
        print(HfFileSystem().ls("datasets/tiny-org/configs-ds/anatomy", detail=False))
    """, endpoint, tmp_path / "hf", str(root))
    model_files, dataset_files, commit, infos, listing = out.strip().splitlines()
    assert "model.safetensors" in model_files and "tokenizer.json" in model_files
    assert json.loads(dataset_files.replace("'", '"')) == [
        "README.md", "algebra/test-00000-of-00001.parquet", "anatomy/test-00000-of-00001.parquet"]
    # The snapshot folder is named after the commit the server derives from the content.
    assert commit == serve.scan_repo(root / "datasets" / CONFIGS, CONFIGS).sha
    assert infos == "[('RepoFile', 'README.md'), ('RepoFolder', 'algebra')]"
    assert listing == "['datasets/tiny-org/configs-ds/anatomy/test-00000-of-00001.parquet']"


def test_transformers_loads_tiny_gemma(hub, tmp_path):
    endpoint, root, _ = hub
    out = run_child("""
        import sys, torch
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        config = AutoConfig.from_pretrained("tiny-org/tiny-gemma")
        tok = AutoTokenizer.from_pretrained("tiny-org/tiny-gemma")
        model = AutoModelForCausalLM.from_pretrained("tiny-org/tiny-gemma")
        saved = load_file(sys.argv[1] + "/models/tiny-org/tiny-gemma/model.safetensors")
        state = model.state_dict()
        assert all(torch.equal(state[k], v) for k, v in saved.items()), "weights differ from the served file"
        ids = tok("w5 w6")["input_ids"]
        logits = model(torch.tensor([ids])).logits
        print(config.model_type, config.num_hidden_layers, type(model).__name__, ids, tuple(logits.shape))
    """, endpoint, tmp_path / "hf", str(root))
    assert out.split() == ["gemma3_text", "2", "Gemma3ForCausalLM", "[5,", "6]", "(1,", "2,", "300)"]


def test_datasets_load_splits_configs_and_data_files(hub, tmp_path):
    endpoint, _, _ = hub
    out = run_child("""
        from datasets import load_dataset
        test = load_dataset("tiny-org/plain-ds", split="test")
        train = load_dataset("tiny-org/plain-ds", split="train")
        print(list(test["n"]), len(train))
        anatomy = load_dataset("tiny-org/configs-ds", "anatomy", split="test")
        algebra = load_dataset("tiny-org/configs-ds", "algebra", split="test")
        print(len(anatomy), set(anatomy["subject"]), len(algebra))
        only = load_dataset("tiny-org/plain-ds", data_files={"test": "data/test-*.parquet"}, split="test")
        print(list(only["q"]))
    """, endpoint, tmp_path / "hf")
    assert out.splitlines() == ["[7, 8, 9] 4", "5 {'anatomy'} 2", "['x', 'y', 'z']"]


def test_datasets_streaming_and_image_column(hub, tmp_path):
    endpoint, _, log = hub
    out = run_child("""
        from datasets import load_dataset
        stream = load_dataset("tiny-org/plain-ds", split="train", streaming=True)
        print([row["q"] for row in stream.take(2)])
        images = load_dataset("tiny-org/image-ds", split="test")
        print(images.features["image"].__class__.__name__, [im.size for im in images["image"]])
        print([images[i]["image"].convert("RGB").getpixel((1, 1)) for i in range(3)])
    """, endpoint, tmp_path / "hf")
    lines = out.splitlines()
    assert lines[0] == "['a', 'b']"
    assert lines[1] == "Image [(4, 3), (4, 3), (4, 3)]"
    assert lines[2] == str(COLORS)
    # Streaming reads the parquet through HTTP ranges, not a whole download.
    assert " -> 206" in log.read_text()


def test_not_found_errors_are_the_libraries_own(hub, tmp_path):
    endpoint, _, log = hub
    out = run_child("""
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download

        def error_of(call):
            try:
                call()
            except Exception as e:
                return type(e).__name__
            return "no error"

        print(error_of(lambda: hf_hub_download("tiny-org/missing", "config.json")))
        print(error_of(lambda: snapshot_download("tiny-org/missing")))
        print(error_of(lambda: hf_hub_download("tiny-org/tiny-gemma", "missing.json")))
        print(error_of(lambda: HfApi().model_info("tiny-org/tiny-gemma", revision="v9")))
        from transformers import AutoConfig
        print(error_of(lambda: AutoConfig.from_pretrained("tiny-org/missing")))
        from datasets import load_dataset
        print(error_of(lambda: load_dataset("tiny-org/missing", split="test")))
    """, endpoint, tmp_path / "hf")
    assert out.split() == ["RepositoryNotFoundError", "RepositoryNotFoundError", "RemoteEntryNotFoundError",
                           "RevisionNotFoundError", "OSError", "DatasetNotFoundError"]
    # Every route the libraries asked for is one the server knows (the last test asks for an unknown one on purpose).
    unknown = [line for line in log.read_text().splitlines() if "UNKNOWN ROUTE" in line]
    assert [line for line in unknown if "/api/spaces/" not in line] == []


def _last_log_line(log: Path, path: str, timeout: float = 10.0) -> str:
    """The log's last line about ``path``, once there is one: the server logs a request after answering it, so on a
    busy machine the client can read the answer before the server's thread has written the line, and an earlier
    request's thread can write its line after it (so the line about ``path`` need not be the last)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        about = [line for line in lines if path in line]
        if about or time.monotonic() > deadline:
            return about[-1] if about else (lines[-1] if lines else "")
        time.sleep(0.05)


def test_ranges_etags_and_unknown_routes(hub):
    endpoint, root, log = hub
    path = root / "models" / MODEL / "config.json"
    url = f"{endpoint}/{MODEL}/resolve/main/config.json"
    data = path.read_bytes()
    status, headers, body = _get(url, {"Range": "bytes=2-5"})
    assert (status, body, headers["Content-Range"]) == (206, data[2:6], f"bytes 2-5/{len(data)}")
    assert _get(url, {"Range": "bytes=-3"})[2] == data[-3:]
    assert _get(url, {"Range": f"bytes={len(data)}-"})[0] == 416
    assert _get(url, {"Range": "bytes=oops"})[0] == 416
    status, headers, body = _get(url)
    repo = serve.scan_repo(root / "models" / MODEL, MODEL)
    assert (status, body, headers["X-Repo-Commit"]) == (200, data, repo.sha)
    assert headers["ETag"] == f'"{repo.files["config.json"].blob_id}"'
    # LFS-stored files (weights, parquet) carry their sha256 as ETag, as on the hub.
    _, headers, _ = _get(f"{endpoint}/{MODEL}/resolve/main/model.safetensors", {"Range": "bytes=0-0"})
    assert headers["ETag"] == f'"{repo.files["model.safetensors"].sha256}"'
    status, headers, _ = _get(f"{endpoint}/api/spaces/{MODEL}")
    assert (status, headers["X-Error-Code"]) == (404, "RouteNotFound")
    assert "UNKNOWN ROUTE" in _last_log_line(log, "/api/spaces/")


def test_commit_sha_follows_content(tmp_path):
    repo = tmp_path / "models" / "o" / "n"
    repo.mkdir(parents=True)
    (repo / "a.txt").write_text("one")
    first = serve.scan_repo(repo, "o/n").sha
    assert serve.scan_repo(repo, "o/n").sha == first  # a restart keeps clients' caches valid
    (repo / "a.txt").write_text("three")  # another size: the hash cache is keyed by size and mtime
    assert serve.scan_repo(repo, "o/n").sha != first


def test_cli_announces_endpoint_and_port_file(hub, tmp_path):
    _, root, _ = hub
    port_file, log = tmp_path / "port", tmp_path / "cli.log"
    proc = subprocess.Popen([sys.executable, str(SERVE_PY), str(root), "--port-file", str(port_file), "--log", str(log)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()  # printed once listening, after the port file is in place
        assert line == f"HF_ENDPOINT=http://127.0.0.1:{port_file.read_text()}"
        status, _, body = _get(line.split("=", 1)[1] + f"/api/models/{MODEL}")
        assert status == 200 and json.loads(body)["id"] == MODEL
        assert f"GET /api/models/{MODEL} -> 200" in _last_log_line(log, f"/api/models/{MODEL}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert f"GET /api/models/{MODEL} -> 200" in log.read_text()
