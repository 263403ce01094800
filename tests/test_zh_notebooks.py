"""The Chinese notebooks: built from the English sources plus hash-keyed translations, with the glossary enforced."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks as bn  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
TRANSLATED = [s for s in SOURCES if (bn.ZH_SRC / f"{s.stem}.md").exists()]
# A translation may skip a glossary term where grammar needs it by carrying this mark (with the English term) anywhere.
EXEMPT = "<!-- glossary-exempt: {term} -->"


def glossary() -> list[tuple[str, str, str]]:
    """(English term, Chinese term, context): a term with several rows takes the first whose context (a regular
    expression, empty for any) matches the English sentence it stands in: "memory" is 显存 beside GPU words, else 内存."""
    rows = [row.split("\t") for row in (bn.ZH_SRC / "glossary.tsv").read_text().splitlines()[1:] if row.strip()]
    return [(row[0], row[1], row[3] if len(row) > 3 else "") for row in rows]


def wanted_terms(english: str) -> list[tuple[str, str]]:
    """The (English term, Chinese term) pairs an English text calls for, each occurrence judged by its sentence."""
    english = re.sub(r"`[^`]*`", "", english)  # code spans are identifiers, not prose
    rows = glossary()
    terms = list(dict.fromkeys(t for t, _, _ in rows))
    found = []
    for term in terms:
        longer = [t for t in terms if len(t) > len(term) and t.lower().startswith(term.lower())]
        for match in re.finditer(rf"\b{re.escape(term)}", english, re.IGNORECASE):
            if any(english[match.start():].lower().startswith(t.lower()) for t in longer):
                continue  # "memory planner" is its own term
            stops = (". ", "; ", "\n\n", "|")
            start = max(english.rfind(stop, 0, match.start()) for stop in stops)
            ends = [i for i in (english.find(stop, match.end()) for stop in stops) if i >= 0]
            sentence = english[start + 1:min(ends) if ends else len(english)]
            chinese = next(zh for t, zh, context in rows if t == term and re.search(context, sentence))
            if (term, chinese) not in found:
                found.append((term, chinese))
    return found


def test_00_and_its_translation_are_complete_and_built():
    assert bn.ZH_SRC / "00_setup_and_tour.md" in [bn.ZH_SRC / f"{s.stem}.md" for s in TRANSLATED]
    for source in TRANSLATED:
        assert bn.zh_problems(source) == [], source.name
        assert (ROOT / "notebooks" / "zh" / f"{source.stem}.ipynb").exists(), source.name


@pytest.mark.parametrize("source", TRANSLATED, ids=lambda s: s.stem)
def test_code_cells_identical_and_markdown_chinese(source):
    en = json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text())["cells"]
    zh = json.loads((ROOT / "notebooks" / "zh" / f"{source.stem}.ipynb").read_text())["cells"]
    assert [c["cell_type"] for c in en] == [c["cell_type"] for c in zh]
    for i, (a, b) in enumerate(zip(en, zh, strict=True)):
        text = "".join(b["source"])
        if i == 2:  # the environment cell: the English one, after the language line
            assert text.startswith(bn.ZH_LANGUAGE) and text.endswith("".join(a["source"]))
        elif a["cell_type"] == "code":
            assert a["source"] == b["source"], f"{source.stem} cell {i}"
        else:
            assert re.search(r"[\u4e00-\u9fff]", text), f"{source.stem} cell {i} has no Chinese"


def _fake(tmp_path, monkeypatch, markdown: str, translation: str | None) -> Path:
    source = tmp_path / "09_x.py"
    source.write_text(f"# title: T\n# goal: G\n# learn: a | b\n# %% [markdown]\n# {markdown}\n# %%\nprint(1)\n")
    monkeypatch.setattr(bn, "ZH_SRC", tmp_path)
    monkeypatch.setattr(bn, "ROOT", tmp_path)
    (tmp_path / "09_x.md").unlink(missing_ok=True)
    if translation is not None:
        (tmp_path / "09_x.md").write_text(translation)
    return source


def _entries(**cells: str) -> str:
    texts = {"title": "T", "goal": "G", "learn": "a | b", "intro": bn.SMOKE_INTRO}
    out = [f"=== {k} {bn.short_hash(texts[k])} ===\n中文\n" for k in texts]
    out += [f"=== {k} {h} ===\n中文\n" for k, h in cells.items()]
    return "\n".join(out)


def test_check_names_a_changed_a_missing_and_an_orphaned_translation(tmp_path, monkeypatch):
    ok = _entries(cell0=bn.short_hash("Hello"))
    assert bn.zh_problems(_fake(tmp_path, monkeypatch, "Hello", ok)) == []
    changed = bn.zh_problems(_fake(tmp_path, monkeypatch, "Hello again", ok))
    assert len(changed) == 1 and "cell0" in changed[0] and "changed" in changed[0]
    assert bn.short_hash("Hello again") in changed[0]  # says which hash to set
    missing = bn.zh_problems(_fake(tmp_path, monkeypatch, "Hello", _entries()))
    assert len(missing) == 1 and "cell0" in missing[0] and "no translation" in missing[0]
    orphan = bn.zh_problems(_fake(tmp_path, monkeypatch, "Hello", _entries(cell0=bn.short_hash("Hello"),
                                                                           cell7="abcdef01")))
    assert len(orphan) == 1 and "cell7" in orphan[0] and "orphaned" in orphan[0]
    assert "missing" in bn.zh_problems(_fake(tmp_path, monkeypatch, "Hello", None))[0]
    assert "=== cell0" in bn.zh_stubs(_fake(tmp_path, monkeypatch, "Hello again", ok))


@pytest.mark.parametrize("source", TRANSLATED, ids=lambda s: s.stem)
def test_glossary_is_followed(source):
    wanted = bn.zh_wanted(source)
    have = bn.read_zh(bn.ZH_SRC / f"{source.stem}.md")
    misses = []
    for key, english in wanted.items():
        zh = have[key][1]
        for term, chinese in wanted_terms(english):
            if chinese.lower() not in zh.lower() and EXEMPT.format(term=term) not in zh:
                misses.append(f"{key}: '{term}' should be '{chinese}'")
    assert not misses, f"{source.stem}: {misses} (follow notebooks/src/zh/glossary.tsv, or mark an exemption)"


def test_memory_is_gpu_memory_beside_gpu_words_and_ram_elsewhere():
    assert wanted_terms("How much GPU memory the training takes.") == [("memory", "显存")]
    assert wanted_terms("A T4's memory moves 320 GB/s. A phone keeps half its memory.") == [
        ("memory", "显存"), ("memory", "内存")]
    assert wanted_terms("the frozen weights wait in CPU memory, at the price of PCIe traffic") == [("memory", "内存")]
    assert wanted_terms("A phone keeps half its memory; a free T4 runs 4B") == [("memory", "内存")]
    assert wanted_terms("`gpu_memory` and the memory planner, per GPU") == [("memory planner", "内存规划器")]


def test_glossary_keeps_technical_names_untranslated():
    terms = {t.lower() for t, _, _ in glossary()}
    for name in ("lora", "gguf", "llama.cpp", "unsloth", "token", "elo", "q4_k_m"):
        assert name not in terms


def test_exercise_checks_answer_in_the_notebooks_language(monkeypatch, capsys):
    from gemma_helpers import exercises

    assert set(exercises.FRAMES["zh"]) == set(exercises.FRAMES["en"])  # no message missing in either language
    monkeypatch.delenv(exercises.ANSWERS_ENV, raising=False)
    for name, (_, check) in exercises.EXERCISES.items():
        monkeypatch.setenv(exercises.LANG_ENV, "zh")
        assert check(None) is False
        assert capsys.readouterr().out.startswith("还没有答案"), name
        monkeypatch.delenv(exercises.LANG_ENV)
        check(None)
        assert capsys.readouterr().out.startswith("No answer yet"), name
    monkeypatch.setenv(exercises.LANG_ENV, "zh")
    exercises.check_kv_cache_4b_32k(123456.0)
    assert capsys.readouterr().out.startswith("还不对：")


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)*", text))


@pytest.mark.parametrize("source", TRANSLATED, ids=lambda s: s.stem)
def test_chinese_headers_say_the_run_time_basis_in_chinese(source):
    """The header's run-time line renders the estimate's basis_zh (bench/results/t4_estimates.json), which states the
    English basis's facts: the same numbers, and no English sentence left in the Chinese header."""
    number = source.stem[:2]
    entry = json.loads((ROOT / "bench" / "results" / "t4_estimates.json").read_text())["minutes"][number]
    assert re.search(r"[\u4e00-\u9fff]", entry.get("basis_zh", "")), f"{number}: write basis_zh in Chinese"
    assert _numbers(entry["basis_zh"]) == _numbers(entry["basis"]), f"{number}: basis_zh states other numbers"
    header = "".join(json.loads((ROOT / "notebooks" / "zh" / f"{source.stem}.ipynb").read_text())["cells"][0]["source"])
    assert entry["basis_zh"] in header and entry["basis"] not in header
    prose = re.sub(r"`[^`]*`|!?\[[^\]]*\]\([^)]*\)", "", header)  # code and links (the badge) are not prose
    english = re.findall(r"[A-Za-z][A-Za-z'-]*(?:[ ,]+[A-Za-z][A-Za-z'-]*){4,}", prose)
    assert english == [], f"{source.stem}: English prose in the Chinese header: {english}"
