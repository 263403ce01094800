#!/usr/bin/env bash
# The full-mode rehearsal: notebooks run with GEMMA_SMOKE=0 on this CPU against a loopback stand-in for the Hugging
# Face Hub (tiny models under the real hub ids, datasets with the real schemas: scripts/hub_standin/), so the real
# loading code runs unchanged. Only GPU-only steps are replaced, by gemma_helpers.env (Config.substitutes: Unsloth's
# CUDA kernels, FastVisionModel), and only counts shrink, by one knob: GEMMA_FULL_SCALE. 4-bit NF4 loading and 8-bit
# AdamW are not replaced: bitsandbytes runs them on this CPU (gemma_helpers/nf4.py).
#   bash scripts/rehearse.sh                       every notebook, in the learner's order (LEARNER_ORDER)
#   bash scripts/rehearse.sh notebooks/03_*.ipynb  some of them
#   bash scripts/rehearse.sh --mirror-only         only the mirror step (below)
#   bash scripts/rehearse.sh --modelscope-only     only the ModelScope step (below)
# Then notebook 00 runs once more with GEMMA_HUB=mirror against a second stand-in on another port, standing in for
# a mirror of the Hub such as hf-mirror.com (gemma_helpers.sources); REHEARSE_MIRROR=0 skips it. And once more with
# GEMMA_HUB=modelscope: ModelScope's real SDK downloads from a stand-in of ModelScope's endpoints
# (scripts/hub_standin/serve_modelscope.py, MODELSCOPE_ENDPOINT) the ids sources.MODEL_TWINS maps, while the Hugging
# Face endpoint is a closed port, as where the Hub is blocked; REHEARSE_MODELSCOPE=0 skips it.
# Model-written code stays off (as on Colab until the learner ticks the box): notebook 05 shows what it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SCALE=${GEMMA_FULL_SCALE:-0.05}
ROOT=${GEMMA_HUB_STANDIN:-build/hub-standin}
WORK=${REHEARSAL_WORK:-build/rehearsal}
mkdir -p "$(dirname "$ROOT")"
t0=$(date +%s)
flock "$ROOT.lock" "$PY" scripts/hub_standin/build.py "$ROOT" --rows-scale "$SCALE"
echo "[rehearsal] hub stand-in ready in $(( $(date +%s) - t0 )) s: $ROOT"
rm -rf "$WORK" && mkdir -p "$WORK/hf-home" "$WORK/outputs"
"$PY" scripts/hub_standin/serve.py "$ROOT" --port 0 --port-file "$WORK/port" --log "$WORK/hub.log" >"$WORK/server.out" 2>&1 &
SERVER=$!
MIRROR=""
MODELSCOPE=""
trap 'kill $SERVER $MIRROR $MODELSCOPE 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { echo "[rehearsal] the hub stand-in did not start:"; cat "$WORK/server.out"; exit 1; }
export HF_ENDPOINT="http://127.0.0.1:$(tr -dc 0-9 < "$WORK/port")"
case "$WORK" in /*) ;; *) WORK="$PWD/$WORK" ;; esac
export HF_HOME="$WORK/hf-home" GEMMA_OUTPUT="$WORK/outputs" GEMMA_SMOKE=0 GEMMA_FULL_SCALE=$SCALE
export HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_XET=1 GEMMA_EXERCISE_ANSWERS="$PWD/tests/exercise_answers.py"
unset HF_HUB_OFFLINE GEMMA_ALLOW_CODE_EXECUTION HF_DATASETS_OFFLINE TRANSFORMERS_OFFLINE
echo "[rehearsal] HF_ENDPOINT=$HF_ENDPOINT GEMMA_FULL_SCALE=$SCALE"
# A folder runs in the learner's order (gemma_helpers.notebook_runner.LEARNER_ORDER): 03 saves the chess fine-tune
# that 01 exports (reading its manifest) and 02 serves.
ONLY=""
case "${1:-}" in --mirror-only) ONLY=mirror; shift ;; --modelscope-only) ONLY=modelscope; shift ;; esac
if [ $# -eq 0 ]; then set -- notebooks; fi
if [ $# -eq 1 ] && [ -d "$1" ]; then
  # shellcheck disable=SC2046  (the list is space-separated file names without spaces)
  set -- $("$PY" -m gemma_helpers.notebook_runner --list "$1")
fi
if [ -z "$ONLY" ]; then
  echo "[rehearsal] notebooks, in this order: $*"
  "$PY" -m pytest -q --nbmake --nbmake-timeout=900 --durations=0 "$@"
fi
start_standin() {  # start_standin SCRIPT FOLDER: serve ROOT from SCRIPT in the background, its port in FOLDER/port
  "$PY" "scripts/hub_standin/$1" "$ROOT" --port 0 --port-file "$2/port" --log "$2/requests.log" >"$2/server.out" 2>&1 &
  STARTED=$!
  for _ in $(seq 300); do [ -s "$2/port" ] && break; sleep 0.1; done
  [ -s "$2/port" ] || { echo "[rehearsal] $1 did not start:"; cat "$2/server.out"; exit 1; }
}
if [ "${REHEARSE_MIRROR:-1}" != 0 ] && [ "$ONLY" != modelscope ]; then
  # The mirror step: a fresh HF_HOME, so every file comes from the second port; its log must show the requests.
  MW="$WORK/mirror" && mkdir -p "$MW/hf-home"
  start_standin serve.py "$MW"
  MIRROR=$STARTED
  t1=$(date +%s)
  GEMMA_HUB=mirror HF_ENDPOINT="http://127.0.0.1:$(tr -dc 0-9 < "$MW/port")" HF_HOME="$MW/hf-home" \
    GEMMA_OUTPUT="$MW/outputs" "$PY" -m pytest -q --nbmake --nbmake-timeout=300 notebooks/00_setup_and_tour.ipynb
  # (the log's first line is the server's own: a request line has an arrow)
  grep -q " -> 200" "$MW/requests.log" ||
    { echo "[rehearsal] GEMMA_HUB=mirror sent no request to the mirror stand-in"; exit 1; }
  echo "[rehearsal] mirror step: notebook 00 through the mirror in $(( $(date +%s) - t1 )) s," \
    "$(grep -c " -> " "$MW/requests.log") requests"
fi
if [ "${REHEARSE_MODELSCOPE:-1}" = 0 ] || [ "$ONLY" = mirror ]; then exit 0; fi
# The ModelScope step: the real SDK with a fresh cache (MODELSCOPE_CACHE) and home (no stored token), the Hub's
# endpoint a closed port and a fresh HF_HOME, so the model can only come from ModelScope's stand-in; its log must
# show the model's download and no route the stand-in lacks.
MS="$WORK/modelscope" && mkdir -p "$MS/hf-home"
start_standin serve_modelscope.py "$MS"
MODELSCOPE=$STARTED
CLOSED=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
t1=$(date +%s)
GEMMA_HUB=modelscope MODELSCOPE_ENDPOINT="http://127.0.0.1:$(tr -dc 0-9 < "$MS/port")" MODELSCOPE_CACHE="$MS/cache" \
  MODELSCOPE_HOME="$MS/home" HF_ENDPOINT="http://127.0.0.1:$CLOSED" HF_HOME="$MS/hf-home" GEMMA_OUTPUT="$MS/outputs" \
  "$PY" -m pytest -q --nbmake --nbmake-timeout=300 notebooks/00_setup_and_tour.ipynb
grep -q "/api/v1/models/.*/repo?Revision=.*FilePath=config.json -> 200" "$MS/requests.log" ||
  { echo "[rehearsal] GEMMA_HUB=modelscope downloaded no model from the ModelScope stand-in:"; cat "$MS/requests.log"; exit 1; }
! grep "UNKNOWN ROUTE" "$MS/requests.log" || { echo "[rehearsal] the SDK called routes the stand-in lacks (above)"; exit 1; }
echo "[rehearsal] ModelScope step: notebook 00 through ModelScope's SDK in $(( $(date +%s) - t1 )) s," \
  "$(grep -c " -> " "$MS/requests.log") requests"
