"""Reference answers to the notebooks' exercises (gemma_helpers.exercises), kept out of the notebooks.

One ``NAME = value`` constant per exercise, NAME the exercise's name in capitals. Written out as literals on
purpose: ``tests/test_exercises.py`` checks each against the value the package computes, so a change in the lesson's
code that changes an answer fails a test. CI passes this file to the notebooks with
``GEMMA_EXERCISE_ANSWERS=tests/exercise_answers.py``; there a check given ``None`` uses the answer from here.
"""

# 00: 5 global layers x 32,768 tokens + 29 sliding layers x 1,024 tokens, x 2 (K, V) x 4 KV heads x 256 x 2 bytes
KV_CACHE_4B_32K = 0.792723456  # GB
CHAT_PROMPT_TWO_TURNS = ("<bos><start_of_turn>user\nAnswer in one word.\n\nCapital of France?<end_of_turn>\n"
                         "<start_of_turn>model\nParis<end_of_turn>\n"
                         "<start_of_turn>user\nAnd of Italy?<end_of_turn>\n"
                         "<start_of_turn>model\n")
V100_DTYPE = "float32"

# 01: the planner's totals at 4K: 270M bf16 0.73 GB, 1B bf16 2.28 GB, 4B q4_k_m 3.85 GB (> 3.0 GB usable)
PHONE_6GB_QUANTS = {"270m": "bf16", "1b": "bf16", "4b": None}
KL_BY_HAND = 0.33808  # nats: 0.8 ln 2 + 0.15 ln 0.375 + 0.05 ln 0.25

# 02: both end-of-generation tokens, in prompts.STOP_TOKENS' order; 320 GB/s / 2.4943 GB of Q4_K_M text weights
OLLAMA_STOP_LINES = 'PARAMETER stop "<eos>"\nPARAMETER stop "<end_of_turn>"'
DECODE_BOUND_4B_T4 = 128.2925  # tokens/s

# 03: legal: e2e4, e7e5, "... g1f3 ...", e1g1; not: Nf3 (SAN), d2d4 (White's move), e4e5 (blocked)
LEGAL_RATE = 4 / 7
PROMOTION_UCI = "a7a8q"

# 04: right: 104 (4% off), "Increasing." (case and full stop aside), 2,480 (0.8% off); wrong: 20 (5.3% of 19),
# "rising" (another word), 9 (10%), 47 (6%)
CHARTQA_RELAXED_ACCURACY = 3 / 7
QLORA_RANK_64_EXTRA_GB = 1.847894016  # (64 - 16) x 2,406,112 LoRA parameters per unit of rank x 16 bytes

# 05
WILSON_27_OF_40 = (0.5202, 0.7992)
ANLS_INVOICE = 0.75  # 1 - 4/16 against "invoice 1234"; "1234" is 12 edits away, past the 0.5 threshold

# 06: 2 x 8 = 16 examples per step on one T4 = 2 GPUs x batch 2 x 4; 27B QLoRA needs 23 GB on one card: only the
# strategies that split the model fit two T4s
GRAD_ACCUM_TWO_T4 = 4
STRATEGIES_27B_TWO_T4 = ["layer split", "FSDP", "FSDP + CPU offload"]
