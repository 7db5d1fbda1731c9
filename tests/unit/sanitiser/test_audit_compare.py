"""The audit log's comparison with its anchor (services/sanitiser/audit.py), as pure logic: signed entries made
here, no store, no broker (tests/integration/sealed/test_audit_anchor.py runs the attacks on the real ones)."""

from __future__ import annotations

import hashlib

from schemas import AuditEntry
from services.common.errors import DecodeError
from services.common.signing import SigningKeyring
from services.sanitiser.audit import GENESIS, compare_audit

SIGNING = SigningKeyring.generate("audit-signing")
KEYS = SIGNING.verifier()


def chain(*reasons: str, signing: SigningKeyring = SIGNING) -> list[AuditEntry]:
    """Signed entries, one per reason, each linked to the one before."""
    entries, prev = [], GENESIS
    for seq, reason in enumerate(reasons, start=1):
        digest = hashlib.sha256(f"{seq}{reason}{prev}".encode()).hexdigest()
        fields = {"seq": seq, "at": "2026-12-04T10:00:00+00:00", "action": "unseal", "actor": "DS-1",
                  "role": "intelligence_unit", "intel_id": "a" * 32, "reason": reason, "result": "granted",
                  "detail": "{}", "prev_hash": prev, "hash": digest, "key_id": signing.primary, "signature": "-"}
        key_id, signature = signing.sign(AuditEntry.model_validate(fields).signed_bytes())
        entries.append(AuditEntry.model_validate(fields | {"key_id": key_id, "signature": signature}))
        prev = digest
    return entries


REASONS = ("Re-contact about the new address given.", "Re-contact to confirm the date seen.")


def test_the_same_entries_in_both_places_verify() -> None:
    """Identical, signed, linked entries in the database and on the topic: no problem."""
    entries = chain(*REASONS)
    report = compare_audit(entries, entries, KEYS)
    assert report.ok and (report.entries, report.anchored) == (2, 2)


def test_an_entry_repeated_on_the_topic_is_no_problem_but_two_different_ones_are() -> None:
    """A producer's retry may repeat an entry: the same entry twice is one. Two different entries with one number
    (a rewrite appended by someone holding the unseal path's keys) are reported against that number."""
    entries = chain(*REASONS)
    assert compare_audit(entries, [entries[0], entries[0], entries[1]], KEYS).ok
    other = chain(REASONS[0], "Someone else's reason, appended later on.")[1]

    report = compare_audit(entries, [*entries, other], KEYS)

    assert [(p.entry, p.problem) for p in report.problems] == [
        (2, "the audit topic holds 2 different entries numbered 2")]


def test_entries_signed_with_another_key_do_not_verify_anywhere() -> None:
    """A chain made with a key that is not the audit-signing key (the database holder's own) fails on every entry,
    in the database and on the topic."""
    forged = chain(*REASONS, signing=SigningKeyring.generate("audit-signing"))
    problems = {(p.entry, p.problem) for p in compare_audit(forged, forged, KEYS).problems}
    assert (1, "entry 1's signature does not verify: it was altered, or written without the audit-signing key") \
        in problems
    assert (2, "the audit topic's entry 2 has a signature that does not verify") in problems


def test_a_record_on_the_topic_that_is_no_entry_is_reported_not_skipped() -> None:
    """A record the topic holds that does not decode as an entry is a problem of the log as a whole."""
    entries = chain(*REASONS)
    report = compare_audit(entries, [*entries, DecodeError("undecodable", "not an AuditEntry: seq:missing")], KEYS)
    assert [(p.entry, p.problem) for p in report.problems] == [
        (None, "audit topic record 2 is not an audit entry (not an AuditEntry: seq:missing)")]


def test_an_unsigned_entry_is_reported() -> None:
    """An entry from before signing (no signature) is reported as unsigned."""
    [entry] = chain(REASONS[0])
    unsigned = entry.model_copy(update={"signature": "", "key_id": ""})
    assert [p.problem for p in compare_audit([unsigned], [entry], KEYS).problems] == [
        "entry 1 is not signed", "entry 1 differs from the audit topic's copy in: key_id, signature"]
