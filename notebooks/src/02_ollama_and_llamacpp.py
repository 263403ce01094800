# title: Run the GGUF locally: llama.cpp, its OpenAI-compatible server, and Ollama
# goal: Serve the GGUF files from notebook 01 the ways people run models on their own machines: llama.cpp inside Python, llama.cpp's OpenAI-compatible server called over HTTP, and Ollama with a Modelfile. Every runtime gets the same chat format, the recommended sampling and both stop tokens, and we check that they do. Then we measure prompt and generation speed for transformers and for llama.cpp at each quant type, and compare it with the limit memory bandwidth puts on generation.
# learn: why a runtime must be given the model's chat template (and what happens when it is not) | the recommended Gemma 3 sampling and its two stop tokens, in llama.cpp, an HTTP request and a Modelfile | starting, calling and always stopping a local OpenAI-compatible server | writing an Ollama TEMPLATE in Go's template language that renders exactly the training format | why generation speed is bounded by memory bandwidth divided by the bytes of the weights
# %%
# Configuration: every knob of this notebook comes from here (smoke mode shrinks them and picks the embedded model).
import pandas as pd

from gemma_helpers import export, parity, prompts, runtimes, speed
from gemma_helpers.env import get_config, output_dir, record_result

CONFIG = get_config()
S = CONFIG.export
print(CONFIG.describe())
OUT = output_dir("02_runtimes")
OLLAMA = runtimes.ollama_status()  # Colab: `curl -fsSL https://ollama.com/install.sh | sh` then `ollama serve &`
print(f"ollama: {'on' if OLLAMA else 'off'} - {OLLAMA.reason}")
print("llama-server program:", runtimes.llama_binary("llama-server") or "absent: python -m llama_cpp.server is used")
# %% [markdown]
# ## 0. llama.cpp for Python, and its server
#
# Everything below runs llama.cpp through **llama-cpp-python**; section 3 also starts its OpenAI-compatible server
# (`python -m llama_cpp.server`), which needs the package's `[server]` extras (uvicorn, FastAPI...). Where they are
# missing (Colab), the helper installs the prebuilt CPU wheel from llama-cpp-python's own index (about 20 s), or
# builds it from source where no wheel fits (about 7 minutes on two cores); it prints which and how long first.
# %%
export.ensure_llama_cpp(server=True)
# %% [markdown]
# ## 1. The files
#
# Notebook 01 wrote the GGUF files and recorded their source; if they are there they are reused, otherwise they are
# exported now (about a minute). When they hold notebook 03's chess fine-tune, they are used for the chess game
# only: a model taught nothing but moves has nothing to say about the sky. The chat, the streamed reply, the server
# and the Modelfile use a **chat model** (`S.model`: the embedded chat model in smoke mode, the instruction-tuned
# 270M in full mode), exported the same way, at the quant type we serve (`serve_quant`).
# %%
SOURCE = export.choose_source(S.model, output_dir(S.chess_output_glob), output_dir("01_gguf_export"))
source, what = SOURCE.folder, SOURCE.what
files = export.export_gguf(SOURCE, output_dir("01_gguf_export"), S.quant_types)
print("notebook 01's files:", what)
for q, f in files.items():
    print(f"  {q:7s} {f.size_mb:7.1f} MB  {f.path}")
if SOURCE.finetune:  # the chat model, never taught chess, exported the same way
    chat_source = export.choose_source(S.model, OUT / "no-chess-here", OUT)
    chat_files = export.export_gguf(chat_source, OUT / "chat-gguf", (S.serve_quant,))
else:  # notebook 01's files already hold the chat model
    chat_source, chat_files = SOURCE, files
SERVE = chat_files[S.serve_quant]  # the chat model's file: sections 2 to 4 chat with it
GAME = files[S.serve_quant]  # notebook 01's file (the chess fine-tune when notebook 03 ran): the game plays it
print(f"chat model ({S.model}): {SERVE.path}\nchess game: {GAME.path}")
# %% [markdown]
# ## 2. llama.cpp inside Python
#
# `runtimes.load_llama` opens a file with llama-cpp-python and hands it **our** chat template. Without one,
# llama-cpp-python formats the conversation in the llama-2 style (`[INST] ... [/INST]`), a format Gemma never saw.
# Three checks before chatting:
#
# 1. both Gemma stop tokens (`<eos>` = 1, `<end_of_turn>` = 106) end generation in llama.cpp;
# 2. llama.cpp turns our prompt into exactly the tokens the transformers tokenizer makes (one `<bos>`, not two);
# 3. greedy replies: the same tokens from llama.cpp as from transformers, file by file.
#
# We chat with the chat model's file of the type `serve_quant` names: Q4_K_M on a GPU (full mode), Q8_0 in smoke
# mode. Why Q8_0 for a 270M fine-tune, in notebook 01's numbers (smoke mode, `bench/results/notebooks.json`): against
# the fine-tuned model, its Q8_0 file picks the same next token 98% of the time (mean KL 0.005) and its Q4_K_M file
# only 73.5% (mean KL 0.72), because the embedded base sits on Q4_K's grid and rounding takes a small LoRA's
# changes away again, for a file only 38 MB smaller. The greedy table below compares notebook 01's files (`files`:
# the chess fine-tune when notebook 03 ran) with the model they came from.
# %%
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(chat_source.folder)
question = [{"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "Why is the sky blue?"}]
llm = runtimes.load_llama(SERVE.path, n_ctx=1024)  # the chat model (SERVE, chosen in section 1)
print("stop tokens end generation:", runtimes.stop_tokens_are_eog(llm))
same = runtimes.prompt_tokens(llm, question) == tokenizer(prompts.chat_prompt(question), add_special_tokens=False)["input_ids"]
print("prompt tokens identical to transformers':", same)
# %% [markdown]
# Now a streamed reply with the recommended sampling (temperature 1.0, top-k 64, top-p 0.95, min-p as in
# `prompts.RECOMMENDED`), seeded so the run is repeatable:
# %%
reply = runtimes.chat(llm, question, max_tokens=CONFIG.max_new_tokens, seed=0)
llm.close()
# %%
reference_model, _ = parity.load_reference(source)  # notebook 01's model, compared with its own files
hf_ids = prompts.generate_ids(reference_model, tokenizer, question, max_new_tokens=24, greedy=True)
pd.DataFrame(runtimes.greedy_agreement(files, ("f16", S.serve_quant, "q4_k_m"), hf_ids, question, tokenizer.decode,
                                       max_tokens=24))
# %% [markdown]
# **The chess fine-tune, as a phone runs it.** When notebook 03 ran first, these files are its chess fine-tune, and
# the game from the end of notebook 03 is played here against the GGUF, through llama.cpp, with the lesson's prompt,
# twice. **Held by a grammar** (`chess_game.gguf_constrained_player`): a GBNF grammar whose only strings are the
# position's legal moves (`chess_constrained.legal_move_grammar`), so llama.cpp can only write a legal one, the way
# a phone app would keep a model to the rules. **Free** (`chess_game.gguf_player`): an illegal reply is shown and
# counted, and a random legal move stands in for it. Otherwise the files hold the chat model, never taught chess,
# and the cell says so. To play yourself: `chess_game.play_widget(chess_game.Game(),
# chess_game.gguf_constrained_player(runtimes.load_llama(GAME.path, n_ctx=512)))`.
# %%
from IPython.display import display

from gemma_helpers import chess_game

if SOURCE.finetune:
    chess_llm = runtimes.load_llama(GAME.path, n_ctx=512)  # the chess fine-tune's file, not the chat model's
    moves, style = ["e2e4", "g1f3", "f1c4"], chess_game.PromptStyle.of(SOURCE.record)  # asked as it was trained
    grammar_record = chess_game.scripted_game(moves, chess_game.gguf_constrained_player(chess_llm),
                                              on_illegal="random", style=style).check()
    assert grammar_record.model_illegal == 0, "a reply held by the legal-move grammar was illegal"
    game_record = chess_game.scripted_game(moves, chess_game.gguf_player(chess_llm, CONFIG.chess.answer_tokens),
                                           on_illegal="random", style=style).check()
    chess_llm.close()
    print(f"{S.serve_quant} GGUF of the chess fine-tune, held by the grammar: {grammar_record.summary()}")
    print(f"{S.serve_quant} GGUF of the chess fine-tune, free:                {game_record.summary()}")
    record_result("02.chess_game_gguf_legal_rate", game_record.model_legal_rate)
    display(pd.DataFrame(grammar_record.rows()))
else:
    print(f"no game: the files hold {what}, not notebook 03's chess fine-tune (run notebook 03, then this one)")
# %% [markdown]
# ## 3. An OpenAI-compatible server on this machine
#
# `llama-server` (llama.cpp's own server; `python -m llama_cpp.server` where the program is absent) serves the file
# over HTTP with the same API as OpenAI's, so any OpenAI client can talk to it. `runtimes.openai_server` binds it
# to 127.0.0.1 only (nothing outside this machine can reach it), on a free port, passes our template, takes a fixed
# number of requests, and stops the server when the `with` block ends, also after an error.
# %%
with runtimes.openai_server(SERVE.path, max_requests=S.server_requests) as server:
    print(f"{server.program} listening on {server.base_url}")
    answers = [server.chat(question, max_tokens=CONFIG.max_new_tokens, seed=i) for i in range(S.server_requests)]
pd.DataFrame([{"seed": i, "reply": a["text"], "finish": a["finish_reason"], "prompt tokens": a["usage"]["prompt_tokens"],
               "seconds": a["seconds"]} for i, a in enumerate(answers)])
# %% [markdown]
# `finish_reason` is `stop` when the model ended its turn with `<end_of_turn>`, `length` when it hit `max_tokens`.
# The same request from a shell (sampling fields included; llama.cpp accepts `top_k` and `min_p` beside OpenAI's):
# %%
print(f"""curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' -d '{{
  "messages": [{{"role": "user", "content": "Why is the sky blue?"}}], "max_tokens": 64,
  "temperature": 1.0, "top_k": 64, "top_p": 0.95, "min_p": {prompts.RECOMMENDED.min_p}}}'""")
# %% [markdown]
# ## 4. Ollama
#
# Ollama builds a model from a **Modelfile**: `FROM` the GGUF, a `TEMPLATE` in Go's template language, `PARAMETER`
# lines for sampling and stop strings. Our TEMPLATE folds a system message into the first user turn and writes the
# assistant as `model`, like Gemma 3's own; Ollama adds `<bos>` itself. Since a wrong template fails silently (the
# model just answers worse), we render it for several conversations and compare byte for byte with
# `prompts.chat_prompt`, whether or not Ollama is installed.
#
# **Your turn.** Before the Modelfile is printed below: which `PARAMETER stop "..."` lines must it hold for Gemma 3?
# Write them as one string, a line each (section 2 checked which tokens end generation).
# %%
from gemma_helpers import exercises

ANSWER = None  # your answer here, e.g. 'PARAMETER stop "..."\nPARAMETER stop "..."'
exercises.check_ollama_stop_lines(ANSWER)
# %% [markdown]
# Now the Modelfile `runtimes.modelfile` writes, and its check:
# %%
modelfile = runtimes.modelfile(SERVE.path)
(OUT / "Modelfile").write_text(modelfile)
print(modelfile)
conversations = [question, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                            {"role": "user", "content": "Name a chess opening."}]]
problems = runtimes.check_modelfile(modelfile, conversations)
print("Modelfile check:", "TEMPLATE renders exactly chat_prompt's text, both stops present" if not problems else problems)
print(repr(runtimes.render_go_template(runtimes.modelfile_template(modelfile), conversations[1])))
# %%
if OLLAMA:
    runtimes.ollama_create("gemma3-curriculum", OUT / "Modelfile")
    print(runtimes.ollama_chat("gemma3-curriculum", question, max_tokens=CONFIG.max_new_tokens))
else:
    print(f"Ollama skipped: {OLLAMA.reason}. With it: `ollama create gemma3-curriculum -f {OUT / 'Modelfile'}` "
          "then `ollama run gemma3-curriculum`.")
# %% [markdown]
# ## 5. Speed, and the limit memory puts on it
#
# Reading the prompt (prefill) processes many tokens per pass over the weights, so it is limited by arithmetic.
# Writing the answer (decode) makes one token per pass, and each pass reads **every weight once** (Gemma's output
# head is its embedding, so even the 262K-row embedding is read in full). So decode can never be faster than
#
# $$\text{tokens/s} \le \frac{\text{memory bandwidth (bytes/s)}}{\text{bytes of weights}}$$
#
# The bandwidth is that of the memory the weights are read from: RAM for llama.cpp here (llama-cpp-python keeps every
# layer on the CPU unless told to offload), the GPU's own memory for transformers on a GPU (a T4's is 320 GB/s by
# specification, about 15 times a laptop's RAM). We measure each (large array copies in RAM, a device-to-device copy
# on the GPU), take the bytes from each GGUF's tensor table (and 4 bytes per parameter for transformers in float32),
# and draw each row's bound on the speed plot. Numbers are greedy, after a warm-up; on a busy shared machine they
# vary from run to run. On a quiet 2-core CPU llama.cpp's Q4_K_M decodes about 50 tokens/s, several times
# transformers' float32; smaller files decode faster because fewer bytes cross the memory bus per token, which is
# also why a phone prefers Q4_K_M.
# %%
measured = speed.measure_runtimes(reference_model, {q: f.path for q, f in files.items()}, S.speed_prompt_tokens,
                                  S.speed_tokens)
del reference_model
speeds, bandwidths, bounds = measured.speeds, measured.bandwidths, measured.bounds()
for bw in bandwidths.values():
    print(f"{bw.device}: {bw.gbs:.1f} GB/s - {bw.source}")
pd.DataFrame(measured.table())
# %% [markdown]
# **Your turn.** Gemma 3 4B in Q4_K_M on a free T4: its text weights take the planner's size printed below (the
# vision tower sits in a separate mmproj file and is not read while writing text), and a T4's memory moves 320 GB/s by
# specification. By hand: at most how many tokens per second can it decode?
# %%
print(f"Q4_K_M text weights of Gemma 3 4B: {exercises.decode_weights_gb():.2f} GB; "
      f"{exercises.DECODE_GPU}: {exercises.decode_bandwidth_gbs():.0f} GB/s")
ANSWER = None  # your answer here, in tokens per second
exercises.check_decode_bound_4b_t4(ANSWER)
# %% [markdown]
# ## 6. Results
# %%
speed.plot_speed(speeds, bounds, bandwidths, OUT / "speed.png")
by_quant = {s.quant: s for s in speeds}
for device, bw in bandwidths.items():
    record_result(f"02.{device}_memory_bandwidth_gbs", round(bw.gbs, 1))
for s in speeds:
    record_result(f"02.{s.runtime}.{s.quant}.decode_tps", round(s.decode_tps, 1))
record_result("02.q4_k_m.fraction_of_bound", round(by_quant["q4_k_m"].decode_tps / bounds["q4_k_m"], 2))
record_result("02.q4_k_m_vs_transformers_decode", round(by_quant["q4_k_m"].decode_tps / by_quant["fp32"].decode_tps, 1))
record_result("02.modelfile_ok", not problems);
