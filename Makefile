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
# Apache Superset pins pandas < 2.2 and SQLAlchemy < 2: its own environment and lock
BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.installed-stamp
PYTEST_ARGS ?=
# `make test` spreads the modules over pytest-xdist workers (tests/conftest.py says how);
# TEST_WORKERS=0 runs them in this one process
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)
PG15_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

# `make run` defaults: the built-in simulated exchange
USERS ?= 20000
DAYS ?= 90
START ?= 2026-08-01
SEED ?= 42

.PHONY: help install run test test-unit test-integration test-pg15 docs lint format clean stop \
	bi bi-install bi-stop browser

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
# then dbt's manifest and the model list exops_transform shows as tasks (`exops transform
# --parse`: no warehouse needed; every build writes them again)
$(STAMP): $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	$(VENV)/bin/exops transform --parse
	@touch $@

install: $(STAMP) ## install everything into .venv from uv.lock (quick when nothing changed)

$(BI_STAMP): $(UV) bi/uv.lock bi/pyproject.toml Makefile
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(BI_VENV) $(UV) sync --project bi --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

bi-install: $(BI_STAMP) ## install Apache Superset into .venv-bi from bi/uv.lock (quick when unchanged)

bi: install bi-install ## Apache Superset on 127.0.0.1 (EXOPS_BI_PORT, 8088) as bi_reader, with the exops dashboards
	$(VENV)/bin/exops bi start

bi-stop: ## stop the Superset that `make bi` started
	-@[ -x $(VENV)/bin/exops ] && $(VENV)/bin/exops bi stop

# the dashboard's browser test drives Debian's chromium with its chromedriver; where they are
# missing and apt-get can run as root they are installed, else the test says it is skipped
browser: ## headless Chromium and chromedriver for the browser test (apt-get, as root)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  mkdir -p var; echo "installing Debian's chromium and chromium-driver (log: var/apt-chromium.log)"; \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } \
	    >var/apt-chromium.log 2>&1 \
	    || echo "could not install chromium (var/apt-chromium.log): the browser test will be skipped"; \
	else echo "no chromium/chromedriver and no root apt-get: the browser test will be skipped"; fi

run: install ## simulate an exchange, run the whole pipeline through Airflow, say what came out
	$(VENV)/bin/exops run --users $(USERS) --days $(DAYS) --start $(START) --seed $(SEED)

test: install bi-install browser ## all tests: unit, then integration on real PostgreSQL / SMTP / Airflow / Superset
	$(VENV)/bin/pytest $(XDIST) $(PYTEST_ARGS)

test-unit: install ## fast tests only (no services)
	$(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

test-integration: install bi-install browser ## integration tests only
	$(VENV)/bin/pytest -m integration $(XDIST) $(PYTEST_ARGS)

# one process: the modules share the server's roles, which two workers would change at once
test-pg15: install ## integration tests on PostgreSQL 15 at PG15_URL (but those marked server_agnostic)
	EXOPS_WAREHOUSE_URL=$(PG15_URL) $(VENV)/bin/pytest -m "integration and not distributed and not server_agnostic" $(PYTEST_ARGS)

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

stop: ## stop the embedded PostgreSQL (and the test workers' own)
	-@[ -x $(VENV)/bin/exops ] && $(VENV)/bin/exops warehouse stop
	-@for d in var/test-workers/*/; do [ -d "$$d/pg" ] && EXOPS_VAR_DIR="$$d" $(VENV)/bin/exops warehouse stop; done; true

clean: bi-stop stop ## remove local state (embedded warehouse, Airflow DB, landing zone, reports, Superset)
	rm -rf var/pg var/airflow var/landing var/reports var/mail var/dbt var/bi var/test-workers
