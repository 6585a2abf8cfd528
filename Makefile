# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint format migrate system-packages bench

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

setup: $(BIN)/.installed

migrate: setup
	$(BIN)/python manage.py migrate --noinput

# Web, worker and beat together; DEMO=1 adds a local fleet that goes down and comes back.
run: migrate
	$(BIN)/python manage.py ensure_superuser
	$(BIN)/python manage.py run_all --host $(HOST) --port $(PORT) $(if $(DEMO),--demo)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Debian packages the tests run for real (prometheus); installed when missing and root.
system-packages:
	bash .ci/system-packages

test: lint system-packages
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/probe_sweep.py
