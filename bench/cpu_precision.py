"""bfloat16 or float32 for LoRA on this CPU? One LoRA training step timed in each, beside the policy's choice.

CPUs differ: with AVX512-BF16 or AMX the bfloat16 step is faster than float32; where bfloat16 is only emulated (AVX-512
without those flags, or AVX2) it is about 2x slower. `gemma_helpers.precision.policy` reads the CPU's flags
(`env.cpu_native_bf16`); this bench measures both dtypes on the embedded Gemma 3 270M with the same LoRA as notebook
03 (Unsloth's CPU backend, batch 4, the chess rows), each in a fresh process, and says whether the policy picked the
faster. Run: `.venv/bin/python bench/cpu_precision.py [--steps 8]`; it prints a table and writes
bench/results/cpu_precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r'''
import json, sys, time
import unsloth  # noqa: F401  (patches transformers first)
from transformers import TrainerCallback
from gemma_helpers import chess, models, train
from gemma_helpers.env import build_config
dtype, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = build_config("smoke", has_cuda=False).chess
rows, _ = chess.build_dataset(s, offline=True)
model, tokenizer = models.load(s.model, max_seq_length=s.max_length, dtype=dtype)
backend = models.default_backend()
model = train.add_lora(model, r=s.lora_r, alpha=s.lora_alpha, backend=backend)
ends = []
class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        ends.append(time.perf_counter())
trainer = train.sft_trainer(model, tokenizer, [r.conversation() for r in rows[: steps * s.batch_size]],
                            output_dir=out, max_steps=steps, batch_size=s.batch_size, learning_rate=s.learning_rate,
                            max_length=s.max_length, callbacks=[Clock()], backend=backend)
trainer.train()
used = str(next(p for p in model.parameters() if p.requires_grad is False).dtype).replace("torch.", "")
print("RESULT " + json.dumps({"dtype": dtype, "weights": used, "step_s": [b - a for a, b in zip(ends, ends[1:])]}))
'''


def run_child(dtype: str, steps: int, out: Path, emulate: bool = False) -> dict:
    """One fresh process: load in dtype, add LoRA, train `steps` steps; per-step seconds after the first.

    ``emulate`` caps oneDNN at AVX-512 without BF16/AMX (ONEDNN_MAX_CPU_ISA), as on a CPU that only emulates bf16.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if emulate:
        env["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE"
    proc = subprocess.run([sys.executable, "-c", CHILD, dtype, str(steps), str(out / dtype)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"the {dtype} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    """Time both dtypes, print the table, write the JSON."""
    from gemma_helpers.hardware import cpu_name, cpu_native_bf16, hardware_report
    from gemma_helpers.precision import policy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="training steps per dtype (the first is not counted)")
    parser.add_argument("--emulate", action="store_true",
                        help="also time both dtypes with oneDNN capped below AVX512-BF16/AMX (an emulating CPU)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu_precision.json"))
    args = parser.parse_args(argv)
    scratch = Path(os.environ.get("GEMMA_OUTPUT", "outputs")) / "cpu-precision"
    scratch.mkdir(parents=True, exist_ok=True)
    runs = {dtype: run_child(dtype, args.steps, scratch) for dtype in ("bfloat16", "float32")}
    median = {dtype: statistics.median(run["step_s"]) for dtype, run in runs.items()}
    faster = min(median, key=median.get)
    chosen = policy(hardware_report(), backend="unsloth").dtype
    flags = sorted({w for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
                    for w in line.split(":", 1)[1].split() if "bf16" in w or w in ("avx512f", "avx2")})
    print(f"{'dtype':>9} | {'weights':>9} | {'median s/step':>13} | steps")
    for dtype, run in runs.items():
        print(f"{dtype:>9} | {run['weights']:>9} | {median[dtype]:>13.2f} | {len(run['step_s'])}")
    print(f"bf16/fp32 step-time ratio {median['bfloat16'] / median['float32']:.2f}; faster: {faster}; "
          f"policy chose: {chosen} ({'matches' if chosen == faster else 'DOES NOT match'}); "
          f"native bf16 flags: {cpu_native_bf16()}")
    emulated = {}
    if args.emulate:
        emulated = {dtype: run_child(dtype, args.steps, scratch, emulate=True) for dtype in ("bfloat16", "float32")}
        em = {dtype: statistics.median(run["step_s"]) for dtype, run in emulated.items()}
        print(f"with ONEDNN_MAX_CPU_ISA=AVX512_CORE (bf16 emulated): bf16 {em['bfloat16']:.2f} s/step, "
              f"fp32 {em['float32']:.2f} s/step, ratio {em['bfloat16'] / em['float32']:.2f}; the policy on such a "
              f"CPU (no avx512_bf16/amx_bf16 flag) chooses float32")
        emulated = {"median_step_s": em, "ratio_bf16_over_fp32": em["bfloat16"] / em["float32"], "runs": emulated}
    result = {"cpu": cpu_name(), "cpu_flags": flags, "cores": os.cpu_count(),
              "native_bf16": cpu_native_bf16(), "median_step_s": median, "ratio_bf16_over_fp32":
              median["bfloat16"] / median["float32"], "faster": faster, "policy": chosen,
              "policy_matches_faster": chosen == faster, "runs": runs, "emulated_bf16": emulated,
              "load_avg": os.getloadavg(),
              "when": time.strftime("%Y-%m-%d %H:%M")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0



if __name__ == "__main__":
    sys.exit(main())
