"""Checking the sealed store's audit log against its anchor (pure: entries in, problems out; no I/O).

The database holds the entries; the audit topic holds the same entries, appended before each was committed,
where nobody may delete or compact them. `compare_audit` finds what an operator holding the database (and
every worker's key) could do to it:

- an edited entry: its signature no longer verifies, and it differs from its anchored copy;
- a deleted entry: the sequence has a gap, and the topic has the entry the database lacks;
- reordered entries: an entry holds what the topic anchored under another number;
- a chain recomputed with the database's own keys (the audit MAC key): the MAC chain passes, but nobody
  without the audit-signing key can sign the new entries, and the topic still has the old ones;
- an older copy of the database restored: the topic has entries after the database's last.

Every problem names the entry (its sequence number) and says what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas import AuditEntry
from services.common.signing import VerifyKeys

GENESIS = "0" * 64
# What an entry says happened, without where it sits in the chain: how a moved entry is recognised.
_PLACE_FIELDS = frozenset({"seq", "prev_hash", "hash", "signature"})


@dataclass(frozen=True)
class AuditProblem:
    """One thing wrong with the audit log: the entry it concerns (None for the log as a whole) and what."""

    entry: int | None
    problem: str


@dataclass(frozen=True)
class AuditReport:
    """The result of comparing the database's audit log with the audit topic."""

    entries: int  # in the database
    anchored: int  # distinct entries on the topic
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def signature_holds(entry: AuditEntry, keys: VerifyKeys) -> bool:
    """True when `entry` carries a signature of one of `keys` over its own fields."""
    return bool(entry.signature) and keys.verify(entry.key_id, entry.signed_bytes(), entry.signature)


def _what(entry: AuditEntry) -> dict[str, object]:
    return entry.model_dump(exclude=set(_PLACE_FIELDS))


def _chain_problems(stored: Sequence[AuditEntry], keys: VerifyKeys) -> list[AuditProblem]:
    problems = []
    prev = GENESIS
    for expected, entry in enumerate(stored, start=1):
        if entry.seq != expected:
            problems.append(AuditProblem(expected, f"entry {expected} is missing from the database "
                                                   f"(the next one there is {entry.seq})"))
            break  # every later number is off by the gap: one problem, not hundreds
        if entry.prev_hash != prev:
            problems.append(AuditProblem(expected, f"entry {expected} does not follow entry {expected - 1} "
                                                   "(its link to the one before is broken)"))
        if not entry.signature:
            problems.append(AuditProblem(expected, f"entry {expected} is not signed"))
        elif not signature_holds(entry, keys):
            problems.append(AuditProblem(expected, f"entry {expected}'s signature does not verify: it was altered, "
                                                   "or written without the audit-signing key"))
        prev = entry.hash
    return problems


def compare_audit(stored: Sequence[AuditEntry], anchored: Sequence[AuditEntry | Exception],
                  keys: VerifyKeys) -> AuditReport:
    """Compare the database's entries (`stored`, by sequence number) with the audit topic's (`anchored`, in
    topic order; an Exception for a record that is not an entry), checking every signature with `keys`."""
    problems = _chain_problems(stored, keys)
    on_topic: dict[int, list[AuditEntry]] = {}
    for position, record in enumerate(anchored):
        if isinstance(record, Exception):
            problems.append(AuditProblem(None, f"audit topic record {position} is not an audit entry ({record})"))
            continue
        copies = on_topic.setdefault(record.seq, [])
        if not any(_same(record, copy) for copy in copies):  # the same entry twice (a retry) is no problem
            copies.append(record)
    for seq, copies in sorted(on_topic.items()):
        if len(copies) > 1:
            problems.append(AuditProblem(seq, f"the audit topic holds {len(copies)} different entries numbered {seq}"))
        problems += [AuditProblem(seq, f"the audit topic's entry {seq} has a signature that does not verify")
                     for copy in copies if not signature_holds(copy, keys)]

    in_db = {entry.seq: entry for entry in stored}
    by_content = {_canonical(_what(copy)): seq for seq, copies in on_topic.items() for copy in copies}
    for entry in stored:
        anchored_as = on_topic.get(entry.seq)
        if anchored_as is None:
            problems.append(AuditProblem(entry.seq, f"entry {entry.seq} is in the database but not on the audit topic "
                                                    "(written without its anchor)"))
        elif not any(_same(entry, copy) for copy in anchored_as):
            moved_from = by_content.get(_canonical(_what(entry)))
            if moved_from is not None and moved_from != entry.seq:
                problems.append(AuditProblem(entry.seq, f"entry {entry.seq} holds what the audit topic has as entry "
                                                        f"{moved_from}: entries were reordered"))
            else:
                changed = sorted(name for name, value in entry.model_dump().items()
                                 if all(getattr(copy, name) != value for copy in anchored_as))
                problems.append(AuditProblem(entry.seq, f"entry {entry.seq} differs from the audit topic's copy in: "
                                                        f"{', '.join(changed)}"))
    last = max(in_db, default=0)
    missing = sorted(seq for seq in on_topic if seq not in in_db)
    after = [seq for seq in missing if seq > last]
    problems += [AuditProblem(seq, f"entry {seq} is on the audit topic but not in the database (deleted)")
                 for seq in missing if seq <= last]
    if after:
        problems.append(AuditProblem(after[0], f"the audit topic has {len(after)} entries after the database's last "
                                               f"(entry {last}), from entry {after[0]}: an older copy of the database "
                                               "was restored, or its last entries deleted"))
    return AuditReport(entries=len(stored), anchored=sum(len(c) for c in on_topic.values()),
                       problems=tuple(sorted(problems, key=lambda p: (p.entry is None, p.entry or 0))))


def _same(one: AuditEntry, other: AuditEntry) -> bool:
    # Field by field: the database's entries are read as they are (not validated), the topic's validated.
    return one.model_dump() == other.model_dump()


def _canonical(fields: dict[str, object]) -> str:
    return repr(sorted(fields.items()))
