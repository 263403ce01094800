"""The curriculum's export lessons: which model to export (a manifest, never a guess), GGUF files, llama.cpp itself.

* :func:`choose_source`: what notebook 01 exports: notebook 03's chess fine-tune when its folder is there (read from
  its provenance.json; a missing or broken manifest is an error that says to run notebook 03), else the configured
  chat model, said so. :func:`base_of`: the model a fine-tune started from, from its manifest (a hub id is
  downloaded, a local folder used as it is).
* :func:`merge_lora`: fold a LoRA adapter into its base and save a plain Hugging Face folder, with its manifest.
* :func:`to_gguf`, :func:`export_gguf`: :mod:`gemma_helpers.gguf_files` with this curriculum's chat template and
  cache; :func:`read_gguf`, :func:`quantize`, :class:`GGUFError` and friends are that module's, re-exported here.
* :func:`run`: notebook 01's steps chained (source, files, parity, survival, phones) for a script or a test.
* :func:`ensure_llama_cpp`: llama-cpp-python (and its server's extras) where it is missing, as on Colab: a prebuilt
  CPU wheel from llama-cpp-python's own index, else a build from source; it says what it will do and what it costs
  before it starts, and does nothing where it is installed.

The check of an exported file against its source is :mod:`gemma_helpers.parity`; phones are :mod:`gemma_helpers.phone`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import provenance
from .env import cache_dir
from .gguf_files import (  # noqa: F401  (re-exported: the export lesson's names)
    CONVERTER_TYPES,
    GGUF_MAGIC,
    LLAMA_CPP_PYTHON,
    QUANTIZER_TYPES,
    ExportedFile,
    GGUFError,
    GGUFInfo,
    TokenizerFilesError,
    export_log,
    quantize,
    read_gguf,
    sha256,
    tool_output_to,
)
from .prompts import CHAT_TEMPLATE
from .tokenizer_files import SENTENCEPIECE, carry, saved_with_tokenizer_files

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


GEMMA_ID = re.compile(r"gemma-3-(\d+)([mb])(?:-(it|pt))?", re.IGNORECASE)
FINETUNES = {"chess_lesson": ("chess LoRA", "chess-lora"), "embedded_chat_dir": ("chat warm-up", "chat-warmup")}


def released_base(folder: str | Path | None, hub_id: str | None = None) -> str | None:
    """The released model a folder descends from: its manifest's base, followed through local folders (a fine-tune
    of the embedded model -> the embedded folder -> google/gemma-3-270m) to a hub id; `hub_id` when no manifest."""
    seen = 0
    while folder is not None and (Path(folder) / provenance.MANIFEST).is_file() and seen < 8:
        base = provenance.read(folder).base
        if not provenance.Provenance("converted", base, "").base_is_local:
            return base
        folder, seen = base, seen + 1
    return hub_id


def gguf_metadata(hf_dir: str | Path, hub_id: str | None = None) -> dict[str, Any]:
    """The ``general.*`` keys a GGUF of this folder carries, from its provenance: a name apps list ("Gemma 3 270M
    chess LoRA"), basename, size label, license, what the fine-tune is, and the released base model it started from
    (``general.base_model.0.*``). `hub_id`: the repo a folder without a manifest was downloaded from."""
    base = released_base(hf_dir, hub_id) or ""
    found = GEMMA_ID.search(base)
    size = f"{found.group(1)}{found.group(2).upper()}" if found else None
    variant = f" {found.group(3).upper()}" if found and found.group(3) else ""
    record = provenance.read(hf_dir) if (Path(hf_dir) / provenance.MANIFEST).is_file() else None
    finetune = next((v for k, v in FINETUNES.items() if record and k in record.made_by), None)
    base_name = f"Gemma 3 {size or ''}{variant}".replace("  ", " ").strip()
    meta: dict[str, Any] = {"general.name": base_name + (f" {finetune[0]}" if finetune else ""),
                            "general.basename": "gemma-3", "general.license": "gemma"}
    if size:
        meta["general.size_label"] = size
    if finetune:
        meta["general.finetune"] = finetune[1]
    if base:
        owner = base.split("/")[0]
        meta["general.base_models"] = [{"name": base_name, "organization": owner.capitalize(),
                                        "repo_url": f"https://huggingface.co/{base}"}]
    return meta


def to_gguf(hf_dir: str | Path, out_file: str | Path, outtype: str = "f16", mmproj: bool = False,
            chat_template: str | None = CHAT_TEMPLATE, hub_id: str | None = None) -> Path:
    """gguf_files.to_gguf with our chat template by default (None keeps the folder's), the name and base model from
    the folder's provenance (:func:`gguf_metadata`) and the curriculum's cache."""
    from . import gguf_files

    return gguf_files.to_gguf(hf_dir, out_file, outtype, mmproj=mmproj, chat_template=chat_template,
                              cache=cache_dir(), metadata=gguf_metadata(hf_dir, hub_id))


def export_gguf(hf_dir: str | Path | Source, out_dir: str | Path,
                quant_types: Sequence[str] = ("f16", "q8_0", "q4_k_m"), name: str = "gemma3-export",
                reuse: bool = True, hub_id: str | None = None) -> dict[str, ExportedFile]:
    """Write name-<quant>.gguf for each quant type with our chat template and the folder's name and base model
    (:func:`gguf_metadata`); an earlier run's files are reused. `hf_dir` may be a :class:`Source` (notebook 01's).
    The tools' logs go to ``gguf_files.export_log(out_dir, name)``, not to the screen."""
    from . import gguf_files

    if isinstance(hf_dir, Source):
        hf_dir, hub_id = hf_dir.folder, hub_id or hf_dir.hub_id

    return gguf_files.export_gguf(hf_dir, out_dir, quant_types, name=name, reuse=reuse, chat_template=CHAT_TEMPLATE,
                                  cache=cache_dir(), metadata=gguf_metadata(hf_dir, hub_id))


def merge_lora(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None) -> Path:
    """Merge a PEFT/Unsloth LoRA adapter into its base (fp32) and save model + tokenizer as one HF folder.

    The base is the adapter's manifest's (``base`` overrides it); the merged folder gets its own provenance.json.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter_dir} holds no adapter_config.json: pass the folder save_pretrained wrote")
    record = provenance.read(adapter_dir, "the lesson that saved this adapter (notebook 03 for the chess one)")
    base = base or record.base
    base_dir = base_of(record) if base == record.base else base
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir)
    saved_with_tokenizer_files(AutoTokenizer.from_pretrained(str(adapter_dir)), out_dir, adapter_dir)
    if not (out_dir / SENTENCEPIECE).is_file():  # an adapter saved before adapters carried it: from the base
        carry(base_dir, out_dir)
    provenance.write(out_dir, provenance.Provenance(
        kind="merged", base=base, adapter=str(adapter_dir.resolve()), data=record.data, steps=record.steps,
        dtype="float32", made_by="gemma_helpers.export.merge_lora", extra=record.extra))
    return out_dir


# ------------------------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class Source:
    """What an export lesson exports: the HF folder, a sentence saying what it is, and its manifest (None for a
    model this curriculum did not make, such as a hub checkpoint)."""

    folder: Path
    what: str
    record: provenance.Provenance | None
    finetune: bool  # True when it is notebook 03's chess fine-tune
    hub_id: str | None = None  # the repo it was downloaded from, when it came from the hub


CHESS_LESSON = "notebook 03 (03_finetune_chess_270m)"


def choose_source(model: str, chess_dir: str | Path, work_dir: str | Path | None = None) -> Source:
    """Notebook 03's chess fine-tune when `chess_dir` holds it (merged-16bit/, else adapter/ merged here into
    work_dir), read from its manifest; else `model` (a name models.resolve knows, a folder, or a hub id)."""
    from .chess_lesson import ADAPTER, MERGED

    chess_dir = Path(chess_dir)
    merged, adapter = chess_dir / MERGED, chess_dir / ADAPTER
    if merged.is_dir():
        record = provenance.read(merged, CHESS_LESSON)
        return Source(merged, f"the chess fine-tune from {CHESS_LESSON} ({merged}; base {record.base})", record, True)
    if adapter.is_dir():
        provenance.read(adapter, CHESS_LESSON)
        target = Path(work_dir or chess_dir) / "merged-for-gguf"
        merge_lora(adapter, target)
        record = provenance.read(target, CHESS_LESSON)
        return Source(target, f"the chess LoRA from {CHESS_LESSON} ({adapter}), merged into {record.base}", record,
                      True)
    from .models import resolve

    path = resolve(model)
    local = Path(path).exists()
    folder = Path(path) if local else download_model(path)
    record = provenance.read(folder) if (folder / provenance.MANIFEST).exists() else None
    return Source(folder, f"{model} (no chess fine-tune in {chess_dir}: run {CHESS_LESSON}, then this notebook "
                          "again, to export it instead)", record, False, None if local else path)


def base_of(record: provenance.Provenance | None) -> Path | None:
    """The folder of the model a manifest says this one started from: a local folder as it is, a hub id downloaded
    (once, into the Hugging Face cache); None when there is no manifest (nothing to compare)."""
    if record is None:
        return None
    if record.base_is_local:
        folder = Path(record.base).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"the base model {folder} named by the manifest is gone: rebuild it (for the "
                                    f"embedded model: python -m gemma_helpers.models), or run {CHESS_LESSON} again")
        return folder
    return download_model(record.base)


@dataclass(frozen=True)
class ExportLessonResult:
    """What notebook 01 made and measured: the source, its GGUF files, their parity with it, whether the
    fine-tune survived each file (None when there is no recorded base), and the phone table."""

    source: Source
    files: dict[str, ExportedFile]
    parity: Any  # parity.ParityCheck
    survival: list[dict[str, Any]] | None
    phones: list[dict[str, Any]]
    seconds: float


def run(settings, out_dir: str | Path, chess_dir: str | Path) -> ExportLessonResult:
    """Notebook 01's steps for ExportSettings: choose the source (notebook 03's manifest, else settings.model),
    write the GGUFs, hold each to the source, compare with the recorded base, size them for phones."""
    from . import parity, phone

    started = time.time()
    source = choose_source(settings.model, chess_dir, out_dir)
    files = export_gguf(source, out_dir, settings.quant_types)
    check = parity.check_files(source.folder, files, settings.parity_positions)
    base = base_of(source.record)
    survival = parity.survival_table(base, files, check) if base else None
    return ExportLessonResult(source, files, check, survival, phone.phone_table(files), time.time() - started)


MODEL_FILES = ("*.json", "*.safetensors", "*.model", "*.jinja")  # what the converter and transformers read


def download_model(repo_id: str) -> Path:
    """A hub model's snapshot folder (weights, config, tokenizer), downloaded once into the Hugging Face cache."""
    from huggingface_hub import snapshot_download

    from .sources import MODELSCOPE, choose, model_path

    if choose().name == MODELSCOPE:
        return Path(model_path(repo_id))
    return Path(snapshot_download(repo_id, allow_patterns=list(MODEL_FILES)))


def export_vision(model_id: str, out_dir: str | Path, quant: str = "q4_k_m") -> dict[str, Path]:
    """A vision Gemma 3 (4B and up) for llama.cpp: the language model as a GGUF plus its --mmproj projector (f16)."""
    local = Path(model_id).exists()
    hf_dir = Path(model_id) if local else download_model(model_id)
    out_dir = Path(out_dir)
    name = hf_dir.name.lower() if local else model_id.split("/")[-1].lower()
    hub_id = None if local else model_id
    files = export_gguf(hf_dir, out_dir, (quant,), name=name, hub_id=hub_id)
    mmproj = out_dir / f"mmproj-{name}-f16.gguf"
    if not mmproj.exists():
        to_gguf(hf_dir, mmproj, "f16", mmproj=True, hub_id=hub_id)
    return {"model": Path(files[quant].path), "mmproj": mmproj}


def vision_commands(model_gguf: str | Path, mmproj_gguf: str | Path, image: str = "chart.png") -> list[str]:
    """The llama.cpp command lines that load a vision GGUF with its projector (one-shot CLI, and the server)."""
    from .prompts import llama_cli_args

    sampling = " ".join(llama_cli_args())
    return [f"llama-mtmd-cli -m {model_gguf} --mmproj {mmproj_gguf} --image {image} "
            f"-p 'What is the largest bar?' {sampling}",
            f"llama-server -m {model_gguf} --mmproj {mmproj_gguf} --host 127.0.0.1 --port 8080 --jinja {sampling}"]
