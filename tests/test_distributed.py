"""distributed + train_launch: one training script under accelerate's launcher on 1 process, DDP and FSDP2 (gloo,
on this CPU), checkpoints that resume on another process count, and the pure parts (configs, argv, rank files).

The launches use the Hub stand-in's tiny Gemma3ForConditionalGeneration (the architecture of 4B, 12B and 27B, the
sizes that need more than one GPU: a SigLIP tower beside the language model, the released 262k tokenizer;
scripts/hub_standin/build.py) so a step takes a fraction of a second; each launch still pays accelerate's and torch's
start-up (about 10 s per process on 2 cores). Marked ``distributed`` (``-m "not distributed"`` skips them).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from script_loader import load_script

from gemma_helpers import distributed

STEPS, SEQ = 4, 128  # the puzzles' prompts are ~100 tokens: shorter cuts answers off
LR = ["--learning-rate", "0.01"]  # large enough that each step's update shows in the next step's loss


# ------------------------------------------------------------------------------------------ pure parts


def test_each_strategy_has_its_config_and_fsdp2_wraps_real_classes():
    import transformers.models.gemma3.modeling_gemma3 as gemma3
    import transformers.models.siglip.modeling_siglip as siglip

    assert distributed.read_config("single")["distributed_type"] == "NO"
    assert distributed.read_config("ddp")["distributed_type"] == "MULTI_GPU"
    fsdp = distributed.read_config("fsdp2")
    assert fsdp["distributed_type"] == "FSDP"
    cfg = fsdp["fsdp_config"]
    assert cfg["fsdp_version"] == 2 and cfg["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert cfg["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert cfg["fsdp_cpu_ram_efficient_loading"] and cfg["fsdp_sync_module_states"]  # the launcher wants both
    assert cfg["fsdp_activation_checkpointing"] is True  # long sequences of the big sizes; the script honours it
    for name in (cfg["fsdp_transformer_layer_cls_to_wrap"], *distributed.VISION_WRAP.split(",")):
        assert hasattr(gemma3, name) or hasattr(siglip, name), f"{name} is no class of transformers' Gemma 3"
    for strategy in distributed.STRATEGIES:  # the same file on GPUs and CPUs: the CPU is a launch flag
        assert distributed.read_config(strategy)["use_cpu"] is False


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of .*single.*ddp.*fsdp2"):
        distributed.config_path("deepspeed")
    with pytest.raises(ValueError, match="one process"):
        distributed.launch_command("m", [], strategy="single", num_processes=2)
    with pytest.raises(ValueError, match="fsdp2"):
        distributed.launch_command("m", [], strategy="ddp", wrap=distributed.VISION_WRAP)


def test_cpu_launch_flags(monkeypatch):
    monkeypatch.setattr(distributed.os, "cpu_count", lambda: 2)
    ddp = distributed.launch_command("pkg.mod", ["--x", "1"], strategy="ddp", num_processes=2, cpu=True)
    assert ddp[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert ddp[ddp.index("--num_cpu_threads_per_process") + 1] == "1"  # 2 cores, 2 processes
    assert "--cpu" not in ddp  # --cpu would start a single plain process
    assert ddp[-4:] == ["-m", "pkg.mod", "--x", "1"]
    single = distributed.launch_command("pkg.mod", [], strategy="single", num_processes=1, cpu=True)
    assert "--cpu" in single and single[single.index("--num_cpu_threads_per_process") + 1] == "2"
    gpu = distributed.launch_command("pkg.mod", [], strategy="fsdp2", num_processes=4, cpu=False,
                                     wrap=distributed.VISION_WRAP)
    assert "--cpu" not in gpu and "--num_cpu_threads_per_process" not in gpu
    assert gpu[gpu.index("--fsdp_transformer_layer_cls_to_wrap") + 1] == "Gemma3DecoderLayer,SiglipEncoderLayer"
    assert distributed.threads_per_process(3, cores=2) == 1 and distributed.threads_per_process(1, cores=16) == 16


def rank_record(rank: int, world: int = 2, **extra) -> dict:
    return {"rank": rank, "world_size": world, "strategy": "ddp", "distributed_type": "MULTI_CPU", "backend": "gloo",
            "threads": 1, "losses": [[1, 2.0], [2, 1.5]], "startup_seconds": 10.0 + rank, "seconds": 4.0 - rank,
            "steps": 2, "steps_run": 2, "resumed_from": None, "peak_memory_gb": 1.0 + rank,
            "peak_memory_kind": "rss", "tokens_per_second": 50.0, **extra}


def test_rank_files_are_read_in_rank_order_and_merged(tmp_path):
    for r in (1, 0):
        (tmp_path / f"rank{r}.json").write_text(json.dumps(rank_record(r)))
    ranks = distributed.read_ranks(tmp_path)
    assert [r["rank"] for r in ranks] == [0, 1]
    row = distributed.summary(ranks)
    assert row["processes"] == 2 and row["losses"] == [[1, 2.0], [2, 1.5]]
    assert row["startup_seconds"] == 11.0 and row["train_seconds"] == 4.0 and row["peak_memory_gb"] == 2.0


def test_missing_or_mixed_rank_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no rank"):
        distributed.read_ranks(tmp_path)
    (tmp_path / "rank0.json").write_text(json.dumps(rank_record(0)))
    with pytest.raises(ValueError, match="missing"):
        distributed.read_ranks(tmp_path)
    with pytest.raises(ValueError, match="different runs"):
        distributed.summary([rank_record(0), rank_record(1, steps=3)])


def test_same_curve_tolerance():
    a = [[1, 12.0], [2, 11.0]]
    assert distributed.same_curve(a, [[1, 12.0 * (1 + 5e-5)], [2, 11.0]])
    assert not distributed.same_curve(a, [[1, 12.0 * (1 + 5e-4)], [2, 11.0]])
    assert not distributed.same_curve(a, [[1, 12.0]])


def test_log_tail_brings_up_the_rank_error(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("[rank0]: ValueError: Checkpoint found is only supported when using PyTorch FSDP\n"
                   + "torchrun noise\n" * 100)
    tail = distributed.log_tail(log, lines=5)
    assert "only supported when using PyTorch FSDP" in tail and tail.count("torchrun noise") == 5


def test_stop_at_must_be_a_step_of_the_run(tmp_path, capsys):
    from gemma_helpers import train_launch

    (tmp_path / "config.json").write_text("{}")
    base = ["--model", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "4"]
    assert train_launch.parse_args([*base, "--stop-at", "2"]).stop_at == 2
    for bad in ("0", "5"):
        with pytest.raises(SystemExit):
            train_launch.parse_args([*base, "--stop-at", bad])
        assert "choose a step from 1 to --steps (4)" in capsys.readouterr().err


def test_missing_model_folder_is_a_clear_error_before_any_launch(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json.*local_or_hub"):
        distributed.train(tmp_path / "nowhere", tmp_path / "out", steps=1)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="choose one of"):
        distributed.train(tmp_path, tmp_path / "out", steps=1, strategy="zero3")


# ------------------------------------------------------------------------------------------ launches


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The Hub stand-in's tiny Gemma3ForConditionalGeneration, built as it serves it under the 4B id: 2 text layers
    of hidden 64, a one-layer SigLIP tower at the real 896 px, the released 262k tokenizer."""
    build = load_script("scripts/hub_standin/build.py", "hub_standin_build")
    out = tmp_path_factory.mktemp("tiny") / "gemma-3-4b-tiny"
    out.mkdir()
    tokenizer = build.released_tokenizer_dir()
    build.build_vision_model("unsloth/gemma-3-4b-it", out, build.vision_processor(tokenizer), 0, tokenizer, {})
    return out


LANGUAGE_LORA = 2 * 7  # two text layers x train.LORA_TARGETS' seven projections; none in the SigLIP tower


def test_fsdp_loading_places_no_whole_model_on_a_device(tiny_model, monkeypatch):
    """Under FSDP the script leaves the model where from_pretrained put it, for fully_shard to place shard by shard:
    asked for a CUDA device (this torch has none, so any whole-model move would fail), it moves nothing there. Its
    LoRA sits on the language model only, and the conditional-generation class trains with the token_type_ids its
    processor gives text (zeros), the same loss as without them in transformers 5.17."""
    import torch

    from gemma_helpers import train_launch

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    moves = []
    to = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        moves.append((type(module).__name__, [str(a) for a in (*args, *kwargs.values())]))
        return to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    model, _ = train_launch.load_student(str(tiny_model), torch.device("cuda"), 3407, 8)
    assert not [m for m in moves if any("cuda" in a for a in m[1])], moves
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert type(model.get_base_model()).__name__ == "Gemma3ForConditionalGeneration"
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A)]
    assert len(adapted) == LANGUAGE_LORA and all(".language_model." in n for n in adapted), adapted
    monkeypatch.setattr(torch.nn.Module, "to", to)
    ids = torch.tensor([[2, 105, 2364, 107, 4521, 106]])
    model.train()
    with_types = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids,
                       token_type_ids=torch.zeros_like(ids)).loss
    without = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    assert torch.isfinite(with_types) and torch.allclose(with_types, without)
    assert train_launch.wrap_classes(tiny_model, "Gemma3DecoderLayer") == distributed.VISION_WRAP


@pytest.fixture(scope="module")
def single_and_ddp(tiny_model, tmp_path_factory):
    """4 steps on 1 process (batch 1, grad-accum 2) and on 2 DDP processes (batch 1): the same global batch."""
    root = tmp_path_factory.mktemp("launch")
    one = distributed.train(tiny_model, root / "one", steps=STEPS, per_device_batch=1, grad_accum=2, seq_len=SEQ,
                            save_steps=2, strategy="single", num_processes=1, extra=LR, timeout_s=300)
    two = distributed.train(tiny_model, root / "ddp", steps=STEPS, per_device_batch=1, grad_accum=1, seq_len=SEQ,
                            save_steps=2, strategy="ddp", num_processes=2, extra=LR, timeout_s=300)
    return one, two


def _report(result) -> None:
    row = result.summary()
    print(f"{result.strategy} x{result.num_processes}: launch {row['launch_seconds']} s, start-up "
          f"{row['startup_seconds']} s, steps {row['train_seconds']} s ({row['steps_run']} steps)")


@pytest.mark.distributed
def test_ddp_on_two_processes_follows_one_process_with_grad_accum(single_and_ddp):
    one, two = single_and_ddp
    _report(one), _report(two)
    r0, r1 = two.ranks
    assert (r0["world_size"], r0["distributed_type"], r0["backend"], r0["threads"]) == (2, "MULTI_CPU", "gloo", 1)
    assert one.ranks[0]["distributed_type"] == "NO" and one.ranks[0]["world_size"] == 1
    curve_1, curve_2 = one.ranks[0]["losses"], r0["losses"]
    assert [s for s, _ in curve_2] == list(range(1, STEPS + 1))
    assert r1["losses"] == curve_2  # the Trainer logs the mean over both processes
    # Same examples in the same steps and the same updates: accelerate gives rank r batch r of each pair, and the
    # loss divides by the global batch's answer tokens. Observed equal to ~1e-7; allowed 1e-4 (summation order).
    assert distributed.same_curve(curve_1, curve_2, rel=1e-4), (curve_1, curve_2)
    assert curve_2[-1][1] < curve_2[0][1]  # and it learns
    assert one.ranks[0]["tokens_seen"] == r0["tokens_seen"]  # counted over every process
    assert (r0["architecture"], r0["lora_modules"], r0["lora_in_vision_tower"]) == (
        "Gemma3ForConditionalGeneration", LANGUAGE_LORA, 0)
    assert (Path(two.out_dir) / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.distributed
def test_a_one_process_checkpoint_resumes_on_two_ddp_processes(single_and_ddp, tiny_model, tmp_path):
    one, two = single_and_ddp
    cut = tmp_path / "cut"
    shutil.copytree(one.out_dir, cut, ignore=shutil.ignore_patterns("checkpoint-4", "rank*.json", "adapter"))
    resumed = distributed.train(tiny_model, cut, steps=STEPS, per_device_batch=1, grad_accum=1, seq_len=SEQ, save_steps=2, resume=True,
                                strategy="ddp", num_processes=2, extra=LR, timeout_s=300)
    _report(resumed)
    rank = resumed.ranks[0]
    assert rank["resumed_from"] == "checkpoint-2" and rank["steps"] == STEPS and rank["steps_run"] == STEPS - 2
    assert distributed.same_curve(rank["losses"], one.ranks[0]["losses"], rel=1e-4)


@pytest.mark.distributed
def test_fsdp2_sharded_checkpoint_resumes_on_one_process(tiny_model, tmp_path):
    full = distributed.train(tiny_model, tmp_path / "fsdp", steps=STEPS, per_device_batch=1, seq_len=SEQ,
                             save_steps=2, strategy="fsdp2", num_processes=2, extra=LR, timeout_s=300)
    _report(full)
    r0 = full.ranks[0]
    assert (r0["distributed_type"], r0["fsdp"], r0["backend"], r0["world_size"]) == ("FSDP", True, "gloo", 2)
    shards = sorted(p.name for p in (tmp_path / "fsdp" / "checkpoint-2" / "pytorch_model_fsdp_0").glob("*.distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"]  # one shard per process: torch distributed checkpoint
    # each SigLIP layer is an FSDP unit of its own, and both layer kinds are checkpointed (fsdp2.yaml's key)
    assert r0["fsdp_units"].get("SiglipEncoderLayer") == 1 and r0["fsdp_units"].get("Gemma3DecoderLayer") == 2
    assert r0["activation_checkpointed"] == {"Gemma3DecoderLayer": 2, "SiglipEncoderLayer": 1}
    from safetensors import safe_open

    with safe_open(tmp_path / "fsdp" / "adapter" / "adapter_model.safetensors", "pt") as saved:
        keys = list(saved.keys())  # the adapter alone, gathered tensor by tensor from the shards
    assert len(keys) == 2 * LANGUAGE_LORA and all("lora_" in k and ".language_model." in k for k in keys), keys

    cut = tmp_path / "cut"  # a disconnect after step 2: checkpoint-2 is what is left
    shutil.copytree(tmp_path / "fsdp", cut, ignore=shutil.ignore_patterns("checkpoint-4", "rank*.json", "adapter"))
    resumed = distributed.train(tiny_model, cut, steps=STEPS, per_device_batch=1, grad_accum=2, seq_len=SEQ,
                                save_steps=2, resume=True, strategy="fsdp2", num_processes=1, extra=LR,
                                timeout_s=300)
    _report(resumed)
    rank = resumed.ranks[0]
    assert rank["world_size"] == 1 and rank["fsdp"] and rank["resumed_from"] == "checkpoint-2"
    assert rank["steps"] == STEPS and rank["steps_run"] == STEPS - 2
    losses = [loss for _, loss in rank["losses"]]
    assert all(loss == loss and abs(loss) < 1e3 for loss in losses)  # finite
    # DCP resharded the 2-process model and optimizer onto 1 process: steps 3 and 4 repeat the unbroken run's.
    assert distributed.same_curve(rank["losses"], r0["losses"], rel=1e-4), (rank["losses"], r0["losses"])


WORKER = """import os, sys, time
from pathlib import Path
Path(sys.argv[1], "worker" + os.environ.get("RANK", "0")).write_text(str(os.getpid()))
time.sleep(600)
"""


@pytest.mark.distributed
def test_an_interrupted_launch_leaves_no_worker(tmp_path, monkeypatch):
    """A notebook's stop button (KeyboardInterrupt) during a two-process launch: the launcher and both workers,
    which torchrun starts in sessions of their own, are gone when launch() returns."""
    import os
    import signal
    import threading
    import time

    import psutil

    (tmp_path / "sleeper.py").write_text(WORKER)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

    def interrupt_when_both_run():
        deadline = time.time() + 240
        while time.time() < deadline and len(list(tmp_path.glob("worker*"))) < 2:
            time.sleep(0.2)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_both_run, daemon=True).start()
    started = time.time()
    with pytest.raises(KeyboardInterrupt):
        distributed.launch("sleeper", [str(tmp_path)], strategy="ddp", num_processes=2, cpu=True,
                           log_path=tmp_path / "launch.log", timeout_s=300)
    pids = [int(p.read_text()) for p in sorted(tmp_path.glob("worker*"))]
    print(f"interrupted after {time.time() - started:.1f} s; workers {pids}")
    assert len(pids) == 2
    left = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not left, f"workers {left} outlived the interrupted launch"


@pytest.mark.distributed
def test_a_failing_launch_raises_with_the_log_tail(tmp_path):
    with pytest.raises(distributed.LaunchError, match=r"(?s)exited with \d+.*no config.json"):
        distributed.launch(distributed.TRAIN_MODULE, ["--model", str(tmp_path), "--out", str(tmp_path / "o"),
                                                      "--steps", "1"], strategy="single", num_processes=1, cpu=True,
                           timeout_s=120)
