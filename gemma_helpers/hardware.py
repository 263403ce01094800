"""What this machine is: its GPU and CPU (bfloat16 in silicon or emulated), its memory, and the platform it runs on.

* :func:`hardware_report`: one :class:`Hardware` record (GPU name, compute capability, memory, bfloat16 on GPU and
  CPU, cores, RAM, torch and Python versions, Colab, CI); torch is imported only here, and only if installed.
* :func:`cpu_native_bf16`, :func:`cpu_name`: read from the kernel's CPU flags (``/proc/cpuinfo``).
* :func:`detect_platform`: Colab, Kaggle, ModelScope's notebook (DSW) or a local machine, with its GPUs from the
  NVIDIA driver's files and the folder where outputs persist (:class:`Platform`).
* :func:`in_colab`, :func:`in_ci`, :func:`cuda_available`.

These are facts, not decisions: the mode and the notebooks' settings are :mod:`gemma_helpers.env`'s (which
re-exports these names), the dtype chosen from them :mod:`gemma_helpers.precision`'s.

Self-contained: copy this file alone into another project (standard library; torch and psutil when present).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}


def in_colab(environ: Mapping[str, str] | None = None) -> bool:
    """True inside Google Colab (its module is loaded, or its runtime variables are set)."""
    environ = os.environ if environ is None else environ
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in environ or "COLAB_GPU" in environ


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """True under a CI runner (GitHub Actions, GitLab and most others set CI=true)."""
    environ = os.environ if environ is None else environ
    return environ.get("CI", "").strip().lower() in _TRUE or "GITHUB_ACTIONS" in environ


def cuda_available() -> bool:
    """True when torch sees a CUDA device (False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class Hardware:
    """What this machine offers a model."""

    gpu_name: str | None
    compute_capability: str | None
    vram_gb: float | None
    bf16_supported: bool
    cpu_bf16: bool  # the CPU computes bfloat16 natively (AVX512-BF16 / AMX-BF16 / Arm BF16), not emulated
    cpu_cores: int
    ram_gb: float
    torch_version: str | None
    python: str
    colab: bool
    ci: bool

    def rows(self) -> list[tuple[str, str]]:
        """The report as (label, value) rows."""
        return [
            ("GPU", self.gpu_name or "none"),
            ("compute capability", self.compute_capability or "-"),
            ("GPU memory", f"{self.vram_gb:.1f} GB" if self.vram_gb else "-"),
            ("bfloat16 on GPU", "yes" if self.bf16_supported else "no"),
            ("bfloat16 on CPU", "native" if self.cpu_bf16 else "emulated (slower than float32)"),
            ("CPU cores", str(self.cpu_cores)),
            ("RAM", f"{self.ram_gb:.1f} GB"),
            ("torch", self.torch_version or "not installed"),
            ("Python", self.python),
            ("Colab", "yes" if self.colab else "no"),
            ("CI", "yes" if self.ci else "no"),
        ]


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 (/proc/cpuinfo "flags"); Arm lists "bf16" under "Features"


def cpu_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic in hardware, read from the flags the kernel reports.

    oneDNN's own check (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) says yes on any AVX-512 CPU, where bfloat16
    is emulated and a LoRA step runs about 2x slower than in float32; the CPU flags say what the silicon does.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return _macos_bf16()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        words = set(value.split())
        if key.strip() == "flags" and words.intersection(BF16_CPU_FLAGS):
            return True
        if key.strip() == "Features" and "bf16" in words:
            return True
    return False


def _macos_bf16() -> bool:
    import subprocess

    try:
        out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "1"


def hardware_report() -> Hardware:
    """Probe GPU (name, capability, VRAM, bf16), CPU cores and RAM."""
    gpu = cap = None
    vram = None
    bf16 = False
    torch_version = None
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            gpu, cap = props.name, f"{props.major}.{props.minor}"
            vram = props.total_memory / 1e9
            bf16 = bool(torch.cuda.is_bf16_supported()) and props.major >= 8
    except (ImportError, AttributeError, RuntimeError):
        pass
    cpu_bf16 = cpu_native_bf16()
    try:
        import psutil

        ram = psutil.virtual_memory().total / 1e9
    except ImportError:  # pragma: no cover - psutil is in requirements
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return Hardware(gpu, cap, vram, bf16, cpu_bf16, os.cpu_count() or 1, ram, torch_version,
                    platform.python_version(), in_colab(), in_ci())


# Where a notebook runs, told by each platform's own markers (issue 17: learners who cannot reach Colab).
# * Colab: COLAB_RELEASE_TAG / COLAB_GPU, as in_colab() above; Kaggle's kagglehub reads COLAB_RELEASE_TAG the same way.
# * Kaggle: KAGGLE_KERNEL_RUN_TYPE ("Interactive" or "Batch") is set in notebooks and scripts alike; Kaggle's own
#   client reads it with KAGGLE_DATA_PROXY_URL (github.com/Kaggle/kagglehub, src/kagglehub/env.py); the image is
#   github.com/Kaggle/docker-python, whose Dockerfile.tmpl also writes /etc/build_date and /etc/git_commit, and
#   whose notebooks write to /kaggle/working (the only folder kept as the notebook's output).
# * ModelScope's notebook (PAI-DSW): ModelScope's cloud containers set MODELSCOPE_ENVIRONMENT, which the modelscope
#   library names MODELSCOPE_CLOUD_ENVIRONMENT and reports in its user agent ("dedicated cloud containers";
#   github.com/modelscope/modelscope, modelscope/hub/constants.py and hub/api.py; Studio apps test it for "studio").
#   Its value in a notebook is not documented, so any value counts; a DSW_* variable counts only beside the
#   /mnt/workspace disk. /mnt/workspace is where ModelScope's notebook mounts its persistent storage (100 GB; other
#   paths are lost when the instance stops), as public tutorials of that notebook state; not yet seen here first-hand.
# The GPUs come from the NVIDIA driver's /proc/driver/nvidia/gpus/*/information files ("Model: Tesla T4"), which
# needs no torch and works the same on every platform.
KAGGLE_WORKING = "/kaggle/working"
MODELSCOPE_WORKSPACE = "/mnt/workspace"


@dataclass(frozen=True)
class Platform:
    """Where the notebook runs: the platform's name, its GPUs, where outputs persist, and how it was told."""

    name: str  # "colab", "kaggle", "modelscope" or "local"
    gpus: tuple[str, ...]  # model names from the NVIDIA driver, one per GPU; empty without one
    output_root: str  # the default for GEMMA_OUTPUT: a folder the platform keeps after the session
    marker: str  # the variable or file that told us

    @property
    def gpu_label(self) -> str:
        """'2x Tesla T4', '1x Tesla P100-PCIE-16GB' or 'none'."""
        if not self.gpus:
            return "none"
        names = sorted(set(self.gpus))
        return ", ".join(f"{self.gpus.count(n)}x {n}" for n in names)


def driver_gpus(root: Path | str = "/") -> tuple[str, ...]:
    """GPU model names from the NVIDIA driver's /proc files under root, one per GPU (empty without the driver)."""
    base = Path(root) / "proc" / "driver" / "nvidia" / "gpus"
    names = []
    for info in sorted(base.glob("*/information")) if base.is_dir() else []:
        for line in info.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                names.append(value.strip())
                break
    return tuple(names)


def detect_platform(environ: Mapping[str, str] | None = None, files: Path | str = "/") -> Platform:
    """Colab, Kaggle, ModelScope's notebook (DSW) or local, from the platform's own variables and files under files."""
    environ = os.environ if environ is None else environ
    root = Path(files)
    gpus = driver_gpus(root)
    if in_colab(environ):
        marker = next((k for k in ("COLAB_RELEASE_TAG", "COLAB_GPU") if k in environ), "google.colab module")
        return Platform("colab", gpus, "outputs", marker)
    if "KAGGLE_KERNEL_RUN_TYPE" in environ:
        return Platform("kaggle", gpus, KAGGLE_WORKING,
                        f"KAGGLE_KERNEL_RUN_TYPE={environ['KAGGLE_KERNEL_RUN_TYPE']}")
    if "KAGGLE_URL_BASE" in environ or "KAGGLE_DATA_PROXY_URL" in environ:
        key = "KAGGLE_URL_BASE" if "KAGGLE_URL_BASE" in environ else "KAGGLE_DATA_PROXY_URL"
        return Platform("kaggle", gpus, KAGGLE_WORKING, key)
    if (root / KAGGLE_WORKING.lstrip("/")).is_dir():
        return Platform("kaggle", gpus, KAGGLE_WORKING, f"folder {KAGGLE_WORKING}")
    if "MODELSCOPE_ENVIRONMENT" in environ:
        return Platform("modelscope", gpus, f"{MODELSCOPE_WORKSPACE}/outputs",
                        f"MODELSCOPE_ENVIRONMENT={environ['MODELSCOPE_ENVIRONMENT']}")
    dsw = sorted(k for k in environ if k.startswith("DSW_"))
    if dsw and (root / MODELSCOPE_WORKSPACE.lstrip("/")).is_dir():
        return Platform("modelscope", gpus, f"{MODELSCOPE_WORKSPACE}/outputs", f"{dsw[0]} and {MODELSCOPE_WORKSPACE}")
    return Platform("local", gpus, "outputs", "no platform variable set")


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo (or `cpuinfo`'s text), else platform.processor(), else 'unknown'."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
