"""The canary run again with the sealed store on a real PostgreSQL, as deployments run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.topics import DECIDED
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import CANARY_SOURCE, CANARY_STRINGS, _every_text_outside_the_store, _marked, submission
from tests.kafka_helpers import json_value, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def postgres_schema(postgres_server: str) -> Iterator[tuple[str, str]]:
    """A schema of this module's own on the session's PostgreSQL; its URL selects it by search_path."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_server}?options=-csearch_path%3D{schema}", schema
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="module")
def pipeline_extra_env(postgres_schema: tuple[str, str]) -> dict[str, str]:
    return {"CPI_SEALED_STORE_URL": postgres_schema[0]}


def _tables_as_text(url: str, schema: str) -> bytes:
    import psycopg

    dump = []
    with psycopg.connect(url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):  # noqa: S608 - names from the catalogue
                dump.append(repr(row))
    assert tables, "the sealed store created its tables in the schema"
    return "\n".join(dump).encode()


def test_with_a_postgresql_store_the_source_is_nowhere_but_sealed(
    pipeline: Pipeline, postgres_schema: tuple[str, str]
) -> None:
    """Through the running pipeline with the PostgreSQL store: no source value in any topic, log line,
    metric, notification or dead letter, nor as plaintext in any PostgreSQL table — yet the
    Intelligence Unit can unseal it from there."""
    url, schema = postgres_schema
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker), headers=pipeline.api_auth,
                          timeout=30)
    assert response.status_code == 202, response.text
    decision = json_value(wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name), _marked(marker)))

    texts = _every_text_outside_the_store(pipeline)
    texts["postgresql tables"] = _tables_as_text(url, schema)
    leaks = [(where, canary) for where, data in texts.items() for canary in CANARY_STRINGS
             if canary.lower().encode() in data.lower()]
    assert leaks == []

    unsealed = subprocess.run(
        [sys.executable, "-m", "services.cli", "sealed", "unseal", decision["intel_id"], "--role",
         "intelligence_unit", "--officer-id", "DS-0042", "--reason", "Re-contact to confirm the address given."],
        env={**os.environ, **pipeline.env}, capture_output=True, text=True, timeout=120, check=False)
    assert unsealed.returncode == 0, unsealed.stderr
    opened: dict[str, Any] = json.loads(unsealed.stdout)
    assert opened["email"] == CANARY_SOURCE["email"]
