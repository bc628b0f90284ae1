# Two commands matter: `make demo` (the main job, on the embedded SQLite default) and
# `make test` (the whole suite, on SQLite and PostgreSQL). Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv chaos

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

# The chaos suite at a larger scale than the tests run it (see tests/chaos/drain.py).
chaos: venv
	$(BIN)/python -m tests.chaos.drain --dialect sqlite --tasks 5000 --workers 6
	$(BIN)/python -m tests.chaos.drain --dialect postgresql --tasks 10000 --workers 8
