"""Exercises that check themselves ("your turn"): each ``check_<name>(answer)`` prints right, or what is wrong.

A wrong answer gets a hint about the mistake it looks like (a factor of 2, the wrong log base, the interval of
another method), never the answer. The reference answers are computed here from the package's own functions (the
planners, ``chat_prompt``, the dtype policy, ``ollama_parameters``, ``bandwidth_bound``, ``mean_relaxed_accuracy``,
``chess.score``, ``wilson_interval``, ``anls``), so they change when the lesson's code does. Each check returns
True or False and never raises on a learner's answer. Every message a learner can see (verdict, explanation, hint)
comes in English and in simplified Chinese (terms as in ``notebooks/src/zh/glossary.tsv``), chosen by
:func:`language` from GEMMA_LANG, which the Chinese notebooks set to ``zh``; English is the default.

``ANSWER = None`` (the notebook's default) prints a hint and returns False, so *Run all* passes. CI checks the
checks: with ``GEMMA_EXERCISE_ANSWERS=tests/exercise_answers.py`` (a module of ``NAME = value`` constants, NAME the
exercise's name in capitals: ``KV_CACHE_4B_32K`` for :func:`check_kv_cache_4b_32k`; a relative path is looked up
from the working directory, then from the repository root), a ``None`` answer is replaced by the file's, and a file
answer that is missing or rejected raises :class:`ExerciseAnswerError`, so the notebook run fails where the lesson's
code and its answer key disagree.

One module per notebook (``nb00`` ... ``nb06``) holds its checks and the constants its cells print; ``core`` holds
what they share (the answer file, the verdict, the hints' two languages). Every name is re-exported here, so
``from gemma_helpers.exercises import check_legal_rate`` and ``exercises.KL_P`` work as they always have.
"""

from .core import ANSWERS_ENV, EXERCISES, FRAMES, LANG_ENV, ExerciseAnswerError, answers_file, language
from .nb00 import (
    CHAT_CONVERSATION,
    KV_CONTEXT,
    KV_SIZE,
    V100,
    check_chat_prompt_two_turns,
    check_kv_cache_4b_32k,
    check_v100_dtype,
)
from .nb01 import KL_P, KL_Q, PHONE, PHONE_CONTEXT, PHONE_QUANTS, PHONE_SIZES, check_kl_by_hand, check_phone_6gb_quants
from .nb02 import (
    DECODE_GPU,
    DECODE_QUANT,
    DECODE_SIZE,
    check_decode_bound_4b_t4,
    check_ollama_stop_lines,
    decode_bandwidth_gbs,
    decode_weights_gb,
)
from .nb03 import LEGAL_RATE_CASES, PROMOTION_FEN, START, check_legal_rate, check_promotion_uci
from .nb04 import QLORA_RANKS, QLORA_SIZE, RELAXED_CASES, check_chartqa_relaxed_accuracy, check_qlora_rank_64_extra_gb
from .nb05 import ANLS_ANSWERS, ANLS_PREDICTION, WILSON_CORRECT, WILSON_N, check_anls_invoice, check_wilson_27_of_40
from .nb06 import (
    DDP_BATCH,
    DDP_GPUS,
    ONE_GPU_ACCUM,
    ONE_GPU_BATCH,
    PLAN_MACHINE,
    PLAN_METHOD,
    PLAN_SIZE,
    check_grad_accum_two_t4,
    check_strategies_27b_two_t4,
)

__all__ = [  # what the notebooks and tests/exercise_answers.py have always imported from here
    "ANSWERS_ENV", "EXERCISES", "FRAMES", "LANG_ENV", "ExerciseAnswerError", "answers_file", "language", "KV_SIZE",
    "KV_CONTEXT", "check_kv_cache_4b_32k", "CHAT_CONVERSATION", "check_chat_prompt_two_turns", "V100",
    "check_v100_dtype", "PHONE", "PHONE_CONTEXT", "PHONE_SIZES", "PHONE_QUANTS", "check_phone_6gb_quants", "KL_P",
    "KL_Q", "check_kl_by_hand", "check_ollama_stop_lines", "DECODE_SIZE", "DECODE_QUANT", "DECODE_GPU",
    "decode_weights_gb", "decode_bandwidth_gbs", "check_decode_bound_4b_t4", "START", "LEGAL_RATE_CASES",
    "check_legal_rate", "PROMOTION_FEN", "check_promotion_uci", "RELAXED_CASES", "check_chartqa_relaxed_accuracy",
    "QLORA_SIZE", "QLORA_RANKS", "check_qlora_rank_64_extra_gb", "WILSON_CORRECT", "WILSON_N",
    "check_wilson_27_of_40", "ANLS_PREDICTION", "ANLS_ANSWERS", "check_anls_invoice", "ONE_GPU_BATCH",
    "ONE_GPU_ACCUM", "DDP_GPUS", "DDP_BATCH", "check_grad_accum_two_t4", "PLAN_SIZE", "PLAN_METHOD", "PLAN_MACHINE",
    "check_strategies_27b_two_t4",
]
