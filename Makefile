# certnet — `make demo` runs the platform, `make test` runs the whole suite. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: help install demo serve setup test test-fast lint format openapi bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install certnet with pinned dependencies

setup: install  ## migrate the database and load the framework and demo data (idempotent)
	$(BIN)/certnet setup --demo

demo: setup  ## set up (see above) and serve on http://127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/certnet serve

serve: install  ## serve without setting up
	PORT=$(PORT) $(BIN)/certnet serve

test: install  ## lint, type-check and run the whole suite (browser tier included; PostgreSQL with CERTNET_TEST_POSTGRES=1)
	scripts/test.sh

test-fast: install  ## the suite on SQLite only, no lint, no browser
	$(BIN)/python -m pytest -q -m "not browser"

lint: install  ## ruff, formatting, mypy and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy certnet
	$(BIN)/lint-imports

format: install  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: install  ## regenerate docs/openapi.json after an API change
	$(BIN)/certnet export_openapi docs/openapi.json

bench: install  ## run the benchmarks (incidents: on throwaway PostgreSQL clusters, ~10 minutes)
	$(BIN)/python bench/lookup.py
	$(BIN)/python bench/intel_match.py
	$(BIN)/python bench/stix_import.py
	$(BIN)/python bench/taxii_paging.py
	bench/pipeline_vs_intelmq.sh 100000
	scripts/with-postgres.sh $(BIN)/python bench/incident_queue.py
	CERTNET_PG_FSYNC=on scripts/with-postgres.sh $(BIN)/python bench/report_api.py

clean:  ## remove the venv, the database and caches
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
