"""From a (fine-tuned) Gemma 3 to GGUF files a phone or llama.cpp can run, checked against the model they came from.

* :func:`merge_lora`: fold a LoRA adapter into its base model and save a plain Hugging Face folder.
* :func:`to_gguf`: HF folder -> GGUF with **llama.cpp's own converter** (``convert_hf_to_gguf.py`` and ``gguf-py``,
  unpacked once from the llama-cpp-python sdist into the cache) at f32 / f16 / bf16 / q8_0; ``mmproj=True`` writes
  a vision model's projector file instead. :func:`quantize`: llama.cpp's quantizer (Q4_K_M and friends).
* :func:`export_gguf`: all the quant types at once, cached: a folder whose manifest names the same source is reused.
* :func:`read_gguf`: a GGUF's facts (tensor bytes, types, chat template), or a clear :class:`GGUFError`.
* :func:`choose_source`: what to export: notebook 03's chess model when it exists, else the configured model;
  :func:`base_model_of`: the model a fine-tune started from (a local folder or a hub id, downloaded).
* :func:`ensure_llama_cpp`: llama-cpp-python (and its server's extras) where it is missing, as on Colab: a prebuilt
  CPU wheel from llama-cpp-python's own index, else a build from source; it says what it will do and what it costs
  before it starts, and does nothing where it is installed.

The check of an exported file against its source is :mod:`gemma_helpers.parity`; phones are :mod:`gemma_helpers.phone`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .env import cache_dir
from .prompts import CHAT_TEMPLATE

LLAMA_CPP_PYTHON = "0.3.36"  # the sdist that carries llama.cpp's converter (scripts/setup_env.sh downloads it)
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")  # written by convert_hf_to_gguf.py directly
QUANTIZER_TYPES = {"q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama_ftype values for llama_model_quantize
GGUF_MAGIC = b"GGUF"


class GGUFError(ValueError):
    """A file that is not a complete, readable GGUF."""


# ------------------------------------------------------------------------------------------------ installing

LLAMA_CPP_WHEELS = "https://abetlen.github.io/llama-cpp-python/whl/cpu"  # llama-cpp-python's own CPU wheel index
# What `python -m llama_cpp.server` needs beyond llama-cpp-python (its [server] extras): pip name -> module imported.
SERVER_EXTRAS = {"uvicorn>=0.22.0": "uvicorn", "fastapi>=0.100.0": "fastapi", "pydantic-settings>=2.0.1":
                 "pydantic_settings", "sse-starlette>=1.6.1": "sse_starlette",
                 "starlette-context>=0.3.6,<0.4": "starlette_context", "PyYAML>=5.1": "yaml"}


@dataclass(frozen=True)
class InstallStep:
    """One way to install something, with what it does and what it costs, said before it runs."""

    what: str
    cost: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def build_minutes(cores: int) -> int:
    """Minutes to compile llama-cpp-python with `cores` compiler jobs (about 7 on 2 cores, like Colab's free CPU)."""
    return 10 // max(1, cores) + 2


def installed_llama_cpp() -> str | None:
    """The installed llama-cpp-python's version, or None."""
    from importlib import metadata

    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return None


def llama_cpp_plan(server: bool = False, installed: str | None = None, missing: Sequence[str] | None = None,
                   cores: int | None = None) -> list[InstallStep]:
    """How ensure_llama_cpp would install llama-cpp-python (and the server's extras when server=True): alternatives,
    the first that succeeds wins; [] when nothing is missing. Defaults read this Python."""
    installed = installed_llama_cpp() if installed is None else installed or None
    missing = (missing_server_extras() if missing is None else list(missing)) if server else []
    cores = cores or os.cpu_count() or 1
    pip = (sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check")
    if installed:
        if not missing:
            return []
        return [InstallStep(f"the OpenAI-compatible server's extras ({', '.join(p.split('>')[0] for p in missing)})",
                            "a few small pure-Python wheels, about 15 s", pip + tuple(missing))]
    wanted = f"llama-cpp-python{'[server]' if server else ''}=={LLAMA_CPP_PYTHON}"
    return [
        InstallStep(f"llama-cpp-python {LLAMA_CPP_PYTHON}, a prebuilt CPU wheel from its own index",
                    "a download of about 25 MB, about 20 s",
                    pip + ("--only-binary", "llama-cpp-python", "--extra-index-url", LLAMA_CPP_WHEELS, wanted)),
        InstallStep(f"llama-cpp-python {LLAMA_CPP_PYTHON}, built from source for this CPU (no prebuilt wheel here)",
                    f"about {build_minutes(cores)} min with {cores} compiler jobs, once per runtime",
                    pip + ("--no-binary", "llama-cpp-python", "--no-cache-dir", wanted),
                    (("CMAKE_ARGS", "-DGGML_NATIVE=OFF"), ("CMAKE_BUILD_PARALLEL_LEVEL", str(cores)))),
    ]


def ensure_llama_cpp(server: bool = False, run=subprocess.run) -> str:
    """Install llama-cpp-python (server=True: with its server's extras) where it is missing; nothing where it is there.

    Each way is printed with its cost before it starts: a prebuilt CPU wheel first, a build from source if none fits.
    llama.cpp then runs on the CPU, as it would on a laptop or a phone. Returns what was done."""
    import importlib

    steps = llama_cpp_plan(server)
    if not steps:
        done = f"llama-cpp-python {installed_llama_cpp()}{' and its server extras' if server else ''}: installed"
        print(done + ", nothing to do")
        return done
    errors = []
    for step in steps:
        print(f"installing {step.what}: {step.cost}...", flush=True)
        started = time.time()
        result = run(list(step.command), env=dict(os.environ, **dict(step.env)), capture_output=True, text=True)
        if result.returncode == 0:
            importlib.invalidate_caches()
            print(f"  done in {time.time() - started:.0f} s")
            return f"{step.what}: done in {time.time() - started:.0f} s"
        errors.append(f"{step.what}: pip said\n{(result.stderr or result.stdout)[-1500:]}")
        print(f"  not possible here ({time.time() - started:.0f} s)", flush=True)
    raise RuntimeError("could not install llama-cpp-python:\n" + "\n".join(errors))


def import_llama_cpp():
    """The llama_cpp module, or an ImportError that says how to get it (ensure_llama_cpp)."""
    try:
        import llama_cpp
    except ImportError as err:
        raise ImportError("llama-cpp-python is not installed here: run gemma_helpers.export.ensure_llama_cpp() "
                          "(a prebuilt CPU wheel, about 20 s)") from err
    return llama_cpp


def missing_server_extras() -> list[str]:
    """The [server] extras of llama-cpp-python that this Python lacks (pip requirement strings)."""
    import importlib.util

    return [pkg for pkg, module in SERVER_EXTRAS.items() if importlib.util.find_spec(module) is None]


# ------------------------------------------------------------------------------------------------ converting


def converter_dir() -> Path:
    """llama.cpp's converter (script, conversion/ package, gguf-py), unpacked once from the llama-cpp-python sdist."""
    target = cache_dir() / f"llama.cpp-converter-{LLAMA_CPP_PYTHON}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    sdist = cache_dir() / "sdist" / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(sdist.parent), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"], check=True)
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
    wanted = ("convert_hf_to_gguf.py", "LICENSE", "conversion/", "gguf-py/")
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()
                   and m.name[len(prefix):].startswith(wanted)]
        for member in members:
            member.name = member.name[len(prefix):]
        tar.extractall(work, members=members, filter="data")
    work.rename(target)
    return target


def merge_lora(adapter_dir: str | Path, out_dir: str | Path, base: str | Path | None = None) -> Path:
    """Merge a PEFT/Unsloth LoRA adapter into its base (fp32) and save model + tokenizer as one HF folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.exists():
        raise FileNotFoundError(f"{adapter_dir} holds no adapter_config.json: pass the folder save_pretrained wrote")
    base = base or json.loads(config_file.read_text())["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    (out_dir / "merged_from.json").write_text(json.dumps({"base": str(base), "adapter": str(adapter_dir)}, indent=2))
    tokenizer_src = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base
    AutoTokenizer.from_pretrained(str(tokenizer_src)).save_pretrained(out_dir)
    return out_dir


def _with_template(hf_dir: Path, template: str, work: Path) -> Path:
    """A folder of links to hf_dir's files whose chat template is `template` (the source folder is not touched)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for f in hf_dir.iterdir():
        if f.name not in ("chat_template.jinja", "chat_template.json", "tokenizer_config.json"):
            (work / f.name).symlink_to(f.resolve())
    config_file = hf_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    config.pop("chat_template", None)  # it would win over chat_template.jinja
    (work / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (work / "chat_template.jinja").write_text(template)
    return work


def to_gguf(hf_dir: str | Path, out_file: str | Path, outtype: str = "f16", mmproj: bool = False,
            chat_template: str | None = CHAT_TEMPLATE) -> Path:
    """Convert an HF folder with llama.cpp's convert_hf_to_gguf.py (f32, f16, bf16 or q8_0; mmproj: the projector).

    The GGUF carries `chat_template` (ours by default, whatever the folder's tokenizer holds; None keeps the folder's),
    so llama.cpp, llama-server, Ollama and phone apps all format conversations the way the model was trained."""
    if outtype not in CONVERTER_TYPES:
        raise ValueError(f"the converter writes {', '.join(CONVERTER_TYPES)}; quantize to {outtype!r} with quantize()")
    hf_dir, out_file = Path(hf_dir), Path(out_file)
    if not (hf_dir / "config.json").exists():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    conv = converter_dir()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    source = hf_dir if chat_template is None else _with_template(hf_dir, chat_template, Path(str(partial) + ".src"))
    cmd = [sys.executable, str(conv / "convert_hf_to_gguf.py"), str(source), "--outtype", outtype,
           "--outfile", str(partial)] + (["--mmproj"] if mmproj else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(conv / "gguf-py"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if source != hf_dir:
        shutil.rmtree(source, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    written = partial
    if mmproj and not partial.exists():  # the converter prefixes "mmproj-" to the name it was given
        written = partial.with_name("mmproj-" + partial.name)
    written.rename(out_file)
    return out_file


def quantize(src: str | Path, dst: str | Path, qtype: str = "q4_k_m", threads: int = 0) -> Path:
    """Quantize an f16/bf16/f32 GGUF with llama.cpp's quantizer (llama_model_quantize)."""
    llama_cpp = import_llama_cpp()

    if qtype not in QUANTIZER_TYPES:
        raise ValueError(f"quantize() makes {', '.join(QUANTIZER_TYPES)}; {qtype!r} comes from to_gguf()")
    read_gguf(src)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = QUANTIZER_TYPES[qtype], threads
    partial = Path(str(dst) + ".partial")
    status = llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), params)
    if status != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {qtype}) returned {status}")
    return partial.rename(dst)


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF holds: architecture, tensor bytes (read once per generated token), types, chat template."""

    path: str
    file_bytes: int
    tensor_bytes: int
    n_tensors: int
    architecture: str
    tensor_types: dict[str, int]
    chat_template: str | None


_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}  # GGUF value types


def _walk_header(buf: memoryview) -> tuple[dict[str, Any], list[tuple[str, int, int, int]], int]:
    """(metadata, [(tensor, type, elements, offset)], data start) from a GGUF header; big arrays are skipped."""
    import struct

    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return value[0] if len(value) == 1 else value

    def string() -> str:
        nonlocal pos
        n = take("Q")
        pos += n
        return bytes(buf[pos - n:pos]).decode("utf-8", errors="replace")

    def value(kind: int):
        nonlocal pos
        if kind == 8:
            return string()
        if kind == 9:
            item, n = take("I"), take("Q")
            if item in _SCALAR:
                pos += n * struct.calcsize(_SCALAR[item])  # token scores, types...: skipped, not needed here
            else:
                for _ in range(n):
                    value(item)
            return f"<array of {n}>"
        return take(_SCALAR[kind])

    if bytes(buf[:4]) != GGUF_MAGIC:
        raise GGUFError(f"not a GGUF file (starts with {bytes(buf[:4])!r}, not b'GGUF')")
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} is not one llama.cpp reads (2 or 3)")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string()
        meta[key] = value(take("I"))
    tensors = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        kind, offset = take("I"), take("Q")
        elements = 1
        for d in dims:
            elements *= d
        tensors.append((name, kind, elements, offset))
    align = int(meta.get("general.alignment", 32))
    return meta, tensors, (pos + align - 1) // align * align


def read_gguf(path: str | Path) -> GGUFInfo:
    """Read a GGUF's header and tensor table (in well under a second); a bad or truncated file raises GGUFError."""
    import struct

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"{path} does not exist: export it first (export.export_gguf)")
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"{path} is {size} bytes: too short to be a GGUF; delete it and re-export")
    chunk = 16 << 20  # a 262K-token vocabulary takes ~5 MB of header; read more only when needed
    while True:
        with open(path, "rb") as fh:
            head = fh.read(chunk)
        try:
            meta, tensors, data_start = _walk_header(memoryview(head))
            break
        except GGUFError as err:
            raise GGUFError(f"{path}: {err}; re-export it") from None
        except (struct.error, ValueError, KeyError, IndexError, UnicodeDecodeError) as err:
            if len(head) == chunk and chunk < size:
                chunk *= 4
                continue
            raise GGUFError(f"{path} is damaged or truncated in its header ({err}); delete it and re-export") from None
    types: dict[str, int] = {}
    tensor_bytes, end = 0, data_start
    for _name, kind, elements, offset in tensors:
        qtype = GGMLQuantizationType(kind)
        block, type_size = GGML_QUANT_SIZES[qtype]
        nbytes = elements // block * type_size
        tensor_bytes += nbytes
        end = max(end, data_start + offset + nbytes)
        types[qtype.name] = types.get(qtype.name, 0) + 1
    if end > size:
        raise GGUFError(f"{path} is truncated: its tensors need {end:,} bytes, the file has {size:,}; re-export it")
    template = meta.get("tokenizer.chat_template")
    return GGUFInfo(str(path), size, tensor_bytes, len(tensors), str(meta.get("general.architecture", "?")), types,
                    template if isinstance(template, str) else None)


def sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """The file's SHA-256 (to check a copy on the phone is the file you made)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ exporting


@dataclass(frozen=True)
class ExportedFile:
    """One GGUF made by export_gguf."""

    quant: str
    path: str
    size_bytes: int
    sha256: str
    seconds: float

    @property
    def size_mb(self) -> float:
        """Size in MB (10^6 bytes)."""
        return self.size_bytes / 1e6


def source_fingerprint(hf_dir: str | Path) -> str:
    """A short id of an HF folder (config, weights' names, sizes, mtimes) and of our chat template: changes with them."""
    hf_dir = Path(hf_dir)
    digest = hashlib.sha256((hf_dir / "config.json").read_bytes() + CHAT_TEMPLATE.encode())
    for f in sorted(hf_dir.glob("*.safetensors")) + sorted(hf_dir.glob("tokenizer*")):
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def export_gguf(hf_dir: str | Path, out_dir: str | Path, quant_types: Sequence[str] = ("f16", "q8_0", "q4_k_m"),
                name: str = "gemma3-export", reuse: bool = True) -> dict[str, ExportedFile]:
    """Write name-<quant>.gguf for each quant type; files from an earlier run on the same source are reused."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_file = out_dir / "export.json"
    fingerprint = source_fingerprint(hf_dir)
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    if manifest.get("source_fingerprint") != fingerprint or not reuse:
        manifest = {"source": str(hf_dir), "source_fingerprint": fingerprint, "files": {}}
    files = manifest["files"]
    unknown = [q for q in quant_types if q not in CONVERTER_TYPES and q not in QUANTIZER_TYPES]
    if unknown:
        raise ValueError(f"unknown quant types {unknown}: choose from {CONVERTER_TYPES + tuple(QUANTIZER_TYPES)}")
    # K-quants are made from the f16 file, so it is written first when any of them is wanted.
    order = sorted(set(quant_types) | ({"f16"} if set(quant_types) & set(QUANTIZER_TYPES) else set()),
                   key=lambda q: (q in QUANTIZER_TYPES, q != "f16"))
    out: dict[str, ExportedFile] = {}
    for quant in order:
        path = out_dir / f"{name}-{quant}.gguf"
        cached = files.get(quant)
        # compared by name: the same folder may be reached by another relative path (a notebook's cwd, a script's)
        if cached and Path(cached["path"]).name == path.name and path.exists() \
                and path.stat().st_size == cached["size_bytes"]:
            out[quant] = ExportedFile(**{**cached, "path": str(path)})
            continue
        started = time.time()
        if quant in CONVERTER_TYPES:
            to_gguf(hf_dir, path, quant)
        else:
            quantize(out[("f16")].path, path, quant)
        read_gguf(path)
        out[quant] = ExportedFile(quant, str(path), path.stat().st_size, sha256(path), round(time.time() - started, 1))
        files[quant] = asdict(out[quant])
        manifest_file.write_text(json.dumps(manifest, indent=2))
    return {q: out[q] for q in quant_types}


# ------------------------------------------------------------------------------------------------ sources


def find_chess_output(pattern: str = "chess") -> Path | None:
    """The newest merged model (config.json + safetensors) or LoRA adapter that notebook 03 left under the outputs."""
    from .env import output_dir

    root = output_dir(".").resolve()
    found = [p.parent for p in root.glob(f"{pattern}/**/adapter_config.json")]
    found += [p.parent for p in root.glob(f"{pattern}/**/config.json") if any(p.parent.glob("*.safetensors"))]
    found = [p for p in found if "checkpoint-" not in str(p)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def base_model_of(hf_dir: str | Path) -> Path | None:
    """The model a merged fine-tune started from, as a local folder: merged_from.json, train.json (the embedded chat
    model), or the adapter saved beside it (notebook 03 writes adapter/ next to merged-16bit/). A hub id there (every
    full-mode fine-tune starts from one, e.g. unsloth/gemma-3-270m-it) is downloaded; None when no record names one."""
    hf_dir = Path(hf_dir)
    recorded = []
    for name in ("merged_from.json", "train.json"):
        record = hf_dir / name
        if record.exists():
            recorded.append(json.loads(record.read_text()).get("base"))
    for adapter_config in sorted(hf_dir.parent.glob("*/adapter_config.json")):
        recorded.append(json.loads(adapter_config.read_text()).get("base_model_name_or_path"))
    for base in recorded:
        found = _local_or_hub(base) if base else None
        if found is not None:
            return found
    return None


def _local_or_hub(name: str) -> Path | None:
    """A folder for a model name: the local folder when it exists, else the hub repo's snapshot (downloaded once);
    None for a folder that is gone or a name the hub does not know."""
    if Path(name).expanduser().exists():
        return Path(name).expanduser()
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    if name.startswith(("/", ".", "~")) or name.count("/") != 1:
        return None  # a local path that no longer exists: not a hub id
    try:
        return download_model(name)
    except GatedRepoError:
        raise  # the learner must accept the licence or log in: say so, never skip quietly
    except (HFValidationError, RepositoryNotFoundError):
        return None


MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.jinja")  # what the converter and transformers read


def download_model(repo_id: str) -> Path:
    """A hub model's snapshot folder (weights, config, tokenizer), downloaded once into the Hugging Face cache."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, allow_patterns=list(MODEL_FILES)))


def choose_source(model: str, chess_pattern: str = "chess", work_dir: str | Path | None = None) -> tuple[Path, str]:
    """(HF folder to export, what it is): notebook 03's chess model when it exists (merged here if an adapter),
    else `model` (a name models.resolve knows, a local folder, or a hub id, downloaded)."""
    chess = find_chess_output(chess_pattern)
    if chess is not None:
        if (chess / "adapter_config.json").exists():
            merged = Path(work_dir or chess.parent) / "merged-for-gguf"
            if not (merged / "config.json").exists() or merged.stat().st_mtime < chess.stat().st_mtime:
                merge_lora(chess, merged)
            return merged, f"the chess LoRA from notebook 03 ({chess}), merged into its base"
        return chess, f"the chess model from notebook 03 ({chess})"
    from .models import resolve

    path = resolve(model)
    folder = Path(path) if Path(path).exists() else download_model(path)
    return folder, f"{model} (no chess fine-tune from notebook 03 yet: run 03, then this notebook again)"


def export_vision(model_id: str, out_dir: str | Path, quant: str = "q4_k_m") -> dict[str, Path]:
    """A vision Gemma 3 (4B and up) for llama.cpp: the language model as a GGUF plus its --mmproj projector (f16)."""
    hf_dir = Path(model_id) if Path(model_id).exists() else download_model(model_id)
    out_dir = Path(out_dir)
    name = hf_dir.name.lower() if Path(model_id).exists() else model_id.split("/")[-1].lower()
    files = export_gguf(hf_dir, out_dir, (quant,), name=name)
    mmproj = out_dir / f"mmproj-{name}-f16.gguf"
    if not mmproj.exists():
        to_gguf(hf_dir, mmproj, "f16", mmproj=True)
    return {"model": Path(files[quant].path), "mmproj": mmproj}


def vision_commands(model_gguf: str | Path, mmproj_gguf: str | Path, image: str = "chart.png") -> list[str]:
    """The llama.cpp command lines that load a vision GGUF with its projector (one-shot CLI, and the server)."""
    from .prompts import llama_cli_args

    sampling = " ".join(llama_cli_args())
    return [f"llama-mtmd-cli -m {model_gguf} --mmproj {mmproj_gguf} --image {image} "
            f"-p 'What is the largest bar?' {sampling}",
            f"llama-server -m {model_gguf} --mmproj {mmproj_gguf} --host 127.0.0.1 --port 8080 --jinja {sampling}"]
