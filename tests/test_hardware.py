"""The machine's facts have one home, `hardware`; `env` keeps its old names for one release."""

from gemma_helpers import env, hardware

CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"


def test_cpu_name_is_the_kernels_model_name():
    assert hardware.cpu_name(CPUINFO) == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert hardware.cpu_name("processor\t: 0\n") not in ("", None)  # the platform's word, or "unknown"


def test_env_still_answers_to_the_names_learners_copied():
    for name in ("Hardware", "hardware_report", "cpu_native_bf16", "detect_platform", "Platform", "in_colab", "in_ci",
                 "cuda_available", "driver_gpus", "KAGGLE_WORKING", "MODELSCOPE_WORKSPACE"):
        assert getattr(env, name) is getattr(hardware, name), name
