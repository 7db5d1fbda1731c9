"""Which teams hear about a decision, and what they are told. Pure: no I/O but `load_routing_table`, which reads
and validates the routing table once at start-up.

The routing table (docs/alert-routing.md) names teams, each with its channels and the conditions on a decision
under which it is told; `route` picks every team whose conditions hold, or the default team. A notification
says what the intelligence is and why it was routed, from the sanitised decision alone; nothing in it can come
from the source, since the decision never held any.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas import Category, Decision, Outcome, Priority, WebhookAlert
from schemas.notification import RoutingVersion, TeamName
from schemas.submission import SubjectRole
from services.common.datafile import load_yaml_model

_NAMESPACE = uuid.UUID("6f1d9c57-3c43-4d0e-9d3a-0b7f1b8f2a11")
# The outcomes that refer a decision to a team: one of these that no team's conditions take goes to the default.
NOTIFIABLE = (Outcome.CRIME_DESK, Outcome.SAFEGUARDING)
CHILD_UNDER = 18


# docs/webhooks.md: the header a team's system checks, and how long a signature stays acceptable.
SIGNATURE_HEADER = "CPI-Signature"
REPLAY_WINDOW_SECONDS = 300
MIN_SECRET_CHARS = 32


# ------------------------------------------------------------------------------ the routing table
# docs/alert-routing.md describes the file; every model refuses fields it does not know.


class _TableModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def in_allowed_domains(address: str, allowed: Sequence[str]) -> bool:
    """Whether mail to `address` stays within `allowed` (a domain admits its subdomains); empty admits any."""
    domains = [domain.strip().lower().strip(".") for domain in allowed]
    domain = address.rpartition("@")[2].strip().lower()
    return not domains or any(domain == ok or domain.endswith("." + ok) for ok in domains)


# An address a team reads: the local default's `crime-desk@localhost` too (the allow-list keeps a force's in it).
Address = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9]"
                                                                      r"(?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")]


class EmailChannel(_TableModel):
    """Mail to one address (by SMTP, or to the outbox where no SMTP host is set)."""

    kind: ClassVar[Literal["email"]] = "email"
    email: Address

    @model_validator(mode="after")
    def _within_the_allowed_domains(self, info: ValidationInfo) -> EmailChannel:
        allowed = (info.context or {}).get("allowed_domains", [])
        if not in_allowed_domains(self.email, allowed):
            raise PydanticCustomError(
                "mail_domain_not_allowed", "'{address}' is not in CPI_MAIL_ALLOWED_DOMAINS: mail there would leave "
                "the domains intelligence may go to", {"address": self.email})
        return self

    @property
    def target(self) -> str:
        return self.email


EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]


class WebhookChannel(_TableModel):
    """An HTTPS POST of the signed WebhookAlert. `secrets` name the environment variables holding the signing
    secrets (one, or two while the team rotates); the secrets themselves are never in the table."""

    kind: ClassVar[Literal["webhook"]] = "webhook"
    webhook: Annotated[str, Field(min_length=8, max_length=2000)]
    secrets: Annotated[list[EnvName], Field(min_length=1, max_length=2)]
    _signing: tuple[SecretStr, ...] = PrivateAttr(default=())

    @field_validator("webhook")
    @classmethod
    def _private(cls, url: str) -> str:
        parsed = urlsplit(url)
        loopback = parsed.hostname in {"127.0.0.1", "::1", "localhost"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise PydanticCustomError("webhook_not_https",
                                      "a webhook must be https:// (plain http only to this machine)")
        return url

    @field_validator("secrets")
    @classmethod
    def _secrets_set(cls, names: list[str], info: ValidationInfo) -> list[str]:
        environ: Mapping[str, str] = (info.context or {}).get("environ", {})
        for name in names:
            if len(environ.get(name, "")) < MIN_SECRET_CHARS:
                raise PydanticCustomError(
                    "webhook_secret_missing", "the webhook's secret {name} must be set, at least {chars} characters, "
                    "so its receiver can tell a real alert", {"name": name, "chars": MIN_SECRET_CHARS})
        return names

    @model_validator(mode="after")
    def _keep_the_secrets(self, info: ValidationInfo) -> WebhookChannel:
        environ: Mapping[str, str] = (info.context or {}).get("environ", {})
        self._signing = tuple(SecretStr(environ[name]) for name in self.secrets)
        return self

    @property
    def target(self) -> str:
        return self.webhook

    @property
    def signing_secrets(self) -> tuple[SecretStr, ...]:
        return self._signing


def _channel_kind(value: Any) -> str:
    webhook = "webhook" in value if isinstance(value, dict) else isinstance(value, WebhookChannel)
    return "webhook-channel" if webhook else "email-channel"


# A channel is a webhook if it says `webhook:`, else mail (so a mistake gets one channel kind's errors, not both).
Channel = Annotated[
    Annotated[EmailChannel, Tag("email-channel")] | Annotated[WebhookChannel, Tag("webhook-channel")],
    Discriminator(_channel_kind),
]
# A postcode area (`BS`) or district (`BS5`, `EC1A`): the outward code's letters, or the whole outward code.
Area = Annotated[str, Field(pattern=r"^[A-Z]{1,2}(?:[0-9][A-Z0-9]?)?$")]


class Conditions(_TableModel):
    """When a team is told: every condition given holds (a list holds when any of its entries does)."""

    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=4)]
    categories: Annotated[list[Category], Field(max_length=8)] = []
    priorities: Annotated[list[Priority], Field(max_length=4)] = []
    at_risk: Literal["child", "adult"] | None = None  # a subject at risk is under 18 / 18 or over
    areas: Annotated[list[Area], Field(max_length=500)] = []


class TeamRoute(_TableModel):
    """One team: its name (on every record and metric), when it is told, and how."""

    name: TeamName
    when: Conditions
    channels: Annotated[list[Channel], Field(min_length=1, max_length=10)]


class RoutingTable(_TableModel):
    """The whole file: its version (stamped on every delivered record), the teams, and the team told of a
    decision for crime desk or safeguarding that no team's conditions take."""

    version: RoutingVersion
    default_team: TeamName
    teams: Annotated[list[TeamRoute], Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _names_resolve(self) -> RoutingTable:
        seen: set[str] = set()
        for index, team in enumerate(self.teams):
            if team.name in seen:
                raise PydanticCustomError("duplicate_team", "Team name '{team}' is used twice.",
                                          {"team": team.name, "path": f"teams.{index}.name"})
            seen.add(team.name)
        if self.default_team not in seen:
            raise PydanticCustomError("unknown_default_team", "default_team '{team}' is not one of the teams.",
                                      {"team": self.default_team, "path": "default_team"})
        return self

    def team(self, name: str) -> TeamRoute:
        return next(team for team in self.teams if team.name == name)


def load_routing_table(path: Path, environ: Mapping[str, str], allowed_domains: Sequence[str]) -> RoutingTable:
    """Read and validate the routing table (webhook secrets from `environ`, addresses against the allow-list);
    a bad file raises ConfigurationError naming the file and the line."""
    return load_yaml_model(path, RoutingTable, "the alert routing table",
                           context={"environ": environ, "allowed_domains": list(allowed_domains)})


# ----------------------------------------------------------------------------------- routing


def _places(decision: Decision) -> set[str]:
    """The postcode areas and districts of the decision's locations: `BS5 9AB` gives BS and BS5 (`EC1A 1BB`
    gives EC, EC1A and EC1)."""
    places: set[str] = set()
    for location in decision.intel.locations:
        if location.postcode is None:
            continue
        outward = location.postcode.split()[0]
        places.add(outward)
        places.add(outward[:2] if outward[1].isalpha() else outward[:1])
        if len(outward) > 2 and outward[-1].isalpha() and any(c.isdigit() for c in outward):
            places.add(outward[:-1])
    return places


def team_matches(team: TeamRoute, decision: Decision) -> bool:
    """Whether every condition the team gives holds for the decision."""
    when = team.when
    if not set(when.outcomes) & set(decision.outcomes):
        return False
    if when.categories and not set(when.categories) & set(decision.intel.categories):
        return False
    if when.priorities and decision.priority not in when.priorities:
        return False
    if when.at_risk is not None:
        ages = [subject.age_on(decision.intel.received_on) for subject in decision.intel.subjects
                if subject.role is SubjectRole.AT_RISK]
        child = any(age is not None and age < CHILD_UNDER for age in ages)
        adult = any(age is not None and age >= CHILD_UNDER for age in ages)
        if not (child if when.at_risk == "child" else adult):
            return False
    return not when.areas or bool(set(when.areas) & _places(decision))


@dataclass(frozen=True)
class Notification:
    notification_id: str
    team: str
    outcome: Outcome
    subject: str
    body: str
    alert: WebhookAlert  # what a webhook receives: the same summary, as a versioned schema
    channel: EmailChannel | WebhookChannel
    routing_version: str
    revision: int = 0  # the decision's revision that made it
    withdrawn: bool = False  # a withdrawal: the revision no longer refers the decision to this team


@dataclass(frozen=True)
class Routing:
    """Who a decision goes to: a notification per channel of every matching team, and whether no team matched
    (so they went to the default team)."""

    notifications: list[Notification]
    unmatched: bool


def notification_id(decision_id: str, team: str, channel: str | None = None, revision: int = 0,
                    withdrawn: bool = False) -> str:
    """Deterministic: a redelivered decision maps to the same notification, so it is sent once. A team with one
    channel keeps the id it had before teams had several (decision and team), so a ledger carries over; and a
    draft (revision 0) the id it had before revisions. A revision's referral or withdrawal has an id of its own,
    so a team taken off and put back by later revisions is told each time, and each only once."""
    suffix = (f":{channel}" if channel else "") + (f":r{revision}" if revision else "") + (":withdrawn" if withdrawn
                                                                                          else "")
    return uuid.uuid5(_NAMESPACE, f"{decision_id}:{team}{suffix}").hex


def _drafted(decision: Decision, table: RoutingTable, revision: int = 0) -> Routing:
    """Every team whose conditions hold for the decision's outcomes and priority, as `route` describes."""
    teams = [team for team in table.teams if team_matches(team, decision)]
    unmatched = not teams and any(outcome in NOTIFIABLE for outcome in decision.outcomes)
    if unmatched:
        teams = [table.team(table.default_team)]
    notes = []
    for team in teams:
        wanted = [o for o in decision.outcomes if o in team.when.outcomes] if not unmatched else []
        candidates = wanted or [o for o in decision.outcomes if o in NOTIFIABLE]
        outcome = next((o for o in candidates if o in NOTIFIABLE), candidates[0])
        for channel in team.channels:
            note_id = notification_id(decision.decision_id, team.name,
                                      channel.target if len(team.channels) > 1 else None, revision)
            label = outcome.value.replace("_", " ")
            revised = f" (revision {revision}, after review)" if revision else ""
            subject = f"[CPI {decision.priority.value.upper()}] {label}: intel {decision.intel_id}{revised}"
            body = render_body(decision, outcome, team.name, table.version, unmatched)
            notes.append(_note(note_id, team.name, outcome, subject, body, decision, channel, table.version, revision))
    return Routing(notifications=notes, unmatched=unmatched)


def _note(note_id: str, team: str, outcome: Outcome, subject: str, body: str, decision: Decision,
          channel: EmailChannel | WebhookChannel, routing_version: str, revision: int,
          withdrawn: bool = False) -> Notification:
    alert = WebhookAlert(
        notification_id=note_id, decision_id=decision.decision_id, intel_id=decision.intel_id, team=team,
        outcome=outcome, priority=decision.priority, categories=list(decision.intel.categories),
        received_on=decision.intel.received_on, rules_version=decision.rules_version, subject=subject, body=body,
        revision=revision, withdrawn=withdrawn,
    )
    return Notification(notification_id=note_id, team=team, outcome=outcome, subject=subject, body=body, alert=alert,
                        channel=channel, routing_version=routing_version, revision=revision, withdrawn=withdrawn)


@dataclass(frozen=True)
class RevisionChange:
    """What a reviewed revision changes for the teams: those it adds (to be told), those it removes (to be sent a
    withdrawal), and those it keeps (told already: nothing more)."""

    added: frozenset[str]
    withdrawn: frozenset[str]
    kept: frozenset[str]


def revision_change(before: Iterable[str], after: Iterable[str]) -> RevisionChange:
    """The teams told of the revision before, and those the revision itself routes to, as a change."""
    told, routed = frozenset(before), frozenset(after)
    return RevisionChange(added=routed - told, withdrawn=told - routed, kept=told & routed)


def previous_revision(decision: Decision) -> Decision:
    """The revision before a reviewed one, as far as routing goes: its outcomes, priority and grading."""
    assert decision.reviewed is not None
    return decision.model_copy(update=dict(decision.reviewed.previous))


def route(decision: Decision, table: RoutingTable) -> Routing:
    """Every team whose conditions hold hears of the decision, once per channel; a decision for crime desk or
    safeguarding that no team takes goes to the default team; others (intelligence log, no action) go only
    to teams that ask for them.

    A reviewed revision tells only what changed (both revisions routed under the table as it is now): a team it
    adds is told, a team it removes is sent a withdrawal, a team it keeps hears nothing more (so a confirmation
    tells no one)."""
    if decision.reviewed is None:
        return _drafted(decision, table)
    before = _drafted(previous_revision(decision), table)
    after = _drafted(decision, table, decision.revision)
    change = revision_change((n.team for n in before.notifications), (n.team for n in after.notifications))
    notes = [n for n in after.notifications if n.team in change.added]
    notes += [_withdrawal(n, decision, table) for n in before.notifications if n.team in change.withdrawn]
    return Routing(notifications=notes, unmatched=after.unmatched and bool(change.added))


def _withdrawal(told: Notification, decision: Decision, table: RoutingTable) -> Notification:
    """The notice to a team that a reviewed revision no longer refers the decision to it. Neither the reviewer's
    reason nor their id goes in it: only that it was reviewed, when, and what stands now."""
    assert decision.reviewed is not None
    label = told.outcome.value.replace("_", " ")
    subject = f"[CPI WITHDRAWN] {label}: intel {decision.intel_id} (revision {decision.revision}, after review)"
    body = "\n".join([
        f"Withdrawn: after review by the Intelligence Unit on {decision.reviewed.reviewed_on.isoformat()}, intel "
        f"{decision.intel_id} no longer comes to {told.team}.",
        f"It was sent to you as {told.outcome.value}; its outcomes are now: "
        f"{', '.join(o.value for o in decision.outcomes)} (priority {decision.priority.value}).",
        f"Decision {decision.decision_id}, revision {decision.revision}.",
        "",
        "The source of this information is protected. Only the Intelligence Unit may re-contact them.",
        "",
        f"Sent to {told.team} by alert routing table {table.version}.",
    ])
    channel_key = told.channel.target if len(table.team(told.team).channels) > 1 else None
    note_id = notification_id(decision.decision_id, told.team, channel_key, decision.revision, withdrawn=True)
    return _note(note_id, told.team, told.outcome, subject, body, decision, told.channel, table.version,
                 decision.revision, withdrawn=True)


def notifications_for(decision: Decision, table: RoutingTable) -> list[Notification]:
    """The notifications `route` makes for the decision."""
    return route(decision, table).notifications


def render_body(decision: Decision, outcome: Outcome, team: str = "", routing_version: str = "",
                unmatched: bool = False) -> str:
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
    if decision.reviewed is not None:
        lines += ["", f"Revision {decision.revision}: reviewed by the Intelligence Unit on "
                      f"{decision.reviewed.reviewed_on.isoformat()}; this revision refers it to you."]
    if team:
        lines += ["", f"Sent to {team} by alert routing table {routing_version}."]
    if unmatched:
        lines.append("No team's conditions matched this decision, so it came to the default team: please pass it on.")
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
