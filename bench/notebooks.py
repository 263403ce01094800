"""Execute every notebook in smoke mode and time it, plus the embedded model's first conversion and cached load.

Prints a table and writes bench/results/notebooks.json. Run: `make bench` (or `.venv/bin/python bench/notebooks.py
[--skip-conversion] [notebook ...]`). The first conversion is timed in a throw-away cache (GEMMA_CACHE), so the real
cache is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gemma_helpers.notebook_runner import fresh_outputs, notebooks_in, run_notebook  # noqa: E402


def timed(code: str, env: dict[str, str]) -> float:
    """Seconds a fresh interpreter takes to run code."""
    started = time.time()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return round(time.time() - started, 1)


def conversion_times() -> dict[str, float]:
    """First conversion of the embedded GGUF (fresh cache) and a cached load, each in a fresh process."""
    from gemma_helpers.env import cache_dir
    from gemma_helpers.envcheck import pinned

    real = cache_dir()
    converter = f"transformers-{pinned('tokenizer-transformers')}"  # the one scripts/setup_env.sh installed
    with tempfile.TemporaryDirectory() as tmp:
        fresh = dict(os.environ, GEMMA_CACHE=tmp)
        (Path(tmp) / converter).symlink_to(real / converter)  # no re-download
        first = timed("from gemma_helpers import models; models.embedded_model_dir()", fresh)
    load = timed("from gemma_helpers import models; models.load('embedded', backend='transformers')", dict(os.environ))
    return {"first_conversion_s": first, "cached_load_s (fresh process, imports included)": load}


def main() -> None:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--skip-conversion", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GEMMA_SMOKE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    paths = [Path(p) for p in args.notebooks] or notebooks_in(ROOT / "notebooks")
    fresh_outputs(ROOT / "build")  # time whole runs: no checkpoint or GGUF of an earlier run is reused
    rows = [run_notebook(p, ROOT / "build") for p in paths]
    result = {"machine": {"cores": os.cpu_count()}, "notebooks": rows}
    if not args.skip_conversion:
        result["embedded_model"] = conversion_times()
    print(f"{'notebook':<40} {'status':<8} {'seconds':>8}")
    for row in rows:
        print(f"{row['notebook']:<40} {row['status']:<8} {row['seconds']:>8}")
    for key, value in result.get("embedded_model", {}).items():
        print(f"{key:<40} {'':<8} {value:>8}")
    out = ROOT / "bench" / "results" / "notebooks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
