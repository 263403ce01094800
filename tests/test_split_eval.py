"""split_eval: the split, the merge, the comparison, the lm-eval command, and two CPU processes against one.

The launch test builds the Hub stand-in's tiny Gemma3ForCausalLM (the real architecture and tokenizer, 64 wide),
scores a few MMLU questions and chess positions in this process, then again under accelerate's launcher on two
processes (gloo), and checks the merged results equal the one-process ones item for item (about 60 s on 2 cores).
"""

import json
from pathlib import Path

import pytest
from script_loader import load_script

from gemma_helpers import split_eval
from gemma_helpers.split_eval import ATOL, compare, lm_eval_command, lm_eval_dtype, merge, rank_slice

# ------------------------------------------------------------------------------------------------ split and merge


def test_rank_slice_gives_contiguous_blocks_the_first_ranks_one_more():
    blocks = [list(rank_slice(7, 3, r)) for r in range(3)]
    assert blocks == [[0, 1, 2], [3, 4], [5, 6]]
    assert [list(rank_slice(1, 2, r)) for r in range(2)] == [[0], []]  # more processes than items: one is idle


def test_rank_slice_matches_accelerate():
    """The rule rank_slice states is accelerate's own (PartialState.split_between_processes), not a guess: its method
    is called for each rank of a 3-process group on a stand-in (a real PartialState is one per process)."""
    from types import SimpleNamespace

    from accelerate import PartialState

    for n in (5, 7, 2):
        for rank in range(3):
            group = SimpleNamespace(num_processes=3, process_index=rank)
            with PartialState.split_between_processes(group, list(range(n))) as mine:
                assert mine == list(rank_slice(n, 3, rank)), (n, rank)


def test_rank_slice_refuses_a_rank_outside_the_group():
    with pytest.raises(ValueError, match="rank must be in 0..1"):
        rank_slice(4, 2, 2)


def record(i, prediction="A", scores=(-1.0, -2.0)):
    return {"index": i, "id": f"q{i}", "prediction": prediction, "scores": list(scores)}


def test_merge_puts_the_ranks_records_back_in_item_order():
    gathered = [record(2), record(3), record(0), record(1)]  # rank 1's block arrived first
    assert [r["index"] for r in merge(gathered, 4)] == [0, 1, 2, 3]


def test_merge_names_missing_and_doubled_items():
    with pytest.raises(ValueError, match=r"doubled \[1\], missing \[2\]"):
        merge([record(0), record(1), record(1)], 3)


# ------------------------------------------------------------------------------------------------ compare


def run_of(*records):
    return {"items": list(records)}


def test_compare_accepts_differences_within_atol():
    single = run_of(record(0, scores=(-1.0, -2.0)), record(1))
    merged = run_of(record(0, scores=(-1.0 + ATOL / 2, -2.0)), record(1))
    agreement = compare(single, merged)
    assert agreement.ok and agreement.max_score_diff == pytest.approx(ATOL / 2)
    assert "they agree" in agreement.report()


def test_compare_reports_the_first_disagreements():
    single = run_of(record(0), record(1), record(2))
    merged = run_of(record(0, scores=(-1.0 + 10 * ATOL, -2.0)), record(1, prediction="B"), record(2))
    agreement = compare(single, merged)
    assert not agreement.ok
    report = agreement.report()
    assert "item 0 (q0): scores differ by 1.00e-02" in report
    assert "item 1 (q1): prediction 'A' vs 'B'" in report


def test_compare_catches_another_order_and_a_missing_item():
    agreement = compare(run_of(record(0), record(1)), run_of(record(1), record(0)))
    assert "id 'q0' in the single run, 'q1' in the merged one" in agreement.disagreements[0]
    assert "2 items in the single run, 1 in the merged one" in compare(run_of(record(0), record(1)),
                                                                         run_of(record(0))).report()


def test_compare_reads_merged_json_from_a_folder(tmp_path):
    (tmp_path / "merged.json").write_text(json.dumps(run_of(record(0))))
    assert compare(tmp_path, run_of(record(0))).ok
    with pytest.raises(ValueError, match="merged.json"):
        compare({"ranks": []}, run_of(record(0)))


# ------------------------------------------------------------------------------------------------ lm-eval command


def test_hf_on_several_gpus_is_data_parallel_under_accelerate():
    cmd = lm_eval_command("google/gemma-3-1b-it", 8, gpu_name="NVIDIA A100-SXM4-80GB", tasks=("mmlu", "gsm8k"))
    assert cmd[:7] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "8", "-m", "lm_eval"]
    assert cmd[cmd.index("--model") + 1] == "hf"
    assert cmd[cmd.index("--model_args") + 1] == "pretrained=google/gemma-3-1b-it,dtype=bfloat16"
    assert cmd[cmd.index("--tasks") + 1] == "mmlu,gsm8k"
    assert lm_eval_command("m", 1, compute_capability="9.0")[:3] == ["lm_eval", "--model", "hf"]


@pytest.mark.parametrize("gpu, cap", [("Tesla T4", None), ("Tesla P100-PCIE-16GB", None), (None, "7.5")])
def test_no_bfloat16_and_no_float16_below_capability_8(gpu, cap):
    for backend in ("hf", "vllm"):
        cmd = " ".join(lm_eval_command("google/gemma-3-1b-it", 2, gpu_name=gpu, compute_capability=cap,
                                       backend=backend))
        assert "dtype=float32" in cmd and "bfloat16" not in cmd and "float16" not in cmd
    dtype, why = lm_eval_dtype(gpu, cap)
    assert dtype == "float32" and "36822" in why and "18733" in why


def test_vllm_splits_gpus_into_tensor_parallel_copies():
    cmd = lm_eval_command("google/gemma-3-4b-it", 4, gpu_name="H100", backend="vllm", tensor_parallel=2)
    assert cmd[:3] == ["lm_eval", "--model", "vllm"]
    args = cmd[cmd.index("--model_args") + 1].split(",")
    assert {"tensor_parallel_size=2", "data_parallel_size=2", "dtype=bfloat16"} <= set(args)
    with pytest.raises(ValueError, match=r"tensor_parallel \(2\) must divide gpus \(3\)"):
        lm_eval_command("m", 3, gpu_name="H100", backend="vllm", tensor_parallel=2)
    with pytest.raises(ValueError, match="use backend='vllm'"):
        lm_eval_command("m", 2, gpu_name="H100", backend="hf", tensor_parallel=2)


def test_gpu_names_and_unknown_gpus():
    assert split_eval.gpu_capability("NVIDIA A100-SXM4-80GB") == (8, 0)  # not read as an A10 (8.6)
    assert split_eval.gpu_capability("NVIDIA A10G") == (8, 6)
    with pytest.raises(ValueError, match="compute_capability='7.5'"):
        lm_eval_command("m", 1, gpu_name="Radeon")
    with pytest.raises(ValueError, match="backend must be"):
        lm_eval_command("m", 1, gpu_name="T4", backend="sglang")


def test_bad_command_lines_say_what_is_wrong():
    with pytest.raises(SystemExit):
        split_eval.parse_args(["--task", "hellaswag", "--model", "m", "--out", "o", "--items", "2"])
    with pytest.raises(ValueError, match="--items must be at least 1"):
        split_eval.load_items("mmlu", 0)
    with pytest.raises(FileNotFoundError, match="no model folder at /nonexistent/gemma"):
        split_eval.load_model("/nonexistent/gemma", "cpu", "float32")


# ------------------------------------------------------------------------------------------------ two processes


def launch_two(task: str, model: Path, out: Path, items: int) -> None:
    """split_eval on two CPU processes under accelerate's launcher (distributed.launch: torchrun inside, gloo)."""
    from gemma_helpers import distributed

    args = ["--task", task, "--model", str(model), "--out", str(out), "--items", str(items)]
    result = distributed.launch("gemma_helpers.split_eval", args, strategy="ddp", num_processes=2, timeout_s=300,
                                env={"HF_HUB_OFFLINE": "1"})
    assert result.cpu and result.returncode == 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """The Hub stand-in's tiny Gemma3ForCausalLM (real architecture, vocabulary and tokenizer files)."""
    build = load_script("scripts/hub_standin/build.py", "hub_standin_build")
    out = tmp_path_factory.mktemp("tiny") / "gemma-3-270m-it"
    out.mkdir()
    build.build_text_model("unsloth/gemma-3-270m-it", out, build.released_tokenizer_dir(), {}, build.SEED)
    return out


@pytest.mark.distributed
def test_two_processes_give_the_one_process_results_item_for_item(tiny_model, tmp_path):
    model, tokenizer = split_eval.load_model(str(tiny_model), "cpu", "float32")
    tasks = {"mmlu": 4, "chess": 3}
    single = {}
    for task, n in tasks.items():
        items, context = split_eval.load_items(task, n)
        single[task] = {"items": split_eval.score_mmlu(model, tokenizer, items, context, range(n)) if task == "mmlu"
                        else split_eval.score_chess(model, tokenizer, items, range(n))}
    for task, n in tasks.items():
        out = tmp_path / task
        launch_two(task, tiny_model, out, n)
        merged = json.loads((out / "merged.json").read_text())
        agreement = compare(single[task], merged)
        assert agreement.ok, agreement.report()
        assert [r["rank"] for r in merged["ranks"]] == [0, 1] and merged["processes"] == 2
        assert [r["count"] for r in merged["ranks"]] == [len(rank_slice(n, 2, r)) for r in (0, 1)]
        for rank in (0, 1):  # each rank wrote its own share, in its block of the original order
            part = json.loads((out / f"eval_rank{rank}.json").read_text())
            assert [r["index"] for r in part["items"]] == list(rank_slice(n, 2, rank))
        assert merged["result"]["n"] == n and len({r["id"] for r in merged["items"]}) == n
