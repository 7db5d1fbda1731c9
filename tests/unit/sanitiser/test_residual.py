"""The residual-risk check, both ways: what could still point at the source holds the intel; subject facts,
shouted words, number plates and ordinary sentence starts do not."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import Location, SanitisedIntel
from services.sanitiser import domain, residual
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD, assess_residual_risk

M = domain.REDACTION_MARKER


def intel(information: str, **subject: Any) -> SanitisedIntel:
    return SanitisedIntel.model_validate({
        "intel_id": "0" * 32, "received_on": "2026-12-01", "categories": ["criminal_exploitation"],
        "subjects": [{"role": "at_risk", **subject}] if subject else [],
        "information": information, "how_known": "witnessed_directly", "lawful_basis": "safeguarding",
        "redaction_count": 1})


def test_the_marker_is_the_scrubbers() -> None:
    """The check looks for the very marker the scrubber writes."""
    assert residual.REDACTION_MARKER == domain.REDACTION_MARKER


@pytest.mark.parametrize(("text", "code"), [
    ("Jayden was seen at the park. Contact jo.bloggs@riverside-lettings.co.uk for more.", "email_address"),
    ("Jayden was seen at the park. See www.riverside-lettings.co.uk for the rota.", "web_address"),
    ("Jayden was seen at the park. Ring 0113 496 0999 for more.", "phone_number"),
    (f"Jayden was seen at the park by {M} (Sister, A&E {M}).", "beside_marker"),
    (f"Jayden was seen at the park. Gwenno @ {M}", "beside_marker"),
    ("Jayden was seen at the park on Friday night.\n\nMarcus", "name_in_sign_off"),
])
def test_what_could_name_the_source_holds_the_intel(text: str, code: str) -> None:
    """Each kind of finding is reported by its code and, alone, reaches the hold threshold."""
    risk = assess_residual_risk(intel(text, name="Jayden Price"))
    assert code in risk.codes
    assert risk.holds(DEFAULT_HOLD_THRESHOLD)


@pytest.mark.parametrize("text", [
    "Jayden Price was seen at the park. His number is 07700 900123.",
    f"{M} Now Jayden goes missing most weekends and comes back with cash.",
    "URGENT - NOT FOR DISCLOSURE TO FAMILY. Jayden was seen with older males at the park.",
    f"Jayden gets into a silver Ford Focus, FG68 KLT, outside {M} Mill Road most days.",
    f"Seen by {M}. Jayden has two phones and new trainers from an older male called 'Tank'.",
])
def test_subject_facts_and_ordinary_text_do_not_hold(text: str) -> None:
    """A subject's own phone, a sentence starting after a removal, shouted capitals, a number plate and a
    street beside a removal are not signs of the source."""
    risk = assess_residual_risk(intel(text, name="Jayden Price"))
    assert not risk.holds(DEFAULT_HOLD_THRESHOLD), risk.reasons


def test_an_unexplained_acronym_alone_is_a_doubt_not_a_hold() -> None:
    """One acronym nothing explains adds to the score; two doubts are enough to hold."""
    one = assess_residual_risk(intel("Jayden was referred to the KAB panel last week.", name="Jayden Price"))
    two = assess_residual_risk(intel("Jayden was referred to the KAB panel by the QRT.", name="Jayden Price"))
    assert one.codes == ("unexplained_acronym",) and not one.holds(DEFAULT_HOLD_THRESHOLD)
    assert two.holds(DEFAULT_HOLD_THRESHOLD)


@pytest.mark.parametrize(("text", "code"), [
    (f"Jayden was at the counter again and Shaz saw him take the bags. {M}", "person_not_a_subject"),
    (f"Jayden was seen by the bins, and Owain Bevan rang the office. {M}", "person_not_a_subject"),
    (f"Jayden was dropped at the Harcourt site at 8. {M}", "named_premises"),
])
def test_a_reporting_name_or_named_premises_not_the_subjects_holds(text: str, code: str) -> None:
    """Someone who is not a subject seeing, telling or ringing inside a sentence is most often the writer's colleague;
    premises named like the writer's own may be the writer's: the Intelligence Unit decides."""
    risk = assess_residual_risk(intel(text, name="Jayden Price"))
    assert code in risk.codes and risk.holds(DEFAULT_HOLD_THRESHOLD)


@pytest.mark.parametrize("text", [
    "Jayden was at the counter again and Jayden said the bags were for Tank.",
    "Nothing was taken. Someone is worried about Jayden Price.",
    "Jayden Price said his uncle runs the Kestrel Road car wash.",
])
def test_a_subject_reporting_or_a_sentence_start_does_not_hold(text: str) -> None:
    """A subject saying something, ordinary words that begin a sentence, and a street are not those doubts."""
    risk = assess_residual_risk(intel(text, name="Jayden Price"))
    assert not {"person_not_a_subject", "named_premises"} & set(risk.codes), risk.reasons


def test_premises_that_are_the_reports_location_do_not_hold() -> None:
    """"Riverside Shopping Centre" listed among the report's locations is the subject's place, not the writer's."""
    base = intel("Jayden steals from the Riverside Shopping Centre most Saturdays.", name="Jayden Price")
    located = base.model_copy(update={"locations": [Location(description="Riverside Shopping Centre")]})
    assert "named_premises" in assess_residual_risk(base).codes
    assert "named_premises" not in assess_residual_risk(located).codes
