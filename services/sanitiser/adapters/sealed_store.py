"""The sealed store: provenance kept encrypted, opened only by an audited unseal.

One interface (`SealedStore`), two backends sharing this SQL logic: SQLite by default
(`sqlite_store.py`) and PostgreSQL for deployments (`postgres_store.py`).

What the tables hold, and why:

- `sealed_records`: intel id, an HMAC of the submission id (never the id itself, so the table
  does not link topics to records), the provenance envelope (AES-256-GCM, intel id as
  associated data; its data key sealed with HPKE to the unseal public key), key id, created and
  review dates. The sanitiser holds only the unseal key's public half: it seals, and neither it
  nor anyone with the database and every worker's keys can open a record; only the unseal path
  (the Intelligence Unit), which holds the private half, can. Append-only: only the sealed data
  key changes, on key rotation; database triggers refuse any other update.
- `sealed_audit`: every unseal attempt, held-intel review (show, redact, release), rotation and
  purge, hash-chained with HMAC-SHA256 under the audit key (a key of its own) so an edit,
  deletion or reordering is detected; `sealed_audit_head` holds the count and last hash (itself
  MACed) so a deleted last row is detected too. Triggers refuse update/delete. Rotating the audit
  key appends a checkpoint, MACed with the new key, holding a SHA-256 digest of every entry
  before it: those entries stay verifiable once the old key is retired.
  Every entry is also signed (Ed25519, `key_id`, `signature`) with the audit-signing key, which only the
  unseal path holds: the MAC chain is the store's own check (anyone with the store's keys can recompute
  it), the signature is the auditor's (who holds only the public key), and nobody holding the database
  and the workers' keys can make an entry that verifies. Each entry is appended, acknowledged, to the
  audit topic (`anchor`) before its transaction commits: with the anchor unreachable nothing is written
  and the action is refused (fail closed), so a rewritten or rolled-back database disagrees with the
  topic (services/sanitiser/audit.py compares them: `cpi sealed audit-verify`).
- `sealed_secret`: one random 32-byte secret, wrapped by the store KEK, from which the lookup key
  is derived. Keeping it in the database (wrapped) means every process that shares the database
  and the KEK agrees on it, and the database alone does not reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Protocol

import structlog

from schemas import AuditEntry, EnvelopeAlg, SealedEnvelope, Source
from services.common import envelope
from services.common.envelope import EnvelopeError, Keyring, KeyringError, PrivateKeyring
from services.common.errors import CpiError, TransientError
from services.common.keys import StoreKeys

log = structlog.get_logger(__name__)

UNSEAL_ROLE: Final = "intelligence_unit"
MIN_REASON_CHARS: Final = 20
MAX_REASON_CHARS: Final = 2000
MAX_OFFICER_ID_CHARS: Final = 100
SCHEMA_COMPONENT: Final = "sealed_store"

_GENESIS: Final = "0" * 64
# Every audit column except `hash`, in table order; the row hash is an HMAC over all of them.
_AUDIT_FIELDS: Final = tuple("seq at action actor role intel_id reason result detail prev_hash".split())
_SECRET_AAD: Final = b"cpi-sealed-store-secret"
_AUDIT_CHECKPOINT: Final = "rotate_audit_key"
# Schema v2, the same on both backends: each audit entry's signature and the key that made it. Entries written
# before it have none, and audit-verify reports them as unsigned.
SCHEMA_V2: Final = [
    "ALTER TABLE sealed_audit ADD COLUMN key_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE sealed_audit ADD COLUMN signature TEXT NOT NULL DEFAULT ''",
]
_AUDIT_SELECT: Final = ("SELECT seq, at, action, actor, role, intel_id, reason, result, detail, prev_hash, hash, "
                        "key_id, signature FROM sealed_audit ORDER BY seq")


class SealedStoreError(CpiError):
    """The sealed store cannot do what was asked: bad URL, wrong keys, broken schema."""


class UnsealDenied(CpiError):
    """An unseal attempt was refused (and audited); `code` says why without naming anyone."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class HeldReviewDenied(CpiError):
    """A review of held intel (show, redact, release) was refused, and audited; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SealedStoreUnavailable(TransientError):
    """The store cannot be reached just now (locked, connection lost); the same call may pass later."""


class SealedRecordNotFound(SealedStoreError):
    """No sealed record has that intel id (the attempt is still audited)."""


class AuditUnavailable(TransientError):
    """The audit entry could not be anchored on the audit topic, so nothing was written and nothing done."""


class AuditAnchor(Protocol):
    """Where each audit entry is appended outside the database before it is committed (the audit topic)."""

    def append(self, entry: AuditEntry) -> None:
        """Return once the entry is durably appended; raise AuditUnavailable otherwise."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class RetentionPolicy:
    """MoPI-style retention: a record is due for review a fixed number of years after receipt.

    Six years is the MoPI minimum review period for intelligence; deployments set their own.
    """

    review_after_years: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.review_after_years <= 100:
            raise ValueError("review_after_years must be between 1 and 100")

    def review_date(self, received_on: date) -> date:
        """The date a record received on `received_on` is due for review (29 Feb falls to 28 Feb)."""
        year = received_on.year + self.review_after_years
        try:
            return received_on.replace(year=year)
        except ValueError:
            return received_on.replace(year=year, day=28)


@dataclass(frozen=True)
class AuditVerification:
    """The result of checking the audit chain; `first_bad` is the first sequence number that fails."""

    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class SealRequest:
    """One submission's provenance to seal."""

    submission_id: str
    source: Source
    received_on: date


class SealedStore(ABC):
    """Where provenance is kept encrypted; every unseal is authorised and audited."""

    def seal(self, submission_id: str, source: Source, received_on: date) -> str:
        """Seal `source` for a submission and return its intel id; the same id on every repeat."""
        return self.seal_batch([SealRequest(submission_id, source, received_on)])[0]

    @abstractmethod
    def seal_batch(self, requests: Sequence[SealRequest]) -> list[str]:
        """Seal every request's source in one transaction (all or none) and return their intel ids, in order;
        a submission sealed before, or twice in the batch, gets the intel id it already has."""

    @abstractmethod
    def unseal(self, intel_id: str, *, role: str, officer_id: str, reason: str) -> Source:
        """Open a record for an Intelligence Unit officer with a written reason; audited either way."""

    @abstractmethod
    def review_held(
        self, action: str, intel_id: str, *, role: str, officer_id: str, reason: str,
        refusal: tuple[str, str] | None = None, detail: dict[str, object] | None = None,
    ) -> None:
        """Authorise an Intelligence Unit action on held intel and audit it, granted or refused."""

    @abstractmethod
    def audit_recontact(
        self, action: str, request_id: str, intel_id: str, *, role: str, officer_id: str, reason: str, result: str,
    ) -> None:
        """Append one step of a re-contact request (request, approve, refuse, view) to the audit chain."""

    @abstractmethod
    def verify_audit(self) -> AuditVerification:
        """Check the audit chain for edits, deletions and reordering."""

    @abstractmethod
    def audit_entries(self) -> list[AuditEntry]:
        """Every audit entry the database holds, by sequence number (what the auditor compares with the topic)."""

    @abstractmethod
    def reseal_records(self, unseal: PrivateKeyring) -> int:
        """Seal every record's data key again to `unseal`'s primary (unseal key rotation); how many moved."""

    @abstractmethod
    def rewrap_secret(self, kek: Keyring) -> None:
        """Wrap the store's lookup secret under `kek`'s primary (store KEK rotation)."""

    @abstractmethod
    def rotate_audit_key(self, audit: Keyring) -> None:
        """Continue the audit chain under `audit`'s primary, checkpointing every entry before it."""

    @abstractmethod
    def count_sealed_under(self, key_id: str) -> int:
        """How many records' data keys are sealed to unseal key `key_id`."""

    @abstractmethod
    def purge(self, *, today: date | None = None) -> int:
        """Remove records whose review date has passed; return how many."""

    @abstractmethod
    def count(self) -> int:
        """How many sealed records the store holds."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


Query = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]
"""Run one SQL statement (`?` placeholders) inside a transaction; returns its rows, if any."""


def _canonical(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _today() -> date:
    return datetime.now(UTC).date()


class SqlSealedStore(SealedStore):
    """The sealed store over any SQL database; backends supply the connection and the DDL."""

    #: Reads the audit head before an append. PostgreSQL adds FOR UPDATE so concurrent writers
    #: queue; SQLite's BEGIN IMMEDIATE already serialises them.
    _read_head_for_append: str = "SELECT entries, last_hash FROM sealed_audit_head WHERE id = 1"

    def __init__(self, keys: StoreKeys | None, retention: RetentionPolicy | None = None,
                 anchor: AuditAnchor | None = None) -> None:
        # keys None: opened by the auditor (open_audit_log), who reads the audit log and nothing else. Throwaway
        # keys stand in: they open nothing, and without an audit-signing key nothing can be written either.
        self._keys = keys or StoreKeys(kek=Keyring.generate(), audit=Keyring.generate())
        self._anchor = anchor
        self._retention = retention or RetentionPolicy()
        self._lock = threading.Lock()
        self._lookup_key = b""
        self._audit_key = b""

    # -- backend hooks -----------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Query]:
        """A context that commits on success and rolls back on error."""

    @abstractmethod
    def _migrations(self) -> list[list[str]]:
        """DDL per schema version, oldest first; step i brings the schema to version i + 1."""

    def _lock_schema(self, q: Query) -> None:
        """Serialise concurrent first opens; SQLite's BEGIN IMMEDIATE already does."""

    @abstractmethod
    def _close_connection(self) -> None: ...

    # -- start-up ----------------------------------------------------------------------

    def _start(self) -> None:
        """Create or migrate the schema, then load (or create) the store secret."""
        with self._lock, self._transaction() as q:
            self._lock_schema(q)
            q(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
                (),
            )
            rows = q("SELECT version FROM schema_version WHERE component = ?", (SCHEMA_COMPONENT,))
            current = rows[0][0] if rows else 0
            steps = self._migrations()
            if current > len(steps):
                raise SealedStoreError(f"sealed store schema v{current} is newer than this code knows")
            for statements in steps[current:]:
                for statement in statements:
                    q(statement, ())
            if current < len(steps):
                q(
                    "INSERT INTO schema_version (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (SCHEMA_COMPONENT, len(steps)),
                )
            secret = self._load_secret(q)
            self._audit_key = self._active_audit_key(q)
        self._lookup_key = hmac.digest(secret, b"cpi-sealed-lookup", "sha256")
        with self._lock, self._transaction() as q:
            q(
                "INSERT INTO sealed_audit_head (id, entries, last_hash, mac) VALUES (1, 0, ?, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (_GENESIS, self._head_mac(0, _GENESIS)),
            )
            entries, last_hash, mac = q("SELECT entries, last_hash, mac FROM sealed_audit_head WHERE id = 1", ())[0]
        if not hmac.compare_digest(self._head_mac(entries, last_hash), str(mac)):
            raise SealedStoreError("the audit key does not verify this sealed store's audit chain "
                                   "(wrong or retired audit key, or the head was altered)")

    def _active_audit_key(self, q: Query) -> bytes:
        """The audit key the chain continues under: the one the last checkpoint names, else the primary."""
        rows = q("SELECT detail FROM sealed_audit WHERE action = ? ORDER BY seq DESC LIMIT 1", (_AUDIT_CHECKPOINT,))
        key_id = json.loads(rows[0][0])["key_id"] if rows else self._keys.audit.primary
        if key_id not in self._keys.audit.keys:
            raise SealedStoreError(f"the audit key file has no key {key_id!r}, which this store's audit chain uses")
        return self._keys.audit.keys[key_id]

    def _load_secret(self, q: Query) -> bytes:
        fresh = envelope.seal(secrets.token_bytes(32), _SECRET_AAD, self._keys.kek)
        q(
            "INSERT INTO sealed_secret (id, key_id, wrapped_key, nonce, ciphertext) VALUES (1, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            (fresh.key_id, fresh.wrapped_key, fresh.nonce, fresh.ciphertext),
        )
        row = q("SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_secret WHERE id = 1", ())[0]
        try:
            return envelope.open_envelope(_envelope(row, EnvelopeAlg.KEK), _SECRET_AAD, self._keys.kek)
        except (EnvelopeError, KeyringError):
            raise SealedStoreError(
                "the store KEK does not open this sealed store (wrong or missing store-kek key file?)"
            ) from None

    def _recipient(self) -> envelope.RecipientKey:
        if self._keys.unseal_public is not None:
            return self._keys.unseal_public
        if self._keys.unseal_private is not None:
            return self._keys.unseal_private.recipient()
        raise SealedStoreError("this process holds no unseal key to seal to")

    # -- sealing -----------------------------------------------------------------------

    def seal_batch(self, requests: Sequence[SealRequest]) -> list[str]:
        """Seal each request's source and return their intel ids, in order, in one transaction: one commit
        (one fsync) per batch rather than per record, and a failure leaves none of the batch behind.

        The intel id is random (not derived from the submission); the submission id is kept
        only as a keyed HMAC so re-delivery finds the record without the table naming topics.
        """
        if not requests:
            return []
        intel_ids = []
        with self._lock, self._transaction() as q:
            recipient = self._recipient()
            for request in requests:
                lookup = _mac(self._lookup_key, request.submission_id.encode())
                # Looked up inside the transaction, so a repeat later in the same batch finds the row just added.
                found = q("SELECT intel_id FROM sealed_records WHERE lookup = ?", (lookup,))
                if not found:
                    intel_id = uuid.uuid4().hex
                    sealed = envelope.seal_to(request.source.model_dump_json().encode(), intel_id.encode(), recipient)
                    # ON CONFLICT: another process may seal the same submission at the same moment;
                    # whichever insert wins, both callers return its intel id.
                    q(
                        "INSERT INTO sealed_records "
                        "(intel_id, lookup, key_id, wrapped_key, nonce, ciphertext, created_on, review_on) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lookup) DO NOTHING",
                        (
                            intel_id,
                            lookup,
                            sealed.key_id,
                            sealed.wrapped_key,
                            sealed.nonce,
                            sealed.ciphertext,
                            _today().isoformat(),
                            self._retention.review_date(request.received_on).isoformat(),
                        ),
                    )
                    found = q("SELECT intel_id FROM sealed_records WHERE lookup = ?", (lookup,))
                intel_ids.append(str(found[0][0]))
        return intel_ids

    # -- unsealing ---------------------------------------------------------------------

    def unseal(self, intel_id: str, *, role: str, officer_id: str, reason: str) -> Source:
        """Open a record for an Intelligence Unit officer with a written reason.

        Every attempt is audited before anything is returned or raised: refusals raise
        `UnsealDenied` (and are counted), an unknown id raises `SealedRecordNotFound`, a record
        that does not decrypt raises `EnvelopeError`.
        """
        entry: dict[str, object] = {
            "action": "unseal",
            "actor": officer_id.strip()[:MAX_OFFICER_ID_CHARS],
            "role": role[:MAX_OFFICER_ID_CHARS],
            "intel_id": intel_id[:64],
            "reason": reason.strip()[:MAX_REASON_CHARS],
        }
        denial = _refusal(role, officer_id, reason, "unseal provenance")
        if denial is None and self._keys.unseal_private is None:
            # A worker's store (sanitiser keys): the attempt is recorded like any other refusal.
            denial = ("no_unseal_key", "this process does not hold the unseal key; only the unseal path opens records")
        with self._lock:
            if denial is not None:
                code, message = denial
                # A worker's store holds no audit-signing key, so its refusal can only be logged: an entry it
                # wrote would not verify. It never holds the unseal key either, so nothing could be opened.
                if self._keys.audit_signing is not None:
                    self._audit({**entry, "result": f"denied:{code}"})
                log.warning("sealed_unseal_denied", reason_code=code, intel_id=entry["intel_id"])
                raise UnsealDenied(code, message)
            with self._transaction() as q:
                rows = q(
                    "SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_records WHERE intel_id = ?",
                    (intel_id,),
                )
            if not rows:
                self._audit({**entry, "result": "not_found"})
                raise SealedRecordNotFound("no sealed record with that intel id")
            assert self._keys.unseal_private is not None  # refused above otherwise
            try:
                plaintext = envelope.open_sealed(_envelope(rows[0], EnvelopeAlg.HPKE), intel_id.encode(),
                                                 self._keys.unseal_private)
            except (EnvelopeError, KeyringError):
                self._audit({**entry, "result": "failed:does_not_open"})
                log.error("sealed_record_does_not_open", intel_id=intel_id)
                raise
            # Audit first: if the audit write fails, nothing is revealed.
            self._audit({**entry, "result": "granted"})
        log.info("sealed_unseal_granted", intel_id=intel_id)
        return Source.model_validate_json(plaintext)

    # -- held-intel review -------------------------------------------------------------

    def review_held(
        self, action: str, intel_id: str, *, role: str, officer_id: str, reason: str,
        refusal: tuple[str, str] | None = None, detail: dict[str, object] | None = None,
    ) -> None:
        """Authorise `action` (show, redact, release) on a held intel, under the rules of unseal.

        A held intel may still name its source, so looking at it or letting it go needs what an
        unseal needs: the Intelligence Unit role, an officer id and a written reason. `refusal` is the
        caller's own (code, message) for refusing (not held, already released); it is checked after
        the officer's, so only an authorised officer learns it. The attempt is in the audit chain
        before this returns; a refusal then raises `HeldReviewDenied`. `detail` must hold no text
        of the intel (revision numbers and counts only).
        """
        entry: dict[str, object] = {
            "action": f"held_{action}"[:32],
            "actor": officer_id.strip()[:MAX_OFFICER_ID_CHARS],
            "role": role[:MAX_OFFICER_ID_CHARS],
            "intel_id": intel_id[:64],
            "reason": reason.strip()[:MAX_REASON_CHARS],
            "detail": detail or {},
        }
        denial = _refusal(role, officer_id, reason, "review held intel") or refusal
        with self._lock:
            if denial is not None:
                code, message = denial
                self._audit({**entry, "result": f"denied:{code}"})
                log.warning("held_review_denied", action=action, reason_code=code, intel_id=entry["intel_id"])
                raise HeldReviewDenied(code, message)
            self._audit({**entry, "result": "granted"})
        log.info("held_review_granted", action=action, intel_id=entry["intel_id"])

    # -- re-contact requests -----------------------------------------------------------

    def audit_recontact(
        self, action: str, request_id: str, intel_id: str, *, role: str, officer_id: str, reason: str, result: str,
    ) -> None:
        """One step of a console re-contact request, in the same chain as the unseal it leads to.

        The console decides (two-person rule, roles); this only records, before the caller acts on it.
        `reason` is the officer's written reason; the request id goes in `detail` so the steps of one
        request can be followed. Nothing of the source is ever passed here.
        """
        entry: dict[str, object] = {
            "action": f"recontact_{action}"[:32],
            "actor": officer_id.strip()[:MAX_OFFICER_ID_CHARS],
            "role": role[:MAX_OFFICER_ID_CHARS],
            "intel_id": intel_id[:64],
            "reason": reason.strip()[:MAX_REASON_CHARS],
            "result": result[:64],
            "detail": {"request_id": request_id[:64]},
        }
        with self._lock:
            self._audit(entry)

    # -- audit chain -------------------------------------------------------------------

    def _head_mac(self, entries: int, last_hash: str) -> str:
        return _mac(self._audit_key, f"head:{entries}:{last_hash}".encode())

    def _entry_hash(self, fields: dict[str, object]) -> str:
        return _mac(self._audit_key, _canonical(fields))

    def _audit(self, entry: dict[str, object]) -> None:
        """Append one signed audit row, anchor it and move the head, in one transaction. Caller holds the lock."""
        signing = self._keys.audit_signing
        if signing is None:
            raise SealedStoreError("this process holds no audit-signing key, so it can write no audit entry; "
                                   "only the unseal path acts on sealed records")
        with self._transaction() as q:
            entries, prev = q(self._read_head_for_append, ())[0]
            [(mac,)] = q("SELECT mac FROM sealed_audit_head WHERE id = 1", ())
            if not hmac.compare_digest(self._head_mac(entries, prev), str(mac)):
                # Fail closed: the key was rotated under this process, or the head was altered.
                raise SealedStoreError("the audit head does not verify with this audit key; nothing was done")
            fields: dict[str, object] = {
                "seq": entries + 1,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "action": entry["action"],
                "actor": entry.get("actor", "system"),
                "role": entry.get("role", ""),
                "intel_id": entry.get("intel_id", ""),
                "reason": entry.get("reason", ""),
                "result": entry["result"],
                "detail": json.dumps(entry.get("detail", {}), sort_keys=True),
                "prev_hash": prev,
            }
            # Stripped as the contract strips them, so the row, its MAC, its signature and the topic's copy agree.
            fields = {k: v.strip() if isinstance(v, str) else v for k, v in fields.items()}
            digest = self._entry_hash(fields)
            unsigned = {**fields, "hash": digest, "key_id": signing.primary, "signature": "-"}
            key_id, signature = signing.sign(AuditEntry.model_validate(unsigned).signed_bytes())
            signed = AuditEntry.model_validate({**unsigned, "key_id": key_id, "signature": signature})
            q(
                "INSERT INTO sealed_audit (seq, at, action, actor, role, intel_id, reason, result, detail, "
                "prev_hash, hash, key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*(fields[name] for name in _AUDIT_FIELDS), digest, key_id, signature),
            )
            q(
                "UPDATE sealed_audit_head SET entries = ?, last_hash = ?, mac = ? WHERE id = 1",
                (entries + 1, digest, self._head_mac(entries + 1, digest)),
            )
            if self._anchor is not None:
                # Inside the transaction: if the topic does not take it, the row is rolled back and the caller
                # does nothing (fail closed). A commit failing after this leaves the topic one entry ahead,
                # which audit-verify reports: loud, never silent.
                self._anchor.append(signed)

    def verify_audit(self) -> AuditVerification:
        """Recompute the chain: sequence continuity, each row's HMAC and link, then the head.

        Entries before the last audit-key checkpoint were MACed with a retired key: they are checked
        against the checkpoint's digest of them instead (the checkpoint itself is MACed with the
        current key).
        """
        with self._lock:
            return self._verify_audit()

    def audit_entries(self) -> list[AuditEntry]:
        with self._lock, self._transaction() as q:
            rows = q(_AUDIT_SELECT, ())
        names = (*_AUDIT_FIELDS, "hash", "key_id", "signature")
        return [AuditEntry.model_construct(**dict(zip(names, row, strict=True))) for row in rows]

    def _verify_audit(self) -> AuditVerification:
        with self._transaction() as q:
            rows = q(
                "SELECT seq, at, action, actor, role, intel_id, reason, result, detail, prev_hash, hash "
                "FROM sealed_audit ORDER BY seq",
                (),
            )
            head = q("SELECT entries, last_hash, mac FROM sealed_audit_head WHERE id = 1", ())
        checkpoint = max((i for i, row in enumerate(rows) if row[2] == _AUDIT_CHECKPOINT), default=0)
        prev = _GENESIS
        for expected, row in enumerate(rows, start=1):
            fields = dict(zip(_AUDIT_FIELDS, row[:-1], strict=True))
            if fields["seq"] != expected:
                return AuditVerification(False, len(rows), expected, f"entry {expected} is missing")
            if fields["prev_hash"] != prev:
                return AuditVerification(False, len(rows), expected, "entry does not follow the one before")
            if expected > checkpoint and not hmac.compare_digest(self._entry_hash(fields), str(row[-1])):
                return AuditVerification(False, len(rows), expected, "entry was altered")
            prev = str(row[-1])
        if checkpoint and json.loads(rows[checkpoint][8]).get("digest") != _digest(rows[:checkpoint]):
            return AuditVerification(False, len(rows), None,
                                     f"an entry before the audit key checkpoint (entry {checkpoint + 1}) was altered")
        if not head:
            return AuditVerification(False, len(rows), None, "audit head is missing")
        entries, last_hash, mac = head[0]
        if not hmac.compare_digest(self._head_mac(entries, last_hash), str(mac)):
            return AuditVerification(False, len(rows), None, "audit head was altered")
        if entries != len(rows) or last_hash != prev:
            return AuditVerification(
                False, len(rows), len(rows) + 1, f"audit head records {entries} entries, found {len(rows)}"
            )
        return AuditVerification(True, len(rows))

    # -- keys and retention ------------------------------------------------------------

    def reseal_records(self, unseal: PrivateKeyring) -> int:
        """Seal each record's data key again to `unseal`'s primary; ciphertexts are untouched.

        Needs the unseal private key (the old one opens the data key): the unseal path runs this.
        """
        with self._lock:
            with self._transaction() as q:
                records = q("SELECT intel_id, key_id, wrapped_key, nonce, ciphertext FROM sealed_records "
                            "WHERE key_id <> ?", (unseal.primary,))
                for intel_id, *parts in records:
                    moved = envelope.reseal(_envelope(parts, EnvelopeAlg.HPKE), intel_id.encode(), unseal)
                    q("UPDATE sealed_records SET key_id = ?, wrapped_key = ? WHERE intel_id = ?",
                      (moved.key_id, moved.wrapped_key, intel_id))
            self._keys = replace(self._keys, unseal_public=None, unseal_private=unseal)
            detail = {"purpose": "unseal", "key_id": unseal.primary, "count": len(records)}
            self._audit({"action": "rotate_key", "result": "done", "detail": detail})
        log.info("sealed_key_rotated", purpose="unseal", key_id=unseal.primary, count=len(records))
        return len(records)

    def rewrap_secret(self, kek: Keyring) -> None:
        """Wrap the lookup secret under `kek`'s primary (it must still hold the key that wraps it now)."""
        with self._lock:
            with self._transaction() as q:
                secret = q("SELECT key_id, wrapped_key, nonce, ciphertext FROM sealed_secret", ())
                moved = envelope.rewrap(_envelope(secret[0], EnvelopeAlg.KEK), kek)
                q("UPDATE sealed_secret SET key_id = ?, wrapped_key = ? WHERE id = 1",
                  (moved.key_id, moved.wrapped_key))
            self._keys = replace(self._keys, kek=kek)
            self._audit({"action": "rotate_key", "result": "done",
                         "detail": {"purpose": "store-kek", "key_id": kek.primary, "count": 1}})
        log.info("sealed_key_rotated", purpose="store-kek", key_id=kek.primary, count=1)

    def rotate_audit_key(self, audit: Keyring) -> None:
        """Verify the chain under the current key, then append a checkpoint MACed with `audit`'s primary
        that holds a digest of every entry before it, and move the head to the new key. Refused if the
        chain does not verify: a rotation must not launder a tampered log."""
        with self._lock:
            result = self._verify_audit()
            if not result.ok:
                raise SealedStoreError(f"the audit chain does not verify ({result.problem}); not rotating")
            with self._transaction() as q:
                rows = q("SELECT seq, at, action, actor, role, intel_id, reason, result, detail, prev_hash, hash "
                         "FROM sealed_audit ORDER BY seq", ())
                entries, prev = q(self._read_head_for_append, ())[0]
                old_key, self._audit_key = self._audit_key, audit.keys[audit.primary]
                try:
                    # The head moves to the new key in the same transaction as the checkpoint.
                    q("UPDATE sealed_audit_head SET mac = ? WHERE id = 1", (self._head_mac(entries, prev),))
                except BaseException:
                    self._audit_key = old_key
                    raise
            detail = {"key_id": audit.primary, "entries": len(rows), "digest": _digest(rows)}
            self._audit({"action": _AUDIT_CHECKPOINT, "result": "done", "detail": detail})
            self._keys = replace(self._keys, audit=audit)
        log.info("sealed_key_rotated", purpose="audit", key_id=audit.primary, count=len(rows))

    def count_sealed_under(self, key_id: str) -> int:
        with self._lock, self._transaction() as q:
            return int(q("SELECT COUNT(*) FROM sealed_records WHERE key_id = ?", (key_id,))[0][0])

    def purge(self, *, today: date | None = None) -> int:
        """Remove records whose review date is before `today` (UTC today by default); audit the count."""
        cutoff = (today or _today()).isoformat()
        with self._lock:
            with self._transaction() as q:
                gone = q("DELETE FROM sealed_records WHERE review_on < ? RETURNING intel_id", (cutoff,))
            removed = len(gone)
            self._audit({"action": "purge", "result": "done", "detail": {"before": cutoff, "count": removed}})
        log.info("sealed_purged", count=removed)
        return removed

    def count(self) -> int:
        """How many sealed records the store holds."""
        with self._lock, self._transaction() as q:
            return int(q("SELECT COUNT(*) FROM sealed_records", ())[0][0])

    def close(self) -> None:
        """Release the connection (and the anchor's); the store cannot be used afterwards."""
        with self._lock:
            self._close_connection()
            if self._anchor is not None:
                self._anchor.close()


def _envelope(row: Sequence[Any], alg: EnvelopeAlg) -> SealedEnvelope:
    key_id, wrapped_key, nonce, ciphertext = row
    return SealedEnvelope(alg=alg, key_id=key_id, wrapped_key=wrapped_key, nonce=nonce, ciphertext=ciphertext)


def _digest(rows: Sequence[Sequence[Any]]) -> str:
    """SHA-256 over audit rows, every column: what a checkpoint vouches for once their key is retired."""
    return hashlib.sha256(_canonical({"rows": [list(row) for row in rows]})).hexdigest()


def _refusal(role: str, officer_id: str, reason: str, doing: str) -> tuple[str, str] | None:
    """Why a request to `doing` (unseal, review held intel) must be refused, as (code, message), or None."""
    if role != UNSEAL_ROLE:
        return "role_not_permitted", f"only the {UNSEAL_ROLE} role may {doing}"
    if not officer_id.strip():
        return "missing_officer_id", f"an officer id is required to {doing}"
    if len(officer_id.strip()) > MAX_OFFICER_ID_CHARS:
        return "invalid_officer_id", f"an officer id has at most {MAX_OFFICER_ID_CHARS} characters"
    if len(reason.strip()) < MIN_REASON_CHARS:
        return "reason_too_short", f"a written reason of at least {MIN_REASON_CHARS} characters is required"
    if len(reason.strip()) > MAX_REASON_CHARS:
        return "reason_too_long", f"a reason has at most {MAX_REASON_CHARS} characters"
    return None


def open_sealed_store(url: str, keys: StoreKeys, *, retention: RetentionPolicy | None = None,
                      anchor: AuditAnchor | None = None) -> SealedStore:
    """Open the store at `sqlite:///path.db` (relative; `sqlite:////abs.db` absolute) or `postgresql://...`.

    The schema is created or migrated on open. `keys` are the opening process's own (services.common.keys):
    with the unseal public key it seals; only with the unseal private key does it unseal; only with the
    audit-signing key does it write audit entries, each appended to `anchor` first (the unseal path's
    processes pass the audit topic; services.sanitiser.worker.open_store).
    """
    return _open(url, keys, retention, anchor)


def open_audit_log(url: str) -> SealedStore:
    """The store at `url` opened with no key, to read its audit log (`audit_entries`) and nothing else: the
    auditor's view. Nothing is created or migrated."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise SealedStoreError(f"there is no sealed store at {url}")
    return _open(url, None, None, None)


def _open(url: str, keys: StoreKeys | None, retention: RetentionPolicy | None,
          anchor: AuditAnchor | None) -> SealedStore:
    if url.startswith("sqlite:///"):
        from services.sanitiser.adapters.sqlite_store import SqliteSealedStore

        return SqliteSealedStore(Path(url.removeprefix("sqlite:///")), keys, retention, anchor)
    if url.startswith(("postgresql://", "postgres://")):
        from services.sanitiser.adapters.postgres_store import PostgresSealedStore

        return PostgresSealedStore(url, keys, retention, anchor)
    raise SealedStoreError("sealed store URL must start with sqlite:/// or postgresql://")


__all__ = [
    "AuditAnchor",
    "AuditUnavailable",
    "AuditVerification",
    "HeldReviewDenied",
    "RetentionPolicy",
    "SealRequest",
    "SealedRecordNotFound",
    "SealedStore",
    "SealedStoreError",
    "SealedStoreUnavailable",
    "SqlSealedStore",
    "UnsealDenied",
    "open_audit_log",
    "open_sealed_store",
]
