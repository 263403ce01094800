"""Helpers for the hands-on Gemma 3 curriculum.

Import the module you need (each imports only what it uses, so one file can be copied into another project):
``env`` (mode, hardware, configuration), ``models`` (catalog, memory planner, embedded model, loader),
``precision`` (dtype policy, float16 probe), ``prompts`` (chat format, stop tokens, sampling).
"""

__version__ = "0.1.0"
