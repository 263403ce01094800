"""The curriculum's export lessons: which model to export (a manifest, never a guess), GGUF files, llama.cpp itself.

* :func:`choose_source`: what notebook 01 exports: notebook 03's chess fine-tune when its folder is there (read from
  its provenance.json; a missing or broken manifest is an error that says to run notebook 03), else the configured
  chat model, said so. :func:`base_of`: the model a fine-tune started from, from its manifest (a hub id is
  downloaded, a local folder used as it is).
* :func:`merge_lora`: fold a LoRA adapter into its base and save a plain Hugging Face folder, with its manifest.
* :func:`gguf_name`: a GGUF's file name and the name inside it, both from the model's provenance, in one place.
* :func:`export_gguf`: the files of several quant types so named, with this curriculum's chat template and cache
  (:func:`gemma_helpers.gguf_files.write_ggufs` writes them); :func:`read_gguf`, :func:`quantize`,
  :class:`GGUFError` and friends are that module's, re-exported here.
* :func:`run`: notebook 01's steps chained (source, files, parity, survival, phones) for a script or a test.
* ``ensure_llama_cpp``, ``import_llama_cpp`` and the other installing names are :mod:`gemma_helpers.llamacpp`'s,
  re-exported here for one release (notebooks and learners' copies called them as ``export.ensure_llama_cpp``).

The check of an exported file against its source is :mod:`gemma_helpers.parity`; phones are :mod:`gemma_helpers.phone`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import gguf_files, parity, phone, provenance
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
from .llamacpp import (  # noqa: F401  (re-exported for one release: llamacpp is their home)
    LLAMA_CPP_WHEELS,
    SERVER_EXTRAS,
    InstallStep,
    build_minutes,
    ensure_llama_cpp,
    import_llama_cpp,
    installed_llama_cpp,
    llama_cpp_plan,
    missing_server_extras,
)
from .models import resolve
from .prompts import CHAT_TEMPLATE, llama_cli_args
from .sources import MODELSCOPE, choose, model_path
from .tokenizer_files import SENTENCEPIECE, carry, saved_with_tokenizer_files

# ------------------------------------------------------------------------------------------------ converting


GEMMA_ID = re.compile(r"gemma-3-(\d+)([mb])(?:-(it|pt))?", re.IGNORECASE)


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


@dataclass(frozen=True)
class GGUFName:
    """What the GGUF files of one model are called, outside and inside, both from its provenance (:func:`gguf_name`):
    the file name's stem (``gemma-3-270m-chess-lora``: each file is ``<stem>-<quant>.gguf``) and the ``general.*``
    keys written into each file (``general.name`` "Gemma 3 270M chess LoRA", the one apps list, and the rest)."""

    stem: str
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        """The name apps and Ollama list: the file's ``general.name``."""
        return self.metadata["general.name"]

    def file(self, quant: str) -> str:
        """The file name of one quant type: gemma-3-270m-chess-lora-q8_0.gguf."""
        return f"{self.stem}-{quant}.gguf"

    def log(self, out_dir: str | Path) -> Path:
        """Where the converter's and quantizer's own output goes (a line per tensor), beside the files."""
        return export_log(out_dir, self.stem)


def gguf_name(model: str | Path | Source, hub_id: str | None = None) -> GGUFName:
    """The one place a GGUF's names are made, from the model folder's provenance: the released base it descends
    from (size and variant, ``general.base_model.0.*``) and what kind of fine-tune it is (the manifest's
    ``finetune``, recorded as data by whoever trained it), for the file name and the name inside alike.
    `model`: a folder, or a :class:`Source` (notebook 01's); `hub_id`: the repo a folder without a manifest was
    downloaded from. A folder with neither is named after itself, as llama.cpp's converter would name it."""
    if isinstance(model, Source):
        model, hub_id = model.folder, hub_id or model.hub_id
    folder = Path(model)
    base = released_base(folder, hub_id) or ""
    found = GEMMA_ID.search(base)
    size = f"{found.group(1)}{found.group(2).upper()}" if found else None
    variant = found.group(3).upper() if found and found.group(3) else ""
    record = provenance.read(folder) if (folder / provenance.MANIFEST).is_file() else None
    finetune = record.finetune if record else ""
    base_name = " ".join(word for word in ("Gemma 3", size, variant) if word)
    meta: dict[str, Any] = {"general.name": " ".join(w for w in (base_name, provenance.FINETUNES.get(finetune)) if w),
                            "general.basename": "gemma-3", "general.license": "gemma"}
    if size:
        meta["general.size_label"] = size
    if finetune:
        meta["general.finetune"] = finetune
    if base:
        owner = base.split("/")[0]
        meta["general.base_models"] = [{"name": base_name, "organization": owner.capitalize(),
                                        "repo_url": f"https://huggingface.co/{base}"}]
    words = ["gemma-3", size, variant, finetune] if size else [folder.name, finetune]
    stem = re.sub(r"[^a-z0-9._]+", "-", "-".join(w for w in words if w).lower()).strip("-")
    return GGUFName(stem, meta)


def export_gguf(model: str | Path | Source, out_dir: str | Path,
                quant_types: Sequence[str] = ("f16", "q8_0", "q4_k_m"), reuse: bool = True,
                hub_id: str | None = None) -> dict[str, ExportedFile]:
    """Write ``<stem>-<quant>.gguf`` for each quant type, named outside and inside by :func:`gguf_name` (from the
    model's provenance), with our chat template; an earlier run's files are reused. `model` may be a :class:`Source`
    (notebook 01's). The tools' logs go to ``gguf_name(model).log(out_dir)``, not to the screen. The writing itself
    is :func:`gemma_helpers.gguf_files.write_ggufs`, which a project without this curriculum can copy."""
    if isinstance(model, Source):
        model, hub_id = model.folder, hub_id or model.hub_id
    name = gguf_name(model, hub_id)
    return gguf_files.write_ggufs(model, out_dir, quant_types, name=name.stem, reuse=reuse,
                                  chat_template=CHAT_TEMPLATE, cache=cache_dir(), metadata=name.metadata)


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
        dtype="float32", made_by=provenance.MADE_BY_MERGE, finetune=record.finetune, extra=record.extra))
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


CHESS_LESSON = provenance.CHESS_LESSON  # provenance's; kept here for one release


def choose_source(model: str, chess_dir: str | Path, work_dir: str | Path | None = None) -> Source:
    """Notebook 03's chess fine-tune when `chess_dir` holds it (merged-16bit/, else adapter/ merged here into
    work_dir), read from its manifest; else `model` (a name models.resolve knows, a folder, or a hub id)."""
    chess_dir = Path(chess_dir)
    merged, adapter = chess_dir / provenance.MERGED, chess_dir / provenance.ADAPTER
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

    if choose().name == MODELSCOPE:
        return Path(model_path(repo_id))
    return Path(snapshot_download(repo_id, allow_patterns=list(MODEL_FILES)))


def export_vision(model_id: str, out_dir: str | Path, quant: str = "q4_k_m") -> dict[str, Path]:
    """A vision Gemma 3 (4B and up) for llama.cpp: the language model as a GGUF plus its --mmproj projector (f16),
    both named by :func:`gguf_name` (the projector ``mmproj-<stem>-f16.gguf``)."""
    local = Path(model_id).exists()
    hf_dir = Path(model_id) if local else download_model(model_id)
    out_dir = Path(out_dir)
    hub_id = None if local else model_id
    name = gguf_name(hf_dir, hub_id)
    files = export_gguf(hf_dir, out_dir, (quant,), hub_id=hub_id)
    mmproj = out_dir / f"mmproj-{name.file('f16')}"
    if not mmproj.exists():
        gguf_files.to_gguf(hf_dir, mmproj, "f16", mmproj=True, chat_template=CHAT_TEMPLATE, cache=cache_dir(),
                           metadata=name.metadata)
    return {"model": Path(files[quant].path), "mmproj": mmproj}


def vision_commands(model_gguf: str | Path, mmproj_gguf: str | Path, image: str = "chart.png") -> list[str]:
    """The llama.cpp command lines that load a vision GGUF with its projector (one-shot CLI, and the server)."""
    sampling = " ".join(llama_cli_args())
    return [f"llama-mtmd-cli -m {model_gguf} --mmproj {mmproj_gguf} --image {image} "
            f"-p 'What is the largest bar?' {sampling}",
            f"llama-server -m {model_gguf} --mmproj {mmproj_gguf} --host 127.0.0.1 --port 8080 --jinja {sampling}"]
