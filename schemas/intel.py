"""SanitisedIntel: the intelligence with every trace of its source removed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field

from schemas.base import (
    CpiModel,
    HowKnown,
    Identifier,
    LawfulBasis,
    Normalised,
    PastDate,
    refuse_control_characters,
)
from schemas.submission import Categories, Location, Subject, Vehicle

# Scrubbing replaces source references with a marker, so the text may grow or shrink a little.
SanitisedText = Annotated[
    str, Field(min_length=1, max_length=20_000), Normalised, AfterValidator(refuse_control_characters)
]


class SanitisedIntel(CpiModel):
    """cpi.intel.sanitised.v1. Nothing from `source`, no submission id, no exact timestamp."""

    intel_id: Identifier
    received_on: date
    categories: Categories
    subjects: Annotated[list[Subject], Field(max_length=20)] = []
    locations: Annotated[list[Location], Field(max_length=20)] = []
    vehicles: Annotated[list[Vehicle], Field(max_length=20)] = []
    information: SanitisedText
    how_known: HowKnown
    when_observed: PastDate | None = None
    subject_aware: bool | None = None
    lawful_basis: LawfulBasis
    redaction_count: Annotated[int, Field(ge=0)]
