# Two entry points for a fresh clone: `make run` and `make test`.
# Both create .venv on first use; nothing needs to be set up beforehand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/xor.yaml

.PHONY: run test lint bench install install-lowest test-lowest

$(BIN)/backprop-tui: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/backprop-tui

run: install
	$(BIN)/backprop-tui $(SCENARIO)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=typecheck $(BIN)/mypy -p backprop_tui.core -p backprop_tui.tui

test: lint
	$(BIN)/pytest -q

# The same suite on the lowest versions pyproject.toml allows (pinned in .ci/lowest.txt),
# in a virtualenv of their own: pip keeps whatever already satisfies a bound, so a user
# may well run on these. CI runs it after `make test`.
LOWEST := .venv-lowest

$(LOWEST)/bin/backprop-tui: pyproject.toml .ci/lowest.txt
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -c .ci/lowest.txt -e '.[dev]'
	touch $@

install-lowest: $(LOWEST)/bin/backprop-tui

# Snapshot tests are left out here only: their SVGs are Textual's rendering, byte for
# byte, recorded with the newest Textual; an older one draws the same screen with other
# bytes (class names, spacing), which says nothing about whether the app works on it.
test-lowest: install-lowest
	$(LOWEST)/bin/python .ci/versions.py .ci/lowest.txt
	$(LOWEST)/bin/pytest -q --ignore=tests/tui/test_snapshots.py

bench: install
	$(BIN)/python bench/bench_engine.py
