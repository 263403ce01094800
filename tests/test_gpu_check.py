"""scripts/gpu_check.py: the plan make gpu-check runs on a GPU, its dry run (part of make test), its per-cell probe."""

from script_loader import load_script

gpu_check = load_script("scripts/gpu_check.py")


def test_plan_runs_every_notebook_then_the_training_ones_in_forced_fp16():
    runs = gpu_check.plan(bf16=True)
    first = [nb.name[:2] for dtype, nb in runs if dtype == "bf16"]
    assert first == ["00", "03", "01", "02", "04", "05", "06"]  # the learner's order
    assert [nb.name[:2] for dtype, nb in runs if dtype == "fp16"] == list(gpu_check.FP16_NOTEBOOKS)
    assert {dtype for dtype, _ in gpu_check.plan(bf16=False)} == {"fp16"}  # a T4 runs its own float16 once


def test_dry_run_checks_the_predictions_the_notebooks_print(capsys):
    assert gpu_check.dry_run(0.02, 540) == 0
    out = capsys.readouterr().out
    assert "04 evaluate" in out and "batch 3 x" in out and "OVER" not in out
    assert "04 train" in gpu_check.shown_keys(gpu_check.ROOT / "notebooks" / "04_finetune_chartqa_4b_vision.ipynb").values()


def test_the_probe_cell_compiles():
    compile(gpu_check.PROBE_CELL, "probe", "exec")


def test_without_a_gpu_the_run_says_so(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "gpu_info", lambda: None)
    assert gpu_check.main([]) == 2
    assert "--dry-run" in capsys.readouterr().out
