"""Check the CPU environment: no CUDA packages (they would mean a second, multi-gigabyte torch), and every package
pinned in ``pins.toml`` (the one home of the curriculum's versions) installed at its pinned version."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from .messages import say

# Packages that only come with a CUDA stack, and that break Unsloth/transformers beside the CPU torch. (bitsandbytes is
# not one: from 0.50 it runs NF4 and 8-bit AdamW on the CPU, needs only torch, numpy and packaging, and is pinned.)
FORBIDDEN_PREFIXES = ("nvidia-", "torchvision", "triton", "xformers", "cuda-")
PINS_FILE = Path(__file__).resolve().parent.parent / "pins.toml"
# The requirement files the CPU set-up installs (scripts/setup_env.sh): their pins must be what is installed.
CPU_REQUIREMENTS = ("constraints-cpu.txt", "requirements.txt", "requirements-nodeps.txt", "requirements-dev.txt")


# pins.toml's lines: `[table]`, `name = "version"`, comments. This subset is all the file uses, read here without
# tomllib (Python 3.11+; the package supports 3.10) and by the shell scripts with one sed expression.
_PIN_LINE = re.compile(r'^([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*"([^"]+)"\s*(?:#.*)?$')


def pins(path: Path | None = None) -> dict[str, str]:
    """Every pinned version in pins.toml, {name: version} over all its tables."""
    path = path or PINS_FILE
    if not path.exists():
        raise FileNotFoundError(say("envcheck.no_pins", path=path))
    found: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or re.fullmatch(r"\[[\w.-]+\]\s*(#.*)?", line):
            continue
        match = _PIN_LINE.match(line)
        if not match:
            raise ValueError(say("envcheck.bad_pin_line", path=path, n=n, line=line))
        found[match.group(1)] = match.group(2)
    return found


def pinned(name: str, path: Path | None = None) -> str:
    """The version pins.toml pins for a package or tool (e.g. 'torch' -> '2.13.0')."""
    known = pins(path)
    if name not in known:
        raise KeyError(say("envcheck.not_pinned", name=name, known=", ".join(sorted(known))))
    return known[name]


def normalize(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): 'Unsloth_Zoo' -> 'unsloth-zoo'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def cuda_packages() -> list[str]:
    """Installed distributions that belong to a CUDA stack."""
    names = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    return sorted(n for n in names if n.startswith(FORBIDDEN_PREFIXES))


def torch_build() -> str:
    """The installed torch version string, e.g. '2.13.0+cpu'."""
    return metadata.version("torch")


def off_pin(root: Path | None = None) -> list[str]:
    """'name: installed X, pinned Y' for each package of the CPU requirement files installed at another version."""
    root = root or PINS_FILE.parent
    wanted: dict[str, str] = {}
    for name in CPU_REQUIREMENTS:
        for line in (root / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                package, version = line.split("==", 1)
                wanted[package.strip()] = version.strip()
    found = []
    for package, version in sorted(wanted.items()):
        try:
            have = metadata.version(package)
        except metadata.PackageNotFoundError:
            found.append(say("envcheck.not_installed", package=package, version=version))
            continue
        if have.split("+")[0] != version:
            found.append(say("envcheck.other_version", package=package, have=have, version=version))
    return found


def problems(expect_cpu: bool = True) -> list[str]:
    """What is wrong with this environment, as sentences that say what to do (empty when all is well)."""
    found = []
    torch = pinned("torch")
    bad = cuda_packages()
    if bad:
        found.append(say("envcheck.cuda_packages", bad=", ".join(bad), bad_list=" ".join(bad), torch=torch))
    if expect_cpu:
        version = torch_build()
        if not version.endswith("+cpu"):
            found.append(say("envcheck.not_cpu_torch", version=version, torch=torch))
    stale = off_pin()
    if stale:
        found.append(say("envcheck.off_pin", stale="; ".join(stale)))
    return found


def main() -> int:
    """Print the verdict; exit 1 on a problem."""
    issues = problems()
    for issue in issues:
        print("[envcheck]", issue)
    if not issues:
        print("[envcheck]", say("envcheck.ok", torch=torch_build()))
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
