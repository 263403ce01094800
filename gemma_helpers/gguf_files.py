"""GGUF files: write them with llama.cpp's own converter and quantizer, read their header, fingerprint their source.

* :func:`to_gguf`: a Hugging Face folder -> GGUF with **llama.cpp's converter** (``convert_hf_to_gguf.py`` and its
  ``gguf-py``, unpacked once from the llama-cpp-python sdist into a cache folder) at f32 / f16 / bf16 / q8_0, with
  the chat template and the name (``general.*`` keys) you give it; ``mmproj=True`` writes a vision model's
  projector file instead. :func:`check_tokenizer_files` first says which tokenizer file a folder lacks, and how to
  fix it, where the converter would stop inside an assertion.
* Tools' logs (the converter's and quantizer's per-tensor lines) go to a log file, not the notebook: a failure
  raises with the log's tail and its path.
* :func:`quantize`: llama.cpp's quantizer (``llama_model_quantize``: Q4_K_M and friends), through llama-cpp-python.
* :func:`write_ggufs`: several quant types at once, cached in a folder whose ``export.json`` names the source.
* :func:`read_gguf`: a GGUF's facts (tensor bytes, types, chat template, name and tokenizer keys) in well under a
  second, or a clear :class:`GGUFError` for a damaged or truncated file; :func:`sha256` to check a copy.

Self-contained: copy this file alone into another project (it needs the ``gguf`` package to read tensor types,
llama-cpp-python to quantize, and pip to fetch the converter once). Not named ``gguf.py``, which would hide that
package when copied.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The sdist that carries llama.cpp's converter (scripts/setup_env.sh downloads it). A copy of pins.toml's
# llama-cpp-python, typed here so that this file works copied alone; tests/test_pins.py keeps the two equal.
LLAMA_CPP_PYTHON = "0.3.36"
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")  # written by convert_hf_to_gguf.py directly
QUANTIZER_TYPES = {"q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama_ftype values for llama_model_quantize
GGUF_MAGIC = b"GGUF"


class GGUFError(ValueError):
    """A file that is not a complete, readable GGUF."""


def default_cache() -> Path:
    """Where the converter is unpacked: GEMMA_CACHE, else ~/.cache/gemma_curriculum."""
    return Path(os.environ.get("GEMMA_CACHE", Path.home() / ".cache" / "gemma_curriculum")).expanduser()


# ------------------------------------------------------------------------------------------------ converting


def converter_dir(cache: str | Path | None = None) -> Path:
    """llama.cpp's converter (script, conversion/ package, gguf-py), unpacked once from the llama-cpp-python sdist
    into `cache` (default: :func:`default_cache`)."""
    cache = Path(cache) if cache is not None else default_cache()
    target = cache / f"llama.cpp-converter-{LLAMA_CPP_PYTHON}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    sdist = cache / "sdist" / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
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


def _added_tokens_decoder(sentencepiece_file: Path) -> dict[str, dict[str, Any]]:
    """tokenizer_config.json's ``added_tokens_decoder`` for a SentencePiece file's control and user-defined pieces,
    as the released Gemma 3 files list them. The converter reads user-defined pieces (newlines, tabs, runs of spaces)
    from there, writing their U+2581 as spaces so llama.cpp matches them in raw text; transformers 5 no longer
    writes the key, and without it llama.cpp would tokenize whitespace runs differently from transformers."""
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    model = sp_pb2.ModelProto()
    model.ParseFromString(sentencepiece_file.read_bytes())
    kinds = {sp_pb2.ModelProto.SentencePiece.CONTROL: True, sp_pb2.ModelProto.SentencePiece.USER_DEFINED: False}
    return {str(i): {"content": p.piece, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                     "special": kinds[p.type]} for i, p in enumerate(model.pieces) if p.type in kinds}


def _work_folder(hf_dir: Path, template: str | None, license: str | None, work: Path) -> Path:
    """A folder of links to hf_dir's files, as the converter should read them; the source folder is not touched:
    the chat template is `template` (None: the folder's own), the model card says `license` (the converter reads
    ``general.license`` from README.md's front matter, not from --metadata), and tokenizer_config.json lists the
    SentencePiece file's added tokens where it does not (:func:`_added_tokens_decoder`)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    replaced = {"README.md"} if license else set()
    replaced |= {"tokenizer_config.json"} | ({"chat_template.jinja", "chat_template.json"} if template else set())
    for f in hf_dir.iterdir():
        if f.name not in replaced:
            (work / f.name).symlink_to(f.resolve())
    if license:
        (work / "README.md").write_text(f"---\nlicense: {license}\n---\n")
    config_file = hf_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    if template is not None:
        config.pop("chat_template", None)  # it would win over chat_template.jinja
        (work / "chat_template.jinja").write_text(template)
    if (hf_dir / "tokenizer.model").is_file() and not config.get("added_tokens_decoder"):
        config["added_tokens_decoder"] = _added_tokens_decoder(hf_dir / "tokenizer.model")
    if config_file.exists() or config:
        (work / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return work


class TokenizerFilesError(FileNotFoundError):
    """A model folder whose tokenizer files llama.cpp's converter cannot read (the message says which and the fix)."""


def _tokenizer_entries(hf_dir: Path) -> int:
    """The highest token id in tokenizer.json, plus one (its vocabulary and its added tokens)."""
    data = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [t["id"] for t in data.get("added_tokens", [])]
    return max(ids) + 1


def check_tokenizer_files(hf_dir: str | Path) -> None:
    """Raise TokenizerFilesError where the converter would fail on the folder's tokenizer, naming the missing file.

    With ``tokenizer.model`` (SentencePiece) the converter reads it, as for Google's own release. Without it, it reads
    tokenizer.json and asserts that every id is below the config's ``vocab_size``: a released Gemma 3 tokenizer
    holds 262,145 entries (``<image_soft_token>`` at 262144) for a vocab_size of 262,144, so the assertion fails."""
    hf_dir = Path(hf_dir)
    if (hf_dir / "tokenizer.model").is_file():
        return
    if not (hf_dir / "tokenizer.json").is_file():
        raise TokenizerFilesError(f"{hf_dir} has neither tokenizer.model nor tokenizer.json: copy the tokenizer files "
                                  "of the model it was made from into it (tokenizer.model, tokenizer.json, "
                                  "tokenizer_config.json, added_tokens.json, special_tokens_map.json)")
    config = json.loads((hf_dir / "config.json").read_text())
    vocab_size = config.get("vocab_size") or config.get("text_config", {}).get("vocab_size")
    entries = _tokenizer_entries(hf_dir)
    if vocab_size and entries > vocab_size:
        raise TokenizerFilesError(
            f"{hf_dir} has no tokenizer.model, and its tokenizer.json holds {entries:,} ids for a vocab_size of "
            f"{vocab_size:,} (the released Gemma 3 tokenizer adds <image_soft_token> at 262144): llama.cpp's "
            "converter would stop on an assertion. Copy tokenizer.model and added_tokens.json from the base model's "
            "folder (or its hub repo) into this folder, then export again.")


def _log_tail(log: Path, lines: int = 25) -> str:
    text = log.read_text(errors="replace").splitlines() if log.is_file() else []
    return "\n".join(text[-lines:])


def to_gguf(hf_dir: str | Path, out_file: str | Path, outtype: str = "f16", mmproj: bool = False,
            chat_template: str | None = None, cache: str | Path | None = None,
            metadata: dict[str, Any] | None = None, log: str | Path | None = None) -> Path:
    """Convert an HF folder with llama.cpp's convert_hf_to_gguf.py (f32, f16, bf16 or q8_0; mmproj: the projector).

    The GGUF carries `chat_template` when given, whatever the folder's tokenizer holds (None keeps the folder's), so
    llama.cpp, llama-server, Ollama and phone apps all format conversations the way the model was trained.
    `metadata` sets the converter's ``general.*`` keys (``general.name``, ``general.base_models``...: its
    ``--metadata`` file; ``general.license`` through a model card); without it the converter names the model after
    the folder. The converter's output is
    appended to `log` (default: out_file + ".log"); a failure raises with its tail."""
    if outtype not in CONVERTER_TYPES:
        raise ValueError(f"the converter writes {', '.join(CONVERTER_TYPES)}; quantize to {outtype!r} with quantize()")
    hf_dir, out_file = Path(hf_dir), Path(out_file)
    if not (hf_dir / "config.json").exists():
        raise FileNotFoundError(f"{hf_dir} is not a Hugging Face model folder (no config.json)")
    if not mmproj:
        check_tokenizer_files(hf_dir)
    conv = converter_dir(cache)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    log = Path(log) if log is not None else out_file.with_name(out_file.name + ".log")
    partial = out_file.with_name(out_file.name + ".partial")
    metadata = dict(metadata or {})
    license = metadata.pop("general.license", None)
    source = _work_folder(hf_dir, chat_template, license, Path(str(partial) + ".src"))
    cmd = [sys.executable, str(conv / "convert_hf_to_gguf.py"), str(source), "--outtype", outtype,
           "--outfile", str(partial)] + (["--mmproj"] if mmproj else [])
    if metadata:
        meta_file = Path(str(partial) + ".metadata.json")
        meta_file.write_text(json.dumps(metadata, indent=2))
        cmd += ["--metadata", str(meta_file)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(conv / "gguf-py"), os.environ.get("PYTHONPATH", "")]))
    with open(log, "a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    shutil.rmtree(source, ignore_errors=True)
    if metadata:
        meta_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}); the last lines of its log {log}:\n"
                           f"{_log_tail(log)}")
    written = partial
    if mmproj and not partial.exists():  # the converter prefixes "mmproj-" to the name it was given
        written = partial.with_name("mmproj-" + partial.name)
    written.rename(out_file)
    return out_file


class tool_output_to:  # noqa: N801  (a context manager, named for how it reads: `with tool_output_to(log):`)
    """Send this process's standard output and error to the end of a log file for the duration of the block: at the
    file-descriptor level (where llama.cpp's C code writes) and at Python's level too (``sys.stdout``/``sys.stderr``:
    llama-cpp-python's log callback prints llama.cpp's lines there, and in a notebook those are the kernel's streams,
    which do not go through file descriptor 2)."""

    def __init__(self, log: str | Path):
        self.log = Path(log)

    def __enter__(self) -> Path:
        sys.stdout.flush()
        sys.stderr.flush()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.log, "a")
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)
        self._streams = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self._file
        return self.log

    def __exit__(self, *exc) -> None:
        self._file.flush()
        sys.stdout, sys.stderr = self._streams
        for fd, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self._file.close()


def quantize(src: str | Path, dst: str | Path, qtype: str = "q4_k_m", threads: int = 0,
             log: str | Path | None = None) -> Path:
    """Quantize an f16/bf16/f32 GGUF with llama.cpp's quantizer (llama_model_quantize); its per-tensor lines go to
    `log` (default: dst + ".log"). The quantizer keeps the source's metadata (name, tokenizer, chat template)."""
    try:
        import llama_cpp
    except ImportError as err:
        raise ImportError("quantize() runs llama.cpp's quantizer through llama-cpp-python: pip install "
                          f"llama-cpp-python=={LLAMA_CPP_PYTHON} (gemma_helpers.llamacpp.ensure_llama_cpp does it)") \
            from err

    if qtype not in QUANTIZER_TYPES:
        raise ValueError(f"quantize() makes {', '.join(QUANTIZER_TYPES)}; {qtype!r} comes from to_gguf()")
    read_gguf(src)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = QUANTIZER_TYPES[qtype], threads
    partial = Path(str(dst) + ".partial")
    log = Path(log) if log is not None else Path(str(dst) + ".log")
    with tool_output_to(log):
        status = llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), params)
    if status != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {qtype}) returned {status}; the last lines of its log "
                           f"{log}:\n{_log_tail(log)}")
    return partial.rename(dst)


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class GGUFInfo:
    """What a GGUF holds: architecture, tensor bytes (read once per generated token), types, chat template, and its
    other metadata keys (``general.name``, ``tokenizer.ggml.model``...; arrays as "<array of N>")."""

    path: str
    file_bytes: int
    tensor_bytes: int
    n_tensors: int
    architecture: str
    tensor_types: dict[str, int]
    chat_template: str | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The model's name as apps list it (``general.name``)."""
        return self.metadata.get("general.name")


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
        raise GGUFError(f"{path} does not exist: export it first (write_ggufs)")
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
                    template if isinstance(template, str) else None,
                    {k: v for k, v in meta.items() if k != "tokenizer.chat_template"})


def check_metadata(info: GGUFInfo, expected: dict[str, Any] | None, sentencepiece: bool) -> None:
    """Raise GGUFError when a written GGUF lacks the name and base-model keys it was given (``general.base_models``
    becomes ``general.base_model.N.*``), or says another tokenizer type than its source's (SentencePiece: "llama")."""
    wanted = {k: v for k, v in (expected or {}).items() if k != "general.base_models"}
    for n, base in enumerate((expected or {}).get("general.base_models", [])):
        wanted.update({f"general.base_model.{n}.{k}": v for k, v in base.items()})
    if sentencepiece:
        wanted["tokenizer.ggml.model"] = "llama"
    wrong = {k: (info.metadata.get(k), v) for k, v in wanted.items() if info.metadata.get(k) != v}
    if wrong:
        raise GGUFError(f"{info.path} was written with other metadata than asked for (key: (found, wanted)): {wrong}")


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
    """One GGUF made by write_ggufs."""

    quant: str
    path: str
    size_bytes: int
    sha256: str
    seconds: float

    @property
    def size_mb(self) -> float:
        """Size in MB (10^6 bytes)."""
        return self.size_bytes / 1e6


def export_log(out_dir: str | Path, name: str = "model") -> Path:
    """Where write_ggufs appends the converter's and quantizer's output for the files it writes in out_dir."""
    return Path(out_dir) / f"{name}-export.log"


def source_fingerprint(hf_dir: str | Path, chat_template: str | None = None) -> str:
    """A short id of an HF folder (config, weights' names, sizes, mtimes) and of the chat template written into the
    GGUF: changes with them."""
    hf_dir = Path(hf_dir)
    digest = hashlib.sha256((hf_dir / "config.json").read_bytes() + (chat_template or "").encode())
    for f in sorted(hf_dir.glob("*.safetensors")) + sorted(hf_dir.glob("tokenizer*")):
        stat = f.stat()
        digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def write_ggufs(hf_dir: str | Path, out_dir: str | Path, quant_types: Sequence[str] = ("f16", "q8_0", "q4_k_m"),
                name: str = "model", reuse: bool = True, chat_template: str | None = None,
                cache: str | Path | None = None, metadata: dict[str, Any] | None = None) -> dict[str, ExportedFile]:
    """Write name-<quant>.gguf for each quant type (carrying `chat_template` and the ``general.*`` `metadata` when
    given, each file checked for them once written); files from an earlier run on the same source, template and
    metadata are reused. The tools' logs go to out_dir/name-export.log (:func:`export_log`)."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_file = out_dir / "export.json"
    log = export_log(out_dir, name)
    sentencepiece = (hf_dir / "tokenizer.model").is_file()
    fingerprint = source_fingerprint(hf_dir, (chat_template or "") + json.dumps(metadata or {}, sort_keys=True))
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
            to_gguf(hf_dir, path, quant, chat_template=chat_template, cache=cache, metadata=metadata, log=log)
        else:
            quantize(out[("f16")].path, path, quant, log=log)
        check_metadata(read_gguf(path), metadata, sentencepiece)
        out[quant] = ExportedFile(quant, str(path), path.stat().st_size, sha256(path), round(time.time() - started, 1))
        files[quant] = asdict(out[quant])
        manifest_file.write_text(json.dumps(manifest, indent=2))
    return {q: out[q] for q in quant_types}
