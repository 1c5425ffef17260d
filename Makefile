# Two commands on a fresh machine:  `make run` (the whole service on embedded defaults)  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
PORT ?= 8000

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

.PHONY: install run test lint bench
install: $(VENV)/.installed

# On the trial .env (secrets still ending in -change-me) the service runs in development mode, which accepts them;
# once .env holds real secrets it runs as in production.
run: $(VENV)/.installed
	@test -f .env || { install -m 600 config.example.env .env; echo "created .env from config.example.env (trial values: edit before production)"; }
	@if grep -qE '^[A-Z_]+=.*change-me' .env; then \
	  echo "development mode: trial secrets accepted; never expose this instance"; \
	  export NTBCARE_ENV=development; fi; \
	$(VENV)/bin/ntbcare run --host 127.0.0.1 --port $(PORT)

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/ingest.py
