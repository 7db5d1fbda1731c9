"""Sample submissions and a fake publisher, shared by the intake tests."""

from __future__ import annotations

import copy
from typing import Any

from schemas import Channel, ReceivedSubmission

_VALID: dict[str, Any] = {
    "source": {
        "name": "Harriet Canary-Teacher",
        "role": "Head of Year 9",
        "organisation": "Northgate Canary Academy",
        "organisation_type": "education",
        "email": "h.canary@northgate.example.org",
        "phone": "01632 960 001",
        "recontact_ok": True,
    },
    "lawful_basis": "safeguarding",
    "urgency": {"immediate_risk": False, "crime_in_progress": False},
    "categories": ["criminal_exploitation", "drug_related_harm"],
    "subjects": [{"role": "at_risk", "name": "Jamie Doe", "approx_age": 14, "aliases": ["JD"]}],
    "locations": [{"description": "Alley behind the parade of shops", "postcode": "sw1a1aa"}],
    "vehicles": [{"registration": "AB12 CDE", "colour": "black", "make": "Audi"}],
    "information": "Jamie has been seen getting into a black Audi after school with older men.",
    "how_known": "witnessed_directly",
    "when_observed": "2024-03-01",
}


def valid_submission(**changes: Any) -> dict[str, Any]:
    """A fresh, valid submission as decoded JSON; top-level keys may be replaced or (with None) removed."""
    data = copy.deepcopy(_VALID)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


class FakePublisher:
    """Records what would have gone to the received topic; can be told to fail."""

    def __init__(self) -> None:
        self.records: list[ReceivedSubmission] = []
        self.fail = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def publish(self, record: ReceivedSubmission) -> None:
        if self.fail:
            raise ConnectionError("broker unavailable")
        self.records.append(record)

    async def stop(self) -> None:
        self.started = False


def received_count(channel: Channel) -> float:
    """How many submissions the edge has counted as received by `channel` (its metric, in this process)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("cpi_intake_submissions_total",
                                     {"channel": channel.value, "result": "received"}) or 0.0
