"""Shared building blocks for every v1 contract: the base model and bounded field types."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

T = TypeVar("T")


class CpiModel(BaseModel):
    """Every contract is immutable and refuses fields it does not know."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        allow_inf_nan=False,
    )


# Tab, newline and carriage return are normal in free text; every other C0/C1 control
# character (and DEL) is refused because it only ever arrives by accident or in an attack.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile(r"[\r\n\t]")


def refuse_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError("control_character", "Text must not contain control characters.")
    return value


def _single_line(value: str) -> str:
    value = refuse_control_characters(value)
    if _LINE_BREAK.search(value):
        raise PydanticCustomError("line_break", "This field must be a single line.")
    return value


def utc_today() -> date:
    return datetime.now(UTC).date()


def _not_in_future(value: date) -> date:
    if value > utc_today():
        raise PydanticCustomError("date_in_future", "The date must not be in the future.")
    return value


ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
"""A name, a role, an organisation: one line, at most 200 characters."""

Tag = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_single_line)]
"""An alias, a vehicle make or colour: one line, at most 100 characters."""

Description = Annotated[
    str, Field(min_length=1, max_length=2000), AfterValidator(refuse_control_characters)
]
"""A free-text description of a person, place or vehicle."""

PastDate = Annotated[date, AfterValidator(_not_in_future)]

Identifier = Annotated[str, Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
"""A fresh random id: 32 lowercase hex digits (uuid4().hex)."""


class Category(StrEnum):
    MISSING_EXPLOITED_TRAFFICKED = "missing_exploited_trafficked"
    CHILD_SEXUAL_EXPLOITATION = "child_sexual_exploitation"
    CRIMINAL_EXPLOITATION = "criminal_exploitation"
    DRUG_RELATED_HARM = "drug_related_harm"
    MODERN_SLAVERY = "modern_slavery"
    COMMUNITY_COHESION = "community_cohesion"
    ANTI_SOCIAL_BEHAVIOUR = "anti_social_behaviour"
    ORGANISED_CRIME = "organised_crime"


class HowKnown(StrEnum):
    WITNESSED_DIRECTLY = "witnessed_directly"
    TOLD_BY_SUBJECT = "told_by_subject"
    TOLD_BY_THIRD_PARTY = "told_by_third_party"
    RUMOUR_OR_HEARSAY = "rumour_or_hearsay"


class LawfulBasis(StrEnum):
    SAFEGUARDING = "safeguarding"
    PUBLIC_TASK = "public_task"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    CONSENT = "consent"
    OTHER = "other"


def unique_items(values: list[T]) -> list[T]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("duplicate_item", "Each item may appear only once.")
    return values
