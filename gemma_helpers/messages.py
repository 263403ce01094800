"""What the curriculum prints to a learner, in English and in simplified Chinese: one keyed catalogue.

``say(key, **values)`` returns the message in the notebook's language, read by :func:`language` from GEMMA_LANG
(the Chinese notebooks' environment cell sets ``zh``; English is the default), with ``values`` put into its
``{placeholders}``. Every key has both languages with the same placeholders (``tests/test_messages.py``), and the
Chinese follows ``notebooks/src/zh/glossary.tsv``. :func:`term` translates the few labels and words the package's
tables print (the environment summary's row names, yes/no); :func:`pad` aligns a label by its width on screen,
where a Chinese character takes two columns.

What stays English on purpose: code identifiers, settings and their values (``GEMMA_HUB=mirror``), table column
names (a notebook's code cells are shared by both editions), plots (a Chinese font is not on every machine), and
the ``[result]`` lines a run records.
"""

from __future__ import annotations

import os
import string
import unicodedata

# The notebook's language: the same variable, read the same way, as the exercises' checks (exercises.language;
# tests/test_messages.py checks that the two agree; the exercises can take this reader instead of keeping their own).
LANG_ENV = "GEMMA_LANG"
LANGUAGES = ("en", "zh")


def language(environ: dict[str, str] | None = None) -> str:
    """'zh' when GEMMA_LANG names Chinese (zh, zh-CN, zh_TW, ...), else 'en'."""
    environ = os.environ if environ is None else environ
    lang = environ.get(LANG_ENV, "en").strip().lower().split("-")[0].split("_")[0]
    return lang if lang in LANGUAGES else "en"


MESSAGES: dict[str, dict[str, str]] = {
    # --- memory and cell_memory: the predicted GPU peak a notebook prints before a cell (the "what" stays English) ---
    "memory.peak_line": {
        "en": "predicted GPU peak of {what} on {gpu}: {total:.1f} GB ({parts}); {verdict} in {usable:g} GB less a "
              "{margin:g} GB margin",
        "zh": "预测 {what} 在 {gpu} 上的显存峰值：{total:.1f} GB（{parts}）；在 {usable:g} GB 减去 {margin:g} GB 余量之内"
              "{verdict}"},
    "memory.fits": {"en": "fits", "zh": "放得下"},
    "memory.does_not_fit": {"en": "DOES NOT FIT", "zh": "放不下"},
    "memory.kaggle": {"en": "  (Kaggle: {others})", "zh": "  （Kaggle：{others}）"},
    # --- gpu_guard: on a CUDA GPU, a failed Unsloth import and memory left allocated stop the notebook ---
    "gpu_guard.unsloth_failed": {
        "en": "Unsloth failed to import on this CUDA GPU ({error}). Without it this notebook would train another way "
              "(plain transformers in float32, without gradient checkpointing), slower and with more memory, so it "
              "stops here. To fix it, run the install cell again (it installs unsloth{version} and its pinned "
              "dependencies), restart the runtime, and run the notebook from the top; to run without Unsloth on "
              "purpose, set GEMMA_NO_UNSLOTH=1 before the first cell.",
        "zh": "在这块 CUDA GPU 上导入 Unsloth 失败（{error}）。没有它，这个笔记本会换一种方式训练（普通 transformers、"
              "float32、不用梯度检查点），更慢，占用的显存也更多，所以在这里停下。修复方法：重新运行安装单元格（它会安装 "
              "unsloth{version} 及其固定版本的依赖），重启运行时，再从头运行笔记本；如果你有意不用 Unsloth，请在第一个单元格"
              "之前设置 GEMMA_NO_UNSLOTH=1。"},
    "gpu_guard.held_by": {
        "en": "{allocated:.1f} GB is still allocated on the GPU after release_memory (the limit is {limit:g} GB), so "
              "the next model may not fit. Still held by: {names}. Delete them (del {dels}) and call "
              "release_memory() again.",
        "zh": "release_memory 之后 GPU 上仍占用 {allocated:.1f} GB 显存（上限 {limit:g} GB），下一个模型可能放不下。"
              "仍然占用显存的变量：{names}。删除它们（del {dels}），再调用一次 release_memory()。"},
    "gpu_guard.held_unknown": {
        "en": "{allocated:.1f} GB is still allocated on the GPU after release_memory (the limit is {limit:g} GB), so "
              "the next model may not fit, and no notebook variable holds it directly: a trainer, an exception's "
              "traceback or a displayed output may. Delete what you made from the model (for example a trainer) "
              "and call release_memory() again, or restart the runtime and run from the section you need.",
        "zh": "release_memory 之后 GPU 上仍占用 {allocated:.1f} GB 显存（上限 {limit:g} GB），下一个模型可能放不下，"
              "而且没有哪个笔记本变量直接占用它：可能是 trainer、某个异常的 traceback 或一个显示过的输出。删除你用这个模型"
              "创建的对象（例如 trainer），再调用一次 release_memory()；或者重启运行时，从你需要的那一节开始运行。"},
    # --- env: the mode and why, the configuration's lines, the flags ---
    "env.smoke_value": {
        "en": "GEMMA_SMOKE={value!r} is not understood: use 1 (smoke mode) or 0 (full mode)",
        "zh": "无法识别 GEMMA_SMOKE={value!r}：请设为 1（冒烟模式）或 0（完整模式）"},
    "env.mode_ci": {"en": "running under CI (CI=true)", "zh": "在 CI 中运行（CI=true）"},
    "env.mode_colab_gpu": {"en": "Colab GPU", "zh": "Colab 的 GPU"},
    "env.mode_cuda_gpu": {"en": "CUDA GPU found", "zh": "找到了 CUDA GPU"},
    "env.mode_no_gpu": {
        "en": "no CUDA GPU: CPU smoke mode on the embedded Gemma 3 270M",
        "zh": "没有 CUDA GPU：在 CPU 上以冒烟模式运行内置的 Gemma 3 270M"},
    "env.describe_mode": {"en": "mode: {mode} ({reason})", "zh": "模式：{mode}（{reason}）"},
    "env.describe_chat_model": {"en": "chat model: {model}", "zh": "对话模型：{model}"},
    "env.describe_replies": {
        "en": "chat replies: up to {tokens} new tokens, seed {seed}",
        "zh": "对话回复：最多 {tokens} 个新 token，随机种子 {seed}"},
    "env.describe_scale": {
        "en": "counts scaled by GEMMA_FULL_SCALE={scale} (items and steps only; a rehearsal)",
        "zh": "数量按 GEMMA_FULL_SCALE={scale} 缩放（只缩放样本数和步数；这是一次演练）"},
    "env.describe_flag": {"en": "flag {name}: {state} - {reason}", "zh": "开关 {name}：{state} - {reason}"},
    "env.describe_substitute": {"en": "substitute for {step}: {reason}", "zh": "{step} 的替代：{reason}"},
    "env.on": {"en": "on", "zh": "开"},
    "env.off": {"en": "off", "zh": "关"},
    "env.flag_gpu_on": {"en": "CUDA GPU present", "zh": "有 CUDA GPU"},
    "env.flag_gpu_off": {"en": "no CUDA GPU: this step needs one", "zh": "没有 CUDA GPU：这一步需要 GPU"},
    "env.flag_unsloth_vision_off": {
        "en": "Unsloth FastVisionModel runs on CUDA only", "zh": "Unsloth 的 FastVisionModel 只能在 CUDA 上运行"},
    "env.flag_hub_on": {
        "en": "full mode fetches models and data from the Hugging Face hub",
        "zh": "完整模式从 Hugging Face Hub 下载模型和数据"},
    "env.flag_hub_off": {
        "en": "smoke mode is offline: embedded model and local data",
        "zh": "冒烟模式不联网：使用内置模型和本地数据"},
    "env.consent_ticked": {
        "en": "ALLOW_MODEL_CODE is ticked: model-written code runs, in the sandbox only",
        "zh": "已勾选 ALLOW_MODEL_CODE：模型写的代码会运行，但只在沙箱里运行"},
    "env.consent_env": {
        "en": "GEMMA_ALLOW_CODE_EXECUTION=1 set: model-written code runs, in the sandbox only",
        "zh": "已设置 GEMMA_ALLOW_CODE_EXECUTION=1：模型写的代码会运行，但只在沙箱里运行"},
    "env.consent_off": {
        "en": "model-written code runs only when you opt in: tick ALLOW_MODEL_CODE (or set "
              "GEMMA_ALLOW_CODE_EXECUTION=1)",
        "zh": "只有你明确同意，模型写的代码才会运行：勾选 ALLOW_MODEL_CODE（或设置 GEMMA_ALLOW_CODE_EXECUTION=1）"},
    "env.summary_precision": {"en": "{dtype} on {device} - {reason}", "zh": "在 {device} 上用 {dtype} - {reason}"},
    "env.summary_mode": {"en": "{mode} ({reason})", "zh": "{mode}（{reason}）"},
    "env.vision_smoke": {
        "en": "smoke mode is offline (the 4B vision export downloads 8.6 GB, adds 15-25 min on a T4 and needs about "
              "20 GB of disk)",
        "zh": "冒烟模式不联网（4B 视觉模型的导出要下载 8.6 GB，在 T4 上多花 15-25 分钟，还需要约 20 GB 磁盘空间）"},
    "env.vision_on": {
        "en": "GEMMA_EXPORT_VISION=1: exports the 4B with its projector; this downloads 8.6 GB, adds 15-25 min on a "
              "T4 and needs about 20 GB of disk",
        "zh": "GEMMA_EXPORT_VISION=1：导出 4B 及其投影器；这要下载 8.6 GB，在 T4 上多花 15-25 分钟，还需要约 20 GB "
              "磁盘空间"},
    "env.vision_opt_in": {
        "en": "opt-in: it downloads 8.6 GB, adds 15-25 min on a T4 and needs about 20 GB of disk; set "
              "GEMMA_EXPORT_VISION=1 before the configuration cell to run it",
        "zh": "需要主动开启：它要下载 8.6 GB，在 T4 上多花 15-25 分钟，还需要约 20 GB 磁盘空间；要运行它，请在配置"
              "单元格之前设置 GEMMA_EXPORT_VISION=1"},
    "env.summary_platform": {
        "en": "{name} (from {marker}); GPUs {gpus}; outputs in {outputs}",
        "zh": "{name}（依据：{marker}）；GPU：{gpus}；输出保存在 {outputs}"},
    # --- precision: the dtype policy's reasons and the float16 probe's verdicts ---
    "precision.cpu_bf16": {
        "en": "CPU with native bfloat16 (AVX512-BF16/AMX): Unsloth's CPU backend runs in bfloat16 (float32's range, "
              "half the memory, faster LoRA steps: bench/cpu_precision.py)",
        "zh": "CPU 原生支持 bfloat16（AVX512-BF16/AMX）：Unsloth 的 CPU 后端用 bfloat16 运行（数值范围与 float32 "
              "相同，内存减半，LoRA 训练步更快：见 bench/cpu_precision.py）"},
    "precision.cpu_no_bf16": {
        "en": "CPU without native bfloat16 (no AVX512-BF16/AMX flag): bfloat16 would be emulated, about 2x slower "
              "than float32 (bench/cpu_precision.py), so float32",
        "zh": "CPU 不原生支持 bfloat16（没有 AVX512-BF16/AMX 标志）：bfloat16 只能模拟，比 float32 慢约 2 倍"
              "（见 bench/cpu_precision.py），所以用 float32"},
    "precision.cpu_plain": {"en": "CPU: float32, exact and safe", "zh": "CPU：float32，精确且安全"},
    "precision.gpu_bf16": {
        "en": "{gpu} supports bfloat16: float32's range, half the memory, no overflow",
        "zh": "{gpu} 支持 bfloat16：数值范围与 float32 相同，显存减半，不会溢出"},
    "precision.gpu_fp16_unsloth": {
        "en": "{gpu} has no bfloat16: float16 matmuls with Unsloth's float32 islands where Gemma 3's activations "
              "pass 65,504{old_gpu}",
        "zh": "{gpu} 不支持 bfloat16：矩阵乘法用 float16，Gemma 3 激活值超过 65,504 的部分由 Unsloth 保留在 float32"
              "（“float32 孤岛”）{old_gpu}"},
    "precision.old_gpu": {
        "en": "; compute capability below Unsloth's stated minimum 7.0: if Unsloth refuses it, use "
              "backend='transformers' (float32)",
        "zh": "；计算能力低于 Unsloth 声明的最低要求 7.0：如果 Unsloth 拒绝运行，请改用 backend='transformers'"
              "（float32）"},
    "precision.forced_fp16": {
        "en": " (GEMMA_FORCE_FP16=1: the T4's float16 path, forced)",
        "zh": "（GEMMA_FORCE_FP16=1：强制走 T4 的 float16 路径）"},
    "precision.gpu_fp32": {
        "en": "{gpu} has no bfloat16 and plain transformers in float16 overflows on Gemma 3: float32",
        "zh": "{gpu} 不支持 bfloat16，而 Gemma 3 在纯 transformers 的 float16 下会溢出：所以用 float32"},
    "precision.verdict_nonfinite": {
        "en": "{dtype}: inf/NaN from decoder layer {layer}, logits finite: {finite}; next token {token!r}",
        "zh": "{dtype}：从第 {layer} 个解码层起出现 inf/NaN，logits 全部有限：{finite}；下一个 token {token!r}"},
    "precision.verdict_finite": {
        "en": "{dtype}: largest |h| {peak:,.0f} ({where}), logits finite: {finite}; next token {token!r}",
        "zh": "{dtype}：最大 |h| 为 {peak:,.0f}（{where}），logits 全部有限：{finite}；下一个 token {token!r}"},
    "precision.passes_at": {"en": "passes 65,504 at layer {layer}", "zh": "在第 {layer} 层超过 65,504"},
    "precision.stays_below": {"en": "stays below 65,504", "zh": "始终低于 65,504"},
    "precision.policy_answer": {
        "en": "policy dtype {dtype}: next token {token!r}, logits finite: {finite}",
        "zh": "策略选定的 {dtype}：下一个 token {token!r}，logits 全部有限：{finite}"},
    # --- prompts and training: what stopped a reply, a training run, a GRPO round ---
    "stop.first_reply_own": {
        "en": "-> {model} stopped by {stop}: it ended its turn itself",
        "zh": "-> {model} 因 {stop} 停止：它自己结束了这一轮"},
    "stop.first_reply_limit": {
        "en": "-> {model} stopped by {stop}: it did not end its turn; it ran to the token limit",
        "zh": "-> {model} 因 {stop} 停止：它没有结束这一轮，一直生成到 token 上限"},
    "stop.reply_stats": {
        "en": "   [{tokens} tokens, {speed:.1f} tokens/s, stopped by {stop}]",
        "zh": "   [{tokens} 个 token，{speed:.1f} token/秒，因 {stop} 停止]"},
    "stop.train_budget": {
        "en": "; stopped by its time budget of {budget:.0f} s before step {steps}",
        "zh": "；在第 {steps} 步之前因 {budget:.0f} 秒的时间预算用完而停止"},
    "stop.grpo_budget": {
        "en": "; stopped by its time budget of {budget:.0f} s",
        "zh": "；因 {budget:.0f} 秒的时间预算用完而停止"},
    # --- notebook 05: consent to run model-written code, and what was skipped without it ---
    "bench.consent": {
        "en": "run model-written code in the sandbox: {answer} - {reason}",
        "zh": "在沙箱中运行模型写的代码：{answer} - {reason}"},
    "bench.yes": {"en": "yes", "zh": "是"},
    "bench.no": {"en": "no", "zh": "否"},
    "bench.skipped": {
        "en": "skipped: {skipped} programs were not run ({n} reference solutions, {n} empty completions, {m} model "
              "completions) and no HumanEval score is reported below.",
        "zh": "已跳过：{skipped} 个程序没有运行（{n} 个参考解答、{n} 个空补全、{m} 个模型补全），下面不报告 "
              "HumanEval 分数。"},
    # --- sources: where downloads come from (GEMMA_HUB), and every error a learner can meet there ---
    "sources.describe": {"en": "downloads from: {name} ({endpoint}; {reason})",
                         "zh": "下载来源：{name}（{endpoint}；{reason}）"},
    "sources.hub_default": {"en": "GEMMA_HUB unset, the default", "zh": "未设置 GEMMA_HUB，使用默认值"},
    "sources.hub_endpoint": {
        "en": "; HF_ENDPOINT is set, so huggingface_hub goes there",
        "zh": "；已设置 HF_ENDPOINT，huggingface_hub 会从那里下载"},
    "sources.mirror_needs_endpoint": {
        "en": "GEMMA_HUB=mirror needs HF_ENDPOINT set to the mirror's address, e.g. HF_ENDPOINT={example}",
        "zh": "GEMMA_HUB=mirror 需要把 HF_ENDPOINT 设为镜像站的地址，例如 HF_ENDPOINT={example}"},
    "sources.endpoint_not_url": {
        "en": "HF_ENDPOINT={endpoint!r} is not a URL; set e.g. HF_ENDPOINT={example}",
        "zh": "HF_ENDPOINT={endpoint!r} 不是网址；请设为例如 HF_ENDPOINT={example}"},
    "sources.mirror_reason": {
        "en": "GEMMA_HUB=mirror; models and datasets through HF_ENDPOINT",
        "zh": "GEMMA_HUB=mirror；模型和数据集都经由 HF_ENDPOINT 下载"},
    "sources.modelscope_reason": {
        "en": "GEMMA_HUB=modelscope; models via the ModelScope SDK, datasets from {datasets}",
        "zh": "GEMMA_HUB=modelscope；模型经由 ModelScope SDK 下载，数据集来自 {datasets}"},
    "sources.the_hub": {"en": "the Hub", "zh": "Hugging Face Hub"},
    "sources.unknown": {
        "en": "GEMMA_HUB={value!r} is not one of {choices}; unset it for the Hugging Face Hub, or GEMMA_HUB=mirror "
              "with HF_ENDPOINT={example}, or GEMMA_HUB=modelscope",
        "zh": "GEMMA_HUB={value!r} 不是 {choices} 之一：要用 Hugging Face Hub 就删掉这个变量；或设置 "
              "GEMMA_HUB=mirror 并设置 HF_ENDPOINT={example}；或设置 GEMMA_HUB=modelscope"},
    "sources.no_twin": {
        "en": "{hub_id} has no ModelScope id in gemma_helpers.sources.MODEL_TWINS; use GEMMA_HUB=mirror with "
              "HF_ENDPOINT={example}, or add the id with the page that shows it",
        "zh": "gemma_helpers.sources.MODEL_TWINS 中没有 {hub_id} 对应的 ModelScope id：请改用 GEMMA_HUB=mirror "
              "并设置 HF_ENDPOINT={example}，或把这个 id 连同能证明它的页面一起加进该表"},
    "sources.no_sdk": {
        "en": "GEMMA_HUB=modelscope needs the ModelScope SDK: pip install {package} (or use GEMMA_HUB=mirror with "
              "HF_ENDPOINT={example})",
        "zh": "GEMMA_HUB=modelscope 需要 ModelScope SDK：pip install {package}（或改用 GEMMA_HUB=mirror 并设置 "
              "HF_ENDPOINT={example}）"},
    "sources.dataset_from": {"en": "{dataset} from {endpoint}", "zh": "{dataset} 来自 {endpoint}"},
    "sources.dataset_modelscope": {
        "en": "{dataset} from {endpoint}: GEMMA_HUB=modelscope covers models only (no ModelScope copy of this "
              "dataset verified); set HF_ENDPOINT to a mirror if the Hub is blocked",
        "zh": "{dataset} 来自 {endpoint}：GEMMA_HUB=modelscope 只管模型（这个数据集在 ModelScope 上没有经过核实的"
              "副本）；如果 Hub 无法访问，请把 HF_ENDPOINT 设为镜像站"},
    "sources.announce": {"en": "downloads from: {what}", "zh": "下载来源：{what}"},
    # --- envcheck: the set-up's verdict on this environment (make env, scripts/setup_env.sh) ---
    "envcheck.cuda_packages": {
        "en": "CUDA packages installed: {bad} - remove them (`pip uninstall -y {bad_list}`) and install torch with "
              "`pip install torch=={torch}`",
        "zh": "装有 CUDA 软件包：{bad} - 请卸载它们（`pip uninstall -y {bad_list}`），再用 "
              "`pip install torch=={torch}` 安装 torch"},
    "envcheck.not_cpu_torch": {
        "en": "torch {version} is not the CPU build: `pip install --force-reinstall torch=={torch}`",
        "zh": "torch {version} 不是 CPU 版：请运行 `pip install --force-reinstall torch=={torch}`"},
    "envcheck.off_pin": {
        "en": "not at the versions pins.toml pins ({stale}): run `make env` (scripts/setup_env.sh)",
        "zh": "版本与 pins.toml 固定的不一致（{stale}）：请运行 `make env`（scripts/setup_env.sh）"},
    "envcheck.not_installed": {"en": "{package}: not installed, pinned {version}",
                               "zh": "{package}：未安装，固定版本为 {version}"},
    "envcheck.other_version": {"en": "{package}: installed {have}, pinned {version}",
                               "zh": "{package}：已安装 {have}，固定版本为 {version}"},
    "envcheck.ok": {
        "en": "ok: torch {torch}, no CUDA packages, the pinned versions installed",
        "zh": "正常：torch {torch}，没有 CUDA 软件包，已安装固定的版本"},
    "envcheck.bad_pin_line": {
        "en": "{path}:{n}: not a pin line ({line!r}); write name = \"version\"",
        "zh": "{path}:{n}：不是一行版本固定（{line!r}）；请写成 name = \"version\""},
    "envcheck.not_pinned": {
        "en": "{name!r} is not pinned in pins.toml; add it there (known: {known})",
        "zh": "pins.toml 没有固定 {name!r} 的版本；请在那里加上（已固定的有：{known}）"},
    "envcheck.no_pins": {
        "en": "{path} is missing: the pins live at the repository's root; run from a checkout of the curriculum "
              "(pip install -e .)",
        "zh": "找不到 {path}：版本固定文件在仓库根目录；请在克隆下来的课程仓库里运行（pip install -e .）"},
}

# Words and labels the package's tables print, English -> Chinese (the environment summary's rows and their
# yes/no values). A text not listed here is printed as it is: a name, a number, a version.
TERMS: dict[str, str] = {
    "GPU": "GPU", "compute capability": "计算能力", "GPU memory": "显存", "bfloat16 on GPU": "GPU 上的 bfloat16",
    "bfloat16 on CPU": "CPU 上的 bfloat16", "CPU cores": "CPU 核数", "RAM": "内存", "precision": "精度",
    "mode": "模式", "platform": "平台", "sources": "模型与数据", "yes": "是", "no": "否", "none": "无",
    "no platform variable set": "没有任何平台变量", "google.colab module": "google.colab 模块", "native": "原生支持", "emulated (slower than float32)": "模拟（比 float32 慢）", "not installed": "未安装",
}


def say(key: str, /, **values: object) -> str:
    """The message `key` in the notebook's language, its placeholders filled from `values`."""
    return MESSAGES[key][language()].format(**values)


def term(text: str) -> str:
    """A table's label or word in the notebook's language (unchanged in English, or when it has no entry)."""
    return TERMS.get(text, text) if language() == "zh" else text


def placeholders(text: str) -> list[tuple[str, str, str]]:
    """The (name, conversion, format) of each ``{placeholder}`` in a message, sorted: both languages must agree."""
    return sorted((name, conv or "", spec or "") for _, name, spec, conv in string.Formatter().parse(text)
                  if name is not None)


def width(text: str) -> int:
    """Columns the text takes on screen: two for a wide (CJK) character, one for the rest."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(label: str, columns: int = 20) -> str:
    """The label right-aligned to `columns` screen columns (``f"{label:>20}"`` counting a CJK character as two)."""
    return " " * max(0, columns - width(label)) + label
