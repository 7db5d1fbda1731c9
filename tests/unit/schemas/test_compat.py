"""The v1 compatibility check: today's schemas against the released copies, every kind of incompatible change
refused, and the one compatible kind (a new optional property, or wording) let through."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest

from schemas.base import CpiModel
from schemas.compat import Break, breaking_changes, check, main, released_schemas
from schemas.export import EXPORTED, rendered

DECISION = "Decision.v1.json"
Schema = dict[str, Any]


def released_decision() -> Schema:
    schema: Schema = json.loads(released_schemas()[DECISION])
    return schema


def test_the_current_schemas_are_compatible_with_the_released_v1() -> None:
    """Every schema the models export now can be read by whoever holds the released v1 copy, and the
    other way round (this is the check a change to a model has to pass)."""
    assert check(released_schemas(), rendered()) == []


def test_every_exported_contract_has_a_released_copy() -> None:
    """Each v1 contract the models export has been released, so the check covers all of them."""
    assert set(released_schemas()) == {f"{model.__name__}.v1.json" for model in EXPORTED}


def _defs(schema: Schema, name: str) -> Schema:
    definition: Schema = schema["$defs"][name]
    return definition


def _remove(schema: Schema) -> None:
    del schema["properties"]["rules_version"]
    schema["required"].remove("rules_version")


def _rename(schema: Schema) -> None:
    schema["properties"]["intelligence_id"] = schema["properties"].pop("intel_id")
    schema["required"] = ["intelligence_id" if name == "intel_id" else name for name in schema["required"]]


def _retype_nested(schema: Schema) -> None:
    _defs(schema, "Thrive")["properties"]["threat"] = {"type": "integer", "title": "Threat"}


def _optional_to_required(schema: Schema) -> None:
    schema["required"].append("model_version")


def _required_to_optional(schema: Schema) -> None:
    schema["required"].remove("priority")


def _new_required(schema: Schema) -> None:
    schema["properties"]["reviewed_by"] = {"type": "string", "maxLength": 64}
    schema["required"].append("reviewed_by")


def _enum_added(schema: Schema) -> None:
    _defs(schema, "Outcome")["enum"].append("referral")


def _enum_removed(schema: Schema) -> None:
    _defs(schema, "Priority")["enum"].remove("none")


def _longer(schema: Schema) -> None:
    schema["properties"]["rules_version"]["maxLength"] = 128


def _shorter(schema: Schema) -> None:
    _defs(schema, "SanitisedIntel")["properties"]["information"]["maxLength"] = 500


def _open(schema: Schema) -> None:
    schema["additionalProperties"] = True


def _nullable(schema: Schema) -> None:
    schema["properties"]["priority"] = {"anyOf": [{"$ref": "#/$defs/Priority"}, {"type": "null"}]}


def _default(schema: Schema) -> None:
    schema["properties"]["review"]["default"] = {"needed": False}


INCOMPATIBLE: dict[str, tuple[Callable[[Schema], None], str, str]] = {
    "a property removed": (_remove, "rules_version", "property removed"),
    "a property renamed": (_rename, "intel_id", "property removed"),
    "a nested property's type changed": (_retype_nested, "thrive.threat", "type changed"),
    "an optional property made required": (_optional_to_required, "model_version", "newly required"),
    "a required property made optional": (_required_to_optional, "priority", "no longer required"),
    "a new required property": (_new_required, "reviewed_by", "new required property"),
    "an enum value added": (_enum_added, "outcomes[]", "enum values added"),
    "an enum value removed": (_enum_removed, "priority", "enum values removed"),
    "a longer string allowed": (_longer, "rules_version", "maxLength changed"),
    "a nested string shortened": (_shorter, "intel.information", "maxLength changed"),
    "unknown properties allowed": (_open, "", "additionalProperties changed"),
    "a required value made nullable": (_nullable, "priority", "anyOf added"),
    "a default changed": (_default, "review", "default changed"),
}


@pytest.mark.parametrize("name", list(INCOMPATIBLE))
def test_an_incompatible_change_to_a_released_schema_is_refused(name: str) -> None:
    """Each kind of change existing readers or existing records cannot survive is reported, at the
    property it touches."""
    change, where, what = INCOMPATIBLE[name]
    current = released_decision()
    change(current)
    breaks = breaking_changes(DECISION, released_decision(), current)
    assert any(b.where == where and b.change.startswith(what) for b in breaks), breaks


def test_a_new_optional_property_and_new_wording_are_compatible() -> None:
    """Adding an optional property (at the top and in a nested model) and rewording titles and
    descriptions breaks nothing."""
    current = released_decision()
    current["properties"]["note"] = {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
                                     "default": None}
    _defs(current, "SanitisedIntel")["properties"]["area_code"] = {"type": "string", "maxLength": 8}
    current["description"] = "Reworded."
    _defs(current, "Thrive")["properties"]["harm"]["title"] = "Harm (reworded)"
    assert breaking_changes(DECISION, released_decision(), current) == []


class ReleasedGrading(CpiModel):
    source_evaluation: Literal[1, 2, 3]
    handling_code: Literal["P", "C"]


class GradingWithANote(CpiModel):
    source_evaluation: Literal[1, 2, 3]
    handling_code: Literal["P", "C"]
    note: str | None = None


class GradingWithANewCode(CpiModel):
    source_evaluation: Literal[1, 2, 3]
    handling_code: Literal["P", "C", "X"]


def test_the_check_reads_what_pydantic_exports_for_a_changed_model() -> None:
    """On real pydantic exports: a model that gains an optional field is compatible with its release,
    one whose Literal gains a value is not."""
    released = ReleasedGrading.model_json_schema()
    assert breaking_changes("Grading", released, GradingWithANote.model_json_schema()) == []
    [found] = breaking_changes("Grading", released, GradingWithANewCode.model_json_schema())
    assert (found.where, found.change.split(":")[0]) == ("handling_code", "enum values added")


def test_a_released_schema_that_is_gone_breaks_and_a_new_one_does_not() -> None:
    """Dropping a released contract breaks its readers; a contract not yet released is not checked."""
    released = released_schemas()
    current = {name: text for name, text in rendered().items() if name != DECISION}
    assert check(released, current) == [Break(DECISION, "", "schema removed: it was released in v1")]
    assert check({k: v for k, v in released.items() if k != DECISION}, rendered()) == []


def test_the_command_fails_on_an_incompatible_change_and_releases_only_when_compatible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m schemas.compat` exits 0 against the real released copies, exits 1 naming the change when
    a released copy differs incompatibly (and then `--release` overwrites nothing), and `--release` into an
    empty folder writes today's schemas."""
    assert main([]) == 0
    folder = tmp_path / "v1"
    folder.mkdir()
    for name, text in released_schemas().items():
        (folder / name).write_text(text)
    widened = released_decision()
    _enum_removed(widened)  # released without "none": today's schema adds it back
    (folder / DECISION).write_text(json.dumps(widened))
    assert main(["--released", str(folder), "--release"]) == 1
    assert "Decision.v1.json: priority: enum values added: \"none\"" in capsys.readouterr().err
    assert json.loads((folder / DECISION).read_text()) == widened
    fresh = tmp_path / "fresh"
    assert main(["--released", str(fresh), "--release"]) == 0
    assert released_schemas(fresh) == rendered()
