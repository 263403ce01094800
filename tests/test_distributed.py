"""distributed + train_launch: one training script under accelerate's launcher on 1 process, DDP and FSDP2 (gloo,
on this CPU), checkpoints that resume on another process count, and the pure parts (configs, argv, rank files).

The launches use the Hub stand-in's tiny Gemma3ForCausalLM (the real architecture and the released 262k
tokenizer; scripts/hub_standin/build.py) so a step takes a fraction of a second; each launch still pays accelerate's
and torch's start-up (about 10 s per process on 2 cores). Marked ``distributed`` (``-m "not distributed"`` skips them).
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
    """The Hub stand-in's tiny Gemma3ForCausalLM (2 layers, hidden 64, the released 262k tokenizer)."""
    build = load_script("scripts/hub_standin/build.py", "hub_standin_build")
    out = tmp_path_factory.mktemp("tiny") / "gemma-3-tiny"
    out.mkdir()
    build.build_text_model("unsloth/gemma-3-270m-it", out, build.released_tokenizer_dir(), {}, 0)
    return out


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
    assert (tmp_path / "fsdp" / "adapter" / "adapter_model.safetensors").is_file()  # gathered, then saved once

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


@pytest.mark.distributed
def test_a_failing_launch_raises_with_the_log_tail(tmp_path):
    with pytest.raises(distributed.LaunchError, match=r"(?s)exited with \d+.*no config.json"):
        distributed.launch(distributed.TRAIN_MODULE, ["--model", str(tmp_path), "--out", str(tmp_path / "o"),
                                                      "--steps", "1"], strategy="single", num_processes=1, cpu=True,
                           timeout_s=120)
