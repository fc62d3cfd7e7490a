# Observatorio de Movilidad Humana: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export OMH_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(OMH_HOME)/airflow
STAMP := $(VENV)/.installed
# moto[server], the local S3 of `make cluster` and the object-storage lake's tests, in a virtualenv
# of its own: its python-dateutil pin conflicts with Airflow's (deploy/moto-requirements.txt).
MOTO_VENV := .venv-moto
MOTO_STAMP := $(MOTO_VENV)/.installed

.PHONY: setup demo test airflow cluster bench bench-storage bench-concurrency lint lock clean

setup: $(STAMP) $(MOTO_STAMP)

$(MOTO_STAMP): deploy/moto-requirements.txt
	test -x $(MOTO_VENV)/bin/python || $(PY) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/python -m pip install -q --disable-pip-version-check -r deploy/moto-requirements.txt
	touch $(MOTO_STAMP)

# Idempotent: the venv is rebuilt only when the pins or the project metadata change.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PY) >/dev/null || { echo "needs $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==0.13.9" || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/omh demo

test: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

airflow: setup
	$(BIN)/omh airflow

# The production shape on this machine: CeleryExecutor, two workers, PostgreSQL, Redis (README,
# "Run it as a cluster"); Ctrl-C stops every component.
cluster: setup
	$(BIN)/omh cluster

bench: setup
	$(BIN)/python bench/run.py

# What one write of 20 M observations costs in DuckDB, column by column (bench/storage.py).
bench-storage: setup
	$(BIN)/python bench/storage.py

# K = 1, 2, 4, 8 loader processes into one PostgreSQL warehouse (bench/pg_concurrency.py): what
# the cluster's warehouse pool may allow; writes bench/concurrency.json. Needs the PostgreSQL server.
bench-concurrency: setup
	$(BIN)/python bench/pg_concurrency.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Re-resolve the pins (needs the package index); commit constraints.txt afterwards.
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install --python $(BIN)/python -e ".[dev]"
	$(BIN)/uv pip freeze --python $(BIN)/python --exclude-editable | grep -v '^uv==' > constraints.txt

clean:
	rm -rf var .pytest_cache
