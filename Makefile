# Everything runs from .venv; the first target that needs it builds it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
HOST ?= 127.0.0.1
PORT ?= 11434

.DEFAULT_GOAL := help
.PHONY: help serve test lint fix unit openapi bench conformance

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# torch is pinned inside the test extra, in this same pip command: pip then takes the CPU wheel
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(SERVE_STAMP)

serve: $(SERVE_STAMP) ## install into .venv and run the server on $(HOST):$(PORT)
	$(BIN)/embedserve serve --host $(HOST) --port $(PORT)

test: $(TEST_STAMP) lint ## install, lint, and run every test (CI runs exactly this)
	$(BIN)/python -m pytest

lint: $(TEST_STAMP) ## ruff, formatting, mypy, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fix: $(TEST_STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(TEST_STAMP) ## the fast tests only
	$(BIN)/python -m pytest tests/unit

conformance: $(TEST_STAMP) ## run the conformance suites against URL (MODEL=all-minilm)
	$(BIN)/python -m conformance --base-url $(URL) --model $(or $(MODEL),all-minilm)

openapi: $(SERVE_STAMP) ## rewrite openapi/openapi.json from the app
	$(BIN)/embedserve openapi > openapi/openapi.json

$(BENCH_STAMP): pyproject.toml $(TEST_STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	touch $@

bench: $(BENCH_STAMP) ## every engine and the server vs sentence-transformers: bench/results.md
	$(BIN)/python bench/run.py
