"""The exercises' core: an answer checked, a verdict and a hint printed in the notebook's language.

``exercise(notebook, hint)`` makes a judge (answer -> (right, message)) into a check registered in
:data:`EXERCISES`, which ``_run``s it: an answer judged (None: the answer file's, when GEMMA_EXERCISE_ANSWERS names
one, else the hint), the verdict printed and returned. ``_t(en, zh)`` picks the message of the notebook's language
(:func:`language`, from GEMMA_LANG). ``_gigabytes`` and ``_off_by`` are the parts every numeric check shares: reading a number of GB (bytes recognised), and the hint for a wrong number (a
known mistake's, else "too large" or "too small" and how to work it out), so that each tail is written once.
"""

from __future__ import annotations

import math
import os
import runpy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ANSWERS_ENV = "GEMMA_EXERCISE_ANSWERS"
# The notebook's language: the Chinese notebooks' environment cell sets GEMMA_LANG=zh; English is the default.
LANG_ENV = "GEMMA_LANG"
# The verdict's framing in each language; the judges' explanations and hints pick theirs with _t.
FRAMES = {
    "en": {"no_answer": "No answer yet: set ANSWER and run this cell again. Hint: {hint}", "right": "Right! ",
           "not_yet": "Not yet: ", "unreadable": "could not read that answer ({kind}: {err}). {hint}"},
    "zh": {"no_answer": "还没有答案：请设置 ANSWER 后重新运行本单元格。提示：{hint}", "right": "正确！",
           "not_yet": "还不对：", "unreadable": "无法读取这个答案（{kind}：{err}）。{hint}"},
}


def language() -> str:
    """The language the checks answer in: GEMMA_LANG's value if it is one of FRAMES, else English."""
    lang = os.environ.get(LANG_ENV, "en").strip().lower().split("-")[0].split("_")[0]
    return lang if lang in FRAMES else "en"


def _t(en: str, zh: str) -> str:
    """The message in the notebook's language: the Chinese text under GEMMA_LANG=zh, else the English one."""
    return zh if language() == "zh" else en


EXERCISES: dict[str, tuple[str, Callable[[Any], bool]]] = {}  # name -> (notebook, check function)


class ExerciseAnswerError(RuntimeError):
    """The answer file named by GEMMA_EXERCISE_ANSWERS lacks an exercise's answer, or the check rejects it."""


def answers_file() -> Path | None:
    """The answer file named by GEMMA_EXERCISE_ANSWERS (relative: to the working directory, else the repo root)."""
    name = os.environ.get(ANSWERS_ENV, "").strip()
    if not name:
        return None
    for path in (Path(name), Path(__file__).resolve().parents[2] / name):
        if path.is_file():
            return path
    raise ExerciseAnswerError(f"{ANSWERS_ENV}={name!r}: no such file here or under the repository root")


def _close(value: float, target: float, rel: float = 0.02, abs_tol: float = 1e-9) -> bool:
    return math.isclose(value, target, rel_tol=rel, abs_tol=abs_tol)


def _known_mistake(value: float, mistakes: Sequence[tuple[float, str]], **tolerance: float) -> str | None:
    """The hint for the first typical wrong answer that value matches, or None."""
    return next((message for wrong, message in mistakes if _close(value, wrong, **tolerance)), None)


def _number(answer: Any) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _run(name: str, answer: Any, judge: Callable[[Any], tuple[bool, str]], hint: str) -> bool:
    """Judge an answer (None: the answer file's, if one is named, else a hint), print the verdict, return it."""
    from_file = False
    if answer is None:
        path = answers_file()
        if path is None:
            print(FRAMES[language()]["no_answer"].format(hint=hint))
            return False
        key = name.upper()
        answers = runpy.run_path(str(path))
        if key not in answers:
            raise ExerciseAnswerError(f"{path} has no {key}, the answer to exercise {name!r}")
        answer, from_file = answers[key], True
    try:
        right, message = judge(answer)
    except Exception as err:  # an answer of an unexpected shape is a learner's mistake, not a crash
        right, message = False, FRAMES[language()]["unreadable"].format(kind=type(err).__name__, err=err, hint=hint)
    print(FRAMES[language()]["right" if right else "not_yet"] + message)
    if from_file and not right:
        raise ExerciseAnswerError(f"the answer file's {name.upper()} is rejected by check_{name}: {message}")
    return right


def exercise(notebook: str, hint: tuple[str, str]):
    """Make a judge into an exercise: the judge returns (right, message) for an answer (and may raise on an answer of
    an odd shape); the check it becomes, ``check_<name>(answer=None) -> bool``, judges `answer` (None: the answer
    file's, else `hint` (English, Chinese) is printed), prints the verdict in the notebook's language and returns it.
    Registered in :data:`EXERCISES` under its name (``check_`` dropped) and its notebook."""
    def register(judge: Callable[[Any], tuple[bool, str]]) -> Callable[..., bool]:
        name = judge.__name__.removeprefix("check_")

        def check(answer: Any = None) -> bool:
            return _run(name, answer, judge, _t(*hint))

        check.__name__, check.__qualname__, check.__doc__ = judge.__name__, judge.__qualname__, judge.__doc__
        check.__module__ = judge.__module__
        EXERCISES[name] = (notebook, check)
        return check
    return register


def _gigabytes(answer: Any) -> tuple[float | None, str]:
    """(value in GB, note) for an answer meant in GB (10^9 bytes); a value above 1e5 is read as bytes and the note
    says so; (None, what to give) when it is not a number."""
    value = _number(answer)
    if value is None:
        return None, _t("give a number of GB (10^9 bytes), like 1.5", "请给出一个以 GB（10^9 字节）为单位的数，例如 1.5")
    if value > 1e5:
        return value / 1e9, _t("(read as bytes) ", "（按字节数读取）")
    return value, ""


def _off_by(value: float, ref: float, mistakes: Sequence[tuple[float, str]], how: tuple[str, str], note: str = "",
            sep: tuple[str, str] = (": ", "："), **tolerance: float) -> tuple[bool, str]:
    """The verdict on a wrong number: the hint of the first known mistake it matches, else "too large" or "too
    small" and how to work it out (`how`: English, Chinese), in the notebook's language, after `note`."""
    hint = _known_mistake(value, mistakes, **tolerance)
    if hint is not None:
        return False, note + hint
    if language() == "zh":
        return False, f"{note}{'太大了' if value > ref else '太小了'}{sep[1]}{how[1]}"
    return False, f"{note}{'too large' if value > ref else 'too small'}{sep[0]}{how[0]}"
