"""The audit trail an operator holding the database cannot rewrite (issue 12, step 6), on the real store (SQLite and
PostgreSQL) and a real broker: every entry signed with the unseal path's audit-signing key and anchored on
cpi.audit.sealed.v1 before it commits; `audit-verify`'s comparison (the auditor's: public key only) catches each
of the five attacks an operator with the database and the store's own keys can make, and names the entry."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from structlog.testing import capture_logs

from schemas.topics import AUDIT, AUDITOR, IU
from services.common.envelope import Keyring
from services.common.errors import CpiError
from services.common.kafka import clients
from services.common.kafka.broker import free_port
from services.common.kafka.principals import principal_env_file, read_env_file, with_connection
from services.common.keys import AUDIT as AUDIT_KEY
from services.common.keys import key_path, load_auditor_keys, load_unseal_keys
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters.audit_topic import read_anchored
from services.sanitiser.adapters.sealed_store import (
    AuditUnavailable,
    SealedStore,
    open_audit_log,
)
from services.sanitiser.audit import AuditReport, compare_audit
from services.sanitiser.worker import open_store
from tests.integration.sealed.conftest import Backend
from tests.integration.sealed.test_sealed_store import (
    CANARY_EMAIL,
    CANARY_NAME,
    CANARY_ORG,
    CANARY_PHONE,
    RECEIVED,
    make_source,
    seed_audit,
)
from tests.integration.sealed.test_sealed_store import (
    IU as IU_OFFICER,
)
from tests.key_helpers import key_settings

pytestmark = pytest.mark.kafka


@pytest.fixture
def settings(anchored_settings: SanitiserSettings) -> SanitiserSettings:
    """The unseal path's settings for this test's store and keys, with this test's own audit topic."""
    return anchored_settings


def anchored_store(backend: Backend, settings: SanitiserSettings) -> SealedStore:
    """The store as the unseal path opens it in production (services.sanitiser.worker.open_store)."""
    store = open_store(settings, load_unseal_keys(settings))
    backend.opened.append(store)
    return store


def audit_verify(settings: SanitiserSettings) -> AuditReport:
    """What `cpi sealed audit-verify` checks, with the auditor's key only."""
    reader = open_audit_log(settings.sealed_store)
    try:
        stored = reader.audit_entries()
    finally:
        reader.close()
    return compare_audit(stored, read_anchored(settings), load_auditor_keys(settings))


_COLUMNS = "seq, at, action, actor, role, intel_id, reason, result, detail, prev_hash, hash, key_id, signature"
_MACED = "seq at action actor role intel_id reason result detail prev_hash".split()


def _rechain(backend: Backend, settings: SanitiserSettings) -> None:
    """Recompute every entry's MAC, each link and the head with the store's own audit key, as the database's
    holder (who has the keyring, not the audit-signing key) can."""
    key = Keyring.load(key_path(settings, AUDIT_KEY))
    secret = key.keys[key.primary]
    prev = "0" * 64
    rows = backend.sql(f"SELECT {_COLUMNS} FROM sealed_audit ORDER BY seq")  # noqa: S608 (constant columns)
    for row in rows:
        fields = dict(zip(_MACED, row[:10], strict=True)) | {"prev_hash": prev}
        digest = hmac.new(secret, json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                             ensure_ascii=False).encode(), hashlib.sha256).hexdigest()
        backend.sql("UPDATE sealed_audit SET prev_hash = ?, hash = ? WHERE seq = ?", prev, digest, row[0])
        prev = digest
    head = hmac.new(secret, f"head:{len(rows)}:{prev}".encode(), hashlib.sha256).hexdigest()
    backend.sql("UPDATE sealed_audit_head SET entries = ?, last_hash = ?, mac = ?", len(rows), prev, head)


def _edit(backend: Backend, settings: SanitiserSettings) -> None:
    backend.sql("UPDATE sealed_audit SET reason = ? WHERE seq = 2", "Curiosity, nothing more than that.")


def _delete(backend: Backend, settings: SanitiserSettings) -> None:
    backend.sql("DELETE FROM sealed_audit WHERE seq = 2")


def _reorder(backend: Backend, settings: SanitiserSettings) -> None:
    """Swap entries 2 and 3, each keeping its own content, hash and signature."""
    backend.sql("UPDATE sealed_audit SET seq = -2 WHERE seq = 2")
    backend.sql("UPDATE sealed_audit SET seq = 2 WHERE seq = 3")
    backend.sql("UPDATE sealed_audit SET seq = 3 WHERE seq = -2")


def _delete_and_rechain(backend: Backend, settings: SanitiserSettings) -> None:
    """Delete entry 2, renumber the rest and recompute the whole MAC chain and head with the store's keys."""
    backend.sql("DELETE FROM sealed_audit WHERE seq = 2")
    backend.sql("UPDATE sealed_audit SET seq = seq - 1 WHERE seq > 2")
    _rechain(backend, settings)


# Each attack, and (the entry, words of the problem) audit-verify must report.
ATTACKS: dict[str, tuple[Callable[[Backend, SanitiserSettings], None], int, str]] = {
    "edit": (_edit, 2, "differs from the audit topic's copy in: reason"),
    "delete": (_delete, 2, "is on the audit topic but not in the database (deleted)"),
    "reorder": (_reorder, 2, "holds what the audit topic has as entry 3: entries were reordered"),
    "re-chain with the store's own keys": (_delete_and_rechain, 2, "signature does not verify"),
}


def test_an_untouched_log_verifies_against_its_anchor(backend: Backend, settings: SanitiserSettings) -> None:
    """Every entry the unseal path writes is on the audit topic, signed, in the chain's order: audit-verify is ok."""
    seed_audit(anchored_store(backend, settings))

    report = audit_verify(settings)

    assert report.ok, report.problems
    assert (report.entries, report.anchored) == (4, 4)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_rewrite_of_the_database_is_detected_and_named(backend: Backend, settings: SanitiserSettings,
                                                            attack: str) -> None:
    """Editing, deleting, reordering, or deleting and recomputing the chain with the store's own keys (which the
    old MAC-only check accepted) are each reported against the entry concerned."""
    store = anchored_store(backend, settings)
    seed_audit(store)
    change, entry, words = ATTACKS[attack]
    backend.drop_guards()

    change(backend, settings)

    report = audit_verify(settings)
    assert not report.ok
    assert any(p.entry == entry and words in p.problem for p in report.problems), report.problems
    if attack.startswith("re-chain"):
        assert store.verify_audit().ok  # what the database's own keys vouch for: the hole this closes


def test_an_older_copy_of_the_database_restored_is_detected(backend: Backend, settings: SanitiserSettings) -> None:
    """A database restored from a copy taken before the last unseals (the MAC chain and head whole and valid)
    verifies by its own keys, but the audit topic has the entries after it: reported from the first one missing."""
    store = anchored_store(backend, settings)
    intel_id = seed_audit(store)
    copy = backend.sql(f"SELECT {_COLUMNS} FROM sealed_audit ORDER BY seq")  # noqa: S608 (constant columns)
    [head] = backend.sql("SELECT entries, last_hash, mac FROM sealed_audit_head")
    store.unseal(intel_id, **IU_OFFICER)
    store.unseal(intel_id, **IU_OFFICER)
    backend.drop_guards()

    backend.sql("DELETE FROM sealed_audit")
    for row in copy:
        backend.sql(f"INSERT INTO sealed_audit ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", *row)  # noqa: S608
    backend.sql("UPDATE sealed_audit_head SET entries = ?, last_hash = ?, mac = ?", *head)

    assert store.verify_audit().ok
    report = audit_verify(settings)
    assert not report.ok
    [problem] = report.problems
    assert problem.entry == 5
    assert "has 2 entries after the database's last (entry 4)" in problem.problem
    assert "older copy of the database was restored" in problem.problem


def test_audit_verify_command_says_which_entry_and_exits_1(backend: Backend, settings: SanitiserSettings) -> None:
    """`cpi sealed audit-verify` prints ok and exits 0 on an untouched log; after an edit it exits 1, its JSON
    line and its stderr naming the entry and what is wrong. (The real command, in its own process, as an auditor
    runs it: in this one its logging set-up would outlive the test.)"""
    seed_audit(anchored_store(backend, settings))
    env = {**os.environ, "CPI_DATA_DIR": str(backend.data_dir), "CPI_SEALED_STORE_URL": backend.url,
           "CPI_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "", "CPI_TOPIC_PREFIX": settings.topic_prefix,
           "CPI_CREATE_MISSING_KEYS": "false"}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.cli", "sealed", "audit-verify"], env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    untouched = verify()
    assert untouched.returncode == 0, untouched.stderr
    assert json.loads(untouched.stdout.splitlines()[-1]) == {
        "ok": True, "entries": 4, "anchored": 4, "first_bad": None, "problem": None, "problems": []}
    backend.drop_guards()
    _edit(backend, settings)

    edited = verify()
    assert edited.returncode == 1, edited.stderr
    printed = json.loads(edited.stdout.splitlines()[-1])
    assert printed["ok"] is False and printed["first_bad"] == 2
    assert "cpi: audit entry 2: entry 2 differs from the audit topic's copy in: reason" in edited.stderr


def test_without_the_audit_topic_nothing_is_unsealed_or_written(backend: Backend, tmp_path: Path) -> None:
    """Fail closed: with the broker unreachable at the moment of an unseal, the unseal is refused with
    AuditUnavailable, no source is returned, and no entry is left in the database (its chain still verifies)."""
    unreachable = key_settings(backend.data_dir, sealed_store_url=backend.url,
                               kafka_bootstrap=f"127.0.0.1:{free_port()}", topic_prefix="nowhere.")
    store = anchored_store(backend, unreachable)
    intel_id = store.seal("sub-1", make_source(), RECEIVED)

    with capture_logs() as logs, pytest.raises(AuditUnavailable, match="nothing was done"):
        store.unseal(intel_id, **IU_OFFICER)

    assert backend.sql("SELECT COUNT(*) FROM sealed_audit") == [(0,)]
    assert store.verify_audit().ok
    assert [e["event"] for e in logs] == ["audit_anchor_unavailable"]


def test_no_provenance_reaches_the_audit_topic_logs_or_metrics(backend: Backend, settings: SanitiserSettings) -> None:
    """Canary: after granted and refused unseals and every re-contact step, the audit topic's bytes, every log line
    and the metrics hold who unsealed what and why, and nothing of the source (name, e-mail, phone, organisation,
    role)."""
    store = anchored_store(backend, settings)
    with capture_logs() as logs:
        intel_id = seed_audit(store)
        for step, result in (("request", "granted"), ("approve", "granted"), ("view", "granted")):
            store.audit_recontact(step, "req-1", intel_id, role="supervisor", officer_id="DS-9",
                                  reason=IU_OFFICER["reason"], result=result)
        source = store.unseal(intel_id, **IU_OFFICER)
    assert source.name == CANARY_NAME  # the canary was really there to leak

    consumer, records = _read_raw(settings)
    consumer.close()
    assert len(records) == 8
    anchored = b"\n".join(record.value for record in records)
    assert IU_OFFICER["reason"].encode() in anchored and intel_id.encode() in anchored
    said = json.dumps(logs) + generate_latest(REGISTRY).decode()
    for secret in (CANARY_NAME, CANARY_EMAIL, CANARY_PHONE, CANARY_ORG, make_source().role, "Quillfeather"):
        assert secret.encode() not in anchored, secret
        assert secret not in said, secret


def _read_raw(settings: SanitiserSettings) -> tuple[Any, list[Any]]:
    from services.common.kafka.reading import read_to_end

    return read_to_end(settings, settings.topic(AUDIT.name))


def test_only_the_unseal_path_writes_the_topic_only_the_auditor_reads_it_and_nobody_deletes(
    backend: Backend, settings: SanitiserSettings, kafka_env_dir: Path,
) -> None:
    """Under the registry's ACLs: the unseal path's principal (cpi-iu) anchors entries but cannot read them back
    or delete them; the auditor (cpi-auditor) reads them, cannot write a forged entry and cannot delete any."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    from services.common.kafka.acls import apply_acls
    from services.common.kafka.principals import admin_settings

    apply_acls(admin_settings(settings.model_copy(update={"kafka_env_dir": kafka_env_dir})), (AUDIT,))
    as_iu, as_auditor = (with_connection(settings, read_env_file(principal_env_file(kafka_env_dir, principal)))
                         for principal in (IU, AUDITOR))
    store = anchored_store(backend, as_iu)
    seed_audit(store)

    assert audit_verify(as_auditor).ok
    with pytest.raises((KafkaError, CpiError)):
        read_anchored(as_iu)
    with pytest.raises(KafkaError), closing(clients.producer(as_auditor, max_block_ms=10_000)) as forger:
        forger.send(settings.topic(AUDIT.name), value=b"{}").get(timeout=30)
    for principal in (as_iu, as_auditor):
        admin = clients.admin_client(principal)
        try:
            with pytest.raises(KafkaError):
                admin.delete_records({TopicPartition(settings.topic(AUDIT.name), 0): 4})
        finally:
            admin.close()
    assert audit_verify(as_auditor).anchored == 4


def test_a_store_from_before_signing_migrates_and_keeps_its_entries(backend: Backend) -> None:
    """A schema-1 store (no signature columns) opened by this code is migrated in place: its entries are kept,
    its MAC chain still verifies, and new entries are signed; the old ones are reported as unsigned."""
    store = backend.open()
    seed_audit(store)
    store.close()
    backend.drop_guards()  # the schema-1 layout, remade by dropping the two columns v2 added
    for column in ("key_id", "signature"):
        backend.sql(f"ALTER TABLE sealed_audit DROP COLUMN {column}")
    backend.sql("UPDATE schema_version SET version = 1")

    migrated = backend.open()

    assert backend.sql("SELECT version FROM schema_version") == [(2,)]
    assert migrated.verify_audit().ok and migrated.verify_audit().entries == 4
    entries = migrated.audit_entries()
    assert [e.signature for e in entries] == [""] * 4
    report = compare_audit(entries, entries, load_auditor_keys(backend.settings()))
    assert {f"entry {n} is not signed" for n in range(1, 5)} <= {p.problem for p in report.problems}
