"""Alert routing end to end (issue 17): a report about a child at risk in one area, with an offence, goes
through the whole pipeline on the real broker and reaches exactly that area's children's hub and crime desk,
by real SMTP and a real signed webhook; no alert carries anything of the source."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.topics import DECIDED, DELIVERED
from services.notifier.domain import SIGNATURE_HEADER, verify_webhook
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import CANARY_STRINGS, _every_text_outside_the_store, _marked, submission
from tests.kafka_helpers import json_value, read_all, wait_for
from tests.mail_helpers import smtp_server

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

HUB_SECRET = "manchester-childrens-hub-webhook-secret-0001"
# The canary submission's child (14, at risk) is at M1 1AE and the report describes an offence.
TABLE = """\
version: "e2e-1"
default_team: force-mash
teams:
  - name: force-mash
    when: {outcomes: [safeguarding], areas: [ZZ]}
    channels: [{email: mash@force.example}]
  - name: manchester-childrens-hub
    when: {outcomes: [safeguarding], at_risk: child, areas: [M]}
    channels:
      - email: childrens-hub@manchester.force.example
      - webhook: WEBHOOK_URL
        secrets: [CPI_WEBHOOK_SECRET_MANCHESTER_HUB]
  - name: manchester-adults-team
    when: {outcomes: [safeguarding], at_risk: adult, areas: [M]}
    channels: [{email: adults@manchester.force.example}]
  - name: manchester-city-crime-desk
    when: {outcomes: [crime_desk], areas: [M1]}
    channels: [{email: crime-desk.m1@manchester.force.example}]
  - name: salford-crime-desk
    when: {outcomes: [crime_desk], areas: [M5, M6]}
    channels: [{email: crime-desk@salford.force.example}]
  - name: bristol-childrens-hub
    when: {outcomes: [safeguarding], at_risk: child, areas: [BS]}
    channels: [{email: childrens-hub@bristol.force.example}]
"""


@pytest.fixture(scope="module")
def team_servers() -> Iterator[dict[str, Any]]:
    """A real SMTP server and a real HTTP server (the children's hub's system), both on loopback."""
    posts: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"raw": body, "signature": self.headers.get(SIGNATURE_HEADER, "")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        with smtp_server() as (smtp_port, inbox):
            yield {"smtp_port": smtp_port, "inbox": inbox, "posts": posts,
                   "webhook": f"http://127.0.0.1:{http.server_port}/cpi/alerts"}
    finally:
        http.shutdown()


@pytest.fixture(scope="module")
def pipeline_extra_env(team_servers: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The notifier reads the table above, mails through the SMTP server, and may mail only force.example."""
    path = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    path.write_text(TABLE.replace("WEBHOOK_URL", team_servers["webhook"]))
    return {"CPI_ROUTING_TABLE": str(path), "CPI_SMTP_HOST": "127.0.0.1",
            "CPI_SMTP_PORT": str(team_servers["smtp_port"]), "CPI_MAIL_ALLOWED_DOMAINS": '["force.example"]',
            "CPI_WEBHOOK_SECRET_MANCHESTER_HUB": HUB_SECRET}


@pytest.fixture(scope="module")
def delivered(pipeline: Pipeline, team_servers: dict[str, Any]) -> dict[str, Any]:
    """Post the canary submission and wait until its decision's notifications are on the delivered topic."""
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker),
                          headers=pipeline.api_auth, timeout=30)
    assert response.status_code == 202, response.text
    decision = json_value(wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name), _marked(marker)))
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while len(records) < 3 and time.monotonic() < deadline:
        records = [json_value(r) for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
                   if json_value(r)["decision_id"] == decision["decision_id"]]
        time.sleep(0.5)
    time.sleep(2)  # anything more (a team it should not reach) would have arrived by now
    records = [json_value(r) for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
               if json_value(r)["decision_id"] == decision["decision_id"]]
    return {"marker": marker, "decision": decision, "records": records}


def test_a_child_at_risk_in_one_area_reaches_exactly_its_childrens_hub_and_crime_desk(
    delivered: dict[str, Any], team_servers: dict[str, Any]
) -> None:
    """The decision (crime desk and safeguarding, a 14-year-old at risk at M1 1AE) is delivered to the
    Manchester children's hub, by mail and by its signed webhook, and to the M1 crime desk, once each; not to
    the adults' team, another area's hub or crime desk, or the default team. Each delivered record carries the
    table's version."""
    decision = delivered["decision"]
    assert {"crime_desk", "safeguarding"} <= set(decision["outcomes"])
    records = delivered["records"]
    assert sorted((r["team"], r["channel"]) for r in records) == [
        ("manchester-childrens-hub", "smtp"), ("manchester-childrens-hub", "webhook"),
        ("manchester-city-crime-desk", "smtp")]
    assert {(r["status"], r["routing_version"]) for r in records} == {("delivered", "e2e-1")}
    mails = [m for m in team_servers["inbox"].messages if delivered["marker"].encode() in m.content]
    assert sorted(address for m in mails for address in m.rcpt_tos) == [
        "childrens-hub@manchester.force.example", "crime-desk.m1@manchester.force.example"]
    [post] = [p for p in team_servers["posts"] if delivered["marker"].encode() in p["raw"]]
    alert = json.loads(post["raw"])
    assert (alert["team"], alert["decision_id"]) == ("manchester-childrens-hub", decision["decision_id"])
    assert verify_webhook(post["signature"], post["raw"], [HUB_SECRET.encode()], time.time())


def test_cpi_up_says_where_alerts_go(pipeline: Pipeline) -> None:
    """`cpi up` printed the routing table's teams, its file and version, and how mail goes."""
    line = next(row for row in pipeline.log_text().splitlines() if row.startswith("Alerts     "))
    assert line.startswith("Alerts     force-mash, manchester-childrens-hub, manchester-adults-team")
    assert "mail by SMTP to 127.0.0.1" in line and "routing.yaml, version e2e-1" in line


def test_no_alert_carries_anything_of_the_source(
    pipeline: Pipeline, delivered: dict[str, Any], team_servers: dict[str, Any]
) -> None:
    """The canary check: no value of the submission's `source` (name, role, organisation, e-mail, phone in
    any format) is in any mail the SMTP server received, any webhook body, nor any topic, log line or metric
    (where the notifier's metrics now name teams and channels)."""
    texts = {f"mail {n}": m.content for n, m in enumerate(team_servers["inbox"].messages)}
    texts |= {f"webhook {n}": p["raw"] for n, p in enumerate(team_servers["posts"])}
    assert any(delivered["marker"].encode() in text for text in texts.values()), "the alerts were read"
    texts |= _every_text_outside_the_store(pipeline)
    leaks = [(where, canary) for where, data in texts.items() for canary in CANARY_STRINGS
             if canary.lower().encode() in data.lower()]
    assert leaks == []


def _revision(pipeline: Pipeline, topic: str, decision_id: str, revision: int) -> dict[str, Any]:
    def matches(record: Any) -> bool:
        value = json_value(record)
        return bool(value["decision_id"] == decision_id and value.get("revision", 0) == revision)

    return dict(json_value(wait_for(pipeline.bootstrap, pipeline.topic(topic), matches)))


def _records_of(pipeline: Pipeline, decision_id: str, revision: int, count: int) -> list[dict[str, Any]]:
    """The delivered records of one revision, once `count` are there and a moment has passed for any more."""
    deadline = time.monotonic() + 90
    while True:
        records = [json_value(r) for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
                   if json_value(r)["decision_id"] == decision_id and json_value(r).get("revision", 0) == revision]
        if len(records) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(2)
    return [json_value(r) for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
            if json_value(r)["decision_id"] == decision_id and json_value(r).get("revision", 0) == revision]


def test_an_amendment_is_a_new_revision_on_the_outcome_topics_and_tells_only_the_team_it_changes(
    pipeline: Pipeline, delivered: dict[str, Any], team_servers: dict[str, Any]
) -> None:
    """The console (as cpi-iu) sends a handler's amendment taking safeguarding off; the router publishes
    revision 1 on the decided topic, on crime desk's topic and on safeguarding's (which it leaves), and the
    children's hub gets a withdrawal (mail and webhook) while the crime desk hears nothing more. A second
    amendment putting safeguarding back is revision 2: the hub is told again, once per channel; sent twice, it
    is still told once. No mail or alert carries the reviewer's reason or id."""
    from schemas import Decision, DecisionReview
    from schemas.topics import IU, OUTCOME_TOPICS
    from services.common.kafka.principals import principal_env_file, read_env_file, with_connection
    from services.common.settings import SanitiserSettings
    from services.console.adapters.decisions import publish_review
    from tests.decision_helpers import review

    settings = SanitiserSettings(kafka_bootstrap=pipeline.bootstrap, topic_prefix=pipeline.prefix)
    if pipeline.env_dir is not None:  # the console's own login: the registry lets cpi-iu write reviews only
        settings = with_connection(settings, read_env_file(principal_env_file(pipeline.env_dir, IU)))
    draft = Decision.model_validate(delivered["decision"])
    reason, officer = "Reviewed: the safeguarding referral is already open elsewhere.", "DS-7788"
    outcomes = [o.value for o in draft.outcomes if o.value != "safeguarding"]
    publish_review(settings, review(draft, outcomes=outcomes, reason=reason, officer_id=officer))

    first = _revision(pipeline, DECIDED.name, draft.decision_id, 1)
    assert (first["outcomes"], first["reviewed"]["action"], first["reviewed"]["officer_id"]) == (
        outcomes, "amended", officer)
    for outcome in ("crime_desk", "safeguarding"):  # safeguarding's readers learn it was taken off
        assert _revision(pipeline, OUTCOME_TOPICS[outcome].name, draft.decision_id, 1) == first
    withdrawn = _records_of(pipeline, draft.decision_id, 1, 2)
    assert sorted((r["team"], r["channel"], r["withdrawn"]) for r in withdrawn) == [
        ("manchester-childrens-hub", "smtp", True), ("manchester-childrens-hub", "webhook", True)]

    back = review(Decision.model_validate(first), outcomes=[o.value for o in draft.outcomes], reason=reason,
                  officer_id=officer)
    publish_review(settings, back)
    publish_review(settings, DecisionReview.model_validate_json(back.model_dump_json()))  # sent twice
    second = _revision(pipeline, OUTCOME_TOPICS[draft.outcomes[-1]].name, draft.decision_id, 2)
    assert second["outcomes"] == delivered["decision"]["outcomes"]
    told_again = _records_of(pipeline, draft.decision_id, 2, 2)
    assert sorted((r["team"], r["channel"], r["withdrawn"]) for r in told_again) == [
        ("manchester-childrens-hub", "smtp", False), ("manchester-childrens-hub", "webhook", False)]
    about = draft.intel_id.encode()
    mails = [m for m in team_servers["inbox"].messages if about in m.content]
    assert sorted(address for m in mails for address in m.rcpt_tos) == [
        "childrens-hub@manchester.force.example", "childrens-hub@manchester.force.example",  # withdrawn, told again
        "childrens-hub@manchester.force.example", "crime-desk.m1@manchester.force.example"]
    for text in [m.content for m in mails] + [p["raw"] for p in team_servers["posts"] if about in p["raw"]]:
        assert reason.encode() not in text and officer.encode() not in text
