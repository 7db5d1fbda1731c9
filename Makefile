# Two commands do all set-up on a fresh machine: `make run` (the pipeline) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench schemas all clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The whole pipeline: local Apache Kafka (fetched once by mvn), topics, four workers, the intake edge.
run: install
	$(BIN)/cpi up

# The whole test suite against a real broker (started from the official jars unless CPI_KAFKA_BOOTSTRAP is set).
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check schemas services tests

typecheck: install
	$(BIN)/mypy schemas services

bench: install
	$(BIN)/cpi bench

schemas: install
	$(BIN)/python -m schemas.export

all: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
