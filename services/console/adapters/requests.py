"""Where re-contact requests wait for a supervisor: a small SQLite file of the console's own.

It holds what a request is (intel id, requester, reason) and where it stands; never anything of the
source. The audit of every step is the sealed store's chain, not this table: this is only the queue.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from services.common.sqlite import open_sqlite
from services.console.domain import RecontactRequest, RequestStatus

_SELECT = "SELECT request_id, intel_id, requester, reason, status, decided_by FROM recontact_requests "


class RecontactRequests:
    """Re-contact requests by id; a status moves only forward (pending → approved|refused → viewed)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_sqlite(path)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS recontact_requests (request_id TEXT PRIMARY KEY, intel_id TEXT NOT NULL, "
            "requester TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, decided_by TEXT, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )

    def add(self, intel_id: str, requester: str, reason: str, status: RequestStatus,
            request_id: str | None = None) -> RecontactRequest:
        """A new request; `request_id` is the one already audited for it (else a fresh one)."""
        request = RecontactRequest(request_id or new_request_id(), intel_id, requester, reason.strip(), status)
        now = _now()
        with self._lock:
            self._db.execute(
                "INSERT INTO recontact_requests (request_id, intel_id, requester, reason, status, decided_by, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (request.request_id, intel_id, requester, request.reason, status.value, None, now, now),
            )
        return request

    def get(self, request_id: str) -> RecontactRequest | None:
        with self._lock:
            row = self._db.execute(_SELECT + "WHERE request_id = ?",
                                   (request_id,)).fetchone()
        return None if row is None else _request(row)

    def move(self, request: RecontactRequest, to: RequestStatus, decided_by: str | None = None) -> bool:
        """Move `request` on from the status it was read in; False if someone else moved it first."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE recontact_requests SET status = ?, decided_by = COALESCE(?, decided_by), updated_at = ? "
                "WHERE request_id = ? AND status = ?",
                (to.value, decided_by, _now(), request.request_id, request.status.value),
            )
        return cursor.rowcount == 1

    def of_requester(self, requester: str) -> list[RecontactRequest]:
        with self._lock:
            rows = self._db.execute(_SELECT + "WHERE requester = ? "
                                    "ORDER BY created_at DESC LIMIT 200", (requester,)).fetchall()
        return [_request(row) for row in rows]

    def pending(self) -> list[RecontactRequest]:
        with self._lock:
            rows = self._db.execute(_SELECT + "WHERE status = ? "
                                    "ORDER BY created_at LIMIT 200", (RequestStatus.PENDING.value,)).fetchall()
        return [_request(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _request(row: tuple[str, ...]) -> RecontactRequest:
    request_id, intel_id, requester, reason, status, decided_by = row
    return RecontactRequest(request_id, intel_id, requester, reason, RequestStatus(status), decided_by)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
