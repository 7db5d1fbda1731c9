"""Envelope encryption (AES-256-GCM): a fresh data key per value, wrapped by a key-encryption key.

One implementation for the whole pipeline: intake field-encrypts `source` with it before anything
reaches Kafka, and the sealed store keeps provenance with it at rest. The associated data binds a
ciphertext to the id it belongs to, so an envelope moved to another record does not open.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import SealedEnvelope
from services.common.errors import CpiError

log = structlog.get_logger(__name__)

_NONCE_BYTES = 12  # 96-bit random nonces: every key encrypts one value, so a nonce never repeats


class EnvelopeError(CpiError):
    """An envelope could not be opened: wrong key, tampered bytes or wrong associated data."""


class KeyringError(CpiError):
    """The keyring file is missing, malformed or lacks a key an envelope names."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Keyring:
    """Key-encryption keys by id; `primary` wraps new data keys, the others still unwrap old ones."""

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
        """Write durably with mode 0600. With `only_if_absent`, never replace an existing keyring
        (several processes starting together must all end up with the same keys); False if one existed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # O_CREAT's mode does not apply to a leftover temp file, so set it explicitly.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.to_json())
            # A keyring lost to a crash loses every record sealed under it: make it durable first.
            handle.flush()
            os.fsync(handle.fileno())
        if not only_if_absent:
            tmp.replace(path)
            return True
        try:
            os.link(tmp, path)  # atomic, and fails if another process created the keyring first
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            return cls.from_json(path.read_text())
        except FileNotFoundError:
            raise KeyringError(f"no keyring at {path}") from None

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """Load the keyring; on first local run create one, loudly, since real deployments mount theirs."""
        if path.exists():
            return cls.load(path)
        keyring = cls.generate()
        if not keyring.save(path, only_if_absent=True):
            return cls.load(path)  # another process won the race: use its keys
        log.warning(
            "keyring_generated",
            path=str(path),
            advice="generated a local key-encryption key; mount a managed keyring in deployments",
        )
        return keyring


def seal(plaintext: bytes, associated_data: bytes, keyring: Keyring) -> SealedEnvelope:
    """Encrypt with a fresh data key; wrap that key with the primary key-encryption key."""
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
    return SealedEnvelope(
        key_id=keyring.primary,
        wrapped_key=_b64(_wrap(data_key, keyring.primary, keyring)),
        nonce=_b64(nonce),
        ciphertext=_b64(ciphertext),
    )


def open_envelope(envelope: SealedEnvelope, associated_data: bytes, keyring: Keyring) -> bytes:
    """Decrypt; any change to key, nonce, ciphertext, tag or associated data raises EnvelopeError."""
    try:
        data_key = _unwrap(_unb64(envelope.wrapped_key), envelope.key_id, keyring)
        return AESGCM(data_key).decrypt(_unb64(envelope.nonce), _unb64(envelope.ciphertext), associated_data)
    except (InvalidTag, ValueError):
        raise EnvelopeError("envelope does not open: tampered, or sealed for another record") from None


def rewrap(envelope: SealedEnvelope, keyring: Keyring) -> SealedEnvelope:
    """Re-wrap the data key under the primary key; the ciphertext is left untouched."""
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
