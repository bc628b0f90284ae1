# Two commands matter: `make demo` (the main job, on the embedded SQLite default) and
# `make test` (the whole suite, on SQLite and PostgreSQL). Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv

$(BIN)/agentstore-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/agentstore-installed

demo: venv
	$(BIN)/agentstore demo

test: venv lint
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check src tests migrations bench tools
	$(BIN)/ruff format --check src tests migrations bench tools
	$(BIN)/mypy --strict src
