"""The must-show of issue 11: the public edge holds no key that opens a received, accepted, sealed or held
record.

Real records, made by the real code on the real broker: a submission goes through the edge's `Intake`
(its settings, its keys as it loads them, a Kafka publisher) onto the received topic; the intake worker's
handler, with its own key, makes the accepted record; the sanitiser's handler, with its own keys and a
real sealed store, seals the provenance and holds a second submission for review. Then the edge's whole
estate, as a deployment gives it (its settings and the one key file its pod mounts, plus its own CSRF
secret), is turned into every key it could make, and each is tried against every record.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas import AcceptedSubmission, Channel, EnvelopeAlg, HeldIntel, ReceivedSubmission, SealedEnvelope
from schemas.topics import ACCEPTED, HELD, RECEIVED, SANITISED
from services.common.envelope import (
    EnvelopeError,
    Keyring,
    KeyringError,
    PrivateKey,
    PrivateKeyring,
    RecipientKey,
    open_envelope,
    open_sealed,
)
from services.common.keys import (
    key_path,
    keys_of,
    load_edge_keys,
    load_intake_keys,
    load_sanitiser_keys,
    load_unseal_keys,
)
from services.common.serde import encode
from services.common.settings import IntakeSettings
from services.intake.idempotency import IdempotencyStore, idempotency_path
from services.intake.protection import edge_secret
from services.intake.receiving import Intake, KafkaPublisher
from services.intake.worker import make_handler as intake_handler
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.domain import load_scrub_config
from services.sanitiser.held import open_held
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD
from services.sanitiser.worker import make_handler as sanitiser_handler
from tests.kafka_helpers import produce, read_all
from tests.key_helpers import key_settings

CANARY = "Ottoline Fernhallow-Canary"
SUBMISSION: dict[str, Any] = {
    "source": {"name": CANARY, "role": "School nurse", "organisation": "Fernhallow Canary School",
               "organisation_type": "education", "email": "ofc.canary@school.example", "phone": "01632 960 123"},
    "lawful_basis": "safeguarding", "urgency": {"immediate_risk": False, "crime_in_progress": False},
    "categories": ["modern_slavery"], "how_known": "witnessed_directly",
    "information": "Six men live above the car wash on Dock Street; they say their boss keeps their passports.",
}
HELD_SUBMISSION = {**SUBMISSION, "information": SUBMISSION["information"] + " For more, ask dock.owner@example.org."}


@pytest.fixture
def records(kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]],
            tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Each kind of record, made by the real code; and the edge pod's settings, holding only its mounts."""
    names = topic_factory(RECEIVED, ACCEPTED, SANITISED, HELD)
    pipeline = key_settings(tmp_path / "pipeline", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    # The edge pod: its own data folder, and only the key files its manifest mounts; nothing is created.
    edge_dir = tmp_path / "edge"
    (edge_dir / "keys").mkdir(parents=True)
    for spec in keys_of("edge"):
        shutil.copy(key_path(pipeline, spec), edge_dir / "keys" / spec.filename)
    edge = IntakeSettings(data_dir=edge_dir, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix,
                          create_missing_keys=False)

    async def through_the_edge() -> None:
        intake = Intake(transport_key=load_edge_keys(edge), publisher=KafkaPublisher(edge),
                        idempotency=IdempotencyStore(idempotency_path(edge)), secret=edge_secret(edge))
        await intake.publisher.start()
        try:
            for body in (SUBMISSION, HELD_SUBMISSION):
                assert (await intake.receive(body, Channel.API, "partner-under-test")).status == 202
        finally:
            await intake.publisher.stop()
            intake.idempotency.close()

    asyncio.run(through_the_edge())
    received = [ReceivedSubmission.model_validate_json(r.value)
                for r in read_all(kafka_bootstrap, names[RECEIVED.name])]
    assert len(received) == 2

    intake = intake_handler(load_intake_keys(pipeline))
    accepted = []
    for record in received:
        [out] = asyncio.run(intake(encode(record)))
        produce(kafka_bootstrap, names[out.topic.name], out.value, out.key)
        accepted.append(AcceptedSubmission.model_validate_json(out.value))

    sanitiser = load_sanitiser_keys(pipeline)
    assert sanitiser.store.unseal_public is not None
    store = open_sealed_store(pipeline.sealed_store, sanitiser.store)
    handle = sanitiser_handler(sanitiser.transport, sanitiser.store.unseal_public, store, load_scrub_config(),
                               DEFAULT_HOLD_THRESHOLD)
    held = []
    for record in accepted:
        [out] = asyncio.run(handle(encode(record)))
        produce(kafka_bootstrap, names[out.topic.name], out.value, out.key)
        if out.topic is HELD:
            held.append(HeldIntel.model_validate_json(out.value))
    store.close()
    assert len(held) == 1
    db = sqlite3.connect(pipeline.sealed_store.removeprefix("sqlite:///"))
    sealed_rows = db.execute("SELECT intel_id, key_id, wrapped_key, nonce, ciphertext FROM sealed_records").fetchall()
    db.close()
    assert len(sealed_rows) == 2
    sealed = [(intel_id.encode(), SealedEnvelope(alg=EnvelopeAlg.HPKE, key_id=k, wrapped_key=w, nonce=n, ciphertext=c))
              for intel_id, k, w, n, c in sealed_rows]
    yield {"pipeline": pipeline, "edge": edge, "edge_dir": edge_dir, "received": received, "accepted": accepted,
           "sealed": sealed, "held": held}


def _byte_strings(value: Any) -> Iterator[bytes]:
    """Every byte string a file's content could encode: the raw bytes, and each base64 or hex text in it."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _byte_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _byte_strings(item)
    elif isinstance(value, str):
        yield value.encode()
        for decode in (lambda t: base64.b64decode(t, validate=True), bytes.fromhex):
            try:
                yield decode(value.strip())
            except (binascii.Error, ValueError):
                pass


def everything_the_edge_has(edge: IntakeSettings, edge_dir: Path) -> list[bytes]:
    """The edge's loaded key, its own secret, and every byte string in every file of its data folder."""
    transport = load_edge_keys(edge)
    found = [transport.mlkem768, transport.x25519, edge_secret(edge)]
    for path in edge_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            found.append(raw)
            try:
                found += list(_byte_strings(json.loads(raw)))
            except ValueError:
                found += list(_byte_strings(raw.decode(errors="ignore")))
    return [b for b in found if b]


def pieces(material: list[bytes], size: int) -> set[bytes]:
    """Every `size`-byte piece of the material, aligned to either end, and each item's SHA-256 (or its
    SHA-512, for 64 bytes)."""
    digest = hashlib.sha256 if size == 32 else hashlib.sha512
    found = {digest(item).digest() for item in material}
    for item in material:
        found.update(item[i:i + size] for i in range(0, len(item) - size + 1, size))
        found.update(item[i:i + size] for i in range(len(item) % size, len(item) - size + 1, size))
    return found


def private_halves_found(material: list[bytes], publics: list[RecipientKey]) -> list[str]:
    """Which private half of which real public key the material holds: any 32-byte piece that is the X25519
    private key of one, any 64-byte piece that is the ML-KEM-768 seed of one. HPKE's hybrid KEM needs both."""
    x25519s = {key.x25519: key.key_id for key in publics}
    mlkems = {key.mlkem768: key.key_id for key in publics}
    found = [f"x25519 of {x25519s[pub]}" for k in pieces(material, 32)
             if (pub := X25519PrivateKey.from_private_bytes(k).public_key().public_bytes_raw()) in x25519s]
    found += [f"ML-KEM of {mlkems[pub]}" for seed in pieces(material, 64)
              if (pub := MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()) in mlkems]
    return found


def attempts(material: list[bytes], files: list[Path]) -> list[Callable[[SealedEnvelope, bytes], bytes]]:
    """Every way to open an envelope with the material: each 32-byte piece as a symmetric key-encryption key
    (on the envelope relabelled as symmetrically wrapped, so AES-GCM really runs) and as the X25519 half of an
    HPKE private key (with a seed made from it) under each purpose; and any file that loads as a key file."""
    def as_kek(key: bytes) -> Callable[[SealedEnvelope, bytes], bytes]:
        return lambda e, aad: open_envelope(e.model_copy(update={"alg": EnvelopeAlg.KEK}), aad,
                                            Keyring(primary=e.key_id, keys={e.key_id: key}))

    def as_private(key: bytes, purpose: str) -> Callable[[SealedEnvelope, bytes], bytes]:
        private = PrivateKey(mlkem768_seed=hashlib.sha512(key).digest(), x25519=key)
        return lambda e, aad: open_sealed(e, aad, PrivateKeyring(purpose, e.key_id, {e.key_id: private}))

    found: list[Callable[[SealedEnvelope, bytes], bytes]] = []
    for key in sorted(pieces(material, 32)):
        found += [as_kek(key), as_private(key, "transport"), as_private(key, "unseal")]
    for path in files:
        for load in (PrivateKeyring.load, Keyring.load):
            try:
                loaded: Any = load(path)
            except (KeyringError, UnicodeDecodeError):
                continue
            opener = open_sealed if isinstance(loaded, PrivateKeyring) else open_envelope
            found.append(lambda e, aad, k=loaded, o=opener: o(e, aad, k))
    return found


def test_the_edge_can_open_no_received_accepted_sealed_or_held_record(records: dict[str, Any]) -> None:
    """Given everything the edge process has (its settings, the key it loads, every byte in its data folder),
    no way of using any of it opens a received, accepted, sealed or held record; the edge has no
    sealed-store setting; the holders of the right keys open every one of those records (so they are real)."""
    edge, edge_dir = records["edge"], records["edge_dir"]
    assert {f for f in IntakeSettings.model_fields if "sealed" in f or "store" in f} == set()
    assert sorted(p.name for p in (edge_dir / "keys").iterdir()) == ["intake-edge.secret", "transport.public.json"]
    with pytest.raises(KeyringError):  # the one key file it has is a public key: there is no private key in it
        PrivateKeyring.load(edge_dir / "keys" / "transport.public.json")

    targets: list[tuple[str, SealedEnvelope, bytes]] = []
    targets += [("received", r.sealed_submission, r.submission_id.encode()) for r in records["received"]]
    targets += [("accepted", r.sealed_submission, r.submission_id.encode()) for r in records["accepted"]]
    targets += [("sealed", envelope, aad) for aad, envelope in records["sealed"]]
    targets += [("held", r.sealed, r.intel_id.encode()) for r in records["held"]]
    material = everything_the_edge_has(edge, edge_dir)
    pipeline = records["pipeline"]
    transport, unseal = load_intake_keys(pipeline), load_unseal_keys(pipeline).unseal_private
    assert unseal is not None
    assert private_halves_found(material, [transport.recipient(), unseal.recipient()]) == []
    tried = attempts(material, [p for p in edge_dir.rglob("*") if p.is_file()])
    assert len(tried) > 100, "the edge's material gave too few keys for the test to mean much"
    for kind, envelope, aad in targets:
        for attempt in tried:
            with pytest.raises((EnvelopeError, KeyringError)):
                opened = attempt(envelope, aad)
                pytest.fail(f"something the edge has opened a {kind} record: {opened[:20]!r}")

    # The same records open for their real holders: the intake worker, and the unseal path.
    for kind, envelope, aad in targets:
        opened = open_sealed(envelope, aad, transport if kind in ("received", "accepted") else unseal)
        assert CANARY.encode() in opened or b"Dock Street" in opened
    assert "dock.owner@example.org" in open_held(records["held"][0], unseal).intel.information


def test_the_sanitisers_keys_cannot_open_what_it_sealed(records: dict[str, Any]) -> None:
    """The sanitiser, which seals provenance and held intel, holds no key that opens them: its transport
    private key, store KEK and audit key (as every 32-byte key they give, and the transport key as it is)
    open no sealed or held record; its store object refuses to unseal, and the refusal is audited."""
    pipeline = records["pipeline"]
    sanitiser = load_sanitiser_keys(pipeline)
    kek, audit = sanitiser.store.kek, sanitiser.store.audit
    material = [kek.keys[kek.primary], audit.keys[audit.primary]]
    for key in sanitiser.transport.keys.values():
        material += [key.mlkem768_seed, key.x25519]
    targets = [(e, aad) for aad, e in records["sealed"]] + [(r.sealed, r.intel_id.encode()) for r in records["held"]]
    unseal = load_unseal_keys(pipeline).unseal_private
    assert unseal is not None
    assert private_halves_found(material, [unseal.recipient()]) == []
    transport_key = next(iter(sanitiser.transport.keys.values()))
    tried = attempts(material, [key_path(pipeline, spec) for spec in keys_of("sanitiser")])
    for envelope, aad in targets:
        with pytest.raises((EnvelopeError, KeyringError)):
            open_sealed(envelope, aad, sanitiser.transport)
        with pytest.raises(EnvelopeError):  # its transport key, used as if it were the unseal key
            open_sealed(envelope, aad, PrivateKeyring("unseal", envelope.key_id, {envelope.key_id: transport_key}))
        for attempt in tried:
            with pytest.raises((EnvelopeError, KeyringError)):
                attempt(envelope, aad)

    from services.sanitiser.adapters import UnsealDenied

    intel_id = records["sealed"][0][0].decode()
    officer = {"role": "intelligence_unit", "officer_id": "IU-1", "reason": "Re-contact the source about new risk."}
    worker_store = open_sealed_store(pipeline.sealed_store, sanitiser.store)
    with pytest.raises(UnsealDenied) as refused:
        worker_store.unseal(intel_id, **officer)
    worker_store.close()
    assert refused.value.code == "no_unseal_key"
    unseal_store = open_sealed_store(pipeline.sealed_store, load_unseal_keys(pipeline))
    assert unseal_store.unseal(intel_id, **officer).name == CANARY
    assert unseal_store.verify_audit().ok
    unseal_store.close()
    db = sqlite3.connect(pipeline.sealed_store.removeprefix("sqlite:///"))
    results = [row[0] for row in db.execute("SELECT result FROM sealed_audit WHERE action = 'unseal' ORDER BY seq")]
    db.close()
    # The worker's refusal is logged, not audited: it holds no audit-signing key, so its entry would not verify.
    assert results == ["granted"]
