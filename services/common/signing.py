"""Ed25519 signing keys, for what must be checkable by someone who cannot forge it: the audit entries.

A `SigningKeyring` signs with its primary; its `verifier()` is the public half of every key in it, a
`VerifyKeys` that checks signatures and signs nothing. An older key stays in both files after a new
primary is made, so entries signed before still verify. Files are JSON, written like every key file
(0600, durable; services.common.envelope.write_key_file).
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

# The envelope's own base64 helpers: one encoding for every key file.
from services.common.envelope import KeyringError, _b64, _unb64, new_key_id, write_key_file


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyringError(f"no key file at {path}") from None
    except ValueError:
        raise KeyringError(f"{path} is not a key file (malformed JSON)") from None
    if not isinstance(data, dict):
        raise KeyringError(f"{path} is not a key file")
    return data


def _keys_of(data: dict[str, object], path: Path) -> tuple[str, str, dict[str, bytes]]:
    try:
        purpose, primary, raw = str(data["purpose"]), str(data["primary"]), data["keys"]
        assert isinstance(raw, dict)
        keys = {str(k): _unb64(v) for k, v in raw.items()}
    except (KeyError, AssertionError, TypeError, AttributeError, binascii.Error):
        raise KeyringError(f"{path} is malformed") from None
    if primary not in keys:
        raise KeyringError(f"{path}: primary key {primary!r} is not in the file")
    if any(len(key) != 32 for key in keys.values()):
        raise KeyringError(f"{path}: an Ed25519 key is 32 bytes")
    return purpose, primary, keys


@dataclass(frozen=True)
class VerifyKeys:
    """Ed25519 public keys by id: they check signatures and sign nothing."""

    purpose: str
    primary: str
    keys: dict[str, bytes]

    def verify(self, key_id: str, message: bytes, signature: str) -> bool:
        """True when `signature` (base64) is key `key_id`'s over `message`; False for an unknown key or any
        malformed signature."""
        public = self.keys.get(key_id)
        if public is None:
            return False
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(_unb64(signature), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    def to_json(self) -> str:
        return json.dumps({"purpose": self.purpose, "primary": self.primary, "alg": "Ed25519",
                           "keys": {k: _b64(v) for k, v in self.keys.items()}})

    def save(self, path: Path, *, only_if_absent: bool = False) -> bool:
        return write_key_file(path, self.to_json(), only_if_absent=only_if_absent)

    @classmethod
    def load(cls, path: Path) -> VerifyKeys:
        data = _read(path)
        if data.get("private"):
            raise KeyringError(f"{path} holds private keys, not public ones")
        return cls(*_keys_of(data, path))


@dataclass(frozen=True)
class SigningKeyring:
    """Ed25519 private keys (their 32-byte seeds) by id; `primary` signs."""

    purpose: str
    primary: str
    keys: dict[str, bytes]

    @classmethod
    def generate(cls, purpose: str) -> SigningKeyring:
        key_id = new_key_id(purpose)
        seed = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(purpose=purpose, primary=key_id, keys={key_id: seed})

    def sign(self, message: bytes) -> tuple[str, str]:
        """The primary's id and its signature (base64) over `message`."""
        private = ed25519.Ed25519PrivateKey.from_private_bytes(self.keys[self.primary])
        return self.primary, _b64(private.sign(message))

    def verifier(self) -> VerifyKeys:
        """The public half of every key here: what a verifier is given."""
        return VerifyKeys(self.purpose, self.primary, {
            key_id: ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
            for key_id, seed in self.keys.items()})

    def to_json(self) -> str:
        return json.dumps({"purpose": self.purpose, "primary": self.primary, "alg": "Ed25519", "private": True,
                           "keys": {k: _b64(v) for k, v in self.keys.items()}})

    def save(self, path: Path, *, only_if_absent: bool = False) -> bool:
        return write_key_file(path, self.to_json(), only_if_absent=only_if_absent)

    @classmethod
    def load(cls, path: Path) -> SigningKeyring:
        data = _read(path)
        if not data.get("private"):
            raise KeyringError(f"{path} holds public keys only, not a signing key")
        return cls(*_keys_of(data, path))
