"""Runtimes benchmark: prompt and decode tokens/s for transformers (fp32) and llama.cpp per quant type, the fraction
of the memory-bandwidth bound each reaches, and the parity table (top-1 agreement, KL) of each GGUF.

Run: `.venv/bin/python bench/runtimes.py [--model embedded-chat] [--threads 1 2] [--positions 200]`.
It exports (or reuses) the GGUFs under outputs/bench_runtimes, prints a table, and writes
bench/results/runtimes.json. Speed on a machine shared with other jobs varies from run to run: the table says how
busy the machine was (load average) so numbers can be read in context.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables, write the JSON."""
    from gemma_helpers import export, parity, speed
    from gemma_helpers.models import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-chat")
    parser.add_argument("--quants", nargs="+", default=["f16", "q8_0", "q4_k_m"])
    parser.add_argument("--threads", nargs="+", type=int, default=[os.cpu_count() or 1])
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--gguf-dir", default=str(ROOT / "outputs" / "bench_runtimes"),
                        help="where the GGUFs are exported (or reused: notebooks/outputs/01_gguf_export works too)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "runtimes.json"))
    args = parser.parse_args(argv)

    source = Path(resolve(args.model))
    files = export.export_gguf(source, args.gguf_dir, args.quants)
    parity_rows = [asdict(r) for r in parity.check_files(source, files, args.positions).results.values()]
    model, _ = parity.load_reference(source)

    load_before = os.getloadavg()[0]
    speed_rows = []
    for threads in args.threads:
        import torch

        torch.set_num_threads(threads)
        measured = speed.measure_runtimes(model, {q: f.path for q, f in files.items()}, args.prompt_tokens,
                                          args.gen_tokens, threads=threads)
        speed_rows += [{**row, "threads": threads} for row in measured.table()]
    load_after = os.getloadavg()[0]

    print(f"\nparity against transformers fp32 ({args.model}, {args.positions} positions)")
    print(f"{'quant':8} {'top-1 %':>8} {'mean KL':>10} {'max KL':>9} {'flips':>6} {'near-tie':>9}")
    for r in parity_rows:
        print(f"{r['quant']:8} {100 * r['top1_agreement']:8.1f} {r['mean_kl']:10.2e} {r['max_kl']:9.2e} "
              f"{r['flips']:6d} {r['near_tie_flips']:9d}")
    print(f"\nspeed (load average {load_before:.1f} before, {load_after:.1f} after, {os.cpu_count()} cores)")
    print(f"{'runtime':13} {'weights':8} {'device':6} {'thr':>3} {'prompt t/s':>10} {'decode t/s':>10} "
          f"{'bound t/s':>9} {'% bound':>7}")
    for r in speed_rows:
        print(f"{r['runtime']:13} {r['weights']:8} {r['device']:6} {r['threads']:3d} {r['prompt tok/s']:10.1f} "
              f"{r['decode tok/s']:10.1f} {r['bound tok/s']:9.1f} {r['% of bound']:7.0f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "machine": platform.processor() or platform.machine(),
                               "cores": os.cpu_count(), "load_average": [load_before, load_after],
                               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "parity": parity_rows, "speed": speed_rows}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
