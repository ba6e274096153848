# o365collector — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_ARGS ?=

.DEFAULT_GOAL := help

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml emulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m pip install -q -e ./emulator  # after: an older collector install owned its script
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install o365collector with its test tools.

demo: $(STAMP) ## Start the built-in Microsoft emulator and collect from it (Ctrl-C stops).
	$(BIN)/o365collector demo $(DEMO_ARGS)

lint: $(STAMP) ## ruff check and format check.
	$(BIN)/ruff check src emulator tests bench
	$(BIN)/ruff format --check src emulator tests bench

fmt: $(STAMP) ## Format and autofix.
	$(BIN)/ruff format src emulator tests bench
	$(BIN)/ruff check --fix src emulator tests bench

typecheck: $(STAMP) ## mypy --strict on src/ and emulator/src/.
	$(BIN)/mypy

test: lint typecheck ## Lint, type-check and run the whole test suite.
	$(BIN)/pytest

bench: $(STAMP) ## Run every benchmark and rewrite docs/benchmarks.md.
	$(BIN)/python bench/run.py

bench-smoke: $(STAMP) ## Run each benchmark for a few seconds (CI).
	$(BIN)/python bench/run.py --smoke

clean: ## Remove the virtualenv and demo output.
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install demo lint fmt typecheck test bench bench-smoke clean
