# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create .venv from requirements.txt on first use, and re-install only
# when requirements.txt or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOOK_FLAGS := -W -n --keep-going
# Keep torch to one thread: faster for 64-unit MLPs, and fair to env stepping.
export OMP_NUM_THREADS ?= 1
# pytest workers, one per core (pytest-xdist); nbval keeps each notebook's cells
# on one worker (--dist loadfile), in order, in one kernel, and the torchrun tests
# that share one run stay together (--dist loadgroup, tests/test_distributed.py).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# Numeric code paths that this CPU can take besides its own (CONTRIBUTING.md,
# "Numeric code paths"): MKL's conditional-numerical-reproducibility branches and
# torch's unvectorised kernels. The unit tests run under each, nbval under one
# that combines two of them. MKL's AVX2 branch only where the CPU has AVX2, and
# torch's AVX2 kernels only where they are not already the native ones.
HAS_AVX2 := $(shell grep -m1 -ow avx2 /proc/cpuinfo 2>/dev/null)
HAS_AVX512 := $(shell grep -m1 -ow avx512f /proc/cpuinfo 2>/dev/null)
NUMERIC_PATHS := MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default \
  $(if $(HAS_AVX2),MKL_CBWR=AVX2) $(if $(HAS_AVX512),ATEN_CPU_CAPABILITY=avx2)
NBVAL_PATH := MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default

.PHONY: book test lint unit unit-paths nbval book-quick browser chromium colab notebooks benchmark benchmark-continuous clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing requirements into $(VENV) (about a minute the first time)"
	$(BIN)/python -m pip install --quiet -r requirements.txt 2>&1 | sed "/is ignored/d"
	$(BIN)/python -m pip install --quiet -e . 2>&1 | sed "/is ignored/d"
	$(BIN)/python -m pip check
	$(BIN)/python -c "import torch, gymnasium, ppo_helpers; print('[setup] torch', torch.__version__, 'gymnasium', gymnasium.__version__)"
	@touch $(STAMP)

## make book: execute every notebook at full budget and render _build/html
book: $(STAMP)
	@echo "[book] executing every notebook at full budget (a few minutes per chapter)"
	env -u PPO_BOOK_QUICK $(BIN)/jupyter-book build . $(BOOK_FLAGS)
	@echo "[book] open _build/html/index.html"

## make test: lint, unit tests (on this CPU's own path and on the others it can
## emulate), then two at a time: nbval on every notebook (quick, on another
## path), the quick book build and every built page checked in headless
## Chromium, and one chapter run on a fresh Colab-like runtime
test: lint unit unit-paths
	@# The book build executes one notebook at a time, on one core: the other
	@# runs nbval or the Colab test meanwhile. Each target's output in one piece.
	$(MAKE) --no-print-directory -j2 --output-sync=target nbval browser colab

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/book.yml

unit: $(STAMP)
	$(BIN)/pytest tests --ignore=tests/browser --ignore=tests/colab -n $(JOBS) --dist loadgroup

unit-paths: $(STAMP)
	@for path in $(NUMERIC_PATHS); do \
	  echo "[unit] under $$path"; \
	  env $$path $(BIN)/pytest tests --ignore=tests/browser --ignore=tests/colab -q \
	    -m "not processes" -p no:cacheprovider -n $(JOBS) || exit 1; \
	done

nbval: $(STAMP)
	@echo "[nbval] under $(NBVAL_PATH)"
	$(NBVAL_PATH) PPO_BOOK_QUICK=1 $(BIN)/pytest --nbval-lax --nbval-cell-timeout=600 notebooks \
	  -p no:cacheprovider -n $(JOBS) --dist loadfile

book-quick: $(STAMP)
	PPO_BOOK_QUICK=1 $(BIN)/jupyter-book build . $(BOOK_FLAGS) --path-output _build/quick

browser: $(STAMP) chromium book-quick
	BOOK_HTML_DIR=_build/quick/_build/html BOOK_SCREENSHOT_DIR=_build/screenshots \
	  $(BIN)/pytest tests/browser -p no:cacheprovider
	@echo "[browser] screenshots in _build/screenshots/"

# Debian's Chromium for the browser test: installed when missing and we are root
# (CI); otherwise the test says it was skipped and why.
chromium:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
	  (echo "[setup] installing chromium (about a minute)" && \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "[setup] could not install chromium: the browser test will be skipped"

# A fresh Colab-like runtime: a new venv with only torch and a kernel, the
# notebook alone in a temporary folder, its setup cell installing the package.
colab: $(STAMP)
	$(BIN)/pytest tests/colab -p no:cacheprovider

## make notebooks: re-run every notebook at full budget and store the outputs
notebooks: $(STAMP)
	env -u PPO_BOOK_QUICK $(BIN)/jupyter-execute --inplace --timeout=1800 notebooks/*.ipynb

benchmark: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/profile_iteration.py
	$(BIN)/python benchmarks/lunarlander.py

## make benchmark-continuous: presets.BOX_DEFAULTS on Pendulum and LunarLanderContinuous
benchmark-continuous: $(STAMP)
	$(BIN)/python benchmarks/continuous.py

clean:
	rm -rf _build .pytest_cache
