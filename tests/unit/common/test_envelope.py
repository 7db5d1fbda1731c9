"""Envelope encryption: a per-value AES-256-GCM data key, wrapped by a symmetric key-encryption key or
sealed with HPKE (ML-KEM-768 + X25519) to a public key."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import EnvelopeAlg, SealedEnvelope
from services.common.envelope import (
    EnvelopeError,
    Keyring,
    KeyringError,
    PrivateKeyring,
    RecipientKey,
    open_envelope,
    open_sealed,
    reseal,
    rewrap,
    seal,
    seal_to,
)
from services.common.errors import CpiError

PLAINTEXT = b'{"name": "Ada Canary", "email": "ada@example.org"}'
AAD = b"intel-0001"


def flip_bit(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 0x80
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate()


def test_round_trip(keyring: Keyring) -> None:
    """What is sealed opens to the same bytes, under the primary key's id."""
    envelope = seal(PLAINTEXT, AAD, keyring)

    assert envelope.key_id == keyring.primary
    assert open_envelope(envelope, AAD, keyring) == PLAINTEXT


def test_every_seal_uses_a_fresh_data_key_and_nonce(keyring: Keyring) -> None:
    """Sealing the same value twice gives unrelated wrapped keys, nonces and ciphertexts."""
    first, second = seal(PLAINTEXT, AAD, keyring), seal(PLAINTEXT, AAD, keyring)

    assert first.wrapped_key != second.wrapped_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_plaintext_is_not_visible_in_the_envelope(keyring: Keyring) -> None:
    """Nothing of the plaintext appears in the serialised envelope."""
    text = seal(PLAINTEXT, AAD, keyring).model_dump_json()

    assert "Ada Canary" not in text
    assert "Ada Canary" not in base64.b64decode(json.loads(text)["ciphertext"]).decode("latin-1")


@pytest.mark.parametrize(
    ("field", "index"),
    [
        ("ciphertext", 0),  # the encrypted body
        ("ciphertext", -1),  # the GCM tag (last 16 bytes)
        ("nonce", 0),
        ("wrapped_key", 0),  # the wrapping nonce
        ("wrapped_key", 20),  # the wrapped data key
        ("wrapped_key", -1),  # the wrapping tag
    ],
)
def test_any_tampered_part_does_not_open(keyring: Keyring, field: str, index: int) -> None:
    """One flipped bit anywhere in the envelope makes opening fail with EnvelopeError."""
    envelope = seal(PLAINTEXT, AAD, keyring)
    tampered = envelope.model_copy(update={field: flip_bit(getattr(envelope, field), index)})

    with pytest.raises(EnvelopeError):
        open_envelope(tampered, AAD, keyring)


def test_truncated_or_non_base64_parts_do_not_open(keyring: Keyring) -> None:
    """Malformed parts (cut short, not base64) raise EnvelopeError, not a crypto library error."""
    envelope = seal(PLAINTEXT, AAD, keyring)

    for change in ({"ciphertext": "AAAA"}, {"nonce": "!!not-base64!!"}, {"wrapped_key": "AAAA"}):
        with pytest.raises(EnvelopeError):
            open_envelope(envelope.model_copy(update=change), AAD, keyring)


def test_wrong_associated_data_does_not_open(keyring: Keyring) -> None:
    """An envelope sealed for one record does not open as another record's."""
    envelope = seal(PLAINTEXT, AAD, keyring)

    with pytest.raises(EnvelopeError):
        open_envelope(envelope, b"intel-0002", keyring)
    with pytest.raises(EnvelopeError):
        open_envelope(envelope, b"", keyring)


def test_relabelled_key_id_does_not_open(keyring: Keyring) -> None:
    """A wrapped key relabelled with another existing key's id does not unwrap (the id is bound)."""
    rotated = keyring.with_new_primary("kek-2")
    envelope = seal(PLAINTEXT, AAD, rotated)

    with pytest.raises(EnvelopeError):
        open_envelope(envelope.model_copy(update={"key_id": "kek-1"}), AAD, rotated)


def test_unknown_key_id_is_a_keyring_error(keyring: Keyring) -> None:
    """An envelope naming a key the keyring lacks raises KeyringError (a CpiError)."""
    envelope = seal(PLAINTEXT, AAD, keyring.with_new_primary("kek-9"))

    with pytest.raises(KeyringError):
        open_envelope(envelope, AAD, keyring)
    assert issubclass(KeyringError, CpiError) and issubclass(EnvelopeError, CpiError)


def test_another_keyring_does_not_open(keyring: Keyring) -> None:
    """A keyring with the same key id but different key material does not open the envelope."""
    envelope = seal(PLAINTEXT, AAD, keyring)

    with pytest.raises(EnvelopeError):
        open_envelope(envelope, AAD, Keyring.generate())


def test_rewrap_changes_only_the_key_wrapping(keyring: Keyring) -> None:
    """Rewrap moves the data key under the new primary; nonce and ciphertext are untouched and the
    result opens with the new keyring."""
    envelope = seal(PLAINTEXT, AAD, keyring)
    rotated = keyring.with_new_primary("kek-2")

    moved = rewrap(envelope, rotated)

    assert (moved.key_id, moved.nonce, moved.ciphertext) == ("kek-2", envelope.nonce, envelope.ciphertext)
    assert moved.wrapped_key != envelope.wrapped_key
    assert open_envelope(moved, AAD, rotated) == PLAINTEXT
    assert open_envelope(envelope, AAD, rotated) == PLAINTEXT  # old envelopes still open


def test_rewrap_of_a_tampered_key_fails(keyring: Keyring) -> None:
    """A wrapped key that does not unwrap cannot be re-wrapped."""
    envelope = seal(PLAINTEXT, AAD, keyring)
    tampered = envelope.model_copy(update={"wrapped_key": flip_bit(envelope.wrapped_key, 20)})

    with pytest.raises(EnvelopeError):
        rewrap(tampered, keyring.with_new_primary("kek-2"))


def test_keyring_rules() -> None:
    """A primary must be one of the keys, keys must be 32 bytes, and key ids are not reused."""
    with pytest.raises(KeyringError):
        Keyring(primary="missing", keys={"kek-1": b"\0" * 32})
    with pytest.raises(KeyringError):
        Keyring(primary="kek-1", keys={"kek-1": b"\0" * 16})
    with pytest.raises(KeyringError):
        Keyring.generate("kek-1").with_new_primary("kek-1")


def test_keyring_save_and_load(tmp_path: Path, keyring: Keyring) -> None:
    """A saved keyring loads back identical; the file is readable by its owner only (0600)."""
    path = tmp_path / "keys" / "keyring.json"
    rotated = keyring.with_new_primary("kek-2")

    rotated.save(path)

    assert Keyring.load(path) == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.with_suffix(".tmp").exists()


def test_keyring_file_stays_0600_over_a_stale_temp_file(tmp_path: Path, keyring: Keyring) -> None:
    """A leftover world-readable temp file does not make the saved keyring world-readable."""
    path = tmp_path / "keyring.json"
    stale = path.with_suffix(".tmp")
    stale.write_text("junk")
    stale.chmod(0o644)

    keyring.save(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"primary": "k"}',
        '{"primary": "k", "keys": {"k": "!!"}}',
        '{"primary": "k", "keys": []}',
    ],
)
def test_malformed_keyring_is_a_keyring_error(tmp_path: Path, text: str) -> None:
    """A malformed keyring file raises KeyringError without echoing key material."""
    path = tmp_path / "keyring.json"
    path.write_text(text)

    with pytest.raises(KeyringError):
        Keyring.load(path)


def test_missing_keyring_is_a_keyring_error(tmp_path: Path) -> None:
    """Loading a keyring that is not there raises KeyringError."""
    with pytest.raises(KeyringError):
        Keyring.load(tmp_path / "absent.json")


def test_envelope_is_the_contract_model(keyring: Keyring) -> None:
    """seal returns the schemas.SealedEnvelope contract, which round-trips through JSON."""
    envelope = seal(PLAINTEXT, AAD, keyring)

    assert isinstance(envelope, SealedEnvelope)
    assert (
        open_envelope(SealedEnvelope.model_validate_json(envelope.model_dump_json()), AAD, keyring)
        == PLAINTEXT
    )


# -- sealed to a public key (HPKE) ---------------------------------------------------------------


@pytest.fixture
def pair() -> PrivateKeyring:
    return PrivateKeyring.generate("transport")


def test_hpke_round_trip_opens_only_with_the_private_key(pair: PrivateKeyring) -> None:
    """What is sealed to the public key opens with the private key, under the primary's id, as HPKE."""
    envelope = seal_to(PLAINTEXT, AAD, pair.recipient())

    assert (envelope.alg, envelope.key_id) == (EnvelopeAlg.HPKE, pair.primary)
    assert open_sealed(envelope, AAD, pair) == PLAINTEXT
    assert b"Ada Canary" not in envelope.model_dump_json().encode()


@pytest.mark.parametrize("part", ["wrapped_key", "nonce", "ciphertext"])
@pytest.mark.parametrize("index", [0, -1])
def test_hpke_envelope_tampering_is_detected(pair: PrivateKeyring, part: str, index: int) -> None:
    """A flipped bit at either end of the sealed key (encapsulation, tag), nonce or ciphertext fails."""
    envelope = seal_to(PLAINTEXT, AAD, pair.recipient())
    tampered = envelope.model_copy(update={part: flip_bit(getattr(envelope, part), index)})

    with pytest.raises(EnvelopeError):
        open_sealed(tampered, AAD, pair)


def test_hpke_envelope_is_bound_to_its_record_key_and_purpose(pair: PrivateKeyring) -> None:
    """Another record's id, another key pair, a relabelled key id or the same key material under another
    purpose does not open the envelope."""
    envelope = seal_to(PLAINTEXT, AAD, pair.recipient())
    two = pair.with_new_primary(datetime.now(UTC) + timedelta(days=1))
    same_material_other_purpose = PrivateKeyring("unseal", pair.primary, pair.keys)

    with pytest.raises(EnvelopeError):
        open_sealed(envelope, b"intel-0002", pair)
    with pytest.raises(KeyringError):
        open_sealed(envelope, AAD, PrivateKeyring.generate("transport"))
    with pytest.raises(EnvelopeError):
        open_sealed(envelope.model_copy(update={"key_id": two.primary}), AAD, two)
    with pytest.raises(EnvelopeError):
        open_sealed(envelope, AAD, same_material_other_purpose)


def test_the_two_wrappings_are_not_interchangeable(pair: PrivateKeyring, keyring: Keyring) -> None:
    """An envelope sealed to a public key is refused by the symmetric opener and the other way round."""
    with pytest.raises(EnvelopeError):
        open_envelope(seal_to(PLAINTEXT, AAD, pair.recipient()), AAD, keyring)
    with pytest.raises(EnvelopeError):
        open_sealed(seal(PLAINTEXT, AAD, keyring), AAD, pair)


def test_reseal_moves_the_data_key_to_the_new_primary_only(pair: PrivateKeyring) -> None:
    """Re-sealing keeps the ciphertext, names the new primary, and then opens without the old key."""
    envelope = seal_to(PLAINTEXT, AAD, pair.recipient())
    two = pair.with_new_primary(datetime.now(UTC))

    moved = reseal(envelope, AAD, two)

    assert (moved.nonce, moved.ciphertext) == (envelope.nonce, envelope.ciphertext)
    assert moved.key_id == two.primary != pair.primary
    assert two.due(datetime.now(UTC)) == [pair.primary]
    assert open_sealed(moved, AAD, two.without([pair.primary])) == PLAINTEXT


def test_key_files_round_trip_and_the_public_file_holds_no_private_key(tmp_path: Path,
                                                                      pair: PrivateKeyring) -> None:
    """Private and public key files load back the same keys, 0600; the public file has no private part and
    a private file is refused where a public key is expected."""
    private_path, public_path = tmp_path / "k" / "p.json", tmp_path / "k" / "pub.json"
    pair.save(private_path)
    pair.recipient().save(public_path)

    assert PrivateKeyring.load(private_path) == pair
    assert RecipientKey.load(public_path) == pair.recipient()
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_path.parent.stat().st_mode) == 0o700
    public_text = public_path.read_text()
    for key in pair.keys.values():
        assert base64.b64encode(key.mlkem768_seed).decode() not in public_text
        assert base64.b64encode(key.x25519).decode() not in public_text
    with pytest.raises(KeyringError):
        RecipientKey.load(private_path)
