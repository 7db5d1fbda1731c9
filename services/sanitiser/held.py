"""Intel held for review, pure: the held record and its revisions, and an officer's redaction.

The sanitiser holds an intel whose residual risk reaches the threshold (`hold`); an Intelligence
Unit officer may redact more (`redact`, then `revise`) and release it (`released`). Each step is a
new revision of one record keyed by intel id on cpi.intel.held.v1; `current` folds them into the
state of each intel. Kafka, the audit and the command line are in held_cli.py and the worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from pydantic import ValidationError

from schemas import HeldContent, HeldIntel, HeldReason, HeldStatus, SanitisedIntel
from schemas.base import utc_today
from services.common.envelope import PrivateKeyring, RecipientKey, open_sealed, seal_to
from services.common.errors import CpiError
from services.sanitiser.domain import REDACTION_MARKER
from services.sanitiser.residual import ResidualRisk, assess_residual_risk

# The contract's bounds (schemas/held.py): an intel with more findings keeps its score, and the
# first findings are enough for an officer to see what to redact.
_MAX_REASONS, _MAX_EXCERPT = 200, 500
# The contract's length limits of the free-text fields (schemas/intel.py and base.py).
_INFORMATION, _DESCRIPTION = 20_000, 2000


class HeldRecordUnreadable(CpiError):
    """A held record carries no sealed intel (it was released) or its envelope does not open."""


def hold(intel: SanitisedIntel, risk: ResidualRisk, unseal: RecipientKey, *, held_on: date | None = None) -> HeldIntel:
    """Revision 1: the intel and its reasons sealed to the unseal public key, bound to its id; only the
    score and codes readable."""
    return _revision(intel, risk, unseal, revision=1, status=HeldStatus.HELD, held_on=held_on or utc_today())


def revise(previous: HeldIntel, intel: SanitisedIntel, unseal: RecipientKey) -> HeldIntel:
    """The revision after an officer's redaction, with its residual risk assessed again."""
    return _revision(intel, assess_residual_risk(intel), unseal, revision=previous.revision + 1,
                     status=HeldStatus.REDACTED, held_on=previous.held_on)


def released(previous: HeldIntel) -> HeldIntel:
    """The revision that ends a review: the intel is on cpi.intel.sanitised.v1 now, so no envelope."""
    return HeldIntel(intel_id=previous.intel_id, held_on=previous.held_on, revision=previous.revision + 1,
                     status=HeldStatus.RELEASED, score=previous.score, reason_codes=previous.reason_codes)


def _revision(intel: SanitisedIntel, risk: ResidualRisk, unseal: RecipientKey, *, revision: int,
              status: HeldStatus, held_on: date) -> HeldIntel:
    content = HeldContent(
        intel=intel,
        reasons=[HeldReason(code=r.code, excerpt=r.excerpt[:_MAX_EXCERPT]) for r in risk.reasons[:_MAX_REASONS]],
    )
    return HeldIntel(
        intel_id=intel.intel_id, held_on=held_on, revision=revision, status=status, score=risk.score,
        reason_codes=list(risk.codes),
        sealed=seal_to(content.model_dump_json().encode(), intel.intel_id.encode(), unseal),
    )


def open_held(record: HeldIntel, unseal: PrivateKeyring) -> HeldContent:
    """The intel and reasons a held record seals; only with the unseal private key, only under its own intel id."""
    if record.sealed is None:
        raise HeldRecordUnreadable("a released record carries no sealed intel")
    plaintext = open_sealed(record.sealed, record.intel_id.encode(), unseal)
    try:
        content = HeldContent.model_validate_json(plaintext)
    except ValidationError:
        raise HeldRecordUnreadable("the sealed held record is not HeldContent") from None
    if content.intel.intel_id != record.intel_id:
        raise HeldRecordUnreadable("the sealed held record is about another intel")
    return content


def current(records: Iterable[HeldIntel]) -> dict[str, HeldIntel]:
    """Each intel's state: its highest revision, of equal ones the later (records in topic order).

    Highest, not simply last: a sanitiser that crashed before committing re-publishes revision 1,
    which may land after an officer's revision 2.
    """
    state: dict[str, HeldIntel] = {}
    for record in records:
        known = state.get(record.intel_id)
        if known is None or record.revision >= known.revision:
            state[record.intel_id] = record
    return state


@dataclass(frozen=True)
class ReviewClock:
    """Held intel waiting for the Intelligence Unit, and how many of them have waited past the target."""

    waiting: int
    overdue: int


def review_clock(waiting: Iterable[HeldIntel], today: date, target_days: int) -> ReviewClock:
    """Count held (not released) intel, and those held more than `target_days` days before `today`. Days,
    because a held record carries the day it was held and no finer time."""
    ages = [(today - record.held_on).days for record in waiting if record.status is not HeldStatus.RELEASED]
    return ReviewClock(waiting=len(ages), overdue=sum(1 for age in ages if age > target_days))


@dataclass(frozen=True)
class Redaction:
    """The intel with an officer's strings replaced, and how often each string was found (as given)."""

    intel: SanitisedIntel
    found: tuple[int, ...]


def redact(intel: SanitisedIntel, texts: Sequence[str]) -> Redaction:
    """Replace each of `texts`, in any case and as a whole word, with the scrubber's marker in every
    free-text field (information, subjects' descriptions and addresses, locations' and vehicles'
    descriptions); count each replacement in redaction_count.

    Whole words, so redacting an initial "K" does not take the k out of every word; longer strings
    first, so "Jo Bloggs" goes whole before "Jo"; markers already there are never rewritten.
    """
    wanted = [text.strip() for text in texts]
    if not wanted or not all(wanted):
        raise ValueError("every text to redact must have a character other than space")
    longest_first = sorted(range(len(wanted)), key=lambda i: -len(wanted[i]))
    pattern = re.compile("|".join(f"(?P<t{i}>{_whole_word(wanted[i])})" for i in longest_first), re.IGNORECASE)
    found = [0] * len(wanted)

    def replace(match: re.Match[str]) -> str:
        found[int((match.lastgroup or "t0")[1:])] += 1
        return REDACTION_MARKER

    def clean(text: str, limit: int) -> str:
        cleaned = REDACTION_MARKER.join(pattern.sub(replace, part) for part in text.split(REDACTION_MARKER))
        # A marker can be longer than what it replaced; never break the contract's length limit
        # (ASCII dots: the contract's normalisation would make "…" three characters anyway).
        return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."

    def maybe(text: str | None) -> str | None:
        return None if text is None else clean(text, _DESCRIPTION)

    data = intel.model_dump()
    data["information"] = clean(intel.information, _INFORMATION)
    data["subjects"] = [s.model_dump() | {"description": maybe(s.description), "address": maybe(s.address)}
                        for s in intel.subjects]
    data["locations"] = [loc.model_dump() | {"description": clean(loc.description, _DESCRIPTION)}
                         for loc in intel.locations]
    data["vehicles"] = [v.model_dump() | {"description": maybe(v.description)} for v in intel.vehicles]
    data["redaction_count"] = intel.redaction_count + sum(found)
    return Redaction(intel=SanitisedIntel.model_validate(data), found=tuple(found))


def _whole_word(text: str) -> str:
    start = r"(?<!\w)" if re.match(r"\w", text[0]) else ""
    end = r"(?!\w)" if re.match(r"\w", text[-1]) else ""
    return start + re.escape(text) + end
