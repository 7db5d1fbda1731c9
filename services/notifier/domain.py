"""Which teams hear about a decision, and what they are told. Pure: no I/O.

A notification says what the intelligence is and why it was routed, from the sanitised decision
alone; nothing in it can come from the source, since the decision never held any.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from schemas import Decision, Outcome, Team

_NAMESPACE = uuid.UUID("6f1d9c57-3c43-4d0e-9d3a-0b7f1b8f2a11")
TEAM_OF_OUTCOME = {Outcome.CRIME_DESK: Team.CRIME_DESK, Outcome.SAFEGUARDING: Team.SAFEGUARDING}


@dataclass(frozen=True)
class Notification:
    notification_id: str
    team: Team
    outcome: Outcome
    subject: str
    body: str


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
        notes.append(
            Notification(
                notification_id=notification_id(decision.decision_id, team),
                team=team,
                outcome=outcome,
                subject=f"[CPI {decision.priority.value.upper()}] {outcome.value.replace('_', ' ')}: "
                f"intel {decision.intel_id}",
                body=render_body(decision, outcome),
            )
        )
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
