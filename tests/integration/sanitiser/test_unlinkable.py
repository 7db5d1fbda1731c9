"""Linkability: from what is readable after the edge, can an observer order intels by submission time?

How it is measured. A day's reports (here 60, in a known submission order) go through the real
sanitiser worker on the real broker. The observer reads everything past the edge: the sanitised topic
(record order within each partition, and the record timestamps) and the sealed store's storage order
(SQLite rowid: the order rows were written). The referee knows which intel came from which submission
by the subject's name, which the scrubber keeps (subjects are the intelligence). For each ordering the
observer has, the test counts the pairs of intels it puts in submission order (concordance). By chance
that is 0.5; an order that follows arrival gives 1.0. The sanitiser mixes: it releases a shuffled pool
of at least `CPI_RELEASE_MIN_RECORDS` (here the whole day), so the expected concordance is 0.5, with a
standard deviation of about 0.05 here; the bounds (0.25 to 0.75) are about five deviations away, so a
correct build fails about once in a million runs and an order-preserving one always fails.

An observer who saw the reports arrive learns which release an intel came out in, and nothing about
its order within it: how much that hides is how many reports share a release (`cpi_stage_released_records`).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from schemas import AcceptedSubmission, SanitisedIntel, Submission
from schemas.topics import ACCEPTED, DEADLETTER, HELD, SANITISED
from services.common.days import day_timestamp
from services.common.kafka.broker import free_port
from services.common.keys import load_edge_keys, load_intake_keys, load_sanitiser_keys
from services.common.serde import encode
from services.intake.receiving import received_record
from services.intake.worker import check_received
from services.sanitiser.adapters import open_sealed_store
from tests.kafka_helpers import produce, read_all, wait_for, worker_process
from tests.key_helpers import key_settings

pytestmark = pytest.mark.kafka

REPORTS = 60
NAMES = [f"{first} {last}" for first, last in itertools.product(
    ["Ada", "Bram", "Cleo", "Dov", "Esme", "Finn", "Gus", "Hana", "Ivo", "Jude"],
    ["Marsh", "Thorne", "Quill", "Vance", "Wren", "Yates"])]


def report(index: int) -> Submission:
    return Submission.model_validate({
        "source": {"name": "Odile Brackenbury", "role": "Health Visitor", "organisation": "Fenwick Health Centre",
                   "organisation_type": "health", "email": "odile.b@fenwick.example"},
        "lawful_basis": "safeguarding", "urgency": {"immediate_risk": False, "crime_in_progress": False},
        "categories": ["anti_social_behaviour"], "how_known": "witnessed_directly",
        "subjects": [{"role": "person_of_concern", "name": NAMES[index]}],
        "information": f"{NAMES[index]} has been seen spraying graffiti on the bus shelter on Mill Lane at night.",
    })


def concordance(order: Sequence[int]) -> tuple[float, int]:
    """The share of pairs an ordering of submission indexes puts the right way round, and how many pairs."""
    pairs = list(itertools.combinations(order, 2))
    return sum(a < b for a, b in pairs) / len(pairs), len(pairs)


def test_an_observer_cannot_order_a_days_intels_by_submission_time(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    """Neither the sanitised topic's order nor the sealed store's storage order tells which of a day's
    intels was submitted first (concordance with submission order near 0.5, where arrival order gives
    1.0); every record's timestamp is the day's midnight (regression: exact times and store row order
    linked intels to their submissions)."""
    names = topic_factory(ACCEPTED, SANITISED, HELD, DEADLETTER)
    settings = key_settings(tmp_path)
    open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", load_sanitiser_keys(settings).store).close()
    edge, intake = load_edge_keys(settings), load_intake_keys(settings)
    env = {**os.environ, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix,
           "CPI_DATA_DIR": str(tmp_path), "CPI_RELEASE_MIN_RECORDS": str(REPORTS),
           "CPI_RELEASE_MAX_WAIT_SECONDS": "600"}
    with worker_process("sanitiser", env, free_port(), tmp_path / "worker.log"):
        for index in range(REPORTS):  # in submission order
            accepted = check_received(received_record(report(index), edge), intake)
            assert isinstance(accepted, AcceptedSubmission)
            produce(kafka_bootstrap, names[ACCEPTED.name], encode(accepted), accepted.submission_id.encode())
        wait_for(kafka_bootstrap, names[SANITISED.name], lambda r: True, timeout=180)
        records = read_all(kafka_bootstrap, names[SANITISED.name])
    assert read_all(kafka_bootstrap, names[DEADLETTER.name]) == []
    assert read_all(kafka_bootstrap, names[HELD.name]) == []
    assert len(records) == REPORTS

    submitted = {}
    for record in records:
        intel = SanitisedIntel.model_validate_json(record.value)
        [subject] = intel.subjects
        submitted[intel.intel_id] = NAMES.index(str(subject.name))
        assert record.timestamp == day_timestamp() * 1000
    assert sorted(submitted.values()) == list(range(REPORTS))

    # The topic: within a partition, offsets are the order the observer saw records appear.
    by_partition: dict[int, list[tuple[int, int]]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append((record.offset, submitted[record.key.decode()]))
    agree = total = 0
    for partition in by_partition.values():
        if len(partition) > 1:
            share, pairs = concordance([index for _, index in sorted(partition)])
            agree, total = agree + round(share * pairs), total + pairs
    topic_concordance = agree / total

    # The sealed store: the order its rows were written.
    with sqlite3.connect(tmp_path / "sealed.db") as db:
        stored = [row[0] for row in db.execute("SELECT intel_id FROM sealed_records ORDER BY rowid")]
    store_concordance, _ = concordance([submitted[intel_id] for intel_id in stored])

    print(f"concordance with submission order: topic {topic_concordance:.3f} ({total} pairs), "
          f"store {store_concordance:.3f}; arrival order would give 1.000")
    assert 0.25 < topic_concordance < 0.75, f"topic order follows submission order: {topic_concordance:.2f}"
    assert 0.25 < store_concordance < 0.75, f"store order follows submission order: {store_concordance:.2f}"
