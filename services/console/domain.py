"""The console's rules, pure: who the signed-in officer is, what each role may do, the two-person rule
for re-contact, and where a held intel's risk reasons are in its text. No I/O.

Roles come from the identity provider's token (`roles_of`): `handler` (reviews decisions),
`iu_officer` (an Intelligence Unit officer: reviews and releases held intel, requests re-contact) and
`supervisor` (also of the Intelligence Unit: approves or refuses others' re-contact requests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

HANDLER: Final = "handler"
IU_OFFICER: Final = "iu_officer"
SUPERVISOR: Final = "supervisor"
ROLES: Final = (HANDLER, IU_OFFICER, SUPERVISOR)
INTEL_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Officer:
    """The signed-in person: the identity provider's subject (their officer id) and their console roles."""

    officer_id: str
    roles: frozenset[str]

    @property
    def intelligence_unit(self) -> bool:
        """IU officers and supervisors may open held intel (it may still name its source)."""
        return bool(self.roles & {IU_OFFICER, SUPERVISOR})

    @property
    def may_request_recontact(self) -> bool:
        return IU_OFFICER in self.roles

    @property
    def may_decide_recontact(self) -> bool:
        return SUPERVISOR in self.roles

    @property
    def audit_role(self) -> str:
        """The role written in the audit chain: the most senior the officer holds."""
        return next((role for role in reversed(ROLES) if role in self.roles), "none")


def roles_of(claims: Mapping[str, object], claim: str) -> frozenset[str]:
    """The console roles in a token's `claim` (a list, or a space-separated string); others are ignored."""
    value = claims.get(claim)
    listed: Iterable[object] = value.split() if isinstance(value, str) else value if isinstance(value, list) else ()
    return frozenset(role for role in listed if isinstance(role, str) and role in ROLES)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    VIEWED = "viewed"


@dataclass(frozen=True)
class RecontactRequest:
    """An IU officer's request to see one intel's source, with its written reason and where it stands."""

    request_id: str
    intel_id: str
    requester: str
    reason: str
    status: RequestStatus
    decided_by: str | None = None


Approval = Literal["all", "not_supervisor"]


def needs_approval(policy: Approval, requester: Officer) -> bool:
    """The two-person rule: every request needs a supervisor's approval, or all but a supervisor's own."""
    return not (policy == "not_supervisor" and SUPERVISOR in requester.roles)


def request_refusal(officer: Officer, intel_id: str, reason: str, min_reason: int) -> tuple[str, str] | None:
    """Why a new re-contact request must be refused, as (code, message), or None."""
    if not officer.may_request_recontact:
        return "role_not_permitted", "Only an Intelligence Unit officer may request a source's details."
    if not INTEL_ID.match(intel_id):
        return "invalid_intel_id", "An intel id is 32 lower-case hexadecimal characters."
    if len(reason.strip()) < min_reason:
        return "reason_too_short", f"Give a written reason of at least {min_reason} characters."
    return None


def decision_refusal(officer: Officer, request: RecontactRequest | None) -> tuple[str, str] | None:
    """Why `officer` may not approve or refuse `request`, as (code, message), or None."""
    if not officer.may_decide_recontact:
        return "role_not_permitted", "Only a supervisor may approve or refuse a re-contact request."
    if request is None:
        return "not_found", "There is no re-contact request with that reference."
    if request.requester == officer.officer_id:
        return "own_request", "Nobody may approve or refuse their own request: another supervisor must."
    if request.status is not RequestStatus.PENDING:
        return "not_pending", f"That request has already been {request.status.value}."
    return None


def view_refusal(officer: Officer, request: RecontactRequest | None) -> tuple[str, str] | None:
    """Why `officer` may not see the source's details for `request` now, as (code, message), or None.
    Only the requester, only once, only once approved."""
    if request is None or request.requester != officer.officer_id:
        return "not_requester", "Only the officer who made a request may see its details."
    if request.status is RequestStatus.VIEWED:
        return "already_viewed", "The details were shown once already; make a new request if you need them again."
    if request.status is not RequestStatus.APPROVED:
        return "not_approved", "The request has not been approved."
    return None


@dataclass(frozen=True)
class Segment:
    """A piece of held text; `code` is the risk reason it is highlighted for, or None."""

    text: str
    code: str | None = None


def highlight(text: str, reasons: Iterable[tuple[str, str]]) -> list[Segment]:
    """`text` cut into segments, each risk reason's excerpt (any case) marked with its code.

    Overlapping excerpts merge into one mark with the first reason's code; excerpts not in the text are
    left out (they may be in another field, and the reasons are listed in full beside it anyway).
    """
    spans: list[tuple[int, int, str]] = []
    lowered = text.casefold()
    for code, excerpt in reasons:
        needle = excerpt.strip().casefold()
        if not needle or len(lowered) != len(text):  # casefold changed lengths: offsets would not line up
            continue
        start = lowered.find(needle)
        while start != -1:
            spans.append((start, start + len(needle), code))
            start = lowered.find(needle, start + len(needle))
    merged: list[tuple[int, int, str]] = []
    for start, end, code in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), merged[-1][2])
        else:
            merged.append((start, end, code))
    segments, position = [], 0
    for start, end, code in merged:
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], code))
        position = end
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments
