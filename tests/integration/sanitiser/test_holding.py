"""The sanitiser worker's handler with a real SQLite sealed store: intel with residual risk is held
(sealed, on the held topic), clean intel is released to the sanitised topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from schemas import AcceptedSubmission, HeldIntel, SanitisedIntel, Submission
from schemas.topics import HELD, SANITISED
from services.common.envelope import PrivateKeyring
from services.common.kafka.stage import Publish
from services.common.keys import load_edge_keys, load_intake_keys, load_sanitiser_keys, load_unseal_keys
from services.common.serde import encode
from services.intake.receiving import received_record
from services.intake.worker import check_received
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.domain import load_scrub_config
from services.sanitiser.held import open_held
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD
from services.sanitiser.worker import make_handler
from tests.key_helpers import key_settings

SOURCE = {"name": "Odile Brackenbury", "role": "Health Visitor", "organisation": "Fenwick Health Centre",
          "organisation_type": "health", "email": "odile.b@fenwick.example"}
# Neither the source's nor a subject's (and no label of the source's domain, which the scrubber removes).
THIRD_PARTY = "jo.bloggs@riverside-lettings.co.uk"


def submission(information: str) -> Submission:
    return Submission.model_validate({
        "source": SOURCE, "lawful_basis": "safeguarding",
        "urgency": {"immediate_risk": False, "crime_in_progress": False}, "categories": ["modern_slavery"],
        "how_known": "witnessed_directly", "information": information})


async def handled(tmp_path: Path, information: str) -> tuple[Publish, PrivateKeyring]:
    """One submission through the edge's sealing, the intake worker and the sanitiser's handler, each with
    its own keys; returns the sanitiser's output and the unseal path's private key that opens a held one."""
    settings = key_settings(tmp_path)
    sanitiser = load_sanitiser_keys(settings)
    assert sanitiser.store.unseal_public is not None
    store = open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", sanitiser.store)
    try:
        received = received_record(submission(information), load_edge_keys(settings))
        accepted = check_received(received, load_intake_keys(settings))
        assert isinstance(accepted, AcceptedSubmission)
        handler = make_handler(sanitiser.transport, sanitiser.store.unseal_public, store, load_scrub_config(),
                               DEFAULT_HOLD_THRESHOLD)
        [out] = await handler(encode(accepted))
    finally:
        store.close()
    unseal = load_unseal_keys(settings).unseal_private
    assert unseal is not None
    return out, unseal


def held_count(code: str) -> float:
    return REGISTRY.get_sample_value("cpi_sanitiser_held_total", {"reason": code}) or 0.0


async def test_intel_with_residual_risk_is_held_sealed_counted_and_logged_without_text(tmp_path: Path) -> None:
    """A report naming a third party's e-mail goes to the held topic only, as a sealed revision 1 whose
    readable part is codes and score; the held counter goes up for its reason code and the `intel_held`
    event carries the intel id, score and codes, never the text found."""
    before = held_count("email_address")
    with capture_logs() as logs:
        out, keyring = await handled(
            tmp_path, f"Six men live above the car wash on Dock Street. For more, contact {THIRD_PARTY}.")
    assert out.topic is HELD
    record = HeldIntel.model_validate_json(out.value)
    assert (record.status.value, record.revision, record.reason_codes) == ("held", 1, ["email_address"])
    assert out.key == record.intel_id.encode()
    assert out.timestamp is not None and out.timestamp % 86_400 == 0
    for text in (THIRD_PARTY.encode(), b"Dock Street", b"Brackenbury"):
        assert text not in out.value
    content = open_held(record, keyring)
    assert [(r.code, r.excerpt) for r in content.reasons] == [("email_address", THIRD_PARTY)]
    assert "Dock Street" in content.intel.information

    assert held_count("email_address") == before + 1
    [event] = [e for e in logs if e["event"] == "intel_held"]
    assert set(event) == {"event", "log_level", "intel_id", "score", "reason_codes"}
    assert (event["intel_id"], event["reason_codes"], event["score"]) == (record.intel_id, ["email_address"], 1.0)


@pytest.mark.parametrize("information", [
    "Six men live above the car wash on Dock Street; they say their boss keeps their passports.",
    "Odile Brackenbury here, health visitor at Fenwick Health Centre: six men live above the car wash.",
])
async def test_a_clean_report_is_released_not_held(tmp_path: Path, information: str) -> None:
    """A report with nothing left that could point at its source (after scrubbing the source's own
    identifiers) goes to the sanitised topic as before, and nothing is counted as held."""
    before: dict[str, Any] = {code: held_count(code) for code in ("email_address", "name_in_sign_off")}
    out, _ = await handled(tmp_path, information)
    assert out.topic is SANITISED
    intel = SanitisedIntel.model_validate_json(out.value)
    assert "car wash" in intel.information and b"Brackenbury" not in out.value
    assert {code: held_count(code) for code in before} == before
