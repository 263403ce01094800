# The two commands of the README. Both build the CPU environment first (once; later runs reuse it).
#   make run   - execute every notebook headlessly in smoke mode -> build/*.ipynb + build/summary.json
#   make test  - lint, unit tests, then every notebook through pytest --nbmake (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
export GEMMA_SMOKE ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: env run test lint unit notebooks bench clean

env:
	@bash scripts/setup_env.sh

run: env
	$(PY) -m gemma_helpers.notebook_runner notebooks --out build

lint: env
	$(PY) -m ruff check gemma_helpers tests bench scripts notebooks/src
	$(PY) -m gemma_helpers.notebook_runner --check-stripped notebooks

unit: env
	$(PY) -m pytest -q tests

notebooks: env  # in a fresh output folder, so that no checkpoint or export of an earlier run is reused
	rm -rf build/test-outputs && mkdir -p build/test-outputs
	GEMMA_OUTPUT=$(CURDIR)/build/test-outputs $(PY) -m pytest -q --nbmake --nbmake-timeout=900 notebooks --durations=0

test: lint unit notebooks

bench: env
	$(PY) bench/notebooks.py

clean:
	rm -rf build outputs .pytest_cache
