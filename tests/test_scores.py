"""The one evaluation result type: rates, intervals, groups, table rows, and clear errors on bad input."""

import math

import pytest

from gemma_helpers.scores import EvalResult, versus_chance, wilson_interval


def test_rate_interval_groups_and_row():
    r = EvalResult("chess", "legal move", (1.0, 0.0, 1.0, 1.0), groups=("puzzle", "puzzle", "game", "game"),
                   extra={"solved": (1.0, 0.0, math.nan, math.nan)})
    assert r.n == 4 and r.rate == 0.75
    assert r.rate_of("solved") == 0.5  # NaN: the metric does not apply to that item
    assert r.interval() == wilson_interval(3, 4)
    assert r.by_group() == {"puzzle": (0.5, 2), "game": (1.0, 2)}
    assert r.row("base") == {"model": "base", "n": 4, "legal move %": 75.0, "solved %": 50.0}


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="one per item"):
        EvalResult("mmlu", "accuracy", (1.0, 0.0), groups=("a",))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        EvalResult("mmlu", "accuracy", (2.0,))
    with pytest.raises(KeyError, match="has no metric"):
        EvalResult("mmlu", "accuracy", (1.0,)).rate_of("exact match")
    with pytest.raises(ValueError, match="n must be positive"):
        wilson_interval(0, 0)


def test_versus_chance_reads_the_interval_not_the_rate():
    # 10 of 20 right: Wilson interval about 30%-70%, wholly above a chance of 25%
    assert versus_chance("model", 10, 20, 0.25, "accuracy").startswith(
        "model: 50% accuracy (95% interval 30%-70%, n=20) is above chance (25%)")
    # 8 of 20 right is 40%, above 25% as a rate, but the interval (about 22%-61%) holds 25%: not apart from chance
    assert "cannot be told apart from chance (25%)" in versus_chance("model", 8, 20, 0.25)
    # none of 100 right: the interval's top (about 3.7%) lies below a chance of 25%
    assert "is below chance (25%)" in versus_chance("model", 0, 100, 0.25)
    result = EvalResult(task="t", metric="accuracy", scores=(1.0,) * 10 + (0.0,) * 10)
    assert result.versus_chance("model", 0.25) == versus_chance("model", 10, 20, 0.25, "accuracy")
