"""The console's SQLite review queue with revisions (issue 12 step 3): each decision kept at its latest revision,
in its first place and with its first clock; one review sent per revision; a queue file from before revisions
opens with every decision a draft."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.console.adapters.decisions import ReviewQueue
from tests.decision_helpers import decision, review

SEEN = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def test_a_later_revision_replaces_the_kept_one_and_an_earlier_one_does_not(tmp_path: Path) -> None:
    """Revision 1 replaces the draft (outcomes, priority, the decision itself) and keeps its place and clock; the
    draft redelivered afterwards changes nothing."""
    queue = ReviewQueue(tmp_path / "console.db")
    draft = decision("medium", ["crime_desk"], ["drug_related_harm"])
    other = decision("high", ["safeguarding"], ["modern_slavery"])
    revised = review(draft, outcomes=["crime_desk", "safeguarding"], priority="high").revised()
    try:
        assert queue.add(draft, SEEN) and queue.add(other, SEEN)
        assert queue.add(revised, SEEN + timedelta(hours=3))
        assert not queue.add(draft, SEEN + timedelta(hours=4)) and not queue.add(revised, SEEN)
        first = queue.items()[0]
        assert (first.decision_id, first.revision, first.priority, first.outcomes, first.queued_at) == (
            draft.decision_id, 1, "high", ("crime_desk", "safeguarding"), SEEN)
        assert queue.get(draft.decision_id) == revised and queue.get("0" * 32) is None
    finally:
        queue.close()


def test_one_review_is_sent_per_revision(tmp_path: Path) -> None:
    """The first handler takes a revision's review; a second is refused until the first is released (not sent)."""
    queue = ReviewQueue(tmp_path / "console.db")
    try:
        assert queue.claim_review("d" * 32, 0) and not queue.claim_review("d" * 32, 0)
        assert queue.claim_review("d" * 32, 1)
        queue.release_review("d" * 32, 0)
        assert queue.claim_review("d" * 32, 0)
    finally:
        queue.close()


def test_a_queue_from_before_revisions_opens_with_its_decisions_as_drafts(tmp_path: Path) -> None:
    """The revision column is added to an old file; what it held is revision 0 and is replaced by revision 1."""
    path = tmp_path / "console.db"
    draft = decision("high", ["crime_desk"], ["organised_crime"])
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE review_queue (decision_id TEXT PRIMARY KEY, intel_id TEXT NOT NULL, priority TEXT NOT "
                "NULL, outcomes TEXT NOT NULL, categories TEXT NOT NULL, review_codes TEXT NOT NULL, queued_at TEXT "
                "NOT NULL, decision TEXT NOT NULL)")
    old.execute("INSERT INTO review_queue VALUES (?, ?, 'high', ?, ?, '[]', ?, ?)",
                (draft.decision_id, draft.intel_id, '["crime_desk"]', '["organised_crime"]', SEEN.isoformat(),
                 draft.model_dump_json()))
    old.commit()
    old.close()
    queue = ReviewQueue(path)
    try:
        assert [item.revision for item in queue.items()] == [0]
        assert queue.add(review(draft, action="confirmed").revised(), SEEN)
        assert [item.revision for item in queue.items()] == [1]
    finally:
        queue.close()


def test_each_decisions_first_review_is_kept_beside_the_routers_draft_once(tmp_path: Path) -> None:
    """Revision 1 records the router's draft and the handler's first review, once (a redelivery adds nothing); a
    later revision replaces the decision in the queue but not its first review; a draft records none."""
    queue = ReviewQueue(tmp_path / "console.db")
    draft = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    first = review(draft, outcomes=["intelligence_log", "crime_desk", "safeguarding"], priority="high").revised()
    second = review(first, priority="medium").revised()
    try:
        for revision in (draft, first, first, second):
            queue.add(revision, SEEN)
        assert queue.first_reviews() == [(draft.assessed, first.assessed)]
    finally:
        queue.close()
    reopened = ReviewQueue(tmp_path / "console.db")
    try:
        assert reopened.first_reviews() == [(draft.assessed, first.assessed)]
    finally:
        reopened.close()
