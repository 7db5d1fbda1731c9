"""Compatibility of the v1 JSON Schemas with their last released copy (`python -m schemas.compat`).

`schemas/released/v1/` holds the schemas as last released to the systems that read or write v1. The
check compares each with what the models export now and lists every change that someone already holding
the released copy could not cope with. An empty list means v1 may ship; anything else needs a `.v2`.

Which changes break, and why both directions count:

- Consumers lag behind producers. A downstream system built on the released schema reads what the
  pipeline writes now, so nothing may appear that the released schema refuses: no new enum value (a
  strict reader rejects an outcome or category it has never seen), no wider type, longer string, larger
  bound or looser pattern, no property that was required and may now be missing.
- Records outlive schemas. The outcome and intel topics keep a year of records, which consumers replay
  with the schema they have now, so nothing may become refused that was written under the released one:
  no property newly required (old records lack it), no enum value removed, no narrower type or bound.
- A removed or renamed property breaks in both: readers relying on it lose it, and the released schemas
  forbid unknown properties, so the renamed one is refused. The same goes for the API body
  (`Submission`), where partners are the writers and the edge the reader.

So the one change that is compatible, beside wording (`title`, `description`, `examples`), is a new
optional property. It is, because the v1 contract (docs/asyncapi.yaml) tells readers to ignore
properties they do not know (and those validating with the released schemas, which refuse unknown
properties, to take the new release first), and old records simply lack it. Any other change to an existing property,
`default` included (a reader fills it into old records), is breaking: simple to apply, and safe whichever
side reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELEASED_DIR = Path(__file__).parent / "released" / "v1"
WORDING = frozenset({"title", "description", "examples", "$comment"})
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_ABSENT = object()  # a keyword a schema does not have (null is a value: `"default": null`)


@dataclass(frozen=True)
class Break:
    """One incompatible change: in which schema file, where (a property path), and what changed."""

    schema: str
    where: str
    change: str

    def __str__(self) -> str:
        return f"{self.schema}: {self.where or '(top level)'}: {self.change}"


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """`node` with its local `$ref` followed (siblings of the ref kept over the target's own keywords)."""
    while isinstance(node, dict) and "$ref" in node:
        target = root.get("$defs", {})[node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    return node


def _ref(node: Any) -> str | None:
    return node.get("$ref") if isinstance(node, dict) else None


def _listed(values: Any) -> str:
    return ", ".join(json.dumps(value) for value in values)


class _Comparison:
    def __init__(self, schema: str, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.schema, self.old_root, self.new_root = schema, old_root, new_root
        self.breaks: list[Break] = []
        self._visiting: set[tuple[str, str]] = set()

    def _break(self, where: str, change: str) -> None:
        self.breaks.append(Break(self.schema, where, change))

    def node(self, old: Any, new: Any, where: str) -> None:
        old_ref, new_ref = _ref(old), _ref(new)
        if old_ref and new_ref:
            # A definition pair is compared once: its breaks are reported where it is first used, and a
            # recursive model ends here.
            if (old_ref, new_ref) in self._visiting:
                return
            self._visiting.add((old_ref, new_ref))
        old, new = _resolve(old, self.old_root), _resolve(new, self.new_root)
        if not (isinstance(old, dict) and isinstance(new, dict)):
            if old != new:
                self._break(where, f"schema changed from {json.dumps(old)} to {json.dumps(new)}")
            return
        self._properties(old, new, where)
        for keyword in sorted((old.keys() | new.keys()) - WORDING - {"$defs", "properties", "required"}):
            before, after = old.get(keyword, _ABSENT), new.get(keyword, _ABSENT)
            if keyword in _SUBSCHEMA and isinstance(before, dict) and isinstance(after, dict):
                self.node(before, after, f"{where}{'[]' if keyword == 'items' else '{' + keyword + '}'}")
            elif (keyword in _SUBSCHEMA_LISTS and isinstance(before, list) and isinstance(after, list)
                  and len(before) == len(after)):
                for index, (one, other) in enumerate(zip(before, after, strict=True)):
                    self.node(one, other, f"{where}<{keyword} {index}>")
            elif keyword == "enum" and isinstance(before, list) and isinstance(after, list):
                added, removed = [v for v in after if v not in before], [v for v in before if v not in after]
                if added:
                    self._break(where, f"enum values added: {_listed(added)} (readers of the release refuse them)")
                if removed:
                    self._break(where, f"enum values removed: {_listed(removed)} (records already written "
                                       "carry them)")
            elif before is _ABSENT or after is _ABSENT:
                present = after if before is _ABSENT else before
                self._break(where, f"{keyword} {'added' if before is _ABSENT else 'removed'}: {json.dumps(present)}")
            elif before != after:
                self._break(where, f"{keyword} changed from {json.dumps(before)} to {json.dumps(after)}")

    def _properties(self, old: Mapping[str, Any], new: Mapping[str, Any], where: str) -> None:
        before, after = old.get("properties", {}), new.get("properties", {})
        required_before, required_after = set(old.get("required", [])), set(new.get("required", []))
        prefix = f"{where}." if where else ""
        for name in before:
            if name not in after:
                self._break(f"{prefix}{name}", "property removed (or renamed): readers relying on it lose it")
                continue
            if name in required_before and name not in required_after:
                self._break(f"{prefix}{name}", "no longer required: readers of the release refuse records "
                                               "without it")
            elif name in required_after and name not in required_before:
                self._break(f"{prefix}{name}", "newly required: records written under the release lack it")
            self.node(before[name], after[name], f"{prefix}{name}")
        for name in after:
            if name not in before and name in required_after:
                self._break(f"{prefix}{name}", "new required property: records written under the release "
                                               "lack it")


def breaking_changes(schema: str, released: Mapping[str, Any], current: Mapping[str, Any]) -> list[Break]:
    """Every change from the released JSON Schema to the current one that breaks v1 (pure)."""
    comparison = _Comparison(schema, released, current)
    comparison.node(dict(released), dict(current), "")
    return comparison.breaks


def check(released: Mapping[str, str], current: Mapping[str, str]) -> list[Break]:
    """Every break across the schema files (file name -> JSON text); a released schema that is gone breaks."""
    breaks = []
    for name, text in sorted(released.items()):
        if name not in current:
            breaks.append(Break(name, "", "schema removed: it was released in v1"))
        else:
            breaks.extend(breaking_changes(name, json.loads(text), json.loads(current[name])))
    return breaks


def released_schemas(folder: Path = RELEASED_DIR) -> dict[str, str]:
    """The released copies: file name -> JSON text."""
    return {path.name: path.read_text() for path in sorted(folder.glob("*.v1.json"))}


def main(argv: Sequence[str] | None = None) -> int:
    from schemas.export import rendered

    parser = argparse.ArgumentParser(prog="python -m schemas.compat", description=__doc__.splitlines()[0])
    parser.add_argument("--released", type=Path, default=RELEASED_DIR, help="the released copies' folder")
    parser.add_argument("--release", action="store_true",
                        help="when nothing breaks, make the current schemas the released copies")
    args = parser.parse_args(argv)
    released, current = released_schemas(args.released), rendered()
    breaks = check(released, current)
    for found in breaks:
        print(found, file=sys.stderr)
    if breaks:
        print(f"{len(breaks)} incompatible change(s) to v1: keep v1 as released and add a .v2", file=sys.stderr)
        return 1
    unreleased = sorted(set(current) - set(released))
    if args.release:
        args.released.mkdir(parents=True, exist_ok=True)
        for name, text in current.items():
            (args.released / name).write_text(text)
    elif unreleased:
        print(f"not released yet (--release adds them): {', '.join(unreleased)}")
    print(f"{len(released)} released v1 schema(s) compatible")
    return 0


if __name__ == "__main__":
    sys.exit(main())
