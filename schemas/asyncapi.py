"""The AsyncAPI 3.0 document for downstream systems, generated from the topic registry and the exported JSON
Schemas (`python -m schemas.asyncapi` writes docs/asyncapi.yaml; a test keeps the checked-in copy in step).

It describes every topic as a channel (name, partitions, retention and cleanup policy, who writes and reads
it, what its key is, how records are ordered) and its value as a message whose payload is the model's JSON
Schema. Operations are the downstream principal's: it receives from the `cpi.outcome.*` topics the registry
lets it read. What the key is per topic is stated here, beside the workers that choose it; everything else
comes from `schemas.topics` and `schemas.export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from schemas.deadletter import HEADER_PREFIX
from schemas.export import rendered
from schemas.topics import (
    ACCEPTED,
    ALL_TOPICS,
    AUDIT,
    DAY_MS,
    DEADLETTER,
    DECIDED,
    DELIVERED,
    DOWNSTREAM,
    HELD,
    OUTCOME_TOPICS,
    RECEIVED,
    REJECTED,
    RETRY,
    REVIEWED,
    SANITISED,
    TopicSpec,
)

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
CONTRACT_VERSION = "1.0.0"  # the v1 topics; a change the compatibility check refuses needs v2 topics
ID_PATTERN = "^[0-9a-f]{32}$"

# What each topic's Kafka key is (the workers set it: services/*/worker.py, services/intake/receiving.py,
# services/sanitiser/held_cli.py, services/router/cli.py). Records with one key stay on one partition, in order.
_INTEL_KEY = ("intel_id", "the record's `intel_id` (UTF-8).")
_SUBMISSION_KEY = ("submission_id", "the record's `submission_id` (UTF-8), a random id the edge gives each "
                                    "submission; nothing past the sanitiser carries it.")
KEYS: dict[str, tuple[str | None, str]] = {
    RECEIVED.name: _SUBMISSION_KEY,
    ACCEPTED.name: _SUBMISSION_KEY,
    REJECTED.name: _SUBMISSION_KEY,
    SANITISED.name: _INTEL_KEY,
    HELD.name: _INTEL_KEY,
    DECIDED.name: _INTEL_KEY,
    **{spec.name: _INTEL_KEY for spec in OUTCOME_TOPICS.values()},
    REVIEWED.name: ("intel_id", "the `intel_id` of the reviewed decision (UTF-8)."),
    DELIVERED.name: ("intel_id", "the `intel_id` of the decision the notification was for (UTF-8)."),
    RETRY.name: ("intel_id", "the `intel_id` of the waiting notification's decision (UTF-8)."),
    DEADLETTER.name: (None, "the original record's key, unchanged."),
    AUDIT.name: (None, "the entry's `seq` (UTF-8 decimal)."),
}

INFO = """\
The Kafka topics of the CPI (Community Partnership Information) pipeline, for the police systems that
consume its decisions. Generated from the topic registry (`schemas/topics.py`) and the v1 JSON Schemas
(`schemas/json/`) by `python -m schemas.asyncapi`; do not edit by hand.

**What downstream systems read.** The `cpi.outcome.*` topics: `cpi.outcome.decided.v1` carries every
decision, and each outcome's topic (`intelligence-log`, `crime-desk`, `safeguarding`, `no-action`) carries
the decisions that include that outcome. The value is a `Decision` (JSON, UTF-8), the key its `intel_id`.
Connect as the principal `cpi-downstream` (TLS with SASL/SCRAM-SHA-512), in the consumer group
`cpi-downstream` (with the deployment's topic prefix in front, if it has one, as for the topic names).
That principal may read only these topics and that group.

**Delivery: at least once.** A decision may arrive more than once (a stage that stops before committing
publishes its last batch again). A repeat has the same `decision_id`: the id follows from the intel and the
versions of the rules and model that decided it (`intel_id`, `rules_version`, `model_version`), and the same
`revision`, so deduplicate by `decision_id` and `revision`. There are no transactions: read with any isolation
level.

**Ordering per intel.** Records are keyed by `intel_id`, so every decision about one intel is on one
partition, in the order the router wrote it. There is no order between intels, and none that follows
when information arrived. When the routing rules or the model change, `cpi reassess` publishes a new
decision (a new `decision_id`) for each intel whose decision changed: the latest decision for an intel is
the last one with an unseen `decision_id` on its partition. Keep that one per `intel_id`, and of a decision its
highest `revision`. An outcome's topic receives the decisions that include its outcome, and a reviewed revision
that removes it (its `reviewed.previous.outcomes` has it, its `outcomes` not); a later reassessed decision that
drops the outcome is not on it: systems that must know when an intel leaves their outcome read
`cpi.outcome.decided.v1`.

**Provisional and reviewed.** A decision whose `review.needed` is true is provisional: the statistical
second opinion disagrees with the rules on an outcome or on high priority, or the rules' evidence is thin,
and a handler in the Intelligence Unit should check it before it is relied on (`review.reasons` give stable
codes and plain sentences). A decision with no `review`, or `review.needed` false, was not flagged.
Every decision the router drafts is `revision` 0 with no `reviewed` block (decisions from before revisions
lack both: read them as 0). When a handler in the Intelligence Unit confirms or amends it, the router publishes
the same `decision_id` again as the next revision (1, 2, ...) with `reviewed`: `action` (`confirmed`: the same
outcomes, priority and grading; `amended`), the reviewing officer's id, their reason, the day (`reviewed_on`, a
date) and `previous` (the outcomes, priority and grading of the revision before). A decision is provisional
exactly while `reviewed` is absent; keep the highest revision per `decision_id`.

**Times.** Past the edge nothing carries an exact time: `intel.received_on` is the UTC day, and record
timestamps are that day's midnight (UTC). Do not order by timestamp within a day.

**Source protection.** Nothing on these topics identifies who shared the information, and no id on them
joins an intel to its submission. Only the Intelligence Unit may re-contact a source.

**Compatibility.** Within v1 the only change made to a message is a new optional property (or wording):
ignore properties you do not know. The v1 JSON Schemas and the `schemas` models refuse unknown
properties, so a reader that validates with them takes each new release of them before the pipeline
publishes with it. Anything else (a property removed or renamed, a type, enum or constraint changed, a
property newly required or no longer required) comes as new `.v2` topics; the check against
`schemas/released/v1/` (`python -m schemas.compat`) refuses it on v1.
"""


def _retention(spec: TopicSpec) -> str:
    if spec.retention_ms < 0:
        return "kept until compacted away (no time limit)" if spec.cleanup_policy == "compact" else "kept forever"
    days = spec.retention_ms / DAY_MS
    return f"kept {days:g} days" if days.is_integer() else f"kept {spec.retention_ms} ms"


def _names(principals: frozenset[str]) -> str:
    return ", ".join(f"`{p}`" for p in sorted(principals)) or "no service principal"


def _channel_description(spec: TopicSpec) -> str:
    field, key = KEYS[spec.name]
    order = ("Records with one key are on one partition, in the order written; there is no order across keys."
             if field else "Records keep their original key, so no order beyond the original topic's holds.")
    lines = [
        f"Written by {_names(spec.writers)}; read by {_names(spec.readers)} (the ACLs; the administrator, a "
        "super user, may read and write every topic).",
        f"Key: {key}",
        order,
        f"{spec.partitions} partitions, cleanup policy `{spec.cleanup_policy}`, {_retention(spec)}; "
        "3 replicas and min.insync.replicas 2 in production.",
    ]
    if spec in OUTCOME_TOPICS.values():
        lines.append("Only decisions that include this outcome (and reviewed revisions that remove it); "
                     "cpi.outcome.decided.v1 has every decision.")
    return "\n".join(lines) + "\n"


def _message_name(spec: TopicSpec) -> str:
    return spec.value_model.__name__ if spec.value_model else "DeadLetter"


def _hoist(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The model's schema with its `$defs` moved into `components` (refs rewritten to point there)."""
    text = json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')
    moved: dict[str, Any] = json.loads(text)
    for name, definition in moved.pop("$defs", {}).items():
        if components.setdefault(name, definition) != definition:
            raise ValueError(f"two models define {name} differently; the AsyncAPI document needs one")
    return moved


def _dead_letter_headers(dead_letter: dict[str, Any]) -> dict[str, Any]:
    """The dead-letter headers as `DeadLetter.to_headers` writes them: each field as a UTF-8 string."""
    properties = {}
    for name, field in dead_letter["properties"].items():
        header: dict[str, Any] = {"type": "string", "description": field.get("title", name)}
        if field.get("type") == "integer":
            header["pattern"] = "^[0-9]+$"
        for keyword in ("format", "minLength", "maxLength"):
            if keyword in field:
                header[keyword] = field[keyword]
        properties[HEADER_PREFIX + name.replace("_", "-")] = header
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _key_schema(spec: TopicSpec) -> dict[str, Any]:
    field, key = KEYS[spec.name]
    description = key[0].upper() + key[1:]
    if field is None:
        return {"type": "string", "format": "binary", "description": description}
    return {"type": "string", "pattern": ID_PATTERN, "description": description}


def document() -> dict[str, Any]:
    """The whole AsyncAPI document as a mapping (pure: the registry and the models only)."""
    missing = [spec.name for spec in ALL_TOPICS if spec.name not in KEYS]
    if missing:
        raise ValueError(f"say what the key is for {', '.join(missing)} in schemas/asyncapi.py KEYS")
    json_schemas = {name.removesuffix(".v1.json"): json.loads(text) for name, text in rendered().items()}
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in ALL_TOPICS:
        name = _message_name(spec)
        if name not in messages:
            message: dict[str, Any] = {"name": name, "title": name}
            if spec.value_model is None:
                message |= {
                    "summary": "A record a stage could not process: its original bytes, and why in headers.",
                    "contentType": "application/octet-stream",
                    "headers": _dead_letter_headers(json_schemas["DeadLetter"]),
                    "payload": {"type": "string", "format": "binary",
                                "description": "The original record's value, unchanged (it may be any topic's "
                                               "value, sealed submissions included: the administrator's only)."},
                }
            else:
                schemas[name] = _hoist(json_schemas[name], schemas)
                message |= {"summary": (spec.value_model.__doc__ or name).strip().splitlines()[0],
                            "contentType": "application/json",
                            "payload": {"$ref": f"#/components/schemas/{name}"}}
            message["bindings"] = {"kafka": {"key": _key_schema(spec), "bindingVersion": "0.5.0"}}
            messages[name] = message
        channels[spec.name] = {
            "address": spec.name,
            "description": _channel_description(spec),
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"kafka": {"partitions": spec.partitions,
                                   "topicConfiguration": {"cleanup.policy": [spec.cleanup_policy],
                                                          "retention.ms": spec.retention_ms,
                                                          **({} if spec.max_message_bytes is None else
                                                             {"max.message.bytes": spec.max_message_bytes})},
                                   "bindingVersion": "0.5.0"}},
            "x-cpi-writers": sorted(spec.writers),
            "x-cpi-readers": sorted(spec.readers),
        }
        if DOWNSTREAM in spec.readers:
            operation = "receive" + "".join(part.title() for part in spec.name.split(".")[2].split("-"))
            operations[operation] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{spec.name}"},
                "summary": f"A downstream system reads {spec.name}.",
                "description": "Deduplicate by `decision_id`; keep the latest decision per `intel_id` (the key).",
                "messages": [{"$ref": f"#/channels/{spec.name}/messages/{name}"}],
                "bindings": {"kafka": {"groupId": {"type": "string", "enum": [DOWNSTREAM]},
                                       "bindingVersion": "0.5.0"}},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "CPI pipeline topics", "version": CONTRACT_VERSION, "description": INFO},
        "defaultContentType": "application/json",
        "servers": {
            "cluster": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "The deployment's Kafka (`make run` starts one on 127.0.0.1:9092).",
                "variables": {"bootstrap": {"default": "127.0.0.1:9092",
                                            "description": "host:port of a bootstrap broker"}},
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"scram": {"type": "scramSha512",
                                          "description": "TLS, then SASL/SCRAM-SHA-512 as your principal."}},
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the descriptions read as written."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _text)


def rendered_document() -> str:
    """docs/asyncapi.yaml exactly as it should be on disk."""
    header = "# Generated by `python -m schemas.asyncapi` from schemas/topics.py and schemas/json/; do not edit.\n"
    return header + yaml.dump(document(), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def main() -> None:
    DOCUMENT.write_text(rendered_document())
    print(DOCUMENT)


if __name__ == "__main__":
    main()
