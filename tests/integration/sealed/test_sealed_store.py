"""The sealed store against real SQLite and PostgreSQL: sealing, audited unseal, tamper evidence,
key rotation and retention."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from schemas import Source
from services.common.envelope import EnvelopeError
from services.common.settings import SanitiserSettings
from services.keys_cli import rotate_store_kek
from services.sanitiser.adapters import (
    AuditVerification,
    HeldReviewDenied,
    RetentionPolicy,
    SealedRecordNotFound,
    SealedStore,
    SealedStoreError,
    UnsealDenied,
    open_sealed_store,
)
from tests.key_helpers import unseal_keys

if TYPE_CHECKING:
    from tests.integration.sealed.conftest import Backend

IU = {"role": "intelligence_unit", "officer_id": "IU-4471", "reason": "Re-contact the source about new risk."}
RECEIVED = date(2025, 3, 14)

# Distinctive values that must never appear at rest in plaintext.
CANARY_NAME = "Zephyrine Quillfeather"
CANARY_EMAIL = "zq.canary7731@school.example"
CANARY_ORG = "Hollowmere Canary Academy"
CANARY_PHONE = "01632 960 777"
CANARY_SUBMISSION = "sub-canary-5f0e1d2c"


def make_source(name: str = CANARY_NAME) -> Source:
    return Source(
        name=name,
        role="Designated safeguarding lead",
        organisation=CANARY_ORG,
        organisation_type="education",
        email=CANARY_EMAIL,
        phone=CANARY_PHONE,
    )


def audit_rows(backend: Backend) -> list[tuple[object, ...]]:
    return backend.sql(
        "SELECT seq, action, actor, role, intel_id, reason, result, detail FROM sealed_audit ORDER BY seq"
    )


def flip_bit(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_seal_then_unseal_returns_the_source(store: SealedStore) -> None:
    """An Intelligence Unit officer with a reason gets back exactly the provenance that was sealed."""
    source = make_source()
    intel_id = store.seal("sub-1", source, RECEIVED)

    assert store.unseal(intel_id, **IU) == source
    assert store.count() == 1


def test_seal_is_idempotent_per_submission(store: SealedStore, backend: Backend) -> None:
    """Sealing the same submission again returns the same intel id and adds no record; another
    submission gets another id."""
    first = store.seal("sub-1", make_source(), RECEIVED)
    again = store.seal("sub-1", make_source(), RECEIVED)
    other = store.seal("sub-2", make_source(), RECEIVED)

    assert again == first
    assert other != first
    assert store.count() == 2
    assert len(backend.sql("SELECT intel_id FROM sealed_records")) == 2


def test_seal_is_idempotent_across_threads(store: SealedStore) -> None:
    """Concurrent seals of one submission from worker threads yield one record and one intel id."""
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.seal("sub-t", make_source(), RECEIVED)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1
    assert store.count() == 1


def test_seal_is_idempotent_across_store_objects(backend: Backend) -> None:
    """A second store object (another process) on the same database and keys finds the record."""
    first = backend.open().seal("sub-1", make_source(), RECEIVED)

    assert backend.open().seal("sub-1", make_source(), RECEIVED) == first


def test_intel_ids_are_random_not_derived(backend: Backend, tmp_path: Path) -> None:
    """Intel ids are fresh uuid4s: the same submission sealed in two stores gets unrelated ids, and
    the table keeps only a keyed HMAC of the submission id, not the id or a plain hash of it."""
    intel_a = backend.open().seal(CANARY_SUBMISSION, make_source(), RECEIVED)
    other = open_sealed_store(f"sqlite:///{tmp_path / 'other.db'}", unseal_keys(tmp_path / "other"))
    intel_b = other.seal(CANARY_SUBMISSION, make_source(), RECEIVED)
    other.close()

    assert intel_a != intel_b
    for intel_id in (intel_a, intel_b):
        assert uuid.UUID(hex=intel_id).version == 4
    plain_hash = hashlib.sha256(CANARY_SUBMISSION.encode()).hexdigest()
    assert intel_a not in (plain_hash[:32], uuid.uuid5(uuid.NAMESPACE_OID, CANARY_SUBMISSION).hex)
    [(lookup,)] = backend.sql("SELECT lookup FROM sealed_records")
    assert lookup not in (CANARY_SUBMISSION, plain_hash)


@pytest.mark.kafka
def test_no_plaintext_provenance_at_rest(backend: Backend, anchored_settings: SanitiserSettings) -> None:
    """No provenance value nor the submission id is readable anywhere the store keeps data,
    including the audit of a granted unseal."""
    store = backend.open()
    intel_id = store.seal(CANARY_SUBMISSION, make_source(), RECEIVED)
    store.unseal(intel_id, **IU)
    rotate_store_kek(anchored_settings)

    canaries = [CANARY_NAME, CANARY_EMAIL, CANARY_ORG, CANARY_PHONE, CANARY_SUBMISSION, "Quillfeather"]
    for checkpoint in ("open", "closed"):
        at_rest = backend.everything_at_rest()
        assert at_rest, "nothing was read back from the store"
        assert intel_id.encode() in at_rest  # the dump really covers the records
        for canary in canaries:
            assert canary.encode() not in at_rest, f"{canary!r} found at rest ({checkpoint})"
        store.close()


ENVELOPE_TAMPERS: dict[str, tuple[int, Callable[[str], str]]] = {
    # part -> (index among key_id, wrapped_key, nonce, ciphertext; how to change it)
    "ciphertext": (3, lambda v: flip_bit(v, 0)),
    "tag": (3, lambda v: flip_bit(v, -1)),
    "nonce": (2, lambda v: flip_bit(v, 0)),
    "wrapped key": (1, lambda v: flip_bit(v, 20)),
    "wrapped key encapsulation": (1, lambda v: flip_bit(v, 0)),
    "key id relabelled": (0, lambda v: v),  # to the other unseal key's id, in the test
}


@pytest.mark.parametrize("part", list(ENVELOPE_TAMPERS))
def test_tampered_envelope_does_not_open(backend: Backend, part: str) -> None:
    """A single flipped bit in any part of a record's envelope (or a relabelled key id) makes
    unseal fail, and the failed attempt is audited."""
    keys = unseal_keys(backend.data_dir)
    assert keys.unseal_private is not None
    # Two unseal keys, so a relabelled key id names a key that exists.
    two = keys.unseal_private.with_new_primary(datetime.now(UTC) + timedelta(days=1))
    store = backend.open(keys=replace(keys, unseal_private=two))
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    [row] = backend.sql(
        "SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_records WHERE intel_id = ?", intel_id
    )
    index, tamper = ENVELOPE_TAMPERS[part]
    parts = [*row[:index], tamper(row[index]), *row[index + 1 :]]
    if part == "key id relabelled":
        parts[0] = keys.unseal_private.primary
    backend.drop_guards()
    backend.sql(
        "UPDATE sealed_records SET key_id = ?, wrapped_key = ?, nonce = ?, ciphertext = ? WHERE intel_id = ?",
        *parts,
        intel_id,
    )

    with pytest.raises(EnvelopeError):
        store.unseal(intel_id, **IU)

    assert audit_rows(backend)[-1][6] == "failed:does_not_open"
    assert store.verify_audit().ok


def test_envelope_moved_to_another_record_does_not_open(store: SealedStore, backend: Backend) -> None:
    """The intel id is the associated data: an envelope copied onto another record does not open."""
    victim = store.seal("sub-1", make_source("Other Person"), RECEIVED)
    donor = store.seal("sub-2", make_source(), RECEIVED)
    [parts] = backend.sql(
        "SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_records WHERE intel_id = ?", donor
    )
    backend.drop_guards()
    backend.sql(
        "UPDATE sealed_records SET key_id = ?, wrapped_key = ?, nonce = ?, ciphertext = ? WHERE intel_id = ?",
        *parts,
        victim,
    )

    with pytest.raises(EnvelopeError):
        store.unseal(victim, **IU)
    assert store.unseal(donor, **IU).name == CANARY_NAME


def test_database_refuses_changes_to_audit_and_sealed_content(store: SealedStore, backend: Backend) -> None:
    """Append-only is enforced by the database: audit rows cannot be updated or deleted, and a
    record's ciphertext cannot be rewritten."""
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    store.unseal(intel_id, **IU)

    for statement in (
        "UPDATE sealed_audit SET reason = 'nothing to see'",
        "DELETE FROM sealed_audit",
        "UPDATE sealed_records SET ciphertext = 'AAAA'",
    ):
        with pytest.raises(Exception, match="append-only"):
            backend.sql(statement)
    assert store.verify_audit().ok


def seed_audit(store: SealedStore) -> str:
    """Four audit entries: three granted unseals of one record (its intel id returned) and one refused."""
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    for _ in range(3):
        store.unseal(intel_id, **IU)
    with pytest.raises(UnsealDenied):
        store.unseal(intel_id, role="response_officer", officer_id="PC-1", reason=IU["reason"])
    return intel_id


def _edit(backend: Backend) -> None:
    backend.sql("UPDATE sealed_audit SET reason = ? WHERE seq = 2", "Curiosity, nothing more than that.")


def _delete_middle(backend: Backend) -> None:
    backend.sql("DELETE FROM sealed_audit WHERE seq = 2")


def _delete_last(backend: Backend) -> None:
    backend.sql("DELETE FROM sealed_audit WHERE seq = 4")


def _reorder(backend: Backend) -> None:
    """Swap entries 2 and 3 in the chain (each keeps its own content and hash)."""
    backend.sql("UPDATE sealed_audit SET seq = -2 WHERE seq = 2")
    backend.sql("UPDATE sealed_audit SET seq = 2 WHERE seq = 3")
    backend.sql("UPDATE sealed_audit SET seq = 3 WHERE seq = -2")


def _renumber(backend: Backend) -> None:
    """Delete entry 2 and renumber the rest so the sequence looks continuous."""
    backend.sql("DELETE FROM sealed_audit WHERE seq = 2")
    backend.sql("UPDATE sealed_audit SET seq = seq - 1 WHERE seq > 2")


def _rehash_with_sha256(backend: Backend) -> None:
    """Edit entry 4 and recompute its hash the way an attacker without the audit key would."""
    [row] = backend.sql("SELECT * FROM sealed_audit WHERE seq = 4")
    backend.sql("UPDATE sealed_audit SET result = 'granted', hash = ? WHERE seq = 4",
                hashlib.sha256(json.dumps(list(row)).encode()).hexdigest())  # fmt: skip


def _rewind_head(backend: Backend) -> None:
    """Delete the last entry and point the head at the one before it."""
    [(prev_hash,)] = backend.sql("SELECT hash FROM sealed_audit WHERE seq = 3")
    backend.sql("DELETE FROM sealed_audit WHERE seq = 4")
    backend.sql("UPDATE sealed_audit_head SET entries = 3, last_hash = ?", prev_hash)


AUDIT_TAMPERS: dict[str, tuple[Callable[[Backend], None], int | None]] = {
    "edit": (_edit, 2),
    "delete middle": (_delete_middle, 2),
    "delete last": (_delete_last, 4),
    "reorder": (_reorder, 2),
    "renumber after delete": (_renumber, 2),
    "rehash edited entry": (_rehash_with_sha256, 4),
    "rewind head": (_rewind_head, None),
}


@pytest.mark.parametrize("tamper", list(AUDIT_TAMPERS))
def test_tampered_audit_fails_verification(store: SealedStore, backend: Backend, tamper: str) -> None:
    """Editing, deleting (even the last entry) or reordering audit entries makes verify_audit fail
    and point at the first bad entry."""
    seed_audit(store)
    before = store.verify_audit()
    assert before.ok and before.entries == 4 and before.first_bad is None
    change, first_bad = AUDIT_TAMPERS[tamper]
    backend.drop_guards()

    change(backend)

    result = store.verify_audit()
    assert not result.ok
    assert result.problem
    assert result.first_bad == first_bad


REFUSALS = {
    "no role": ({"role": "response_officer"}, "role_not_permitted"),
    "empty role": ({"role": ""}, "role_not_permitted"),
    "no officer id": ({"officer_id": "  "}, "missing_officer_id"),
    "short reason": ({"reason": "because I want to"}, "reason_too_short"),
    "blank reason": ({"reason": " " * 30}, "reason_too_short"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_unseal_is_audited(store: SealedStore, backend: Backend, case: str) -> None:
    """Without the intelligence_unit role, an officer id, or a 20-character reason, unseal is
    refused with a reason code and written to the audit log (the console's metrics count refusals: a
    short-lived command's counter could never alert)."""
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    change, code = REFUSALS[case]

    with pytest.raises(UnsealDenied) as refused:
        store.unseal(intel_id, **{**IU, **change})

    assert refused.value.code == code
    assert CANARY_NAME not in str(refused.value)
    [(_, action, _, _, audited_id, _, result, _)] = audit_rows(backend)
    assert (action, audited_id, result) == ("unseal", intel_id, f"denied:{code}")
    assert store.verify_audit().ok


def test_unseal_audit_records_who_when_why_which_and_result(store: SealedStore, backend: Backend) -> None:
    """A granted unseal's audit entry names the officer, role, record, reason, result and time."""
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    store.unseal(intel_id, **IU)

    [(seq, at, action, actor, role, audited_id, reason, result)] = backend.sql(
        "SELECT seq, at, action, actor, role, intel_id, reason, result FROM sealed_audit"
    )
    assert (seq, action, actor, role, audited_id, reason, result) == (
        1, "unseal", IU["officer_id"], IU["role"], intel_id, IU["reason"], "granted",
    )  # fmt: skip
    assert str(at).startswith(str(date.today().year))


def test_held_reviews_are_audited_in_the_chain_granted_or_refused(store: SealedStore, backend: Backend) -> None:
    """A review of held intel needs what an unseal needs; granted, refused by the officer rules, or refused
    for the caller's own reason (checked only once the officer passes), each attempt is one audit entry
    with the action, officer, role, intel, reason, result and detail, and the chain still verifies."""
    intel_id = uuid.uuid4().hex
    store.review_held("show", intel_id, **IU, detail={"revision": 1})
    with pytest.raises(HeldReviewDenied) as refused:
        store.review_held("release", intel_id, **{**IU, "role": "crime_desk"},
                          refusal=("already_released", "it has already been released"))
    assert refused.value.code == "role_not_permitted"
    with pytest.raises(HeldReviewDenied) as refused:
        store.review_held("release", intel_id, **IU, refusal=("already_released", "it has already been released"))
    assert refused.value.code == "already_released"

    rows = [(action, actor, role, audited, reason, result, json.loads(str(detail)))
            for _, action, actor, role, audited, reason, result, detail in audit_rows(backend)]
    assert rows == [
        ("held_show", IU["officer_id"], IU["role"], intel_id, IU["reason"], "granted", {"revision": 1}),
        ("held_release", IU["officer_id"], "crime_desk", intel_id, IU["reason"], "denied:role_not_permitted", {}),
        ("held_release", IU["officer_id"], IU["role"], intel_id, IU["reason"], "denied:already_released", {}),
    ]
    assert store.verify_audit() == AuditVerification(True, 3)


def test_unseal_of_unknown_record_is_audited(store: SealedStore, backend: Backend) -> None:
    """Unsealing an id that does not exist raises SealedRecordNotFound and is audited as not_found."""
    with pytest.raises(SealedRecordNotFound):
        store.unseal("0" * 32, **IU)

    assert audit_rows(backend)[-1][6] == "not_found"
    assert store.verify_audit().ok


def test_purge_removes_only_records_past_review(backend: Backend) -> None:
    """Purge deletes records whose review date has passed, keeps the rest, and audits the count
    without naming records."""
    store = backend.open(retention=RetentionPolicy(review_after_years=6))
    old = store.seal("sub-old", make_source(), date(2018, 6, 1))  # review 2024-06-01
    due_today = store.seal("sub-today", make_source(), date(2019, 6, 1))  # review 2025-06-01
    recent = store.seal("sub-new", make_source(), date(2024, 6, 1))

    assert store.purge(today=date(2025, 6, 1)) == 1

    assert store.count() == 2
    with pytest.raises(SealedRecordNotFound):
        store.unseal(old, **IU)
    assert store.unseal(due_today, **IU).name == CANARY_NAME
    assert store.unseal(recent, **IU).name == CANARY_NAME
    [purge] = [row for row in audit_rows(backend) if row[1] == "purge"]
    assert json.loads(str(purge[7])) == {"before": "2025-06-01", "count": 1}
    assert old not in str(purge)
    assert store.purge(today=date(2025, 6, 1)) == 0
    assert store.verify_audit().ok


def test_review_date_follows_the_retention_policy(backend: Backend) -> None:
    """A record's review date is its receipt date plus the configured period (29 Feb -> 28 Feb)."""
    store = backend.open(retention=RetentionPolicy(review_after_years=10))
    store.seal("sub-leap", make_source(), date(2024, 2, 29))

    assert backend.sql("SELECT review_on FROM sealed_records") == [("2034-02-28",)]
    assert RetentionPolicy().review_date(date(2020, 1, 31)) == date(2026, 1, 31)
    with pytest.raises(ValueError):
        RetentionPolicy(review_after_years=0)


def test_reopen_keeps_records_and_schema_version(backend: Backend) -> None:
    """Closing and reopening keeps every record and the audit chain; the schema version (2: entries signed) is
    recorded."""
    store = backend.open()
    intel_id = store.seal("sub-1", make_source(), RECEIVED)
    store.close()

    reopened = backend.open()
    assert reopened.count() == 1
    assert reopened.unseal(intel_id, **IU).name == CANARY_NAME
    assert reopened.verify_audit().ok
    assert backend.sql("SELECT component, version FROM schema_version") == [("sealed_store", 2)]


def test_wrong_store_kek_or_audit_key_is_refused_at_open(backend: Backend, tmp_path: Path) -> None:
    """A store opened with a store KEK or an audit key that did not create it fails at once, saying which."""
    backend.open().seal("sub-1", make_source(), RECEIVED)
    mine, others = unseal_keys(backend.data_dir), unseal_keys(tmp_path / "another")

    with pytest.raises(SealedStoreError, match="store KEK"):
        backend.open(keys=replace(mine, kek=others.kek))
    with pytest.raises(SealedStoreError, match="audit key"):
        backend.open(keys=replace(mine, audit=others.audit))


def test_unknown_url_scheme_is_refused(tmp_path: Path) -> None:
    """Only sqlite:/// and postgresql:// URLs open a store."""
    with pytest.raises(SealedStoreError):
        open_sealed_store("mysql://localhost/cpi", unseal_keys(tmp_path))


def test_sqlite_url_creates_directories_and_uses_wal(tmp_path: Path) -> None:
    """A sqlite:/// URL creates missing directories and the database runs in WAL mode."""
    path = tmp_path / "a" / "b" / "sealed.db"
    store = open_sealed_store(f"sqlite:///{path}", unseal_keys(tmp_path))
    store.close()

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
