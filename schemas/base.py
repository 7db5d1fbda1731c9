"""Shared building blocks for every v1 contract: the base model and bounded field types."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
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


# Format characters (Unicode category Cf: zero-width space and joiners, soft hyphen, word joiner,
# BOM, direction marks, tag characters) and the other default-ignorable code points (variation
# selectors, combining grapheme joiner, Hangul fillers) are invisible: inside a name, an e-mail or a
# phone number they defeat every comparison while the text reads the same. They are dropped.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)
# After NFKC: the spaces it leaves alone become a space, line and paragraph separators a newline,
# and every dash and minus the hyphen-minus people type.
_ODD_SPACE = re.compile("[\u1680]")
_ODD_BREAK = re.compile("[\u2028\u2029]")
_DASH = re.compile("[\u2010-\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63]")


def normalise_text(value: object) -> object:
    """NFKC, invisible characters removed, spaces and dashes unified: the one form text is kept in.

    Applied before validation to every text field of every contract, so the edge stores, and the
    scrubber compares, what a reader sees ("Kh\u200ban" is "Khan", "\uff2b\uff48\uff41\uff4e" is "Khan").
    """
    if not isinstance(value, str):
        return value  # validation proper reports the wrong type
    value = unicodedata.normalize("NFKC", _INVISIBLE.sub("", value))
    value = _INVISIBLE.sub("", value)  # NFKC can compose into nothing new, but be sure
    return _DASH.sub("-", _ODD_BREAK.sub("\n", _ODD_SPACE.sub(" ", value)))


Normalised = BeforeValidator(normalise_text)


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


ShortText = Annotated[str, Field(min_length=1, max_length=200), Normalised, AfterValidator(_single_line)]
"""A name, a role, an organisation: one line, at most 200 characters."""

Tag = Annotated[str, Field(min_length=1, max_length=100), Normalised, AfterValidator(_single_line)]
"""An alias, a vehicle make or colour: one line, at most 100 characters."""

Description = Annotated[
    str, Field(min_length=1, max_length=2000), Normalised, AfterValidator(refuse_control_characters)
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
