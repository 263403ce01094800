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


X86_EMULATING = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
X86_NATIVE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
X86_AMX = "flags\t\t: fpu avx2 amx_bf16 amx_tile\n"
ARM_NATIVE = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
ARM_PLAIN = "processor\t: 0\nFeatures\t: fp asimd crc32\n"


@pytest.mark.parametrize("cpuinfo, native", [(X86_EMULATING, False), (X86_NATIVE, True), (X86_AMX, True),
                                             (ARM_NATIVE, True), (ARM_PLAIN, False), ("", False)])
def test_native_bf16_comes_from_the_cpu_flags(cpuinfo, native):
    # oneDNN says "bf16 supported" on any AVX-512 CPU (emulated, ~2x slower than fp32); the flags say what is native
    assert env.cpu_native_bf16(cpuinfo) is native


def test_policy_takes_float32_where_bf16_is_emulated():
    from gemma_helpers import precision

    emulating = env.Hardware(None, None, None, False, env.cpu_native_bf16(X86_EMULATING), 2, 24.0, "2.13", "3.11",
                             False, True)
    native = env.Hardware(None, None, None, False, env.cpu_native_bf16(X86_NATIVE), 2, 24.0, "2.13", "3.11",
                          False, True)
    assert precision.policy(emulating, backend="unsloth").dtype == "float32"
    assert "emulated" in precision.policy(emulating, backend="unsloth").reason
    assert precision.policy(native, backend="unsloth").dtype == "bfloat16"


def test_full_scale_shrinks_counts_only():
    full = env.build_config("full", has_cuda=True, scale=1.0)
    small = env.build_config("full", has_cuda=True, scale=0.05)
    assert (small.chess.model, small.chess.answer_tokens, small.chess.lora_r, small.chess.max_length) == \
        (full.chess.model, full.chess.answer_tokens, full.chess.lora_r, full.chess.max_length)
    assert small.chess.train_rows < full.chess.train_rows and small.chess.max_steps < full.chess.max_steps
    assert small.bench.vision_model == full.bench.vision_model and small.bench.mmlu_subjects == 57
    assert small.scale == 0.05 and "GEMMA_FULL_SCALE" in small.describe()
    for bad in ("0", "2", "lots"):
        with pytest.raises(ValueError, match="GEMMA_FULL_SCALE"):
            env.full_scale({"GEMMA_FULL_SCALE": bad})
    assert env.full_scale({}) == 1.0


def test_gpu_only_steps_get_a_substitute_with_a_reason_only_without_cuda():
    gpu, cpu = env.build_config("full", has_cuda=True), env.build_config("full", has_cuda=False)
    assert gpu.substitutes == {} and gpu.vision.load_in_4bit
    # bitsandbytes runs NF4 and 8-bit AdamW on the CPU: the rehearsal makes the T4's calls, only CUDA's own remain
    assert sorted(cpu.substitutes) == ["FastVisionModel", "Unsloth's GPU kernels"]
    for settings in (gpu, cpu):
        assert settings.vision.load_in_4bit and settings.bench.vision_load_in_4bit
        assert settings.chess.optimizer == "adamw_8bit"
    assert all(reason.startswith("no CUDA GPU") and ".ipynb)" in reason for reason in cpu.substitutes.values())
    assert "substitute for FastVisionModel" in cpu.describe()
    assert env.build_config("smoke", has_cuda=False).substitutes == {}


def test_envcheck_names_packages_off_their_pin(tmp_path):
    from importlib.metadata import version

    for name in envcheck.CPU_REQUIREMENTS:
        (tmp_path / name).write_text("# comment\naccelerate\n")
    (tmp_path / "requirements-dev.txt").write_text(f"pytest=={version('pytest')}\nnbmake==0.0.1\nno-such-dist==1.0\n")
    assert envcheck.off_pin(tmp_path) == [f"nbmake: installed {version('nbmake')}, pinned 0.0.1",
                                          "no-such-dist: not installed, pinned 1.0"]
    assert envcheck.off_pin() == []  # this environment is the one pins.toml describes


def test_notebooks_read_their_knobs_from_config():
    """Notebook 00 chats with tour.chat_model: a model that ends its turns, chosen here, not in the notebook."""
    from pathlib import Path

    smoke, full = env.build_config("smoke", has_cuda=False), env.build_config("full", has_cuda=True)
    assert smoke.tour.chat_model == "embedded-chat" and full.tour.chat_model == full.chat_model
    assert smoke.bench.mmlu_method == full.bench.mmlu_method == "one_pass"
    source = (Path(__file__).resolve().parent.parent / "notebooks/src/00_setup_and_tour.py").read_text()
    assert '"embedded"' not in source and "seed=CONFIG.seed" in source and "max_new_tokens=40" not in source
