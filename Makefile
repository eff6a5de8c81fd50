# qm-pipeline: every target bootstraps its own environment (idempotent) from uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup chromium demo test test-ib-insync bench lint ui clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.8"

# setup.py and the Cython sources: uv rebuilds the compiled ledger core when they change
$(VENV)/.synced: $(UV) pyproject.toml uv.lock setup.py $(wildcard qm_pipeline/lib/ledger/*.pyx qm_pipeline/lib/ledger/*.pxd)
	$(UV) sync --frozen --python $(PYTHON)
	$(PY) -m compileall -q qm_pipeline
	touch $@

setup: $(VENV)/.synced

# Debian's Chromium for the tearsheet's browser test (headless, offline); a fresh machine lacks it.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

demo: setup
	$(VENV)/bin/qm demo

test: setup chromium
	$(PY) -m pytest -q

# The same gateway integration tests (snapshots, order submission) with the fallback client, ib_insync 0.9.86, in an
# environment of its own (it and ib_async overwrite each other's `eventkit`).
INSYNC := .venv-ib-insync
$(INSYNC)/.synced: $(UV) .ci/ib_insync-requirements.txt
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(INSYNC)
	$(UV) pip sync --quiet --python $(INSYNC)/bin/python --require-hashes .ci/ib_insync-requirements.txt
	touch $@

test-ib-insync: $(INSYNC)/.synced
	QM_EXPECT_IB_CLIENT=ib_insync PYTHONPATH=$(CURDIR) $(INSYNC)/bin/python -m pytest -q \
		-p no:cacheprovider \
		--confcutdir qm_pipeline_tests/lib/ib qm_pipeline_tests/lib/ib
	QM_EXPECT_IB_CLIENT=ib_insync PYTHONPATH=$(CURDIR) $(INSYNC)/bin/python -m pytest -q \
		-p no:cacheprovider \
		--confcutdir qm_pipeline_tests/lib/recon qm_pipeline_tests/lib/recon/test_submit.py

bench: setup
	$(PY) -m qm_pipeline_tests.bench

lint: setup
	$(VENV)/bin/ruff check qm_pipeline qm_pipeline_tests

ui: setup
	$(VENV)/bin/qm ui

clean:
	rm -rf $(VENV) $(TOOLS) $(INSYNC) qm_data .pytest_cache
