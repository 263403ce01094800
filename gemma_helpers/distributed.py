"""Past one GPU: start a training module under accelerate's launcher (one process, DDP or FSDP2) and read back what
each process wrote.

:func:`launch` runs ``<python> -m accelerate.commands.launch --config_file launch_configs/<strategy>.yaml
--num_processes N ... -m <module> <args>`` as one subprocess, logs it to a file, and raises :class:`LaunchError`
with the log's tail when it fails. accelerate's launcher (torchrun inside) starts and watches the processes. The same
three config files serve GPUs and the CPU.

A launch that is cut short leaves nothing behind (:func:`stop_launch`): the launcher starts in a session (process
group) of its own, and on a timeout, an exception or a KeyboardInterrupt (a notebook's stop button) every process
under it gets SIGTERM, then, after a grace period, SIGKILL. The group alone is not enough: torchrun starts each
worker in a session of its own (torch/distributed/elastic/multiprocessing/subprocess_handler: ``start_new_session``),
so the workers are found as the launcher's descendants before the first signal and signalled one by one; otherwise
they would keep their GPUs and the next launch would run out of memory or hang.

What we found about the CPU (accelerate 1.16.0; Colab ships 1.14.0 and Kaggle 1.13.0, whose launcher and state
code take the same paths):

* ``accelerate launch --cpu`` goes to its *simple* launcher (commands/launch.py, ``launch_command``: the FSDP and
  multi-GPU launchers are skipped when ``args.cpu``), which starts one process, or N only through ``mpirun`` with
  ``--mpirun_hostfile`` (the MULTI_CPU path Intel documents, with oneCCL or MPI). So ``--cpu`` is passed for the
  'single' strategy only; for DDP and FSDP2 (on any count, 1 included), the config's torchrun launcher starts them and ``ACCELERATE_USE_CPU=true`` in their
  environment makes accelerate's state CPU-bound: ``PartialState`` then picks DistributedType.MULTI_CPU and the
  backend ``gloo`` unless torch was built with MPI (state.py, ``_prepare_backend``); the pip CPU wheel is not, and
  the training script records the backend it got.
* Threads: the launcher's ``--num_cpu_threads_per_process`` becomes ``OMP_NUM_THREADS`` for each process; left out,
  accelerate divides the *physical* cores (psutil) and keeps 1 when that is not above 1. :func:`launch` passes
  ``max(1, cores // N)`` (2 cores, 2 processes: 1 thread each) and the script calls ``torch.set_num_threads`` with
  it; each rank's JSON says what it got.
* FSDP on the CPU: accelerate sets DistributedType.FSDP only for accelerator device types, so a CPU launch of the
  FSDP config would silently train as DDP; ``train_launch.start_state`` switches the state to FSDP with the plugin
  the launcher described, and torch's FSDP2 (``fully_shard``) runs on gloo.

Each process of ``gemma_helpers.train_launch`` writes ``rank{r}.json``; :func:`read_ranks` reads them and
:func:`summary` merges them into one row (steps, losses, start-up and training seconds, peak memory).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "launch_configs"
STRATEGIES = ("single", "ddp", "fsdp2")
# FSDP2's wrap classes for a vision model (Gemma3ForConditionalGeneration): the SigLIP tower's layers too
# (transformers models/siglip/modeling_siglip.py). fsdp2.yaml names the text layer alone, which every Gemma 3 has;
# train_launch adds the SigLIP layer itself when the model has a vision tower (train_launch.wrap_classes).
VISION_WRAP = "Gemma3DecoderLayer,SiglipEncoderLayer"


class LaunchError(RuntimeError):
    """A launch failed: the message holds the command, the exit code and the log's tail."""


@dataclass
class LaunchResult:
    """What a launch did: its command, exit code, wall seconds, log file, and the output folder's rank files."""

    command: list[str]
    returncode: int
    seconds: float
    log_path: Path
    strategy: str
    num_processes: int
    cpu: bool
    out_dir: Path | None = None
    ranks: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """The ranks merged (:func:`summary`), with the launch's own wall seconds."""
        return {**summary(self.ranks), "launch_seconds": round(self.seconds, 2)}


def config_path(strategy: str) -> Path:
    """The accelerate config file of a strategy ('single', 'ddp' or 'fsdp2')."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {STRATEGIES} (the files in {CONFIGS})")
    return CONFIGS / f"{strategy}.yaml"


def read_config(strategy: str) -> dict:
    """The strategy's config file as a dict (what accelerate's launcher reads)."""
    import yaml

    return yaml.safe_load(config_path(strategy).read_text())


def threads_per_process(num_processes: int, cores: int | None = None) -> int:
    """CPU threads each process gets: the cores divided evenly, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, num_processes))


def launch_command(module: str, args: Sequence[str], *, strategy: str = "ddp", num_processes: int = 2,
                   cpu: bool = False, python: str | None = None, wrap: str | None = None) -> list[str]:
    """The argv :func:`launch` runs (no side effects; for reading and for tests)."""
    config = config_path(strategy)
    if num_processes < 1:
        raise ValueError(f"num_processes must be at least 1, not {num_processes}")
    if strategy == "single" and num_processes != 1:
        raise ValueError(f"strategy 'single' runs one process, not {num_processes}: use 'ddp' or 'fsdp2' for more")
    cmd = [python or sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
           "--num_processes", str(num_processes)]
    if cpu:
        cmd += ["--num_cpu_threads_per_process", str(threads_per_process(num_processes))]
        if strategy == "single":
            cmd.append("--cpu")  # elsewhere --cpu would drop to one plain process (see the module docstring)
    if wrap:
        if strategy != "fsdp2":
            raise ValueError("wrap names FSDP units: it goes with strategy 'fsdp2'")
        cmd += ["--fsdp_transformer_layer_cls_to_wrap", wrap]
    return [*cmd, "-m", module, *args]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def launch(module: str, args: Sequence[str], *, strategy: str = "ddp", num_processes: int = 2,
           cpu: bool | None = None, env: dict | None = None, log_path: str | Path | None = None,
           timeout_s: float | None = None, wrap: str | None = None) -> LaunchResult:
    """Run `module` under accelerate's launcher with a strategy's config; raise LaunchError with the log's tail.

    ``cpu=None``: the CPU when torch sees no CUDA. The log goes to `log_path` (default: ``launch-<strategy>.log``
    in the ``--out`` folder of `args` when there is one, else in the current folder). The rank files of that
    ``--out`` folder are read back into the result."""
    cpu = (not _cuda_available()) if cpu is None else cpu
    cmd = launch_command(module, args, strategy=strategy, num_processes=num_processes, cpu=cpu, wrap=wrap)
    out_dir = _out_dir(args)
    log_path = Path(log_path or (out_dir or Path.cwd()) / f"launch-{strategy}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    run_env = {**os.environ, **(env or {})}
    if cpu:
        run_env["ACCELERATE_USE_CPU"] = "true"  # read by accelerate's state in every process: gloo, not NCCL
    started = time.time()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env, start_new_session=True)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            stop_launch(proc)
            raise LaunchError(f"{strategy} launch of {module} passed its {timeout_s} s limit and was stopped (every "
                              f"process of it); log {log_path}:\n{log_tail(log_path)}") from None
        except BaseException:  # KeyboardInterrupt (a notebook's stop button) or any error here: no worker stays
            stop_launch(proc)
            raise
    seconds = time.time() - started
    if proc.returncode != 0:
        raise LaunchError(f"{strategy} launch of {module} on {num_processes} process(es) exited with "
                          f"{proc.returncode}; log {log_path}, its end:\n{log_tail(log_path)}")
    ranks = read_ranks(out_dir) if out_dir and any(out_dir.glob("rank*.json")) else []
    return LaunchResult(cmd, proc.returncode, seconds, log_path, strategy, num_processes, cpu, out_dir, ranks)


GRACE_S = 10.0  # seconds between SIGTERM and SIGKILL: torchrun forwards SIGTERM to its workers and waits for them


def launch_processes(pid: int) -> list:
    """The launcher and every process under it (psutil.Process objects), found through parent links: torchrun's
    workers sit in sessions of their own, so a process group does not hold them."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_launch(proc: subprocess.Popen, grace_s: float = GRACE_S) -> list[int]:
    """End a launch and everything it started: SIGTERM to the launcher's process group and to each descendant
    (found before any signal, while the parent links still hold), a wait of up to `grace_s`, then SIGKILL to any
    left. Returns the process ids it signalled."""
    import psutil

    procs = launch_processes(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the launcher started the group (start_new_session): its id is the pid
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    psutil.wait_procs(alive, timeout=grace_s)
    proc.wait()
    return [p.pid for p in procs]


def _out_dir(args: Sequence[str]) -> Path | None:
    args = list(args)
    for i, a in enumerate(args):
        if a == "--out" and i + 1 < len(args):
            return Path(args[i + 1])
        if a.startswith("--out="):
            return Path(a.split("=", 1)[1])
    return None


def log_tail(path: str | Path, lines: int = 40) -> str:
    """The last `lines` lines of a log, after the first error line of each kind (a rank's traceback can be far up,
    above torchrun's own report)."""
    text = Path(path).read_text(errors="replace").splitlines()
    tail = text[-lines:]
    errors = [ln for ln in dict.fromkeys(text) if re.search(r"\b\w*(Error|Exception): ", ln) and ln not in tail]
    return "\n".join([*(f"(earlier) {e}" for e in errors[:5]), *tail])


TRAIN_MODULE = "gemma_helpers.train_launch"


def train(model: str | Path, out: str | Path, *, steps: int, per_device_batch: int = 1, grad_accum: int = 1,
          seq_len: int = 256, save_steps: int = 0, resume: bool = False, time_budget_s: float | None = None,
          seed: int = 3407, strategy: str = "ddp", num_processes: int = 2, cpu: bool | None = None,
          extra: Sequence[str] = (), timeout_s: float | None = None) -> LaunchResult:
    """Launch the lesson's training script (:mod:`gemma_helpers.train_launch`) and return its result with the ranks.

    The model must be a local folder (``models.local_or_hub`` downloads a hub id to one); a stale rank file of an
    earlier run in `out` is removed first, so the ranks read back are this run's."""
    model = Path(model)
    if not (model / "config.json").is_file():
        raise FileNotFoundError(f"model folder {model} has no config.json: pass a local model folder "
                                "(models.local_or_hub(name) downloads a hub id to one)")
    config_path(strategy)  # an unknown strategy fails here, before any start-up
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("rank*.json"):
        stale.unlink()
    args = ["--model", str(model), "--out", str(out), "--steps", str(steps), "--per-device-batch",
            str(per_device_batch), "--grad-accum", str(grad_accum), "--seq-len", str(seq_len), "--save-steps",
            str(save_steps), "--seed", str(seed), *(["--resume"] if resume else []),
            *(["--time-budget-s", str(time_budget_s)] if time_budget_s else []), *extra]
    return launch(TRAIN_MODULE, args, strategy=strategy, num_processes=num_processes, cpu=cpu, timeout_s=timeout_s)


# ------------------------------------------------------------------------------------------ the rank files


def read_ranks(out_dir: str | Path) -> list[dict]:
    """Every rank{r}.json of a run's output folder, by rank; an error when none is there or a rank is missing."""
    out_dir = Path(out_dir)
    files = sorted(out_dir.glob("rank*.json"), key=lambda p: int(p.stem[4:]))
    if not files:
        raise FileNotFoundError(f"no rank*.json in {out_dir}: did the launch run gemma_helpers.train_launch with "
                                f"--out {out_dir}, and did it finish?")
    ranks = [json.loads(f.read_text()) for f in files]
    world = ranks[0]["world_size"]
    if sorted(r["rank"] for r in ranks) != list(range(world)):
        raise ValueError(f"{out_dir} holds ranks {[r['rank'] for r in ranks]} of a {world}-process run: "
                         "a file is missing or left from another run (clear the folder or use a new one)")
    return ranks


def summary(ranks: Sequence[dict]) -> dict:
    """One row for a run: the strategy, processes, steps, the loss curve (the Trainer logs the mean over every
    process, so rank 0's), the slowest rank's start-up and training seconds, peak memory per process (max), and
    tokens per second over all processes."""
    if not ranks:
        raise ValueError("no ranks to merge: read_ranks(out_dir) reads them")
    first = ranks[0]
    if len({r["world_size"] for r in ranks}) != 1 or len({r["steps"] for r in ranks}) != 1:
        raise ValueError("these rank files come from different runs (world size or steps differ)")
    return {
        "strategy": first["strategy"], "distributed_type": first["distributed_type"],
        "processes": first["world_size"], "backend": first.get("backend"), "threads": first.get("threads"),
        "steps": first["steps"], "steps_run": first["steps_run"], "resumed_from": first["resumed_from"],
        "losses": first["losses"],
        "startup_seconds": max(r["startup_seconds"] for r in ranks),
        "train_seconds": max(r["seconds"] for r in ranks),
        "peak_memory_gb": max(r["peak_memory_gb"] for r in ranks), "peak_memory_kind": first["peak_memory_kind"],
        "tokens_per_second": first["tokens_per_second"],
    }


def same_curve(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], rel: float = 1e-4) -> bool:
    """True when two loss curves have the same steps and each loss agrees within `rel` (relative)."""
    if [int(s) for s, _ in a] != [int(s) for s, _ in b]:
        return False
    return all(abs(x - y) <= rel * max(abs(x), abs(y), 1e-12) for (_, x), (_, y) in zip(a, b, strict=True))
