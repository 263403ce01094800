# The two commands of the README. Both build the CPU environment first (once; later runs reuse it).
#   make run   - execute every notebook headlessly in smoke mode -> build/*.ipynb + build/summary.json
#   make test  - lint, unit tests, every notebook through pytest --nbmake in smoke mode, then every notebook again in
#                the full-mode rehearsal (GEMMA_SMOKE=0 against a loopback Hub stand-in; scripts/rehearse.sh). CI runs it.
VENV ?= .venv
PY := $(VENV)/bin/python
export GEMMA_SMOKE ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: env run test lint unit notebooks rehearsal bench clean

env:
	@bash scripts/setup_env.sh

# make run and the smoke notebooks consent, from outside, to running model-written code in the sandbox (notebook 05's
# HumanEval); a learner's Run all leaves it off until they tick the box. The rehearsal leaves it off too.
# Under test, the "your turn" exercises are answered from tests/exercise_answers.py (kept out of the notebooks), so
# a wrong reference answer or a changed lesson fails the notebook.
run: env
	GEMMA_ALLOW_CODE_EXECUTION=1 $(PY) -m gemma_helpers.notebook_runner notebooks --out build

lint: env
	$(PY) -m ruff check gemma_helpers tests bench scripts notebooks/src
	$(PY) -m gemma_helpers.notebook_runner --check-stripped notebooks

unit: env
	$(PY) -m pytest -q tests

notebooks: env  # in a fresh output folder, so that no checkpoint or export of an earlier run is reused
	rm -rf build/test-outputs && mkdir -p build/test-outputs
	GEMMA_ALLOW_CODE_EXECUTION=1 GEMMA_OUTPUT=$(CURDIR)/build/test-outputs \
		GEMMA_EXERCISE_ANSWERS=$(CURDIR)/tests/exercise_answers.py \
		$(PY) -m pytest -q --nbmake --nbmake-timeout=900 notebooks --durations=0

rehearsal: env
	bash scripts/rehearse.sh

test: lint unit notebooks rehearsal

bench: env
	$(PY) bench/notebooks.py

clean:
	rm -rf build outputs .pytest_cache
