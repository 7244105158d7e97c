# Two entry points for a fresh clone: `make run` and `make test`.
# Both create .venv on first use; nothing needs to be set up beforehand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/xor.yaml

.PHONY: run test lint bench install

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

bench: install
	$(BIN)/python bench/bench_engine.py
