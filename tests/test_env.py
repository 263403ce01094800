"""Mode detection, configuration and the environment check."""

import pytest

from gemma_helpers import env, envcheck


@pytest.mark.parametrize("environ, has_cuda, mode", [
    ({}, False, "smoke"),  # a laptop without a GPU
    ({}, True, "full"),  # a CUDA workstation
    ({"CI": "true"}, True, "smoke"),  # CI runners never train for real, even with a GPU
    ({"GITHUB_ACTIONS": "true"}, False, "smoke"),
    ({"COLAB_RELEASE_TAG": "release-colab_2026", "COLAB_GPU": "1"}, True, "full"),  # Colab with a T4
    ({"COLAB_RELEASE_TAG": "release-colab_2026"}, False, "smoke"),  # Colab on a CPU runtime
    ({"GEMMA_SMOKE": "1"}, True, "smoke"),  # the explicit switch wins over the GPU
    ({"GEMMA_SMOKE": "0", "CI": "true"}, False, "full"),  # ... and over CI
])
def test_detect_mode(environ, has_cuda, mode):
    assert env.detect_mode(environ, has_cuda)[0] == mode


def test_colab_reason_is_named():
    assert env.detect_mode({"COLAB_RELEASE_TAG": "x"}, True) == ("full", "Colab GPU")


def test_unclear_switch_is_an_error():
    with pytest.raises(ValueError, match="GEMMA_SMOKE"):
        env.detect_mode({"GEMMA_SMOKE": "maybe"}, False)


def test_modes_differ_where_they_should():
    smoke, full = env.build_config("smoke", has_cuda=False), env.build_config("full", has_cuda=True)
    assert smoke.chat_model == env.EMBEDDED and full.chat_model.startswith("unsloth/gemma-3-")
    assert smoke.chess.max_steps <= full.chess.max_steps * 2 and smoke.chess.eval_positions >= 100
    # the Unsloth 270M recipe is full mode's default
    assert (full.chess.lora_r, full.chess.lora_alpha, full.chess.learning_rate, full.chess.max_steps) == \
        (128, 128, 5e-5, 100)
    assert not smoke.flag("gpu") and "GPU" in smoke.flag("gpu").reason
    assert full.flag("gpu")
    with pytest.raises(KeyError, match="known flags"):
        smoke.flag("no-such-flag")
    with pytest.raises(ValueError):
        env.build_config("medium")


def test_describe_lists_flags_with_reasons():
    text = env.build_config("smoke", "test", has_cuda=False).describe()
    assert "mode: smoke (test)" in text and "flag gpu: off" in text


def test_record_result_writes_json(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    monkeypatch.setenv("GEMMA_RESULTS", str(target))
    env.record_result("a", 1)
    env.record_result("b", 2.5)
    assert target.read_text().count('"a": 1') == 1 and '"b": 2.5' in target.read_text()


def test_hardware_report_on_this_machine():
    hw = env.hardware_report()
    assert hw.cpu_cores >= 1 and hw.ram_gb > 1
    assert dict(hw.rows())["CPU cores"] == str(hw.cpu_cores)


def test_environment_has_no_cuda_packages():
    # torchvision/triton/xformers/nvidia-* beside the CPU torch would break Unsloth and cost gigabytes
    assert envcheck.problems() == []
