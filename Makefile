# exops — the two commands a newcomer needs are `make run` and `make test`.
# Everything installs itself into .venv/ from uv.lock; only Python 3.11 and make are assumed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS := var/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
PG15_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

# `make run` defaults: the built-in simulated exchange
USERS ?= 20000
DAYS ?= 90
START ?= 2026-08-01
SEED ?= 42

.PHONY: help install run test test-unit test-integration test-pg15 docs lint format clean stop

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@mkdir -p $(TOOLS)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"exops needs Python 3.11, found {sys.version.split()[0]} at {sys.executable}"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# --compile-bytecode: every exops, dbt, GX and Airflow process imports precompiled modules,
# also where PYTHONDONTWRITEBYTECODE keeps Python from caching them (GX alone compiled for
# seconds in each `exops validate`)
$(STAMP): $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

install: $(STAMP) ## install everything into .venv from uv.lock (quick when nothing changed)

run: install ## simulate an exchange, run the whole pipeline through Airflow, say what came out
	$(VENV)/bin/exops run --users $(USERS) --days $(DAYS) --start $(START) --seed $(SEED)

test: install ## all tests: unit, then integration on real PostgreSQL / SMTP / Airflow
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: install ## fast tests only (no services)
	$(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

test-integration: install ## integration tests only
	$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

test-pg15: install ## integration tests (but the Airflow cluster one) on PostgreSQL 15 at PG15_URL
	EXOPS_WAREHOUSE_URL=$(PG15_URL) $(VENV)/bin/pytest -m "integration and not distributed" $(PYTEST_ARGS)

distributed-test: install ## scheduler, dag-processor, api-server, 2 Celery workers: a whole day
	$(VENV)/bin/pytest -m distributed tests/integration/test_distributed.py $(PYTEST_ARGS)

docs: install ## dbt docs (models, columns, lineage, exposures) into var/dbt/docs
	$(VENV)/bin/exops docs

# sqlfluff's dbt templater needs a warehouse connection: this runs it against an empty
# database of the embedded PostgreSQL (dbt_project/run_sqlfluff.py says why)
SQLFLUFF := $(VENV)/bin/python dbt_project/run_sqlfluff.py

lint: install ## ruff lint and format check, sqlfluff over the dbt project (.sqlfluff)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(SQLFLUFF) lint dbt_project

format: install ## ruff format and autofix, sqlfluff fix of the dbt project
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(SQLFLUFF) fix dbt_project

.PHONY: bench
bench: SCALE ?= small
bench: install ## benchmark harness (SCALE=small|large|history), prints figures and targets, writes bench/results/
	$(VENV)/bin/python bench/run.py --scale $(SCALE)

stop: ## stop the embedded PostgreSQL
	-@[ -x $(VENV)/bin/exops ] && $(VENV)/bin/exops warehouse stop

clean: stop ## remove local state (embedded warehouse, Airflow DB, landing zone, reports)
	rm -rf var/pg var/airflow var/landing var/reports var/mail var/dbt
