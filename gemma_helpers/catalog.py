"""The five Gemma 3 sizes: parameters, modalities, context, training tokens, architecture and hub ids.

Facts from the Gemma 3 model cards and the released configs; the memory planner (:mod:`gemma_helpers.memory`)
computes from the architecture numbers here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnknownModelError(KeyError, ValueError):
    """A model name that names no Gemma 3 size. A KeyError (a name missing from the catalog) and a ValueError (a bad
    argument), so either ``except`` catches it; its message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError would quote the message


# ----------------------------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class GemmaSize:
    """One Gemma 3 size: facts from the model cards and the released configs."""

    name: str
    params: float  # total parameters, vision tower included
    vision_params: float  # SigLIP encoder + projector (0 for text-only sizes)
    image_input: bool
    context: int
    training_tokens: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    sliding_window: int
    vocab: int
    hub: dict[str, str] = field(default_factory=dict)

    @property
    def modalities(self) -> str:
        """'text' or 'image + text'."""
        return "image + text" if self.image_input else "text"

    def layer_is_global(self, i: int) -> bool:
        """Gemma 3 interleaves five sliding-window layers with one global layer."""
        return (i + 1) % 6 == 0


def _hub(size: str) -> dict[str, str]:
    return {"google-it": f"google/gemma-3-{size}-it", "google-pt": f"google/gemma-3-{size}-pt",
            "unsloth-it": f"unsloth/gemma-3-{size}-it", "unsloth-pt": f"unsloth/gemma-3-{size}-pt",
            "gguf-it": f"unsloth/gemma-3-{size}-it-GGUF", "gguf-google": f"google/gemma-3-{size}-it-qat-q4_0-gguf"}


_270M_HUB = _hub("270m") | {"google-pt": "google/gemma-3-270m", "unsloth-pt": "unsloth/gemma-3-270m",
                            "gguf-google": "ggml-org/gemma-3-270m-GGUF"}

CATALOG: dict[str, GemmaSize] = {
    "270m": GemmaSize("270m", 268e6, 0, False, 32_768, "6T", 18, 640, 2048, 4, 1, 256, 512, 262_144, _270M_HUB),
    "1b": GemmaSize("1b", 1.00e9, 0, False, 32_768, "2T", 26, 1152, 6912, 4, 1, 256, 512, 262_144, _hub("1b")),
    "4b": GemmaSize("4b", 4.30e9, 0.417e9, True, 131_072, "4T", 34, 2560, 10240, 8, 4, 256, 1024, 262_208,
                    _hub("4b")),
    "12b": GemmaSize("12b", 12.2e9, 0.417e9, True, 131_072, "12T", 48, 3840, 15360, 16, 8, 256, 1024, 262_208,
                     _hub("12b")),
    "27b": GemmaSize("27b", 27.4e9, 0.417e9, True, 131_072, "14T", 62, 5376, 21504, 32, 16, 128, 1024, 262_208,
                     _hub("27b")),
}


def get_size(name: str) -> GemmaSize:
    """Look a size up by '270m', '4B', 'gemma-3-4b-it' or a hub id; unknown names list the known ones."""
    key = name.lower().split("/")[-1].replace("gemma-3-", "").replace("gemma3-", "")
    key = key.split("-")[0]
    if key not in CATALOG:
        raise UnknownModelError(f"unknown Gemma 3 size {name!r}: choose one of {', '.join(CATALOG)} "
                                "(or a hub id such as unsloth/gemma-3-4b-it)")
    return CATALOG[key]


def size_table() -> list[dict[str, object]]:
    """The catalog as rows for display."""
    return [{"size": s.name.upper(), "parameters": f"{s.params / 1e9:.2f}B", "input": s.modalities,
             "context": f"{s.context // 1024}K", "training tokens": s.training_tokens, "layers": s.layers,
             "hub (instruction-tuned)": s.hub["unsloth-it"]} for s in CATALOG.values()]
