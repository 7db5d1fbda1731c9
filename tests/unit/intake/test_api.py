"""The JSON API at the edge: receipts, clear refusals, and no 500 for anything a client can send."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from services.common.days import utc_today
from services.common.envelope import PrivateKeyring, open_sealed
from services.common.metrics import exposition
from tests.conftest import TESTDATA
from tests.unit.intake.samples import FakePublisher, valid_submission

URL = "/api/v1/submissions"
JSON = {"content-type": "application/json"}


def post_raw(client: TestClient, body: bytes, content_type: str = "application/json") -> Any:
    return client.post(URL, content=body, headers={"content-type": content_type})


def test_a_valid_submission_gets_202_and_a_receipt(client: TestClient, publisher: FakePublisher) -> None:
    """A valid body is answered 202 with receipt_id and received_at, and one record is produced."""
    response = client.post(URL, json=valid_submission())
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"receipt_id", "received_at"}
    assert len(publisher.records) == 1


def test_the_receipt_never_becomes_an_id_downstream(client: TestClient, publisher: FakePublisher) -> None:
    """The receipt id appears nowhere in the produced record."""
    receipt = client.post(URL, json=valid_submission()).json()["receipt_id"]
    record = publisher.records[0]
    assert record.submission_id != receipt
    assert receipt not in record.model_dump_json()


def test_the_submission_is_sealed_before_it_is_produced(client: TestClient, publisher: FakePublisher,
                                                         keyring: PrivateKeyring) -> None:
    """The produced record holds no submitted value in clear; its envelope opens to the whole submission."""
    data = valid_submission()
    client.post(URL, json=data)
    record = publisher.records[0]
    wire = record.model_dump_json()
    for value in ("Harriet Canary-Teacher", "h.canary@northgate.example.org", "Northgate Canary Academy",
                  "Head of Year 9", "01632 960 001", "black Audi", "Jamie Doe"):
        assert value not in wire
    opened = json.loads(open_sealed(record.sealed_submission, record.submission_id.encode(), keyring))
    assert opened["source"]["email"] == data["source"]["email"]
    assert opened["information"] == data["information"]
    assert record.received_on == utc_today()


def test_every_problem_comes_back_with_pointer_code_and_message(client: TestClient,
                                                                publisher: FakePublisher) -> None:
    """An invalid body gets 422 listing each problem with path, code and message; nothing is produced."""
    response = client.post(URL, json=valid_submission(information="short", how_known=None))
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["path"], e["code"]) for e in errors} == {("/information", "too_short"), ("/how_known", "required")}
    assert all(e["message"] for e in errors)
    assert publisher.records == []


def test_urgent_submissions_are_told_to_call_999(client: TestClient, publisher: FakePublisher) -> None:
    """An urgent submission is refused with urgent_call_999 and nothing is produced."""
    response = client.post(URL, json=valid_submission(urgency={"immediate_risk": True, "crime_in_progress": False}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "urgent_call_999"
    assert publisher.records == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "", "application/json; charset=latin-1",
                                          "application/jsonx"])
def test_other_content_types_get_415(client: TestClient, content_type: str) -> None:
    """Anything but application/json (UTF-8) is refused with 415 and a code."""
    response = post_raw(client, json.dumps(valid_submission()).encode(), content_type)
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "unsupported_media_type"


def test_json_with_a_utf8_charset_is_accepted(client: TestClient) -> None:
    """`application/json; charset=utf-8` is JSON."""
    response = post_raw(client, json.dumps(valid_submission()).encode(), "application/json; charset=UTF-8")
    assert response.status_code == 202


def test_bodies_over_the_limit_get_413(make_client: Callable[..., TestClient], publisher: FakePublisher) -> None:
    """A body over max_body_bytes is refused with 413, whether or not it declares its length."""
    client = make_client(max_body_bytes=2048)
    big = json.dumps(valid_submission(information="x" * 3000)).encode()
    assert post_raw(client, big).status_code == 413

    def chunks() -> Any:  # no content-length: the limit must hold while reading
        for start in range(0, len(big), 500):
            yield big[start:start + 500]

    response = client.post(URL, content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "body_too_large"
    assert publisher.records == []


def test_a_body_under_the_limit_is_read_whole(make_client: Callable[..., TestClient]) -> None:
    """The limit does not cut off a body that fits, even when streamed in small chunks."""
    client = make_client(max_body_bytes=4096)
    body = json.dumps(valid_submission()).encode()
    response = client.post(URL, content=iter([body[i:i + 100] for i in range(0, len(body), 100)]), headers=JSON)
    assert response.status_code == 202


@pytest.mark.parametrize(("body", "code"), [
    (b'{"information": NaN}', "invalid_json"),
    (b'{"information": Infinity}', "invalid_json"),
    (b'{"a": 1, "a": 1}', "duplicate_key"),
    (b"[" * 50_000 + b"]" * 50_000, "too_deep"),
    (b'{"a":' * 20_000, "too_deep"),
    (b"\xc3\x28", "invalid_json"),
    (b"", "invalid_json"),
])
def test_hostile_json_is_400_not_500(make_client: Callable[..., TestClient], body: bytes, code: str) -> None:
    """NaN/Infinity, duplicate keys, absurd nesting and broken UTF-8 are refused with 400 and a code."""
    client = make_client(max_body_bytes=200_000)
    response = post_raw(client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == code


def test_moderate_nesting_is_422_too_deep(client: TestClient) -> None:
    """Nesting json can parse but no submission needs is refused with 422 too_deep."""
    body = valid_submission(information=json.loads("[" * 40 + "]" * 40))
    response = client.post(URL, json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "too_deep"


def test_the_rate_limit_gives_429_with_retry_after(make_client: Callable[..., TestClient],
                                                  publisher: FakePublisher) -> None:
    """Past the per-client limit, requests get 429 with Retry-After and nothing more is produced."""
    client = make_client(rate_limit_per_minute=3)
    statuses = [client.post(URL, json=valid_submission()).status_code for _ in range(5)]
    assert statuses[:3] == [202, 202, 202]
    assert statuses[3:] == [429, 429]
    last = client.post(URL, json=valid_submission())
    assert last.json()["errors"][0]["code"] == "rate_limited"
    assert int(last.headers["retry-after"]) >= 1
    assert len(publisher.records) == 3


def test_the_same_idempotency_key_gets_the_same_receipt_once(client: TestClient, publisher: FakePublisher) -> None:
    """Resubmitting with the same key returns the same receipt and produces nothing the second time."""
    data = valid_submission(idempotency_key="partner-ref-0001")
    first = client.post(URL, json=data)
    second = client.post(URL, json=data)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert len(publisher.records) == 1


def test_idempotency_keys_are_scoped_to_the_partner(make_client: Callable[..., TestClient],
                                                    partner_keys: dict[str, str], publisher: FakePublisher) -> None:
    """Two partners using the same key each get their own receipt and record."""
    northgate, oakfield, _ = (make_client(api_key=key) for key in partner_keys.values())
    body = valid_submission(idempotency_key="k1")
    receipts = {client.post(URL, json=body).json()["receipt_id"] for client in (northgate, oakfield)}
    assert len(receipts) == 2
    assert len(publisher.records) == 2


def test_a_probe_cannot_tell_whether_a_named_professional_used_a_key(
        make_client: Callable[..., TestClient], partner_keys: dict[str, str], publisher: FakePublisher) -> None:
    """Regression (issue 11): keys were scoped by the e-mail the caller types, so anyone could send a
    named professional's address with a guessed key and read 409 (used, other content) or the receipt
    (used, same content) from the answer. Scoped to the authenticated partner, another partner's probe
    is simply a new submission, whatever e-mail it names; within one partner the e-mail plays no part."""
    northgate, oakfield, eastside = (make_client(api_key=key) for key in partner_keys.values())
    used = valid_submission(idempotency_key="partner-ref-0001")
    assert northgate.post(URL, json=used).status_code == 202

    same_content = oakfield.post(URL, json=used)
    other_content = eastside.post(URL, json=valid_submission(idempotency_key="partner-ref-0001",
                                                             information="Probing whether this key was used."))
    never_used = eastside.post(URL, json=valid_submission(idempotency_key="partner-ref-9999",
                                                          information="Probing a key nobody used at all."))
    assert same_content.status_code == other_content.status_code == never_used.status_code == 202
    assert same_content.json()["receipt_id"] != northgate.post(URL, json=used).json()["receipt_id"]

    renamed = valid_submission(idempotency_key="partner-ref-0001")
    renamed["source"]["email"] = "someone.else@example.org"
    assert northgate.post(URL, json=renamed).json()["errors"][0]["code"] == "idempotency_conflict"


def test_the_api_needs_a_partner_key(make_client: Callable[..., TestClient], publisher: FakePublisher) -> None:
    """No key, a wrong key, or another scheme: 401 with a problem body and a Bearer challenge; nothing is
    produced. A partner's key is let in."""
    for key in (None, "cpi_not-a-real-key", ""):
        response = make_client(api_key=key).post(URL, json=valid_submission())
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["errors"][0]["code"] == "unauthenticated"
        assert "Authorization: Bearer" in response.json()["errors"][0]["message"]
    basic = make_client(api_key=None).post(URL, json=valid_submission(), headers={"authorization": "Basic eDp5"})
    assert basic.status_code == 401
    assert publisher.records == []
    assert make_client().post(URL, json=valid_submission()).status_code == 202


def test_no_keys_file_means_no_partner_gets_in(make_client: Callable[..., TestClient],
                                               partner_keys: dict[str, str]) -> None:
    """An edge with no CPI_API_KEYS_FILE refuses every API request, even with a key that works elsewhere."""
    client = make_client(api_keys_file=None)
    assert client.post(URL, json=valid_submission()).status_code == 401


def test_key_guesses_use_up_the_address_budget(make_client: Callable[..., TestClient]) -> None:
    """Wrong keys cost the address its rate-limit tokens, so keys cannot be guessed at any speed."""
    client = make_client(api_key="cpi_guess", rate_limit_per_minute=3)
    statuses = [client.post(URL, json=valid_submission()).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_a_key_reused_for_different_content_is_a_conflict(client: TestClient, publisher: FakePublisher) -> None:
    """The same key with different content gets 409 idempotency_conflict and nothing is produced."""
    client.post(URL, json=valid_submission(idempotency_key="k2"))
    response = client.post(URL, json=valid_submission(idempotency_key="k2", information="Something else entirely."))
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_conflict"
    assert len(publisher.records) == 1


def test_a_broker_failure_is_503_and_the_key_can_be_retried(client: TestClient, publisher: FakePublisher) -> None:
    """When producing fails the client gets 503 to retry; the retry with the same key goes through."""
    data = valid_submission(idempotency_key="k3")
    publisher.fail = True
    failed = client.post(URL, json=data)
    assert failed.status_code == 503
    assert failed.json()["errors"][0]["code"] == "unavailable"
    publisher.fail = False
    assert client.post(URL, json=data).status_code == 202
    assert len(publisher.records) == 1


@pytest.mark.parametrize("path", ["/", URL, "/openapi.json", "/healthz", "/static/form.css", "/nowhere"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    """Every response carries CSP, nosniff, frame denial, no referrer and no-store."""
    headers = client.get(path).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "server" not in headers


def test_openapi_describes_the_body_with_the_submission_model(client: TestClient) -> None:
    """/openapi.json names Submission as the request body, from the same pydantic model, with every response."""
    spec = client.get("/openapi.json").json()
    operation = spec["paths"][URL]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Submission"}
    submission = spec["components"]["schemas"]["Submission"]
    assert submission["additionalProperties"] is False
    assert "source" in submission["required"]
    assert {"202", "400", "401", "409", "413", "415", "422", "429", "503"} <= set(operation["responses"])


def test_logs_never_carry_provenance_or_content(client: TestClient) -> None:
    """What the edge logs names the channel and codes only: no source values, no information, no address."""
    data = valid_submission()
    with structlog.testing.capture_logs() as logs:
        client.post(URL, json=data)
        client.post(URL, json=valid_submission(information="short"))
    text = json.dumps(logs)
    assert logs
    for value in ("Harriet", "northgate", "Jamie", "black Audi", "testclient", "127.0.0.1"):
        assert value.lower() not in text.lower()


def test_metrics_count_submissions_rejections_latency_and_rate_limits(
        make_client: Callable[..., TestClient]) -> None:
    """The edge's metrics count submissions by channel, rejections by code, latency and rate-limited requests;
    the public app itself serves no /metrics (they have their own internal listener)."""
    client = make_client(rate_limit_per_minute=2)
    client.post(URL, json=valid_submission())
    client.post(URL, json=valid_submission(information="short"))
    client.post(URL, json=valid_submission())
    assert client.get("/metrics").status_code == 404
    text = exposition()[0].decode()
    assert 'cpi_intake_submissions_total{channel="api",result="received"}' in text
    assert 'cpi_intake_rejections_total{channel="api",code="too_short"}' in text
    assert 'cpi_intake_request_seconds_bucket{le="0.001",method="POST",route="/api/v1/submissions"' in text
    assert "cpi_intake_rate_limited_total" in text


def test_naughty_strings_in_every_text_field_never_give_500(client: TestClient, blns: list[str]) -> None:
    """Each Big List of Naughty Strings entry in every text field gets 202 or 422, never a 500."""
    text_fields: list[tuple[Any, ...]] = [
        ("source", "name"), ("source", "role"), ("source", "organisation"), ("source", "email"),
        ("source", "phone"), ("lawful_basis_detail",), ("information",), ("how_known",), ("when_observed",),
        ("idempotency_key",), ("subjects", 0, "name"), ("subjects", 0, "gender"), ("subjects", 0, "address"),
        ("subjects", 0, "description"), ("subjects", 0, "date_of_birth"), ("subjects", 0, "aliases", 0),
        ("locations", 0, "description"), ("locations", 0, "postcode"), ("vehicles", 0, "registration"),
        ("vehicles", 0, "make"), ("vehicles", 0, "model"), ("vehicles", 0, "colour"),
        ("vehicles", 0, "description"), ("other_agencies_informed", 0), ("categories", 0),
    ]
    statuses: dict[int, int] = {}
    for naughty in blns:
        # One request per string carrying it in every field at once, and the information field alone
        # (padded to pass its length rule) so a string reaches the deeper checks too.
        data = valid_submission(other_agencies_informed=["x"])
        for path in text_fields:
            target: Any = data
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = naughty
        for body in (data, valid_submission(information=f"Seen this: {naughty} near the park.")):
            status = client.post(URL, json=body).status_code
            statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) <= {202, 422}, statuses
    assert statuses.get(202, 0) > 0


def _suite_files() -> list[Path]:
    folder = TESTDATA / "jsontestsuite" / "test_parsing"
    return sorted(folder.glob("*.json")) if folder.exists() else []


@pytest.mark.skipif(not _suite_files(), reason="../shared/testdata/jsontestsuite is absent")
def test_jsontestsuite_bodies_never_give_500_and_n_files_are_refused(
        make_client: Callable[..., TestClient]) -> None:
    """Every JSONTestSuite parsing case as a body: no 500; every n_ file is refused with 400."""
    client = make_client(max_body_bytes=1024 * 1024)
    wrong: list[str] = []
    for path in _suite_files():
        status = post_raw(client, path.read_bytes()).status_code
        if status >= 500 or (path.name.startswith("n_") and status != 400) or status not in {400, 413, 422}:
            wrong.append(f"{path.name}: {status}")
    assert wrong == []
