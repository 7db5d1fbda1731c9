"""The walking skeleton end to end: API → intake → sanitiser → router → notifier on a real broker."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import AcceptedSubmission, HeldIntel, Outcome
from schemas.topics import (
    ACCEPTED,
    ALL_TOPICS,
    DEADLETTER,
    DECIDED,
    DELIVERED,
    HELD,
    OUTCOME_TOPICS,
    RECEIVED,
    SANITISED,
)
from schemas.topics import IU as IU_PRINCIPAL
from services.common.envelope import open_sealed
from services.common.keys import load_intake_keys, load_unseal_keys
from services.common.settings import SanitiserSettings
from services.sanitiser.domain import REDACTION_MARKER
from services.sanitiser.held import open_held
from tests.e2e.conftest import WORKERS, Pipeline
from tests.kafka_helpers import json_value, produce, read_all, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

# Distinctive values no real text contains: if any of them shows up anywhere outside the sealed
# store, provenance has leaked.
CANARY_SOURCE = {
    "name": "Quentin Zaffaroni-Plimsoll",
    "role": "Zeta Pastoral Lead",
    "organisation": "Canarywharf Zeta Academy",
    "organisation_type": "education",
    "email": "qz.canary7731@zeta-canary.example",
    "phone": "07700 900731",
    "recontact_ok": True,
}
CANARY_STRINGS = [
    "Zaffaroni",
    "Plimsoll",
    "Quentin",
    "Zeta Pastoral",
    "Canarywharf",
    "qz.canary7731",
    "zeta-canary.example",
    "07700 900731",
    "07700900731",
    "7700900731",
]


def submission(marker: str) -> dict[str, Any]:
    """A child at risk of criminal exploitation, told by a teacher who names herself in the text."""
    return {
        "source": CANARY_SOURCE,
        "lawful_basis": "safeguarding",
        "urgency": {"immediate_risk": False, "crime_in_progress": False},
        "categories": ["criminal_exploitation", "drug_related_harm"],
        "subjects": [
            {"role": "at_risk", "name": "Jayden Okafor", "approx_age": 14,
             "description": "Year 9 pupil, recently has two phones and new trainers"},
            {"role": "person_of_concern", "aliases": ["Skinny"], "approx_age": 22,
             "description": "Drives a black Audi and waits outside the gates"},
        ],
        "locations": [{"description": "Bus stop outside the leisure centre", "postcode": "M1 1AE"}],
        "vehicles": [{"registration": "AB12 CDE", "make": "Audi", "colour": "black"}],
        "information": (
            f"I am Quentin Zaffaroni-Plimsoll, the Zeta Pastoral Lead at Canarywharf Zeta Academy "
            f"(call me on 07700 900731 or qz.canary7731@zeta-canary.example). Jayden has been missing "
            f"from lessons, has unexplained cash and two phones, and says an older man called Skinny "
            f"makes him carry packages of drugs to a flat. Marker {marker}."
        ),
        "how_known": "told_by_subject",
        "subject_aware": False,
    }


def _marked(marker: str) -> Any:
    return lambda record: marker.encode() in record.value


@pytest.fixture(scope="module")
def decided(pipeline: Pipeline) -> dict[str, Any]:
    """Post one canary submission and wait for its decision."""
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker), headers=pipeline.api_auth,
                          timeout=30)
    assert response.status_code == 202, response.text
    record = wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name), _marked(marker))
    return {"marker": marker, "receipt": response.json(), "decision": json_value(record)}


def test_a_posted_submission_produces_a_decision(pipeline: Pipeline, decided: dict[str, Any]) -> None:
    """A valid API submission travels the whole pipeline and ends as a Decision routed to crime desk and
    safeguarding, with the receipt id used nowhere downstream."""
    decision = decided["decision"]
    assert {"crime_desk", "safeguarding"} <= set(decision["outcomes"])
    assert decision["priority"] == "high"
    assert any("exploit" in (f["rule_id"] + f["reason"]).lower() for f in decision["rationale"]), \
        "the rationale names the exploitation of a child as the reason"
    router_metrics = httpx.get(f"{pipeline.worker_urls['router']}/metrics", timeout=10).text
    assert 'cpi_router_decisions_total{outcome="crime_desk",priority="high"}' in router_metrics
    for firing in decision["rationale"]:
        assert f'rule_id="{firing["rule_id"]}"' in router_metrics
    assert decision["grading"]["intelligence_assessment"] == "B"  # told_by_subject
    receipt_id = decided["receipt"]["receipt_id"]
    for spec in ALL_TOPICS:
        for record in read_all(pipeline.bootstrap, pipeline.topic(spec.name)):
            assert receipt_id.encode() not in record.value
    for outcome in decision["outcomes"]:
        topic = pipeline.topic(OUTCOME_TOPICS[Outcome(outcome)].name)
        wait_for(pipeline.bootstrap, topic, lambda r: json_value(r)["decision_id"] == decision["decision_id"])


def test_crime_desk_and_safeguarding_are_notified(pipeline: Pipeline, decided: dict[str, Any]) -> None:
    """The notifier records one delivery per team the decision routes to, and the message carries the
    sanitised information."""
    decision = decided["decision"]
    teams = {o for o in decision["outcomes"] if o in ("crime_desk", "safeguarding")}
    seen: set[str] = set()
    deadline = time.monotonic() + 90
    while seen != teams and time.monotonic() < deadline:
        for record in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name)):
            note = json_value(record)
            if note["decision_id"] == decision["decision_id"]:
                assert note["status"] == "delivered"
                seen.add(note["team"])
    assert seen == teams
    mails = [p.read_text() for p in (pipeline.data_dir / "outbox").glob("*.eml")]
    assert any(decided["marker"] in mail for mail in mails)


def _metrics_pages(pipeline: Pipeline) -> dict[str, str]:
    """Every process's /metrics page: the edge's internal listener, each worker, and the console's."""
    urls = {"api": pipeline.edge_metrics_url, **pipeline.worker_urls,
            "console": f"http://127.0.0.1:{pipeline.env['CPI_CONSOLE_METRICS_PORT']}"}
    pages = {}
    for name, url in urls.items():
        response = httpx.get(f"{url}/metrics", timeout=10)
        assert response.status_code == 200, f"{name} serves its metrics"
        pages[name] = response.text
    return pages


def _samples(pages: dict[str, str], name: str) -> list[Any]:
    from prometheus_client.parser import text_string_to_metric_families

    return [sample for page in pages.values() for family in text_string_to_metric_families(page)
            for sample in family.samples if sample.name == name]


def _pages_once(pipeline: Pipeline, ready: Callable[[dict[str, str]], bool], what: str) -> dict[str, str]:
    """The metrics pages once `ready` holds of them; fails the test after a minute."""
    deadline = time.monotonic() + 60
    while not ready(pages := _metrics_pages(pipeline)):
        assert time.monotonic() < deadline, what
        time.sleep(1)
    return pages


def _value(pages: dict[str, str], name: str) -> float:
    return sum(sample.value for sample in _samples(pages, name))


def _latency_counts(pages: dict[str, str]) -> dict[str, float]:
    return {s.labels["stage"]: s.value for s in _samples(pages, "cpi_stage_latency_seconds_count")}


def test_every_metric_the_dashboard_and_alerts_query_is_served_and_lag_and_latency_are_measured(
    pipeline: Pipeline, decided: dict[str, Any]
) -> None:
    """Scraping the running edge, workers and console finds every cpi_* series that the Grafana dashboard and
    the alert rules query. Each stage shows its lag per input partition; a report posted once every stage has
    read its partitions' ends is measured by every stage's latency on its way to the crime desk. Their label
    values are stage names, registry topic names and partition numbers only, never anything submitted."""
    from tests.metric_queries import offered_series, queried_series

    stages = {"intake", "sanitiser", "router", "notifier"}
    pages = _pages_once(pipeline, lambda p: {s.labels["stage"] for s in _samples(p, "cpi_consumer_lag")} >= stages,
                        "every stage shows its consumer lag")
    missing = queried_series() - offered_series(pages.values())
    assert missing == set(), "queried by the dashboard or the alert rules, served by no process"

    before = _latency_counts(pages)
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker),
                          headers=pipeline.api_auth, timeout=30)
    assert response.status_code == 202, response.text
    wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name), _marked(marker))
    pages = _pages_once(pipeline, lambda p: all(_latency_counts(p).get(stage, 0) > before.get(stage, 0)
                                                 for stage in stages), "every stage measured the report's latency")
    sums = {s.labels["stage"]: s.value for s in _samples(pages, "cpi_stage_latency_seconds_sum")}
    assert all(sums[stage] > 0 for stage in stages)

    topics = {spec.name for spec in ALL_TOPICS}
    for sample in _samples(pages, "cpi_consumer_lag"):
        assert sample.labels["stage"] in stages | {"notifier-retry", "router-review"}
        assert sample.labels["topic"] in topics and sample.labels["partition"].isdigit()
        assert sample.value >= 0


def _every_text_outside_the_store(pipeline: Pipeline) -> dict[str, bytes]:
    texts: dict[str, bytes] = {}
    for spec in ALL_TOPICS:
        for record in read_all(pipeline.bootstrap, pipeline.topic(spec.name)):
            headers = b"".join(k.encode() + v for k, v in record.headers or [])
            texts[f"{spec.name}@{record.partition}:{record.offset}"] = (record.key or b"") + record.value + headers
    for path in (pipeline.data_dir / "logs").glob("*.log"):
        texts[f"log {path.name}"] = path.read_bytes()
    for path in (pipeline.data_dir / "outbox").glob("*.eml"):
        texts[f"notification {path.name}"] = path.read_bytes()
    assert httpx.get(f"{pipeline.api_url}/metrics", timeout=10).status_code == 404, "not on the public port"
    for name, page in _metrics_pages(pipeline).items():
        assert "cpi_" in page, f"{name} serves its metrics"
        texts[f"metrics {name}"] = page.encode()
    return texts


# Someone who is neither the source nor a subject: the scrubber does not know them, the residual-risk
# check must see the address and hold the report. (Its domain shares no label with the source's, which
# the scrubber rightly removes wherever it appears.)
THIRD_PARTY = "jo.bloggs@riverside-lettings.co.uk"
IU = ["--role", "intelligence_unit", "--officer-id", "DS-0042", "--reason", "Checking a held report before release."]


def cpi(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `cpi` command line, as an officer runs it against this pipeline's broker and store: `cpi held`
    as the Intelligence Unit's Kafka principal (cpi-iu), the rest as the administrator."""
    env = pipeline.as_principal(IU_PRINCIPAL) if args[0] == "held" else pipeline.env
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def held(pipeline: Pipeline) -> dict[str, Any]:
    """Post a canary submission whose text also gives a third party's e-mail, and wait for its record on the
    held topic (found by opening the envelopes: nothing readable there links it to the submission)."""
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    body = submission(marker)
    body["information"] += f" For more, contact {THIRD_PARTY}."
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=body, headers=pipeline.api_auth,
                          timeout=30)
    assert response.status_code == 202, response.text
    # The unseal path's key (the Intelligence Unit's): nothing else opens a held envelope.
    unseal = load_unseal_keys(SanitiserSettings(data_dir=pipeline.data_dir, create_missing_keys=False)).unseal_private
    assert unseal is not None

    def seals_marker(record: Any) -> bool:
        found = HeldIntel.model_validate_json(record.value)
        return found.sealed is not None and marker in open_held(found, unseal).intel.information

    record = wait_for(pipeline.bootstrap, pipeline.topic(HELD.name), seals_marker)
    return {"marker": marker, "record": record, "held": HeldIntel.model_validate_json(record.value)}


def test_a_report_with_residual_risk_is_held_not_sanitised(pipeline: Pipeline, held: dict[str, Any]) -> None:
    """The report goes to the held topic, sealed (readable: id, day, revision, status, score, codes; its record
    keyed by intel id and stamped with the day), and not to the sanitised topic; the sanitiser counts the hold
    by reason code only and logs `intel_held` with the intel id."""
    record, found = held["record"], held["held"]
    assert (found.status.value, found.revision) == ("held", 1)
    assert "email_address" in found.reason_codes and found.score >= 0.5
    assert record.key == found.intel_id.encode() and record.timestamp % 86_400_000 == 0
    assert THIRD_PARTY.encode() not in record.value and held["marker"].encode() not in record.value
    for spec in (SANITISED, DECIDED):
        for other in read_all(pipeline.bootstrap, pipeline.topic(spec.name)):
            assert found.intel_id.encode() not in other.value and held["marker"].encode() not in other.value

    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{pipeline.worker_urls['sanitiser']}/metrics", timeout=10).text
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "cpi_sanitiser_held"]
    counted = {s.labels["reason"]: s.value for s in family.samples if s.name == "cpi_sanitiser_held_total"}
    assert counted.get("email_address", 0) >= 1
    for sample in family.samples:
        assert set(sample.labels) == {"reason"} and re.fullmatch(r"[a-z_]+", sample.labels["reason"])
    [logged] = [json.loads(line[line.index("{"):]) for line in pipeline.log_text().splitlines()
                if '"intel_held"' in line and found.intel_id in line]
    assert logged["reason_codes"] == found.reason_codes


def test_the_console_counts_held_reports_waiting(pipeline: Pipeline, held: dict[str, Any]) -> None:
    """The console's /metrics counts the held report among those waiting for review (read from the held topic,
    as the console lists them), and none of them overdue: it was held today."""
    pages = _pages_once(pipeline, lambda p: _value(p, "cpi_held_waiting") >= 1, "the held report is counted")
    assert _value(pages, "cpi_held_overdue") == 0
    console = pages["console"]
    assert held["held"].intel_id not in console and held["marker"] not in console


def test_the_intelligence_unit_redacts_and_releases_a_held_report_and_the_router_decides_it(
    pipeline: Pipeline, held: dict[str, Any]
) -> None:
    """`cpi held list` shows the held report; `show` (refused without a proper reason, or for an id not
    held) opens it with its excerpts; `redact` publishes nothing if a text is not there, else takes the
    third party's e-mail out as a new revision; `release` publishes it to the sanitised topic and the
    router decides it; releasing again is refused. Every step is in the sealed store's audit chain, which
    verifies, and the e-mail appears nowhere outside the held envelopes (not in any other topic, log,
    metric, notification, nor the sealed store's audit)."""
    intel_id = held["held"].intel_id
    listed = cpi(pipeline, "held", "list")
    assert listed.returncode == 0, listed.stderr
    [entry] = [json.loads(line) for line in listed.stdout.splitlines() if intel_id in line]
    assert entry["status"] == "held" and "email_address" in entry["reasons"] and THIRD_PARTY not in listed.stdout

    refused = cpi(pipeline, "held", "show", intel_id, *IU[:-1], "because")
    assert refused.returncode == 3 and "reason_too_short" in refused.stderr and "audited" in refused.stderr
    assert THIRD_PARTY not in refused.stdout + refused.stderr
    shown = cpi(pipeline, "held", "show", intel_id, *IU)
    assert shown.returncode == 0, shown.stderr
    opened = json.loads(shown.stdout)
    assert {"code": "email_address", "excerpt": THIRD_PARTY} in opened["reasons"]
    assert held["marker"] in opened["intel"]["information"]

    unknown = cpi(pipeline, "held", "show", "0" * 32, *IU)
    assert unknown.returncode == 3 and "not_held" in unknown.stderr
    mistyped = cpi(pipeline, "held", "redact", intel_id, *IU, "--text", THIRD_PARTY, "--text", "Jo Blogs")
    assert mistyped.returncode == 1 and "text 2 of 2 does not occur" in mistyped.stderr
    redacted = cpi(pipeline, "held", "redact", intel_id, *IU, "--text", THIRD_PARTY.upper())
    assert redacted.returncode == 0, redacted.stderr
    assert json.loads(redacted.stdout) | {"held_on": None} == {
        "intel_id": intel_id, "held_on": None, "revision": 2, "status": "redacted", "score": 0.0, "reasons": [],
        "replaced": 1}
    released = cpi(pipeline, "held", "release", intel_id, *IU)
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["status"] == "released"

    decision = json_value(wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name),
                                   lambda r: intel_id.encode() in r.value))
    assert {"crime_desk", "safeguarding"} <= set(decision["outcomes"])
    assert f"contact {REDACTION_MARKER}" in decision["intel"]["information"]
    assert decision["intel"]["redaction_count"] == opened["intel"]["redaction_count"] + 1
    again = cpi(pipeline, "held", "release", intel_id, *IU)
    assert again.returncode == 3 and "already been released" in again.stderr
    assert intel_id not in cpi(pipeline, "held", "list").stdout
    sanitised = [r for r in read_all(pipeline.bootstrap, pipeline.topic(SANITISED.name))
                 if intel_id.encode() in r.value]
    assert len(sanitised) == 1 and sanitised[0].timestamp % 86_400_000 == 0

    with sqlite3.connect(pipeline.data_dir / "sealed.db") as db:
        audited = db.execute("SELECT action, actor, result FROM sealed_audit WHERE intel_id = ? ORDER BY seq",
                             (intel_id,)).fetchall()
    db.close()
    assert audited == [("held_show", "DS-0042", "denied:reason_too_short"), ("held_show", "DS-0042", "granted"),
                       ("held_redact", "DS-0042", "granted"), ("held_redact", "DS-0042", "granted"),
                       ("held_release", "DS-0042", "granted"), ("held_release", "DS-0042", "denied:already_released")]
    verified = cpi(pipeline, "sealed", "audit-verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    texts = _every_text_outside_the_store(pipeline)
    for path in pipeline.data_dir.glob("sealed.db*"):  # the audit names the officer and reason, not the text
        texts[f"sealed store file {path.name}"] = path.read_bytes()
    assert [where for where, data in texts.items() if b"jo.bloggs" in data.lower()] == []


def test_a_clean_report_is_not_held(pipeline: Pipeline, decided: dict[str, Any]) -> None:
    """The canary report, whose only identifiers are its source's own (scrubbed), is decided without a
    held record: the held topic has nothing under its intel id."""
    intel_id = decided["decision"]["intel_id"].encode()
    assert [r for r in read_all(pipeline.bootstrap, pipeline.topic(HELD.name)) if r.key == intel_id] == []


def test_source_canaries_appear_nowhere_outside_the_sealed_store(
    pipeline: Pipeline, decided: dict[str, Any], held: dict[str, Any]
) -> None:
    """No value from `source` — name, role, organisation, email, phone in any format — appears in any
    topic (received and accepted hold it only encrypted; the held topic only sealed), log line, metric,
    notification or dead letter, nor as plaintext in the SQLite sealed store."""
    texts = _every_text_outside_the_store(pipeline)
    assert any(name.startswith(SANITISED.name) for name in texts), "the intel topic was read"
    assert any(name.startswith(HELD.name) for name in texts), "the held topic was read"
    store_files = list(pipeline.data_dir.glob("sealed.db*"))
    assert store_files, "the sealed store exists"
    for path in store_files:
        texts[f"sealed store file {path.name}"] = path.read_bytes()
    leaks = [
        (where, canary)
        for where, data in texts.items()
        for canary in CANARY_STRINGS
        if canary.lower().encode() in data.lower()
    ]
    assert leaks == []


def test_sanitised_intel_keeps_subject_facts_and_coarse_time(pipeline: Pipeline, decided: dict[str, Any]) -> None:
    """The intel keeps what is known about the subjects, carries a date but no exact time, and its
    record timestamp is midnight UTC, so the broker does not give the time of submission back."""
    record = wait_for(pipeline.bootstrap, pipeline.topic(SANITISED.name), _marked(decided["marker"]))
    intel = json_value(record)
    assert "Jayden" in intel["information"] and "Skinny" in intel["information"]
    assert intel["vehicles"][0]["registration"] == "AB12 CDE"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", intel["received_on"])
    assert intel["redaction_count"] >= 3
    assert record.timestamp % 86_400_000 == 0


@pytest.mark.parametrize("origin", [RECEIVED, ACCEPTED, SANITISED, DECIDED], ids=lambda s: s.name)
def test_bad_bytes_go_to_the_dead_letter_topic_and_the_stream_flows(pipeline: Pipeline, origin: Any) -> None:
    """Undecodable bytes on any worker's input topic land on cpi.deadletter.v1 unchanged, with origin
    topic/partition/offset, stage and error in headers; the worker then still processes good input."""
    poison = b"\xff\xfe not json " + uuid.uuid4().hex.encode()
    produce(pipeline.bootstrap, pipeline.topic(origin.name), poison, key=b"poison")
    letter = wait_for(pipeline.bootstrap, pipeline.topic(DEADLETTER.name), lambda r: r.value == poison)
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["cpi-dlq-origin-topic"] == pipeline.topic(origin.name)
    assert int(headers["cpi-dlq-origin-offset"]) >= 0
    assert headers["cpi-dlq-stage"] in WORKERS
    assert headers["cpi-dlq-error-code"] == "undecodable"
    marker = f"ZX{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{pipeline.api_url}/api/v1/submissions", json=submission(marker), headers=pipeline.api_auth,
                          timeout=30)
    assert response.status_code == 202
    wait_for(pipeline.bootstrap, pipeline.topic(DECIDED.name), _marked(marker))


def _duplicates_skipped(pipeline: Pipeline) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{pipeline.worker_urls['notifier']}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "cpi_notifications_total" and sample.labels.get("result") == "duplicate_skipped"
    )


def test_redelivery_gives_the_same_intel_and_decision_and_no_second_notification(
    pipeline: Pipeline, decided: dict[str, Any]
) -> None:
    """Re-delivering an accepted submission yields the same intel id and the same decision id; the notifier
    sends nothing twice and, its delivered records already acknowledged, publishes nothing again."""
    marker = decided["marker"]
    decision = decided["decision"]
    transport = load_intake_keys(SanitiserSettings(data_dir=pipeline.data_dir, create_missing_keys=False))

    def opens_to_marker(record: Any) -> bool:
        if record.key == b"poison":  # the dead-letter test's bytes
            return False
        accepted = AcceptedSubmission.model_validate_json(record.value)
        plain = open_sealed(accepted.sealed_submission, accepted.submission_id.encode(), transport)
        return marker.encode() in plain

    accepted = wait_for(pipeline.bootstrap, pipeline.topic(ACCEPTED.name), opens_to_marker)
    notified_before = [
        r for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
        if json_value(r)["decision_id"] == decision["decision_id"]
    ]
    outbox_before = len(list((pipeline.data_dir / "outbox").glob("*.eml")))
    teams = len({o for o in decision["outcomes"] if o in ("crime_desk", "safeguarding")})
    skipped_before = _duplicates_skipped(pipeline)
    produce(pipeline.bootstrap, pipeline.topic(ACCEPTED.name), accepted.value, key=accepted.key)

    deadline = time.monotonic() + 90
    while _duplicates_skipped(pipeline) < skipped_before + teams and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _duplicates_skipped(pipeline) == skipped_before + teams, "the redelivered decision reached the notifier"
    decisions = [json_value(r) for r in read_all(pipeline.bootstrap, pipeline.topic(DECIDED.name))
                 if marker.encode() in r.value]
    assert len(decisions) == 2
    assert {d["decision_id"] for d in decisions} == {decision["decision_id"]}
    assert {d["intel_id"] for d in decisions} == {decision["intel_id"]}
    # Nothing is sent again and nothing published again: the ledger knows each delivered record was acknowledged
    # (`recorded`). A record is published again only when the crash came before that (docs/reliability.md).
    time.sleep(3)
    notified_after = [
        r for r in read_all(pipeline.bootstrap, pipeline.topic(DELIVERED.name))
        if json_value(r)["decision_id"] == decision["decision_id"]
    ]
    assert notified_before and [r.value for r in notified_after] == [r.value for r in notified_before]
    assert len(list((pipeline.data_dir / "outbox").glob("*.eml"))) == outbox_before



def test_each_worker_and_the_edge_run_as_their_own_kafka_principal(pipeline: Pipeline) -> None:
    """On the secured broker `cpi up` applied the registry's ACLs for this pipeline's prefix and started each
    worker, the edge and the console with its own principal's login (read from each process's environment): none holds
    the administrator's password. With the matrix test this is what proves the pipeline above ran with
    least privilege."""
    if pipeline.env_dir is None:
        pytest.skip("the session's Kafka is not the secured local broker (no principals' env files)")
    from services.common.kafka.principals import ADMIN_ENV, read_env_file

    assert re.search(r"ACLs +\d+ created", pipeline.log_text())
    admin_password = read_env_file(pipeline.env_dir / ADMIN_ENV)["CPI_KAFKA_SASL_PASSWORD"]
    up = pipeline.processes["up"].pid
    children = Path(f"/proc/{up}/task/{up}/children").read_text().split()
    logins = {}
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        environ = dict(item.split(b"=", 1) for item in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
                       if b"=" in item)
        assert admin_password.encode() not in b"\0".join(environ.values())
        name = command[-2].decode()  # `... services.cli worker intake` or `... services.cli api`, NUL-ended
        logins[name] = environ[b"CPI_KAFKA_SASL_USERNAME"].decode()
    assert logins == {"api": "cpi-edge", "console": "cpi-iu", **{name: f"cpi-{name}" for name in WORKERS}}


def test_cpi_up_printed_every_url_and_stops_cleanly_on_ctrl_c(pipeline: Pipeline) -> None:
    """`cpi up` printed the form, API and each worker's metrics URL; Ctrl-C stops every worker and the
    edge, and it exits 0. (Runs last in this module: it stops the pipeline.)"""
    up = pipeline.processes["up"]
    up.send_signal(signal.SIGINT)
    assert up.wait(90) == 0
    output = pipeline.log_text()
    assert f"Form       {pipeline.api_url}/" in output
    assert f"{pipeline.api_url}/api/v1/submissions" in output
    for name, url in pipeline.worker_urls.items():
        assert f"{url}/metrics  ({name} worker" in output
    assert f"{pipeline.edge_metrics_url}/metrics  (intake edge, internal)" in output
    assert f"Console    http://127.0.0.1:{pipeline.env['CPI_CONSOLE_PORT']}/  (Intelligence Unit" in output
    for url in [pipeline.api_url, *pipeline.worker_urls.values()]:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/healthz", timeout=2)
