"""Which platform a notebook runs on (Colab, Kaggle, ModelScope's DSW notebook, a laptop or CI), from recorded
environments: the variables each platform sets, and a fake file tree standing in for its disk and NVIDIA driver."""

from __future__ import annotations

from pathlib import Path

from gemma_helpers import env, hardware


def fake_gpus(root: Path, *models: str) -> Path:
    """Write the NVIDIA driver's /proc information files for the given GPU models under root."""
    for i, model in enumerate(models):
        folder = root / "proc" / "driver" / "nvidia" / "gpus" / f"0000:00:0{4 + i}.0"
        folder.mkdir(parents=True)
        (folder / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 35\nBus Type: \t PCIe\n")
    return root


def test_colab_keeps_its_outputs_folder(tmp_path):
    where = hardware.detect_platform({"COLAB_RELEASE_TAG": "release-colab_20260819-060100_RC00", "COLAB_GPU": "1"},
                                fake_gpus(tmp_path, "Tesla T4"))
    assert (where.name, where.gpus, where.output_root) == ("colab", ("Tesla T4",), "outputs")
    assert where.marker == "COLAB_RELEASE_TAG"


def test_kaggle_with_two_t4s(tmp_path):
    recorded = {"KAGGLE_KERNEL_RUN_TYPE": "Interactive", "KAGGLE_URL_BASE": "https://www.kaggle.com",
                "KAGGLE_DATA_PROXY_URL": "https://dp.kaggle.net"}
    where = hardware.detect_platform(recorded, fake_gpus(tmp_path, "Tesla T4", "Tesla T4"))
    assert (where.name, where.output_root) == ("kaggle", "/kaggle/working")
    assert where.gpu_label == "2x Tesla T4" and where.marker == "KAGGLE_KERNEL_RUN_TYPE=Interactive"


def test_kaggle_p100_batch_run(tmp_path):
    where = hardware.detect_platform({"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, fake_gpus(tmp_path, "Tesla P100-PCIE-16GB"))
    assert where.name == "kaggle" and where.gpu_label == "1x Tesla P100-PCIE-16GB"


def test_kaggle_told_by_its_working_folder_alone(tmp_path):
    (tmp_path / "kaggle" / "working").mkdir(parents=True)
    where = hardware.detect_platform({}, tmp_path)
    assert (where.name, where.marker, where.gpus) == ("kaggle", "folder /kaggle/working", ())


def test_modelscope_dsw_notebook_keeps_outputs_on_its_persistent_disk(tmp_path):
    (tmp_path / "mnt" / "workspace").mkdir(parents=True)
    where = hardware.detect_platform({"MODELSCOPE_ENVIRONMENT": "dsw"}, fake_gpus(tmp_path, "NVIDIA A10"))
    assert (where.name, where.output_root) == ("modelscope", "/mnt/workspace/outputs")
    assert where.gpu_label == "1x NVIDIA A10" and where.marker == "MODELSCOPE_ENVIRONMENT=dsw"


def test_dsw_variable_counts_only_with_the_workspace_disk(tmp_path):
    assert hardware.detect_platform({"DSW_INSTANCE_ID": "dsw-1"}, tmp_path).name == "local"
    (tmp_path / "mnt" / "workspace").mkdir(parents=True)
    assert hardware.detect_platform({"DSW_INSTANCE_ID": "dsw-1"}, tmp_path).name == "modelscope"


def test_laptop_and_ci_are_local(tmp_path):
    for recorded in ({}, {"CI": "true", "GITHUB_ACTIONS": "true"}):
        where = hardware.detect_platform(recorded, tmp_path)
        assert (where.name, where.gpus, where.output_root, where.gpu_label) == ("local", (), "outputs", "none")


def test_gemma_output_wins_over_the_platform(tmp_path):
    kaggle = {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}
    assert env.default_output_root(kaggle, tmp_path) == Path("/kaggle/working")
    assert env.default_output_root({**kaggle, "GEMMA_OUTPUT": str(tmp_path / "mine")}, tmp_path) == tmp_path / "mine"


def test_output_dir_follows_the_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("GEMMA_OUTPUT", raising=False)
    monkeypatch.setattr(env, "default_output_root", lambda *a, **k: tmp_path / "kaggle" / "working")
    assert env.output_dir("lesson") == tmp_path / "kaggle" / "working" / "lesson"
    assert (tmp_path / "kaggle" / "working" / "lesson").is_dir()
