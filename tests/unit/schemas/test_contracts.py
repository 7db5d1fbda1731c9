"""The v1 contracts: frozen, strict, bounded, and exported JSON Schema in step with the code."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import schemas
from schemas.export import EXPORTED, JSON_DIR, rendered
from schemas.topics import ALL_TOPICS, AUDIT, HELD, OUTCOME_TOPICS, SANITISED


def valid_submission() -> dict[str, Any]:
    return {
        "source": {"name": "Ann Example", "role": "Teacher", "organisation": "Oak School",
                   "organisation_type": "education", "email": "ann@oak.example", "phone": "+44 1632 960001"},
        "lawful_basis": "safeguarding",
        "urgency": {"immediate_risk": False, "crime_in_progress": False},
        "categories": ["criminal_exploitation"],
        "information": "A pupil has new phones and unexplained cash since October.",
        "how_known": "told_by_subject",
    }


def test_exported_json_schema_matches_the_models() -> None:
    """schemas/json/ holds exactly what the models export; run `make schemas` after changing a model."""
    expected = rendered()
    on_disk = {path.name: path.read_text() for path in JSON_DIR.glob("*.json")}
    assert on_disk == expected


@pytest.mark.parametrize("model", EXPORTED, ids=lambda m: m.__name__)
def test_every_contract_is_frozen_and_forbids_unknown_fields(model: type[BaseModel]) -> None:
    """Each exported contract refuses unknown fields and cannot be changed after it is made."""
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True


def _unbounded_strings(schema: dict[str, Any], path: str = "") -> list[str]:
    found = []
    if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema \
            and "const" not in schema and schema.get("format") not in ("date", "date-time"):
        found.append(path)
    for key, value in schema.items():
        if isinstance(value, dict):
            found += _unbounded_strings(value, f"{path}/{key}")
        elif isinstance(value, list):
            found += [p for i, v in enumerate(value) if isinstance(v, dict)
                      for p in _unbounded_strings(v, f"{path}/{key}/{i}")]
    return found


@pytest.mark.parametrize("model", EXPORTED, ids=lambda m: m.__name__)
def test_every_string_is_length_bounded(model: type[BaseModel]) -> None:
    """No string field in any contract is unbounded."""
    assert _unbounded_strings(model.model_json_schema()) == []


def test_a_valid_submission_parses_and_normalises_postcodes() -> None:
    """A minimal valid submission parses; postcodes are normalised to the canonical spacing."""
    data = valid_submission() | {"locations": [{"description": "Park", "postcode": "sw1a1aa"}]}
    parsed = schemas.Submission.model_validate(data)
    assert parsed.locations[0].postcode == "SW1A 1AA"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"information": "too short"}, "string_too_short"),
        ({"categories": []}, "too_short"),
        ({"categories": ["drug_related_harm", "drug_related_harm"]}, "duplicate_item"),
        ({"when_observed": (date.today() + timedelta(days=2)).isoformat()}, "date_in_future"),
        ({"information": "Twenty characters and a bell \x07 here"}, "control_character"),
        ({"nickname": "x"}, "extra_forbidden"),
    ],
)
def test_submission_rules_give_stable_codes(change: dict[str, Any], code: str) -> None:
    """Each broken rule is reported with its own stable error code."""
    with pytest.raises(ValidationError) as caught:
        schemas.Submission.model_validate(valid_submission() | change)
    assert code in {e["type"] for e in caught.value.errors()}


@pytest.mark.parametrize("phone", ["01632 960001", "(01632) 960-001", "+44 1632 960001", "+1 202 555 0143"])
def test_uk_and_e164_phone_numbers_are_accepted(phone: str) -> None:
    """UK national numbers and E.164 numbers, with the usual separators, are valid."""
    data = valid_submission()
    data["source"] = data["source"] | {"phone": phone}
    assert schemas.Submission.model_validate(data).source.phone == phone


@pytest.mark.parametrize("phone", ["12345", "0163296", "+0 1632", "phone me"])
def test_other_phone_numbers_are_refused(phone: str) -> None:
    """Anything that is not a UK national or E.164 number is refused with invalid_phone."""
    data = valid_submission()
    data["source"] = data["source"] | {"phone": phone}
    with pytest.raises(ValidationError) as caught:
        schemas.Submission.model_validate(data)
    assert "invalid_phone" in {e["type"] for e in caught.value.errors()}


def test_before_sanitising_a_submission_travels_only_sealed() -> None:
    """The received and accepted records have no readable content field: only the id, the day and the
    sealed submission (free text may name the source until the sanitiser has scrubbed it)."""
    for model in (schemas.ReceivedSubmission, schemas.AcceptedSubmission):
        assert set(model.model_fields) == {"submission_id", "received_on", "sealed_submission"}


def test_past_the_edge_no_record_carries_an_exact_time_or_the_channel() -> None:
    """No record after the edge has a datetime field or a channel (regression: exact `received_at` and the
    channel on the received and accepted topics let an observer link 12 of 12 intels by timing)."""
    for model in (schemas.ReceivedSubmission, schemas.AcceptedSubmission, schemas.RejectedSubmission,
                  schemas.SanitisedIntel, schemas.HeldIntel, schemas.Decision):
        for name, field in model.model_fields.items():
            assert field.annotation is not datetime, f"{model.__name__}.{name} is an exact time"
            assert name != "channel", f"{model.__name__} names the channel"


def test_sanitised_intel_has_no_field_for_provenance_or_exact_time() -> None:
    """SanitisedIntel has no source, submission id, receipt or timestamp field at all."""
    fields = set(schemas.SanitisedIntel.model_fields)
    assert not fields & {"source", "submission_id", "receipt_id", "received_at", "idempotency_key",
                         "other_agencies_informed", "lawful_basis_detail"}
    assert schemas.SanitisedIntel.model_fields["received_on"].annotation is date


def test_no_action_cannot_be_combined_in_a_decision() -> None:
    """A Decision refuses no_action together with another outcome, and priority none with real outcomes."""
    intel = {
        "intel_id": "a" * 32, "received_on": "2026-11-01", "categories": ["anti_social_behaviour"],
        "information": "Noise late at night.", "how_known": "rumour_or_hearsay", "lawful_basis": "public_task",
        "redaction_count": 0,
    }
    base = {
        "decision_id": "b" * 32, "intel_id": "a" * 32, "priority": "none",
        "grading": {"source_evaluation": 2, "intelligence_assessment": "D", "handling_code": "P"},
        "thrive": {"threat": "-", "harm": "-", "risk": "-", "vulnerability": "-"},
        "rationale": [], "rules_version": "1", "intel": intel,
    }
    schemas.Decision.model_validate(base | {"outcomes": ["no_action"]})
    with pytest.raises(ValidationError):
        schemas.Decision.model_validate(base | {"outcomes": ["no_action", "intelligence_log"]})
    with pytest.raises(ValidationError):
        schemas.Decision.model_validate(base | {"outcomes": ["crime_desk"]})


def test_topic_registry_names_every_topic_of_the_design_once() -> None:
    """The registry holds the design's topics, each once, versioned v1, with a per-outcome topic each."""
    names = [spec.name for spec in ALL_TOPICS]
    assert len(names) == len(set(names)) == 15
    assert AUDIT.name in names and AUDIT.partitions == 1 and AUDIT.retention_ms == -1
    assert all(name.startswith("cpi.") and name.endswith(".v1") for name in names)
    assert {spec.name for spec in OUTCOME_TOPICS.values()} == {
        "cpi.outcome.intelligence-log.v1", "cpi.outcome.crime-desk.v1",
        "cpi.outcome.safeguarding.v1", "cpi.outcome.no-action.v1",
    }


def test_dead_letter_headers_round_trip() -> None:
    """A DeadLetter survives conversion to Kafka headers and back."""
    letter = schemas.DeadLetter(origin_topic="cpi.intel.sanitised.v1", origin_partition=3, origin_offset=42,
                                stage="router", error_code="undecodable", error="not a SanitisedIntel",
                                dead_lettered_at="2026-11-25T10:00:00Z")
    headers = letter.to_headers()
    assert ("cpi-dlq-origin-offset", b"42") in headers
    assert schemas.DeadLetter.from_headers(headers) == letter
    assert json.loads(letter.model_dump_json())["stage"] == "router"


def _held(**change: Any) -> dict[str, Any]:
    envelope = {"alg": schemas.EnvelopeAlg.HPKE.value, "key_id": "unseal-1", "wrapped_key": "d3JhcHBlZA==",
                "nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"}
    return {"intel_id": "a" * 32, "held_on": "2026-11-20", "revision": 1, "status": "held", "score": 1.0,
            "reason_codes": ["email_address"], "sealed": envelope} | change


def test_a_held_record_has_nothing_readable_but_id_day_revision_status_score_and_codes() -> None:
    """On the held topic only the intel id, the day held, a revision, a status, the score and the reason
    codes are readable; the intel and the reasons' excerpts exist only inside the sealed envelope."""
    assert set(schemas.HeldIntel.model_fields) == {
        "intel_id", "held_on", "revision", "status", "score", "reason_codes", "sealed"}
    assert schemas.HeldIntel.model_fields["held_on"].annotation is date
    assert schemas.HeldIntel.model_fields["sealed"].annotation == schemas.PublicSealed | None
    assert {s.value for s in schemas.HeldStatus} == {"held", "redacted", "released"}
    assert set(schemas.HeldContent.model_fields) == {"intel", "reasons"}
    schemas.HeldIntel.model_validate(_held())


@pytest.mark.parametrize("code", ["jo.bloggs@example.org", "Jo Bloggs", "07700 900123", "", "x" * 65])
def test_a_held_reason_code_cannot_carry_text(code: str) -> None:
    """A reason code is lower-case letters and underscores: an excerpt cannot be passed off as a code."""
    with pytest.raises(ValidationError):
        schemas.HeldIntel.model_validate(_held(reason_codes=[code]))


def test_a_held_record_is_sealed_until_released_and_only_then_not() -> None:
    """Held and redacted records carry the sealed intel; a released one must not (the intel is on the
    sanitised topic by then, and the topic's compaction can drop the excerpts)."""
    with pytest.raises(ValidationError):
        schemas.HeldIntel.model_validate(_held(sealed=None))
    with pytest.raises(ValidationError):
        schemas.HeldIntel.model_validate(_held(status="released"))
    schemas.HeldIntel.model_validate(_held(status="released", sealed=None, revision=3))


def test_the_held_topic_keeps_each_intel_until_it_is_released() -> None:
    """cpi.intel.held.v1 carries HeldIntel, is compacted (latest revision per intel id) and never deleted
    by age, with as many partitions as the sanitised topic."""
    assert HELD.name == "cpi.intel.held.v1" and HELD.value_model is schemas.HeldIntel
    config = HELD.config(2)
    assert config["cleanup.policy"] == "compact" and config["retention.ms"] == "-1"
    assert HELD.partitions == SANITISED.partitions


@pytest.mark.parametrize("model", [schemas.ReceivedSubmission, schemas.AcceptedSubmission, schemas.HeldIntel])
def test_topics_carry_only_envelopes_sealed_to_a_public_key(model: type[schemas.CpiModel]) -> None:
    """Envelope v2 names its scheme: a record on a topic whose envelope is wrapped by a symmetric key (the
    v1 scheme, which whoever sealed could also open) or names no scheme is refused."""
    sealed = {"alg": schemas.EnvelopeAlg.HPKE.value, "key_id": "transport-1", "wrapped_key": "d3JhcHBlZA==",
              "nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"}
    field = "sealed" if model is schemas.HeldIntel else "sealed_submission"
    base = _held() if model is schemas.HeldIntel else {
        "submission_id": "a" * 32, "received_on": "2026-11-20"}
    model.model_validate(base | {field: sealed})
    for wrong in ({**sealed, "alg": schemas.EnvelopeAlg.KEK.value}, {k: v for k, v in sealed.items() if k != "alg"}):
        with pytest.raises(ValidationError):
            model.model_validate(base | {field: wrong})
