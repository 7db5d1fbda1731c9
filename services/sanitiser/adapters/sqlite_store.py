"""The sealed store in an embedded SQLite file (the default): stdlib sqlite3, WAL mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.common.files import private_file
from services.common.keys import StoreKeys
from services.sanitiser.adapters.sealed_store import (
    SCHEMA_V2,
    AuditAnchor,
    Query,
    RetentionPolicy,
    SealedStoreUnavailable,
    SqlSealedStore,
)

_REFUSE = "BEGIN SELECT RAISE(ABORT, 'the sealed store is append-only'); END"

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
        seq INTEGER PRIMARY KEY,
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
        entries INTEGER NOT NULL,
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
    # Append-only, enforced by the database too: audit rows never change; records change
    # only in their wrapped key (rotation) and disappear only by purge.
    f"CREATE TRIGGER sealed_audit_no_update BEFORE UPDATE ON sealed_audit {_REFUSE}",
    f"CREATE TRIGGER sealed_audit_no_delete BEFORE DELETE ON sealed_audit {_REFUSE}",
    "CREATE TRIGGER sealed_records_immutable BEFORE UPDATE OF intel_id, lookup, nonce, ciphertext, "
    f"created_on, review_on ON sealed_records {_REFUSE}",
]


class SqliteSealedStore(SqlSealedStore):
    """The sealed store in one SQLite file; one connection, guarded by the store's lock."""

    def __init__(self, path: Path, keys: StoreKeys | None, retention: RetentionPolicy | None = None,
                 anchor: AuditAnchor | None = None) -> None:
        super().__init__(keys, retention, anchor)
        private_file(path)  # 0600 before SQLite opens it, so its -wal and -shm files are 0600 too
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE) so writers queue on the
        # file lock up front. check_same_thread=False: the worker calls in from a thread pool,
        # and every call holds the store's lock.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed audit entry must survive a power cut.
        self._db.execute("PRAGMA synchronous=FULL")
        # Purged ciphertext is overwritten, not left behind in free pages.
        self._db.execute("PRAGMA secure_delete=ON")
        try:
            if keys is not None:
                self._start()
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[Query]:
        cursor = self._db.cursor()

        def query(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
            return cursor.execute(sql, params).fetchall()

        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # locked or unreadable: it may well pass in a moment
            raise SealedStoreUnavailable(f"sealed store busy or unreadable: {type(exc).__name__}") from None
        try:
            yield query
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def _migrations(self) -> list[list[str]]:
        return [_SCHEMA_V1, SCHEMA_V2]

    def _close_connection(self) -> None:
        self._db.close()
