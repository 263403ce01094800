# title: Setup and tour of Gemma 3
# goal: Meet the Gemma 3 family on whatever machine you have: detect the hardware and the precision it supports, see which of the five sizes fits on a phone, a laptop, a free T4 or a 24 GB card, have a first streamed conversation with a real Gemma 3 model, and watch float16 break Gemma 3 live, then fix it.
# learn: how the curriculum picks full or smoke mode, and where every knob lives | the five sizes, their context windows, and a memory planner you can check against a real file | Gemma 3's chat format, its two stop tokens and the recommended sampling | why a base model can ramble past its turn, and what an instruction-tuned model (or 40 LoRA steps) changes | why Gemma 3 overflows in float16 (activations pass 65,504) and what the policy does instead
# unsloth: yes
# %%
# Configuration: every knob of this notebook comes from here (smoke mode shrinks them and picks the embedded model).
import time

from gemma_helpers import cell_memory, models, precision, prompts
from gemma_helpers.env import get_config, record_result
from gemma_helpers.messages import say

CONFIG = get_config()
T = CONFIG.tour
print(CONFIG.describe())
# %% [markdown]
# ## 1. The Gemma 3 family
#
# Five sizes share one recipe. The two small ones read text only and have a 32K-token context; 4B, 12B and 27B
# also read images (896x896, 256 image tokens each) and have a 128K context. The numbers below come from
# `gemma_helpers.models.CATALOG`, which the memory planner also uses.
# %%
import pandas as pd

pd.DataFrame(models.size_table())
# %% [markdown]
# ## 2. What fits where
#
# Memory for inference = **weights** (parameters x bits per weight of the file format) + **KV cache** (2 x layers
# x KV heads x head size x tokens, with Gemma 3's sliding-window layers holding at most their window) + runtime
# **overhead**. The planner counts the weights tensor by tensor with llama.cpp's own rules, so we can check it against
# the real GGUF file that ships this curriculum's embedded model.
# %%
gguf = models.embedded_gguf()
estimate = models.weight_bytes("270m", "q4_k_m")
real = gguf.stat().st_size
print(f"Q4_K_M Gemma 3 270M: planner {estimate / 1e6:.0f} MB, real file {real / 1e6:.0f} MB "
      f"({(estimate - real) / real:+.1%}; the file also holds the 262K-entry tokenizer)")
record_result("planner_error_q4_k_m_270m", round((estimate - real) / real, 4))
pd.DataFrame(models.fit_table(quant=T.plan_quant, context=T.plan_context)).set_index("size")
# %%
models.plot_memory(context=T.plot_context);
# %% [markdown]
# **Your turn.** How many GB (10^9 bytes) does the KV cache of **Gemma 3 4B** take at a **32,768-token** context in
# bfloat16? The architecture numbers are in `models.get_size("4b")` (layers, KV heads, head size, sliding window).
# Work it out by hand first; the check tells you what kind of mistake a wrong number looks like.
# %%
from gemma_helpers import exercises

ANSWER = None  # your answer here, in GB, e.g. 1.5
exercises.check_kv_cache_4b_32k(ANSWER)
# %% [markdown]
# Read the plot as: a bar under a device's line fits there. A phone keeps about half its memory for the system and
# other apps, so a 4 GB phone runs the 270M and 1B at Q4_K_M; a free T4 (15 GB usable) runs 4B in bf16 or 12B
# quantized; 27B needs a 24 GB card at Q4_K_M, or an 80 GB card in bf16.
#
# ## 3. A first conversation
#
# Gemma 3 has no system role: a system message is folded into the first user turn, followed by a blank line. Each
# turn is wrapped in `<start_of_turn>` / `<end_of_turn>`, and the model's turn is called `model`.
# %%
conversation = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
print(prompts.chat_prompt(conversation))
print("stop tokens:", prompts.STOP_TOKENS, "| recommended sampling:", prompts.RECOMMENDED)
# %% [markdown]
# **Your turn.** Write by hand, as one Python string, the exact prompt Gemma 3 gets for this conversation, ready
# for the model's next reply (then compare with `prompts.chat_prompt`, not before):
# %%
print(exercises.CHAT_CONVERSATION)
ANSWER = None  # your answer here: "<bos>..."
exercises.check_chat_prompt_two_turns(ANSWER)
# %% [markdown]
# Which model answers depends on the mode: smoke mode's embedded model is **google/gemma-3-270m, the base
# (pre-trained) model**, full mode's is the instruction-tuned **gemma-3-270m-it**. A base model was never trained on
# chat turns: its `<end_of_turn>` embedding is untrained, so it tends to answer and then carry on with more text. An
# instruction-tuned model ends its turn with `<end_of_turn>`. Watch (greedy decoding); the line after the reply says
# what ended it:
# %%
started = time.time()
cell_memory.show("00 chat")  # the planner's prediction for full mode on a free T4 (gemma_helpers.memory)
model, tokenizer = models.load(CONFIG.chat_model)
record_result("load_seconds_chat_model", round(time.time() - started, 1))
reply = prompts.chat(model, tokenizer, conversation, max_new_tokens=T.first_reply_tokens, greedy=True)
print("\n" + say("stop.first_reply_own" if reply.stopped_by != "max_new_tokens" else "stop.first_reply_limit",
                model=CONFIG.chat_model, stop=reply.stopped_by))
# %% [markdown]
# To end its turns, a base model must learn the turn format. In smoke mode this notebook teaches it: **40 LoRA steps
# on 46 short conversations** (`data/chat_warmup.jsonl`), loss on the answers only, then merged into the weights
# (about 30 s on two CPU cores, once, then cached; notebook 03 explains LoRA properly). In full mode the
# instruction-tuned model loaded above already knows the format, so it is used as it is.
# %%
if T.chat_model == CONFIG.chat_model:
    chat_model, chat_tokenizer = model, tokenizer
else:
    started = time.time()
    chat_model, chat_tokenizer = models.load(T.chat_model)
    print(f"loaded {T.chat_model} in {time.time() - started:.1f} s")
    print((models.embedded_chat_dir() / "provenance.json").read_text())
# %% [markdown]
# Now the same question, streamed token by token with the recommended sampling (`prompts.RECOMMENDED`, printed
# above) and `CONFIG.seed`, so a rerun gives the same replies, and a few more. Generation stops at `<end_of_turn>`
# (id 106) or `<eos>` (id 1).
# %%
questions = ["What is the capital of France?", "Name an animal that lives in the sea.", "What is 12 plus 30?"]
stops = []
for question in questions:
    print(f"user: {question}\nmodel: ", end="")
    reply = prompts.chat(chat_model, chat_tokenizer, [{"role": "user", "content": question}],
                         max_new_tokens=CONFIG.max_new_tokens, seed=CONFIG.seed)
    print(say("stop.reply_stats", tokens=len(reply.token_ids), speed=reply.tokens_per_second, stop=reply.stopped_by))
    stops.append(reply.stopped_by)
record_result("chat_replies_stopped_at_end_of_turn", f"{stops.count('<end_of_turn>')}/{len(stops)}")
record_result("decode_tokens_per_second", round(reply.tokens_per_second, 1))
# %% [markdown]
# ## 4. Why Gemma 3 breaks in float16
#
# float16 cannot hold a number above **65,504**. Gemma 3's residual stream (the running sum every layer adds to) can
# grow beyond that: in the embedded 270M it passes 100,000. The probe records the largest |value| after every decoder
# layer, in float32 and in float16 and bfloat16 copies of the same weights.
#
# It probes a **plain transformers copy** of the model on the CPU, not the copy loaded above: on a GPU without
# bfloat16 (Colab's T4) Unsloth runs Gemma 3 with parts kept in float32 ("float32 islands") precisely so that float16
# does not overflow, and bfloat16 there would only be emulated. The lines below are read off the measured values.
# %%
text = "The capital of France is Paris. It is known for the Eiffel tower and"
prompt = "The Eiffel Tower is in the city of"
checks = precision.check_dtypes(models.loadable(CONFIG.chat_model), text, prompt)
for check in checks.values():
    print(check.verdict)
fp32, fp16, bf16 = (checks[d].probe for d in ("float32", "float16", "bfloat16"))
record_result("fp32_peak_activation", round(fp32.peak))
record_result("fp16_first_nonfinite_layer", fp16.first_nonfinite)
precision.plot_probe(fp32, fp16, bf16);
# %% [markdown]
# Where float16 overflows, the hidden state turns to `inf`, then every logit to NaN, and the "prediction" is
# meaningless (the argmax of NaNs is token 0, `<pad>`). bfloat16 keeps float32's exponent range (up to ~3.4e38) with
# fewer mantissa bits, so it does not overflow. (A model whose activations stay below 65,504 on this text, such as
# the tiny random stand-in of the CI rehearsal, shows no overflow at all: the verdicts above say which case this is.)
#
# **The fix is a policy, decided in one place** (`gemma_helpers.precision.policy`): bfloat16 on GPUs that have it
# (A100, L4, H100, RTX 30xx+); on fp16-only GPUs such as Colab's free T4, Unsloth runs the matrix multiplies in
# float16 but keeps the parts that overflow in float32, while plain transformers must use float32; on a CPU, float32
# unless it has native bfloat16. Here is the policy for this machine, and the answer of the model as it loaded it:
# %%
policy = precision.policy()
print(policy)
token, finite = precision.next_token(model, tokenizer, prompt, dtype=policy.dtype)
print(say("precision.policy_answer", dtype=policy.dtype, token=token, finite=finite))
record_result("policy_dtype", policy.dtype)
record_result("policy_next_token", token)
# %% [markdown]
# **Your turn.** A lab has an old **V100** (compute capability 7.0: no bfloat16). Which dtype must Gemma 3 run in
# there with plain transformers (no Unsloth), and why? Answer with the dtype's name; the check prints the reason.
# %%
ANSWER = None  # your answer here, e.g. "float16"
exercises.check_v100_dtype(ANSWER)
# %% [markdown]
# ## 5. Limits and responsible use
#
# - **Knowledge cutoff**: Gemma 3's training data ends in **August 2024**; it does not know later events and may state
#   outdated facts with confidence. Check anything that matters.
# - **Languages and bias**: trained on 140+ languages, but quality and bias vary across them and across cultures;
#   add human review for sensitive uses.
# - **Reasoning**: small models in particular miss sarcasm and figurative language, and long chains of reasoning
#   can break; the 270M is for narrow tasks you fine-tune it on (notebook 03), not for open-ended advice.
# - **Use policy**: Gemma's terms include Google's
#   [prohibited use policy](https://ai.google.dev/gemma/prohibited_use_policy); high-stakes decisions (medical,
#   legal, financial) need qualified humans.
#
# ## What we measured
# Everything above was computed in this run; the key numbers are collected by `record_result` (and by
# `make run` into `build/summary.json`).
