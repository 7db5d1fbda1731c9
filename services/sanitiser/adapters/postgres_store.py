"""The sealed store in PostgreSQL (deployments): psycopg 3, one connection per store object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from services.common.keys import StoreKeys
from services.sanitiser.adapters.sealed_store import (
    SCHEMA_V2,
    AuditAnchor,
    Query,
    RetentionPolicy,
    SealedStoreError,
    SealedStoreUnavailable,
    SqlSealedStore,
)

# Any fixed number: the advisory lock that makes concurrent first opens migrate one at a time.
_MIGRATION_LOCK = 0x5EA1ED

_SCHEMA_V1 = [
    """CREATE TABLE sealed_records (
        intel_id TEXT PRIMARY KEY,
        lookup TEXT NOT NULL UNIQUE,
        key_id TEXT NOT NULL,
        wrapped_key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        created_on TEXT NOT NULL,
        review_on TEXT NOT NULL
    )""",
    "CREATE INDEX sealed_records_review_on ON sealed_records (review_on)",
    """CREATE TABLE sealed_audit (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        intel_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE sealed_audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        entries BIGINT NOT NULL,
        last_hash TEXT NOT NULL,
        mac TEXT NOT NULL
    )""",
    """CREATE TABLE sealed_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_id TEXT NOT NULL,
        wrapped_key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        ciphertext TEXT NOT NULL
    )""",
    """CREATE FUNCTION sealed_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the sealed store is append-only (% on %)', TG_OP, TG_TABLE_NAME;
    END $$""",
    # Append-only, enforced by the database too: audit rows never change; records change
    # only in their wrapped key (rotation) and disappear only by purge.
    "CREATE TRIGGER sealed_audit_append_only BEFORE UPDATE OR DELETE ON sealed_audit "
    "FOR EACH ROW EXECUTE FUNCTION sealed_refuse_change()",
    "CREATE TRIGGER sealed_records_immutable BEFORE UPDATE OF intel_id, lookup, nonce, ciphertext, "
    "created_on, review_on ON sealed_records FOR EACH ROW EXECUTE FUNCTION sealed_refuse_change()",
]


class PostgresSealedStore(SqlSealedStore):
    """The sealed store in a PostgreSQL database (tables in the connection's search_path)."""

    _read_head_for_append = "SELECT entries, last_hash FROM sealed_audit_head WHERE id = 1 FOR UPDATE"

    def __init__(self, url: str, keys: StoreKeys | None, retention: RetentionPolicy | None = None,
                 anchor: AuditAnchor | None = None) -> None:
        super().__init__(keys, retention, anchor)
        self._url = url
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            # The message may echo the URL (with its password), so only the class is kept.
            raise SealedStoreError(f"cannot connect to the sealed store: {type(exc).__name__}") from None
        try:
            if keys is not None:
                self._start()
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Query]:
        try:
            if self._db.closed or self._db.broken:
                self._db = psycopg.connect(self._url, autocommit=True)  # the server came back
            with self._transaction_on_connection() as query:
                yield query
        except psycopg.OperationalError as exc:  # connection lost or server down: retry later
            raise SealedStoreUnavailable(f"sealed store unavailable: {type(exc).__name__}") from None

    @contextmanager
    def _transaction_on_connection(self) -> Iterator[Query]:
        with self._db.transaction(), self._db.cursor() as cursor:

            def query(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
                # The shared SQL uses `?` placeholders and never a literal `?`; without parameters
                # psycopg leaves the text alone (the trigger function's `%` stays literal).
                cursor.execute(sql.replace("?", "%s"), params or None)
                return cursor.fetchall() if cursor.description is not None else []

            yield query

    def _lock_schema(self, q: Query) -> None:
        q("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _migrations(self) -> list[list[str]]:
        return [_SCHEMA_V1, SCHEMA_V2]

    def _close_connection(self) -> None:
        self._db.close()
