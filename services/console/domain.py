"""The console's rules, pure: who the signed-in officer is, what each role may do, the two-person rule
for re-contact, where a held intel's risk reasons are in its text, the review queue (which decisions
need a person, in what order, against which clock), and a handler's confirmation or amendment of a decision
(`review_of`). No I/O.

Roles come from the identity provider's token (`roles_of`): `handler` (reviews decisions),
`iu_officer` (an Intelligence Unit officer: reviews and releases held intel, requests re-contact) and
`supervisor` (also of the Intelligence Unit: approves or refuses others' re-contact requests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas import Assessed, Category, Decision, DecisionReview, Outcome, Priority, ReviewAction
from schemas.decision import REVIEW_REASON_MAX, REVIEW_REASON_MIN, agreement

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
    def may_review_decisions(self) -> bool:
        """Handlers confirm or amend the router's decisions."""
        return HANDLER in self.roles

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


# -- the review queue ------------------------------------------------------------------------------------

PRIORITY_ORDER: Final = tuple(p.value for p in Priority)  # high first: the queue's order
CATEGORIES: Final = tuple(c.value for c in Category)
OUTCOMES: Final = tuple(o.value for o in Outcome)
# Which decisions need a person: every one, the high-priority ones, the ones the router flagged (its second
# opinion's doubt, thin evidence: any review reason), or those with one named review reason code (so a code the
# router adds later, such as one for rules in conflict, can be chosen without a change here).
ALL_DECISIONS: Final = "all"
HIGH_PRIORITY: Final = "high_priority"
FLAGGED: Final = "flagged"
REVIEW_CODE = re.compile(r"^[a-z0-9_]+$")
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class QueueConfigError(ValueError):
    """A review target or review criterion the console cannot use (the message says which and why)."""


def parse_review_targets(text: str) -> dict[str, timedelta]:
    """`high=1h,medium=24h,low=72h` as {priority: target}; a priority left out has no target."""
    targets: dict[str, timedelta] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        priority, _, duration = (s.strip() for s in part.partition("="))
        matched = _DURATION.match(duration)
        if priority not in PRIORITY_ORDER or matched is None or int(matched[1]) == 0:
            raise QueueConfigError(f"{part!r}: give PRIORITY=DURATION, a priority of {', '.join(PRIORITY_ORDER)} "
                                   "and a duration such as 90m, 1h or 3d")
        if priority in targets:
            raise QueueConfigError(f"{priority} is given more than once")
        targets[priority] = timedelta(seconds=int(matched[1]) * _UNIT_SECONDS[matched[2]])
    return targets


def parse_review_criteria(text: str) -> frozenset[str]:
    """`high_priority,flagged` (or `all`, or review reason codes) as a set; at least one is needed."""
    criteria = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not criteria:
        raise QueueConfigError("name at least one of all, high_priority, flagged or a review reason code")
    bad = sorted(c for c in criteria if not REVIEW_CODE.match(c))
    if bad:
        raise QueueConfigError(f"{bad[0]!r} is not a criterion: use all, high_priority, flagged or a review code")
    return criteria


@dataclass(frozen=True)
class QueuedDecision:
    """What the queue keeps of one decision: the fields it orders and filters on, and when it reached the queue
    (`queued_at`, to the minute; `arrival`, its place in the order the console read them, for ties within one)."""

    decision_id: str
    intel_id: str
    priority: str
    outcomes: tuple[str, ...]
    categories: tuple[str, ...]
    review_codes: tuple[str, ...]
    queued_at: datetime
    arrival: int = 0
    revision: int = 0  # above 0 once a handler has confirmed or amended it


def review_grounds(item: QueuedDecision, criteria: frozenset[str]) -> tuple[str, ...]:
    """Why `item` needs review under `criteria`, as the criteria it meets; empty when it does not (and once a
    handler has reviewed it)."""
    if item.revision:
        return ()
    grounds: list[str] = []
    if ALL_DECISIONS in criteria:
        grounds.append(ALL_DECISIONS)
    if HIGH_PRIORITY in criteria and item.priority == "high":
        grounds.append(HIGH_PRIORITY)
    if FLAGGED in criteria and item.review_codes:
        grounds.append(FLAGGED)
    grounds.extend(code for code in item.review_codes if code in criteria and code not in grounds)
    return tuple(grounds)


class ClockStatus(StrEnum):
    WITHIN_TARGET = "within_target"
    BREACHED = "breached"
    NO_TARGET = "no_target"


@dataclass(frozen=True)
class Clock:
    """How long a decision has waited against its priority's target."""

    waited: timedelta
    target: timedelta | None

    @property
    def status(self) -> ClockStatus:
        if self.target is None:
            return ClockStatus.NO_TARGET
        return ClockStatus.BREACHED if self.waited > self.target else ClockStatus.WITHIN_TARGET

    @property
    def left(self) -> timedelta | None:
        """Time left before the target (negative once breached); None without a target."""
        return None if self.target is None else self.target - self.waited


def clock(item: QueuedDecision, now: datetime, targets: Mapping[str, timedelta]) -> Clock:
    """The clock of `item` at `now`; a clock never runs backwards past zero (a skewed host clock)."""
    return Clock(max(now - item.queued_at, timedelta(0)), targets.get(item.priority))


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters, each None for any; built from GET query parameters so they work without JavaScript."""

    category: str | None = None
    outcome: str | None = None
    priority: str | None = None
    status: ClockStatus | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> QueueFilter:
        """Known values only: an unknown or empty value is no filter (a stale bookmark still shows the queue)."""
        def known(name: str, allowed: Iterable[str]) -> str | None:
            value = query.get(name, "")
            return value if value in allowed else None

        status = known("status", [s.value for s in ClockStatus])
        return cls(known("category", CATEGORIES), known("outcome", OUTCOMES), known("priority", PRIORITY_ORDER),
                   ClockStatus(status) if status else None)

    def admits(self, item: QueuedDecision, item_clock: Clock) -> bool:
        return ((self.category is None or self.category in item.categories)
                and (self.outcome is None or self.outcome in item.outcomes)
                and (self.priority is None or self.priority == item.priority)
                and (self.status is None or self.status is item_clock.status))


@dataclass(frozen=True)
class QueueRow:
    """One decision on the review queue page: the decision, why it is there, and its clock."""

    item: QueuedDecision
    grounds: tuple[str, ...]
    clock: Clock


def review_queue(items: Iterable[QueuedDecision], *, criteria: frozenset[str], targets: Mapping[str, timedelta],
                 now: datetime, filters: QueueFilter | None = None) -> list[QueueRow]:
    """The decisions that need review and pass `filters`: high priority first, then the longest waiting."""
    filters = filters or QueueFilter()
    rows = []
    for item in items:
        grounds = review_grounds(item, criteria)
        item_clock = clock(item, now, targets)
        if grounds and filters.admits(item, item_clock):
            rows.append(QueueRow(item, grounds, item_clock))
    rank = {priority: number for number, priority in enumerate(PRIORITY_ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r.item.priority, len(rank)), r.item.queued_at, r.item.arrival,
                                       r.item.decision_id))


# -- reviewing a decision -------------------------------------------------------------------------------------

CONFIRM: Final = "confirm"
AMEND: Final = "amend"


@dataclass(frozen=True)
class ReviewForm:
    """What a handler sent from a decision's review page, as typed: the action, the revision they saw, and (to
    amend) the outcomes, priority and grading they chose; always a reason."""

    action: str
    revision: str
    reason: str
    outcomes: tuple[str, ...] = ()
    priority: str = ""
    source_evaluation: str = ""
    intelligence_assessment: str = ""
    handling_code: str = ""


@dataclass(frozen=True)
class ReviewProblem:
    """Why a review cannot be sent: the form field it is about (for the page to point at), a plain message, and
    the contract's error code where it is one."""

    field: str
    message: str
    code: str = ""


def _field_of(location: tuple[int | str, ...]) -> str:
    """The form field a contract error is about: `assessed.outcomes.0` is the outcomes, `reason` the reason."""
    names = [str(part) for part in location if isinstance(part, str)]
    for name in reversed(names):
        if name in {"outcomes", "priority", "reason", "source_evaluation", "intelligence_assessment",
                    "handling_code"}:
            return name
    return "outcomes" if "assessed" in names else "action"


def review_of(base: Decision, latest_revision: int, officer: Officer, form: ReviewForm,
              today: date) -> DecisionReview | list[ReviewProblem]:
    """The review to publish for `base` (the latest revision the console holds), or every problem with the form.

    The contract itself checks the amendment (no_action alone, priority none exactly with no_action, a grading
    in range) and the reason (length, no contact details); a confirmation keeps what the revision says, and an
    amendment that changes nothing is refused, as is a review of a revision that is no longer the latest."""
    if not officer.may_review_decisions:
        return [ReviewProblem("action", "Only a handler may confirm or amend a decision.")]
    if form.action not in {CONFIRM, AMEND}:
        return [ReviewProblem("action", "Choose to confirm the decision or to amend it.")]
    if form.revision != str(latest_revision):
        return [ReviewProblem("revision", "This decision has been reviewed since you opened it: open it again to "
                                          "see its latest revision.")]
    assessed: dict[str, object] = base.assessed.model_dump(mode="json")
    if form.action == AMEND:
        assessed = {"outcomes": list(form.outcomes), "priority": form.priority,
                    "grading": {"source_evaluation": int(form.source_evaluation)
                                if form.source_evaluation.isdecimal() else form.source_evaluation,
                                "intelligence_assessment": form.intelligence_assessment,
                                "handling_code": form.handling_code}}
    action = ReviewAction.CONFIRMED if form.action == CONFIRM else ReviewAction.AMENDED
    try:
        review = DecisionReview.model_validate({
            "base": base, "action": action, "assessed": assessed, "officer_id": officer.officer_id,
            "reason": form.reason, "reviewed_on": today})
    except ValidationError as exc:
        return [ReviewProblem(_field_of(error["loc"]), _message_of(error), error["type"]) for error in exc.errors()]
    if action is ReviewAction.AMENDED and review.assessed == base.assessed:
        return [ReviewProblem("outcomes", "The amendment changes nothing: change the outcomes, priority or grading, "
                                          "or confirm the decision instead.")]
    return review


def _message_of(error: ErrorDetails) -> str:
    """A contract error in the handler's words (pydantic's own for the plain cases)."""
    kind = error["type"]
    if kind == "string_too_short" and "reason" in error["loc"]:
        return f"Give a written reason of at least {REVIEW_REASON_MIN} characters."
    if kind == "string_too_long" and "reason" in error["loc"]:
        return f"Keep the reason to {REVIEW_REASON_MAX} characters at most."
    if kind == "too_short" and "outcomes" in error["loc"]:
        return "Choose at least one outcome."
    if kind in {"literal_error", "int_parsing", "enum"}:
        return "Choose one of the values offered."
    return error["msg"]


@dataclass(frozen=True)
class AgreementSummary:
    """Router against handler over every first review: the honest measure of the router in service."""

    reviews: int
    outcomes_agreed: int
    priority_agreed: int
    under_triaged: int  # drafts a handler raised to high: the costly error
    priorities: Mapping[tuple[Priority, Priority], int]  # (router, handler) -> reviews
    outcomes: Mapping[Outcome, tuple[int, int, int]]  # outcome -> (both gave it, router only, handler only)


def summarise_agreement(first_reviews: Iterable[tuple[Assessed, Assessed]]) -> AgreementSummary:
    """Count agreement by outcome set and priority, under-triage, and where the two differ."""
    pairs = list(first_reviews)
    compared = [agreement(draft, handler) for draft, handler in pairs]
    priorities: dict[tuple[Priority, Priority], int] = {}
    for draft, handler in pairs:
        priorities[draft.priority, handler.priority] = priorities.get((draft.priority, handler.priority), 0) + 1
    outcomes = {outcome: (sum(1 for d, h in pairs if outcome in d.outcomes and outcome in h.outcomes),
                          sum(1 for d, h in pairs if outcome in d.outcomes and outcome not in h.outcomes),
                          sum(1 for d, h in pairs if outcome not in d.outcomes and outcome in h.outcomes))
                for outcome in Outcome}
    return AgreementSummary(len(pairs), sum(c.outcomes_agreed for c in compared),
                            sum(c.priority_agreed for c in compared), sum(c.under_triaged for c in compared),
                            priorities, outcomes)
