"""The web form: server-rendered HTML that works without JavaScript, and the mapping from a post to a submission.

Pure: string building with `html.escape` (every value is escaped where it is written), no I/O.
Field names are dotted paths (`subjects.0.name`), ids are the same with hyphens (`subjects-0-name`),
so an issue's JSON pointer (`/subjects/0/name`) finds its field without a lookup table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from schemas import ValidationIssue
from services.intake.domain import URGENT_CALL_999

MAX_ROWS = 20  # the schema's bound on subjects, locations and vehicles
MAX_ROW_INDEX = 100  # row numbers beyond this in a post are ignored, not trusted

CATEGORIES = {
    "missing_exploited_trafficked": "Missing, exploited or trafficked",
    "child_sexual_exploitation": "Child sexual exploitation",
    "criminal_exploitation": "Criminal exploitation (including county lines)",
    "drug_related_harm": "Drug-related harm",
    "modern_slavery": "Modern slavery",
    "community_cohesion": "Community cohesion (including hate and extremism)",
    "anti_social_behaviour": "Anti-social behaviour",
    "organised_crime": "Organised crime",
}
ORGANISATION_TYPES = {
    "education": "Education (school, college, nursery)",
    "health": "Health (GP, hospital, school nursing)",
    "social_care": "Social care",
    "local_authority": "Local authority",
    "housing": "Housing",
    "youth_service": "Youth service",
    "voluntary_sector": "Voluntary or community sector",
    "probation": "Probation",
    "other": "Other",
}
LAWFUL_BASES = {
    "safeguarding": "Safeguarding children or adults at risk",
    "public_task": "Public task",
    "legal_obligation": "Legal obligation",
    "vital_interests": "Vital interests (protecting someone's life)",
    "consent": "Consent",
    "other": "Other (explain below)",
}
HOW_KNOWN = {
    "witnessed_directly": "I saw or heard it myself",
    "told_by_subject": "The person it is about told me",
    "told_by_third_party": "Someone else told me",
    "rumour_or_hearsay": "It is a rumour or hearsay",
}
SUBJECT_ROLES = {
    "at_risk": "Someone at risk",
    "person_of_concern": "A person of concern",
    "other": "Other",
}
YES_NO_UNKNOWN = {"yes": "Yes", "no": "No", "": "Don't know"}

_ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "subjects": ("role", "name", "aliases", "date_of_birth", "approx_age", "gender", "address", "description"),
    "locations": ("description", "postcode"),
    "vehicles": ("registration", "make", "model", "colour", "description"),
}
_ROW_NOUN = {"subjects": "person", "locations": "place", "vehicles": "vehicle"}
_SOURCE_FIELDS = ("name", "role", "organisation", "organisation_type", "email", "phone")
_TEXT_FIELDS = ("lawful_basis", "lawful_basis_detail", "information", "how_known", "when_observed",
                "idempotency_key")
_ROW_NAME = re.compile(r"^(subjects|locations|vehicles)\.(\d{1,3})\.([a-z_]+)$")


@dataclass
class FormPost:
    """A decoded form post: the submission data, the values to show again, and what the person asked for."""

    data: dict[str, object]
    values: dict[str, str]
    categories: list[str]
    rows: dict[str, int]
    action: str
    csrf_token: str


def _flag(values: Mapping[str, str], name: str) -> bool:
    return values.get(name, "") == "yes"


def _yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def read_form(pairs: Iterable[tuple[str, str]]) -> FormPost:
    """Turn the posted name/value pairs into submission data, dropping blank optional fields and rows.

    Rows are renumbered without the blank ones, so issue paths and re-rendered fields line up.
    """
    values: dict[str, str] = {}
    categories: list[str] = []
    raw_rows: dict[str, dict[int, dict[str, str]]] = {section: {} for section in _ROW_FIELDS}
    for name, value in pairs:
        if name == "categories":
            categories.append(value)
            continue
        match = _ROW_NAME.match(name)
        if match:
            section, index, row_field = match.group(1), int(match.group(2)), match.group(3)
            if index < MAX_ROW_INDEX and row_field in _ROW_FIELDS[section]:
                raw_rows[section].setdefault(index, {})[row_field] = value.strip()
            continue
        values.setdefault(name, value)

    data: dict[str, object] = {}
    source: dict[str, object] = {k: values[f"source.{k}"].strip() for k in _SOURCE_FIELDS
                                 if values.get(f"source.{k}", "").strip()}
    source["recontact_ok"] = _flag(values, "source.recontact_ok")
    data["source"] = source
    data["urgency"] = {"immediate_risk": _flag(values, "urgency.immediate_risk"),
                       "crime_in_progress": _flag(values, "urgency.crime_in_progress")}
    for name in _TEXT_FIELDS:
        if values.get(name, "").strip():
            data[name] = values[name].strip()
    for name in ("caldicott_guardian_consulted", "subject_aware"):
        answer = _yes_no(values.get(name, ""))
        if answer is not None:
            data[name] = answer
    data["categories"] = categories
    agencies = [line.strip() for line in values.get("other_agencies_informed", "").splitlines() if line.strip()]
    if agencies:
        data["other_agencies_informed"] = agencies

    rows: dict[str, int] = {}
    shown = {k: v for k, v in values.items() if not _ROW_NAME.match(k)}
    for section, by_index in raw_rows.items():
        kept = [row for _, row in sorted(by_index.items()) if any(row.values())]
        data[section] = [_row_data(section, row) for row in kept]
        for index, row in enumerate(kept):
            for row_field, value in row.items():
                shown[f"{section}.{index}.{row_field}"] = value
        rows[section] = len(kept)
    return FormPost(data=data, values=shown, categories=categories, rows=rows,
                    action=values.get("action", "send"), csrf_token=values.get("csrf_token", ""))


def _row_data(section: str, row: Mapping[str, str]) -> dict[str, object]:
    item: dict[str, object] = {}
    for name, value in row.items():
        if not value:
            continue
        if section == "subjects" and name == "aliases":
            item[name] = [alias.strip() for alias in value.split(",") if alias.strip()]
        elif section == "subjects" and name == "approx_age" and value.isascii() and value.isdigit():
            item[name] = int(value)
        else:
            item[name] = value
    return item


# ---------------------------------------------------------------- rendering

def field_id(path: str) -> str:
    """'/subjects/0/name' -> 'subjects-0-name' (and 'subjects.0.name' likewise)."""
    return path.strip("/").replace("/", "-").replace(".", "-")


@dataclass
class _Page:
    """Rendering state: the values to show, the errors by field id, and the ids rendered."""

    values: Mapping[str, str]
    categories: Sequence[str]
    errors: dict[str, list[str]]
    ids: set[str] = field(default_factory=set)

    def value(self, name: str) -> str:
        return self.values.get(name, "")

    def error_html(self, ident: str) -> tuple[str, str]:
        """(error paragraph, extra describedby id) for a field id."""
        messages = self.errors.get(ident)
        if not messages:
            return "", ""
        text = " ".join(escape(m) for m in messages)
        return (f'<p class="error-message" id="{ident}-error"><span class="visually-hidden">Error:</span> '
                f"{text}</p>", f"{ident}-error")


def _describedby(*ids: str) -> str:
    joined = " ".join(i for i in ids if i)
    return f' aria-describedby="{joined}"' if joined else ""


def _hint(ident: str, hint: str) -> tuple[str, str]:
    if not hint:
        return "", ""
    return f'<p class="hint" id="{ident}-hint">{escape(hint)}</p>', f"{ident}-hint"


def _input(page: _Page, name: str, label: str, *, hint: str = "", kind: str = "text", optional: bool = False,
           autocomplete: str = "", width: str = "", inputmode: str = "") -> str:
    ident = field_id(name)
    page.ids.add(ident)
    hint_html, hint_id = _hint(ident, hint)
    error_html, error_id = page.error_html(ident)
    attrs = [f'id="{ident}"', f'name="{escape(name)}"', f'type="{kind}"', f'value="{escape(page.value(name))}"']
    if autocomplete:
        attrs.append(f'autocomplete="{autocomplete}"')
    if inputmode:
        attrs.append(f'inputmode="{inputmode}"')
    if error_id:
        attrs.append('aria-invalid="true"')
    css = "input" + (f" width-{width}" if width else "") + (" input-error" if error_id else "")
    group = "form-group" + (" form-group-error" if error_id else "")
    return (f'<div class="{group}"><label for="{ident}">{escape(label)}'
            f'{" (optional)" if optional else ""}</label>{hint_html}{error_html}'
            f'<input class="{css}" {" ".join(attrs)}{_describedby(hint_id, error_id)}></div>')


def _textarea(page: _Page, name: str, label: str, *, hint: str = "", optional: bool = False, rows: int = 4) -> str:
    ident = field_id(name)
    page.ids.add(ident)
    hint_html, hint_id = _hint(ident, hint)
    error_html, error_id = page.error_html(ident)
    invalid = ' aria-invalid="true"' if error_id else ""
    group = "form-group" + (" form-group-error" if error_id else "")
    css = "textarea" + (" input-error" if error_id else "")
    return (f'<div class="{group}"><label for="{ident}">{escape(label)}'
            f'{" (optional)" if optional else ""}</label>{hint_html}{error_html}'
            f'<textarea class="{css}" id="{ident}" name="{escape(name)}" rows="{rows}"{invalid}'
            f'{_describedby(hint_id, error_id)}>{escape(page.value(name))}</textarea></div>')


def _select(page: _Page, name: str, label: str, options: Mapping[str, str], *, optional: bool = False) -> str:
    ident = field_id(name)
    page.ids.add(ident)
    error_html, error_id = page.error_html(ident)
    current = page.value(name)
    choices = ['<option value="">Choose</option>'] + [
        f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(text)}</option>'
        for v, text in options.items()
    ]
    invalid = ' aria-invalid="true"' if error_id else ""
    group = "form-group" + (" form-group-error" if error_id else "")
    return (f'<div class="{group}"><label for="{ident}">{escape(label)}{" (optional)" if optional else ""}'
            f'</label>{error_html}<select class="select" id="{ident}" name="{escape(name)}"{invalid}'
            f'{_describedby(error_id)}>{"".join(choices)}</select></div>')


def _choices(page: _Page, name: str, legend: str, options: Mapping[str, str], *, multiple: bool = False,
             hint: str = "", optional: bool = False, checked: Iterable[str] = ()) -> str:
    """A fieldset of radios (one answer) or checkboxes (several); the first input carries the group's id."""
    ident = field_id(name)
    page.ids.add(ident)
    hint_html, hint_id = _hint(ident, hint)
    error_html, error_id = page.error_html(ident)
    selected = set(checked)
    kind = "checkbox" if multiple else "radio"
    items = []
    for number, (value, text) in enumerate(options.items()):
        item_id = ident if number == 0 else f"{ident}-{number}"
        chosen = value in selected if multiple else (name in page.values and page.value(name) == value)
        mark = " checked" if chosen else ""
        items.append(f'<div class="choice"><input class="choice-input" id="{item_id}" name="{escape(name)}" '
                     f'type="{kind}" value="{escape(value)}"{mark}><label class="choice-label" '
                     f'for="{item_id}">{escape(text)}</label></div>')
    group = "form-group" + (" form-group-error" if error_id else "")
    return (f'<div class="{group}"><fieldset class="fieldset"{_describedby(hint_id, error_id)}>'
            f'<legend class="legend">{escape(legend)}{" (optional)" if optional else ""}</legend>'
            f'{hint_html}{error_html}<div class="choices">{"".join(items)}</div></fieldset></div>')


def _checkbox(page: _Page, name: str, label: str, *, checked: bool, hint: str = "") -> str:
    ident = field_id(name)
    page.ids.add(ident)
    hint_html, hint_id = _hint(ident, hint)
    return (f'<div class="choice"><input class="choice-input" id="{ident}" name="{escape(name)}" type="checkbox" '
            f'value="yes"{" checked" if checked else ""}{_describedby(hint_id)}>'
            f'<label class="choice-label" for="{ident}">{escape(label)}</label>{hint_html}</div>')


def _rows(page: _Page, section: str, count: int) -> str:
    noun = _ROW_NOUN[section]
    parts = []
    for index in range(count):
        prefix = f"{section}.{index}."
        legend = f"{noun.capitalize()} {index + 1}"
        if section == "subjects":
            inner = [
                _select(page, prefix + "role", "Their role in this", SUBJECT_ROLES),
                _input(page, prefix + "name", "Full name", optional=True, autocomplete="off"),
                _input(page, prefix + "aliases", "Other names or nicknames", optional=True,
                       hint="Separate names with commas.", autocomplete="off"),
                _input(page, prefix + "date_of_birth", "Date of birth", optional=True, kind="date", width="10"),
                _input(page, prefix + "approx_age", "Approximate age in years", optional=True, width="3",
                       inputmode="numeric", hint="If you do not know the date of birth."),
                _input(page, prefix + "gender", "Gender", optional=True, width="20"),
                _textarea(page, prefix + "address", "Address or where they stay", optional=True, rows=2),
                _textarea(page, prefix + "description", "Description",
                          hint="Appearance, clothing, anything that helps to recognise them.", optional=True,
                          rows=3),
            ]
        elif section == "locations":
            inner = [
                _textarea(page, prefix + "description", "Describe the place",
                          hint="An address, a street, a park, a shop: where it happens.", rows=2),
                _input(page, prefix + "postcode", "Postcode", optional=True, width="10", autocomplete="off"),
            ]
        else:
            inner = [
                _input(page, prefix + "registration", "Registration number", optional=True, width="10",
                       autocomplete="off"),
                _input(page, prefix + "make", "Make", optional=True, width="20"),
                _input(page, prefix + "model", "Model", optional=True, width="20"),
                _input(page, prefix + "colour", "Colour", optional=True, width="20"),
                _textarea(page, prefix + "description", "Anything else about the vehicle", optional=True, rows=2),
            ]
        row_id = f"{section}-{index}"
        page.ids.add(row_id)
        parts.append(f'<fieldset class="fieldset row" id="{row_id}"><legend class="legend">{legend}</legend>'
                     f'{"".join(inner)}</fieldset>')
    if count < MAX_ROWS:
        parts.append(f'<button class="button button-secondary" type="submit" name="action" '
                     f'value="add_{section}">Add another {noun}</button>')
    return "".join(parts)


def _error_summary(issues: Sequence[ValidationIssue], ids: set[str]) -> str:
    links = []
    for item in issues:
        target = _target(item.path, ids)
        links.append(f'<li><a href="#{target}">{escape(item.message)}</a></li>')
    return ('<div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" '
            'autofocus><h2 class="error-summary-title" id="error-summary-title">There is a problem</h2>'
            f'<ul class="error-summary-list">{"".join(links)}</ul></div>')


# Problems with a whole group point at its first field, where the error summary link should land.
_GROUP_ANCHORS = {"urgency": "urgency-immediate_risk", "source": "source-name"}


def _target(path: str, ids: set[str]) -> str:
    """The rendered field an issue points at: the path itself, else its nearest rendered parent."""
    parts = path.strip("/").split("/") if path.strip("/") else []
    while parts:
        candidate = "-".join(parts)
        if candidate in _GROUP_ANCHORS:
            return _GROUP_ANCHORS[candidate]
        if candidate in ids:
            return candidate
        parts.pop()
    return "main-form"


def _position(body: str, ident: str) -> int:
    found = body.find(f'id="{ident}"')
    return found if found >= 0 else len(body)


def _errors_by_field(issues: Sequence[ValidationIssue], ids: set[str]) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for item in issues:
        by_field.setdefault(_target(item.path, ids), []).append(item.message)
    return by_field


def render_form(*, csrf_token: str, idempotency_key: str, values: Mapping[str, str] | None = None,
                categories: Sequence[str] = (), rows: Mapping[str, int] | None = None,
                issues: Sequence[ValidationIssue] = ()) -> str:
    """The whole form page; with issues, an error summary on top and each message by its field."""
    values = dict(values or {})
    first_view = not values
    counts = {section: max(1, min(MAX_ROWS, (rows or {}).get(section, 1))) for section in _ROW_FIELDS}
    # Render once to learn which field ids exist, then again with errors placed on them.
    probe = _Page(values=values, categories=categories, errors={})
    _body(probe, counts, first_view)
    page = _Page(values=values, categories=categories, errors=_errors_by_field(issues, probe.ids))
    body = _body(page, counts, first_view)
    urgent = next((i for i in issues if i.code == URGENT_CALL_999), None)
    banner = ""
    if urgent is not None:
        banner = ('<div class="urgent-banner" role="alert"><h2>Call 999 now</h2>'
                  f"<p>{escape(urgent.message)}</p><p>You have told us someone is in immediate danger or a "
                  "crime is happening now. Do not wait for this form.</p></div>")
    # The summary lists problems in the order a person meets the fields on the page.
    in_page_order = sorted(issues, key=lambda i: _position(body, _target(i.path, probe.ids)))
    summary = _error_summary(in_page_order, probe.ids) if issues else ""
    title = ("Error: " if issues else "") + "Share non-urgent information with the police"
    hidden = (f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
              f'<input type="hidden" name="idempotency_key" value="{escape(idempotency_key)}">'
              # The first submit button is what Enter in a text field presses: make that "send".
              '<button class="visually-hidden" type="submit" name="action" value="send" tabindex="-1" '
              'aria-hidden="true">Send</button>')
    return _layout(title, f"""
<h1>Share non-urgent information with the police</h1>
{banner}{summary}
<section class="urgent-screen" aria-labelledby="urgent-heading">
<h2 id="urgent-heading">If anyone is in immediate danger, call 999</h2>
<p>If someone is at risk of harm right now, or a crime is happening now, <strong>call 999</strong>.
Do not use this form.</p>
<p>This form is for <strong>non-urgent</strong> information only: things you have seen, heard or been told
that the police should know about. It is <strong>not a referral</strong>. If you have a safeguarding
concern, follow your own organisation's procedures as well.</p>
</section>
<form id="main-form" method="post" action="/" novalidate>
{hidden}
{body}
<div class="form-group"><p>By sending this form you confirm the information is accurate to the best of
your knowledge.</p>
<button class="button" type="submit" name="action" value="send">Send information</button></div>
</form>""")


def _body(page: _Page, counts: Mapping[str, int], first_view: bool) -> str:
    page.ids.update(_ROW_FIELDS)  # the rows' containers: where "too many people" points
    recontact = first_view or page.value("source.recontact_ok") == "yes"
    return f"""
<fieldset class="fieldset section" id="urgency">
<legend class="legend legend-large">Is it urgent?</legend>
<p class="hint" id="urgency-hint">Tick any that apply. If either is true, call 999 instead.</p>
{_checkbox(page, "urgency.immediate_risk", "Someone is in immediate danger",
           checked=page.value("urgency.immediate_risk") == "yes")}
{_checkbox(page, "urgency.crime_in_progress", "A crime is happening now",
           checked=page.value("urgency.crime_in_progress") == "yes")}
</fieldset>

<h2>About you</h2>
<p class="protected">Your details are protected. They are encrypted as soon as you send this form, removed
from the information before anyone else reads it, and never shared with other agencies or partners.
Only an officer of the Intelligence Unit can contact you.</p>
<fieldset class="fieldset section" id="source">
<legend class="legend">Your details</legend>
{_input(page, "source.name", "Your full name", autocomplete="name")}
{_input(page, "source.role", "Your role or job title", autocomplete="organization-title")}
{_input(page, "source.organisation", "Your organisation", autocomplete="organization")}
{_select(page, "source.organisation_type", "Type of organisation", ORGANISATION_TYPES)}
{_input(page, "source.email", "Your work email address", kind="email", autocomplete="email")}
{_input(page, "source.phone", "Your work phone number", kind="tel", autocomplete="tel", optional=True,
        hint="A UK number, or an international number starting with +.", width="20")}
{_checkbox(page, "source.recontact_ok", "The Intelligence Unit may contact me about this", checked=recontact)}
</fieldset>

<h2>Why you can share this</h2>
{_choices(page, "lawful_basis", "Lawful basis for sharing", LAWFUL_BASES,
          hint="If you are not sure, your organisation's data protection lead can help.")}
{_textarea(page, "lawful_basis_detail", "Explain the lawful basis", optional=True, rows=2,
           hint="Needed if you chose 'Other'.")}
{_choices(page, "caldicott_guardian_consulted", "Was your Caldicott Guardian consulted?", YES_NO_UNKNOWN,
          optional=True, hint="Health and social care only.")}

<h2>What it is about</h2>
{_choices(page, "categories", "Which of these best describe it?", CATEGORIES, multiple=True,
          hint="Choose all that apply.", checked=page.categories)}

<h2>What you know</h2>
{_textarea(page, "information", "Tell us what you know", rows=8,
           hint="What happened, who was involved, where and when. At least 20 characters, at most 10,000.")}
{_choices(page, "how_known", "How do you know this?", HOW_KNOWN)}
{_input(page, "when_observed", "When did it happen or when did you find out?", kind="date", optional=True,
        width="10")}
{_choices(page, "subject_aware", "Does the person know you are sharing this?", YES_NO_UNKNOWN, optional=True)}
{_textarea(page, "other_agencies_informed", "Other agencies you have told", optional=True, rows=2,
           hint="One per line, for example 'Children's social care'.")}

<h2>People</h2>
<p>Tell us about anyone involved: the person at risk, and anyone causing concern. Leave blank if none.</p>
<div id="subjects">{_rows(page, "subjects", counts["subjects"])}</div>

<h2>Places</h2>
<div id="locations">{_rows(page, "locations", counts["locations"])}</div>

<h2>Vehicles</h2>
<div id="vehicles">{_rows(page, "vehicles", counts["vehicles"])}</div>
"""


def render_receipt(receipt_id: str, received_at: datetime) -> str:
    """The confirmation page: the reference, what happens next, and that the source is protected."""
    when = received_at.strftime("%d %B %Y at %H:%M UTC")
    return _layout("Information sent", f"""
<div class="panel" role="status"><h1>Information sent</h1>
<p>Your reference is<br><strong class="reference">{escape(receipt_id)}</strong></p></div>
<p>We received it on {escape(when)}. Keep the reference if you may want to ask about it.</p>
<h2>What happens next</h2>
<p>An intelligence officer will assess what you have shared. It will lead to one or more of these:</p>
<ul>
<li><strong>Intelligence log</strong>: a record with your details removed is added to police systems so
officers are aware and can act.</li>
<li><strong>Crime desk</strong>: if it describes a crime, it is passed on for investigation.</li>
<li><strong>Safeguarding</strong>: if someone's safety is a concern, it goes to the safeguarding team.</li>
<li><strong>No action</strong>: if none of these applies, it is kept but nothing further is done.</li>
</ul>
<p>You will not usually hear about the outcome.</p>
<h2>Your identity is protected</h2>
<p>Your details were encrypted before they were stored. They are removed from the information before
anyone else reads it and are never shared with other agencies or partners. Only an officer of the
Intelligence Unit can contact you, and only if you agreed.</p>
<p><strong>If anyone is in immediate danger, call 999.</strong></p>
<p><a href="/">Share something else</a></p>""")


def render_message(title: str, message: str, *, status_hint: str = "") -> str:
    """A plain page for refusals (expired form, too large, too many attempts)."""
    extra = f"<p>{escape(status_hint)}</p>" if status_hint else ""
    return _layout(title, f'<h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}'
                          '<p><a href="/">Go back to the form</a></p>'
                          "<p><strong>If anyone is in immediate danger, call 999.</strong></p>")


def _layout(title: str, main: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - Community Partnership Information</title>
<link rel="stylesheet" href="/static/form.css"></head>
<body><a class="skip-link" href="#main">Skip to main content</a>
<header class="header"><div class="width">Community Partnership Information</div></header>
<div class="width"><main id="main">{main}</main></div>
<footer class="footer"><div class="width">Partner systems can send the same information as JSON:
<a href="/openapi.json">API description</a>.</div></footer>
</body></html>
"""
