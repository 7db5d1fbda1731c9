"""The validation rules, one by one: each has its own stable code, a JSON pointer and a plain message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.intake.domain import CODES, MAX_DEPTH, MAX_ISSUES, parse_json, validate_submission
from tests.unit.intake.samples import valid_submission

TOMORROW = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()


def problems(data: Any) -> set[tuple[str, str]]:
    return {(e.path, e.code) for e in validate_submission(data).errors}


def test_a_valid_submission_is_accepted_and_normalised() -> None:
    """A complete, valid submission is accepted; postcodes are normalised and text is stripped."""
    data = valid_submission()
    data["source"]["name"] = "  Harriet Canary-Teacher \n"
    result = validate_submission(data)
    assert result.accepted, result.errors
    assert result.submission is not None
    assert result.submission.locations[0].postcode == "SW1A 1AA"
    assert result.submission.source.name == "Harriet Canary-Teacher"


@pytest.mark.parametrize("field", ["lawful_basis", "urgency", "categories", "information", "how_known", "source"])
def test_each_required_field_is_reported_as_required(field: str) -> None:
    """Leaving out any required top-level field gives code `required` at that field's pointer."""
    assert (f"/{field}", "required") in problems(valid_submission(**{field: None}))


@pytest.mark.parametrize("field", ["name", "role", "organisation", "organisation_type", "email"])
def test_each_required_source_field_is_reported(field: str) -> None:
    """The source's required fields are reported at /source/<field> with code `required`."""
    data = valid_submission()
    del data["source"][field]
    assert (f"/source/{field}", "required") in problems(data)


def test_every_problem_is_reported_at_once() -> None:
    """Several broken fields give several issues in one answer, not just the first."""
    data = valid_submission(information="short", how_known="guess", categories=[])
    data["source"]["email"] = "not-an-email"
    found = problems(data)
    assert {("/information", "too_short"), ("/how_known", "not_an_option"), ("/categories", "too_few"),
            ("/source/email", "invalid_email")} <= found


def test_unknown_fields_are_rejected_at_any_depth() -> None:
    """Fields the v1 contract does not know are refused with `unknown_field`, top-level and nested."""
    data = valid_submission(surprise=1)
    data["subjects"][0]["shoe_size"] = 9
    assert {("/surprise", "unknown_field"), ("/subjects/0/shoe_size", "unknown_field")} <= problems(data)


@pytest.mark.parametrize(
    ("categories", "code", "path"),
    [
        ([], "too_few", "/categories"),
        (["drug_related_harm", "drug_related_harm"], "duplicate_item", "/categories"),
        (["burglary"], "not_an_option", "/categories/0"),
        ("drug_related_harm", "not_a_list", "/categories"),
    ],
)
def test_categories_are_one_to_eight_unique_known_codes(categories: Any, code: str, path: str) -> None:
    """Categories must be a non-empty list of distinct codes from the eight."""
    assert (path, code) in problems(valid_submission(categories=categories))


def test_all_eight_categories_together_are_accepted() -> None:
    """Every one of the eight category codes is accepted, all at once."""
    eight = ["missing_exploited_trafficked", "child_sexual_exploitation", "criminal_exploitation",
             "drug_related_harm", "modern_slavery", "community_cohesion", "anti_social_behaviour", "organised_crime"]
    assert validate_submission(valid_submission(categories=eight)).accepted


@pytest.mark.parametrize(("length", "code"), [(19, "too_short"), (10_001, "too_long")])
def test_information_must_be_20_to_10000_characters(length: int, code: str) -> None:
    """`information` shorter than 20 or longer than 10,000 characters is refused."""
    assert ("/information", code) in problems(valid_submission(information="x" * length))


@pytest.mark.parametrize("length", [20, 10_000])
def test_information_at_the_bounds_is_accepted(length: int) -> None:
    """Exactly 20 and exactly 10,000 characters are fine."""
    assert validate_submission(valid_submission(information="x" * length)).accepted


def test_information_length_counts_after_stripping() -> None:
    """Whitespace around the text does not count towards the 20-character minimum."""
    assert ("/information", "too_short") in problems(valid_submission(information="   " + "x" * 19 + "    "))


@pytest.mark.parametrize("urgency", [{"immediate_risk": True, "crime_in_progress": False},
                                     {"immediate_risk": False, "crime_in_progress": True}])
def test_urgency_means_call_999(urgency: dict[str, bool]) -> None:
    """Either urgency flag true rejects the submission with `urgent_call_999` and tells them to call 999."""
    result = validate_submission(valid_submission(urgency=urgency))
    assert result.submission is None
    [urgent] = [e for e in result.errors if e.code == "urgent_call_999"]
    assert urgent.path == "/urgency"
    assert "call 999" in urgent.message


def test_urgency_is_reported_even_when_other_fields_fail() -> None:
    """The 999 message comes first even when the rest of the submission is broken too."""
    result = validate_submission({"urgency": {"immediate_risk": True, "crime_in_progress": False}})
    assert result.errors[0].code == "urgent_call_999"
    assert len(result.errors) > 1


def test_urgency_flags_must_be_real_booleans() -> None:
    """A string "true" is not a boolean: strict validation refuses it instead of guessing."""
    assert ("/urgency/immediate_risk", "not_true_or_false") in problems(
        valid_submission(urgency={"immediate_risk": "true", "crime_in_progress": False}))


@pytest.mark.parametrize("email", ["plainaddress", "a@b", "@example.org", "a b@example.org", "x@", "a@-b.org"])
def test_email_must_be_valid(email: str) -> None:
    """Malformed email addresses get `invalid_email`."""
    data = valid_submission()
    data["source"]["email"] = email
    assert ("/source/email", "invalid_email") in problems(data)


@pytest.mark.parametrize("phone", ["01632 960 001", "+44 1632 960001", "(01632) 960-001", "07700900123",
                                   "+14155552671"])
def test_uk_and_e164_phone_numbers_are_accepted(phone: str) -> None:
    """UK national numbers and E.164 numbers, with ordinary separators, are valid."""
    data = valid_submission()
    data["source"]["phone"] = phone
    assert validate_submission(data).accepted


@pytest.mark.parametrize("phone", ["12", "0163296", "call me", "+0441632960001", "00000"])
def test_other_phone_numbers_are_refused(phone: str) -> None:
    """Anything that is neither a UK national number nor E.164 gets `invalid_phone`."""
    data = valid_submission()
    data["source"]["phone"] = phone
    assert ("/source/phone", "invalid_phone") in problems(data)


def test_lawful_basis_other_needs_detail() -> None:
    """`lawful_basis: other` without `lawful_basis_detail` gets `lawful_basis_detail_required` at the detail."""
    assert problems(valid_submission(lawful_basis="other")) == {
        ("/lawful_basis_detail", "lawful_basis_detail_required")}


def test_lawful_basis_detail_is_reported_alongside_other_problems() -> None:
    """The detail rule is reported even when other fields fail (pydantic alone would skip it), exactly once."""
    result = validate_submission(valid_submission(lawful_basis="other", information="short"))
    codes = [e.code for e in result.errors]
    assert codes.count("lawful_basis_detail_required") == 1
    assert "too_short" in codes


def test_lawful_basis_other_with_detail_is_accepted() -> None:
    """With a detail, `other` is a valid lawful basis."""
    assert validate_submission(valid_submission(lawful_basis="other", lawful_basis_detail="Court order")).accepted


def test_blank_lawful_basis_detail_counts_as_missing() -> None:
    """A detail of only spaces is no detail."""
    found = problems(valid_submission(lawful_basis="other", lawful_basis_detail="   ", information="short"))
    assert ("/lawful_basis_detail", "lawful_basis_detail_required") in found or (
        "/lawful_basis_detail", "too_short") in found


def test_when_observed_must_not_be_in_the_future() -> None:
    """An observation date after today is refused with `date_in_future`."""
    assert ("/when_observed", "date_in_future") in problems(valid_submission(when_observed=TOMORROW))


def test_date_of_birth_must_not_be_in_the_future() -> None:
    """A subject's date of birth after today is refused with `date_in_future`."""
    data = valid_submission()
    data["subjects"][0]["date_of_birth"] = TOMORROW
    assert ("/subjects/0/date_of_birth", "date_in_future") in problems(data)


@pytest.mark.parametrize("value", ["2024-02-30", "31/12/2020", "yesterday", 20240101])
def test_dates_must_be_real_calendar_dates(value: Any) -> None:
    """Impossible or wrongly formatted dates get `invalid_date`."""
    assert ("/when_observed", "invalid_date") in problems(valid_submission(when_observed=value))


@pytest.mark.parametrize(("age", "code"), [(-1, "out_of_range"), (121, "out_of_range"), (14.5, "not_a_whole_number"),
                                           ("14", "not_a_whole_number")])
def test_approx_age_is_a_whole_number_from_0_to_120(age: Any, code: str) -> None:
    """Approximate age outside 0 to 120, or not a whole number, is refused."""
    data = valid_submission()
    data["subjects"][0]["approx_age"] = age
    assert ("/subjects/0/approx_age", code) in problems(data)


@pytest.mark.parametrize("age", [0, 120])
def test_approx_age_bounds_are_accepted(age: int) -> None:
    """0 and 120 are both valid ages."""
    data = valid_submission()
    data["subjects"][0]["approx_age"] = age
    assert validate_submission(data).accepted


@pytest.mark.parametrize("postcode", ["SW1A 1AA", "m1 1ae", "B33 8TH", "CR2 6XH", "DN55 1PT", "GIR 0AA", "EC1A1BB"])
def test_uk_postcodes_are_accepted(postcode: str) -> None:
    """Every UK postcode shape is accepted, in any case, with or without the space."""
    data = valid_submission()
    data["locations"][0]["postcode"] = postcode
    assert validate_submission(data).accepted


@pytest.mark.parametrize("postcode", ["ZZ", "12345", "SW1A 1A", "QQ1 1AA", "SW1A-1AA", "not a postcode"])
def test_other_postcodes_are_refused(postcode: str) -> None:
    """Anything not shaped like a UK postcode gets `invalid_postcode` (including too short or too long)."""
    data = valid_submission()
    data["locations"][0]["postcode"] = postcode
    assert ("/locations/0/postcode", "invalid_postcode") in problems(data)


@pytest.mark.parametrize("field", ["subjects", "locations", "vehicles"])
def test_lists_of_people_places_and_vehicles_are_bounded(field: str) -> None:
    """More than 20 subjects, locations or vehicles gets `too_many`."""
    row = valid_submission()[field][0]
    assert (f"/{field}", "too_many") in problems(valid_submission(**{field: [row] * 21}))


def test_aliases_and_other_agencies_are_bounded() -> None:
    """More than 10 aliases or 20 other agencies gets `too_many`."""
    data = valid_submission(other_agencies_informed=["Social care"] * 21)
    data["subjects"][0]["aliases"] = ["x"] * 11
    assert {("/subjects/0/aliases", "too_many"), ("/other_agencies_informed", "too_many")} <= problems(data)


@pytest.mark.parametrize(("path", "limit"), [(("source", "name"), 200), (("subjects", 0, "description"), 2000),
                                             (("vehicles", 0, "colour"), 100), (("idempotency_key",), 64)])
def test_strings_are_bounded(path: tuple[Any, ...], limit: int) -> None:
    """Every string has a maximum length; one character over is `too_long` at that field."""
    data = valid_submission()
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = "x" * (limit + 1)
    pointer = "/" + "/".join(str(p) for p in path)
    assert (pointer, "too_long") in problems(data)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused(char: str) -> None:
    """Control characters in free text get `control_character`."""
    assert ("/information", "control_character") in problems(
        valid_submission(information=f"Seen at the park {char} every evening"))


def test_line_breaks_are_fine_in_free_text_but_not_in_names() -> None:
    """Free text keeps its line breaks; a single-line field gets `line_break`."""
    data = valid_submission(information="First line of what I know.\nSecond line with\ttabs.")
    data["source"]["name"] = "Harriet\nCanary"
    assert problems(data) == {("/source/name", "line_break")}


def test_nesting_beyond_the_limit_is_too_deep() -> None:
    """A value nested deeper than the limit is refused with `too_deep` before pydantic sees it."""
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    assert validate_submission(valid_submission(information=deep)).errors[0].code == "too_deep"


def test_lone_surrogates_and_non_finite_numbers_are_refused() -> None:
    """Text that is not valid Unicode and NaN/Infinity numbers get their own codes, never a crash."""
    assert validate_submission(valid_submission(information="\ud800" * 30)).errors[0].code == "invalid_text"
    data = valid_submission()
    data["subjects"][0]["approx_age"] = float("nan")
    assert validate_submission(data).errors[0].code == "invalid_number"


def test_issues_are_capped_with_a_final_note() -> None:
    """Thousands of problems are cut to the contract's 200, the last saying there are more."""
    errors = validate_submission({f"field{i}": i for i in range(1000)}).errors
    assert len(errors) == MAX_ISSUES
    assert errors[-1].code == "too_many_errors"


def test_non_objects_are_refused_plainly() -> None:
    """A JSON array, string or number is `not_an_object` at the root."""
    for value in ([], "text", 3, None):
        assert ("", "not_an_object") in problems(value)


def test_every_code_produced_is_documented() -> None:
    """Every code the rules produce is in CODES, so clients can rely on the list."""
    broken = valid_submission(information="\x00 short", when_observed=TOMORROW, categories=["x", "x"],
                              urgency={"immediate_risk": True, "crime_in_progress": "no"}, lawful_basis="other",
                              extra=1, subjects=[{"role": "nobody", "approx_age": 500, "aliases": "x"}],
                              locations=[{"description": "", "postcode": "1"}])
    broken["source"].update(email="x", phone="1", name="a\nb", recontact_ok="yes")
    codes = {e.code for e in validate_submission(broken).errors}
    assert len(codes) >= 12
    assert codes <= set(CODES)


def test_messages_never_echo_the_submitted_value() -> None:
    """A message never quotes what was sent (it may be provenance or hostile markup)."""
    canary = "CANARY<script>alert(1)</script>"
    data = valid_submission(information=canary + "\x00" * 3, when_observed=canary, how_known=canary)
    data["source"]["email"] = canary
    for error in validate_submission(data).errors:
        assert "CANARY" not in error.message


def test_paths_use_json_pointer_escaping() -> None:
    """Field names with '/' or '~' are escaped as RFC 6901 says."""
    assert ("/a~1b~0c", "unknown_field") in problems(valid_submission(**{"a/b~c": 1}))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": Infinity}', "invalid_json"),
        (b'{"a": -Infinity}', "invalid_json"),
        (b'{"a": 1e999}', "invalid_json"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"a": {"b": 1, "b": 1}}', "duplicate_key"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"a": 1', "invalid_json"),
        (b"1" * 5000, "invalid_json"),
    ],
)
def test_parse_json_refuses_what_a_submission_never_needs(raw: bytes, code: str) -> None:
    """NaN/Infinity, overflowing numbers, duplicate keys, absurd nesting and non-UTF-8 are refused with a code."""
    value, problem = parse_json(raw)
    assert value is None
    assert problem is not None and problem.code == code


def test_parse_json_accepts_ordinary_json() -> None:
    """An ordinary object parses to the same value json.loads gives."""
    assert parse_json('{"a": [1, 2.5, "x", null, true]}') == ({"a": [1, 2.5, "x", None, True]}, None)


def test_no_category_reads_as_an_instruction() -> None:
    """An empty category list tells the person what to do, in plain words."""
    [error] = validate_submission(valid_submission(categories=[])).errors
    assert error.message == "Choose at least one category."
