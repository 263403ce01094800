"""The tokenizer files a Gemma 3 folder must carry, so that llama.cpp's converter reads it as Google's own release.

The released Gemma 3 repositories ship the tokenizer twice: ``tokenizer.model`` (SentencePiece, 262,144 pieces) and
``tokenizer.json`` (262,145 entries: the same pieces plus ``<image_soft_token>`` at id 262144, also listed in
``added_tokens.json``). A text model's ``config.json`` says ``vocab_size`` 262,144. llama.cpp's converter reads
``tokenizer.model`` when it is there (its SentencePiece path: ``tokenizer.ggml.model`` "llama", the extra id
dropped, ggml-org/llama.cpp#12876); without it, it takes its BPE path and stops on
``assert max(tokenizer.vocab.values()) < vocab_size``. transformers 5 writes ``tokenizer.json`` only, so a fine-tune
saved with ``save_pretrained`` loses the SentencePiece file unless it is carried over from the base:

* :func:`carry`: copy ``tokenizer.model``, ``added_tokens.json`` and ``special_tokens_map.json`` from a base (a
  local folder or a hub id) into a saved model's folder; :func:`saved_with_tokenizer_files` wraps a save.
* :func:`sentencepiece_from_gguf`: a ``tokenizer.model`` rebuilt from a GGUF's SentencePiece vocabulary (pieces,
  scores, types): how the embedded model, which came as a GGUF, gets one.
* :func:`vocabulary_shape`: the facts to compare two tokenizer folders by (entries, special ids, files).

The check that a folder can be exported at all, with the fix named, is ``gguf_files.check_tokenizer_files``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .sources import model_file

SENTENCEPIECE = "tokenizer.model"
CARRIED = (SENTENCEPIECE, "added_tokens.json", "special_tokens_map.json")  # what save_pretrained no longer writes
SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
           "<end_of_image>", "<image_soft_token>")


def _fetch(base: str, name: str) -> Path | None:
    """One file of a base model: from its folder, or downloaded from where GEMMA_HUB says (the Hub, its mirror or
    ModelScope: ``sources.model_file``, cache included); None when absent."""
    folder = Path(base).expanduser()
    if folder.is_dir():
        return folder / name if (folder / name).is_file() else None
    if "/" not in base:
        return None

    return model_file(base, name)


def carry(base: str | Path, out_dir: str | Path) -> list[str]:
    """Copy the base's SentencePiece and added-token files into out_dir (those the base has); returns their names.

    tokenizer.json and tokenizer_config.json are left as save_pretrained wrote them (they hold the chat template)."""
    out_dir = Path(out_dir)
    copied = []
    for name in CARRIED:
        source = _fetch(str(base), name)
        if source is None or (out_dir / name).resolve() == source.resolve():
            continue
        shutil.copyfile(source, out_dir / name)
        copied.append(name)
    return copied


def saved_with_tokenizer_files(tokenizer, out_dir: str | Path, base: str | Path | None = None) -> list[str]:
    """tokenizer.save_pretrained(out_dir), then :func:`carry` from `base` (default: where the tokenizer was loaded
    from). Returns the carried files' names."""
    tokenizer.save_pretrained(str(out_dir))
    return carry(base or tokenizer.name_or_path, out_dir)


def sentencepiece_from_gguf(gguf_path: str | Path, out_file: str | Path) -> Path:
    """Write a SentencePiece ``tokenizer.model`` holding a GGUF's vocabulary: every piece with its score and type.

    A GGUF whose ``tokenizer.ggml.model`` is "llama" was written from a SentencePiece file by llama.cpp's converter,
    which keeps each piece's text, score and type (writing user-defined pieces' U+2581 as spaces, undone here); the
    model type (BPE with byte fallback) and normalizer (no dummy prefix, spaces as U+2581) are Gemma's. Converting
    this file back gives the GGUF's vocabulary (tests/test_tokenizer_files.py checks it)."""
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as sp_pb2

    reader = GGUFReader(str(gguf_path))
    kind = reader.fields["tokenizer.ggml.model"].contents()
    if kind != "llama":
        raise ValueError(f"{gguf_path} holds a {kind!r} tokenizer, not SentencePiece ('llama'): nothing to rebuild")
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    scores = reader.fields["tokenizer.ggml.scores"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    model = sp_pb2.ModelProto()
    for piece, score, kind in zip(tokens, scores, types, strict=True):
        if kind == sp_pb2.ModelProto.SentencePiece.USER_DEFINED:
            piece = piece.replace(" ", "\u2581")  # the converter wrote these pieces' U+2581 as spaces: undo it
        model.pieces.add(piece=piece, score=float(score), type=int(kind))  # GGUF and SentencePiece share type codes
    ids = {name: int(reader.fields[f"tokenizer.ggml.{name}_token_id"].contents())
           for name in ("unknown", "bos", "eos", "padding")}
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size, spec.byte_fallback = sp_pb2.TrainerSpec.BPE, len(tokens), True
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = ids["unknown"], ids["bos"], ids["eos"], ids["padding"]
    spec.split_digits = True
    norm = model.normalizer_spec
    norm.name, norm.add_dummy_prefix, norm.remove_extra_whitespaces, norm.escape_whitespaces = \
        "identity", False, False, True
    out_file = Path(out_file)
    out_file.write_bytes(model.SerializeToString())
    return out_file


def vocabulary_shape(folder: str | Path) -> dict[str, Any]:
    """What a tokenizer folder holds, to compare it with the released files: entries of tokenizer.json (the model's
    vocabulary plus added tokens outside it), its highest id, the special tokens' ids, the pieces of
    tokenizer.model, added_tokens.json, and the tokenizer files present."""
    folder = Path(folder)
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab = dict(vocab) if isinstance(vocab, dict) else {piece: i for i, (piece, _score) in enumerate(vocab)}
    added = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    ids = {**vocab, **added}
    pieces = None
    if (folder / SENTENCEPIECE).is_file():
        from sentencepiece import SentencePieceProcessor

        pieces = SentencePieceProcessor(model_file=str(folder / SENTENCEPIECE)).get_piece_size()
    added_file = folder / "added_tokens.json"
    return {"entries": len(ids), "max_id": max(ids.values()), "special_ids": {s: ids.get(s) for s in SPECIAL},
            "sentencepiece_pieces": pieces,
            "added_tokens": json.loads(added_file.read_text()) if added_file.is_file() else None,
            "files": sorted(p.name for p in folder.iterdir()
                            if p.name.startswith(("tokenizer", "special_tokens", "added_tokens", "chat_template")))}
