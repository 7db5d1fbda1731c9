"""Partner systems on the API: each has an id and an API key; the edge keeps only each key's SHA-256.

An API key is a random 256-bit token, so a plain hash is enough (no password stretching to do), and
the file holds nothing that authenticates. Keys are compared in constant time, with every partner's
hash compared each time, so the answer's timing says nothing about which partner nearly matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import CpiError
from services.common.files import write_private

KEY_PREFIX = "cpi_"
_PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


class PartnerKeysError(CpiError):
    """The API keys file is missing, unreadable or malformed."""


def key_hash(key: str) -> str:
    """The SHA-256 (hex) the keys file holds for an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key to hand to a partner once."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class PartnerKeys:
    """Partner id -> SHA-256 of its API key."""

    hashes: Mapping[str, str]

    @classmethod
    def load(cls, path: Path | None) -> PartnerKeys:
        """The keys file (JSON object, partner id -> hex SHA-256); no file set means no partner is let in."""
        if path is None:
            return cls({})
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PartnerKeysError(f"cannot read the API keys file {path}: {exc.strerror}") from None
        except ValueError:
            raise PartnerKeysError(f"the API keys file {path} is not JSON") from None
        if not isinstance(data, dict):
            raise PartnerKeysError(f"the API keys file {path} must be a JSON object: partner id -> key hash")
        for partner, digest in data.items():
            if not _PARTNER_ID.match(partner) or not isinstance(digest, str) or not _HASH.match(digest):
                raise PartnerKeysError(f"the API keys file {path} has a bad entry for {partner!r}: ids are "
                                       "lower-case letters, digits, '.', '_' or '-'; hashes are SHA-256 hex")
        return cls(dict(data))

    def authenticate(self, presented: str | None) -> str | None:
        """The partner whose key this is, or None. Every stored hash is compared, in constant time."""
        digest = key_hash(presented or "").encode()
        found = None
        for partner, stored in self.hashes.items():
            if hmac.compare_digest(digest, stored.encode()) and presented:
                found = partner
        return found


def add_partner(path: Path, partner: str) -> str:
    """Give `partner` a new API key (replacing any it had) in the keys file; returns the key, shown once."""
    if not _PARTNER_ID.match(partner):
        raise PartnerKeysError("a partner id is lower-case letters, digits, '.', '_' or '-' (at most 64)")
    current = dict(PartnerKeys.load(path).hashes) if path.exists() else {}
    key = new_key()
    current[partner] = key_hash(key)
    write_private(path, (json.dumps(current, indent=2, sort_keys=True) + "\n").encode())
    return key
