#!/usr/bin/env bash
# The workshop kit, checked the way an offline classroom uses it (`make kit-check`, the last step of `make test`):
#  1. build the kit (scripts/make_kit.py; the only step allowed to download),
#  2. copy it to a fresh folder, with a fresh HOME (so an empty ~/.cache/gemma_curriculum) and no pip configuration,
#  3. with the network off - a new user + network namespace (`unshare -rn`) where only loopback exists - set up a
#     fresh .venv from the copy and run the README's two commands on a quick subset:
#       make run  NOTEBOOKS=notebooks/00_setup_and_tour.ipynb
#       make test NOTEBOOKS=notebooks/00_setup_and_tour.ipynb UNIT="<a few unit test files>" KIT_CHECK=0
#     i.e. lint as always, a few unit test files, notebook 00 in smoke mode and in the full-mode rehearsal.
#     The rehearsal's mirror and ModelScope steps are left out here (REHEARSE_MIRROR=0 REHEARSE_MODELSCOPE=0): they
#     serve notebook 00 from loopback stand-ins, the same with or without a network, and make test has just run them
#     (about 60 s saved).
# Each step's seconds and the kit's size go to build/kit_check.json. The work folder (a copy of the kit, a .venv, a
# cache: ~7 GB) stays for inspection until the next check or `make clean`: deleting it took minutes on a busy disk.
#   bash scripts/kit_check.sh [KIT]        KIT defaults to build/kit
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${1:-build/kit}
WORK=${KIT_CHECK_WORK:-build/kit-check}
NOTEBOOK=${KIT_CHECK_NOTEBOOK:-notebooks/00_setup_and_tour.ipynb}
UNIT_FILES=${KIT_CHECK_UNIT:-tests/test_prompts.py tests/test_kit.py tests/test_docs.py}
PY=${PY:-.venv/bin/python}
REPORT=build/kit_check.json
mkdir -p build
if ! unshare -rn true 2>/dev/null; then
  echo "[kit-check] SKIPPED: this machine cannot create a user + network namespace ('unshare -rn' failed), so a" \
       "run with the network off cannot be proven here. Build the kit with 'make kit' and try 'make run' from it" \
       "on a machine with the network unplugged (docs/teachers_guide.md, 'The offline room')."
  echo '{"skipped": "unshare -rn unavailable"}' > "$REPORT"
  exit 0
fi
# The interpreter the fresh .venv is made from: the one behind this environment (no shims: HOME changes below).
BASE_PY=$("$PY" -c 'import sys; print(sys._base_executable)')
case "$KIT" in /*) ;; *) KIT="$PWD/$KIT" ;; esac
case "$WORK" in /*) ;; *) WORK="$PWD/$WORK" ;; esac
t0=$(date +%s)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
# The previous check's folder is deleted in the background, beside this one (deleting ~7 GB can take minutes).
if [ -e "$WORK" ]; then mv "$WORK" "$WORK.old.$$"; fi
for old in "$WORK".old.*; do [ -e "$old" ] && { rm -rf "$old" & }; done
"$PY" scripts/make_kit.py "$KIT"
t_built=$(date +%s)
mkdir -p "$WORK/home"
cp -R "$KIT" "$WORK/kit"
t_copied=$(date +%s)
echo "[kit-check] kit built in $(( t_built - t0 )) s, copied in $(( t_copied - t_built )) s; now offline"

# Inside: a clean environment (nothing inherited but the locale), loopback up for the rehearsal's Hub stand-in.
cat > "$WORK/offline.sh" <<EOF
set -euo pipefail
ip link set lo up
cd "$WORK/kit/repo"
if "$BASE_PY" -c 'import urllib.request; urllib.request.urlopen("https://pypi.org/simple/", timeout=5)' 2>/dev/null
then echo "[kit-check] the network is reachable inside the namespace: this check would prove nothing"; exit 1; fi
s=\$(date +%s); make env;  echo "\$(( \$(date +%s) - s ))" > "$WORK/env.s"
s=\$(date +%s); make run NOTEBOOKS=$NOTEBOOK;  echo "\$(( \$(date +%s) - s ))" > "$WORK/run.s"
s=\$(date +%s); REHEARSE_MIRROR=0 REHEARSE_MODELSCOPE=0 make test NOTEBOOKS=$NOTEBOOK UNIT="$UNIT_FILES" KIT_CHECK=0;  echo "\$(( \$(date +%s) - s ))" > "$WORK/test.s"
EOF
unshare -rn env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$WORK/home" LANG=C.UTF-8 \
  PYTHON="$BASE_PY" PIP_CONFIG_FILE=/dev/null bash "$WORK/offline.sh"
t_done=$(date +%s)

KIT_MB=$("$PY" -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["mb"]["total"]))' "$KIT/kit.json")
cat > "$REPORT" <<EOF
{
  "what": "make kit-check: kit built, copied, then under unshare -rn: make env (from the kit), make run and make test on $NOTEBOOK, unit: $UNIT_FILES",
  "kit_mb": $KIT_MB,
  "build_s": $(( t_built - t0 )),
  "copy_s": $(( t_copied - t_built )),
  "offline_env_s": $(cat "$WORK/env.s"),
  "offline_run_s": $(cat "$WORK/run.s"),
  "offline_test_s": $(cat "$WORK/test.s"),
  "offline_s": $(( t_done - t_copied )),
  "total_s": $(( t_done - t0 )),
  "load": "$LOAD_START-$(cut -d' ' -f1 /proc/loadavg)",
  "cores": $(nproc),
  "date": "$(date -u +%Y-%m-%dT%H:%MZ)"
}
EOF
wait  # for the previous folder's deletion
echo "[kit-check] passed: kit $KIT_MB MB; built $(( t_built - t0 )) s, copied $(( t_copied - t_built )) s," \
     "offline set-up + make run + make test $(( t_done - t_copied )) s ($REPORT; work folder: $WORK)"
