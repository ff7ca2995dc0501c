# serlib: `make course` runs the whole course, `make test` runs the test suite.
# Both create .venv with `python3 -m venv` when it is missing and install with the pinned constraints.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.serlib-installed
export SERLIB_HOME ?= $(CURDIR)/data
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install course test test-ui lint format clean

install: $(STAMP)

# torch is installed first, on its own, so that pip takes the exact pinned CPU/GPU build and no other
# requirement can pull a different torch (with several GB of CUDA packages) through the resolver.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt torch
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m serlib.course_runner --profile $${SERLIB_PROFILE:-workshop}

test: $(STAMP)
	$(PY) -m ruff check serlib tests benchmarks notebooks
	$(PY) -m pytest -q

# The course in a real browser: Debian's chromium driven by Playwright, JupyterLab from the venv,
# notebook 02 in the tiny profile; screenshots and report.json in ui-screenshots/ (docs/ui_test.md).
test-ui: $(STAMP)
	scripts/install_ui_deps.sh $(PY)
	$(PY) tests/ui/run_ui_test.py

lint: $(STAMP)
	$(PY) -m ruff check serlib tests benchmarks notebooks
	$(PY) -m ruff format --check serlib tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format serlib tests benchmarks
	$(PY) -m ruff check --fix serlib tests benchmarks

clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
