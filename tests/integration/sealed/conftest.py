"""Sealed-store fixtures: every test runs against SQLite and a real PostgreSQL (the session's
`postgres_server`, from tests/conftest.py). Each test gets a schema of its own on that server.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import AUDIT
from services.common.keys import StoreKeys
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters import RetentionPolicy, SealedStore, open_sealed_store
from tests.key_helpers import key_settings, unseal_keys
from tests.postgres_helpers import fresh_schema


@dataclass
class Backend:
    """One store location for one test, with raw SQL access to play the attacker with."""

    name: str
    url: str
    data_dir: Path
    raw: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
    files: list[Path] = field(default_factory=list)
    opened: list[SealedStore] = field(default_factory=list)

    def open(self, retention: RetentionPolicy | None = None, keys: StoreKeys | None = None) -> SealedStore:
        """Open a store object on this test's database (closed at teardown), by default with the unseal
        path's keys (from this test's keys folder), which seal and open."""
        store = open_sealed_store(self.url, keys or unseal_keys(self.data_dir), retention=retention)
        self.opened.append(store)
        return store

    def settings(self) -> Any:
        """Sanitiser settings for this store and keys folder (what `cpi keys` and the workers read)."""
        return key_settings(self.data_dir, sealed_store_url=self.url)

    def sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL directly on the database (`?` placeholders), committed at once."""
        return self.raw(sql, params)

    def drop_guards(self) -> None:
        """Drop the append-only triggers, as an attacker with DDL rights would."""
        if self.name == "sqlite":
            for trigger in ("sealed_audit_no_update", "sealed_audit_no_delete", "sealed_records_immutable"):
                self.sql(f"DROP TRIGGER {trigger}")
        else:
            self.sql("DROP TRIGGER sealed_audit_append_only ON sealed_audit")
            self.sql("DROP TRIGGER sealed_records_immutable ON sealed_records")

    def everything_at_rest(self) -> bytes:
        """Every byte the store keeps: the SQLite files, or every PostgreSQL table dumped as text."""
        if self.name == "sqlite":
            return b"".join(p.read_bytes() for p in self.files if p.exists())
        tables = self.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        # Table names come from the catalogue of this test's own schema, not from input.
        query = 'SELECT t::text FROM "{}" t'
        dump = [str(row) for (table,) in tables for row in self.sql(query.format(table))]
        return "\n".join(dump).encode()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty store location on each backend, and a keys folder of its own."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        path = tmp_path / "store" / "sealed.db"

        def raw_sqlite(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path, isolation_level=None) as db:
                rows = db.execute(sql, params).fetchall()
            db.close()
            return rows

        files = [path, path.with_name("sealed.db-wal"), path.with_name("sealed.db-shm")]
        chosen = Backend("sqlite", f"sqlite:///{path}", data_dir, raw_sqlite, files)
        yield chosen
        for store in chosen.opened:
            store.close()
        return

    import psycopg

    with fresh_schema(request.getfixturevalue("postgres_server"), "sealed") as url:
        yield from _postgres_backend(url, data_dir, psycopg)


def _postgres_backend(url: str, data_dir: Path, psycopg: Any) -> Iterator[Backend]:
    def raw_postgres(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as db, db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params or None)
            return cursor.fetchall() if cursor.description is not None else []

    chosen = Backend("postgres", url, data_dir, raw_postgres)
    yield chosen
    for store in chosen.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> SealedStore:
    """A sealed store on the test's backend with the default retention policy."""
    return backend.open()


@pytest.fixture
def anchored_settings(backend: Backend, kafka_bootstrap: str, topic_prefix: str,
                      topic_factory: Callable[..., dict[str, str]]) -> SanitiserSettings:
    """Settings for this test's store and keys with a broker and this test's own audit topic: what the unseal
    path (`cpi sealed`, `cpi keys rotate`, the console) needs, since it anchors every audit entry there."""
    topic_factory(AUDIT)
    return key_settings(backend.data_dir, sealed_store_url=backend.url, kafka_bootstrap=kafka_bootstrap,
                        topic_prefix=topic_prefix)
