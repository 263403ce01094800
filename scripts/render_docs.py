"""Render the run times in the READMEs and the teacher's guide from bench/results: one source for every number.

Sources:
    bench/results/ci_run.json        CPU, measured: CI's own run on a clean clone, seconds per notebook in smoke mode
                                     and in the full-mode rehearsal
    bench/results/t4_estimates.json  T4, ESTIMATED (no GPU has run the notebooks): minutes per notebook, each with
                                     the basis of its estimate
    bench/results/kit_check.json     the workshop kit: size, build seconds, the offline check's seconds

A document marks what is rendered with `<!-- render:NAME -->` ... `<!-- /render:NAME -->`:
    times  a table whose rows start with the notebook number, then the note under it. Each row keeps its left cells
           (number, topic, badge: written by hand, in the document's language) and gets its last three cells
           rendered: T4 estimate, CPU smoke, CPU rehearsal. The header's last three cells and the note are rendered.
    kit    one paragraph: the kit's size and times.
`python scripts/render_docs.py` rewrites the documents; `--check` (tests/test_docs.py runs it) fails while one of
them differs from what the numbers render, e.g. after a new CI measurement: rerun it and commit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCUMENTS = ("README.md", "README.zh-CN.md", "docs/teachers_guide.md", "docs/teachers_guide.zh-CN.md")
TIME_COLUMNS = 3

TEXT = {
    "en": {
        "header": ("T4, full mode (estimate, not measured)", "CPU, smoke (measured)",
                   "CPU, full-mode rehearsal (measured)"),
        "t4": "~{m} min", "cpu": "{s} s",
        "note": (
            "**T4 times are estimates, none measured**: no GPU has run these notebooks yet; each estimate and what it "
            "rests on (e.g. Unsloth's recorded T4 step times for 03 and 04) is in `bench/results/t4_estimates.json`. "
            "The CPU times were measured by CI's own run on a clean clone ({date}, `bench/results/ci_run.json`: "
            "{cpu}; that whole `make test` took {total_min} min, {caches}). Rehearsal times are for tiny "
            "stand-in models at `GEMMA_FULL_SCALE={scale}`: they prove the full-mode code runs, not how long it "
            "takes on a T4. The times here are rendered from those files by `scripts/render_docs.py`."),
        "kit": (
            "Measured here ({date}, {cores} shared cores, load {load}): the kit is **{gb} GB**; building it took "
            "{build_s} s (caches warm), copying it {copy_s} s, and the check with the network off {offline_s} s "
            "(set-up from the kit {env_s} s, `make run` of notebook 00 {run_s} s, the quick `make test` {test_s} s)."),
        "no_kit": "The kit's size and times are not measured yet: run `make kit-check`.",
        "caches": {"warm": "{setup_s} s of it setting up with warm caches",
                   "cold": "{setup_s} s of it setting up from empty caches: llama-cpp-python built from source, the "
                           "embedded model converted"},
    },
    "zh": {
        "header": ("T4 完整模式（估计，未实测）", "CPU 冒烟（实测）", "CPU 完整模式演练（实测）"),
        "t4": "约 {m} 分钟", "cpu": "{s} 秒",
        "note": (
            "**T4 时间均为估计值，没有一个是实测的**：还没有 GPU 运行过这些笔记本；每个估计值及其依据（例如笔记本 03 和 04 "
            "引用的 Unsloth 记录的 T4 单步时间）见 `bench/results/t4_estimates.json`。CPU 时间来自 CI 在全新克隆上的实际运行"
            "（{date}，`bench/results/ci_run.json`：{cpu}；那次 `make test` 共用时 {total_min} 分钟，{caches}）。演练时间对应 "
            "`GEMMA_FULL_SCALE={scale}` 下的替身小模型：它证明完整模式的代码能运行，并不代表在 T4 上的用时。这里的时间由 "
            "`scripts/render_docs.py` 从上述文件生成。"),
        "kit": (
            "在本机实测（{date}，{cores} 个共享核心，负载 {load}）：工具包共 **{gb} GB**；构建用时 {build_s} 秒（缓存就绪），"
            "复制用时 {copy_s} 秒，断网检查用时 {offline_s} 秒（从工具包安装环境 {env_s} 秒，`make run` 笔记本 00 用时 "
            "{run_s} 秒，精简的 `make test` 用时 {test_s} 秒）。"),
        "no_kit": "工具包的大小和用时尚未测量：请运行 `make kit-check`。",
        "caches": {"warm": "其中 {setup_s} 秒用于在缓存就绪时安装环境",
                   "cold": "其中 {setup_s} 秒用于从空缓存安装环境：从源码构建 llama-cpp-python、转换内置模型"},
    },
}


def language(document: str) -> str:
    """The language of a document, from its name (NAME.zh-CN.md is Chinese)."""
    return "zh" if ".zh-CN." in document else "en"


def load(results: Path = RESULTS) -> dict:
    """The numbers every document renders, read from bench/results."""
    ci = json.loads((results / "ci_run.json").read_text())
    t4 = json.loads((results / "t4_estimates.json").read_text())
    if t4.get("measured") is not False:
        raise SystemExit("t4_estimates.json must say \"measured\": false; measured T4 times belong in their own file")
    kit_file = results / "kit_check.json"
    return {"ci": ci, "t4": t4, "kit": json.loads(kit_file.read_text()) if kit_file.exists() else None}


def notebooks(numbers: dict) -> list[str]:
    """The notebook numbers with a measured CPU time, in order."""
    return sorted(k for k in numbers["ci"]["smoke"] if k.isdigit())


def time_cells(numbers: dict, number: str, lang: str) -> list[str]:
    """The three rendered cells of one notebook's row: T4 estimate, CPU smoke, CPU rehearsal."""
    text, ci = TEXT[lang], numbers["ci"]
    estimate = numbers["t4"]["minutes"].get(number)
    if estimate is None:
        raise SystemExit(f"bench/results/t4_estimates.json has no estimate for notebook {number}: add one with its basis")
    return [text["t4"].format(m=estimate["minutes"]), text["cpu"].format(s=round(ci["smoke"][number])),
            text["cpu"].format(s=round(ci["rehearsal"][number]))]


def cells(line: str) -> list[str]:
    """The cells of one markdown table line."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def row(values: list[str]) -> str:
    """A markdown table line."""
    return "| " + " | ".join(values) + " |"


def render_times(block: str, numbers: dict, lang: str, where: str) -> str:
    """The times block: the table with its time cells rendered, then the note."""
    table = [line for line in block.strip().splitlines() if line.startswith("|")]
    if len(table) < 3:
        raise SystemExit(f"{where}: the times block must hold a table (header, separator, one row per notebook)")
    header, rows = cells(table[0]), [cells(line) for line in table[2:]]
    wanted = notebooks(numbers)
    found = [r[0] for r in rows]
    if found != wanted:
        raise SystemExit(f"{where}: the table's rows are {found}, the measured notebooks {wanted}: add or remove rows")
    if any(len(r) <= TIME_COLUMNS for r in [header, *rows]):
        raise SystemExit(f"{where}: each row needs its own cells and then {TIME_COLUMNS} time cells")
    text, ci = TEXT[lang], numbers["ci"]
    left = len(header) - TIME_COLUMNS
    lines = [row(header[:left] + list(text["header"])), "|" + "---|" * len(header)]
    lines += [row(r[:left] + time_cells(numbers, r[0], lang)) for r in rows]
    caches = ci.get("caches", "warm")
    if caches not in text["caches"]:
        raise SystemExit(f"bench/results/ci_run.json: caches is {caches!r}; say \"warm\" or \"cold\"")
    note = text["note"].format(date=ci["date"], cpu=ci["cpu"], total_min=round(ci["total_s"] / 60, 1),
                               caches=text["caches"][caches].format(setup_s=ci["setup_s"]),
                               scale=ci["rehearsal"]["GEMMA_FULL_SCALE"])
    return "\n".join(lines) + "\n\n" + wrap(note, lang)


CLOSING = set("，。；：）、！？」》")  # Chinese punctuation never starts a line


def wrap(paragraph: str, lang: str, width: int = 118) -> str:
    """A paragraph wrapped at the documents' width; Chinese counts two columns a character and breaks between them."""
    if lang == "en":  # a `code span` is never split: its spaces are held as no-break spaces while wrapping
        held = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\u00a0"), paragraph)
        return textwrap.fill(held, width=width, break_long_words=False, break_on_hyphens=False).replace("\u00a0", " ")
    # Units that must not be split: `code`, **bold** markers, runs of Latin text; every other character alone.
    units = re.findall(r"`[^`]*`|\*\*|[A-Za-z0-9_.()/,:+\-=]+|.", paragraph)
    lines, line, used = [], "", 0
    for unit in units:
        cost = sum(2 if ord(ch) > 0x2E7F else 1 for ch in unit)
        if used + cost > width and line.strip() and unit not in CLOSING:
            lines.append(line.rstrip())
            line, used = "", 0
            if unit == " ":
                continue
        line, used = line + unit, used + cost
    return "\n".join([*lines, line.rstrip()])


def render_kit(numbers: dict, lang: str) -> str:
    """The kit paragraph: its size and times as measured by make kit-check."""
    kit = numbers["kit"]
    if not kit:
        return TEXT[lang]["no_kit"]
    return wrap(TEXT[lang]["kit"].format(date=kit["date"][:10], cores=kit["cores"], load=kit["load"].split()[0],
                                    gb=round(kit["kit_mb"] / 1000, 1), build_s=kit["build_s"],
                                    copy_s=kit["copy_s"], offline_s=kit["offline_s"], env_s=kit["offline_env_s"],
                                    run_s=kit["offline_run_s"], test_s=kit["offline_test_s"]), lang)


BLOCK = re.compile(r"<!-- render:(\w+) -->\n(.*?)\n?<!-- /render:\1 -->", re.S)


def render(text: str, numbers: dict, lang: str, where: str = "document") -> str:
    """A document with every rendered block brought up to date."""
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name == "times":
            body = render_times(match.group(2), numbers, lang, where)
        elif name == "kit":
            body = render_kit(numbers, lang)
        else:
            raise SystemExit(f"{where}: unknown block render:{name} (known: times, kit)")
        return f"<!-- render:{name} -->\n{body}\n<!-- /render:{name} -->"
    return BLOCK.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the documents, or with --check list those that are out of date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a document differs from what renders")
    args = parser.parse_args(argv)
    numbers, stale = load(), []
    for document in DOCUMENTS:
        path = ROOT / document
        text = path.read_text()
        if "<!-- render:times -->" not in text:
            stale.append(f"{document} (no <!-- render:times --> block)")
            continue
        new = render(text, numbers, language(document), document)
        if new != text:
            if args.check:
                stale.append(document)
            else:
                path.write_text(new)
                print(f"rendered {document}")
    if stale:
        print("out of date with bench/results (run `python scripts/render_docs.py` and commit):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
