"""`cpi keys rotate` against real stores (SQLite and PostgreSQL) and, for the unseal key, the real held
topic: a new primary, what is kept under the old key re-wrapped or re-sealed, then the old key retired
(gone from its file); every record still opens, and the old key opens nothing made after."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from schemas import HeldIntel, Source, Submission
from schemas.topics import AUDIT as AUDIT_TOPIC
from schemas.topics import HELD
from services.common.envelope import EnvelopeError, Keyring, KeyringError, PrivateKeyring, open_sealed
from services.common.keys import (
    AUDIT,
    STORE_KEK,
    TRANSPORT_PRIVATE,
    UNSEAL_PRIVATE,
    key_path,
    load_edge_keys,
    load_intake_keys,
    load_unseal_keys,
)
from services.common.serde import encode
from services.common.settings import SanitiserSettings
from services.intake.receiving import received_record
from services.keys_cli import retire_transport, rotate_audit, rotate_store_kek, rotate_transport, rotate_unseal
from services.sanitiser.adapters import SealedStoreError
from services.sanitiser.held import hold, open_held
from services.sanitiser.residual import assess_residual_risk
from tests.integration.sanitiser.test_holding import submission
from tests.kafka_helpers import produce
from tests.key_helpers import key_settings

if TYPE_CHECKING:
    from tests.integration.sealed.conftest import Backend

IU = {"role": "intelligence_unit", "officer_id": "IU-4471", "reason": "Re-contact the source about new risk."}
RECEIVED = date(2026, 3, 14)


def source(name: str) -> Source:
    return Source(name=name, role="Designated safeguarding lead", organisation="Canary Academy",
                  organisation_type="education", email="dsl@canary.example")


@pytest.mark.kafka
def test_store_kek_rotation_rewraps_the_secret_and_retires_the_old_kek(backend: Backend,
                                                                       anchored_settings: SanitiserSettings) -> None:
    """After rotating the store KEK the file holds only the new key, every record still opens, the old KEK
    no longer opens the store, and the rotation is in the verified audit chain."""
    store = backend.open()
    ids = {store.seal(f"sub-{n}", source(f"Person {n}"), RECEIVED): f"Person {n}" for n in range(3)}
    old = Keyring.load(key_path(backend.settings(), STORE_KEK))

    new_id = rotate_store_kek(anchored_settings)

    assert Keyring.load(key_path(backend.settings(), STORE_KEK)).keys.keys() == {new_id} != old.keys.keys()
    fresh = backend.open()
    assert {intel_id: fresh.unseal(intel_id, **IU).name for intel_id in ids} == ids
    assert fresh.seal("sub-0", source("Person 0"), RECEIVED) in ids  # the lookup secret is the same one
    with pytest.raises(SealedStoreError, match="store KEK"):
        backend.open(keys=replace(load_unseal_keys(backend.settings()), kek=old))
    assert fresh.verify_audit().ok


@pytest.mark.kafka
def test_audit_key_rotation_checkpoints_the_chain_and_retires_the_old_key(backend: Backend,
                                                                          anchored_settings: SanitiserSettings) -> None:
    """After rotating the audit key the file holds only the new key, the chain (old entries included)
    verifies, new entries are MACed with the new key, the old key no longer opens the store, and an edit to
    an entry from before the rotation is still detected."""
    store = backend.open()
    intel_id = store.seal("sub-1", source("Person 1"), RECEIVED)
    store.unseal(intel_id, **IU)
    old = Keyring.load(key_path(backend.settings(), AUDIT))

    new_id = rotate_audit(anchored_settings)

    assert Keyring.load(key_path(backend.settings(), AUDIT)).keys.keys() == {new_id}
    fresh = backend.open()
    fresh.unseal(intel_id, **IU)
    assert fresh.verify_audit().ok and fresh.verify_audit().entries == 3
    with pytest.raises(SealedStoreError, match="audit key"):
        backend.open(keys=replace(load_unseal_keys(backend.settings()), audit=old))
    with pytest.raises(SealedStoreError):  # a process still on the old key audits nothing (fails closed)
        store.unseal(intel_id, **IU)
    backend.drop_guards()
    backend.sql("UPDATE sealed_audit SET reason = 'nothing to see here, move along' WHERE seq = 1")
    result = fresh.verify_audit()
    assert not result.ok and "before the audit key checkpoint" in str(result.problem)


def test_unseal_rotation_reseals_records_and_held_intel_then_retires_the_old_key(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """Rotating the unseal key with no grace re-seals every record and the held intel waiting for review to
    the new key, then removes the old private key: records and held intel open with the new key, and the
    old key opens neither them nor a record sealed after."""
    names = topic_factory(HELD, AUDIT_TOPIC)
    settings = key_settings(tmp_path, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    keys = load_unseal_keys(settings)
    old = keys.unseal_private
    assert old is not None
    from services.sanitiser.worker import open_store

    store = open_store(settings, keys)
    intel_id = store.seal("sub-1", source("Person 1"), RECEIVED)
    store.close()
    from services.sanitiser.domain import load_scrub_config, sanitise

    held_intel = sanitise(submission("Contact dock.owner@example.org about the van."), source("Person 1"),
                          intel_id=intel_id, received_on=RECEIVED, config=load_scrub_config())
    record = hold(held_intel, assess_residual_risk(held_intel), old.recipient())
    produce(kafka_bootstrap, names[HELD.name], encode(record), intel_id.encode())

    new_id = rotate_unseal(settings, grace=timedelta(0))

    now = PrivateKeyring.load(key_path(settings, UNSEAL_PRIVATE))
    assert list(now.keys) == [new_id] and old.primary not in now.keys
    store = open_store(settings, load_unseal_keys(settings))
    assert store.unseal(intel_id, **IU).name == "Person 1"
    later = store.seal("sub-2", source("Person 2"), RECEIVED)
    assert store.count_sealed_under(old.primary) == 0
    store.close()
    from services.sanitiser.held_cli import held_state

    resealed = held_state(settings)[intel_id]
    assert isinstance(resealed, HeldIntel) and resealed.sealed is not None
    assert resealed.sealed.key_id == new_id and resealed.revision == record.revision
    assert "dock.owner@example.org" in open_held(resealed, now).intel.information
    with pytest.raises((EnvelopeError, KeyringError)):
        open_held(resealed, old)
    import sqlite3

    db = sqlite3.connect(settings.sealed_store.removeprefix("sqlite:///"))
    rows = dict(db.execute("SELECT intel_id, key_id FROM sealed_records").fetchall())
    db.close()
    assert rows == {intel_id: new_id, later: new_id}


def test_transport_rotation_keeps_the_old_private_key_until_the_topics_have_expired(tmp_path: Path) -> None:
    """Rotating the transport key gives the edge a new public key at once; the old private key stays,
    marked for retirement after the received/accepted retention (7 days) and a day, so what is on those
    topics still opens; once that date has passed `retire` removes it and what it sealed opens no more."""
    settings = key_settings(tmp_path)
    before = received_record(Submission.model_validate(submission("A van outside the school.").model_dump()),
                             load_edge_keys(settings))
    old_id = load_intake_keys(settings).primary

    new_id = rotate_transport(settings)

    assert load_edge_keys(settings).key_id == new_id != old_id
    kept = PrivateKeyring.load(key_path(settings, TRANSPORT_PRIVATE))
    retire_after = kept.keys[old_id].retire_after
    assert kept.primary == new_id and retire_after is not None
    assert timedelta(days=7) < retire_after - datetime.now(UTC) <= timedelta(days=8)
    assert retire_transport(settings) == []
    intake = load_intake_keys(settings)
    assert open_sealed(before.sealed_submission, before.submission_id.encode(), intake)
    after = received_record(Submission.model_validate(submission("A van outside the school.").model_dump()),
                             load_edge_keys(settings))
    assert after.sealed_submission.key_id == new_id
    with pytest.raises(EnvelopeError):  # the old key opens nothing sealed after the rotation
        open_sealed(after.sealed_submission, after.submission_id.encode(),
                    PrivateKeyring("transport", new_id, {new_id: kept.keys[old_id]}))

    due = PrivateKeyring("transport", kept.primary, {**kept.keys, old_id: replace(
        kept.keys[old_id], retire_after=datetime.now(UTC) - timedelta(seconds=1))})
    due.save(key_path(settings, TRANSPORT_PRIVATE))
    assert retire_transport(settings) == [old_id]
    assert list(PrivateKeyring.load(key_path(settings, TRANSPORT_PRIVATE)).keys) == [new_id]
    with pytest.raises(KeyringError):
        open_sealed(before.sealed_submission, before.submission_id.encode(), load_intake_keys(settings))
    assert json.loads(load_edge_keys(settings).to_json())["key_id"] == new_id
