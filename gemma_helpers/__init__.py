"""Helpers for the hands-on Gemma 3 curriculum.

Import the module you need; each imports only what it uses, so one file can be copied into another project.

Foundation: ``env`` (mode, hardware, configuration), ``catalog`` (the five sizes), ``memory`` (what fits where),
``models`` (the embedded 270M and the loader), ``precision`` (dtype policy, float16 probe), ``prompts`` (chat
format, stop tokens, sampling), ``train`` (LoRA on answers only, checkpoints and resume).
Lessons: ``export``, ``parity``, ``phone``, ``runtimes``, ``speed`` (01-02: GGUF and local runtimes); ``chess``
(03); ``charts``, ``vision`` (04); ``bench``, ``sandbox``, ``visual_qa``, ``published`` (05).
Tooling: ``notebook_runner`` (execute and strip notebooks), ``envcheck`` (no CUDA packages on the CPU).
"""

__version__ = "0.1.0"
