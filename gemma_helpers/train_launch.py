"""The chess lesson's text LoRA as one training script that ``accelerate launch`` runs unchanged on 1 process, on N
processes with DDP, and with FSDP2 (``gemma_helpers/launch_configs/``; start it with ``distributed.launch``)::

    accelerate launch --config_file gemma_helpers/launch_configs/ddp.yaml --num_processes 2 \\
        -m gemma_helpers.train_launch --model PATH --out DIR --steps 20 --per-device-batch 1 --grad-accum 1 \\
        --seq-len 128 --save-steps 5 [--resume] [--time-budget-s T] [--seed 3407]

The data are the lesson's offline puzzles (``chess.build_offline_dataset``), the model is loaded by plain
transformers and PEFT (Unsloth does not run under several processes), and trained on the answers only with the
lesson's recipe (``train.tokenize_rows``, ``train.LORA_TARGETS``, ``train.SCHEDULES["text"]``) by the HF Trainer, which
drives accelerate itself (its sampler sharding, gradient all-reduce or FSDP2 wrapping, checkpoints). Each process writes ``DIR/rank{r}.json`` (:func:`gemma_helpers.distributed.read_ranks` reads them).

Global batch = per-device batch x processes x grad-accum: 2 processes with batch 1 see, step for step, the examples
1 process with batch 1 and grad-accum 2 sees (accelerate hands out consecutive batches of one sampler round-robin),
and the loss the Trainer logs is the mean over all of them: the two curves agree (tests/test_distributed.py).

Resume (``--resume``) goes on from ``train.last_checkpoint(DIR)``, also on another process count: a DDP checkpoint
holds the whole adapter; an FSDP2 one (SHARDED_STATE_DICT) is a torch distributed checkpoint that DCP reshards on
load. The adapter is saved once at the end, from the adapter tensors alone (:func:`save_adapter_from_shards`: each
LoRA tensor's shards gathered, the base model never); it is not merged here: merging LoRA into sharded (DTensor)
weights fails, so merge afterwards on one process from the saved adapter (``train.save_merged`` after
``peft.PeftModel.from_pretrained``).

The sizes that need more than one GPU (4B, 12B, 27B) load as ``Gemma3ForConditionalGeneration``, a SigLIP vision tower
beside the language model. Read against transformers 5.17, accelerate 1.16 and PEFT, the script trains them so:

* **Text LoRA on the language model only** (:func:`lora_targets`): ``train.LORA_TARGETS`` also names the SigLIP
  tower's q/k/v projections, whose adapters get no gradient from text, and DDP (``ddp_find_unused_parameters=False``)
  then stops at the second step ("Expected to have finished reduction in the prior iteration ..."). The adapter's
  ``target_modules`` says so: a pattern under ``language_model``.
* **Inputs**: ``input_ids``, ``attention_mask``, ``labels`` and, for the conditional-generation class,
  ``token_type_ids`` (zeros: no image token), as its processor returns them; transformers 5.17 builds the same causal
  mask from zeros as from none, and the 4.5x releases refused to train without them.
* **FSDP2 units**: with a vision tower the script adds ``SiglipEncoderLayer`` to the layer classes to wrap
  (:func:`wrap_classes`), so each SigLIP layer is a unit of its own instead of the whole tower sitting in the root.
* **No whole model on one device**: under FSDP the model stays where ``from_pretrained`` put it (rank 0 on the CPU,
  the others on the meta device with ``fsdp_cpu_ram_efficient_loading``); accelerate moves it to meta, ``fully_shard``
  places each unit's shard on this rank's device and rank 0's weights are broadcast into the shards. Only DDP and one
  process move the whole model (their copy) to the device.
* **Activation checkpointing** is asked for by the config's ``fsdp_activation_checkpointing`` and done by
  transformers' own layer checkpointing (:func:`take_activation_checkpointing`): accelerate's way wraps each layer in
  torch's checkpoint wrapper, whose "_checkpoint_wrapped_module." in the module names hides the adapter from PEFT's
  state-dict filter, so the Trainer's sharded checkpoints held no adapter at all and a resumed run started from
  scratch (the CPU rehearsal found it: a resumed loss 1% off).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from . import chess, train
from .distributed import VISION_WRAP
from .hardware import hardware_report
from .precision import policy
from .prompts import CHAT_TEMPLATE
from .tokenizer_files import saved_with_tokenizer_files
from .train import LORA_TARGETS

STARTED = time.time()  # the process's start (near enough): start-up is everything before the first step
EVAL_ROWS = 1  # the script trains only; build_offline_dataset still sets held-out positions aside


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The script's command line."""
    p = argparse.ArgumentParser(prog="python -m gemma_helpers.train_launch", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a local model folder (a Gemma 3 text model)")
    p.add_argument("--out", required=True, help="output folder: checkpoints, rank{r}.json, adapter/")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps in all (a resumed run ends there too)")
    p.add_argument("--per-device-batch", type=int, default=1)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--save-steps", type=int, default=0, help="checkpoint every this many steps (0: none)")
    p.add_argument("--resume", action="store_true", help="go on from the newest checkpoint-N under --out")
    p.add_argument("--time-budget-s", type=float, default=None)
    p.add_argument("--stop-at", type=int, default=None,
                   help="end after this step, as a disconnect would, in a run planned for --steps (its learning-rate "
                        "schedule and checkpoints are those of the whole run); a later --resume goes on")
    p.add_argument("--seed", type=int, default=3407)
    p.add_argument("--rows", type=int, default=0, help="training rows (0: one global batch per step)")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--no-adapter", action="store_true", help="do not save the gathered adapter at the end")
    args = p.parse_args(argv)
    for name in ("steps", "per_device_batch", "grad_accum", "seq_len"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.stop_at is not None and not 1 <= args.stop_at <= args.steps:
        p.error(f"--stop-at {args.stop_at}: choose a step from 1 to --steps ({args.steps})")
    if not (Path(args.model) / "config.json").is_file():
        p.error(f"--model {args.model}: no config.json there; pass a local model folder (models.local_or_hub "
                "downloads a hub id to one)")
    return args


def on_cpu() -> bool:
    """True when this process trains on the CPU: no CUDA, or the launcher said so (ACCELERATE_USE_CPU)."""
    import torch

    return os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available()


def requested_strategy() -> str:
    """What the launcher asked for: 'fsdp2' (its config set FSDP), 'ddp' (several processes) or 'single'."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "fsdp2" if os.environ.get("FSDP_VERSION", "1") == "2" else "fsdp1"
    return "ddp" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "single"


def start_state(cpu: bool, model_dir: str | Path | None = None):
    """accelerate's process state, started before the Trainer so the model can be placed on this rank's device.

    Under FSDP with a vision tower in `model_dir`, the layer classes to wrap get the SigLIP layer
    (:func:`wrap_classes`) before accelerate's FSDP plugin reads them from the launcher's environment.

    On the CPU, FSDP is asked for but accelerate 1.16 only turns a launch into DistributedType.FSDP on accelerator
    device types (state.py: MULTI_GPU, MULTI_XPU, ...; a CPU launch stays MULTI_CPU, i.e. DDP): here the state is
    switched to FSDP with the plugin the launcher's environment describes, so the CPU rehearses what a GPU runs.
    """
    import torch
    from accelerate import PartialState
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin, TorchDynamoPlugin

    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if cpu and threads > 0:
        torch.set_num_threads(threads)  # the launcher's --num_cpu_threads_per_process: cores // processes
    if cpu:
        # accelerate names a MULTI_CPU rank's device "cpu:<local rank>", and torch.load cannot map a checkpoint's
        # tensors to "cpu:1" (the Trainer's optimizer.pt load on resume fails with "don't know how to restore data
        # location"); plain "cpu" is the same memory. ACCELERATE_TORCH_DEVICE is accelerate's own override.
        os.environ["ACCELERATE_TORCH_DEVICE"] = "cpu"
    wrap_key = "FSDP_TRANSFORMER_CLS_TO_WRAP"  # accelerate's plugin reads it (utils/dataclasses.py)
    if sharded_by_fsdp() and model_dir is not None and os.environ.get(wrap_key):
        os.environ[wrap_key] = wrap_classes(model_dir, os.environ[wrap_key])
    state = PartialState(cpu=cpu)
    if cpu and requested_strategy().startswith("fsdp") and state.distributed_type == DistributedType.MULTI_CPU:
        acc = AcceleratorState(cpu=True, dynamo_plugin=TorchDynamoPlugin(), _from_accelerator=True)
        acc.distributed_type = DistributedType.FSDP
        acc.fsdp_plugin = FullyShardedDataParallelPlugin()
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return state


def has_vision_tower(model_dir: str | Path) -> bool:
    """True when the model folder holds a Gemma 3 with a vision tower (4B, 12B, 27B: Gemma3ForConditionalGeneration)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return "vision_config" in config or any("ConditionalGeneration" in a for a in config.get("architectures") or [])


def wrap_classes(model_dir: str | Path, configured: str) -> str:
    """FSDP's layer classes to wrap for this model: the config's, plus the SigLIP layer where there is a vision tower
    (a class the model lacks is an error in accelerate, so the config itself names the text layer only)."""
    names = [n.strip() for n in configured.split(",") if n.strip()]
    if has_vision_tower(model_dir):
        names += [n for n in VISION_WRAP.split(",") if n not in names]
    return ",".join(names)


def lora_targets(model):
    """Where the adapters go: ``train.LORA_TARGETS`` in a text model; in a model with a vision tower, the same
    projections of the language model only (a pattern PEFT matches against each module's full name)."""
    if getattr(model.config, "vision_config", None) is None:
        return list(LORA_TARGETS)
    return rf"(.*\.)?language_model\..*\.({'|'.join(LORA_TARGETS)})"


def take_activation_checkpointing() -> bool:
    """True when the launcher's FSDP config asks for activation checkpointing; the request is then taken from
    accelerate (its wrapper would rename the layers, see the module docstring) and the Trainer checkpoints the
    same layers through transformers' ``gradient_checkpointing`` instead. Call before accelerate's state starts."""
    key = "FSDP_ACTIVATION_CHECKPOINTING"  # what accelerate's launcher sets from fsdp_activation_checkpointing
    if not (sharded_by_fsdp() and os.environ.get(key, "").lower() == "true"):
        return False
    os.environ[key] = "false"
    return True


def sharded_by_fsdp() -> bool:
    """True when the launcher asked for FSDP: the model is then placed by fully_shard, shard by shard."""
    return requested_strategy().startswith("fsdp")


def load_student(model_dir: str, device, seed: int, r: int):
    """(PEFT model, tokenizer): plain transformers, the precision policy's dtype, text LoRA (:func:`lora_targets`).

    DDP and one process: the whole model on `device`. FSDP: nowhere yet (the CPU, or meta on the ranks that
    cpu_ram_efficient_loading leaves empty); the Trainer's accelerator shards it onto `device`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    dtype = "float32" if device.type == "cpu" else policy(hardware_report(), backend="transformers").dtype
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    # no key/value cache in training: under activation checkpointing the recomputed forward would append its keys
    # to the cache a second time (a 2x-long key against the mask: "size of tensor a (180) must match ... (90)")
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        config.use_cache = False
    if not sharded_by_fsdp():
        model = model.to(device)  # DDP and one process train a whole copy on each device
    set_seed(seed)  # the same LoRA initialisation on every process and in every run
    config = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=lora_targets(model),
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config), tokenizer


def stop_at_callback(step: int):
    """A TrainerCallback that ends training after `step`; the Trainer still writes that step's checkpoint first
    (unlike ``train.stop_at_step``, whose disconnect saves nothing): a run cut off right after its checkpoint."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True
            return control

    return StopAt()


def main(argv: Sequence[str] | None = None) -> int:
    """Train, checkpoint, resume; write rank{r}.json and (on rank 0) the gathered adapter."""
    args = parse_args(argv)
    cpu = on_cpu()
    checkpoint_layers = take_activation_checkpointing()
    state = start_state(cpu, args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = args.rows or args.steps * args.per_device_batch * args.grad_accum * state.num_processes
    # twice the rows asked for, so that dropping those whose answer --seq-len cuts off still leaves `rows`: the
    # same rows for every process count (an uneven last batch would differ: DDP pads it, one process does not)
    train_rows, _ = chess.build_offline_dataset(2 * rows, EVAL_ROWS, seed=args.seed)
    model, tokenizer = load_student(args.model, state.device, args.seed, args.lora_r)
    budget = train.TimeBudget(args.time_budget_s) if args.time_budget_s else None
    callbacks = [budget.callback()] if budget else []
    if args.stop_at:
        callbacks.append(stop_at_callback(args.stop_at))
    trainer = answers_only_trainer(model, tokenizer, [ex.conversation() for ex in train_rows], args, rows,
                                   callbacks=callbacks, device=state.device, checkpoint_layers=checkpoint_layers)
    last = train.last_checkpoint(out) if args.resume else None
    if args.resume and last is None:
        raise SystemExit(f"--resume: no checkpoint-N folder under {out}; run once with --save-steps first")
    start_step = json.loads((Path(last) / "trainer_state.json").read_text())["global_step"] if last else 0
    startup_s = time.time() - STARTED
    began = time.time()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - began
    accelerator = trainer.accelerator
    if not args.no_adapter:
        save_adapter_from_shards(trainer, tokenizer, out / "adapter", args.model)
    steps = int(result.global_step)
    record = {
        "rank": accelerator.process_index, "world_size": accelerator.num_processes,
        "strategy": requested_strategy(), "distributed_type": str(accelerator.distributed_type).split(".")[-1],
        "fsdp": bool(trainer.is_fsdp_enabled), **model_facts(trainer),
        "backend": _backend(), "device": str(accelerator.device), "threads": _threads(),
        "losses": [[int(h["step"]), float(h["loss"])] for h in trainer.state.log_history if "loss" in h],
        "startup_seconds": round(startup_s, 2), "seconds": round(seconds, 2), "steps": steps,
        "steps_run": steps - int(start_step), "resumed_from": Path(last).name if last else None,
        "stopped_by": ("time budget" if budget and budget.spent and steps < args.steps
                       else f"--stop-at {args.stop_at}" if args.stop_at and steps < args.steps else "steps"),
        "per_device_batch": args.per_device_batch, "grad_accum": args.grad_accum,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "tokens_per_second": round(int(trainer.state.num_input_tokens_seen) / max(seconds, 1e-9), 1),
        **_peak_memory(),
    }
    (out / f"rank{record['rank']}.json").write_text(json.dumps(record, indent=1) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the process group, so the launcher's processes exit cleanly
    return 0


def answers_only_trainer(model, tokenizer, conversations, args: argparse.Namespace, rows_wanted: int,
                         callbacks=(), device=None, checkpoint_layers: bool = False):
    """A plain transformers Trainer on the lesson's rows: loss on the answers only, ``train.SCHEDULES["text"]``; the
    first `rows_wanted` rows whose answer fits in ``--seq-len``.

    The same rows and labels as ``train.sft_trainer`` (``train.tokenize_rows``: prompt masked with -100), without
    TRL: TRL 1.15's SFTTrainer computes its loss through a Triton kernel (trl.trainer.utils, a fused LM head) that
    a CPU-only torch lacks, and the CPU path for it is Unsloth's, which does not run under several processes. The
    model's own loss sums over answer tokens and divides by the global batch's count (``num_items_in_batch``,
    gathered over processes), so N processes and 1 process with N-fold grad-accum give the same loss.
    """
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    schedule = train.SCHEDULES["text"]
    rows = train.tokenize_rows(tokenizer, train.to_prompt_completion(conversations))
    rows = [{"input_ids": r["input_ids"][:args.seq_len],
             "labels": [t if m else -100 for t, m in zip(r["input_ids"], r["completion_mask"], strict=True)]
             [:args.seq_len]} for r in rows]
    kept = [r for r in rows if any(t != -100 for t in r["labels"])]  # as TRL: an answer cut off teaches nothing
    if not kept:
        raise SystemExit(f"--seq-len {args.seq_len} cuts off every answer (the prompts are longer): raise it")
    rows = kept[:rows_wanted]
    pad = tokenizer.pad_token_id
    needs_token_types = getattr(model.config, "vision_config", None) is not None

    def collate(batch):
        width = max(len(r["input_ids"]) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):  # right padding, as TRL's collator
            n = len(r["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
        if needs_token_types:  # Gemma3ForConditionalGeneration: 0 text, 1 image (its processor's output)
            batch["token_type_ids"] = torch.zeros_like(ids)
        return batch

    # the device this rank trains on (under FSDP the model is not there yet: fully_shard places it)
    device = str(device) if device is not None else str(next(model.parameters()).device)
    flags = {} if device.startswith(("cpu", "meta")) else _gpu_precision().trainer_flags
    targs = TrainingArguments(
        output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.per_device_batch,
        gradient_accumulation_steps=args.grad_accum, learning_rate=args.learning_rate,
        lr_scheduler_type=schedule.scheduler, warmup_steps=schedule.warmup_steps(args.steps),
        weight_decay=schedule.weight_decay, max_grad_norm=schedule.max_grad_norm, logging_steps=1,
        save_strategy="steps" if args.save_steps else "no", save_steps=args.save_steps or 500, save_total_limit=2,
        report_to=[], optim="adamw_torch", seed=args.seed, data_seed=args.seed, disable_tqdm=True,
        remove_unused_columns=False, include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,  # LoRA on the language model: every adapter weight gets a gradient
        gradient_checkpointing=checkpoint_layers, gradient_checkpointing_kwargs={"use_reentrant": False},
        accelerator_config={"use_configured_state": True},  # keep start_state's state (else the Trainer resets it)
        use_cpu=device.startswith("cpu"), **flags)
    trainer = Trainer(model=model, args=targs, train_dataset=Dataset.from_list(rows), data_collator=collate,
                      callbacks=list(callbacks))
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def save_adapter_from_shards(trainer, tokenizer, path: Path, base: str) -> Path:
    """The LoRA adapter alone, written by the main process: each adapter tensor's shards gathered (a collective
    under FSDP2, so every process calls this), the frozen base never (a full state dict would gather the whole
    base model to rank 0: 55 GB of CPU memory for 27B in bfloat16, to keep a few MB).

    Not merged here: merging into sharded weights fails; merge on one process from this folder instead."""
    accelerator = trainer.accelerator
    model = accelerator.unwrap_model(trainer.model)
    adapter = {}
    for name, tensor in model.state_dict().items():  # FSDP2: DTensor shards (the checkpoint wrapper's prefix removed)
        if "lora_" not in name:
            continue
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor  # one adapter tensor at a time
        if accelerator.is_main_process:
            adapter[name] = full.detach().to("cpu").clone()
    if accelerator.is_main_process:
        if not adapter:
            raise RuntimeError(f"no LoRA tensor in the model's state dict (keys such as {list(model.state_dict())[:3]})")
        # Written here rather than by PEFT's save_pretrained, whose filter finds the adapter's modules by their
        # names, which carry the activation checkpoint wrapper's "_checkpoint_wrapped_module." (the state dict's
        # keys do not): it would write an empty file. The keys and files are PEFT's own: the adapter's name dropped
        # from each key (peft.utils.save_and_load), adapter_model.safetensors and adapter_config.json.
        from safetensors.torch import save_file

        active = model.active_adapter
        path.mkdir(parents=True, exist_ok=True)
        save_file({k.replace(f".{active}.", "."): v.contiguous() for k, v in adapter.items()},
                  str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
        model.peft_config[active].save_pretrained(str(path))
        saved_with_tokenizer_files(tokenizer, path, base)
    accelerator.wait_for_everyone()
    return path


def model_facts(trainer) -> dict:
    """What was trained, for the rank file: the architecture, the adapted modules (and whether any sits in the vision
    tower), the FSDP units by class, and the layers wrapped for activation checkpointing."""
    from collections import Counter

    model = trainer.accelerator.unwrap_model(trainer.model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    lora = [n for n, m in model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A)]
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch without FSDP2
        FSDPModule = ()  # noqa: N806
    def unit(module) -> str:  # fully_shard names the class FSDP<class>; a checkpointed layer's unit is its wrapper
        name = type(getattr(module, "_checkpoint_wrapped_module", module)).__name__
        return name.removeprefix("FSDP")

    units = Counter(unit(m) for m in trainer.model.modules() if FSDPModule and isinstance(m, FSDPModule))
    from transformers.modeling_layers import GradientCheckpointingLayer

    checkpointed = Counter(unit(m) for m in trainer.model.modules() if hasattr(m, "_checkpoint_wrapped_module")
                           or (isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing))
    return {"architecture": type(base).__name__, "lora_modules": len(lora),
            "lora_in_vision_tower": sum("vision_tower" in n for n in lora),
            "fsdp_units": dict(sorted(units.items())), "activation_checkpointed": dict(sorted(checkpointed.items()))}


def _gpu_precision():
    return policy(hardware_report(), backend="transformers")


def _backend() -> str | None:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _peak_memory() -> dict:
    """CUDA's allocator peak on a GPU, else the peak resident set of this process (ru_maxrss)."""
    import resource
    import sys

    import torch

    if torch.cuda.is_available() and not on_cpu():
        return {"peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3), "peak_memory_kind": "cuda"}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    gb = peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9
    return {"peak_memory_gb": round(gb, 3), "peak_memory_kind": "rss"}


if __name__ == "__main__":
    raise SystemExit(main())
