"""The scrubber, one class of identifier at a time, the keep-subject-facts rule, and sanitise()."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from schemas import Source, SubmissionContent
from services.sanitiser.domain import REDACTION_MARKER, ScrubConfig, load_scrub_config, sanitise, scrub

M = REDACTION_MARKER


@pytest.fixture(scope="module")
def config() -> ScrubConfig:
    return load_scrub_config()


@pytest.fixture(scope="module")
def teacher() -> Source:
    return Source(
        name="Sarah Khan",
        role="Class Teacher",
        organisation="Oakfield Primary School",
        organisation_type="education",
        email="s.khan@oakfield.sch.uk",
        phone="01632 960001",
    )


def clean(text: str, source: Source, config: ScrubConfig, protected: tuple[str, ...] = ()) -> str:
    return scrub(text, source, config, protected=protected)[0]


@pytest.mark.parametrize(
    "written",
    ["Sarah Khan", "sarah khan", "Mrs Khan", "Mrs. Khan", "Ms S. Khan", "S. Khan", "S Khan", "Khan, S.",
     "Khan, Sarah", "Sarah K.", "SK", "S.K.", "Miss Sarah", "Sally", "Mrs Khan's"],
)
def test_name_variants_are_removed(written: str, teacher: Source, config: ScrubConfig) -> None:
    """The full name, titles, initials, surname-first forms and short forms of the given name all go."""
    assert clean(f"It was reported by {written} on Monday.", teacher, config) == f"It was reported by {M} on Monday."


@pytest.mark.parametrize(
    "written",
    ["01632 960001", "01632-960-001", "(01632) 960 001", "+44 1632 960001", "+44 (0)1632 960001",
     "0044 1632 960001", "01632960001", "+441632960001"],
)
def test_phone_in_any_format_is_removed(written: str, teacher: Source, config: ScrubConfig) -> None:
    """The source's phone is found on its digits however it is spaced, bracketed or prefixed."""
    assert clean(f"Ring {written} after 4pm.", teacher, config) == f"Ring {M} after 4pm."


def test_subject_phone_is_kept(teacher: Source, config: ScrubConfig) -> None:
    """A different number (a subject's) stays, even next to the source's."""
    text = clean("His number is 07700 900123, mine is 01632 960001.", teacher, config)
    assert "07700 900123" in text
    assert "960001" not in text


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Email s.khan@oakfield.sch.uk today.", f"Email {M} today."),
        ("Email S.Khan@Oakfield.sch.uk today.", f"Email {M} today."),
        ("Her login is s.khan here.", f"Her login is {M} here."),
        ("Ask office@oakfield.sch.uk today.", f"Ask {M} today."),
        ("See www.oakfield.sch.uk/safeguarding today.", f"See {M} today."),
    ],
)
def test_email_local_part_and_domain_are_removed(
    written: str, expected: str, teacher: Source, config: ScrubConfig
) -> None:
    """The source's email, its local part alone, and any address or page at its own domain go."""
    assert clean(written, teacher, config) == expected


def test_generic_email_domain_is_kept(config: ScrubConfig) -> None:
    """A shared provider's domain says nothing of the source, so other addresses there stay."""
    gp = Source(name="Amelia Okafor", role="GP", organisation="Riverside Medical Centre",
                organisation_type="health", email="amelia.okafor@nhs.net")
    text = clean("Write to amelia.okafor@nhs.net or to the duty team at duty.team@nhs.net.", gp, config)
    assert "amelia" not in text.lower()
    assert "duty.team@nhs.net" in text


@pytest.mark.parametrize(
    "written", ["Oakfield Primary School", "the Oakfield Primary School", "Oakfield Primary", "Oakfield", "OPS",
                "O.P.S.", "oakfield primary"],
)
def test_organisation_and_short_forms_are_removed(written: str, teacher: Source, config: ScrubConfig) -> None:
    """The organisation, its shorter forms and its acronym are each replaced by one marker."""
    assert clean(f"Seen near {written} at noon.", teacher, config) == f"Seen near {M} at noon."


def test_lowercase_acronym_is_an_ordinary_word(teacher: Source, config: ScrubConfig) -> None:
    """An organisation's acronym is matched in capitals only: "ops" stays an ordinary word."""
    assert clean("The police ops team was told.", teacher, config) == "The police ops team was told."


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("I am her teacher and I saw him hand over a package.", f"{M} and {M} saw him hand over a package."),
        ("I'm her class teacher.", f"{M}."),
        ("The class teacher noticed bruises.", f"{M} noticed bruises."),
        ("Her form tutor noticed bruises.", f"{M} noticed bruises."),
        ("He is in my class.", f"He is in {M}."),
        ("She is one of our pupils.", f"She is {M}."),
        ("Our DSL was told.", f"{M} was told."),
        ("I was told by a parent.", f"{M} was told by a parent."),
        ("He came to this school in May.", f"He came to {M} in May."),
        ("This worker visited the flat.", f"{M} visited the flat."),
    ],
)
def test_role_and_first_person_references_are_removed(
    written: str, expected: str, teacher: Source, config: ScrubConfig
) -> None:
    """Role titles of the source's family and first-person or setting references become markers,
    while the fact around them ("saw him hand over a package") stays."""
    assert clean(written, teacher, config) == expected


def test_other_roles_are_kept(teacher: Source, config: ScrubConfig) -> None:
    """A role outside the source's family (a teacher writing about a GP) is a fact, not the source."""
    assert clean("Her GP prescribed sleeping pills.", teacher, config) == "Her GP prescribed sleeping pills."


def test_first_person_inside_quotes_is_kept(teacher: Source, config: ScrubConfig) -> None:
    """In a quotation the "I" is whoever is quoted: a threat keeps its words."""
    text = clean('He said "I will find you and my boys will hurt you" and I believed him.', teacher, config)
    assert text == f'He said "I will find you and my boys will hurt you" and {M} believed him.'


def test_source_name_inside_quotes_is_removed(teacher: Source, config: ScrubConfig) -> None:
    """Quotation marks protect grammar, never the source's identity."""
    assert "Khan" not in clean('She said "Mrs Khan is nice".', teacher, config)


def test_shared_surname_kept_only_inside_subject_name(teacher: Source, config: ScrubConfig) -> None:
    """Source Sarah Khan, subject Amir Khan: "Amir Khan" stays whole; the source's full name, her
    titled surname and a bare "Khan" (ambiguous) are removed."""
    text = clean(
        "Sarah Khan saw Amir Khan. Mrs Khan spoke to Amir Khan's mother. Khan was upset.",
        teacher,
        config,
        protected=("Amir Khan",),
    )
    assert text == f"{M} saw Amir Khan. {M} spoke to Amir Khan's mother. {M} was upset."


def test_subject_alias_equal_to_source_token_does_not_protect_it(teacher: Source, config: ScrubConfig) -> None:
    """A subject fact that is nothing more than the source's surname cannot keep it: never leak."""
    assert clean("Khan was there.", teacher, config, protected=("Khan",)) == f"{M} was there."


def test_organisation_word_in_subject_address_is_kept(teacher: Source, config: ScrubConfig) -> None:
    """"Oakfield" alone is the school; inside the subject's address "14 Oakfield Road" it is a fact."""
    text = clean("She lives at 14 Oakfield Road near Oakfield.", teacher, config, protected=("14 Oakfield Road",))
    assert text == f"She lives at 14 Oakfield Road near {M}."


def test_subject_alias_with_first_person_word_is_kept(teacher: Source, config: ScrubConfig) -> None:
    """An alias such as "Our Kid" is a subject fact: its "Our" is not the writer's."""
    text = clean("He is known as Our Kid on the estate.", teacher, config, protected=("Our Kid",))
    assert text == "He is known as Our Kid on the estate."


def test_common_word_names_only_when_capitalised(config: ScrubConfig) -> None:
    """A source called Will Brown: "Will Brown" and "Mr Brown" go, "will" and "brown" as words stay."""
    source = Source(name="Will Brown", role="Youth Worker", organisation="Brightside Youth Project",
                    organisation_type="youth_service", email="w.brown@brightside.org.uk")
    text = clean("Mr Brown thinks he will sell the brown car. Will Brown", source, config)
    assert text == f"{M} thinks he will sell the brown car. {M}"


def test_adjacent_removals_become_one_marker_and_are_counted(teacher: Source, config: ScrubConfig) -> None:
    """A signature block (sign-off included) or "Mrs Khan, the class teacher," is one marker; the count is
    the markers."""
    text, count = scrub(
        "Mrs Khan, the class teacher, saw it.\nRegards,\nSarah Khan\nOakfield Primary School\n01632 960001",
        teacher,
        config,
    )
    assert text == f"{M}, saw it.\n{M}"
    assert count == 2


def test_text_without_source_is_unchanged(teacher: Source, config: ScrubConfig) -> None:
    """Nothing to remove: the text comes back as it was, with a count of zero."""
    text = "Amir Khan was seen at 14 Oakfield Road at 10pm in a black Audi, AB12 CDE."
    assert scrub(text, teacher, config, protected=("Amir Khan", "14 Oakfield Road")) == (text, 0)


def test_accents_and_apostrophes_are_matched_loosely(config: ScrubConfig) -> None:
    """"Zoë O'Connor" is also found as "Zoe OConnor" and "Zoe O Connor"."""
    source = Source(name="Zoë O'Connor", role="Tenancy Officer", organisation="Calderbrook Homes",
                    organisation_type="housing", email="zoe@calderbrook.org")
    for written in ["Zoe OConnor", "Zoe O Connor", "Zo\u00eb O\u2019Connor", "Ms O'Connor"]:
        assert clean(f"Signed {written} today", source, config) == f"Signed {M} today"


def submission(**overrides: object) -> SubmissionContent:
    data: dict[str, object] = {
        "lawful_basis": "other",
        "lawful_basis_detail": "Agreed with Sarah Khan's head at Oakfield Primary School",
        "caldicott_guardian_consulted": True,
        "urgency": {"immediate_risk": False, "crime_in_progress": False},
        "categories": ["criminal_exploitation"],
        "subjects": [
            {"role": "at_risk", "name": "Amir Khan", "aliases": ["AK"], "approx_age": 14,
             "address": "14 Oakfield Road (email s.khan@oakfield.sch.uk for access)",
             "description": "In my class; I think he is scared."},
        ],
        "locations": [{"description": "Our school car park, Oakfield", "postcode": "SW1A 1AA"}],
        "vehicles": [{"registration": "AB12 CDE", "make": "Audi", "colour": "black",
                      "description": "Parked by Mrs Khan's classroom"}],
        "information": "I am his class teacher. I saw Amir Khan get into the Audi. Call me on 01632 960001.",
        "how_known": "witnessed_directly",
        "when_observed": "2024-05-01",
        "subject_aware": False,
        "other_agencies_informed": ["Oakfield Primary School governors"],
        "idempotency_key": "oakfield-sarah-khan-1",
    }
    data.update(overrides)
    return SubmissionContent.model_validate(data)


def test_sanitise_output_contains_nothing_from_source(teacher: Source, config: ScrubConfig) -> None:
    """Serialised to JSON, the intel holds no source value (name, surname alone, email and its local
    part, phone digits, organisation and its short form), and not the idempotency key."""
    intel = sanitise(submission(), teacher, intel_id="a" * 32, received_on=date(2024, 5, 2), config=config)
    payload = intel.model_dump_json()
    for value in ["Sarah Khan", "Sarah", "s.khan", "oakfield.sch.uk", "Oakfield Primary", "Class Teacher",
                  "teacher", "oakfield-sarah-khan-1", "governors"]:
        assert value.lower() not in payload.lower(), value
    assert "1632960001" not in re.sub(r"\D", "", payload)
    assert "Mrs Khan" not in payload


def test_sanitise_keeps_subject_facts_and_allowed_fields(teacher: Source, config: ScrubConfig) -> None:
    """Subject name, alias, address, vehicle and the allowed fields are copied; free text is scrubbed;
    the redaction count is the total over every field."""
    content = submission()
    intel = sanitise(content, teacher, intel_id="b" * 32, received_on=date(2024, 5, 2), config=config)
    subject = intel.subjects[0]
    assert (subject.name, subject.aliases, subject.approx_age) == ("Amir Khan", ["AK"], 14)
    assert subject.address == f"14 Oakfield Road (email {M} for access)"
    assert subject.description == f"In {M}; {M} think he is scared."
    assert intel.locations[0].description == f"{M} car park, {M}"
    assert intel.locations[0].postcode == "SW1A 1AA"
    assert intel.vehicles[0].registration == "AB12 CDE"
    assert intel.vehicles[0].description == f"Parked by {M} classroom"
    assert intel.information == f"{M}. {M} saw Amir Khan get into the Audi. Call {M} on {M}."
    assert (intel.how_known, intel.when_observed, intel.subject_aware, intel.lawful_basis) == (
        content.how_known, content.when_observed, content.subject_aware, content.lawful_basis)
    assert intel.categories == content.categories
    assert intel.received_on == date(2024, 5, 2)
    assert intel.redaction_count == 1 + 2 + 2 + 1 + 4  # address, description, location, vehicle, information


def test_sanitise_never_breaks_length_limits(teacher: Source, config: ScrubConfig) -> None:
    """Markers longer than what they replace are cut to the contract's limit rather than failing."""
    description = ("I " * 1000).strip()  # 1999 characters of pronouns, each a marker
    content = submission(subjects=[{"role": "at_risk", "description": description.replace(" ", ". ")[:2000]}])
    intel = sanitise(content, teacher, intel_id="c" * 32, received_on=date(2024, 5, 2), config=config)
    assert intel.subjects[0].description is not None
    assert len(intel.subjects[0].description) <= 2000
    assert "I." not in intel.subjects[0].description


def test_sanitise_drops_registration_that_is_the_sources(config: ScrubConfig) -> None:
    """A registration that collides with a source identifier is dropped, not half-marked."""
    source = Source(name="Kay Lee", role="Volunteer", organisation="Haven Trust",
                    organisation_type="voluntary_sector", email="kay@haven.org")
    content = submission(vehicles=[{"registration": "KL 12 ABC", "make": "Ford"}])
    # "KL 12 ABC" contains the initials KL; as a protected fact longer than them it keeps them.
    intel = sanitise(content, source, intel_id="d" * 32, received_on=date(2024, 5, 2), config=config)
    assert intel.vehicles[0].registration == "KL 12 ABC"
    content = submission(vehicles=[{"registration": "HAVEN", "make": "Ford"}])
    intel = sanitise(content, source, intel_id="d" * 32, received_on=date(2024, 5, 2), config=config)
    assert intel.vehicles[0].registration is None


def test_config_loads_from_a_given_path(tmp_path: Path, config: ScrubConfig) -> None:
    """load_scrub_config reads the phrase lists from the default file and from a path given."""
    copy = tmp_path / "phrases.yaml"
    default = Path(__file__).parents[3] / "services" / "sanitiser" / "scrub_phrases.yaml"
    copy.write_text(default.read_text(encoding="utf-8").replace("this worker, ", ""), encoding="utf-8")
    custom = load_scrub_config(copy)
    assert "this worker" in config.self_references
    assert "this worker" not in custom.self_references
