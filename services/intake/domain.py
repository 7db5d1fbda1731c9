"""Validation of a submission: pure, the one function every channel (API, form, import, worker) uses.

Every problem comes back as a `ValidationIssue`: a JSON pointer to the field, a stable code from
`CODES`, and a plain-English message written for a busy teacher or nurse. Messages never quote
what was submitted (it may hold provenance, or be hostile).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas import Submission, ValidationIssue

URGENT_CALL_999 = "urgent_call_999"
URGENT_MESSAGE = (
    "This form is for non-urgent information only. If anyone is in immediate danger or a crime "
    "is happening now, call 999 now."
)
MAX_DEPTH = 32  # a real submission nests 4 deep; anything far deeper is an attack or a mistake
MAX_ISSUES = 200  # what a RejectedSubmission can carry

# The stable codes, documented once. Clients may rely on these; messages may be reworded.
CODES: dict[str, str] = {
    "required": "A required field is missing.",
    "unknown_field": "A field that is not part of the v1 submission.",
    "not_an_object": "Expected a JSON object.",
    "not_a_list": "Expected a JSON array.",
    "not_text": "Expected a string.",
    "not_true_or_false": "Expected true or false.",
    "not_a_whole_number": "Expected a whole number.",
    "not_an_option": "Not one of the allowed values.",
    "too_short": "Text shorter than the field allows.",
    "too_long": "Text longer than the field allows.",
    "too_few": "A list with fewer items than allowed.",
    "too_many": "A list with more items than allowed.",
    "out_of_range": "A number outside the allowed range.",
    "invalid_date": "Not a calendar date (YYYY-MM-DD).",
    "date_in_future": "A date after today.",
    "invalid_email": "Not an email address.",
    "invalid_phone": "Not a UK national or E.164 phone number.",
    "invalid_postcode": "Not a UK postcode.",
    "control_character": "Text containing control characters.",
    "line_break": "A line break in a single-line field.",
    "duplicate_item": "The same item twice in a list.",
    "lawful_basis_detail_required": "lawful_basis is 'other' and lawful_basis_detail is missing.",
    URGENT_CALL_999: "Someone is in immediate danger or a crime is in progress: call 999.",
    "invalid_text": "Text with characters that are not valid Unicode (lone surrogates).",
    "invalid_number": "A number that is not finite (NaN or Infinity).",
    "too_deep": f"Nested more than {MAX_DEPTH} levels deep.",
    "too_many_errors": f"More than {MAX_ISSUES - 1} problems; only the first are listed.",
    "invalid": "Any other problem with a value.",
    # Refusals of the body itself, before validation (the edge and `cpi validate`).
    "invalid_json": "The body is not valid JSON (or not UTF-8).",
    "duplicate_key": "The same key twice in one JSON object.",
    # Refusals at the HTTP edge.
    "body_too_large": "The body is larger than the edge accepts.",
    "unsupported_media_type": "The body is not sent as the content type the endpoint takes.",
    "rate_limited": "Too many requests from one client; wait and retry.",
    "idempotency_conflict": "The idempotency key was already used for different content.",
    "submission_in_progress": "A submission with this idempotency key is still being received.",
    "unavailable": "The pipeline could not take the submission just now; retry.",
    "csrf_failed": "The form's security token is missing or does not match.",
}

_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "dict_type": "not_an_object",
    "list_type": "not_a_list",
    "string_type": "not_text",
    "bool_type": "not_true_or_false",
    "bool_parsing": "not_true_or_false",
    "int_type": "not_a_whole_number",
    "int_parsing": "not_a_whole_number",
    "int_from_float": "not_a_whole_number",
    "enum": "not_an_option",
    "literal_error": "not_an_option",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_short": "too_few",
    "too_long": "too_many",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "date_type": "invalid_date",
    "date_parsing": "invalid_date",
    "date_from_datetime_parsing": "invalid_date",
    "date_from_datetime_inexact": "invalid_date",
    "json_invalid": "invalid_text",
    "finite_number": "invalid_number",
}
# Our own codes raised inside the schemas, kept as they are.
_OWN_CODES = frozenset(CODES)

# Fields with a format: any problem with their text (too short, too long) is a format problem.
_FORMAT_CODES = {"email": "invalid_email", "phone": "invalid_phone", "postcode": "invalid_postcode"}

# Labels by "section/field" (rows of a list share one) or by field; used to start each message.
LABELS: dict[str, str] = {
    "source": "Your details",
    "source/name": "Your name",
    "source/role": "Your role",
    "source/organisation": "Your organisation",
    "source/organisation_type": "Type of organisation",
    "source/email": "Your email address",
    "source/phone": "Your phone number",
    "source/recontact_ok": "Whether we may contact you",
    "lawful_basis": "Lawful basis for sharing",
    "lawful_basis_detail": "Lawful basis detail",
    "caldicott_guardian_consulted": "Whether your Caldicott Guardian was consulted",
    "urgency": "The urgency questions",
    "urgency/immediate_risk": "Whether anyone is in immediate danger",
    "urgency/crime_in_progress": "Whether a crime is happening now",
    "categories": "Categories",
    "subjects": "People",
    "subjects/role": "Role",
    "subjects/name": "Name",
    "subjects/aliases": "Other names",
    "subjects/date_of_birth": "Date of birth",
    "subjects/approx_age": "Approximate age",
    "subjects/gender": "Gender",
    "subjects/address": "Address",
    "subjects/description": "Description",
    "locations": "Places",
    "locations/description": "Description of the place",
    "locations/postcode": "Postcode",
    "vehicles": "Vehicles",
    "vehicles/registration": "Registration",
    "vehicles/make": "Make",
    "vehicles/model": "Model",
    "vehicles/colour": "Colour",
    "vehicles/description": "Description",
    "information": "What you know",
    "how_known": "How you know",
    "when_observed": "When it happened",
    "subject_aware": "Whether the person knows you are sharing this",
    "other_agencies_informed": "Other agencies informed",
    "idempotency_key": "Idempotency key",
}
_ROW_NAMES = {"subjects": "Person", "locations": "Place", "vehicles": "Vehicle"}

# What to say when a required field is missing, where "Enter <label>" would read badly.
_REQUIRED: dict[str, str] = {
    "": "Fill in the submission.",
    "source": "Enter your details.",
    "source/organisation_type": "Choose the type of organisation.",
    "lawful_basis": "Choose the lawful basis for sharing.",
    "urgency": "Answer the urgency questions.",
    "urgency/immediate_risk": "Say whether anyone is in immediate danger.",
    "urgency/crime_in_progress": "Say whether a crime is happening now.",
    "categories": "Choose at least one category.",
    "information": "Tell us what you know.",
    "how_known": "Choose how you know this.",
    "subjects/role": "Choose the person's role.",
    "locations/description": "Describe the place.",
}
_DETAIL_REQUIRED_MESSAGE = "Explain the lawful basis when you choose 'other'."
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Validation:
    """The result of validating one submission: either a Submission or the list of what to fix."""

    submission: Submission | None
    errors: list[ValidationIssue] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.submission is not None and not self.errors


def json_pointer(location: tuple[str | int, ...]) -> str:
    """('subjects', 0, 'name') -> '/subjects/0/name' (RFC 6901 escaping)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def issue(location: tuple[str | int, ...], code: str, message: str) -> ValidationIssue:
    """A ValidationIssue whose path and message always fit the contract's bounds."""
    return ValidationIssue(path=json_pointer(location)[:500], code=code[:64], message=message[:500])


def _names(location: tuple[str | int, ...]) -> tuple[str, str]:
    """The label key for a location ('subjects/name') and a row prefix ('Person 2: ') if any."""
    keys = [part for part in location if isinstance(part, str)]
    prefix = ""
    if len(location) >= 3 and location[0] in _ROW_NAMES and isinstance(location[1], int):
        prefix = f"{_ROW_NAMES[str(location[0])]} {location[1] + 1}: "
    if len(keys) >= 2 and f"{keys[0]}/{keys[-1]}" in LABELS:
        return f"{keys[0]}/{keys[-1]}", prefix
    return (keys[-1] if keys else ""), prefix


def _message(code: str, location: tuple[str | int, ...], ctx: Mapping[str, Any], own_message: str) -> str:
    key, prefix = _names(location)
    label = LABELS.get(key, "This field" if key else "The submission")
    if code == "required" or (code == "too_few" and key in _REQUIRED):
        return prefix + _REQUIRED.get(key, f"Enter {label[0].lower()}{label[1:]}.")
    if code in {"invalid_email", "invalid_phone", "invalid_postcode", "lawful_basis_detail_required"}:
        return prefix + own_message
    text = {
        "unknown_field": "This field is not part of the submission; remove it.",
        "not_an_object": f"{label} must be a JSON object.",
        "not_a_list": f"{label} must be a list.",
        "not_text": f"{label} must be text.",
        "not_true_or_false": f"{label} must be true or false.",
        "not_a_whole_number": f"{label} must be a whole number.",
        "not_an_option": f"{label}: choose one of {ctx.get('expected', 'the listed options')}.",
        "too_short": (f"{label} must not be empty." if ctx.get("min_length") == 1
                      else f"{label} must be at least {ctx.get('min_length')} characters."),
        "too_long": f"{label} must be {ctx.get('max_length')} characters or fewer.",
        "too_few": f"{label}: add at least {ctx.get('min_length')}.",
        "too_many": f"{label}: no more than {ctx.get('max_length')}.",
        "invalid_date": f"{label} must be a real date, like 2024-03-31.",
        "date_in_future": f"{label} must not be in the future.",
        "control_character": f"{label} contains hidden control characters; remove them.",
        "line_break": f"{label} must be on one line.",
        "duplicate_item": f"{label}: each item may appear only once.",
        "invalid_text": f"{label} contains characters that cannot be read.",
        "invalid_number": f"{label} must be a finite number.",
    }.get(code)
    if text is None and code == "out_of_range":
        bounds = [f"{word} {ctx[name]}" for name, word in
                  (("ge", "at least"), ("gt", "more than"), ("le", "at most"), ("lt", "less than")) if name in ctx]
        text = f"{label} must be {' and '.join(bounds) or 'in range'}."
    return prefix + (text or f"{label} is not valid.")


def issues_from(error: ValidationError) -> list[ValidationIssue]:
    """Pydantic's errors as issues: path, stable code, plain message. Never echoes the submitted value."""
    issues = []
    for detail in error.errors(include_input=False, include_url=False, include_context=True):
        location = tuple(detail["loc"])
        raw_code = detail["type"]
        # Pydantic's names first: its list "too_short" is our "too_few", not our text "too_short".
        own_code = raw_code not in _PYDANTIC_CODES and raw_code in _OWN_CODES
        code = raw_code if own_code else _PYDANTIC_CODES.get(raw_code, "invalid")
        if raw_code == "lawful_basis_detail_required":
            location = (*location, "lawful_basis_detail")
        last = next((part for part in reversed(location) if isinstance(part, str)), "")
        if last in _FORMAT_CODES and code in {"too_short", "too_long"}:
            code = _FORMAT_CODES[last]
        own = detail["msg"] if own_code else ""
        if code in _FORMAT_CODES.values() and not own:
            own = {"invalid_email": "Enter an email address like name@example.org.",
                   "invalid_phone": "Enter a UK phone number like 01632 960 001, or an international one "
                                    "like +44 1632 960001.",
                   "invalid_postcode": "Enter a UK postcode like SW1A 1AA."}[code]
        issues.append(issue(location, code, _message(code, location, detail.get("ctx", {}), own)))
    return issues


def _structure_problem(data: object) -> ValidationIssue | None:
    """Refuse what JSON allows but a submission never needs: deep nesting, lone surrogates, NaN."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, location = stack.pop()
        if len(location) > MAX_DEPTH:
            return issue(location[:MAX_DEPTH], "too_deep", f"The submission is nested more than {MAX_DEPTH} "
                                                            "levels deep.")
        if isinstance(value, str) and _SURROGATE.search(value):
            return issue(location, "invalid_text", "This text contains characters that cannot be read.")
        if isinstance(value, float) and not math.isfinite(value):
            return issue(location, "invalid_number", "Numbers must be finite (not NaN or Infinity).")
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str) or _SURROGATE.search(key):
                    return issue(location, "invalid_text", "A field name contains characters that cannot be read.")
                stack.append((item, (*location, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*location, index)) for index, item in enumerate(value))
    return None


def _is_urgent(data: object) -> bool:
    if not isinstance(data, Mapping):
        return False
    urgency = data.get("urgency")
    if not isinstance(urgency, Mapping):
        return False
    return urgency.get("immediate_risk") is True or urgency.get("crime_in_progress") is True


def _detail_missing(data: object) -> bool:
    """lawful_basis is 'other' with no detail, judged on the raw data.

    Pydantic runs the model's own rule only when every field is valid; this reports it alongside
    the other problems so the person fixes everything in one go.
    """
    if not isinstance(data, Mapping):
        return False
    basis, detail = data.get("lawful_basis"), data.get("lawful_basis_detail")
    return (isinstance(basis, str) and basis.strip() == "other"
            and (detail is None or (isinstance(detail, str) and not detail.strip())))


def validate_submission(data: object) -> Validation:
    """Validate a decoded JSON value as a v1 Submission, with every problem found at once.

    Validation is strict: JSON types must match (`"true"` is not a boolean, `"5"` is not a number),
    so every channel means the same thing by the same value.
    """
    problem = _structure_problem(data)
    if problem is not None:
        return Validation(submission=None, errors=[problem])
    errors: list[ValidationIssue] = []
    if _is_urgent(data):
        errors.append(issue(("urgency",), URGENT_CALL_999, URGENT_MESSAGE))
    try:
        # Through JSON so strict mode takes dates and enum values as the strings they are on the wire.
        submission = Submission.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        errors += issues_from(exc)
        if _detail_missing(data) and not any(e.path == "/lawful_basis_detail" for e in errors):
            errors.append(issue(("lawful_basis_detail",), "lawful_basis_detail_required", _DETAIL_REQUIRED_MESSAGE))
        return Validation(submission=None, errors=_capped(errors))
    return Validation(submission=None if errors else submission, errors=errors)


def _capped(errors: list[ValidationIssue]) -> list[ValidationIssue]:
    if len(errors) <= MAX_ISSUES:
        return errors
    return [*errors[: MAX_ISSUES - 1],
            issue((), "too_many_errors", f"There are more than {MAX_ISSUES - 1} problems; fix these first.")]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses to inf
        raise ValueError("number out of range")
    return number


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def parse_json(raw: bytes | str) -> tuple[object, ValidationIssue | None]:
    """Decode UTF-8 JSON strictly: no NaN/Infinity, no duplicate keys, no absurd nesting.

    Returns (value, None) or (None, the issue that explains the refusal).
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          object_pairs_hook=_no_duplicate_keys), None
    except _DuplicateKey:
        return None, issue((), "duplicate_key", "The same field appears twice in one object; send it once.")
    except RecursionError:
        return None, issue((), "too_deep", f"The body is nested more than {MAX_DEPTH} levels deep.")
    except (ValueError, UnicodeDecodeError):
        return None, issue((), "invalid_json", "The body is not valid JSON in UTF-8; check brackets, quotes "
                                               "and commas, and send numbers without NaN or Infinity.")
