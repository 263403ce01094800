"""The chart lesson's steps chained by `run` on tiny settings, and its before/after table on a hand-made case."""

import math
from dataclasses import replace

import pytest

from gemma_helpers import charts, vision_lesson
from gemma_helpers.env import build_config
from gemma_helpers.scores import EvalResult


def test_accuracy_table_per_type_with_chance_and_gain():
    groups = ("count", "count", "value", "value")
    before = EvalResult("t", "relaxed accuracy", (0.0, 1.0, 0.0, 0.0), groups=groups)
    after = EvalResult("t", "relaxed accuracy", (1.0, 1.0, 1.0, 0.0), groups=groups,
                       extra={"chance": (1 / 3, 1 / 3, 0.2, 0.2)})
    table = {r["question type"]: r for r in vision_lesson.accuracy_table(before, after)}
    assert list(table) == ["count", "value", "all"]
    assert table["count"] == {"question type": "count", "n": 2, "chance %": 33.3, "before %": 50.0, "after %": 100.0,
                              "gain (points)": 50.0}
    assert table["value"]["gain (points)"] == 50.0 and table["value"]["chance %"] == 20.0
    assert table["all"]["before %"] == 25.0 and table["all"]["after %"] == 75.0
    assert table["all"]["chance %"] == pytest.approx(100 * (2 / 3 + 0.4) / 4, abs=0.05)


def test_run_chains_the_steps_on_tiny_settings(tmp_path):
    settings = replace(build_config("smoke", has_cuda=False).vision, train_charts=32, eval_charts=8, max_steps=4, batch_size=4)
    result = vision_lesson.run(settings, tmp_path)
    before, after = result.before["synthetic"], result.after["synthetic"]
    assert isinstance(after, EvalResult) and after.n == 8 and result.backend == "transformers"
    assert after.groups == tuple(charts.SIMPLE_TYPES) * 2  # the types in rotation
    chance = after.by_group("chance")
    assert chance["count"][0] == pytest.approx(1 / 3) and chance["value"][0] == pytest.approx(1 / 5)
    assert len(after.answers) == 8 and not math.isnan(before.rate)
    assert result.training.steps == 4 and len(result.training.losses) == 4
    assert (result.paths["adapter"] / "adapter_config.json").exists()
    assert set(result.seconds) == {"data", "load", "evaluate before", "train", "evaluate after", "save"}


def test_an_open_question_has_no_chance_of_its_own_and_counts_as_a_wrong_guess_overall():
    result = EvalResult("t", "relaxed accuracy", (1.0, 0.0), groups=("largest", "sum"),
                        extra={"chance": (0.25, math.nan)})
    table = {r["question type"]: r for r in vision_lesson.accuracy_table(result, result)}
    assert table["sum"]["chance %"] is None and table["largest"]["chance %"] == 25.0
    assert table["all"]["chance %"] == 12.5
