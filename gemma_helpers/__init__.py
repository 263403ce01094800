"""Helpers for the hands-on Gemma 3 curriculum.

Import the module you need; each imports what it uses at its top, so the files to copy with one are its imports
(``python scripts/package_imports.py --needs MODULE``). The layers, lowest first (docs/design.md has the map):

1. Facts, formats and this machine: ``catalog`` (the five sizes), ``memory`` (what fits where), ``multigpu_plan``,
   ``prompts`` (chat format, stop tokens, sampling), ``scores``, ``provenance`` (a saved model's manifest),
   ``gguf_files``, ``llamacpp`` (installing and importing llama.cpp), ``tokenizer_files``, ``published``,
   ``envcheck``, ``sandbox``, ``rating``, ``sources`` (GEMMA_HUB), ``hardware`` (GPU, CPU, platform),
   ``precision`` (dtype policy, float16 probe), ``nf4`` (NF4 and 8-bit AdamW on GPU or CPU), ``speed``,
   ``messages`` (what a learner reads, in English and Chinese).
2. Where we run: ``env`` (mode and configuration), ``notebook_runner`` (execute and strip notebooks),
   ``cell_memory`` (each cell's predicted GPU peak), ``gpu_guard`` (a failed Unsloth import, memory left).
3. Lesson material: ``chess``, ``chess_constrained``, ``chess_game``, ``chess_match``, ``charts``, ``runtimes``,
   ``parity``, ``phone``.
4. Models and training: ``train``, ``models`` (the embedded 270M and the loader), ``vision``, ``vision_standin``,
   ``visual_qa``, ``distributed``, ``train_launch``.
5. Exercises: the ``exercises`` package (a core, one module per notebook).
6. Lessons (steps plus ``run()``): ``chess_lesson``, ``chess_grpo``, ``vision_lesson``, ``text_benchmarks``,
   ``export``, ``split_eval``, ``multigpu_lesson``.
"""

__version__ = "0.1.0"
