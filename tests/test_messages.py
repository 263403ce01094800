"""The runtime messages in the notebook's language: every key in both languages, and GEMMA_LANG=zh honoured where a
learner in China meets them first (the environment summary, the float16 verdicts, every download error)."""

import ast
import re
import sys
from pathlib import Path

import pytest

from gemma_helpers import env, envcheck, messages, precision, sources

ROOT = Path(__file__).resolve().parent.parent
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(messages.LANG_ENV, "zh")


@pytest.mark.parametrize("key", sorted(messages.MESSAGES))
def test_every_key_has_both_languages_with_the_same_placeholders(key):
    texts = messages.MESSAGES[key]
    assert sorted(texts) == sorted(messages.LANGUAGES), f"{key}: give it exactly {messages.LANGUAGES}"
    assert messages.placeholders(texts["en"]) == messages.placeholders(texts["zh"]), key
    assert texts["zh"] != texts["en"], f"{key}: the Chinese is the English text"


def test_every_key_is_used_and_every_used_key_exists():
    code = "\n".join(p.read_text() for p in [*(ROOT / "gemma_helpers").glob("*.py"),
                                              *(ROOT / "notebooks" / "src").glob("*.py")]
                     if p.name != "messages.py")
    prefixes = "|".join(sorted({key.split(".")[0] for key in messages.MESSAGES}))
    used = set(re.findall(rf'"((?:{prefixes})\.[a-z0-9_]+)"', code))
    assert used - set(messages.MESSAGES) == set(), "a message key that is not in the catalogue"
    assert set(messages.MESSAGES) - used == set(), "a catalogue key nothing prints: remove it"


@pytest.mark.parametrize("value, lang", [("zh", "zh"), ("zh-CN", "zh"), ("ZH_tw", "zh"), (" zh ", "zh"),
                                         ("en", "en"), ("fr", "en"), ("", "en"), (None, "en")])
def test_the_switch_is_gemma_lang_read_as_the_exercises_read_it(monkeypatch, value, lang):
    from gemma_helpers import exercises

    if value is None:
        monkeypatch.delenv(messages.LANG_ENV, raising=False)
    else:
        monkeypatch.setenv(messages.LANG_ENV, value)
    assert messages.LANG_ENV == exercises.LANG_ENV
    assert messages.language() == lang == exercises.language()
    assert messages.say("env.mode_ci") == messages.MESSAGES["env.mode_ci"][lang]


def test_pad_aligns_by_screen_columns():
    assert messages.pad("RAM", 6) == "   RAM" and messages.pad("内存", 6) == "  内存"
    assert messages.width("显存 GB") == 7


def _t4() -> env.Hardware:
    return env.Hardware(gpu_name="Tesla T4", compute_capability="7.5", vram_gb=15.0, bf16_supported=False,
                        cpu_bf16=False, cpu_cores=2, ram_gb=12.7, torch_version="2.13.0", python="3.12.3",
                        colab=False, ci=False)


def test_environment_summary_and_the_mode_reason_in_chinese(zh, monkeypatch):
    monkeypatch.setattr(env, "hardware_report", _t4)
    monkeypatch.delenv("GEMMA_HUB", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    mode, reason = env.detect_mode({}, has_cuda=False)
    assert reason == "没有 CUDA GPU：在 CPU 上以冒烟模式运行内置的 Gemma 3 270M"
    summary = env.environment_summary(env.build_config(mode, reason, has_cuda=False))
    labels = [line.split(":", 1)[0].strip() for line in summary.splitlines()]
    english = [label for label, _ in _t4().rows()] + ["precision", "mode", "platform", "sources"]
    assert set(labels) & (set(english) - {"GPU", "torch", "Python", "Colab", "CI"}) == set()
    for phrase in ("显存", "不支持 bfloat16", "冒烟模式", "下载来源", "未设置 GEMMA_HUB", "输出保存在"):
        assert phrase in summary, phrase
    for english_words in ("has no bfloat16", "downloads from", "outputs in", "GEMMA_HUB unset", " yes", " no\n"):
        assert english_words not in summary, english_words
    widths = {messages.width(line.split(":", 1)[0]) for line in summary.splitlines()}
    assert widths == {20}, "the labels line up on screen"
    described = env.build_config(mode, reason, has_cuda=False).describe()
    assert described.startswith("模式：smoke（没有 CUDA GPU") and "开关 gpu：关 - 没有 CUDA GPU" in described


def test_environment_summary_stays_english_by_default(monkeypatch):
    monkeypatch.delenv(messages.LANG_ENV, raising=False)
    monkeypatch.setattr(env, "hardware_report", _t4)
    summary = env.environment_summary(env.build_config("smoke", "GEMMA_SMOKE=1", has_cuda=False))
    assert "          GPU memory: 15.0 GB" in summary and "Tesla T4 has no bfloat16" in summary
    assert not HAN.search(summary)


def _check(layers, finite=False):
    return precision.DtypeCheck(precision.Probe("float16", layers, finite), "<pad>", finite)


def test_float16_verdicts_in_chinese_and_in_english(zh, monkeypatch):
    broken = _check([1e3, 7e4, float("inf"), float("nan")])
    assert broken.verdict == "float16：从第 2 个解码层起出现 inf/NaN，logits 全部有限：False；下一个 token '<pad>'"
    fine = _check([1e3, 7e4, 1.04e5], finite=True)
    assert fine.verdict == "float16：最大 |h| 为 104,000（在第 1 层超过 65,504），logits 全部有限：True；下一个 token '<pad>'"
    assert "始终低于 65,504" in _check([10.0], finite=True).verdict
    assert "“float32 孤岛”" in precision.policy(_t4()).reason
    monkeypatch.delenv(messages.LANG_ENV)
    assert broken.verdict == "float16: inf/NaN from decoder layer 2, logits finite: False; next token '<pad>'"
    assert fine.verdict.startswith("float16: largest |h| 104,000 (passes 65,504 at layer 1)")


def _no_sdk(monkeypatch):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import modelscope raises ImportError
    sources._modelscope()


SOURCE_ERRORS = {
    "mirror without HF_ENDPOINT": (lambda mp: sources.choose({"GEMMA_HUB": "mirror"}), "需要把 HF_ENDPOINT"),
    "HF_ENDPOINT not a URL": (lambda mp: sources.choose({"GEMMA_HUB": "mirror", "HF_ENDPOINT": "hf-mirror.com"}),
                              "不是网址"),
    "unknown GEMMA_HUB": (lambda mp: sources.choose({"GEMMA_HUB": "huggingface"}), "不是 hub, mirror, modelscope 之一"),
    "unmapped id": (lambda mp: sources.modelscope_id("ggml-org/gemma-3-270m-GGUF"), "没有 ggml-org/gemma-3-270m-GGUF"),
    "no SDK": (_no_sdk, "需要 ModelScope SDK"),
}


@pytest.mark.parametrize("case", sorted(SOURCE_ERRORS))
def test_every_sources_error_in_chinese(zh, monkeypatch, case):
    call, phrase = SOURCE_ERRORS[case]
    with pytest.raises((ValueError, ImportError)) as err:
        call(monkeypatch)
    assert phrase in str(err.value)
    assert "GEMMA_HUB" in str(err.value) or "HF_ENDPOINT" in str(err.value)  # the setting to change stays named


def test_sources_lines_in_chinese(zh):
    assert sources.choose({}).describe() == "下载来源：hub（https://huggingface.co；未设置 GEMMA_HUB，使用默认值）"
    assert sources.choose({"GEMMA_HUB": "modelscope"}).describe().endswith(
        "GEMMA_HUB=modelscope；模型经由 ModelScope SDK 下载，数据集来自 Hugging Face Hub）")
    line = sources.dataset_source("cais/mmlu", {"GEMMA_HUB": "modelscope"})
    assert line.startswith("cais/mmlu 来自 https://huggingface.co：GEMMA_HUB=modelscope 只管模型")


def test_every_raise_in_sources_and_envcheck_goes_through_the_catalogue():
    for module in (sources, envcheck):
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                arg = node.exc.args[0]
                assert isinstance(arg, ast.Call) and getattr(arg.func, "id", "") == "say", \
                    f"{module.__name__} line {node.lineno}: put the message in gemma_helpers/messages.py"


def test_the_set_up_check_in_chinese(zh, monkeypatch):
    monkeypatch.setattr(envcheck, "cuda_packages", lambda: ["nvidia-cublas-cu12"])
    monkeypatch.setattr(envcheck, "torch_build", lambda: "2.13.0+cu128")
    monkeypatch.setattr(envcheck, "off_pin", lambda root=None: [
        messages.say("envcheck.not_installed", package="trl", version="1.15.0")])
    found = envcheck.problems()
    assert [f[:12] for f in found] == ["装有 CUDA 软件包：", "torch 2.13.0", "版本与 pins.tom"]
    assert "不是 CPU 版" in found[1] and found[2].startswith("版本与 pins.toml 固定的不一致（trl：未安装，固定版本为 1.15.0）")
    with pytest.raises(FileNotFoundError, match="找不到"):
        envcheck.pins(Path("/nonexistent/pins.toml"))


def test_every_call_fills_exactly_the_placeholders_of_its_message():
    """Each say("key", ...) in the package and the notebooks' sources passes the names its message uses, no more."""
    calls = 0
    for path in [*(ROOT / "gemma_helpers").glob("*.py"), *(ROOT / "notebooks" / "src").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say" and node.args):
                continue
            arg = node.args[0]
            keys = [arg.value] if isinstance(arg, ast.Constant) else [arg.body.value, arg.orelse.value]
            for key in keys:
                wanted = {name.split(".")[0].split("[")[0] for name, _, _ in
                          messages.placeholders(messages.MESSAGES[key]["en"])}
                assert {k.arg for k in node.keywords} == wanted, f"{path.name} line {node.lineno}: {key}"
                calls += 1
    assert calls > 40
