"""The offline and operator commands, run as a person runs them: `cpi sanitise | cpi assess -` (and what
`cpi sanitise` holds), `cpi sealed unseal|audit-verify|purge` with `cpi keys rotate`, and `cpi reassess` against a
real broker."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from schemas import Decision, Outcome, Priority, SanitisedIntel
from schemas.topics import AUDIT, DECIDED, OUTCOME_TOPICS, SANITISED
from services.router.domain import assess, load_rules
from services.router.model import load_model
from tests.kafka_helpers import produce, read_all

SOURCE = {"name": "Bernadette Quillfeather", "role": "School Nurse", "organisation": "Larkspur High School",
          "organisation_type": "health", "email": "b.quillfeather@larkspur.example", "phone": "01632 960 412"}


def submission(information: str, **extra: Any) -> dict[str, Any]:
    return {"source": SOURCE, "lawful_basis": "safeguarding",
            "urgency": {"immediate_risk": False, "crime_in_progress": False},
            "categories": ["child_sexual_exploitation"], "information": information,
            "how_known": "told_by_subject", **extra}


def cpi(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CPI_DATA_DIR": str(tmp_path)}


@pytest.fixture
def sanitised(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[SanitisedIntel]]:
    """`cpi sanitise` over three lines, the second of them invalid."""
    lines = [
        submission("I am the school nurse at Larkspur High School. Maya, 13, told me a man called Deano "
                   "sends her money and asked for photos.", subjects=[{"role": "at_risk", "name": "Maya Fenwick",
                                                                     "approx_age": 13}]),
        {"not": "a submission"},
        submission("Bernadette Quillfeather here (01632 960412): an older boyfriend picks Leah up after school "
                   "in a white van, registration KX19 ABC."),
    ]
    path = tmp_path / "subs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = cpi(env, "sanitise", str(path))
    return result, [SanitisedIntel.model_validate_json(line) for line in result.stdout.splitlines()]


def test_sanitise_writes_intel_without_provenance_and_reports_bad_lines(sanitised: Any) -> None:
    """Valid lines become SanitisedIntel with no trace of the source; an invalid line is reported on
    stderr with its line number and reasons, and the exit code says something was refused."""
    result, intel = sanitised
    assert result.returncode == 1
    assert len(intel) == 2
    assert "Maya" in intel[0].information and "Deano" in intel[0].information
    for value in ("Quillfeather", "Bernadette", "Larkspur", "960412", "960 412", "school nurse"):
        assert value.lower() not in result.stdout.lower()
    refused = json.loads(result.stderr.strip().splitlines()[-1])
    assert refused["line"] == 2 and refused["status"] == "rejected"
    assert {e["code"] for e in refused["errors"]} >= {"unknown_field"}


def _statuses(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith('{"line"')]


def test_sanitise_holds_a_line_with_residual_risk(env: dict[str, str], tmp_path: Path) -> None:
    """A line whose scrubbed text still holds an address that is no subject's (a third party's e-mail) is
    held, as the worker holds it: not written out, reported on stderr by line, intel id and reason codes
    only, and the exit code is 4 (5 when a line was also rejected)."""
    lines = [submission("Maya, 13, is picked up from school most days by a man in a white van."),
             submission("Leah, 14, has a new phone and cash; her aunt says ask jo.bloggs@riverside-lettings.co.uk "
                        "about it.")]
    path = tmp_path / "subs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = cpi(env, "sanitise", str(path))
    assert result.returncode == 4, result.stderr
    [intel] = [SanitisedIntel.model_validate_json(line) for line in result.stdout.splitlines()]
    assert "Maya" in intel.information
    [held] = _statuses(result.stderr)
    assert held == {"line": 2, "status": "held", "intel_id": held["intel_id"], "reasons": ["email_address"]}
    assert held["intel_id"] != intel.intel_id
    assert "jo.bloggs" not in result.stdout + result.stderr and "Leah" not in result.stdout + result.stderr

    path.write_text(path.read_text() + '{"not": "a submission"}\n')
    both = cpi(env, "sanitise", str(path))
    assert both.returncode == 5
    assert [entry["status"] for entry in _statuses(both.stderr)] == ["held", "rejected"]


def test_sanitise_then_assess_gives_a_decision_per_intel(env: dict[str, str], sanitised: Any) -> None:
    """`cpi sanitise FILE | cpi assess -` yields one Decision per intel, the same the router would make."""
    result, intel = sanitised
    assessed = cpi(env, "assess", "-", stdin=result.stdout)
    assert assessed.returncode == 0, assessed.stderr
    decisions = [Decision.model_validate_json(line) for line in assessed.stdout.splitlines()]
    assert [d.intel_id for d in decisions] == [i.intel_id for i in intel]
    assert decisions[0] == assess(intel[0], load_rules(), model=load_model())
    assert decisions[0].model_version == load_model().version
    assert "safeguarding" in decisions[0].outcomes


def test_assess_reports_a_line_that_is_not_intel(env: dict[str, str]) -> None:
    """A line that is not SanitisedIntel is reported with its number; the exit code is 1."""
    assessed = cpi(env, "assess", "-", stdin='{"intel_id": "nope"}\n')
    assert assessed.returncode == 1
    assert json.loads(assessed.stderr)["line"] == 1


@pytest.mark.kafka
def test_sealed_commands_unseal_audit_rotate_and_purge(
    env: dict[str, str], sanitised: Any, tmp_path: Path, kafka_bootstrap: str, topic_prefix: str,
    topic_factory: Callable[..., dict[str, str]],
) -> None:
    """Only the Intelligence Unit with an officer id and a reason can unseal (a refusal exits 3 and is
    audited, on the audit topic too); the audit log verifies against the topic, and fails once a row is deleted;
    rotating the store KEK and the audit key keeps records openable and the log verifiable."""
    _result, intel = sanitised
    topic_factory(AUDIT)
    env = {**env, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix}
    intel_id = intel[0].intel_id
    reason = ["--reason", "Re-contact needed to clarify the date of the incident."]
    refused = cpi(env, "sealed", "unseal", intel_id, "--role", "crime_desk", "--officer-id", "PC1234", *reason)
    assert refused.returncode == 3 and "audited" in refused.stderr
    assert "Quillfeather" not in refused.stdout + refused.stderr
    opened = cpi(env, "sealed", "unseal", intel_id, "--role", "intelligence_unit", "--officer-id", "DS42", *reason)
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["email"] == SOURCE["email"]

    verified = json.loads(cpi(env, "sealed", "audit-verify").stdout)
    assert verified["ok"] is True and verified["entries"] == verified["anchored"] == 2

    for purpose in ("store-kek", "audit"):
        rotated = cpi(env, "keys", "rotate", purpose)
        assert rotated.returncode == 0, rotated.stderr
        assert json.loads(rotated.stdout)["purpose"] == purpose
    assert json.loads(cpi(env, "sealed", "audit-verify").stdout)["ok"] is True
    again = cpi(env, "sealed", "unseal", intel_id, "--role", "intelligence_unit", "--officer-id", "DS42", *reason)
    assert json.loads(again.stdout)["name"] == SOURCE["name"]
    assert "0 records" in cpi(env, "sealed", "purge").stdout

    db = sqlite3.connect(tmp_path / "sealed.db")
    triggers = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for trigger in triggers:  # an attacker with the file can drop the append-only guards ...
        db.execute(f"DROP TRIGGER {trigger}")
    audit_table = next(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                       if "audit" in row[0] and "head" not in row[0])
    db.execute(f"DELETE FROM {audit_table} WHERE rowid = (SELECT MIN(rowid) + 1 FROM {audit_table})")  # noqa: S608
    db.commit()
    db.close()
    broken = cpi(env, "sealed", "audit-verify")  # ... but not hide what they did
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["ok"] is False
    assert "audit entry 2: entry 2 is missing from the database" in broken.stderr


def _intel(text: str, **extra: Any) -> SanitisedIntel:
    return SanitisedIntel.model_validate({
        "intel_id": uuid.uuid4().hex, "received_on": date.today().isoformat(), "categories": ["criminal_exploitation"],
        "information": text, "how_known": "told_by_subject", "lawful_basis": "safeguarding", "redaction_count": 0,
        **extra})


@pytest.mark.kafka
def test_reassess_publishes_only_changed_decisions(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], env: dict[str, str]
) -> None:
    """`cpi reassess` replays sanitised history through the rules and publishes a decision only where
    outcomes or priority changed (or none existed); a second run changes nothing. `--dry-run` first reports
    the same changes, with the model version and how many it would flag for review, and publishes nothing."""
    names = topic_factory(SANITISED, DECIDED, *OUTCOME_TOPICS.values())
    rules = load_rules()
    same = _intel("A 15-year-old boy is made to carry drugs to a flat by an older man; he is scared.",
                  subjects=[{"role": "at_risk", "approx_age": 15}])
    stale = _intel("A 14-year-old girl has a 24-year-old boyfriend who gives her cannabis and gifts.",
                   subjects=[{"role": "at_risk", "approx_age": 14}])
    undecided = _intel("Someone keeps spraying graffiti tags on the bus shelter on Elm Road every weekend.")
    for item in (same, stale, undecided):
        produce(kafka_bootstrap, names[SANITISED.name], item.model_dump_json().encode(), item.intel_id.encode())
    # Decisions are keyed by intel id, as the router publishes them: one intel's decisions stay in order.
    produce(kafka_bootstrap, names[DECIDED.name], assess(same, rules).model_dump_json().encode(),
            same.intel_id.encode())
    old = assess(stale, rules).model_copy(update={"outcomes": [Outcome.INTELLIGENCE_LOG], "priority": Priority.LOW})
    produce(kafka_bootstrap, names[DECIDED.name], old.model_dump_json().encode(), stale.intel_id.encode())
    run_env = {**env, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix}

    dry = cpi(run_env, "reassess", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["model_version"] == load_model().version
    assert report["unchanged"] == 1 and sum(v for k, v in report.items() if "->" in k) == 2
    assert 0 <= report["review_needed"] <= 3
    assert Counter(Decision.model_validate_json(r.value).intel_id
                   for r in read_all(kafka_bootstrap, names[DECIDED.name])) == {same.intel_id: 1, stale.intel_id: 1}

    first = cpi(run_env, "reassess")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["unchanged"] == 1
    assert sum(v for k, v in summary.items() if "->" in k) == 2
    published = Counter(Decision.model_validate_json(r.value).intel_id
                        for r in read_all(kafka_bootstrap, names[DECIDED.name]))
    assert published == {same.intel_id: 1, stale.intel_id: 2, undecided.intel_id: 1}
    second = json.loads(cpi(run_env, "reassess").stdout)
    assert second["unchanged"] == 3


@pytest.mark.kafka
def test_reassess_leaves_a_decision_a_handler_reviewed(
    kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]], env: dict[str, str]
) -> None:
    """An intel whose latest decision is a handler's amendment (issue 12 step 3) is not decided again by the rules,
    though they would decide otherwise: reassess counts it as kept and publishes nothing for it."""
    from tests.decision_helpers import review

    names = topic_factory(SANITISED, DECIDED, *OUTCOME_TOPICS.values())
    intel = _intel("A 14-year-old girl has a 24-year-old boyfriend who gives her cannabis and gifts.",
                   subjects=[{"role": "at_risk", "approx_age": 14}])
    produce(kafka_bootstrap, names[SANITISED.name], intel.model_dump_json().encode(), intel.intel_id.encode())
    draft = assess(intel, load_rules())
    amended = review(draft, outcomes=["intelligence_log"], priority="low").revised()
    for made in (draft, amended):
        produce(kafka_bootstrap, names[DECIDED.name], made.model_dump_json().encode(), intel.intel_id.encode())
    run = cpi({**env, "CPI_KAFKA_BOOTSTRAP": kafka_bootstrap, "CPI_TOPIC_PREFIX": topic_prefix}, "reassess")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["reviewed_kept"] == 1
    assert len(read_all(kafka_bootstrap, names[DECIDED.name])) == 2
