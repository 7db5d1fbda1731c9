"""Logs never carry provenance, whoever writes them and however deep it is nested."""

from __future__ import annotations

import json
import logging

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
