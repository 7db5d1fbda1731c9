"""The review queue's store and its feed: every decision on cpi.outcome.decided.v1, kept in the console's SQLite.

The feed is a Kafka consumer in the console process, as the Intelligence Unit's principal in its one consumer
group; it commits only what the store has written, so a restart neither loses nor doubles a decision (a
re-delivered decision keeps the time it first reached the queue). Every decision is kept, not only those
needing review today, so changing which decisions need review takes effect at once, over all of them.

A decision carries only sanitised intel. Its record's Kafka timestamp is the day only (services/common/days.py),
so the queue's clock starts when the console first reads it, kept to the minute: enough for targets of an hour
or more, and no finer a time than the clock needs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from schemas import Assessed, Decision, DecisionReview
from schemas.topics import DECIDED, IU, REVIEWED
from services.common.kafka import clients
from services.common.kafka.acls import consumer_group
from services.common.serde import encode
from services.common.settings import PlatformSettings, SanitiserSettings
from services.common.sqlite import open_sqlite
from services.console.domain import QueuedDecision
from services.console.metrics import DECISIONS_READ, FEED_POLLED
from services.sanitiser.held_cli import _publish

log = structlog.get_logger(__name__)

_LIMIT = 5000  # the queue page is for people: far more waiting than this is a backlog to fix, not to list


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


class ReviewQueue:
    """Decisions by decision id, each its latest revision, with the minute it first reached the console and the
    order it read them in (the table's rowid: rows are never deleted here, so it only grows)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_sqlite(path)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS review_queue (decision_id TEXT PRIMARY KEY, intel_id TEXT NOT NULL, "
            "priority TEXT NOT NULL, outcomes TEXT NOT NULL, categories TEXT NOT NULL, review_codes TEXT NOT NULL, "
            "queued_at TEXT NOT NULL, decision TEXT NOT NULL)"
        )
        # Which revisions a handler's review has been sent for: one review per revision, so two handlers on one
        # console cannot both make the next revision.
        self._db.execute("CREATE TABLE IF NOT EXISTS reviews_sent (decision_id TEXT NOT NULL, revision INTEGER "
                         "NOT NULL, PRIMARY KEY (decision_id, revision))")
        # Each decision's first review beside the router's draft it reviewed, for router-handler agreement: kept
        # apart, since a later revision replaces the decision in the queue.
        self._db.execute("CREATE TABLE IF NOT EXISTS first_reviews (decision_id TEXT PRIMARY KEY, draft TEXT NOT NULL, "
                         "reviewed TEXT NOT NULL)")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(review_queue)")}
        if "revision" not in columns:  # a queue from before revisions: every decision kept is a draft
            self._db.execute("ALTER TABLE review_queue ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")

    def add(self, decision: Decision, seen_at: datetime) -> bool:
        """Keep `decision` (True: new, or a later revision of one kept, which replaces it and keeps its place and
        clock), or find it or a later revision kept already (False)."""
        codes = [reason.code for reason in decision.review.reasons] if decision.review else []
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO review_queue (decision_id, intel_id, priority, outcomes, categories, "
                "review_codes, queued_at, decision, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (decision_id) DO UPDATE SET priority = excluded.priority, outcomes = excluded.outcomes, "
                "review_codes = excluded.review_codes, decision = excluded.decision, revision = excluded.revision "
                "WHERE excluded.revision > review_queue.revision",
                (decision.decision_id, decision.intel_id, decision.priority.value,
                 json.dumps([o.value for o in decision.outcomes]),
                 json.dumps([c.value for c in decision.intel.categories]), json.dumps(codes),
                 _minute(seen_at).isoformat(), decision.model_dump_json(), decision.revision),
            )
            if decision.revision == 1 and decision.reviewed is not None:
                self._db.execute("INSERT OR IGNORE INTO first_reviews (decision_id, draft, reviewed) VALUES (?, ?, ?)",
                                 (decision.decision_id, decision.reviewed.previous.model_dump_json(),
                                  decision.assessed.model_dump_json()))
        return cursor.rowcount == 1

    def first_reviews(self) -> list[tuple[Assessed, Assessed]]:
        """Every decision's router draft and its first review, in the order they were read."""
        with self._lock:
            rows = self._db.execute("SELECT draft, reviewed FROM first_reviews ORDER BY rowid").fetchall()
        return [(Assessed.model_validate_json(draft), Assessed.model_validate_json(reviewed))
                for draft, reviewed in rows]

    def get(self, decision_id: str) -> Decision | None:
        """The latest revision kept of one decision, or None."""
        with self._lock:
            row = self._db.execute("SELECT decision FROM review_queue WHERE decision_id = ?",
                                   (decision_id,)).fetchone()
        return Decision.model_validate_json(row[0]) if row else None

    def claim_review(self, decision_id: str, revision: int) -> bool:
        """Take the one review of this revision (True), or find it taken (False)."""
        with self._lock:
            cursor = self._db.execute("INSERT OR IGNORE INTO reviews_sent (decision_id, revision) VALUES (?, ?)",
                                      (decision_id, revision))
        return cursor.rowcount == 1

    def release_review(self, decision_id: str, revision: int) -> None:
        """The review could not be sent: the revision may be reviewed again."""
        with self._lock:
            self._db.execute("DELETE FROM reviews_sent WHERE decision_id = ? AND revision = ?", (decision_id, revision))

    def items(self) -> list[QueuedDecision]:
        """The decisions kept, in the order they arrived (at most `_LIMIT`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT decision_id, intel_id, priority, outcomes, categories, review_codes, queued_at, rowid, "
                "revision FROM review_queue ORDER BY rowid LIMIT ?", (_LIMIT,)).fetchall()
        return [QueuedDecision(decision_id, intel_id, priority, tuple(json.loads(outcomes)),
                               tuple(json.loads(categories)), tuple(json.loads(codes)),
                               datetime.fromisoformat(queued_at), arrival, revision)
                for decision_id, intel_id, priority, outcomes, categories, codes, queued_at, arrival, revision
                in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def publish_review(settings: SanitiserSettings, review: DecisionReview) -> None:
    """A handler's review to cpi.decision.reviewed.v1, keyed by intel id like the decision, acknowledged by the
    broker before the handler is told it was sent."""
    _publish(settings, [(REVIEWED, review.base.intel_id, encode(review))])


class DecisionFeed:
    """A thread reading cpi.outcome.decided.v1 into a ReviewQueue until stopped."""

    def __init__(self, settings: PlatformSettings, queue: ReviewQueue, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._settings, self._queue, self._now = settings, queue, now
        self._polled = time.monotonic()  # a fresh feed counts as current for its first `within` seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def current(self, within: float = 60.0) -> bool:
        """Whether the feed has polled the broker in the last `within` seconds (else the queue may be stale)."""
        return time.monotonic() - self._polled <= within

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._consume()
            except Exception as exc:  # the broker may be down for a while: log, wait, read on
                log.warning("console_decision_feed_error", error=type(exc).__name__)
                self._stopping.wait(5)

    def _consume(self) -> None:
        settings = self._settings
        consumer = clients.consumer(settings, settings.topic(DECIDED.name),
                                    group_id=consumer_group(settings.topic_prefix, IU),
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        try:
            while not self._stopping.is_set():
                batches = consumer.poll(timeout_ms=500, max_records=500)
                self._polled = time.monotonic()
                FEED_POLLED.set_to_current_time()
                for records in batches.values():
                    for record in records:
                        self._keep(record)
                if batches:
                    consumer.commit()  # only after the store has every record of the batch
        finally:
            consumer.close()

    def _keep(self, record: Any) -> None:
        try:
            decision = Decision.model_validate_json(record.value)
        except ValidationError:
            # Skipped, not dead-lettered: the console may not write cpi.deadletter.v1, and the router's own
            # output was checked against this very model before it was published.
            DECISIONS_READ.labels("undecodable").inc()
            log.warning("console_decision_undecodable", partition=record.partition, offset=record.offset)
            return
        kept = self._queue.add(decision, self._now())
        DECISIONS_READ.labels("queued" if kept else "duplicate").inc()
