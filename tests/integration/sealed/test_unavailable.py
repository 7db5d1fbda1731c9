"""A sealed store that is briefly away says so as a transient error, and recovers by itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from schemas import Source
from services.common.errors import TransientError
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.adapters.sealed_store import SealedStoreUnavailable
from tests.key_helpers import unseal_keys

SOURCE = Source.model_validate({"name": "Ines Marlow", "role": "Social Worker", "organisation": "Westvale Council",
                                "organisation_type": "local_authority", "email": "ines.marlow@westvale.example"})


@pytest.fixture
def postgres_schema_url(postgres_server: str) -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"down_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_lost_postgresql_connection_is_transient_and_the_store_reconnects(
    postgres_schema_url: str, postgres_server: str, tmp_path: Path
) -> None:
    """When the server drops the store's connection, the next call raises SealedStoreUnavailable (a
    TransientError, so the worker retries rather than dead-letters) and the call after it reconnects."""
    import psycopg

    store = open_sealed_store(postgres_schema_url, unseal_keys(tmp_path))
    try:
        first = store.seal(uuid.uuid4().hex, SOURCE, date.today())
        pid = store._db.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(SealedStoreUnavailable) as caught:
            store.seal(uuid.uuid4().hex, SOURCE, date.today())
        assert isinstance(caught.value, TransientError)
        second = store.seal(uuid.uuid4().hex, SOURCE, date.today())
        assert second != first and store.count() == 2
    finally:
        store.close()


def test_a_locked_sqlite_store_is_transient(tmp_path: Path) -> None:
    """Another writer holding the SQLite file makes seal raise SealedStoreUnavailable, not a crash."""
    import sqlite3

    store = open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", unseal_keys(tmp_path))
    blocker = sqlite3.connect(tmp_path / "sealed.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(SealedStoreUnavailable):
            store.seal(uuid.uuid4().hex, SOURCE, date.today())
        blocker.execute("ROLLBACK")
        assert store.seal(uuid.uuid4().hex, SOURCE, date.today())
    finally:
        blocker.close()
        store.close()
