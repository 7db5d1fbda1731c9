"""`cpi validate`, `cpi import` and `cpi submit`: JSON Lines in, one clear result per line out."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from schemas import Channel
from services.cli import main
from services.common.settings import IntakeSettings
from services.intake.cli import import_lines, submit_lines
from tests.unit.intake.samples import FakePublisher, received_count, valid_submission


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines) + b"\n")
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Five lines: valid, invalid, not JSON, blank (skipped), not UTF-8, urgent."""
    return write_lines(tmp_path / "subs.jsonl", [
        json.dumps(valid_submission()),
        json.dumps(valid_submission(information="short")),
        "{not json",
        "",
        b"\xff\xfe\x00",
        json.dumps(valid_submission(urgency={"immediate_risk": True, "crime_in_progress": False})),
    ])


def test_validate_gives_one_result_per_line(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each non-blank line gets {line, status, errors}; bad JSON and bad UTF-8 are errors, not crashes."""
    status = main(["validate", str(mixed)])
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [(r["line"], r["status"]) for r in results] == [
        (1, "accepted"), (2, "rejected"), (3, "rejected"), (5, "rejected"), (6, "rejected")]
    assert results[0]["errors"] == []
    assert results[1]["errors"] == [{"path": "/information", "code": "too_short",
                                     "message": "What you know must be at least 20 characters."}]
    assert results[2]["errors"][0]["code"] == "invalid_json"
    assert results[3]["errors"][0]["code"] == "invalid_json"
    assert results[4]["errors"][0]["code"] == "urgent_call_999"


def test_validate_reads_stdin_with_a_dash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`cpi validate -` reads JSON Lines from stdin and exits 0 when every line is accepted."""
    stdin = io.TextIOWrapper(io.BytesIO((json.dumps(valid_submission()) + "\n").encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["validate", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"line": 1, "status": "accepted", "errors": []}


def test_validate_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A file that does not exist gives a one-line error and exit status 2, not a traceback."""
    assert main(["validate", str(tmp_path / "absent.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cpi: cannot read")
    assert "Traceback" not in err


def test_import_sends_valid_lines_sealed_as_channel_import(mixed: Path, tmp_path: Path) -> None:
    """Valid lines go to the publisher, counted as channel import; rejected lines are reported; a summary
    is counted."""
    publisher = FakePublisher()
    before = received_count(Channel.IMPORT)
    out, err = io.StringIO(), io.StringIO()
    settings = IntakeSettings(data_dir=tmp_path / "data")
    counts = asyncio.run(import_lines(str(mixed), settings, publisher=publisher, out=out, err=err))
    assert counts == {"sent": 1, "rejected": 4}
    assert len(publisher.records) == 1  # the channel is counted at the edge only, never on the record
    assert received_count(Channel.IMPORT) == before + 1
    assert "Harriet" not in publisher.records[0].model_dump_json()
    assert [json.loads(line)["line"] for line in out.getvalue().splitlines()] == [2, 3, 5, 6]
    assert "5/5" in err.getvalue()


def test_import_twice_with_idempotency_keys_sends_once(tmp_path: Path) -> None:
    """Re-running an import whose lines carry idempotency keys sends nothing the second time."""
    path = write_lines(tmp_path / "keyed.jsonl", [json.dumps(valid_submission(idempotency_key=f"row-{i}"))
                                                  for i in range(3)])
    publisher = FakePublisher()
    settings = IntakeSettings(data_dir=tmp_path / "data")
    first = asyncio.run(import_lines(str(path), settings, publisher=publisher, out=io.StringIO(), err=io.StringIO()))
    again = asyncio.run(import_lines(str(path), settings, publisher=publisher, out=io.StringIO(), err=io.StringIO()))
    assert first == {"sent": 3}
    assert again == {"duplicate": 3}
    assert len(publisher.records) == 3


def test_submit_posts_each_line_and_reports_receipts(mixed: Path, client: TestClient) -> None:
    """Each line is POSTed as it is; 202s report a receipt, refusals their errors."""
    out = io.StringIO()
    counts = submit_lines(str(mixed), "http://testserver", out=out, client=client)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert counts == {"received": 1, "rejected": 4}
    assert results[0]["status"] == "received" and len(results[0]["receipt_id"]) == 32
    assert [r["http_status"] for r in results] == [202, 422, 400, 400, 422]
    assert results[1]["errors"][0]["code"] == "too_short"


def test_submit_sends_the_partners_api_key(mixed: Path, make_client: Callable[..., TestClient],
                                          partner_keys: dict[str, str]) -> None:
    """Without a key every line is refused 401; with the partner's key (CPI_API_KEY) lines go through."""
    client = make_client(api_key=None)
    refused = submit_lines(str(mixed), "http://testserver", out=io.StringIO(), client=client)
    assert refused == {"rejected": 5}
    sent = submit_lines(str(mixed), "http://testserver", out=io.StringIO(), client=client,
                        api_key=partner_keys["oakfield-trust"])
    assert sent == {"received": 1, "rejected": 4}


def test_submit_to_an_api_that_is_not_there_is_a_clear_error(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing listening, `cpi submit` says it cannot reach the API and exits 2."""
    path = write_lines(tmp_path / "one.jsonl", [json.dumps(valid_submission())])
    assert main(["submit", str(path), "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the API" in capsys.readouterr().err
