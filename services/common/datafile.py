"""Data files operations edit (the router's rules, the notifier's routing table): YAML read into a pydantic
model, where a bad file stops the process with its file and line named."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from services.common.errors import ConfigurationError

Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: Path, model: type[Model], what: str, context: Mapping[str, Any] | None = None) -> Model:
    """Read `path` as YAML and validate it as `model`; any problem raises ConfigurationError naming the file
    and the line of each problem (`what` says what the file is, e.g. "the routing rules"). A validator may
    point its own error at a place with a `path` ("rules.3.id") in its context."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{path}: cannot read {what}: {error}") from error
    try:
        # libyaml's loader where PyYAML was built with it: the same documents and errors, about ten times faster
        # (the router's rules took 0.7 s of every start in pure Python, and a restarted worker is down until
        # it has started: issue 14).
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 1
        raise ConfigurationError(f"{path}:{line}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}:1: {what} must be a mapping, see its format")
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as error:
        root = yaml.compose(text)
        problems = []
        for detail in error.errors(include_url=False, include_input=False):
            location: tuple[str | int, ...] = tuple(detail["loc"])
            found = detail.get("ctx") or {}
            if not location and "path" in found:
                location = tuple(int(p) if p.isdigit() else p for p in str(found["path"]).split("."))
            where = ".".join(str(part) for part in location) or "(top level)"
            problems.append(f"{path}:{line_of(root, location)}: {where}: {detail['msg']}")
        raise ConfigurationError(f"problems in {what}:\n" + "\n".join(problems)) from error


def line_of(node: yaml.Node | None, location: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest YAML node along `location` (pydantic's error path)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in location:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            continue  # pydantic adds parts (union members, validator names) that are not in the YAML
        node = child
        line = node.start_mark.line + 1
    return line
