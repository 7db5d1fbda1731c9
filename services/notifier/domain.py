"""Which teams hear about a decision, and what they are told. Pure: no I/O.

A notification says what the intelligence is and why it was routed, from the sanitised decision
alone; nothing in it can come from the source, since the decision never held any.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from schemas import Decision, Outcome, Team, WebhookAlert

_NAMESPACE = uuid.UUID("6f1d9c57-3c43-4d0e-9d3a-0b7f1b8f2a11")
TEAM_OF_OUTCOME = {Outcome.CRIME_DESK: Team.CRIME_DESK, Outcome.SAFEGUARDING: Team.SAFEGUARDING}


# docs/webhooks.md: the header a team's system checks, and how long a signature stays acceptable.
SIGNATURE_HEADER = "CPI-Signature"
REPLAY_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Notification:
    notification_id: str
    team: Team
    outcome: Outcome
    subject: str
    body: str
    alert: WebhookAlert  # what a webhook receives: the same summary, as a versioned schema


def notification_id(decision_id: str, team: Team) -> str:
    """Deterministic: a redelivered decision maps to the same notification, so it is sent once."""
    return uuid.uuid5(_NAMESPACE, f"{decision_id}:{team.value}").hex


def notifications_for(decision: Decision) -> list[Notification]:
    """One notification per team the decision routes to (crime desk, safeguarding); none otherwise."""
    notes = []
    for outcome in decision.outcomes:
        team = TEAM_OF_OUTCOME.get(outcome)
        if team is None:
            continue
        note_id = notification_id(decision.decision_id, team)
        label = outcome.value.replace("_", " ")
        label = outcome.value.replace("_", " ")
        subject = f"[CPI {decision.priority.value.upper()}] {label}: intel {decision.intel_id}"
        body = render_body(decision, outcome)
        alert = WebhookAlert(
            notification_id=note_id, decision_id=decision.decision_id, intel_id=decision.intel_id, team=team,
            outcome=outcome, priority=decision.priority, categories=list(decision.intel.categories),
            received_on=decision.intel.received_on, rules_version=decision.rules_version, subject=subject, body=body,
        )
        notes.append(Notification(notification_id=note_id, team=team, outcome=outcome, subject=subject, body=body,
                                  alert=alert))
    return notes


def render_body(decision: Decision, outcome: Outcome) -> str:
    intel = decision.intel
    grading = decision.grading
    lines = [
        f"Outcome: {outcome.value} (all outcomes: {', '.join(o.value for o in decision.outcomes)})",
        f"Priority: {decision.priority.value}",
        f"Intel id: {intel.intel_id}   Received on: {intel.received_on.isoformat()}",
        f"Grading: {grading.source_evaluation}{grading.intelligence_assessment}{grading.handling_code}",
        f"Categories: {', '.join(c.value for c in intel.categories)}",
        "",
        "Why:",
        *[f"- {firing.reason}" for firing in decision.rationale],
        "",
        "THRIVE:",
        f"- Threat: {decision.thrive.threat}",
        f"- Harm: {decision.thrive.harm}",
        f"- Risk: {decision.thrive.risk}",
        f"- Vulnerability: {decision.thrive.vulnerability}",
        "",
        "Information (sanitised):",
        intel.information,
        "",
        "The source of this information is protected. Only the Intelligence Unit may re-contact them.",
    ]
    return "\n".join(lines)


def _signature(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(body: bytes, timestamp: int, secrets: Sequence[bytes]) -> str:
    """The `CPI-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`, one `v1` per
    secret, so while a team rotates its secret either the old or the new one verifies."""
    if not secrets:
        raise ValueError("a webhook is signed with at least one secret")
    return ",".join([f"t={timestamp}", *(f"v1={_signature(secret, timestamp, body)}" for secret in secrets)])


def verify_webhook(header: str, body: bytes, secrets: Sequence[bytes], now: float,
                   window: float = REPLAY_WINDOW_SECONDS) -> bool:
    """What a receiver checks (docs/webhooks.md): the timestamp is within `window` seconds of `now`, and one
    `v1` signature matches one of its secrets over the exact bytes received. Constant-time comparison."""
    parts = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    given = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not given:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > window:
        return False
    expected = [_signature(secret, timestamp, body) for secret in secrets]
    return any(hmac.compare_digest(mine, theirs) for mine in expected for theirs in given)
