"""The web form without a browser: what a post becomes, how errors are shown, CSRF, add-another rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from schemas import Channel
from services.intake.form import read_form, render_form
from tests.unit.intake.samples import FakePublisher, received_count

VALID_FORM: list[tuple[str, str]] = [
    ("source.name", "Harriet Canary-Teacher"), ("source.role", "Head of Year 9"),
    ("source.organisation", "Northgate Canary Academy"), ("source.organisation_type", "education"),
    ("source.email", "h.canary@northgate.example.org"), ("source.phone", ""), ("source.recontact_ok", "yes"),
    ("lawful_basis", "safeguarding"), ("lawful_basis_detail", ""), ("categories", "criminal_exploitation"),
    ("categories", "drug_related_harm"),
    ("information", "Jamie has been seen getting into a black Audi after school with older men."),
    ("how_known", "witnessed_directly"), ("when_observed", "2024-03-01"), ("subject_aware", ""),
    ("other_agencies_informed", "Children's social care\n\nSchool nurse\n"),
    ("subjects.0.role", "at_risk"), ("subjects.0.name", "Jamie Doe"), ("subjects.0.aliases", "JD, Jay"),
    ("subjects.0.approx_age", "14"), ("subjects.0.date_of_birth", ""),
    ("locations.0.description", ""), ("locations.0.postcode", ""),
    ("vehicles.0.registration", "AB12 CDE"), ("vehicles.0.colour", "black"),
]


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the form has a CSRF token"
    return match.group(1)


def key_of(page: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match
    return match.group(1)


def send(client: TestClient, pairs: list[tuple[str, str]]) -> Any:
    """POST name/value pairs (repeated names kept) as a browser sends a form."""
    return client.post("/", content=urlencode(pairs), headers={"content-type": "application/x-www-form-urlencoded"})


def post_form(client: TestClient, pairs: list[tuple[str, str]]) -> Any:
    page = client.get("/").text
    return send(client, [("csrf_token", csrf_of(page)), ("idempotency_key", key_of(page)), *pairs])


def test_a_form_post_becomes_a_submission() -> None:
    """Posted fields become the nested submission: lists split, ages numbers, blank fields and rows dropped."""
    posted = read_form(VALID_FORM)
    data = posted.data
    assert data["source"] == {"name": "Harriet Canary-Teacher", "role": "Head of Year 9",
                              "organisation": "Northgate Canary Academy", "organisation_type": "education",
                              "email": "h.canary@northgate.example.org", "recontact_ok": True}
    assert data["urgency"] == {"immediate_risk": False, "crime_in_progress": False}
    assert data["categories"] == ["criminal_exploitation", "drug_related_harm"]
    assert data["other_agencies_informed"] == ["Children's social care", "School nurse"]
    assert data["subjects"] == [{"role": "at_risk", "name": "Jamie Doe", "aliases": ["JD", "Jay"], "approx_age": 14}]
    assert data["locations"] == []
    assert data["vehicles"] == [{"registration": "AB12 CDE", "colour": "black"}]
    assert "subject_aware" not in data and "lawful_basis_detail" not in data


def test_blank_rows_are_dropped_and_the_rest_renumbered() -> None:
    """A blank row between filled ones disappears, so error paths and re-shown fields line up."""
    posted = read_form([("subjects.0.name", ""), ("subjects.3.name", "Alex"), ("subjects.3.role", "other")])
    assert posted.data["subjects"] == [{"name": "Alex", "role": "other"}]
    assert posted.values["subjects.0.name"] == "Alex"
    assert posted.rows["subjects"] == 1


def test_unknown_and_out_of_range_fields_in_a_post_are_ignored() -> None:
    """A hand-made post cannot add fields the form does not have, or thousands of rows."""
    posted = read_form([("subjects.5000.name", "x"), ("subjects.0.shoe_size", "9"), ("evil", "1")])
    assert posted.data["subjects"] == []
    assert "evil" not in posted.data


def test_every_value_is_escaped_when_shown_again() -> None:
    """Entered text containing markup is shown as text, never as markup."""
    page = render_form(csrf_token="t", idempotency_key="k",
                       values={"source.name": '"><script>alert(1)</script>', "information": "</textarea><b>x"})
    assert "<script>alert(1)" not in page
    assert "</textarea><b>" not in page
    assert "&lt;script&gt;" in page


def test_the_form_starts_with_the_urgency_screen(client: TestClient) -> None:
    """The page opens with 'call 999', says it is non-urgent only and not a referral, before any field."""
    page = client.get("/").text
    first_input = page.index("<input")
    assert page.index("If anyone is in immediate danger, call 999") < first_input
    assert "non-urgent" in page[:first_input]
    assert "not a referral" in page[:first_input]


def test_every_field_has_a_label(client: TestClient) -> None:
    """Each visible input, select and textarea has a <label for> naming its id."""
    page = client.get("/").text
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', page)
    labels = set(re.findall(r'<label[^>]*for="([^"]+)"', page))
    assert ids
    assert [i for i in ids if i not in labels] == []


def test_the_form_covers_every_field_of_the_submission(client: TestClient) -> None:
    """The form has a field for every part of a submission, including rows of people, places and vehicles."""
    page = client.get("/").text
    names = set(re.findall(r'name="([^"]+)"', page))
    expected = {"urgency.immediate_risk", "urgency.crime_in_progress", "source.name", "source.role",
                "source.organisation", "source.organisation_type", "source.email", "source.phone",
                "source.recontact_ok", "lawful_basis", "lawful_basis_detail", "caldicott_guardian_consulted",
                "categories", "information", "how_known", "when_observed", "subject_aware",
                "other_agencies_informed", "idempotency_key", "subjects.0.role", "subjects.0.name",
                "subjects.0.aliases", "subjects.0.date_of_birth", "subjects.0.approx_age", "subjects.0.gender",
                "subjects.0.address", "subjects.0.description", "locations.0.description", "locations.0.postcode",
                "vehicles.0.registration", "vehicles.0.make", "vehicles.0.model", "vehicles.0.colour",
                "vehicles.0.description"}
    assert expected <= names


def test_a_complete_form_gets_the_confirmation_page(client: TestClient, publisher: FakePublisher) -> None:
    """A valid post shows the receipt, the four outcomes and that the source is protected; it is counted
    as channel web."""
    before = received_count(Channel.WEB)
    response = post_form(client, VALID_FORM)
    assert response.status_code == 200
    page = response.text
    assert "Information sent" in page
    assert re.search(r'class="reference">[0-9a-f]{32}<', page)
    for outcome in ("Intelligence log", "Crime desk", "Safeguarding", "No action"):
        assert outcome in page
    assert "identity is protected" in page
    assert len(publisher.records) == 1  # the channel is counted at the edge only, never on the record
    assert received_count(Channel.WEB) == before + 1


def test_sending_the_same_form_twice_gives_one_record(client: TestClient, publisher: FakePublisher) -> None:
    """A double click or a refresh resends the form's idempotency key: same receipt, one record."""
    page = client.get("/").text
    fields = [("csrf_token", csrf_of(page)), ("idempotency_key", key_of(page)), *VALID_FORM]
    first = send(client, fields)
    second = send(client, fields)
    reference = re.compile(r'class="reference">([0-9a-f]{32})<')
    assert reference.findall(first.text) == reference.findall(second.text)
    assert len(publisher.records) == 1


def test_form_keys_are_random_and_count_only_in_their_own_session(
        make_client: Callable[..., TestClient], publisher: FakePublisher) -> None:
    """Regression (issue 11): a form's idempotency key is made at random by the server each time it renders
    the form, and counts only in the browser session it was rendered for. Another session posting that key
    with the same details (a named professional's) gets a receipt of its own, not word of the first."""
    owner, prober = make_client(api_key=None), make_client(api_key=None)
    page = owner.get("/").text
    keys = {key_of(page), key_of(owner.get("/").text), key_of(prober.get("/").text)}
    assert len(keys) == 3 and all(len(key) >= 32 for key in keys)
    reference = re.compile(r'class="reference">([0-9a-f]{32})<')
    fields = [("idempotency_key", key_of(page)), *VALID_FORM]
    first = reference.findall(send(owner, [("csrf_token", csrf_of(page)), *fields]).text)
    probe = reference.findall(send(prober, [("csrf_token", csrf_of(prober.get("/").text)), *fields]).text)
    assert first and probe and first != probe
    assert len(publisher.records) == 2


def test_an_incomplete_form_shows_a_linked_error_summary_and_keeps_values(client: TestClient,
                                                                          publisher: FakePublisher) -> None:
    """Missing answers give an error summary linking to each field, inline errors, and the values kept."""
    pairs = [(k, v) for k, v in VALID_FORM if k not in {"source.email", "how_known"}]
    pairs = [(k, "too short" if k == "information" else v) for k, v in pairs]
    response = post_form(client, pairs)
    assert response.status_code == 422
    page = response.text
    assert "There is a problem" in page
    for target in ("source-email", "how_known", "information"):
        assert f'href="#{target}"' in page
        assert f'id="{target}"' in page
        assert f'id="{target}-error"' in page
    assert 'value="Harriet Canary-Teacher"' in page
    assert ">too short</textarea>" in page
    assert 'value="criminal_exploitation" checked' in page
    assert publisher.records == []


def test_ticking_urgency_shows_the_999_message(client: TestClient, publisher: FakePublisher) -> None:
    """With an urgency box ticked the page says to call 999 now, and nothing is sent."""
    response = post_form(client, [*VALID_FORM, ("urgency.immediate_risk", "yes")])
    assert "Call 999 now" in response.text
    assert 'href="#urgency-immediate_risk"' in response.text
    assert publisher.records == []


def test_add_another_shows_one_more_row_without_validating(client: TestClient, publisher: FakePublisher) -> None:
    """'Add another person' re-renders with an extra blank row, keeps values, shows no errors, sends nothing."""
    response = post_form(client, [("source.name", "Harriet"), ("subjects.0.name", "Jamie"),
                                  ("action", "add_subjects")])
    page = response.text
    assert response.status_code == 200
    assert 'name="subjects.1.name"' in page
    assert 'name="subjects.2.name"' not in page
    assert 'value="Jamie"' in page
    assert "There is a problem" not in page
    assert publisher.records == []


def test_a_post_without_the_csrf_token_is_refused(client: TestClient, publisher: FakePublisher) -> None:
    """A post with no token, a forged token or no cookie gets 403 and nothing is sent."""
    client.get("/")
    assert send(client, VALID_FORM).status_code == 403
    forged = send(client, [("csrf_token", "0" * 64), *VALID_FORM])
    assert forged.status_code == 403
    page = client.get("/").text
    client.cookies.clear()
    stale = send(client, [("csrf_token", csrf_of(page)), *VALID_FORM])
    assert stale.status_code == 403
    assert publisher.records == []


def test_the_csrf_cookie_is_http_only_and_same_site_strict(client: TestClient) -> None:
    """The cookie backing the token cannot be read by scripts or sent cross-site."""
    cookie = client.get("/").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


def test_form_posts_of_the_wrong_type_or_size_are_refused(make_client: Any) -> None:
    """A multipart or JSON post to the form gets 415, an oversized one 413, broken encoding 400."""
    client = make_client(max_body_bytes=1024)
    assert client.post("/", content=b"{}", headers={"content-type": "application/json"}).status_code == 415
    big = b"information=" + b"x" * 10_000
    urlencoded = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/", content=big, headers=urlencoded).status_code == 413
    assert client.post("/", content=b"a=%ff%fe", headers=urlencoded).status_code == 400


def test_naughty_strings_in_the_form_never_give_500(client: TestClient, blns: list[str]) -> None:
    """Every naughty string in every form field gets a page back (200 or 422), never a 500."""
    page = client.get("/").text
    token = csrf_of(page)
    names = sorted({name for name, _ in VALID_FORM})
    statuses = set()
    for naughty in blns[::3]:  # a third of the list keeps this quick; the JSON test covers all of it
        fields = [("csrf_token", token), *((name, naughty) for name in names)]
        statuses.add(send(client, fields).status_code)
    assert statuses <= {200, 422}


def test_the_error_summary_follows_the_order_of_the_page() -> None:
    """Problems are listed in the order the fields appear (about you first, then what you know), not in
    the order validation found them, so the summary reads top to bottom like the form."""
    from schemas import ValidationIssue

    issues = [
        ValidationIssue(path="/information", code="required", message="Tell us what you know."),
        ValidationIssue(path="/source/email", code="required", message="Enter your email address."),
        ValidationIssue(path="/source/name", code="required", message="Enter your name."),
    ]
    page = render_form(csrf_token="t", idempotency_key="k", values={"information": ""}, issues=issues)
    summary = page[page.index('class="error-summary"'):page.index("</ul>", page.index('class="error-summary"'))]
    links = re.findall(r'<a href="#([^"]+)">', summary)
    assert links == ["source-name", "source-email", "information"]
