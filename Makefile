# The two commands of the README. Both build the CPU environment first (once; later runs reuse it).
#   make run   - execute every notebook headlessly in smoke mode -> build/*.ipynb + build/summary.json
#   make test  - lint, gpu-check's dry run (the plan and each GPU cell's predicted T4 peak), unit tests, every notebook through pytest --nbmake in smoke mode, then every notebook again in
#                the full-mode rehearsal (GEMMA_SMOKE=0 against a loopback Hub stand-in; scripts/rehearse.sh), then the
#                workshop kit's check (make kit-check: the two commands from the kit with the network off). CI runs it.
#   make gpu-check - on a CUDA machine: every notebook in full mode, bf16 and fp16, per-cell seconds and GPU peaks.
#   make kit   - the workshop kit: one folder (KIT, default build/kit) to copy to every laptop of an offline room.
# Quick passes (the kit check uses them; the defaults run everything):
#   NOTEBOOKS=notebooks/00_setup_and_tour.ipynb   the notebooks that run, notebooks and rehearsal execute
#   UNIT="tests/test_prompts.py tests/test_kit.py"  the unit test files
#   KIT_CHECK=0                                   make test without the kit check (the default inside a kit)
VENV ?= .venv
NOTEBOOKS ?= notebooks
# After the English folder (whose order is unchanged), the Chinese notebooks `make test` also runs in smoke mode.
ZH_NOTEBOOKS ?= notebooks/zh/00_setup_and_tour.ipynb
UNIT ?= tests
KIT ?= build/kit
# Inside a kit (kit.json one folder up) there is no network to build a kit with: the check runs where kits are built.
KIT_CHECK ?= $(if $(wildcard ../kit.json),0,1)
PY := $(VENV)/bin/python
export GEMMA_SMOKE ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: env run test lint unit distributed notebooks rehearsal kit kit-check docs bench clean gpu-check gpu-check-dry

env:
	@bash scripts/setup_env.sh

# make run and the smoke notebooks consent, from outside, to running model-written code in the sandbox (notebook 05's
# HumanEval); a learner's Run all leaves it off until they tick the box. The rehearsal leaves it off too.
# Under test, the "your turn" exercises are answered from tests/exercise_answers.py (kept out of the notebooks), so
# a wrong reference answer or a changed lesson fails the notebook.
# The runner takes a folder: a subset of notebooks is copied into build/run-selection first.
run: env
	@set -- $(NOTEBOOKS); if [ $$# -eq 1 ] && [ -d "$$1" ]; then folder=$$1; else \
	  folder=build/run-selection; rm -rf $$folder && mkdir -p $$folder && cp "$$@" $$folder/; fi; \
	echo "GEMMA_ALLOW_CODE_EXECUTION=1 $(PY) -m gemma_helpers.notebook_runner $$folder --out build"; \
	GEMMA_ALLOW_CODE_EXECUTION=1 $(PY) -m gemma_helpers.notebook_runner $$folder --out build

lint: env
	$(PY) -m ruff check gemma_helpers tests bench scripts notebooks/src
	$(PY) -m gemma_helpers.notebook_runner --check-stripped notebooks
	$(PY) -m gemma_helpers.notebook_runner --check-stripped notebooks/zh

# The launch tests (marker "distributed": accelerate with two gloo processes on a tiny Gemma 3) are left to `make
# distributed`: notebook 06 runs the same launches in make test, in smoke mode and again in the full-mode rehearsal.
unit: env
	$(PY) -m pytest -q $(UNIT) -m "not distributed"

distributed: env
	$(PY) -m pytest -q $(UNIT) -m distributed

# A folder runs in the learner's order (notebook_runner.LEARNER_ORDER: 03's chess fine-tune is what 01 exports and 02
# serves).
notebooks: env  # in a fresh output folder, so that no checkpoint or export of an earlier run is reused
	rm -rf build/test-outputs && mkdir -p build/test-outputs
	@set -- $(NOTEBOOKS); if [ $$# -eq 1 ] && [ -d "$$1" ]; then \
	  set -- $$($(PY) -m gemma_helpers.notebook_runner --list "$$1"); fi; \
	if [ "$(NOTEBOOKS)" = notebooks ]; then set -- "$$@" $(ZH_NOTEBOOKS); fi; \
	echo "notebooks, in this order: $$*"; \
	GEMMA_ALLOW_CODE_EXECUTION=1 GEMMA_OUTPUT=$(CURDIR)/build/test-outputs \
		GEMMA_EXERCISE_ANSWERS=$(CURDIR)/tests/exercise_answers.py \
		$(PY) -m pytest -q --nbmake --nbmake-timeout=900 "$$@" --durations=0

rehearsal: env
	bash scripts/rehearse.sh $(NOTEBOOKS)

# The kit: the curriculum's files, every wheel the set-up installs, the converted models (scripts/make_kit.py).
kit: env
	$(PY) scripts/make_kit.py $(KIT)

# Builds the kit, copies it to a fresh folder, and with the network off (unshare -rn) sets up from the copy and runs
# `make run` and `make test` on notebook 00 and a few unit test files (scripts/kit_check.sh).
kit-check: env
	@if [ "$(KIT_CHECK)" = 0 ]; then echo "[kit-check] skipped: KIT_CHECK=0 (set, or this checkout is a kit's repo/)"; \
	else bash scripts/kit_check.sh $(KIT); fi

# The run-time tables of the READMEs and the teacher's guide, rendered from bench/results (--check: up to date?).
docs: env
	$(PY) scripts/render_docs.py

test: lint gpu-check-dry unit notebooks rehearsal kit-check

# On a CUDA machine with the Colab stack installed (pip install -r requirements-colab.txt, then
# requirements-colab-nodeps.txt with --no-deps; not make env, whose torch is the CPU wheel): every notebook in full
# mode at GEMMA_FULL_SCALE=0.02, in bfloat16 and with float16 forced, per-cell seconds and peak GPU memory in
# bench/results/gpu_check.json, within 9 minutes on one H100 (scripts/gpu_check.py). GPU_PY is that Python.
GPU_PY ?= python3
gpu-check:
	$(GPU_PY) scripts/gpu_check.py

# Its dry run, part of make test (under a second): the plan, and each GPU cell's predicted peak on a T4.
gpu-check-dry: env
	$(PY) scripts/gpu_check.py --dry-run

bench: env
	$(PY) bench/notebooks.py

clean:
	rm -rf build outputs .pytest_cache
