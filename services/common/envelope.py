"""Envelope encryption: a fresh AES-256-GCM data key per value, the data key sealed for its reader.

Two ways to seal the data key, one envelope shape (`schemas.SealedEnvelope`, `alg` says which):

- `seal_to` / `open_sealed`: HPKE (RFC 9180, base mode) to a public key, with the hybrid
  ML-KEM-768 + X25519 KEM, HKDF-SHA256 and AES-256-GCM. A process that only seals holds only the
  public key (the edge seals submissions to the transport key; the sanitiser seals provenance and
  held intel to the unseal key) and cannot open what it sealed. Hybrid, because sources are kept for
  years: a recording of today's ciphertexts must stay closed to a future quantum computer
  (ML-KEM) and to a flaw found in ML-KEM (X25519).
- `seal` / `open_envelope`: AES-256-GCM under a symmetric key-encryption key (`Keyring`), for what a
  component keeps for itself (the sealed store's lookup secret under the store KEK).

The associated data binds a ciphertext to the id it belongs to, so an envelope moved to another
record does not open; HPKE's `info` binds the data key to its purpose, key id and that id as well.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import EnvelopeAlg, SealedEnvelope
from services.common.errors import CpiError
from services.common.files import private_dir

log = structlog.get_logger(__name__)

_NONCE_BYTES = 12  # 96-bit random nonces: every key encrypts one value, so a nonce never repeats
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class EnvelopeError(CpiError):
    """An envelope could not be opened: wrong key, tampered bytes or wrong associated data."""


class KeyringError(CpiError):
    """A key file is missing, malformed or lacks a key an envelope names."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def new_key_id(purpose: str) -> str:
    """A key id that says what the key is for and when it was made, unique without a counter."""
    return f"{purpose}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def write_key_file(path: Path, text: str, *, only_if_absent: bool = False) -> bool:
    """Write durably with mode 0600 in a 0700 folder. With `only_if_absent`, never replace an existing
    file (several processes starting together must all end up with the same keys); False if one existed."""
    private_dir(path.parent)  # mkdir's mode would be masked by the umask, and an existing folder kept as it is
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode does not apply to a leftover temp file, so set it explicitly.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        # A key lost to a crash loses every record sealed under it: make it durable first.
        handle.flush()
        os.fsync(handle.fileno())
    if not only_if_absent:
        tmp.replace(path)
        return True
    try:
        os.link(tmp, path)  # atomic, and fails if another process created the file first
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KeyringError(f"no key file at {path}") from None


@dataclass(frozen=True)
class Keyring:
    """Symmetric 32-byte keys by id; `primary` is used for new values, the others only until retired."""

    primary: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyringError(f"primary key {self.primary!r} is not in the keyring")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} must be 32 bytes (AES-256)")

    @classmethod
    def generate(cls, key_id: str = "kek-1") -> Keyring:
        return cls(primary=key_id, keys={key_id: AESGCM.generate_key(bit_length=256)})

    def with_new_primary(self, key_id: str) -> Keyring:
        if key_id in self.keys:
            raise KeyringError(f"key id {key_id!r} already exists")
        return Keyring(primary=key_id, keys={**self.keys, key_id: AESGCM.generate_key(bit_length=256)})

    def only_primary(self) -> Keyring:
        """The keyring with every key but the primary retired."""
        return Keyring(primary=self.primary, keys={self.primary: self.keys[self.primary]})

    def to_json(self) -> str:
        return json.dumps({"primary": self.primary, "keys": {k: _b64(v) for k, v in self.keys.items()}})

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            data = json.loads(text)
            return cls(primary=data["primary"], keys={k: _unb64(v) for k, v in data["keys"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyringError(f"keyring is malformed: {type(exc).__name__}") from None

    def save(self, path: Path, *, only_if_absent: bool = False) -> bool:
        """Write durably with mode 0600 (see `write_key_file`)."""
        return write_key_file(path, self.to_json(), only_if_absent=only_if_absent)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        return cls.from_json(_read_key_file(path))


@dataclass(frozen=True)
class RecipientKey:
    """A public key to seal to (HPKE, ML-KEM-768 + X25519): sealing with it opens nothing."""

    purpose: str
    key_id: str
    mlkem768: bytes
    x25519: bytes
    public: hpke.MLKEM768X25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            public = hpke.MLKEM768X25519PublicKey(mlkem.MLKEM768PublicKey.from_public_bytes(self.mlkem768),
                                                  x25519.X25519PublicKey.from_public_bytes(self.x25519))
        except ValueError:
            raise KeyringError(f"public key {self.key_id!r} is malformed") from None
        object.__setattr__(self, "public", public)

    def to_json(self) -> str:
        return json.dumps({"purpose": self.purpose, "key_id": self.key_id, "kem": "MLKEM768-X25519",
                           "mlkem768": _b64(self.mlkem768), "x25519": _b64(self.x25519)})

    @classmethod
    def from_json(cls, text: str) -> RecipientKey:
        try:
            data = json.loads(text)
            if "mlkem768_seed" in data or "keys" in data:
                raise KeyringError("this file holds private keys, not a public key")
            return cls(purpose=data["purpose"], key_id=data["key_id"], mlkem768=_unb64(data["mlkem768"]),
                       x25519=_unb64(data["x25519"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyringError(f"public key file is malformed: {type(exc).__name__}") from None

    def save(self, path: Path, *, only_if_absent: bool = False) -> bool:
        return write_key_file(path, self.to_json(), only_if_absent=only_if_absent)

    @classmethod
    def load(cls, path: Path) -> RecipientKey:
        return cls.from_json(_read_key_file(path))


@dataclass(frozen=True)
class PrivateKey:
    """One HPKE private key: the ML-KEM-768 seed and the X25519 key, and when it is to be retired."""

    mlkem768_seed: bytes
    x25519: bytes
    retire_after: datetime | None = None

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(mlkem768_seed=mlkem.MLKEM768PrivateKey.generate().private_bytes_raw(),
                   x25519=x25519.X25519PrivateKey.generate().private_bytes_raw())

    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem768_seed),
                                             x25519.X25519PrivateKey.from_private_bytes(self.x25519))

    def public_parts(self) -> tuple[bytes, bytes]:
        ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(self.mlkem768_seed).public_key().public_bytes_raw()
        x = x25519.X25519PrivateKey.from_private_bytes(self.x25519).public_key().public_bytes_raw()
        return ml, x


@dataclass(frozen=True)
class PrivateKeyring:
    """The HPKE private keys of one purpose by id: `primary` is the one new values are sealed to; an
    older key stays, to open what was sealed to it, until its `retire_after` passes and it is retired."""

    purpose: str
    primary: str
    keys: dict[str, PrivateKey]

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyringError(f"primary key {self.primary!r} is not in the keyring")

    @classmethod
    def generate(cls, purpose: str) -> PrivateKeyring:
        key_id = new_key_id(purpose)
        return cls(purpose=purpose, primary=key_id, keys={key_id: PrivateKey.generate()})

    def recipient(self) -> RecipientKey:
        """The primary's public key: what this purpose's senders seal to."""
        ml, x = self.keys[self.primary].public_parts()
        return RecipientKey(purpose=self.purpose, key_id=self.primary, mlkem768=ml, x25519=x)

    def with_new_primary(self, retire_after: datetime) -> PrivateKeyring:
        """A new primary; every older key kept until `retire_after` (or its own earlier date)."""
        key_id = new_key_id(self.purpose)
        older = {k: PrivateKey(v.mlkem768_seed, v.x25519, min(retire_after, v.retire_after or retire_after))
                 for k, v in self.keys.items()}
        return PrivateKeyring(self.purpose, key_id, {**older, key_id: PrivateKey.generate()})

    def due(self, now: datetime) -> list[str]:
        """Ids of the older keys whose retirement date has come."""
        return [k for k, v in self.keys.items() if k != self.primary and v.retire_after and v.retire_after <= now]

    def without(self, key_ids: list[str]) -> PrivateKeyring:
        if self.primary in key_ids:
            raise KeyringError("the primary key cannot be retired")
        return PrivateKeyring(self.purpose, self.primary, {k: v for k, v in self.keys.items() if k not in key_ids})

    def to_json(self) -> str:
        return json.dumps({"purpose": self.purpose, "primary": self.primary, "kem": "MLKEM768-X25519", "keys": {
            k: {"mlkem768_seed": _b64(v.mlkem768_seed), "x25519": _b64(v.x25519),
                "retire_after": v.retire_after.isoformat() if v.retire_after else None}
            for k, v in self.keys.items()}})

    @classmethod
    def from_json(cls, text: str) -> PrivateKeyring:
        try:
            data = json.loads(text)
            keys = {k: PrivateKey(_unb64(v["mlkem768_seed"]), _unb64(v["x25519"]),
                                  datetime.fromisoformat(v["retire_after"]) if v.get("retire_after") else None)
                    for k, v in data["keys"].items()}
            return cls(purpose=data["purpose"], primary=data["primary"], keys=keys)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyringError(f"private key file is malformed: {type(exc).__name__}") from None

    def save(self, path: Path, *, only_if_absent: bool = False) -> bool:
        return write_key_file(path, self.to_json(), only_if_absent=only_if_absent)

    @classmethod
    def load(cls, path: Path) -> PrivateKeyring:
        return cls.from_json(_read_key_file(path))


def _info(purpose: str, key_id: str, associated_data: bytes) -> bytes:
    # HPKE's info enters the key schedule: a data key sealed for one purpose, key or record does not
    # open as another's.
    return b"cpi-envelope/2\x00" + purpose.encode() + b"\x00" + key_id.encode() + b"\x00" + associated_data


def seal_to(plaintext: bytes, associated_data: bytes, recipient: RecipientKey) -> SealedEnvelope:
    """Encrypt with a fresh data key; seal that key with HPKE to `recipient` (who alone can open it)."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return SealedEnvelope(
        alg=EnvelopeAlg.HPKE,
        key_id=recipient.key_id,
        wrapped_key=_b64(_SUITE.encrypt(data_key, recipient.public,
                                        info=_info(recipient.purpose, recipient.key_id, associated_data))),
        nonce=_b64(nonce),
        ciphertext=_b64(AESGCM(data_key).encrypt(nonce, plaintext, associated_data)),
    )


def _open_data_key(envelope: SealedEnvelope, associated_data: bytes, keyring: PrivateKeyring) -> bytes:
    if envelope.alg is not EnvelopeAlg.HPKE:
        raise EnvelopeError("envelope is not sealed to a public key")
    key = keyring.keys.get(envelope.key_id)
    if key is None:
        raise KeyringError(f"no {keyring.purpose} private key {envelope.key_id!r} (retired, or another key's)")
    try:
        return _SUITE.decrypt(_unb64(envelope.wrapped_key), key.hpke_key(),
                              info=_info(keyring.purpose, envelope.key_id, associated_data))
    except (InvalidTag, ValueError):
        raise EnvelopeError("envelope does not open: tampered, or sealed for another record") from None


def open_sealed(envelope: SealedEnvelope, associated_data: bytes, keyring: PrivateKeyring) -> bytes:
    """Decrypt an envelope sealed to one of `keyring`'s public keys; any change raises EnvelopeError."""
    data_key = _open_data_key(envelope, associated_data, keyring)
    try:
        return AESGCM(data_key).decrypt(_unb64(envelope.nonce), _unb64(envelope.ciphertext), associated_data)
    except (InvalidTag, ValueError):
        raise EnvelopeError("envelope does not open: tampered, or sealed for another record") from None


def reseal(envelope: SealedEnvelope, associated_data: bytes, keyring: PrivateKeyring) -> SealedEnvelope:
    """Seal the data key again to `keyring`'s primary; the ciphertext is left untouched."""
    data_key = _open_data_key(envelope, associated_data, keyring)
    recipient = keyring.recipient()
    wrapped = _SUITE.encrypt(data_key, recipient.public, info=_info(recipient.purpose, recipient.key_id,
                                                                    associated_data))
    return envelope.model_copy(update={"key_id": recipient.key_id, "wrapped_key": _b64(wrapped)})


def seal(plaintext: bytes, associated_data: bytes, keyring: Keyring) -> SealedEnvelope:
    """Encrypt with a fresh data key; wrap that key with the primary key-encryption key."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
    return SealedEnvelope(
        alg=EnvelopeAlg.KEK,
        key_id=keyring.primary,
        wrapped_key=_b64(_wrap(data_key, keyring.primary, keyring)),
        nonce=_b64(nonce),
        ciphertext=_b64(ciphertext),
    )


def open_envelope(envelope: SealedEnvelope, associated_data: bytes, keyring: Keyring) -> bytes:
    """Decrypt; any change to key, nonce, ciphertext, tag or associated data raises EnvelopeError."""
    if envelope.alg is not EnvelopeAlg.KEK:
        raise EnvelopeError("envelope is not wrapped by a key-encryption key")
    try:
        data_key = _unwrap(_unb64(envelope.wrapped_key), envelope.key_id, keyring)
        return AESGCM(data_key).decrypt(_unb64(envelope.nonce), _unb64(envelope.ciphertext), associated_data)
    except (InvalidTag, ValueError):
        raise EnvelopeError("envelope does not open: tampered, or sealed for another record") from None


def rewrap(envelope: SealedEnvelope, keyring: Keyring) -> SealedEnvelope:
    """Re-wrap the data key under the primary key; the ciphertext is left untouched."""
    if envelope.alg is not EnvelopeAlg.KEK:
        raise EnvelopeError("envelope is not wrapped by a key-encryption key")
    try:
        data_key = _unwrap(_unb64(envelope.wrapped_key), envelope.key_id, keyring)
    except (InvalidTag, ValueError):
        raise EnvelopeError("data key does not unwrap") from None
    return envelope.model_copy(
        update={"key_id": keyring.primary, "wrapped_key": _b64(_wrap(data_key, keyring.primary, keyring))}
    )


def _wrap(data_key: bytes, key_id: str, keyring: Keyring) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    # The key id is bound as associated data so a wrapped key cannot be relabelled.
    return nonce + AESGCM(keyring.keys[key_id]).encrypt(nonce, data_key, key_id.encode())


def _unwrap(wrapped: bytes, key_id: str, keyring: Keyring) -> bytes:
    if key_id not in keyring.keys:
        raise KeyringError(f"keyring has no key {key_id!r}")
    nonce, sealed_key = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
    return AESGCM(keyring.keys[key_id]).decrypt(nonce, sealed_key, key_id.encode())
