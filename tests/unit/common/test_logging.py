"""Logs never carry provenance, whoever writes them and however deep it is nested."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
import structlog

from services.common.logging import REMOVED, configure_logging, drop_provenance


def test_provenance_keys_are_replaced_at_any_depth() -> None:
    """drop_provenance replaces source, email, phone and organisation keys in nested dicts and lists."""
    event = {
        "event": "x",
        "source": {"name": "Ann"},
        "context": {"email": "ann@example.org", "items": [{"phone": "01632 960001", "ok": 1}]},
        "count": 3,
    }
    cleaned = drop_provenance(None, "info", event)
    assert cleaned["source"] == REMOVED
    assert cleaned["context"]["email"] == REMOVED
    assert cleaned["context"]["items"][0]["phone"] == REMOVED
    assert cleaned["context"]["items"][0]["ok"] == 1
    assert cleaned["count"] == 3


def test_configured_logging_writes_json_without_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    """Both structlog and plain stdlib loggers (faust, uvicorn) come out as JSON with provenance removed."""
    configure_logging("info", "json")
    structlog.get_logger("t").info("structlog_event", source={"email": "canary@x.example"}, stage="intake")
    logging.getLogger("faust.t").info("stdlib_event")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    events = {line["event"]: line for line in lines}
    assert events["structlog_event"]["source"] == REMOVED
    assert events["structlog_event"]["stage"] == "intake"
    assert "stdlib_event" in events
    assert "canary@x.example" not in json.dumps(lines)


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's shell is."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_lines_are_readable_and_libraries_speak_only_from_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default format (auto) and stderr a terminal, lines are rendered for a person, not as JSON, still
    without provenance, and faust's and httpx's INFO lines are not mixed into a command's output (their warnings
    are); the project's own INFO lines stay."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    configure_logging("info", "auto")
    structlog.get_logger("t").info("own_event", source={"email": "canary@x.example"})
    logging.getLogger("faust.app").info("faust_info")
    logging.getLogger("httpx").info("httpx_info")
    logging.getLogger("faust.app").warning("faust_warning")
    written = terminal.getvalue()
    assert "own_event" in written and "faust_warning" in written
    assert "faust_info" not in written and "httpx_info" not in written
    assert "canary@x.example" not in written
    assert not [line for line in written.splitlines() if line.startswith("{")]


def test_off_a_terminal_auto_is_json_with_every_library_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Piped or collected (stderr not a terminal), auto writes JSON, and library INFO lines are kept for the
    collector."""
    configure_logging("info", "auto")
    logging.getLogger("faust.app").info("faust_info")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert "faust_info" in {line["event"] for line in lines}
