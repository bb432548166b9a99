# rtdecode — every target sets up what it needs in a local virtual environment.
#   make demo    live demo: simulated rig → daemon → viewer + browser monitor (address printed), ~30 s
#   make test    the test suite (real LSL, ZeroMQ, ONNX Runtime, HDF5 and a headless Chromium;
#                installs Debian's chromium + chromium-driver first when they are missing)
#   make bench   latency benchmark, quick profile (< 2 min): JSON + plots under bench/results/
#   make bench-full  the sweeps too (~8 min here); PROVIDERS=cuda,cpu for a GPU
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Pins per Python: 3.10 needs older numpy / scipy / onnxruntime (constraints-py310.txt).
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d%d" % sys.version_info[:2])' 2>/dev/null)
CONSTRAINTS ?= $(if $(filter 310,$(PYVER)),constraints-py310.txt,constraints.txt)
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS)
# The training extra (torch) only where its pinned CPU build exists (Python 3.11 here): elsewhere a
# plain `pip install torch` would pull a multi-GB CUDA build; the torch tests then skip with a reason.
comma  := ,
TRAIN_EXTRA ?= $(if $(filter 311,$(PYVER)),$(comma)train)
SECONDS ?= 30
PROVIDERS ?= cpu

.PHONY: demo test models lint typecheck bench bench-full clean install install-dev browser

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(VENV)/bin/python pyproject.toml $(CONSTRAINTS)
	$(PIP) -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e '.[dev$(TRAIN_EXTRA)]'
	@touch $@

$(VENV)/.bench: $(VENV)/.runtime
	$(PIP) -e '.[bench]'
	@touch $@

$(VENV)/.monitor: $(VENV)/.runtime
	$(PIP) -e '.[monitor,record]'
	@touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

browser:
	scripts/install-browser.sh

demo: $(VENV)/.monitor
	@mkdir -p out
	$(PY) -m rtdecode demo --seconds $(SECONDS) --json out/demo-summary.json --record out/sessions

test: $(VENV)/.dev browser
	RTD_TEST_REQUIRE_BROWSER=1 $(PY) -m pytest

bench: $(VENV)/.bench
	$(PY) -m bench quick --providers $(PROVIDERS)

bench-full: $(VENV)/.bench
	$(PY) -m bench full --providers $(PROVIDERS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check rtdecode tests scripts bench

typecheck: $(VENV)/.dev
	$(VENV)/bin/mypy rtdecode

models: $(VENV)/.dev
	$(PY) scripts/build_models.py
	$(PY) scripts/build_fusion_models.py
	$(PY) scripts/build_ibci_model.py

clean:
	rm -rf $(VENV) out .pytest_cache
