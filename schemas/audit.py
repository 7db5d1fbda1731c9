"""AuditEntry: one entry of the sealed store's audit log, as the store keeps it and as the audit topic anchors it.

Who did what to which intel, why (the officer's written reason) and with what result; never anything of the
source. `hash` chains each entry to the one before (`prev_hash`); `signature` is the audit-signing key's
(Ed25519, key `key_id`) over every other field, so whoever holds only the public key can check an entry and
nobody without the private key (the database's holder included) can make one that verifies.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field

from schemas.base import CpiModel

_Hex64 = Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]


class AuditEntry(CpiModel):
    """One signed, hash-chained audit entry of the sealed store (unseal, held review, re-contact, keys, purge)."""

    seq: Annotated[int, Field(ge=1)]
    at: Annotated[str, Field(max_length=40, description="UTC time, to the second (ISO 8601)")]
    action: Annotated[str, Field(min_length=1, max_length=32)]
    actor: Annotated[str, Field(max_length=100, description="the officer id, or `system`")]
    role: Annotated[str, Field(max_length=100)]
    intel_id: Annotated[str, Field(max_length=64)]
    reason: Annotated[str, Field(max_length=2000, description="the officer's written reason")]
    result: Annotated[str, Field(min_length=1, max_length=64)]
    detail: Annotated[str, Field(max_length=4000, description="a JSON object: counts, ids and key ids only")]
    prev_hash: _Hex64
    hash: _Hex64
    key_id: Annotated[str, Field(min_length=1, max_length=100, description="the audit-signing key that signed")]
    signature: Annotated[str, Field(min_length=1, max_length=200, description="Ed25519, base64")]

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field but the signature, canonical JSON."""
        fields = self.model_dump(exclude={"signature"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
