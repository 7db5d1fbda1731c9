"""Idempotency keys: the same key resubmitted gets the same receipt and nothing is produced twice.

A key is scoped to who is known to have sent it, never to anything the caller types: the
authenticated partner on the API, the browser session on the form (whose keys the server makes,
at random, for each form it renders), the operator for `cpi import`. So nobody can ask whether a
named professional used a key, and two partners choosing the same key never collide or see each
other's receipts. Nothing readable is stored: the scope and the content fingerprint are HMACs
under the edge secret, so the table reveals no provenance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas import Submission
from services.common.settings import IntakeSettings
from services.common.sqlite import open_sqlite

RETENTION_SECONDS = 7 * 24 * 3600  # long enough for any client retry; short enough to keep the table small
IMPORT_PRINCIPAL = "import"  # `cpi import`: the operator who runs it


def partner_principal(partner_id: str) -> str:
    """The idempotency scope of a partner system authenticated by its API key."""
    return f"partner:{partner_id}"


def form_principal(session_cookie: str) -> str:
    """The idempotency scope of one browser's form session (its CSRF cookie, which only it holds)."""
    return f"form:{session_cookie}"


class Receipt(BaseModel):
    """What the professional is given back: a reference that never becomes an id downstream."""

    model_config = ConfigDict(frozen=True)

    receipt_id: str
    received_at: datetime


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: new (go ahead), duplicate (here is the receipt), conflict, pending."""

    outcome: Literal["new", "duplicate", "conflict", "pending"]
    receipt: Receipt | None = None


def idempotency_path(settings: IntakeSettings) -> Path:
    """Where the table lives: under the data dir, shared by the API and `cpi import`."""
    return settings.data_dir / "intake" / "idempotency.db"


def scope_and_fingerprint(submission: Submission, secret: bytes, principal: str) -> tuple[str, str] | None:
    """(scope, fingerprint) for a submission with an idempotency key, else None.

    `principal` is who the edge knows sent it (a partner, a form session, the operator), never a value
    from the submission itself.
    """
    if submission.idempotency_key is None:
        return None
    scope_text = f"{principal}\0{submission.idempotency_key}"
    content = json.dumps(submission.model_dump(mode="json"), sort_keys=True)
    return (hmac.new(secret, scope_text.encode(), hashlib.sha256).hexdigest(),
            hmac.new(secret, content.encode(), hashlib.sha256).hexdigest())


class IdempotencyStore:
    """A small SQLite table: scope -> (fingerprint, receipt, state). Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_sqlite(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS receipts (scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
            "receipt_id TEXT NOT NULL, received_at TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL)"
        )
        self.purge()

    def claim(self, scope: str, fingerprint: str, receipt: Receipt) -> Claim:
        """Reserve the key for this receipt, or report what already holds it."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO receipts VALUES (?, ?, ?, ?, 'pending', ?)",
                                 (scope, fingerprint, receipt.receipt_id, receipt.received_at.isoformat(),
                                  time.time()))
                return Claim("new")
            except sqlite3.IntegrityError:
                row = self._db.execute("SELECT fingerprint, receipt_id, received_at, state FROM receipts "
                                       "WHERE scope = ?", (scope,)).fetchone()
        if row is None:  # purged between the two statements: treat as in flight, the client retries
            return Claim("pending")
        stored = Receipt(receipt_id=row[1], received_at=datetime.fromisoformat(row[2]))
        if row[0] != fingerprint:
            return Claim("conflict")
        return Claim("duplicate" if row[3] == "done" else "pending", stored)

    def complete(self, scope: str) -> None:
        """The record is on the topic: later resubmissions get the receipt."""
        with self._lock:
            self._db.execute("UPDATE receipts SET state = 'done' WHERE scope = ?", (scope,))

    def release(self, scope: str) -> None:
        """Producing failed: forget the claim so the client's retry can go through."""
        with self._lock:
            self._db.execute("DELETE FROM receipts WHERE scope = ? AND state = 'pending'", (scope,))

    def purge(self, older_than: float = RETENTION_SECONDS) -> int:
        """Drop claims older than the retention period; returns how many."""
        with self._lock:
            return self._db.execute("DELETE FROM receipts WHERE created < ?", (time.time() - older_than,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
