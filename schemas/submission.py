"""The Submission: what a professional shares, as the API body and one line of a JSONL import."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas.base import (
    Category,
    CpiModel,
    Description,
    HowKnown,
    Identifier,
    LawfulBasis,
    Normalised,
    PastDate,
    ShortText,
    Tag,
    refuse_control_characters,
    unique_items,
)

_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+$")
# UK national numbers are 0 plus 9 or 10 digits; E.164 is + then 8 to 15 digits.
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_UK_NATIONAL = re.compile(r"^0\d{9,10}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# The UK postcode shapes (A9 9AA, A99 9AA, AA9 9AA, AA99 9AA, A9A 9AA, AA9A 9AA) and GIR 0AA.
_POSTCODE = re.compile(
    r"^(GIR ?0AA|[A-PR-UWYZ](?:\d[A-HJKPSTUW\d]?|[A-HK-Y]\d[ABEHMNPRVWXY\d]?) ?\d[ABD-HJLNP-UW-Z]{2})$",
    re.IGNORECASE,
)


def _valid_email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise PydanticCustomError("invalid_email", "Enter an email address like name@example.org.")
    return value


def _valid_phone(value: str) -> str:
    digits = _PHONE_SEPARATORS.sub("", value)
    if not (_UK_NATIONAL.match(digits) or _E164.match(digits)):
        raise PydanticCustomError(
            "invalid_phone",
            "Enter a UK phone number like 01632 960 001, or an international one like +44 1632 960001.",
        )
    return value


def _valid_postcode(value: str) -> str:
    if not _POSTCODE.match(value):
        raise PydanticCustomError("invalid_postcode", "Enter a UK postcode like SW1A 1AA.")
    compact = value.replace(" ", "").upper()
    return f"{compact[:-3]} {compact[-3:]}"


Email = Annotated[str, Field(min_length=3, max_length=254), Normalised, AfterValidator(_valid_email)]
Phone = Annotated[str, Field(min_length=5, max_length=32), Normalised, AfterValidator(_valid_phone)]
Postcode = Annotated[str, Field(min_length=5, max_length=8), Normalised, AfterValidator(_valid_postcode)]
Information = Annotated[
    str, Field(min_length=20, max_length=10_000), Normalised, AfterValidator(refuse_control_characters)
]


class OrganisationType(StrEnum):
    EDUCATION = "education"
    HEALTH = "health"
    SOCIAL_CARE = "social_care"
    LOCAL_AUTHORITY = "local_authority"
    HOUSING = "housing"
    YOUTH_SERVICE = "youth_service"
    VOLUNTARY_SECTOR = "voluntary_sector"
    PROBATION = "probation"
    OTHER = "other"


class SubjectRole(StrEnum):
    AT_RISK = "at_risk"
    PERSON_OF_CONCERN = "person_of_concern"
    OTHER = "other"


class Source(CpiModel):
    """Who shared the information. PROVENANCE: sealed at the sanitiser, never downstream."""

    name: ShortText
    role: ShortText
    organisation: ShortText
    organisation_type: OrganisationType
    email: Email
    phone: Phone | None = None
    recontact_ok: bool = True


class Urgency(CpiModel):
    immediate_risk: bool
    crime_in_progress: bool


# An age in a subject's free description: "about 13", "aged 16 or 17", "a 15-year-old", "15yo"; not "about
# 30 minutes" or "about 6 months".
_DESCRIBED_AGE = re.compile(
    r"\b(?:aged?|about|around|approximately|approx\.?|roughly|maybe|possibly|perhaps)\s+(\d{1,2})\b"
    r"(?!\s*(?:minutes|mins|hours|days|weeks|months|times|%|pounds|miles|metres|feet|ft|cm|kg|stone|years\s+ago|[:.]\d))"
    r"|\b(\d{1,2})\s*[- ]?(?:years?[- ]old|yrs?\b|yo\b|y/o)",
    re.IGNORECASE,
)


class Subject(CpiModel):
    role: SubjectRole
    name: ShortText | None = None
    aliases: Annotated[list[Tag], Field(max_length=10)] = []
    date_of_birth: PastDate | None = None
    approx_age: Annotated[int, Field(ge=0, le=120)] | None = None
    gender: Tag | None = None
    address: Description | None = None
    description: Description | None = None

    def age_on(self, day: date) -> int | None:
        """Age in whole years on `day` from the date of birth, else the approximate age, else an age the
        description gives ("girl about 13", "a 15-year-old"), else unknown. One reading of a subject's age
        for every service: the router's rules and the notifier's children's and adults' teams agree."""
        if self.date_of_birth is not None:
            born = self.date_of_birth
            return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
        if self.approx_age is not None:
            return self.approx_age
        found = _DESCRIBED_AGE.search(self.description or "")
        return int(found.group(1) or found.group(2)) if found else None


class Location(CpiModel):
    description: Description
    postcode: Postcode | None = None


class Vehicle(CpiModel):
    registration: Annotated[str, Field(min_length=1, max_length=16), Normalised] | None = None
    make: Tag | None = None
    model: Tag | None = None
    colour: Tag | None = None
    description: Description | None = None


Categories = Annotated[
    list[Category], Field(min_length=1, max_length=8), AfterValidator(unique_items)
]


class SubmissionContent(CpiModel):
    """Everything in a submission except its source."""

    lawful_basis: LawfulBasis
    lawful_basis_detail: Description | None = None
    caldicott_guardian_consulted: bool | None = None
    urgency: Urgency
    categories: Categories
    subjects: Annotated[list[Subject], Field(max_length=20)] = []
    locations: Annotated[list[Location], Field(max_length=20)] = []
    vehicles: Annotated[list[Vehicle], Field(max_length=20)] = []
    information: Information
    how_known: HowKnown
    when_observed: PastDate | None = None
    subject_aware: bool | None = None
    other_agencies_informed: Annotated[list[ShortText], Field(max_length=20)] = []
    idempotency_key: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _detail_when_other(self) -> SubmissionContent:
        if self.lawful_basis is LawfulBasis.OTHER and not self.lawful_basis_detail:
            raise PydanticCustomError(
                "lawful_basis_detail_required",
                "Explain the lawful basis when you choose 'other'.",
            )
        return self


class Submission(SubmissionContent):
    """The API body and one line of a JSONL import: the content plus who shared it."""

    source: Source


class Channel(StrEnum):
    WEB = "web"
    API = "api"
    IMPORT = "import"


class EnvelopeAlg(StrEnum):
    """How an envelope's data key is sealed (the value is versioned: a new scheme is a new value)."""

    # HPKE (RFC 9180) base mode to a public key: KEM ML-KEM-768 + X25519 hybrid, KDF HKDF-SHA256,
    # AEAD AES-256-GCM; info = "cpi-envelope/2" NUL purpose NUL key id NUL associated data.
    HPKE = "hpke-mlkem768x25519-hkdfsha256-aes256gcm/2"
    # AES-256-GCM under a symmetric key-encryption key (key id as associated data): only for what a
    # component keeps for itself, never on a topic.
    KEK = "aes256gcm-kek/1"


class SealedEnvelope(CpiModel):
    """Envelope v2: a value encrypted with a fresh data key (AES-256-GCM, the record's id as associated
    data), and that data key sealed for whoever holds key `key_id`, as `alg` says.

    v1 had no `alg` and always wrapped the data key with a symmetric key the sealer also held; v2
    envelopes on topics are sealed to a public key, so the sealer (the public edge) cannot open them.
    """

    alg: EnvelopeAlg
    key_id: Annotated[str, Field(min_length=1, max_length=64)]
    # 1,120 bytes of ML-KEM-768 + X25519 encapsulation, the 32-byte key and a 16-byte tag, in base64.
    wrapped_key: Annotated[str, Field(min_length=1, max_length=2048)]
    nonce: Annotated[str, Field(min_length=1, max_length=64)]
    ciphertext: Annotated[str, Field(min_length=1, max_length=65_536)]


def _sealed_to_a_public_key(envelope: SealedEnvelope) -> SealedEnvelope:
    if envelope.alg is not EnvelopeAlg.HPKE:
        raise PydanticCustomError("sealed_to_public_key", "A sealed value on a topic must be sealed to a public key.")
    return envelope


# What travels on topics: sealed so that only the holder of a private key opens it.
PublicSealed = Annotated[SealedEnvelope, AfterValidator(_sealed_to_a_public_key)]


# No exact time and no channel after the edge: an observer who saw a submission arrive (or knows when a
# professional sent one) could otherwise follow it through the topics to its intel. The day is all the
# sanitised intel keeps, so it is all that travels; the receipt keeps the exact time for the sharer.
_RECEIVED_ON = "The UTC day the edge received it (no exact time, no channel: they would link it to its intel)."


class ReceivedSubmission(CpiModel):
    """cpi.submission.received.v1: as it arrived, not yet validated, and unreadable on the topic.

    Before sanitising, free text can name the source ("I am her teacher at ..."), so the whole
    submitted object travels sealed to the transport public key (HPKE), bound to `submission_id`, not
    only its `source` block: the edge that sealed it cannot open it. The intake worker, which holds the
    transport private key, opens it in memory to validate it with the same function the API uses.
    """

    submission_id: Identifier
    received_on: date = Field(description=_RECEIVED_ON)
    sealed_submission: PublicSealed


class AcceptedSubmission(CpiModel):
    """cpi.submission.accepted.v1: a submission that passed validation, sealed again to the transport key."""

    submission_id: Identifier
    received_on: date = Field(description=_RECEIVED_ON)
    sealed_submission: PublicSealed


class ValidationIssue(CpiModel):
    """One problem with a submission: where (a JSON pointer), a stable code and plain English."""

    path: Annotated[str, Field(max_length=500)]
    code: Annotated[str, Field(min_length=1, max_length=64)]
    message: Annotated[str, Field(min_length=1, max_length=500)]


class RejectedSubmission(CpiModel):
    """cpi.submission.rejected.v1: why a submission was refused. Never carries its content."""

    submission_id: Identifier
    received_on: date = Field(description=_RECEIVED_ON)
    errors: Annotated[list[ValidationIssue], Field(min_length=1, max_length=200)]
    status: Literal["rejected"] = "rejected"
