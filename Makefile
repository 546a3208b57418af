# Stepflow: `make run` starts the service locally, `make test` runs every check. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint statemachines bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip>=24,<26.3"  # chalice package needs pip below 26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

## run: serve the API on http://127.0.0.1:$(PORT) over the embedded AWS emulation
run: $(VENV)/.installed
	PORT=$(PORT) $(PY) -m stepflow_local.server

## test: lint, then the whole test suite (unit, integration on moto, end to end)
test: $(VENV)/.installed node_modules/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy chalicelib

## statemachines: recompile the bundled examples into statemachines/
statemachines: $(VENV)/.installed
	$(PY) -m chalicelib.tools.build_statemachines

## bench: compile and scheduling benchmarks, written to bench/results.md
bench: $(VENV)/.installed
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache
