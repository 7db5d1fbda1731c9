"""The README's example consumer for downstream systems, run as written against the real secured broker, as
the downstream principal, reading decisions the router's principal published on the crime desk's topic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas import Decision, Outcome, Review, ReviewReason, SanitisedIntel
from schemas.topics import DOWNSTREAM, OUTCOME_TOPICS, ROUTER
from services.common.kafka import clients
from services.common.kafka.acls import apply_acls
from services.common.kafka.principals import ADMIN_ENV, principal_env_file, read_env_file, with_connection
from services.common.settings import PlatformSettings
from services.router.domain import assess, decision_id_for, load_rules
from tests.decision_helpers import review as handler_review

pytestmark = pytest.mark.kafka

README = Path(__file__).resolve().parents[3] / "README.md"
CRIME_DESK = OUTCOME_TOPICS[Outcome.CRIME_DESK]


def readme_example() -> str:
    """The first Python code block of the README's section for downstream systems."""
    section = README.read_text().split("\n## For downstream systems\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found, "the README's section for downstream systems has no python block"
    return found.group(1)


def crime_desk_decision(intel_id: str, information: str) -> Decision:
    """The router's real decision on an intel that goes to the crime desk."""
    intel = SanitisedIntel.model_validate({
        "intel_id": intel_id, "received_on": "2026-11-20", "categories": ["drug_related_harm"],
        "how_known": "witnessed_directly", "lawful_basis": "safeguarding", "information": information,
        "subjects": [{"role": "at_risk", "name": "Kai", "approx_age": 15}], "redaction_count": 0,
    })
    decision = assess(intel, load_rules())
    assert Outcome.CRIME_DESK in decision.outcomes
    return decision


def run_example(env: dict[str, str], cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", readme_example()], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_the_readme_consumer_reads_the_crime_desk_once_per_decision_and_keeps_the_latest_per_intel(
    kafka_bootstrap: str, kafka_env_dir: Path, topic_prefix: str, topic_factory: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    """Connecting with nothing but the downstream principal's settings, the README's code prints each
    decision once although one was delivered twice, says which is flagged and which reviewed, passes over a
    record that is no decision, keeps per intel the decision published last and of a decision its highest
    revision (a handler's review, delivered twice), and commits, so a second run gets nothing."""
    names = topic_factory(CRIME_DESK)
    base = PlatformSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    apply_acls(with_connection(base, read_env_file(kafka_env_dir / ADMIN_ENV)), (CRIME_DESK,))
    first = crime_desk_decision("a" * 32, "Kai, 15, is dealing cannabis for an older man outside the shop.")
    # The same intel decided again under other rules: a new decision id, published after the first.
    again = first.model_copy(update={"rules_version": "next", "decision_id": decision_id_for(first.intel_id, "next")})
    review = Review(needed=True, reasons=[ReviewReason(code="thin_evidence", reason="Little to go on.")])
    other = crime_desk_decision("b" * 32, "Kai, 15, carries a knife and sells drugs near the bus station.")
    other = other.model_copy(update={"review": review})
    reviewed = handler_review(other, action="confirmed").revised()  # revision 1 of the same decision
    router = clients.producer(with_connection(base, read_env_file(principal_env_file(kafka_env_dir, ROUTER))))
    try:
        for key, value in [(first.intel_id, first.model_dump_json()), (other.intel_id, other.model_dump_json()),
                           (first.intel_id, first.model_dump_json()),  # a repeat, as after a router crash
                           (first.intel_id, "not a decision"), (again.intel_id, again.model_dump_json()),
                           (other.intel_id, reviewed.model_dump_json()), (other.intel_id, reviewed.model_dump_json())]:
            router.send(names[CRIME_DESK.name], key=key.encode(), value=value.encode()).get(timeout=30)
    finally:
        router.close()
    env = {"PATH": os.environ["PATH"], "CPI_TOPIC_PREFIX": topic_prefix,
           **read_env_file(principal_env_file(kafka_env_dir, DOWNSTREAM))}
    assert env["CPI_KAFKA_SASL_USERNAME"] == DOWNSTREAM

    lines = run_example(env, tmp_path)

    decided = [(line.split()[1], line.split()[5]) for line in lines if line.startswith("decision ")]
    assert sorted(decided) == sorted([(first.decision_id, "0"), (other.decision_id, "0"), (again.decision_id, "0"),
                                      (other.decision_id, "1")])
    assert decided.index((first.decision_id, "0")) < decided.index((again.decision_id, "0"))  # one partition
    status = {(line.split()[1], line.split()[5]): line.split(maxsplit=7)[7] for line in lines
              if line.startswith("decision ")}
    assert status[(other.decision_id, "0")] == "provisional, flagged"
    assert status[(other.decision_id, "1")] == "reviewed" and status[(first.decision_id, "0")] == "provisional"
    assert sum(line.startswith("not a v1 decision") for line in lines) == 1
    latest = {line.split()[1]: (line.split()[2], line.split()[3]) for line in lines if line.startswith("latest ")}
    assert latest == {first.intel_id: (again.decision_id, "0"), other.intel_id: (other.decision_id, "1")}

    assert run_example(env, tmp_path) == []  # the group's offsets were committed after handling
