"""4-bit NF4 weights and 8-bit AdamW through bitsandbytes, the same calls on a CUDA GPU and on this CPU.

bitsandbytes (pinned in pins.toml, installed ``--no-deps``: its only dependencies are torch, numpy and packaging)
runs NF4 and the 8-bit blockwise optimizers on x86-64 CPUs since 0.50, so the full-mode rehearsal loads the 4-bit
models and steps ``optim="adamw_8bit"`` for real. One trap is handled here, in one place (:func:`keep_trainable`):

* **The CPU repack.** In bitsandbytes 0.50.2, ``Linear4bit.forward`` on a CPU whose native library reports
  AVX512-BF16 (``bitsandbytes.functional.has_avx512bf16()``; AMX CPUs report it too), in eval mode, with an input
  that needs no gradient (``torch.no_grad()`` generation), converts the layer's weight *in place* into a packed
  layout for a fused inference kernel (``_convert_weight_packed_for_cpu``, recorded as
  ``quant_state.packing_format_for_cpu``) and never converts it back. From then on ``matmul_4bit`` sends every
  call, training ones included, to that kernel (``gemv_4bit``), which has no backward: gradients through the layer
  are silently missing (LoRA adapters below it stop learning). The packing also asserts that the output width
  divides by 32 and fails on narrow layers (a tiny model's 16-, 32- or 48-wide ones), which is the "layers narrower
  than 64" failure. And ``Params4bit.to()`` does not undo the packing (bitsandbytes#2078), so a packed model moved
  with ``.to(device)`` carries scrambled weights. The packing buys only inference speed on the CPU, so this
  module turns it off per layer (``support_avx512bf16_for_cpu = False``, the attribute the condition reads) and
  undoes a packing already made: every forward then dequantizes and multiplies, as on a GPU, with its backward.
  A CUDA GPU never packs (the condition needs a CPU input), so there it changes nothing.

Unsloth's CUDA path loads 4-bit through its own loader (``FastModel`` / ``FastVisionModel``); this module serves
the transformers path: the rehearsal's CPU, and a GPU without Unsloth.
"""

from __future__ import annotations

import logging
from typing import Any

# bitsandbytes' CPU backend logs at import that an optional fused kernel (the packed-layout one, for inference)
# could not be fetched from a kernel hub; :func:`keep_trainable` turns that path off, so the line is noise here. Set
# when this module is imported, before anything (`import unsloth` among them) imports bitsandbytes.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def import_bitsandbytes():
    """bitsandbytes (its CPU backend's note about the optional packed-layout kernel quieted at this module's import)."""
    import bitsandbytes

    return bitsandbytes


def nf4_config(compute_dtype: Any):
    """transformers' BitsAndBytesConfig for NF4 with double-quantized scales (Unsloth's 4-bit checkpoints' recipe,
    and the 4.127 bits a weight that :mod:`gemma_helpers.memory` counts), computing in ``compute_dtype``."""
    import_bitsandbytes()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def keep_trainable(model) -> int:
    """Stop bitsandbytes' CPU repack on every 4-bit layer of ``model`` (see the module's note) and undo one already
    made; returns how many 4-bit layers the model has. Call it after loading and before the first forward."""
    modules = list(model.modules())
    if not any(type(m).__name__ == "Linear4bit" for m in modules):
        return 0  # a 16-bit model: bitsandbytes need not even be installed
    bnb = import_bitsandbytes()
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    layers = [m for m in modules if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
        state = getattr(layer.weight, "quant_state", None)
        if getattr(state, "packing_format_for_cpu", False):
            layer.weight.data, layer.weight.quant_state = _convert_weight_packed_for_cpu_inverse(layer.weight.data,
                                                                                                 state)
    return len(layers)


def packed_layers(model) -> list[str]:
    """Names of the 4-bit layers whose weight is in the CPU's packed inference layout (none after
    :func:`keep_trainable`)."""
    return [name for name, m in model.named_modules()
            if getattr(getattr(getattr(m, "weight", None), "quant_state", None), "packing_format_for_cpu", False)]


def config_optimizer(optimizer: str) -> str:
    """The ``optim`` to build trainer arguments with; :func:`keep_optimizer` then sets the one asked for.

    Unsloth's CPU backend patches every ``TrainingArguments`` (``unsloth_zoo/cpu/trainer.py``,
    ``normalize_cpu_training_arguments``) to replace an 8-bit optimizer by torch's fused AdamW, printing that it
    "needs a GPU": bitsandbytes had no CPU kernels when that was written, and 0.50 has them. Built with torch's AdamW
    (which that patch leaves as it is, without a message) and then set back, the arguments carry 8-bit AdamW on
    the CPU as on a T4, and no line tells a learner otherwise."""
    return "adamw_torch" if optimizer.endswith("8bit") else optimizer


def keep_optimizer(args, optimizer: str):
    """Set ``args.optim`` to ``optimizer`` after the arguments were built (see :func:`config_optimizer`)."""
    from transformers.training_args import OptimizerNames

    if optimizer.endswith("8bit"):
        import_bitsandbytes()  # the trainer builds bitsandbytes' optimizer; quiet its CPU import note first
    args.optim = OptimizerNames(optimizer)
    return args
