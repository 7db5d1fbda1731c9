"""HeldIntel: sanitised intel the sanitiser is not sure is clean, held for the Intelligence Unit.

A held intel may still name its source (that is why it is held), so on the topic only its id, the
day it was held, a revision, a status and the residual-risk score and reason codes are readable;
the intel and the reasons with their excerpts travel sealed (`HeldContent`) to the unseal public key
(HPKE, bound to the intel id): the sanitiser that holds it cannot open it again; only the Intelligence
Unit's review can. Nothing held reaches cpi.intel.sanitised.v1 until an officer releases it.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import CpiModel, Identifier, unique_items
from schemas.intel import SanitisedIntel
from schemas.submission import PublicSealed


class HeldStatus(StrEnum):
    HELD = "held"  # the sanitiser held it
    REDACTED = "redacted"  # an officer redacted more; still held
    RELEASED = "released"  # an officer published it to cpi.intel.sanitised.v1


# A code, never text: the pattern keeps excerpts (which may be provenance) out of the readable part.
ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z_]*$")]


class HeldReason(CpiModel):
    """One thing that could still point at the source: its code and the text found (sealed only)."""

    code: ReasonCode
    excerpt: Annotated[str, Field(min_length=1, max_length=500)]


class HeldContent(CpiModel):
    """What a held record's envelope opens to: the intel as this revision has it, and why it is held."""

    intel: SanitisedIntel
    reasons: Annotated[list[HeldReason], Field(max_length=200)]


class HeldIntel(CpiModel):
    """cpi.intel.held.v1, keyed by intel id. Each record is a revision; the highest is the state.

    A released record carries no envelope: the intel is on cpi.intel.sanitised.v1 by then, and
    compaction of this topic then drops the earlier revisions and their excerpts.
    """

    intel_id: Identifier
    held_on: date
    revision: Annotated[int, Field(ge=1, le=10_000)]
    status: HeldStatus
    score: Annotated[float, Field(ge=0.0, le=1.0)]
    reason_codes: Annotated[list[ReasonCode], Field(max_length=20), AfterValidator(unique_items)]
    sealed: PublicSealed | None = None

    @model_validator(mode="after")
    def _sealed_until_released(self) -> HeldIntel:
        if (self.sealed is None) != (self.status is HeldStatus.RELEASED):
            raise PydanticCustomError(
                "sealed_until_released", "A held or redacted record carries the sealed intel; a released one does not."
            )
        return self
