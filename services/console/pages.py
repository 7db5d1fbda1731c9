"""The console's pages: server-rendered HTML that works without JavaScript, every value escaped where written.

Pure string building, as the intake form is. Every form that changes anything is a POST carrying the
session's CSRF token. Only `recontact_details` ever shows anything of a source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from html import escape

from schemas import Decision, HeldContent, HeldIntel, Priority, SanitisedIntel, Source
from schemas.decision import REVIEW_REASON_MAX, REVIEW_REASON_MIN
from services.console.domain import (
    CATEGORIES,
    OUTCOMES,
    PRIORITY_ORDER,
    AgreementSummary,
    ClockStatus,
    Officer,
    QueueFilter,
    QueueRow,
    RecontactRequest,
    RequestStatus,
    ReviewForm,
    ReviewProblem,
    highlight,
)
from services.sanitiser.adapters.sealed_store import MIN_REASON_CHARS

# The residual-risk codes (services/sanitiser/residual.py), in words.
REASON_CODES = {
    "email_address": "an email address",
    "web_address": "a web address",
    "phone_number": "a phone number",
    "name_in_sign_off": "a name in a sign-off",
    "beside_marker": "text beside a redaction, which may be part of what was removed",
    "unexplained_acronym": "an acronym that may name an organisation",
    "person_not_a_subject": "someone who is not a subject, seeing or telling something: perhaps a colleague",
    "named_premises": "named premises that may be the sharer's own",
}


def _layout(title: str, main: str, officer: Officer | None = None, csrf: str = "") -> str:
    nav = ""
    if officer is not None:
        nav = (f'<nav aria-label="Console"><ul class="nav"><li><a href="/">Home</a></li>'
               f'<li><a href="/queue">Queues</a></li><li><a href="/held">Held reports</a></li>'
               f'<li><a href="/recontact">Re-contact</a></li><li><a href="/agreement">Agreement</a></li></ul>'
               f'<form method="post" action="/signout" class="signout">{_csrf(csrf)}'
               f'<span>Signed in as <strong>{escape(officer.officer_id)}</strong> '
               f'({escape(", ".join(sorted(officer.roles)) or "no console role")})</span> '
               f'<button type="submit">Sign out</button></form></nav>')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - Intelligence Unit console</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body><a class="skip-link" href="#main">Skip to main content</a>
<header class="header"><div class="width"><span class="service">Intelligence Unit console</span>{nav}</div></header>
<div class="width"><main id="main">{main}</main></div>
</body></html>"""


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value="{escape(token)}">' if token else ""


def _reason_field(name: str, label: str, hint: str) -> str:
    return (f'<div class="form-group"><label for="{name}">{escape(label)}</label>'
            f'<p class="hint" id="{name}-hint">{escape(hint)} At least {MIN_REASON_CHARS} characters; '
            f'it is kept in the audit log.</p>'
            f'<textarea id="{name}" name="reason" rows="3" required minlength="{MIN_REASON_CHARS}" '
            f'maxlength="2000" aria-describedby="{name}-hint"></textarea></div>')


def message(title: str, text: str, officer: Officer | None = None, csrf: str = "", *, link: str = "") -> str:
    """A page with one heading and one message (errors, refusals, confirmations)."""
    more = f'<p><a href="{escape(link)}">Continue</a></p>' if link else ""
    return _layout(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{more}", officer, csrf)


def signed_out() -> str:
    return _layout("Sign in", '<h1>Sign in</h1><p>Sign in with your force account to use the console.</p>'
                              '<p><a class="button" href="/signin">Sign in</a></p>')


def home(officer: Officer, csrf: str) -> str:
    items = ['<li><a href="/queue">Queues</a>: decisions waiting for review, high priority first, each against '
             'its target time; and held reports waiting for release.</li>']
    if officer.intelligence_unit:
        items.append('<li><a href="/held">Held reports</a>: reports the sanitiser was not sure were free of '
                     'anything that identifies their source, waiting for an officer to redact and release them.</li>')
    items.append('<li><a href="/recontact">Re-contact</a>: ask for a source\'s details, with a written reason '
                 'and a supervisor\'s approval; approve or refuse others\' requests.</li>')
    return _layout("Home", f"<h1>Intelligence Unit console</h1><ul>{''.join(items)}</ul>", officer, csrf)


def held_list(officer: Officer, csrf: str, records: Sequence[HeldIntel]) -> str:
    if not records:
        body = "<p>No reports are held for review.</p>"
    else:
        rows = "".join(
            f'<tr><td><a href="/held/{escape(r.intel_id)}">{escape(r.intel_id)}</a></td>'
            f"<td>{escape(r.held_on.isoformat())}</td><td>{r.revision}</td><td>{r.score:.2f}</td>"
            f"<td>{escape(', '.join(r.reason_codes))}</td></tr>"
            for r in records)
        body = ('<table><caption>Held reports, oldest first</caption><thead><tr><th scope="col">Intel</th>'
                '<th scope="col">Held on</th><th scope="col">Revision</th><th scope="col">Risk score</th>'
                f'<th scope="col">Reasons</th></tr></thead><tbody>{rows}</tbody></table>')
    return _layout("Held reports", f"<h1>Held reports</h1>{body}", officer, csrf)


def held_open(officer: Officer, csrf: str, record: HeldIntel) -> str:
    """Asks why the officer opens a held report: opening it is audited."""
    main = (f"<h1>Held report {escape(record.intel_id)}</h1>"
            f"<p>Held on {escape(record.held_on.isoformat())}, revision {record.revision}, "
            f"risk score {record.score:.2f} ({escape(', '.join(record.reason_codes))}).</p>"
            f'<form method="post" action="/held/{escape(record.intel_id)}/show">{_csrf(csrf)}'
            + _reason_field("reason", "Why are you opening this report?", "It may still identify its source.")
            + '<button type="submit">Open the report</button></form>')
    return _layout("Held report", main, officer, csrf)


def _marked(text: str, content: HeldContent) -> str:
    parts = []
    for segment in highlight(text, [(r.code, r.excerpt) for r in content.reasons]):
        if segment.code is None:
            parts.append(escape(segment.text))
        else:
            what = REASON_CODES.get(segment.code, segment.code)
            parts.append(f'<mark>{escape(segment.text)}<span class="visually-hidden"> (risk: {escape(what)})'
                         "</span></mark>")
    return "".join(parts)


def held_review(officer: Officer, csrf: str, record: HeldIntel, content: HeldContent, *, note: str = "") -> str:
    """The scrubbed text with each risk reason highlighted, and the redact and release forms."""
    intel = content.intel
    reasons = "".join(f"<li><strong>{escape(REASON_CODES.get(r.code, r.code))}</strong>: "
                      f"<q>{escape(r.excerpt)}</q></li>" for r in content.reasons) or "<li>None left.</li>"
    fields = []
    for number, subject in enumerate(intel.subjects, start=1):
        for label, value in (("description", subject.description), ("address", subject.address)):
            if value:
                fields.append(f"<dt>Person {number}, {label}</dt><dd>{_marked(value, content)}</dd>")
    for number, location in enumerate(intel.locations, start=1):
        fields.append(f"<dt>Place {number}</dt><dd>{_marked(location.description, content)}</dd>")
    for number, vehicle in enumerate(intel.vehicles, start=1):
        if vehicle.description:
            fields.append(f"<dt>Vehicle {number}</dt><dd>{_marked(vehicle.description, content)}</dd>")
    other = f"<h2>Other text</h2><dl>{''.join(fields)}</dl>" if fields else ""
    notice = f'<div class="notice" role="status"><p>{escape(note)}</p></div>' if note else ""
    action = f"/held/{escape(record.intel_id)}"
    main = (f"<h1>Held report {escape(record.intel_id)}</h1>{notice}"
            f"<p>Revision {record.revision}, risk score {record.score:.2f}. Highlighted: what may identify the "
            "source.</p>"
            f"<h2>Risk reasons</h2><ul>{reasons}</ul>"
            f'<h2>Information</h2><div class="intel-text">{_marked(intel.information, content)}</div>{other}'
            f'<h2>Redact more</h2><form method="post" action="{action}/redact">{_csrf(csrf)}'
            '<div class="form-group"><label for="texts">Text to redact</label>'
            '<p class="hint" id="texts-hint">One per line, exactly as it appears; every occurrence, in any case, '
            'is replaced by the redaction marker. Redaction cannot be undone.</p>'
            '<textarea id="texts" name="texts" rows="3" required aria-describedby="texts-hint"></textarea></div>'
            + _reason_field("redact-reason", "Why redact this?", "")
            + '<button type="submit">Redact</button></form>'
            f'<h2>Release</h2><form method="post" action="{action}/release">{_csrf(csrf)}'
            + _reason_field("release-reason", "Why is it safe to release?", "It goes to the router as it is now.")
            + '<button type="submit">Release to the router</button></form>')
    return _layout("Held report", main, officer, csrf)


def recontact(officer: Officer, csrf: str, mine: Sequence[RecontactRequest],
              pending: Sequence[RecontactRequest], *, note: str = "") -> str:
    notice = f'<div class="notice" role="status"><p>{escape(note)}</p></div>' if note else ""
    parts = [f"<h1>Re-contact a source</h1>{notice}"]
    if officer.may_request_recontact:
        parts.append(f'<h2>Ask for a source\'s details</h2><form method="post" action="/recontact">{_csrf(csrf)}'
                     '<div class="form-group"><label for="intel_id">Intel id</label>'
                     '<input id="intel_id" name="intel_id" required pattern="[0-9a-f]{32}" '
                     'autocomplete="off" spellcheck="false"></div>'
                     + _reason_field("reason", "Why do you need to contact the source?",
                                     "A supervisor reads this before approving.")
                     + '<button type="submit">Request the details</button></form>')
    else:
        parts.append("<p>Only Intelligence Unit officers may ask for a source's details.</p>")
    if mine:
        rows = "".join(_mine_row(request, csrf) for request in mine)
        parts.append('<table><caption>Your requests</caption><thead><tr><th scope="col">Intel</th>'
                     '<th scope="col">Reason</th><th scope="col">Status</th><th scope="col">Action</th></tr>'
                     f"</thead><tbody>{rows}</tbody></table>")
    if officer.may_decide_recontact:
        others = [r for r in pending if r.requester != officer.officer_id]
        rows = "".join(_pending_row(request, csrf) for request in others)
        parts.append('<h2>Waiting for a supervisor</h2>' + (
            '<table><caption>Others\' requests to approve or refuse</caption><thead><tr>'
            '<th scope="col">Intel</th><th scope="col">Officer</th><th scope="col">Reason</th>'
            f'<th scope="col">Decision</th></tr></thead><tbody>{rows}</tbody></table>'
            if others else "<p>No requests are waiting.</p>"))
    return _layout("Re-contact", "".join(parts), officer, csrf)


def _mine_row(request: RecontactRequest, csrf: str) -> str:
    action = ""
    if request.status is RequestStatus.APPROVED:
        action = (f'<form method="post" action="/recontact/{escape(request.request_id)}/view">{_csrf(csrf)}'
                  '<button type="submit">Show the details once</button></form>')
    return (f"<tr><td>{escape(request.intel_id)}</td><td>{escape(request.reason)}</td>"
            f"<td>{escape(request.status.value)}</td><td>{action}</td></tr>")


def _pending_row(request: RecontactRequest, csrf: str) -> str:
    base = f"/recontact/{escape(request.request_id)}"
    return (f"<tr><td>{escape(request.intel_id)}</td><td>{escape(request.requester)}</td>"
            f"<td>{escape(request.reason)}</td><td>"
            f'<form method="post" action="{base}/approve">{_csrf(csrf)}<button type="submit" '
            f'aria-label="Approve the request of {escape(request.requester)} for {escape(request.intel_id)}">'
            "Approve</button></form>"
            f'<form method="post" action="{base}/refuse">{_csrf(csrf)}<button type="submit" '
            f'aria-label="Refuse the request of {escape(request.requester)} for {escape(request.intel_id)}">'
            "Refuse</button></form></td></tr>")


def recontact_details(officer: Officer, csrf: str, request: RecontactRequest, source: Source) -> str:
    """The only page that shows a source: once, to the requester, after approval."""
    rows = [("Name", source.name), ("Role", source.role), ("Organisation", source.organisation),
            ("Type of organisation", source.organisation_type.value), ("Email", source.email),
            ("Phone", source.phone or "not given"),
            ("Agreed to be re-contacted", "yes" if source.recontact_ok else "no")]
    details = "".join(f"<dt>{escape(label)}</dt><dd>{escape(str(value))}</dd>" for label, value in rows)
    main = (f"<h1>Source of intel {escape(request.intel_id)}</h1>"
            '<div class="notice" role="status"><p>These details are shown once and are not kept by the console. '
            "Note what you need now; this view has been audited.</p></div>"
            f'<dl class="source">{details}</dl>')
    return _layout("Source details", main, officer, csrf)


# -- queues --------------------------------------------------------------------------------------------------

_CLOCK_WORDS = {ClockStatus.WITHIN_TARGET.value: "Within target", ClockStatus.BREACHED.value: "Breached",
                ClockStatus.NO_TARGET.value: "No target"}


def duration(span: timedelta) -> str:
    """A wait in words a handler reads at a glance: 2d 3h, 1h 05m, 12m, under a minute."""
    minutes = int(abs(span).total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m" if mins else "under a minute"


def _words(code: str) -> str:
    return code.replace("_", " ")


def review_code_words(code: str) -> str:
    """A review reason code in words: the router's second opinion suggests or doubts a target, or its code."""
    for prefix, verb in (("model_suggests_", "text model suggests"), ("model_doubts_", "text model doubts")):
        if code.startswith(prefix):
            return f"{verb} {_words(code.removeprefix(prefix))}"
    return _words(code)


def _grounds(row: QueueRow) -> str:
    """What marks the decision for a person: high priority and every flag the router raised (whichever of them
    the configured criteria chose it by), else that every decision is reviewed."""
    words = ["high priority"] if row.item.priority == Priority.HIGH else []
    words += [f"router flag: {review_code_words(code)}" for code in row.item.review_codes]
    return escape("; ".join(words or ["every decision is reviewed"]))


def _clock_cell(row: QueueRow) -> str:
    clock, status = row.clock, row.clock.status
    if clock.target is None or clock.left is None:
        return "No target"
    if status is ClockStatus.BREACHED:
        return (f'<strong class="breached">Breached</strong> by {duration(clock.left)} '
                f"(target {duration(clock.target)})")
    return f"{duration(clock.left)} left of {duration(clock.target)}"


def _select(name: str, label: str, values: Sequence[str], chosen: str | None, words: dict[str, str]) -> str:
    options = ['<option value="">Any</option>'] + [
        f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(words.get(v, _words(v)))}</option>'
        for v in values]
    return (f'<div class="form-group filter"><label for="filter-{name}">{escape(label)}</label>'
            f'<select id="filter-{name}" name="{name}">{"".join(options)}</select></div>')


def _filters(filters: QueueFilter) -> str:
    status = filters.status.value if filters.status else None
    return ('<form method="get" action="/queue" class="filters"><fieldset><legend>Filter the decisions</legend>'
            + _select("category", "Category", CATEGORIES, filters.category, {})
            + _select("outcome", "Outcome", OUTCOMES, filters.outcome, {})
            + _select("priority", "Priority", PRIORITY_ORDER, filters.priority, {})
            + _select("status", "Status", list(_CLOCK_WORDS), status, _CLOCK_WORDS)
            + '<button type="submit">Filter</button> <a href="/queue">Clear filters</a></fieldset></form>')


def _decision_rows(rows: Sequence[QueueRow]) -> str:
    if not rows:
        return "<p>No decisions are waiting for review that match these filters.</p>"
    body = "".join(
        f'<tr class="{escape(r.clock.status.value)}"><td>{escape(r.item.priority)}</td>'
        f'<td><a href="/decisions/{escape(r.item.decision_id)}"><code>{escape(r.item.decision_id)}</code></a></td>'
        f"<td><code>{escape(r.item.intel_id)}</code></td>"
        f"<td>{escape(', '.join(_words(o) for o in r.item.outcomes))}</td>"
        f"<td>{escape(', '.join(_words(c) for c in r.item.categories))}</td>"
        f"<td>{_grounds(r)}</td><td>{duration(r.clock.waited)}</td><td>{_clock_cell(r)}</td></tr>"
        for r in rows)
    return ('<table class="queue"><caption>Decisions to review, high priority first, then the longest waiting'
            '</caption><thead><tr><th scope="col">Priority</th><th scope="col">Decision</th>'
            '<th scope="col">Intel</th><th scope="col">Outcomes</th><th scope="col">Categories</th>'
            '<th scope="col">Why review</th><th scope="col">Waiting</th><th scope="col">Clock</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _held_rows(records: Sequence[HeldIntel] | None, today: date) -> str:
    if records is None:
        return "<p>Held reports are for Intelligence Unit officers.</p>"
    if not records:
        return "<p>No reports are held for review.</p>"
    body = "".join(
        f'<tr><td><a href="/held/{escape(r.intel_id)}">{escape(r.intel_id)}</a></td>'
        f"<td>{escape(r.held_on.isoformat())}</td><td>{max((today - r.held_on).days, 0)}</td>"
        f"<td>{escape(r.status.value)}</td><td>{r.revision}</td><td>{escape(', '.join(r.reason_codes))}</td></tr>"
        for r in records)
    return ('<table><caption>Held reports awaiting release, oldest first</caption><thead><tr>'
            '<th scope="col">Intel</th><th scope="col">Held on</th><th scope="col">Days waiting</th>'
            '<th scope="col">Status</th><th scope="col">Revision</th><th scope="col">Reasons</th></tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _configured(criteria: frozenset[str], targets: Mapping[str, timedelta]) -> str:
    """What the queue is set to hold and the targets, so a handler knows why a decision is (or is not) there."""
    chosen = ", ".join(_words(c) for c in sorted(criteria)) or "nothing"
    times = ", ".join(f"{p} {duration(targets[p])}" for p in PRIORITY_ORDER if p in targets) or "none"
    return f'<p class="hint">Decisions needing review: {escape(chosen)}. Targets: {escape(times)}.</p>'


def queues(officer: Officer, csrf: str, rows: Sequence[QueueRow], filters: QueueFilter,
           held: Sequence[HeldIntel] | None, *, today: date, criteria: frozenset[str] = frozenset(),
           targets: Mapping[str, timedelta] | None = None, held_note: str = "", stale: bool = False) -> str:
    """The review queue (filtered by GET parameters) and, for the Intelligence Unit, the held reports waiting.

    Decisions carry only sanitised intel, and of it the queue shows ids, codes and clocks only."""
    breached = sum(1 for r in rows if r.clock.status is ClockStatus.BREACHED)
    summary = (_configured(criteria, targets or {})
               + f"<p>{len(rows)} decision{'s' if len(rows) != 1 else ''} waiting, {breached} past target.</p>")
    note = f"<p>{escape(held_note)}</p>" if held_note else ""
    warning = ('<div class="notice" role="alert"><p>This queue may be out of date: the console has not reached '
               "the decisions topic for over a minute. Decisions made since then are not listed yet.</p></div>"
               if stale else "")
    main = ("<h1>Queues</h1>" + warning + "<h2>Decisions to review</h2>" + _filters(filters) + summary
            + _decision_rows(rows)
            + "<h2>Held reports awaiting release</h2>"
            + "<p>Not filtered: a held report's categories stay sealed until an officer opens it.</p>"
            + note + ("" if held_note else _held_rows(held, today)))
    return _layout("Queues", main, officer, csrf)


# -- reviewing a decision ----------------------------------------------------------------------------------------

_GRADING_CHOICES = {"source_evaluation": ("Source evaluation", ("1", "2", "3")),
                    "intelligence_assessment": ("Intelligence assessment", ("A", "B", "C", "D", "E")),
                    "handling_code": ("Handling code", ("P", "C"))}


def _pairs(rows: Sequence[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows if v) + "</dl>"


def _intel(intel: SanitisedIntel) -> str:
    """The sanitised intel as the router saw it: every field, each escaped."""
    facts = [("Received on", intel.received_on.isoformat()),
             ("Categories", ", ".join(_words(c) for c in intel.categories)),
             ("How it is known", _words(intel.how_known)),
             ("When observed", intel.when_observed.isoformat() if intel.when_observed else ""),
             ("Lawful basis", _words(intel.lawful_basis)),
             ("Redactions made", str(intel.redaction_count))]
    people = "".join(
        "<li>" + escape("; ".join(part for part in (
            _words(s.role), s.name or "", ", ".join(s.aliases), s.date_of_birth.isoformat() if s.date_of_birth else "",
            f"about {s.approx_age}" if s.approx_age is not None else "", s.gender or "", s.address or "",
            s.description or "") if part)) + "</li>" for s in intel.subjects)
    places = "".join(f"<li>{escape(loc.description)}{escape(' (' + loc.postcode + ')') if loc.postcode else ''}</li>"
                     for loc in intel.locations)
    vehicles = "".join("<li>" + escape(", ".join(part for part in (v.registration, v.colour, v.make, v.model,
                                                                   v.description) if part)) + "</li>"
                       for v in intel.vehicles)
    return ("<h2>The sanitised intelligence</h2>" + _pairs(facts)
            + f'<p class="intel-text">{escape(intel.information)}</p>'
            + (f"<h3>Subjects</h3><ul>{people}</ul>" if people else "")
            + (f"<h3>Locations</h3><ul>{places}</ul>" if places else "")
            + (f"<h3>Vehicles</h3><ul>{vehicles}</ul>" if vehicles else ""))


def _decision(decision: Decision) -> str:
    grading = decision.grading
    status = "Provisional: the router's draft, not yet reviewed."
    if decision.reviewed is not None:
        status = (f"Reviewed: {decision.reviewed.action.value} by {decision.reviewed.officer_id} on "
                  f"{decision.reviewed.reviewed_on.isoformat()}.")
    facts = [("Status", status), ("Revision", str(decision.revision)),
             ("Outcomes", ", ".join(_words(o) for o in decision.outcomes)), ("Priority", decision.priority.value),
             ("Grading", f"{grading.source_evaluation}{grading.intelligence_assessment}{grading.handling_code} "
                         f"(source evaluation {grading.source_evaluation}, intelligence assessment "
                         f"{grading.intelligence_assessment}, handling code {grading.handling_code})"),
             ("Rules version", decision.rules_version),
             ("Review reason", decision.reviewed.reason if decision.reviewed else "")]
    flags = "".join(f"<li>{escape(review_code_words(r.code))}: {escape(r.reason)}</li>"
                    for r in (decision.review.reasons if decision.review else []))
    rationale = "".join(
        f"<tr><td><code>{escape(f.rule_id)}</code></td><td>{escape(f.reason)}</td>"
        f"<td>{escape('; '.join(f.evidence))}</td></tr>" for f in decision.rationale)
    thrive = decision.thrive
    return ("<h2>The decision</h2>" + _pairs(facts)
            + (f"<h3>Why the router asks for review</h3><ul>{flags}</ul>" if flags else "")
            + '<table><caption>Rationale: the rules that fired</caption><thead><tr><th scope="col">Rule</th>'
              '<th scope="col">Why</th><th scope="col">Evidence</th></tr></thead>'
            + f"<tbody>{rationale}</tbody></table>"
            + "<h3>THRIVE</h3>" + _pairs([("Threat", thrive.threat), ("Harm", thrive.harm), ("Risk", thrive.risk),
                                          ("Vulnerability", thrive.vulnerability)]))


def _choice(kind: str, name: str, value: str, label: str, checked: bool) -> str:
    ident = f"{name}-{value}"
    return (f'<div class="choice"><input type="{kind}" id="{escape(ident)}" name="{name}" value="{escape(value)}"'
            f'{" checked" if checked else ""}><label for="{escape(ident)}">{escape(label)}</label></div>')


def _amend_fields(form: ReviewForm) -> str:
    outcomes = "".join(_choice("checkbox", "outcomes", o, _words(o), o in form.outcomes) for o in OUTCOMES)
    priorities = "".join(_choice("radio", "priority", p, p, p == form.priority) for p in PRIORITY_ORDER)
    gradings = "".join(
        f'<div class="form-group"><label for="{name}">{escape(label)}</label><select id="{name}" name="{name}">'
        + "".join(f'<option{" selected" if v == getattr(form, name) else ""}>{v}</option>' for v in values)
        + "</select></div>" for name, (label, values) in _GRADING_CHOICES.items())
    return ('<fieldset><legend>To amend: the outcomes, priority and grading it should have</legend>'
            f'<fieldset id="outcomes"><legend>Outcomes</legend>{outcomes}</fieldset>'
            f'<fieldset id="priority"><legend>Priority</legend>{priorities}</fieldset>{gradings}</fieldset>')


def decision_review(officer: Officer, csrf: str, decision: Decision, *, form: ReviewForm | None = None,
                    problems: Sequence[ReviewProblem] = (), note: str = "") -> str:
    """One decision for a handler: the sanitised intel, the decision, its rationale, THRIVE and grading, and the
    form to confirm or amend it with a written reason (prefilled with what was sent when it was refused)."""
    grading = decision.grading
    form = form or ReviewForm(action="", revision=str(decision.revision), reason="",
                              outcomes=tuple(o.value for o in decision.outcomes), priority=decision.priority.value,
                              source_evaluation=str(grading.source_evaluation),
                              intelligence_assessment=grading.intelligence_assessment,
                              handling_code=grading.handling_code)
    if any(p.code == "contact_detail_in_reason" for p in problems):
        # Not shown again, not even to its writer: it may name how to reach a source.
        form = replace(form, reason="")
    summary = ""
    if problems:
        items = "".join(f'<li><a href="#{escape(p.field)}">{escape(p.message)}</a></li>' for p in problems)
        summary = (f'<div class="error-summary" role="alert"><h2>Nothing was sent</h2><ul>{items}</ul></div>')
    notice = f'<div class="notice" role="status"><p>{escape(note)}</p></div>' if note else ""
    review_form = ""
    if officer.may_review_decisions:
        review_form = (
            f'<h2>Your review</h2><form method="post" action="/decisions/{escape(decision.decision_id)}/review">'
            f'{_csrf(csrf)}<input type="hidden" name="revision" value="{decision.revision}">'
            '<div class="form-group"><label for="reason">Why (required)</label>'
            f'<p class="hint" id="reason-hint">Between {REVIEW_REASON_MIN} and {REVIEW_REASON_MAX} characters. It goes '
            "with the decision to police systems: say why, never who shared the information, and no names, e-mail "
            "addresses, phone numbers or web addresses of anyone who did.</p>"
            f'<textarea id="reason" name="reason" rows="3" required minlength="{REVIEW_REASON_MIN}" '
            f'maxlength="{REVIEW_REASON_MAX}" aria-describedby="reason-hint">{escape(form.reason)}</textarea></div>'
            '<p><button type="submit" name="action" value="confirm">Confirm the decision as it is</button></p>'
            + _amend_fields(form)
            + '<p><button type="submit" name="action" value="amend">Amend the decision</button></p></form>')
    main = (f"<h1>Decision {escape(decision.decision_id)}</h1>{summary}{notice}"
            f"<p>Intel <code>{escape(decision.intel_id)}</code>. <a href=\"/queue\">Back to the queue</a></p>"
            + _intel(decision.intel) + _decision(decision) + review_form)
    return _layout("Review a decision", main, officer, csrf)


def _share(count: int, total: int) -> str:
    return f"{count} of {total} ({100 * count / total:.1f}%)" if total else "none yet"


def agreement(officer: Officer, csrf: str, summary: AgreementSummary) -> str:
    """Router against handler on every decision's first review: under-triage first, then agreement by outcome
    set and priority, where priorities moved, and each outcome given or taken away."""
    total = summary.reviews
    main = ("<h1>Router and handler agreement</h1>"
            "<p>Each decision's first review by a handler, against the router's draft it reviewed.</p>"
            "<ul>"
            f"<li>High-risk reports the router under-triaged (a handler raised them to high): "
            f"{_share(summary.under_triaged, total)}</li>"
            f"<li>Outcome sets agreed: {_share(summary.outcomes_agreed, total)}</li>"
            f"<li>Priority agreed: {_share(summary.priority_agreed, total)}</li></ul>")
    if total:
        order = list(Priority)  # high first
        head = "".join(f'<th scope="col">{p.value}</th>' for p in order)
        rows = "".join(f'<tr><th scope="row">{router.value}</th>'
                       + "".join(f"<td>{summary.priorities.get((router, handler), 0)}</td>" for handler in order)
                       + "</tr>" for router in order)
        main += ('<table><caption>Priority: the router\'s (rows) against the handler\'s (columns)</caption>'
                 f'<thead><tr><td></td>{head}</tr></thead><tbody>{rows}</tbody></table>')
        rows = "".join(f'<tr><th scope="row">{outcome.value}</th><td>{both}</td><td>{router_only}</td>'
                       f"<td>{handler_only}</td></tr>"
                       for outcome, (both, router_only, handler_only) in summary.outcomes.items())
        main += ('<table><caption>Outcomes: given by both, by the router only (a handler removed it), by the '
                 'handler only (a handler added it)</caption><thead><tr><th scope="col">Outcome</th>'
                 '<th scope="col">Both</th><th scope="col">Router only</th><th scope="col">Handler only</th></tr>'
                 f'</thead><tbody>{rows}</tbody></table>')
    return _layout("Agreement", main, officer, csrf)
