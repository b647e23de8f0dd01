# Two entry points for a fresh machine (Python 3.11, nothing else): `make reproduce` and `make test`;
# `make check-book` then looks at the built book in a real browser.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands (papermill, jupyter-book) run from the venv.
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: reproduce test test-fast lint venv data pipeline bench chromium chromium-if-possible check-book check-reproduction check-cross-host lab

reproduce: data pipeline
	@echo "Book: $(CURDIR)/_build/html/index.html"

# The whole suite. tests/test_check_book.py drives Chromium: installed first where this machine allows it (root
# or password-less sudo, apt-get); elsewhere (a laptop, a cluster login node) the suite runs every other test and
# names the browser check it skipped and how to enable it. CI installs Chromium and requires that check.
test: $(STAMP) chromium-if-possible
	$(BIN)/python -m pytest

# Unit tests only, in minutes: no DVC pipeline run (tests/test_pipeline.py), no browser (tests/test_check_book.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not pipeline and not browser"

# ruff's lint rules and its formatter ([tool.ruff] in pyproject.toml) on the code and the notebooks' code cells;
# `ruff format .` and `ruff check --fix .` mend what they report.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# JupyterLab in the repository root on the venv's own python3 kernel (extra 'lab', installed here if missing;
# JUPYTER_PREFER_ENV_PATH: the venv's kernelspec before any user-wide one, nothing registered outside .venv).
# A chapter opened from notebooks/ runs top to bottom on the pipeline's outputs (after `make reproduce`) with its
# default parameters, the values of params.yaml. Lab prints the URL to open; `make lab LAB_ARGS=--no-browser`
# (or --port=N, --ip=...) passes options on; as root (a container), Lab's --allow-root is added.
LAB_ARGS ?=
lab: $(STAMP)
	@test -x $(BIN)/jupyter-lab || $(BIN)/python -m pip install --quiet -c requirements.lock -e '.[lab]'
	JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Materialise data/ (SynthFaces with the preset and seed of params.yaml) unless it already holds them from
# this generator version, then check it against the hash recorded in data.dvc.
data: $(STAMP)
	@read preset seed < <($(BIN)/python -c "import yaml; d = yaml.safe_load(open('params.yaml'))['data']; print(d['preset'], d['seed'])"); \
	$(BIN)/dmlfaces synth --out data --preset $$preset --seed $$seed --reuse
	@# Hash data/ into the DVC cache; keep the recorded data.dvc and compare the two.
	@mkdir -p .dvc/tmp && cp data.dvc .dvc/tmp/data.dvc.recorded
	@$(BIN)/dvc commit --force --quiet data.dvc
	@if cmp -s data.dvc .dvc/tmp/data.dvc.recorded; then \
	  echo "data/: identical to the hash recorded in data.dvc ($$(grep -m1 md5 data.dvc | tr -d ' '))"; else \
	  echo "data/: DIFFERS from the hash recorded in data.dvc (recorded $$(grep -m1 md5 .dvc/tmp/data.dvc.recorded | tr -d ' '), found $$(grep -m1 md5 data.dvc | tr -d ' ')): a different generator, preset, seed or library version; the study runs on what is in data/"; \
	  cp .dvc/tmp/data.dvc.recorded data.dvc; fi

pipeline: $(STAMP)
	$(BIN)/dvc repro

# Debian's Chromium, for check-book and its test: apt-get (through sudo unless root); silent when installed
# (chromium on PATH, or $$CHROMIUM naming the browser, e.g. macOS's Chromium.app/Contents/MacOS/Chromium).
HAVE_CHROMIUM := { [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null; }
chromium:
	@$(HAVE_CHROMIUM) || { echo "chromium: installing Debian's package with apt-get"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# `make chromium` where it can work without asking for a password; otherwise say what the suite will skip.
chromium-if-possible:
	@if $(HAVE_CHROMIUM); then :; \
	elif command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then $(MAKE) --no-print-directory chromium; \
	else echo "chromium: not installed, and this machine has no apt-get with root or password-less sudo: the suite skips the" \
	  "browser check (tests/test_check_book.py). To run it, install Chromium and put it on PATH, or set CHROMIUM=/path/to/chromium."; fi

# The built book in headless Chromium (tools/check_book.py): every page loaded from a local server; broken
# images, missing notebook figures, JavaScript and console errors and failed requests fail it, by page; one
# full-page screenshot a page lands in $(SCREENSHOTS). `make check-book BOOK=DIR` checks another build.
BOOK ?= _build/html
SCREENSHOTS ?= _build/screenshots
check-book: $(BOOK)/index.html $(STAMP) chromium
	$(BIN)/python tools/check_book.py --book $(BOOK) --screenshots $(SCREENSHOTS)

$(BOOK)/index.html:
	@echo "check-book: no built book in $(BOOK)/: run 'make reproduce' (data, pipeline, book), or, when the" \
	  "notebooks in book/ are already executed, '.venv/bin/jupyter-book build .'"; exit 1

# This run's metrics against the committed ones (tools/compare_metrics.py): byte for byte, else within TOLERANCE
# (relative), naming every key that differs. `make check-reproduction REFERENCE=DIR` compares with a folder.
REFERENCE ?= HEAD
TOLERANCE ?= 1e-6
check-reproduction: $(STAMP)
	$(BIN)/python tools/compare_metrics.py --reference $(REFERENCE) --tolerance $(TOLERANCE)

# The same on a host of another CPU model, where pinned numerics do not give the same bits: each kind of number
# within its stated tolerance (dmlfaces.reproduction.CROSS_HOST, listed on the reproducibility page).
check-cross-host: $(STAMP)
	$(BIN)/python tools/compare_metrics.py --reference $(REFERENCE) --cross-host

# Each benchmark times our code against a reference in the same run; the last line of each is JSON.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_aggregator.py
	$(BIN)/python benchmarks/bench_verification.py
	$(BIN)/python benchmarks/bench_clustering.py
