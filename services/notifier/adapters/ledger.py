"""The delivery ledger: which notifications are being sent, were sent, and have their delivered record.

Each notification moves through three states, one row each, keyed by its (deterministic) id:

    claimed   a notifier holds the right to send it, until `lease_until` (epoch seconds);
    sent      the team was told; the row keeps the delivered record's bytes;
    recorded  that record is on cpi.notification.delivered.v1, acknowledged by the broker.

A claim is one atomic `INSERT ... ON CONFLICT DO UPDATE ... WHERE` (taken over only when the old claim's lease
has run out), so of two notifier replicas on one PostgreSQL ledger exactly one sends; the other finds the row
claimed, sent or recorded. A redelivered `sent` notification publishes its stored record and sends nothing.

The window no ledger closes: a notifier that dies after the team has the message and before the row says
`sent` leaves a claim only; once its lease runs out the notification is sent again, with the same
Message-ID / Idempotency-Key (the notification id), so the receiver can tell it is a repeat.

SQLite (`sqlite:///path`, the single-replica default) and PostgreSQL (`postgresql://...`, several replicas)
run the same SQL behind one interface.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from schemas import DeliveryChannel
from services.common.errors import CpiError, TransientError
from services.common.sqlite import open_sqlite


class LedgerError(CpiError):
    """The delivery ledger cannot be opened as configured."""


class LedgerUnavailable(TransientError):
    """The ledger's database is away for now; the stage retries, then stops without committing."""


class State(StrEnum):
    CLAIMED = "claimed"
    SENT = "sent"
    RECORDED = "recorded"


@dataclass(frozen=True)
class Entry:
    """A notification's row. `mine` is true when this call has just claimed it: the caller may send."""

    state: State
    channel: DeliveryChannel
    record: bytes | None
    lease_until: float | None
    mine: bool


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS deliveries (notification_id TEXT PRIMARY KEY, state TEXT NOT NULL, "
    "owner TEXT, lease_until DOUBLE PRECISION, channel TEXT NOT NULL, record TEXT)"
)
# Taken over only from a claim whose lease has run out (its holder died or hung before it could send).
_CLAIM = (
    "INSERT INTO deliveries (notification_id, state, owner, lease_until, channel) VALUES (?, 'claimed', ?, ?, ?) "
    "ON CONFLICT (notification_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until, "
    "channel = excluded.channel WHERE deliveries.state = 'claimed' AND deliveries.lease_until < ? "
    "RETURNING owner"
)

_COPY_DELIVERED = ("INSERT OR IGNORE INTO deliveries (notification_id, state, channel, record) "
                   "SELECT notification_id, 'sent', channel, record FROM delivered")
_COPY_DELIVERED_WITHOUT_RECORDS = ("INSERT OR IGNORE INTO deliveries (notification_id, state, channel) "
                                   "SELECT notification_id, 'sent', channel FROM delivered")


class DeliveryLedger(ABC):
    """One interface over SQLite and PostgreSQL; the subclass supplies `_run` (one statement, committed)."""

    def __init__(self, owner: str, lease_seconds: float) -> None:
        self._owner = owner
        self._lease = lease_seconds
        self._lock = threading.Lock()  # one connection, used from the worker's threads

    @abstractmethod
    def _run(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def close(self) -> None: ...

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._run(sql, params)

    def claim(self, notification_id: str, channel: DeliveryChannel) -> Entry:
        """Claim the right to send, or say why not: someone else's live claim, or already sent/recorded."""
        now = time.time()
        if self._query(_CLAIM, notification_id, self._owner, now + self._lease, channel.value, now):
            return Entry(State.CLAIMED, channel, None, now + self._lease, mine=True)
        state, sent_by, record, lease_until = self._query(
            "SELECT state, channel, record, lease_until FROM deliveries WHERE notification_id = ?", notification_id,
        )[0]
        return Entry(State(state), DeliveryChannel(sent_by), record.encode() if record else None, lease_until,
                     mine=False)

    def sent(self, notification_id: str, record: bytes) -> bool:
        """The team has it: keep its delivered record. False if our claim had lapsed and another notifier
        had taken it over (it may send too: the lease was shorter than this send took)."""
        held = self._query("UPDATE deliveries SET state = 'sent', record = ? WHERE notification_id = ? "
                           "AND state = 'claimed' AND owner = ? RETURNING owner",
                           record.decode(), notification_id, self._owner)
        if not held:
            self._query("UPDATE deliveries SET state = 'sent', record = ? WHERE notification_id = ? "
                        "AND state = 'claimed'", record.decode(), notification_id)
        return bool(held)

    def recorded(self, notification_id: str) -> None:
        """Its delivered record is acknowledged on the topic: a redelivery publishes nothing more."""
        self._query("UPDATE deliveries SET state = 'recorded' WHERE notification_id = ? AND state = 'sent'",
                    notification_id)

    def release(self, notification_id: str) -> None:
        """The send failed: drop our claim, so the retry (here or on another replica) may claim it at once."""
        self._query("DELETE FROM deliveries WHERE notification_id = ? AND state = 'claimed' AND owner = ?",
                    notification_id, self._owner)


class SqliteDeliveryLedger(DeliveryLedger):
    """A local file: one notifier replica only (a second one on another machine would not see its claims)."""

    def __init__(self, path: Path, owner: str, lease_seconds: float) -> None:
        super().__init__(owner, lease_seconds)
        self._db = open_sqlite(path)
        self._db.execute(_SCHEMA)
        self._migrate_delivered_table()

    def _migrate_delivered_table(self) -> None:
        """Ledgers from before the claim (a `delivered` table of sent notifications; the oldest without their
        record) become `sent` rows, once, in one transaction."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "delivered" not in tables:
            return
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(delivered)")}
        copy = _COPY_DELIVERED if "record" in columns else _COPY_DELIVERED_WITHOUT_RECORDS
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(copy)
            self._db.execute("DROP TABLE delivered")

    def _run(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:  # locked or busy
            raise LedgerUnavailable(f"delivery ledger unavailable: {type(exc).__name__}") from None

    def close(self) -> None:
        self._db.close()


class PostgresDeliveryLedger(DeliveryLedger):
    """Shared by every notifier replica (tables in the connection's search_path)."""

    def __init__(self, url: str, owner: str, lease_seconds: float) -> None:
        import psycopg

        super().__init__(owner, lease_seconds)
        self._psycopg = psycopg
        self._url = url
        self._db = self._connect()
        self._run(_SCHEMA, ())

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self._url, autocommit=True)
        except self._psycopg.Error as exc:
            # The message may echo the URL (with its password), so only the class is kept.
            raise LedgerUnavailable(f"cannot connect to the delivery ledger: {type(exc).__name__}") from None

    def _run(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            if self._db.closed or self._db.broken:
                self._db = self._connect()  # the server came back
            with self._db.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), tuple(params) or None)
                return list(cursor.fetchall()) if cursor.description is not None else []
        except self._psycopg.OperationalError as exc:
            raise LedgerUnavailable(f"delivery ledger unavailable: {type(exc).__name__}") from None

    def close(self) -> None:
        self._db.close()


def open_ledger(url: str, owner: str, lease_seconds: float) -> DeliveryLedger:
    """The ledger at `sqlite:///path.db` (`sqlite:////abs.db` absolute) or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return SqliteDeliveryLedger(Path(url.removeprefix("sqlite:///")), owner, lease_seconds)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDeliveryLedger(url, owner, lease_seconds)
    raise LedgerError("the delivery ledger URL must start with sqlite:/// or postgresql://")
