"""The run times in the READMEs and the teacher's guide: rendered from bench/results by scripts/render_docs.py,
so that every place shows the same number, and T4 times (never measured) always read as estimates."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parent.parent


render_docs = load_script("scripts/render_docs.py")
NUMBERS = render_docs.load()


def times_rows(text: str) -> dict[str, list[str]]:
    """{notebook number: cells} of a document's rendered times table."""
    block = re.search(r"<!-- render:times -->\n(.*?)<!-- /render:times -->", text, re.S).group(1)
    rows = [render_docs.cells(line) for line in block.splitlines() if line.startswith("|")]
    return {r[0]: r for r in rows[2:]}


def test_every_document_is_rendered_from_the_current_numbers():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_place_shows_notebook_03_as_measured_by_ci():
    smoke, rehearsal = NUMBERS["ci"]["smoke"]["03"], NUMBERS["ci"]["rehearsal"]["03"]
    estimate = NUMBERS["t4"]["minutes"]["03"]["minutes"]
    for document in render_docs.DOCUMENTS:
        t4, cpu, rehearsed = times_rows((ROOT / document).read_text())["03"][-3:]
        assert re.sub(r"\D", "", cpu) == str(round(smoke)), document
        assert re.sub(r"\D", "", rehearsed) == str(round(rehearsal)), document
        assert re.sub(r"\D", "", t4) == str(estimate), document


def test_a_new_measurement_makes_the_documents_stale():
    text = (ROOT / "README.md").read_text()
    changed = copy.deepcopy(NUMBERS)
    changed["ci"]["smoke"]["03"] = 999.4
    new = render_docs.render(text, changed, "en")
    assert new != text
    assert times_rows(new)["03"][-2] == "999 s"
    assert render_docs.render(new, NUMBERS, "en") == text  # and rendering back restores the committed text


def test_t4_times_are_estimates_with_their_basis_and_say_so():
    t4 = json.loads((ROOT / "bench" / "results" / "t4_estimates.json").read_text())
    assert t4["measured"] is False
    assert all(len(entry["basis"]) > 20 for entry in t4["minutes"].values())
    for document in render_docs.DOCUMENTS:
        text = (ROOT / document).read_text()
        header = re.search(r"<!-- render:times -->\n(\|.*)\n", text).group(1)
        assert ("estimate, not measured" in header) or ("估计，未实测" in header), document


def test_every_notebook_has_a_cpu_time_and_a_t4_estimate():
    numbers = sorted(p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert render_docs.notebooks(NUMBERS) == numbers
    assert sorted(NUMBERS["t4"]["minutes"]) == numbers
    assert all(n in NUMBERS["ci"]["rehearsal"] for n in numbers)


def test_a_table_without_a_row_per_notebook_is_refused():
    table = "| # | Notebook | a | b | c |\n|---|---|---|---|---|\n| 00 | tour | | | |\n"
    with pytest.raises(SystemExit, match="add or remove rows"):
        render_docs.render(f"<!-- render:times -->\n{table}<!-- /render:times -->", NUMBERS, "en")
    with pytest.raises(SystemExit, match="unknown block"):
        render_docs.render("<!-- render:other -->\nx\n<!-- /render:other -->", NUMBERS, "en")


def test_the_guide_has_platforms_both_plans_the_kit_and_five_failures_in_both_languages():
    for name, words in (("teachers_guide.md", ("90-minute plan", "half-day plan", "make kit", "GEMMA_KIT",
                                                  "which platform", "Kaggle", "ModelScope", "GEMMA_HUB")),
                        ("teachers_guide.zh-CN.md", ("90 分钟安排", "半天安排", "make kit", "GEMMA_KIT",
                                                     "选哪个平台", "Kaggle", "ModelScope", "GEMMA_HUB"))):
        text = (ROOT / "docs" / name).read_text()
        assert all(w in text for w in words), name
        failures = re.findall(r"^([1-9])\. \*\*", text, re.M)
        assert failures == ["1", "2", "3", "4", "5"], name


def test_platform_tables_give_the_sum_of_the_t4_estimates():
    """The one-T4 total in every platform table (READMEs, teacher's guides) is written by hand: it must be the sum
    of bench/results/t4_estimates.json, so that a new notebook or a new estimate cannot leave it behind."""
    total = sum(entry["minutes"] for entry in NUMBERS["t4"]["minutes"].values())
    for document in render_docs.DOCUMENTS:
        text = (ROOT / document).read_text()
        rows = [line for line in text.splitlines() if line.startswith("|") and ("Colab" in line or "Kaggle" in line)
                and ("(estimate" in line or "（估计" in line) and "T4" in line]
        found = [int(m) for line in rows for m in re.findall(r"(?:~|约 )(\d+) (?:min|分钟)", line)]
        assert len(found) >= 2, f"{document}: no platform table with the T4 total for Colab and Kaggle"
        assert set(found) == {total}, f"{document}: platform totals {found}, the estimates sum to {total} min"


def test_the_design_map_names_files_that_exist():
    text = (ROOT / "docs" / "design.md").read_text()
    paths = set(re.findall(r"`((?:gemma_helpers|scripts|bench|notebooks|tests|docs)/[\w./*-]+|pins\.toml)`", text))
    missing = [p for p in sorted(paths) if not any(ROOT.glob(p.replace("NN_*", "[0-9][0-9]_*")))]
    assert paths and missing == [], f"docs/design.md names files that do not exist: {missing}"


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_chinese_readme_serves_a_learner_in_china_first():
    """README.zh-CN: the Chinese notebooks with their badges, China-reachable platforms before Colab with the steps
    for ModelScope's notebook, and every fix the English FAQ gives."""
    text = (ROOT / "README.zh-CN.md").read_text()
    for number, row in times_rows(text).items():
        assert f"](notebooks/zh/{number}_" in row[1], f"row {number} links the English notebook"
        assert f"/blob/main/notebooks/zh/{number}_" in row[2], f"row {number} has no Chinese Colab badge"
    assert "](notebooks/0" not in text, "link the Chinese notebooks (notebooks/zh/)"
    platforms = [render_docs.cells(line)[1] for line in _section(text, "## 从哪里开始").splitlines()
                 if line.startswith("| ") and not line.startswith("| 从哪里访问")]
    assert platforms[0].startswith("魔搭") and platforms[-1] == "Colab", platforms
    assert text.index("## 从哪里开始") < text.index("## 笔记本"), "where to run comes before the table"
    steps = _section(text, "## 从哪里开始")
    for step in ("git clone", "pip config set global.index-url", "%env GEMMA_HUB=modelscope", "requirements-colab.txt",
                 "Kaggle 需要镜像吗", "AutoDL", "make kit"):
        assert step in steps, step
    english_faq = _section((ROOT / "README.md").read_text(), "## Troubleshooting")
    chinese_faq = _section(text, "## 常见问题")
    assert chinese_faq.count("\n- **") >= english_faq.count("\n- **")
    missing = [span for span in re.findall(r"`[^`]+`", english_faq) if span not in chinese_faq]
    assert missing == [], f"the Chinese FAQ drops what the English one says: {missing}"
