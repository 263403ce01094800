"""Where models and data come from: the Hugging Face Hub, a mirror of it, or ModelScope (``GEMMA_HUB``).

From mainland China the Hub is often slow or blocked. One setting, read here and nowhere else, decides every
download the curriculum makes:

- ``hub`` (default): huggingface.co, as usual.
- ``mirror``: a mirror of the Hub at ``HF_ENDPOINT`` (e.g. https://hf-mirror.com); huggingface_hub, transformers
  and datasets all read that variable, so models and datasets come from the mirror with no other change.
- ``modelscope``: model repositories come from ModelScope's hub through its SDK into a local folder, and the loaders
  get that folder (they never learn where it came from). The SDK reads its own endpoint variable,
  ``MODELSCOPE_ENDPOINT`` (default https://modelscope.cn, where a repository missing there is looked up on
  https://www.modelscope.ai), and its cache folder, ``MODELSCOPE_CACHE``. Datasets have no ModelScope path here: they
  come from the Hub, or the mirror when ``HF_ENDPOINT`` is set, and :func:`dataset_source` says so.

CI downloads through the real SDK from a loopback stand-in of ModelScope's endpoints
(``scripts/hub_standin/serve_modelscope.py``), which serves only the ids :data:`MODEL_TWINS` maps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .envcheck import pinned
from .messages import say

HUB, MIRROR, MODELSCOPE = "hub", "mirror", "modelscope"
CHOICES = (HUB, MIRROR, MODELSCOPE)
MIRROR_EXAMPLE = "https://hf-mirror.com"
# ModelScope's SDK (modelscope-hub 0.5.1, config.HubConfig): MODELSCOPE_ENDPOINT, else the deprecated
# MODELSCOPE_DOMAIN (https:// added when it has no scheme), else DEFAULT_ENDPOINT.
MODELSCOPE_DEFAULT = "https://modelscope.cn"

# ms-swift registers each ModelScope id with its Hugging Face twin (modelscope/ms-swift, Gemma 3 model registry:
# Model('LLM-Research/gemma-3-4b-it', 'google/gemma-3-4b-it'), Model('google/gemma-3-270m', ...)).
_SWIFT = ("modelscope/ms-swift@f4e60f05, swift/llm/model/model/gemma.py (register_model, gemma3_text and "
          "gemma3_vision groups)")
_SWIFT_TEST = "ms-swift's own test_gemma3_vision loads PtEngine('LLM-Research/gemma-3-4b-it')"
_UNSLOTH = ("Unsloth's copy of Google's release; no ModelScope copy of Unsloth's repository verified, so Google's "
            "release on ModelScope is used")


@dataclass(frozen=True)
class Twin:
    """A Hugging Face hub id, its ModelScope id (None: none known), the source that shows it, whether verified."""

    hub_id: str
    modelscope_id: str | None
    source: str
    verified: bool


# Every hub model id the curriculum downloads (env.Config, catalog sizes used by notebooks, export's bases).
MODEL_TWINS: dict[str, Twin] = {t.hub_id: t for t in (
    Twin("google/gemma-3-270m", "google/gemma-3-270m", _SWIFT, True),
    Twin("google/gemma-3-270m-it", "google/gemma-3-270m-it", _SWIFT, True),
    Twin("google/gemma-3-1b-it", "LLM-Research/gemma-3-1b-it", _SWIFT, True),
    Twin("google/gemma-3-1b-pt", "LLM-Research/gemma-3-1b-pt", _SWIFT, True),
    Twin("google/gemma-3-4b-it", "LLM-Research/gemma-3-4b-it", f"{_SWIFT}; {_SWIFT_TEST}", True),
    Twin("google/gemma-3-4b-pt", "LLM-Research/gemma-3-4b-pt", _SWIFT, True),
    Twin("unsloth/gemma-3-270m", "google/gemma-3-270m", f"{_UNSLOTH}: {_SWIFT}", True),
    Twin("unsloth/gemma-3-270m-it", "google/gemma-3-270m-it", f"{_UNSLOTH}: {_SWIFT}", True),
    Twin("unsloth/gemma-3-1b-it", "LLM-Research/gemma-3-1b-it", f"{_UNSLOTH}: {_SWIFT}", True),
    Twin("unsloth/gemma-3-4b-it", "LLM-Research/gemma-3-4b-it", f"{_UNSLOTH}: {_SWIFT}", True),
    Twin("unsloth/gemma-3-4b-pt", "LLM-Research/gemma-3-4b-pt", f"{_UNSLOTH}: {_SWIFT}", True),
    Twin("unsloth/gemma-3-270m-it-GGUF", None, "no ModelScope copy verified", False),
    Twin("ggml-org/gemma-3-270m-GGUF", None, "no ModelScope copy verified", False),
)}

# Datasets the curriculum loads. None: no ModelScope copy verified, or no SDK path built: Hub or mirror instead.
DATASET_TWINS: dict[str, str | None] = {
    "Thytu/ChessInstruct": None, "HuggingFaceM4/ChartQA": None, "lmms-lab/DocVQA": None,
    "AI4Math/MathVista": None, "cais/mmlu": None,
}


@dataclass(frozen=True)
class Source:
    """The chosen source, the endpoint it reaches and why it was chosen."""

    name: str
    endpoint: str
    reason: str

    def describe(self) -> str:
        """One line for a notebook's configuration output."""
        return say("sources.describe", name=self.name, endpoint=self.endpoint, reason=self.reason)


def choose(environ: dict[str, str] | None = None) -> Source:
    """Read GEMMA_HUB (and HF_ENDPOINT) from `environ` (default os.environ); bad values raise with the fix."""
    environ = os.environ if environ is None else environ
    raw = environ.get("GEMMA_HUB", "").strip().lower()
    endpoint = environ.get("HF_ENDPOINT", "").strip()
    if raw in ("", HUB):
        where = endpoint or "https://huggingface.co"
        why = "GEMMA_HUB=hub" if raw else say("sources.hub_default")
        if endpoint:
            why += say("sources.hub_endpoint")
        return Source(HUB, where, why)
    if raw == MIRROR:
        if not endpoint:
            raise ValueError(say("sources.mirror_needs_endpoint", example=MIRROR_EXAMPLE))
        if not endpoint.startswith(("http://", "https://")):
            raise ValueError(say("sources.endpoint_not_url", endpoint=endpoint, example=MIRROR_EXAMPLE))
        return Source(MIRROR, endpoint.rstrip("/"), say("sources.mirror_reason"))
    if raw == MODELSCOPE:
        return Source(MODELSCOPE, modelscope_endpoint(environ),
                      say("sources.modelscope_reason", datasets=endpoint or say("sources.the_hub")))
    raise ValueError(say("sources.unknown", value=raw, choices=", ".join(CHOICES), example=MIRROR_EXAMPLE))


def modelscope_endpoint(environ: dict[str, str] | None = None) -> str:
    """Where ModelScope's SDK will download from, read as the SDK reads it (MODELSCOPE_ENDPOINT, MODELSCOPE_DOMAIN)."""
    environ = os.environ if environ is None else environ
    value = environ.get("MODELSCOPE_ENDPOINT", "").strip() or environ.get("MODELSCOPE_DOMAIN", "").strip()
    if not value:
        return MODELSCOPE_DEFAULT
    return (value if value.lower().startswith(("http://", "https://")) else f"https://{value}").rstrip("/")


def modelscope_id(hub_id: str) -> str:
    """The ModelScope id for a hub model id, or an error naming the table and what to do."""
    twin = MODEL_TWINS.get(hub_id)
    if twin is None or twin.modelscope_id is None:
        raise ValueError(say("sources.no_twin", hub_id=hub_id, example=MIRROR_EXAMPLE))
    return twin.modelscope_id


def model_path(hub_id: str, environ: dict[str, str] | None = None, cache_dir: str | Path | None = None) -> str:
    """What a loader should open for `hub_id`: the id itself (hub, mirror) or a local folder from ModelScope."""
    if choose(environ).name != MODELSCOPE:
        return hub_id
    ms_id = modelscope_id(hub_id)  # an unmapped id fails here, before the SDK is asked
    snapshot_download = _modelscope().snapshot_download
    return str(snapshot_download(ms_id, cache_dir=None if cache_dir is None else str(cache_dir)))


def model_folder(hub_id: str, environ: dict[str, str] | None = None) -> str:
    """The model repository as a local folder, downloaded once from where GEMMA_HUB says (the Hub or a mirror through
    ``HF_ENDPOINT``: huggingface_hub's snapshot; ModelScope: its SDK's). For programs that take a folder, such as
    the processes accelerate launches (each would otherwise download on its own)."""
    if choose(environ).name == MODELSCOPE:
        return model_path(hub_id, environ)
    from huggingface_hub import snapshot_download

    return str(snapshot_download(hub_id))


def model_file(hub_id: str, filename: str, environ: dict[str, str] | None = None) -> Path | None:
    """One file of a model repository, downloaded from where GEMMA_HUB says (or its cache); None when the repository
    has no such file. With ``modelscope`` it comes through the SDK's model_file_download from the twin's id."""
    if choose(environ).name != MODELSCOPE:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:
            return Path(hf_hub_download(hub_id, filename))
        except (EntryNotFoundError, LocalEntryNotFoundError):
            return None
    ms_id = modelscope_id(hub_id)
    sdk = _modelscope()
    from requests import HTTPError

    try:
        return Path(sdk.model_file_download(ms_id, filename))
    except HTTPError as err:  # the SDK turns its NotExistError into requests' HTTPError
        if err.response is not None and err.response.status_code == 404:
            return None
        raise


def _modelscope():
    """The ModelScope SDK's module, or an error that says how to install it."""
    try:
        import modelscope
    except ImportError as err:
        try:
            package = f"modelscope=={pinned('modelscope')}"
        except (ImportError, KeyError, OSError):  # copied without pins.toml
            package = "modelscope"
        raise ImportError(say("sources.no_sdk", package=package, example=MIRROR_EXAMPLE)) from err
    return modelscope


def dataset_source(dataset_id: str, environ: dict[str, str] | None = None) -> str:
    """Where `dataset_id` will come from, and why (ModelScope has no dataset path here)."""
    src = choose(environ)
    if src.name != MODELSCOPE:
        return say("sources.dataset_from", dataset=dataset_id, endpoint=src.endpoint)
    endpoint = (environ if environ is not None else os.environ).get("HF_ENDPOINT", "") or "https://huggingface.co"
    return say("sources.dataset_modelscope", dataset=dataset_id, endpoint=endpoint)


def twins_markdown() -> str:
    """MODEL_TWINS and DATASET_TWINS as a Markdown table for the docs."""
    rows = ["| Hugging Face id | ModelScope id | Verified | Source |", "|---|---|---|---|"]
    for t in MODEL_TWINS.values():
        rows.append(f"| `{t.hub_id}` | {f'`{t.modelscope_id}`' if t.modelscope_id else 'none'} | "
                    f"{'yes' if t.verified else 'unverified'} | {t.source} |")
    for d, ms in DATASET_TWINS.items():
        rows.append(f"| `{d}` (dataset) | {ms or 'none: Hub or mirror'} | unverified | no ModelScope path built |")
    return "\n".join(rows)


def announce_dataset(dataset_id: str) -> None:
    """Print why a dataset comes from the Hub or a mirror when GEMMA_HUB=modelscope (silent otherwise)."""
    if choose().name == MODELSCOPE:
        print(say("sources.announce", what=dataset_source(dataset_id)))
