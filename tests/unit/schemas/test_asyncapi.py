"""The AsyncAPI document for downstream systems: kept in step with the registry and the models, true to what
the workers do, and valid for the official AsyncAPI parser (which refuses a broken copy)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import DeadLetter, SanitisedIntel
from schemas.asyncapi import DOCUMENT, KEYS, document, rendered_document
from schemas.submission import Submission
from schemas.topics import ACCEPTED, ALL_TOPICS, DECIDED, DOWNSTREAM, OUTCOME_TOPICS, REJECTED
from services.common.envelope import PrivateKeyring, seal_to
from services.common.settings import RouterSettings
from services.intake.receiving import received_record
from services.intake.worker import make_handler as intake_handler
from services.router.domain import load_rules
from services.router.worker import make_handler
from tests.npm_helpers import npm_package
from tests.unit.intake.samples import valid_submission

PARSER_SCRIPT = Path(__file__).with_name("asyncapi_parse.js")
PARSER_VERSION = "3"


def test_the_checked_in_document_is_the_generated_one() -> None:
    """docs/asyncapi.yaml is exactly what `python -m schemas.asyncapi` writes now: a change to a topic or a
    model without regenerating it fails here."""
    assert DOCUMENT.read_text() == rendered_document()


def test_every_registry_topic_is_a_channel_with_its_partitions_retention_and_principals() -> None:
    """One channel per topic in the registry, with its partitions, cleanup policy, retention, writers and
    readers as the registry has them, and a message with a payload schema that resolves in the document."""
    doc = yaml.safe_load(DOCUMENT.read_text())
    assert set(doc["channels"]) == {spec.name for spec in ALL_TOPICS}
    for spec in ALL_TOPICS:
        channel = doc["channels"][spec.name]
        kafka = channel["bindings"]["kafka"]
        assert (channel["address"], kafka["partitions"]) == (spec.name, spec.partitions)
        sized = {} if spec.max_message_bytes is None else {"max.message.bytes": spec.max_message_bytes}
        assert kafka["topicConfiguration"] == {"cleanup.policy": [spec.cleanup_policy],
                                               "retention.ms": spec.retention_ms, **sized}
        assert (set(channel["x-cpi-writers"]), set(channel["x-cpi-readers"])) == (spec.writers, spec.readers)
        [ref] = [m["$ref"] for m in channel["messages"].values()]
        message = doc["components"]["messages"][ref.rsplit("/", 1)[1]]
        if spec.value_model is not None:
            schema = message["payload"]["$ref"].rsplit("/", 1)[1]
            assert doc["components"]["schemas"][schema]["title"] == spec.value_model.__name__


def test_downstream_systems_receive_exactly_the_topics_their_principal_may_read() -> None:
    """The operations are the downstream principal's: a receive on each topic the registry lets it read,
    which are the cpi.outcome.* topics, in its own consumer group."""
    operations = document()["operations"]
    readable = {spec.name for spec in ALL_TOPICS if DOWNSTREAM in spec.readers}
    assert readable == {DECIDED.name, *(spec.name for spec in OUTCOME_TOPICS.values())}
    assert {op["channel"]["$ref"].removeprefix("#/channels/") for op in operations.values()} == readable
    assert {op["action"] for op in operations.values()} == {"receive"}
    assert all(op["bindings"]["kafka"]["groupId"]["enum"] == [DOWNSTREAM] for op in operations.values())


def test_every_reference_in_the_document_resolves() -> None:
    """Every `$ref` points at something the document has (the models' `$defs` were moved into components)."""
    doc = document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        return [r for v in node for r in refs(v)] if isinstance(node, list) else []

    found = refs(doc)
    assert any(ref.startswith("#/components/schemas/") for ref in found)
    for ref in found:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_the_dead_letter_headers_are_the_ones_a_dead_letter_carries() -> None:
    """The dead-letter message's headers name exactly the headers `DeadLetter.to_headers` writes."""
    letter = DeadLetter(origin_topic="cpi.intel.sanitised.v1", origin_partition=2, origin_offset=41, stage="router",
                        error_code="decode_error", error="not JSON", dead_lettered_at=datetime.now(UTC))
    headers = document()["components"]["messages"]["DeadLetter"]["headers"]
    assert set(headers["properties"]) == {name for name, _ in letter.to_headers()}
    assert set(headers["required"]) == set(headers["properties"])


async def test_the_router_keys_every_decision_by_intel_id_as_the_contract_says() -> None:
    """The contract says decisions are keyed by intel_id; the router's own handler publishes each decision,
    on decided and on each outcome's topic, with the intel's id as the key."""
    intel = SanitisedIntel.model_validate({
        "intel_id": "0123456789abcdef0123456789abcdef", "received_on": "2026-11-20",
        "categories": ["drug_related_harm"], "how_known": "witnessed_directly", "lawful_basis": "safeguarding",
        "information": "Kai, 15, is dealing cannabis for an older man outside the chip shop on Mill Road.",
        "subjects": [{"role": "at_risk", "name": "Kai", "approx_age": 15}], "redaction_count": 0,
    })
    published = await make_handler(load_rules(), RouterSettings(second_opinion=False))(intel.model_dump_json().encode())
    assert len(published) >= 2  # decided and at least one outcome's topic
    for record in published:
        assert KEYS[record.topic.name][0] == "intel_id"
        assert record.key == json.loads(record.value)["intel_id"].encode() == intel.intel_id.encode()


@pytest.mark.parametrize("change", [{}, {"information": "too short"}])
async def test_the_intake_worker_keys_accepted_and_rejected_by_submission_id_as_the_contract_says(
    change: dict[str, Any],
) -> None:
    """The contract says accepted and rejected submissions are keyed by their submission_id:
    the intake worker's own handler keys an accepted and a rejected result with the record's id."""
    keyring = PrivateKeyring.generate("transport")
    base = received_record(Submission.model_validate(valid_submission()), keyring.recipient())
    # Sealed as the edge seals it, but with the change (an invalid one goes to rejected).
    sealed = seal_to(json.dumps(valid_submission(**change)).encode(), base.submission_id.encode(),
                     keyring.recipient())
    record = base.model_copy(update={"sealed_submission": sealed})
    [out] = await intake_handler(keyring)(record.model_dump_json().encode())
    assert out.topic is (REJECTED if change else ACCEPTED)
    assert KEYS[out.topic.name][0] == "submission_id"
    assert out.key == json.loads(out.value)["submission_id"].encode() == record.submission_id.encode()


# Each breakage, and the last part of the path the parser's error must point at.
BREAKAGES = {"unknown action": "action", "retention as text": "retention.ms", "dangling reference": "$ref"}


def _broken(doc: dict[str, Any], how: str) -> dict[str, Any]:
    broken = json.loads(json.dumps(doc))
    operation = next(iter(broken["operations"].values()))
    if how == "unknown action":
        operation["action"] = "subscribe"  # AsyncAPI 2's word, not 3.0's
    elif how == "retention as text":
        broken["channels"][DECIDED.name]["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] = "a year"
    elif how == "dangling reference":
        broken["components"]["messages"]["Decision"]["payload"] = {"$ref": "#/components/schemas/NoSuchModel"}
    return broken


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The official parser's verdict on docs/asyncapi.yaml ("checked in") and on copies broken in one place
    each, from one node process."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is needed to run the AsyncAPI parser (apt-get install nodejs npm)")
    modules = npm_package("@asyncapi/parser", PARSER_VERSION, why="to validate docs/asyncapi.yaml")
    folder = tmp_path_factory.mktemp("asyncapi")
    paths = {"checked in": DOCUMENT}
    for how in BREAKAGES:
        paths[how] = folder / f"{how.replace(' ', '-')}.yaml"
        paths[how].write_text(yaml.safe_dump(_broken(yaml.safe_load(DOCUMENT.read_text()), how), sort_keys=False))
    result = subprocess.run([node, str(PARSER_SCRIPT), *map(str, paths.values())], capture_output=True, text=True,
                            timeout=300, check=False, env={"NODE_PATH": str(modules), "PATH": str(Path(node).parent)})
    assert result.returncode == 0, result.stderr
    verdicts: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return {name: verdicts[str(path)] for name, path in paths.items()}


def test_the_asyncapi_parser_accepts_the_document(parsed: dict[str, dict[str, Any]]) -> None:
    """The official @asyncapi/parser parses docs/asyncapi.yaml with no error and no warning."""
    assert parsed["checked in"] == {"parsed": True, "errors": [], "warnings": []}


@pytest.mark.parametrize("how", list(BREAKAGES))
def test_the_asyncapi_parser_refuses_a_broken_copy(parsed: dict[str, dict[str, Any]], how: str) -> None:
    """The same document broken in one place does not parse, with an error at the broken place, so the check
    above is not one that passes anything."""
    verdict = parsed[how]
    assert not verdict["parsed"], verdict
    assert BREAKAGES[how] in [error["path"][-1] for error in verdict["errors"]], verdict
