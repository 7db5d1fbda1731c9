"""Loading the rules file: the default validates, and a broken file stops start-up naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.errors import ConfigurationError
from services.router.domain import DEFAULT_RULES_PATH, RoutingRules, load_rules

DEFAULT_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


def _line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigurationError) as raised:
        load_rules(path)
    return str(raised.value)


def test_default_rules_load() -> None:
    """The shipped rules file is valid, versioned, and is what load_rules() reads by default."""
    rules = load_rules()
    assert isinstance(rules, RoutingRules)
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", rules.version)
    assert f'version: "{rules.version}"' in DEFAULT_TEXT
    assert DEFAULT_RULES_PATH.name == "rules.yaml" and DEFAULT_RULES_PATH.parent.name == "router"
    assert load_rules(DEFAULT_RULES_PATH) == rules


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    """A YAML syntax error is reported with the file and the line of the error."""
    version = load_rules().version
    text = DEFAULT_TEXT.replace(f'version: "{version}"', f'version: "{version}\nbroken: [', 1)
    assert text != DEFAULT_TEXT
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert re.search(rf"{re.escape(str(path))}:\d+: not valid YAML", message)


def test_yaml_error_line_is_right(tmp_path: Path) -> None:
    """A bad indentation at a known line is reported at that line."""
    text = DEFAULT_TEXT.replace("  window_words: 5\n", "  window_words: 5\n   bad_indent: [\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    line = _line_of(text, "   bad_indent")
    assert any(f"{path}:{n}:" in message for n in (line, line + 1))


def test_unknown_outcome_names_the_line_of_the_rule_field(tmp_path: Path) -> None:
    """A rule with an outcome that does not exist is reported at the line of that outcome."""
    text = DEFAULT_TEXT.replace("    outcomes: [intelligence_log]\n", "    outcomes: [arrest_now]\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert f"{path}:{_line_of(text, 'outcomes: [arrest_now]')}:" in message
    assert "outcomes" in message


def test_unknown_lexicon_names_the_line_of_the_reference(tmp_path: Path) -> None:
    """A rule that uses a lexicon that is not defined is reported at the line of that reference."""
    text = DEFAULT_TEXT.replace("      text_any: [drug_supply]\n", "      text_any: [drug_suply]\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert f"{path}:{_line_of(text, 'text_any: [drug_suply]')}:" in message
    assert "drug_suply" in message


def test_unknown_field_in_a_rule_is_refused(tmp_path: Path) -> None:
    """A misspelt condition name is refused (not silently ignored) and its line is given."""
    text = DEFAULT_TEXT.replace("      has_location: true\n", "      has_locaton: true\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert f"{path}:{_line_of(text, 'has_locaton')}:" in message


def test_bad_regex_term_names_its_line(tmp_path: Path) -> None:
    """A lexicon term that is not a valid regular expression is reported at its line."""
    text = DEFAULT_TEXT.replace("    - shotting\n", "    - re:shott(ing\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    assert f"{path}:{_line_of(text, 're:shott(ing')}:" in message


def test_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    """Two rules with the same id are refused, naming the line of the second id."""
    text = DEFAULT_TEXT.replace("  - id: log.vehicle\n", "  - id: log.location\n", 1)
    path = _write(tmp_path, text)
    message = _load_error(path)
    second = text.index("  - id: log.location", text.index("  - id: log.location") + 1)
    assert "used twice" in message
    assert f"{path}:{text[:second].count(chr(10)) + 1}:" in message


def test_rule_that_does_nothing_is_refused(tmp_path: Path) -> None:
    """A rule with no outcomes, no priority and no no_action is refused."""
    text = DEFAULT_TEXT.replace(
        "      has_vehicle: true\n    outcomes: [intelligence_log]\n", "      has_vehicle: true\n", 1
    )
    path = _write(tmp_path, text)
    assert "must give outcomes" in _load_error(path)


def test_missing_grading_for_how_known_is_refused(tmp_path: Path) -> None:
    """Every how_known must have an intelligence assessment."""
    text = DEFAULT_TEXT.replace("    rumour_or_hearsay: D\n", "", 1)
    assert "rumour_or_hearsay" in _load_error(_write(tmp_path, text))


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- list\n"])
def test_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    """An empty file, a bare string or a list is refused at line 1."""
    path = _write(tmp_path, text)
    assert f"{path}:1:" in _load_error(path)


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A rules path that does not exist is a ConfigurationError naming the path."""
    path = tmp_path / "nowhere.yaml"
    assert str(path) in _load_error(path)
