#!/usr/bin/env bash
# The full-mode rehearsal: notebooks run with GEMMA_SMOKE=0 on this CPU against a loopback stand-in for the Hugging
# Face Hub (tiny models under the real hub ids, datasets with the real schemas: scripts/hub_standin/), so the real
# loading code runs unchanged. Only GPU-only steps are replaced, by gemma_helpers.env (Config.substitutes), and only
# counts shrink, by one knob: GEMMA_FULL_SCALE.
#   bash scripts/rehearse.sh                       every notebook, in the learner's order (00 03 01 02 04 05)
#   bash scripts/rehearse.sh notebooks/03_*.ipynb  some of them
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
trap 'kill $SERVER 2>/dev/null || true' EXIT
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
if [ $# -eq 0 ]; then set -- notebooks; fi
if [ $# -eq 1 ] && [ -d "$1" ]; then
  # shellcheck disable=SC2046  (the list is space-separated file names without spaces)
  set -- $("$PY" -m gemma_helpers.notebook_runner --list "$1")
fi
echo "[rehearsal] notebooks, in this order: $*"
"$PY" -m pytest -q --nbmake --nbmake-timeout=900 --durations=0 "$@"
