"""`cpi bench --kafka` with tiny sizes on the session's real broker: the report's shape and its figures'
consistency (never their size: the machine is shared), the chart and JSON it writes, and that the run's
topics past the edge carry no exact time (the bench measures latency at its own ends, by a reference of its own
in the generated text)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import ACCEPTED, DECIDED, DELIVERED, SANITISED
from services.bench import machine, write_results
from services.bench_kafka import WORKERS, BenchRun, through_kafka
from services.common.kafka.reading import read_to_end
from services.common.settings import PlatformSettings

pytestmark = pytest.mark.kafka

# Past the edge: every topic a worker writes from what the edge received (the retry topic's due times are the
# notifier's own schedule, about a decision, not a submission).
AFTER_THE_EDGE = (ACCEPTED, SANITISED, DECIDED, DELIVERED)
_CLOCK = re.compile(rb"\d{1,2}:\d{2}")
_NUMBER = re.compile(rb"(?<![0-9a-fA-F])\d{9,19}(?:\.\d+)?(?![0-9a-fA-F])")


def _bench_environment(monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> None:
    monkeypatch.setenv("CPI_KAFKA_BOOTSTRAP", kafka_bootstrap)
    # A tiny run is smaller than the sanitiser's release pool: let it go by age within a second, not a minute.
    monkeypatch.setenv("CPI_RELEASE_MAX_WAIT_SECONDS", "1")


@pytest.fixture(scope="module")
def backlog(kafka_bootstrap: str) -> tuple[dict[str, Any], dict[str, list[Any]], tuple[float, float]]:
    """One small backlog run; its report, every record it left on the topics past the edge, and when it ran."""
    monkeypatch = pytest.MonkeyPatch()
    _bench_environment(monkeypatch, kafka_bootstrap)
    seen: dict[str, list[Any]] = {}

    def inspect(settings: PlatformSettings) -> None:
        for spec in AFTER_THE_EDGE:
            consumer, records = read_to_end(settings, settings.topic(spec.name))
            consumer.close()
            seen[spec.name] = records

    try:
        began = datetime.now(UTC).timestamp()
        report = through_kafka(BenchRun(mode="backlog", records=24), inspect=inspect)
        return report, seen, (began, datetime.now(UTC).timestamp())
    finally:
        monkeypatch.undo()


def _ordered(latency: dict[str, Any] | None) -> bool:
    return latency is not None and latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]


def test_a_backlog_report_accounts_for_every_submission_and_its_figures_agree(
        backlog: tuple[dict[str, Any], dict[str, list[Any]], tuple[float, float]]) -> None:
    """Every submission is decided, held or dead-lettered and every decision notified; the latency counts, the
    timeline's sums, CPU per record, the raw relay's rate and the pipeline/raw ratio all follow from the run's
    own figures."""
    report = backlog[0]
    pipeline, relay = report["pipeline"], report["raw_relay"]
    assert report["mode"] == "backlog" and report["records"] == 24 and report["partitions"] == 6
    assert pipeline["complete"] is True
    assert pipeline["decided"] + pipeline["held"] + pipeline["dead_lettered"] == 24
    assert pipeline["notified_decisions"] <= pipeline["decided"] <= pipeline["notifications"]
    assert report["latency_ms"]["received_to_decided"]["count"] == pipeline["decided"]
    assert report["latency_ms"]["decided_to_notified"]["count"] == pipeline["notified_decisions"]
    assert all(_ordered(latency) for latency in report["latency_ms"].values())
    timeline = report["timeline"]
    assert [row["second"] for row in timeline] == list(range(len(timeline)))
    assert sum(row["written"] for row in timeline) == 24
    assert sum(row["decided"] for row in timeline) == pipeline["decided"]
    assert sum(row["notified"] for row in timeline) == pipeline["notified_decisions"]
    assert pipeline["per_second"] == pytest.approx(24 / pipeline["all_seconds"], rel=0.01)
    shares = list(report["decided_by_seconds"].values())
    assert shares == sorted(shares) and shares[-1] <= pipeline["all_seconds"]
    assert set(report["cpu_seconds"]) == set(WORKERS) and all(v > 0 for v in report["cpu_seconds"].values())
    for name, seconds in report["cpu_seconds"].items():
        assert report["cpu_ms_per_record"][name] == pytest.approx(1000 * seconds / 24, abs=0.001)
    assert relay["records"] == 24 and relay["hops"] == 4 and relay["cpu_seconds"] > 0
    assert relay["per_second"] == pytest.approx(24 / relay["all_seconds"], rel=0.01)
    assert report["pipeline_to_raw"] == pytest.approx(pipeline["per_second"] / relay["per_second"], rel=0.01)
    assert report["offered_to_raw"] is None
    assert 0 < report["value_bytes"]["mean"] <= report["value_bytes"]["max"]


def test_no_exact_time_reaches_a_topic_past_the_edge(
        backlog: tuple[dict[str, Any], dict[str, list[Any]], tuple[float, float]]) -> None:
    """On the accepted, sanitised, decided and delivered topics every record is stamped at midnight UTC, and no
    value or header holds a time of day or a number that reads as a moment of the run (epoch seconds,
    milliseconds, microseconds or nanoseconds): the bench's latency figures come from its own clocks."""
    _, seen, (began, ended) = backlog
    assert seen[DECIDED.name] and seen[SANITISED.name] and seen[DELIVERED.name]
    window = (began - timedelta(days=1).total_seconds(), ended + timedelta(days=1).total_seconds())
    for topic, records in seen.items():
        for record in records:
            assert record.timestamp % 86_400_000 == 0, topic
            carried = record.value + b"".join(value or b"" for _, value in record.headers or [])
            assert not _CLOCK.search(carried), topic
            for number in _NUMBER.findall(carried):
                for scale in (1, 1e3, 1e6, 1e9):
                    assert not window[0] <= float(number) / scale <= window[1], (topic, number)


def test_the_report_is_written_as_json_and_a_png_chart(
        backlog: tuple[dict[str, Any], dict[str, list[Any]], tuple[float, float]], tmp_path: Path) -> None:
    """--out writes the whole report as JSON, which reads back the same, and a PNG chart of the run."""
    report = {"machine": machine(), "when": "2026-12-04T12:00:00+00:00", "kafka": backlog[0]}
    files = write_results(report, tmp_path / "results")
    assert json.loads(Path(files["json"]).read_text(encoding="utf-8")) == report
    assert Path(files["chart"]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_an_open_loop_run_writes_at_its_rate_and_reports_latency(
        kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open-loop writes at the rate given (so 12 submissions at 4/s take at least 2.75 s to write, whatever the
    pipeline does), reports both latencies, and compares the offered rate, not throughput, with the raw relay."""
    _bench_environment(monkeypatch, kafka_bootstrap)
    report = through_kafka(BenchRun(mode="open-loop", records=12, rate=4.0))
    assert report["mode"] == "open-loop" and report["rate"] == 4.0
    assert report["pipeline"]["complete"] is True
    assert report["pipeline"]["produce_seconds"] >= 11 / 4
    assert max(row["written"] for row in report["timeline"]) <= 5
    assert all(_ordered(latency) for latency in report["latency_ms"].values())
    assert report["pipeline_to_raw"] is None
    assert report["offered_to_raw"] == pytest.approx(4.0 / report["raw_relay"]["per_second"], rel=0.01)
