"""One way to open the small local SQLite files (intake idempotency, notifier ledger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.common.files import private_file


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Autocommit, WAL (readers never block the writer), shareable across threads behind the caller's lock."""
    private_file(path)  # 0600 before SQLite opens it, so its -wal and -shm files are 0600 too
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db
