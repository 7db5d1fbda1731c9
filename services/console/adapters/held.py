"""The console's side of held intel: the held module's own functions, with the signed-in officer's id.

Every step that opens a held intel (show, redact, release) is authorised and audited by the sealed
store's `review_held`, exactly as `cpi held` does, before anything is shown or published.
"""

from __future__ import annotations

from schemas import HeldContent, HeldIntel, HeldStatus
from schemas.topics import HELD, SANITISED
from services.common.keys import StoreKeys
from services.common.serde import encode
from services.common.settings import SanitiserSettings
from services.console.domain import Officer
from services.sanitiser.adapters.sealed_store import UNSEAL_ROLE, SealedStore
from services.sanitiser.held import open_held, redact, released, revise
from services.sanitiser.held_cli import _publish, held_state


class NotFoundInText(ValueError):
    """Texts to redact that do not occur in the held intel: their positions (1-based), never the texts."""

    def __init__(self, positions: list[int]) -> None:
        super().__init__(", ".join(map(str, positions)))
        self.positions = positions


class HeldReview:
    """Held intel for the console: list what waits, open, redact and release it, each audited."""

    def __init__(self, settings: SanitiserSettings, keys: StoreKeys, store: SealedStore) -> None:
        assert keys.unseal_private is not None, "the console is the unseal path: it holds the unseal private key"
        self._settings, self._keys, self._store = settings, keys, store

    def waiting(self) -> list[HeldIntel]:
        """Held intel not yet released, oldest first (what the held topic shows anyone: no text)."""
        records = [r for r in held_state(self._settings).values() if r.status is not HeldStatus.RELEASED]
        return sorted(records, key=lambda r: (r.held_on, r.intel_id))

    def _authorised(self, action: str, officer: Officer, intel_id: str, reason: str,
                    **detail: object) -> tuple[HeldIntel, HeldContent]:
        """Audited first; raises HeldReviewDenied (audited too) when refused."""
        record = held_state(self._settings).get(intel_id)
        refusal = None
        if record is None:
            refusal = ("not_held", "No intel with that id is held for review.")
        elif record.status is HeldStatus.RELEASED:
            refusal = ("already_released", "It has already been released.")
        role = UNSEAL_ROLE if officer.intelligence_unit else officer.audit_role
        self._store.review_held(action, intel_id, role=role, officer_id=officer.officer_id, reason=reason,
                                refusal=refusal, detail={"revision": record.revision if record else None, **detail})
        assert record is not None and self._keys.unseal_private is not None  # refused above otherwise
        return record, open_held(record, self._keys.unseal_private)

    def show(self, officer: Officer, intel_id: str, reason: str) -> tuple[HeldIntel, HeldContent]:
        return self._authorised("show", officer, intel_id, reason)

    def redact(self, officer: Officer, intel_id: str, reason: str,
               texts: list[str]) -> tuple[HeldIntel, HeldContent]:
        """A new revision with `texts` replaced by the marker (never the reverse); raises NotFoundInText
        (nothing published) if any text is not in the intel."""
        record, content = self._authorised("redact", officer, intel_id, reason, texts=len(texts))
        redaction = redact(content.intel, texts)
        missing = [number for number, found in enumerate(redaction.found, start=1) if not found]
        if missing:
            raise NotFoundInText(missing)
        assert self._keys.unseal_private is not None
        revised = revise(record, redaction.intel, self._keys.unseal_private.recipient())
        _publish(self._settings, [(HELD, intel_id, encode(revised))])
        return revised, open_held(revised, self._keys.unseal_private)

    def release(self, officer: Officer, intel_id: str, reason: str) -> HeldIntel:
        """The intel to cpi.intel.sanitised.v1, then the record that says so (the order `cpi held release` uses)."""
        record, content = self._authorised("release", officer, intel_id, reason)
        closed = released(record)
        _publish(self._settings, [(SANITISED, intel_id, encode(content.intel)), (HELD, intel_id, encode(closed))])
        return closed
