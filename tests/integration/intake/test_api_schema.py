"""Schemathesis against /openapi.json: generated bodies, valid and broken, never break the edge or its schema."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from services.common.envelope import PrivateKeyring
from services.common.settings import IntakeSettings
from services.intake.api import create_api
from services.intake.partners import add_partner
from tests.unit.intake.samples import FakePublisher

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

# Bounded so the run takes seconds, not minutes, on a slow shared machine.
EXAMPLES = 120
CHECKS: list[Any] = [not_a_server_error, status_code_conformance, content_type_conformance,
                     response_schema_conformance, response_headers_conformance]

@pytest.fixture
def partner_key(tmp_path: Path) -> str:
    """A partner's API key, in the keys file the app below reads."""
    return add_partner(tmp_path / "partners.json", "schema-partner")


@pytest.fixture
def schema(tmp_path: Path, partner_key: str) -> Any:
    """The edge's own OpenAPI document, loaded by schemathesis over ASGI, with a fake publisher."""
    # A large body limit: generated bodies are judged on their content here (413 is tested elsewhere).
    app = create_api(IntakeSettings(data_dir=tmp_path, rate_limit_per_minute=100_000, max_body_bytes=4_000_000,
                                    api_keys_file=tmp_path / "partners.json"),
                     transport_key=PrivateKeyring.generate("transport").recipient(), publisher=FakePublisher())
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def plausible(case: Any) -> Any:
    """Steer a generated body past the rules JSON Schema cannot express, so some reach the 202 path."""
    body = case.body
    if isinstance(body, dict):
        body["urgency"] = {"immediate_risk": False, "crime_in_progress": False}
        if isinstance(body.get("source"), dict):
            body["source"]["email"] = "someone@example.org"
            body["source"].pop("phone", None)
    return case


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_submissions_get_documented_answers_and_no_server_errors(schema: Any, mode: GenerationMode,
                                                                          partner_key: str) -> None:
    """Bodies generated from the Submission schema, conforming or not, get a documented status and body.

    Negative bodies (breaking the schema) must be refused; positive ones are 202 or 422 (rules beyond
    JSON Schema: postcodes, control characters, dates in the future).
    """
    operation = schema["/api/v1/submissions"]["POST"]
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    strategy = operation.as_strategy(generation_mode=mode)
    statuses: set[int] = set()

    # derandomize: the same cases every run, so the suite is repeatable on any machine.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy.map(plausible) if mode is GenerationMode.POSITIVE else strategy)
    def run(case: Any) -> None:
        statuses.add(case.call_and_validate(checks=checks,
                                            headers={"authorization": f"Bearer {partner_key}"}).status_code)

    run()
    assert max(statuses) < 500
    if mode is GenerationMode.POSITIVE:
        assert statuses <= {202, 409, 422}  # 409: a generated idempotency key reused
        assert 202 in statuses, "no generated body reached the receipt path"
    else:  # 401: negative cases break the documented bearer scheme too
        assert statuses <= {400, 401, 422}


def test_the_openapi_document_is_valid_openapi(schema: Any) -> None:
    """The document loads as OpenAPI and has the submissions operation with the Submission body."""
    operation = schema["/api/v1/submissions"]["POST"]
    assert operation.method.upper() == "POST"
