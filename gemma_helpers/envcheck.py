"""Check that the CPU environment holds no CUDA packages (they would mean a second, multi-gigabyte torch)."""

from __future__ import annotations

import sys
from importlib import metadata

# Packages that only come with a CUDA stack, and that break Unsloth/transformers beside the CPU torch.
FORBIDDEN_PREFIXES = ("nvidia-", "torchvision", "triton", "xformers", "bitsandbytes", "cuda-")


def cuda_packages() -> list[str]:
    """Installed distributions that belong to a CUDA stack."""
    names = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    return sorted(n for n in names if n.startswith(FORBIDDEN_PREFIXES))


def torch_build() -> str:
    """The installed torch version string, e.g. '2.13.0+cpu'."""
    return metadata.version("torch")


def problems(expect_cpu: bool = True) -> list[str]:
    """What is wrong with this environment, as sentences (empty when all is well)."""
    found = []
    bad = cuda_packages()
    if bad:
        found.append(f"CUDA packages installed: {', '.join(bad)} - remove them (`pip uninstall -y {' '.join(bad)}`) "
                     "and install torch with `pip install torch==2.13.0`")
    if expect_cpu:
        version = torch_build()
        if not version.endswith("+cpu"):
            found.append(f"torch {version} is not the CPU build: `pip install --force-reinstall torch==2.13.0`")
    return found


def main() -> int:
    """Print the verdict; exit 1 on a problem."""
    issues = problems()
    for issue in issues:
        print("[envcheck]", issue)
    if not issues:
        print(f"[envcheck] ok: torch {torch_build()}, no CUDA packages")
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
