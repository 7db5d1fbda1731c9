"""One way to open the small local SQLite files (intake idempotency, notifier ledger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Autocommit, WAL (readers never block the writer), shareable across threads behind the caller's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db
