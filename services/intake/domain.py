"""Validation of a submission: pure, the one function every channel (API, form, import, worker) uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from schemas import Submission, ValidationIssue

URGENT_CALL_999 = "urgent_call_999"
URGENT_MESSAGE = (
    "This form is for non-urgent information only. If anyone is in immediate danger or a crime "
    "is happening now, call 999 now."
)

# Where a whole-model rule belongs to one field, point the person at that field.
_FIELD_OF_MODEL_RULE = {"lawful_basis_detail_required": "lawful_basis_detail"}


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


def _is_urgent(data: object) -> bool:
    if not isinstance(data, Mapping):
        return False
    urgency = data.get("urgency")
    if not isinstance(urgency, Mapping):
        return False
    return urgency.get("immediate_risk") is True or urgency.get("crime_in_progress") is True


def issues_from(error: ValidationError) -> list[ValidationIssue]:
    """Pydantic's errors as issues: path, stable code, message. Never echoes the submitted value."""
    issues = []
    for detail in error.errors(include_input=False, include_url=False, include_context=False):
        code = detail["type"]
        location = tuple(detail["loc"])
        if code in _FIELD_OF_MODEL_RULE:
            location = (*location, _FIELD_OF_MODEL_RULE[code])
        message = detail["msg"].removeprefix("Value error, ")
        issues.append(ValidationIssue(path=json_pointer(location), code=code[:64], message=message[:500]))
    return issues


def validate_submission(data: object) -> Validation:
    """Validate a decoded JSON object as a v1 Submission, with every problem found at once."""
    errors: list[ValidationIssue] = []
    if _is_urgent(data):
        errors.append(ValidationIssue(path="/urgency", code=URGENT_CALL_999, message=URGENT_MESSAGE))
    try:
        submission = Submission.model_validate(data)
    except ValidationError as exc:
        return Validation(submission=None, errors=errors + issues_from(exc))
    return Validation(submission=None if errors else submission, errors=errors)
