# rtdecode — every target sets up what it needs in a local virtual environment.
#   make demo    live demo: simulated rig → daemon → viewer + browser monitor (address printed), ~30 s
#   make test    the test suite (real LSL, ZeroMQ, ONNX Runtime, HDF5 and a headless Chromium;
#                installs Debian's chromium + chromium-driver first when they are missing)
#   make bench   latency benchmark, quick profile (< 2 min): JSON + plots under bench/results/
#   make bench-full  the sweeps too (~8 min here); PROVIDERS=cuda,cpu for a GPU
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
SECONDS ?= 30
PROVIDERS ?= cpu

.PHONY: demo test models lint typecheck bench bench-full clean install install-dev browser

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) -e '.[dev,train]'
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
	RTDECODE_REQUIRE_BROWSER=1 $(PY) -m pytest

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

clean:
	rm -rf $(VENV) out .pytest_cache
