"""`cpi validate`, `cpi import` and `cpi submit`: JSON Lines in, through the same validation as the API.

- `cpi validate FILE` — offline, no Kafka: one result line per input line on stdout.
- `cpi import FILE` — straight onto the received topic (channel `import`), source sealed, with a
  progress bar and a summary on stderr; rejected lines are reported on stdout like `validate`.
- `cpi submit FILE` — POST each line to a running API; one result line each, summary on stderr.

FILE may be `-` for stdin. Exit status 0 when every line went through, 1 when any did not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from schemas import Channel, ValidationIssue
from services.common.errors import CpiError

PROGRESS_EVERY = 500  # lines between progress reports when stderr is not a terminal


def numbered_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines as bytes, so a line that is not UTF-8 is one bad line, not a crash."""
    try:
        handle: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as exc:
        raise CpiError(f"cannot read {path}: {exc.strerror}") from None
    try:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def _errors(issues: tuple[ValidationIssue, ...] | list[ValidationIssue]) -> list[dict[str, str]]:
    return [{"path": i.path, "code": i.code, "message": i.message} for i in issues]


def validate_line(number: int, raw: bytes) -> dict[str, Any]:
    """The `cpi validate` result for one line: accepted, or rejected with every problem."""
    from services.intake.domain import parse_json, validate_submission

    data, problem = parse_json(raw)
    if problem is not None:
        return {"line": number, "status": "rejected", "errors": _errors([problem])}
    validation = validate_submission(data)
    status = "accepted" if validation.accepted else "rejected"
    return {"line": number, "status": status, "errors": _errors(validation.errors)}


def _validate(args: argparse.Namespace) -> int:
    from services.cli import write_jsonl

    rejected = 0

    def results() -> Iterator[dict[str, Any]]:
        nonlocal rejected
        for number, raw in numbered_lines(args.file):
            result = validate_line(number, raw)
            rejected += result["status"] != "accepted"
            yield result

    write_jsonl(results(), sys.stdout)  # looked up now: the default was bound at import
    return 0 if rejected == 0 else 1


class Progress:
    """A progress bar on a terminal, a line now and then otherwise; always on stderr."""

    def __init__(self, total: int | None, out: IO[str]) -> None:
        self.total = total
        self.out = out
        self.tty = out.isatty()
        self.started = time.monotonic()

    def show(self, done: int, counts: Counter[str], *, final: bool = False) -> None:
        """Report `done` lines so far with the counts by status."""
        if not (self.tty or final or done % PROGRESS_EVERY == 0):
            return
        tally = ", ".join(f"{counts[k]} {k}" for k in ("sent", "duplicate", "rejected") if counts[k])
        if self.total:
            filled = int(30 * done / self.total)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}"
        else:
            bar = f"{done} lines"
        line = f"{bar}  {tally}"
        if self.tty:
            self.out.write(f"\r{line}\x1b[K" + ("\n" if final else ""))
        elif final or done % PROGRESS_EVERY == 0:
            self.out.write(line + "\n")
        self.out.flush()


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    return sum(1 for _ in numbered_lines(path))


async def import_lines(path: str, settings: Any, *, publisher: Any = None, out: IO[str] | None = None,
                       err: IO[str] | None = None) -> Counter[str]:
    """Send each valid line to the received topic as channel `import`; report rejected lines on `out`."""
    out = out or sys.stdout
    from services.cli import write_jsonl
    from services.common.keys import load_edge_keys
    from services.intake.domain import parse_json
    from services.intake.idempotency import IMPORT_PRINCIPAL, IdempotencyStore, idempotency_path
    from services.intake.protection import edge_secret
    from services.intake.receiving import Intake, KafkaPublisher

    intake = Intake(transport_key=load_edge_keys(settings),
                    publisher=publisher or KafkaPublisher(settings),
                    idempotency=IdempotencyStore(idempotency_path(settings)), secret=edge_secret(settings))
    counts: Counter[str] = Counter()
    progress = Progress(_count_lines(path), err or sys.stderr)
    try:
        await intake.publisher.start()
    except Exception as exc:  # aiokafka's connection errors: say where, not a traceback
        intake.idempotency.close()
        raise CpiError(f"cannot reach Kafka at {settings.bootstrap}: {type(exc).__name__}") from None
    try:
        done = 0
        for number, raw in numbered_lines(path):
            data, problem = parse_json(raw)
            answer = None if problem else await intake.receive(data, Channel.IMPORT, IMPORT_PRINCIPAL)
            if answer is not None and answer.status == 503:
                raise CpiError(f"line {number}: the broker did not take the record; {done} lines done. "
                               "Lines with an idempotency_key can be re-imported safely.")
            if answer is not None and answer.receipt is not None:
                counts["duplicate" if answer.duplicate else "sent"] += 1
            else:
                counts["rejected"] += 1
                issues = [problem] if problem else list(answer.problems if answer else ())
                write_jsonl([{"line": number, "status": "rejected", "errors": _errors(issues)}], out)
            done += 1
            progress.show(done, counts)
        progress.show(done, counts, final=True)
    finally:
        await intake.publisher.stop()
        intake.idempotency.close()
    return counts


def _import(args: argparse.Namespace) -> int:
    from services.common.logging import configure_logging
    from services.common.settings import IntakeSettings

    settings = IntakeSettings()
    # Logs go to stderr, and per-line info would drown the progress bar: warnings and worse only.
    configure_logging("warning" if settings.log_level in {"debug", "info"} else settings.log_level,
                      settings.log_format)
    counts = asyncio.run(import_lines(args.file, settings))
    total = sum(counts.values())
    print(f"import: {total} lines, {counts['sent']} sent, {counts['duplicate']} already sent (same "
          f"idempotency key), {counts['rejected']} rejected", file=sys.stderr)
    return 0 if counts["rejected"] == 0 else 1


def submit_lines(path: str, url: str, *, out: IO[str] | None = None, client: Any = None,
                 max_wait: float = 60.0, api_key: str | None = None) -> Counter[str]:
    """POST each line to the API as it is, as the partner whose `api_key` it is; write one result per
    line; wait out 429s as asked."""
    out = out or sys.stdout
    import httpx

    from services.cli import write_jsonl

    endpoint = url.rstrip("/") + "/api/v1/submissions"
    http = client or httpx.Client(timeout=30.0)
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    counts: Counter[str] = Counter()
    try:
        for number, raw in numbered_lines(path):
            for _attempt in range(5):
                try:
                    response = http.post(endpoint, content=raw, headers=headers)
                except httpx.HTTPError as exc:
                    raise CpiError(f"cannot reach the API at {url}: {type(exc).__name__}") from None
                if response.status_code != 429:
                    break
                time.sleep(min(float(response.headers.get("retry-after", "1") or 1), max_wait))
            result: dict[str, Any] = {"line": number, "http_status": response.status_code}
            try:
                body = response.json()
            except ValueError:
                body = {}
            if response.status_code == 202:
                result.update(status="received", receipt_id=body.get("receipt_id"))
            else:
                result.update(status="rejected", errors=body.get("errors", []))
            counts[result["status"]] += 1
            write_jsonl([result], out)
    finally:
        if client is None:
            http.close()
    return counts


def _submit(args: argparse.Namespace) -> int:
    from services.common.settings import IntakeSettings

    key = IntakeSettings().api_key
    counts = submit_lines(args.file, args.url, api_key=key.get_secret_value() if key else None)
    print(f"submit: {sum(counts.values())} lines, {counts['received']} received, {counts['rejected']} rejected",
          file=sys.stderr)
    return 0 if counts["rejected"] == 0 else 1


def register(commands: Any) -> None:
    """Add `validate`, `import` and `submit` to the `cpi` command."""
    validate = commands.add_parser("validate", help="check submissions (JSON Lines) offline, one result per line")
    validate.add_argument("file", help="a JSON Lines file, or - for stdin")
    validate.set_defaults(run=_validate)

    bulk = commands.add_parser("import", help="put submissions (JSON Lines) on the received topic")
    bulk.add_argument("file", help="a JSON Lines file, or - for stdin")
    bulk.set_defaults(run=_import)

    submit = commands.add_parser("submit", help="POST submissions (JSON Lines) to a running intake API "
                                 "(as the partner whose key is CPI_API_KEY)")
    submit.add_argument("file", help="a JSON Lines file, or - for stdin")
    submit.add_argument("--url", default="http://127.0.0.1:8080", help="the API's base URL")
    submit.set_defaults(run=_submit)
    register_api_keys(commands)


def _api_key(args: argparse.Namespace) -> int:
    from services.common.settings import IntakeSettings
    from services.intake.partners import add_partner

    path = IntakeSettings().api_keys_file
    if path is None:
        raise CpiError("set CPI_API_KEYS_FILE to the partners' keys file first")
    print(add_partner(path, args.partner))
    print(f"API key for {args.partner}: shown once, only its SHA-256 is kept in {path}. Restart `cpi api` "
          "to let it in.", file=sys.stderr)
    return 0


def register_api_keys(commands: Any) -> None:
    """Add `api-key add PARTNER` to the `cpi` command."""
    api_key = commands.add_parser("api-key", help="give a partner system an API key for the intake API")
    actions = api_key.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a new key for PARTNER (replacing any it had), printed once")
    add.add_argument("partner", help="the partner's id: lower-case letters, digits, '.', '_', '-'")
    add.set_defaults(run=_api_key)
