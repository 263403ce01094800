"""Build notebooks/*.ipynb from their plain-text sources in notebooks/src/*.py, with the house opening added.

Why sources: every notebook opens the same way (title, goal, badge, run times read from bench/results; install
cell; environment cell), and that opening is written once, here, instead of being copied into six notebooks. Diffs of the .py sources are
readable; the built .ipynb files carry no outputs. `python scripts/build_notebooks.py` rebuilds them all, and writes
the versions of pins.toml into the requirement files the install cell and the set-up read (PINNED_FILES);
`--check` fails when a committed notebook or requirement file differs from what its source builds (tests run it).

Source format (a header, then cells separated by `# %%` lines; `# %% [markdown]` cells are comment-prefixed):

    # title: Setup and tour
    # goal: One paragraph ...
    # learn: first thing | second thing
    # %% [markdown]
    # ## A section
    # %%
    print("code")
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where the curriculum lives on GitHub: the badges and the Colab install cell use it. A fork changes these two lines
# and rebuilds; a learner can also point a built notebook elsewhere at run time (GEMMA_REPO, GEMMA_BRANCH).
REPO = "gemma-curriculum/gemma3-curriculum"
BRANCH = "main"
# The file the install cell writes into its checkout once every step has succeeded (tests look for it).
INSTALL_MARKER = ".install-complete"

# The install cell. Its logic lives here and not in gemma_helpers because the package is what it installs.
# Colab's torch, torchvision, torchaudio and triton are pinned to the installed versions as a pip constraint, so pip
# fails with a message rather than fetch a second torch. requirements-colab.txt goes in WITH dependencies (pip then
# enforces what transformers, TRL and PEFT declare); requirements-colab-nodeps.txt (Unsloth, whose declared
# dependencies are pinned in the first file, and two data-only packages) goes in --no-deps.
# scripts/colab_check.sh runs this very text in a Colab-shaped environment.
INSTALL = """# Install. On Colab or Kaggle: fetch the curriculum and its pinned stack beside the shipped torch (never replaced).
# Elsewhere this cell does nothing (`make env` built .venv). From a fork? Before this cell, run
# os.environ["GEMMA_REPO"] = "you/your-fork" (or a git URL), and GEMMA_BRANCH if it is not {branch}.
import os, subprocess, sys
from importlib import metadata
REPO = os.environ.get("GEMMA_REPO", "{repo}")
BRANCH = os.environ.get("GEMMA_BRANCH", "{branch}")
HOME = os.environ.get("GEMMA_HOME", "/content/gemma3-curriculum")
DONE = os.path.join(HOME, "{marker}")  # written only after every step succeeded: a cut-off install is redone
# pip's progress lines; its warnings (dependency conflicts included), errors and summary always show.
QUIET = ("Requirement already satisfied", "Collecting", "Downloading", "Using cached", "Obtaining", "Processing",
         "Preparing", "Getting requirements", "Installing build", "Checking if build", "Building", "Created wheel",
         "Stored in", "Looking in", "Attempting uninstall", "Found existing installation", "Uninstalling",
         "Successfully uninstalled")


def run(*cmd):
    \"\"\"Run a command and print its output, less pip's progress lines (all of it when the command fails).\"\"\"
    print("$", *cmd, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shown = [s for s in done.stdout.splitlines() if done.returncode or not s.lstrip().startswith(QUIET)]
    if shown:
        print("\\n".join(shown))
    return done.returncode


def pip_install(*args):
    if run(sys.executable, "-m", "pip", "install", "--progress-bar", "off", "-c", keep, *args):
        raise RuntimeError("pip install failed (its output is above); run this cell again to retry")


HOSTED = "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ  # Kaggle's image is Colab's
if HOSTED and not os.path.exists(DONE):
    if not os.path.isdir(HOME):  # cloned beside HOME, then renamed: HOME never holds half a checkout
        url = REPO if ":" in REPO or REPO.startswith("/") else f"https://github.com/{{REPO}}"
        subprocess.run(["rm", "-rf", HOME + ".partial"], check=True)
        if run("git", "clone", "--quiet", "--depth", "1", "--branch", BRANCH, url, HOME + ".partial"):
            raise RuntimeError(f"could not clone {{url}} (branch {{BRANCH}}). If the curriculum lives elsewhere (a fork), "
                               "add a cell above this one with os.environ['GEMMA_REPO'] = 'owner/name' (and "
                               "os.environ['GEMMA_BRANCH'] = 'branch'), run it, then run this cell again.")
        os.rename(HOME + ".partial", HOME)
    keep = os.path.join(HOME, ".colab-keep.txt")  # Colab's torch family, pinned as installed
    with open(keep, "w") as f:
        for name in ("torch", "torchvision", "torchaudio", "triton"):
            try:
                f.write(f"{{name}}=={{metadata.version(name)}}\\n")
            except metadata.PackageNotFoundError:
                pass
    pip_install("-r", os.path.join(HOME, "requirements-colab.txt"))
    pip_install("--no-deps", "-r", os.path.join(HOME, "requirements-colab-nodeps.txt"))
    pip_install("--no-deps", "-e", HOME)
    open(DONE, "w").write("ok\\n")
if os.path.isdir(HOME) and HOME not in sys.path:
    sys.path.insert(0, HOME)"""


def install_cell() -> str:
    """The install cell's code, as every notebook carries it."""
    return INSTALL.format(repo=REPO, branch=BRANCH, marker=INSTALL_MARKER)


ENVIRONMENT = '''# Environment: versions, hardware, the precision policy, and the mode (full on a GPU, smoke on CPU / CI).
{unsloth_first}from gemma_helpers.env import environment_summary, get_config
print(environment_summary())'''


def badge(path: str) -> str:
    """An 'Open in Colab' badge in Markdown for a notebook path."""
    url = f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/{path}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def parse(source: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Header fields and (kind, text) cells of a source file."""
    header: dict[str, str] = {}
    cells: list[tuple[str, list[str]]] = []
    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif not cells:
            if line.startswith("# ") and ":" in line:
                key, value = line[2:].split(":", 1)
                header[key.strip()] = value.strip()
        else:
            kind, lines = cells[-1]
            if kind == "markdown":
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            lines.append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        out.append((kind, "\n".join(lines)))
    missing = {"title", "goal", "learn"} - header.keys()
    if missing:
        raise ValueError(f"{source}: header lacks {', '.join(sorted(missing))}")
    return header, out


def run_time_facts(number: str, results: Path | None = None) -> tuple[dict, dict, int]:
    """(the T4 estimate with its basis, CI's run record, the notebook's measured CPU smoke seconds) from bench/results
    (the one source the READMEs and teacher's guide render too)."""
    results = results or ROOT / "bench" / "results"
    t4 = json.loads((results / "t4_estimates.json").read_text())["minutes"][number]
    ci = json.loads((results / "ci_run.json").read_text())
    return t4, ci, round(ci["smoke"][number])


def run_time(number: str, results: Path | None = None) -> str:
    """The notebook's run-time line: the T4 estimate with its basis, and CI's measured CPU smoke time."""
    t4, ci, seconds = run_time_facts(number, results)
    cpu = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"
    return (f"**Run time**: about {t4['minutes']} min on a free Colab T4 in full mode (an estimate, not measured: "
            f"{t4['basis']}); {cpu} on a 2-core CPU in smoke mode (measured by CI on {ci['date']}, "
            "`bench/results/ci_run.json`).")


def cell(kind: str, text: str) -> dict:
    """One nbformat-4 cell without outputs."""
    lines = text.splitlines(keepends=True)
    if kind == "markdown":
        return {"cell_type": "markdown", "metadata": {}, "source": lines}
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}


# What smoke mode is, in every notebook's opening (the Chinese notebooks translate it: its hash keys that entry).
SMOKE_INTRO = ("Smoke mode is chosen automatically without a GPU (or with `GEMMA_SMOKE=1`): it shrinks steps and samples "
               "and swaps in small local models (the embedded Gemma 3 270M; for vision, a tiny stand-in), so every "
               "cell still runs and measures something real.")
# Where every notebook was checked, and where it was not (yet): the same for all six, in both languages.
CHECKED = ("**Where it was checked**: by CI on a 2-core CPU, in smoke mode and in the full-mode rehearsal against a "
           "local stand-in of the Hugging Face Hub. Written for Colab (T4), Kaggle (T4, 2x T4; a P100 has no "
           "bfloat16) and ModelScope's notebook, but not yet run on any of them: the README's platform table gives "
           "estimated times.")
CHECKED_ZH = ("**在哪里检查过**：由 CI 在 2 核 CPU 上运行，包括冒烟模式，以及对本地 Hugging Face Hub 替身的完整模式"
              "预演。本笔记本为 Colab（T4）、Kaggle（T4、2x T4；P100 不支持 bfloat16）和魔搭（ModelScope）笔记本编写，"
              "但尚未在其中任何一个平台上实际运行：README 的平台表给出的是估计时间。")


def build(source: Path) -> dict:
    """The notebook a source describes, with the house opening."""
    header, body = parse(source)
    name = source.stem
    number = name.split("_")[0]
    learn = "\n".join(f"- {item.strip()}" for item in header["learn"].split("|"))
    intro = (f"# {number} · {header['title']}\n\n{badge(f'notebooks/{name}.ipynb')}\n\n{header['goal']}\n\n"
             f"**You will learn**\n{learn}\n\n"
             f"{run_time(number)}\n\n{CHECKED}\n\n{SMOKE_INTRO}\n\n"
             f"*This notebook is built from `notebooks/src/{name}.py` by `scripts/build_notebooks.py`: to change "
             "it, edit that source and rebuild.*")
    unsloth_first = "import unsloth  # noqa: F401  (Unsloth patches transformers: import it first)\n" \
        if header.get("unsloth", "no") == "yes" else ""
    cells = [cell("markdown", intro), cell("code", install_cell()),
             cell("code", ENVIRONMENT.format(unsloth_first=unsloth_first))]
    cells += [cell(kind, text) for kind, text in body]
    return {"cells": cells, "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, "accelerator": "GPU", "colab": {"provenance": []}},
        "nbformat": 4, "nbformat_minor": 5}


# Chinese notebooks (notebooks/zh): the same sources, code cells byte for byte, every markdown cell and the header
# from notebooks/src/zh/NN_*.md. Each entry there is keyed to the English text it translates by a short hash, so an
# English cell that changes after its translation, a cell without one, or an orphaned translation fails --check.
# Entry format: a line `=== <key> <hash> ===` (key: title, goal, learn, intro, or cell<N>, N the source's cell index),
# then the Chinese text up to the next such line.
ZH_SRC = ROOT / "notebooks" / "src" / "zh"
# The Chinese environment cell sets the notebook's language first (gemma_helpers.messages and the exercises read
# GEMMA_LANG: what the package prints, its errors and the exercises' feedback come in Chinese).
ZH_LANGUAGE = 'import os\nos.environ["GEMMA_LANG"] = "zh"  # 本笔记本的语言：程序打印的说明、报错和练习反馈都用中文\n'
# Said once in every Chinese notebook's opening: what stays English, and why.
ZH_ENGLISH_LEFT = ("*代码单元与英文版逐字节相同，所以表格的列名、图上的文字和代码里的名字保持英文；程序打印的说明、报错和"
                   "练习反馈是中文。*")


def run_time_zh(number: str, results: Path | None = None) -> str:
    """run_time's line in Chinese, from the same files: the estimate's basis is its `basis_zh` there."""
    t4, ci, seconds = run_time_facts(number, results)
    if not t4.get("basis_zh"):
        raise SystemExit(f"bench/results/t4_estimates.json: notebook {number}'s estimate has no basis_zh; write its "
                         "basis in Chinese beside the English one (the same facts and numbers)")
    cpu = f"{seconds} 秒" if seconds < 120 else f"{seconds // 60} 分 {seconds % 60} 秒"
    return (f"**运行时间**：完整模式下在免费 Colab T4 上约 {t4['minutes']} 分钟（估计值，未实测，依据："
            f"{t4['basis_zh']}）；冒烟模式下在 2 核 CPU 上 {cpu}（CI 于 {ci['date']} 实测，"
            "`bench/results/ci_run.json`）。")


def short_hash(text: str) -> str:
    """The key of an English text: 8 hex digits of its SHA-256."""
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:8]


def zh_wanted(source: Path) -> dict[str, str]:
    """{key: English text} of everything a Chinese notebook translates."""
    header, body = parse(source)
    wanted = {"title": header["title"], "goal": header["goal"], "learn": header["learn"], "intro": SMOKE_INTRO}
    wanted.update({f"cell{i}": text for i, (kind, text) in enumerate(body) if kind == "markdown"})
    return wanted


def read_zh(path: Path) -> dict[str, tuple[str, str]]:
    """{key: (hash, Chinese text)} of a translation file."""
    import re

    out: dict[str, tuple[str, str]] = {}
    key = None
    for line in path.read_text().splitlines():
        match = re.match(r"^=== (\S+) ([0-9a-f]{8}) ===$", line)
        if match:
            key = match.group(1)
            out[key] = (match.group(2), "")
        elif key is not None:
            out[key] = (out[key][0], out[key][1] + line + "\n")
    return {k: (h, t.strip()) for k, (h, t) in out.items()}


def zh_problems(source: Path) -> list[str]:
    """What keeps a source's translation from building, each with what to do; [] when it is complete."""
    path = ZH_SRC / f"{source.stem}.md"
    rel = path.relative_to(ROOT)
    if not path.exists():
        return [f"{rel}: missing (run `python scripts/build_notebooks.py --zh-stubs` and translate it)"]
    wanted, have = zh_wanted(source), read_zh(path)
    problems = []
    for key, text in wanted.items():
        if key not in have or not have[key][1]:
            problems.append(f"{rel} {key}: no translation (translate the English {key} of {source.name}; "
                            f"its key line is `=== {key} {short_hash(text)} ===`)")
        elif have[key][0] != short_hash(text):
            problems.append(f"{rel} {key}: the English text changed after it was translated (update the "
                            f"translation, then set its hash to {short_hash(text)})")
    for key in have.keys() - wanted.keys():
        problems.append(f"{rel} {key}: orphaned translation (no English {key} in {source.name}: delete it)")
    return problems


def build_zh(source: Path) -> dict:
    """The Chinese notebook: the English one's code cells, Chinese markdown from the translation file."""
    header, body = parse(source)
    zh = {k: t for k, (_, t) in read_zh(ZH_SRC / f"{source.stem}.md").items()}
    name = source.stem
    number = name.split("_")[0]
    learn = "\n".join(f"- {item.strip()}" for item in zh["learn"].split("|"))
    intro = (f"# {number} · {zh['title']}\n\n{badge(f'notebooks/zh/{name}.ipynb')}\n\n{zh['goal']}\n\n"
             f"**你将学到**\n{learn}\n\n{run_time_zh(number)}\n\n{CHECKED_ZH}\n\n{zh['intro']}\n\n{ZH_ENGLISH_LEFT}\n\n"
             f"*本笔记本由 `scripts/build_notebooks.py` 从 `notebooks/src/{name}.py`（代码）与 "
             f"`notebooks/src/zh/{name}.md`（中文译文）生成：要修改，请编辑源文件后重新生成。*")
    nb = build(source)
    cells = [cell("markdown", intro)] + nb["cells"][1:3]
    cells[2] = cell("code", ZH_LANGUAGE + "".join(cells[2]["source"]))
    cells += [cell("markdown", zh[f"cell{i}"]) if kind == "markdown" else cell(kind, text)
              for i, (kind, text) in enumerate(body)]
    nb["cells"] = cells
    return nb


def zh_stubs(source: Path) -> str:
    """Entries still needing work for a source, in the translation file's format (English text as placeholder)."""
    path = ZH_SRC / f"{source.stem}.md"
    have = read_zh(path) if path.exists() else {}
    out = []
    for key, text in zh_wanted(source).items():
        if key not in have or have[key][0] != short_hash(text) or not have[key][1]:
            out.append(f"=== {key} {short_hash(text)} ===\n{text}\n")
    return "\n".join(out)


def render(nb: dict) -> str:
    """The notebook's text as committed."""
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"c{i:02d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


BADGES_PAGE = """# Open the notebooks in Colab

Each badge opens the notebook on a free Colab runtime. Choose *Runtime > Change runtime type > T4 GPU* for full mode;
on a CPU runtime the notebook runs in smoke mode on the embedded Gemma 3 270M.

| Notebook | English | 中文 |
|---|---|---|
{rows}

The badges and every notebook's install cell point at `github.com/{repo}` (branch `{branch}`): the `REPO` and
`BRANCH` constants in `scripts/build_notebooks.py`. A fork changes those two constants and runs
`python scripts/build_notebooks.py`, which rebuilds the notebooks and this page; `--check` (run by the tests) fails
while a README badge still points elsewhere.
"""


def badges_page(sources: list[Path], zh_built: list[Path] | None = None) -> str:
    """colab_badges.md: one badge per notebook (English and, where built, Chinese), for the configured repository."""
    rows = []
    zh = {source.stem for source in zh_built or []}
    for source in sources:
        title = parse(source)[0]["title"]
        zh_badge = badge(f"notebooks/zh/{source.stem}.ipynb") if source.stem in zh else "(not yet translated)"
        rows.append(f"| {source.stem[:2]} {title} | {badge(f'notebooks/{source.stem}.ipynb')} | {zh_badge} |")
    return BADGES_PAGE.format(rows="\n".join(rows), repo=REPO, branch=BRANCH)


def foreign_badges(text: str) -> list[str]:
    """Colab badge links in a README that do not point at the configured repository and branch."""
    import re

    links = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", text)
    return [link for link in links if f"/github/{REPO}/blob/{BRANCH}/" not in link]


# The requirement files whose `name==version` lines pins.toml decides (requirements-colab-shipped.txt is Colab's own
# dated list, not ours). Comments and unpinned lines are written by hand; every version comes from pins.toml.
PINNED_FILES = ("requirements.txt", "requirements-nodeps.txt", "requirements-dev.txt", "constraints-cpu.txt",
                "requirements-colab.txt", "requirements-colab-nodeps.txt")


def read_pins(path: Path | None = None) -> dict[str, str]:
    """{normalized name: version} over every table of pins.toml; a name in two tables is an error."""
    import re

    out: dict[str, str] = {}
    for line in (path or ROOT / "pins.toml").read_text().splitlines():
        match = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*"([^"]+)"', line)
        if match:
            key = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            if key in out:
                raise ValueError(f"pins.toml pins {match.group(1)!r} twice: keep one entry (the shell scripts look "
                                 "names up alone)")
            out[key] = match.group(2)
    return out


def with_pins(text: str, pins: dict[str, str], source: str) -> str:
    """A requirement file's text with each `name==version` line's version taken from pins; unknown names are errors."""
    import re

    lines = []
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s#;]+)(.*)$", line)
        if match:
            key = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            if key not in pins:
                raise ValueError(f"{source}: {match.group(1)} is pinned here but not in pins.toml; add it there")
            line = f"{match.group(1)}=={pins[key]}{match.group(3)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Build all notebooks and the badge page, or check that the committed ones are up to date."""
    parser = argparse.ArgumentParser(description="Build notebooks from notebooks/src/*.py")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--zh-stubs", action="store_true", help="print the translation entries that need work")
    args = parser.parse_args(argv)
    stale = []
    sources = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
    if args.zh_stubs:
        for source in sources:
            stubs = zh_stubs(source)
            if stubs:
                print(f"# notebooks/src/zh/{source.stem}.md\n{stubs}")
        return 0
    targets = {ROOT / "notebooks" / f"{source.stem}.ipynb": render(build(source)) for source in sources}
    zh_built = []
    for source in sources:
        problems = zh_problems(source)
        if not problems:
            targets[ROOT / "notebooks" / "zh" / f"{source.stem}.ipynb"] = render(build_zh(source))
            zh_built.append(source)
        elif (ZH_SRC / f"{source.stem}.md").exists():
            stale.extend(problems)
        else:
            print(f"warning: no Chinese notebook for {source.stem} yet ({problems[0]})")
    targets[ROOT / "colab_badges.md"] = badges_page(sources, zh_built)
    pins = read_pins()
    for name in PINNED_FILES:
        targets[ROOT / name] = with_pins((ROOT / name).read_text(), pins, name)
    for target, text in targets.items():
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        else:
            target.write_text(text)
            print(f"built {target.relative_to(ROOT)}")
    for readme in ("README.md", "README.zh-CN.md"):
        for link in foreign_badges((ROOT / readme).read_text()):
            stale.append(f"{readme} ({link})")
    if stale:
        print("stale (run `python scripts/build_notebooks.py`; README badges must use REPO/BRANCH; versions come "
              "from pins.toml):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
