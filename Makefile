# Two commands do all set-up on a fresh machine: `make run` (the pipeline) and `make test` (the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench schemas compat all clean

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

# The operators' benchmark (docs/performance.md): offline figures and a backlog through the local broker, then an
# open-loop minute at BENCH_RATE; each run beside its raw relay baseline, JSON and PNG chart in bench-results/.
BENCH_RECORDS ?= 10000
BENCH_RATE ?= 100
bench: install
	$(BIN)/cpi bench --kafka --mode backlog --kafka-records $(BENCH_RECORDS) --out bench-results
	$(BIN)/cpi bench --kafka-only --mode open-loop --rate $(BENCH_RATE) --kafka-records $$(( $(BENCH_RATE) * 60 )) \
		--out bench-results

# The JSON Schemas and the AsyncAPI document generated from them and the topic registry (docs/asyncapi.yaml).
schemas: install
	$(BIN)/python -m schemas.export
	$(BIN)/python -m schemas.asyncapi

# Fails when a v1 schema changed in a way consumers of the released copy (schemas/released/v1/) cannot read.
compat: install
	$(BIN)/python -m schemas.compat

all: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
