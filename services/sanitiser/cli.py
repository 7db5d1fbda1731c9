"""`cpi sanitise FILE` (offline, the worker's own code, with the sanitiser's keys) and `cpi sealed
unseal|audit-verify|purge` (the unseal path's keys; key rotation is `cpi keys rotate`)."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from services.cli import read_lines, write_jsonl
from services.common.keys import load_auditor_keys, load_sanitiser_keys, load_unseal_keys
from services.common.settings import SanitiserSettings
from services.intake.domain import validate_submission
from services.sanitiser.adapters.audit_topic import read_anchored
from services.sanitiser.adapters.sealed_store import UnsealDenied, open_audit_log
from services.sanitiser.audit import compare_audit
from services.sanitiser.domain import load_scrub_config, sanitise
from services.sanitiser.residual import assess_residual_risk
from services.sanitiser.worker import open_store

# Exit codes of `cpi sanitise`, added when both happen (5); not 2 or 3, which every cpi command uses for an
# error and a refusal.
REJECTED_EXIT, HELD_EXIT = 1, 4


def _sanitise(args: argparse.Namespace) -> int:
    """JSON Lines of Submission in, SanitisedIntel out; each source sealed into the configured store.

    As in the worker, intel whose residual risk reaches the hold threshold is not written out: a
    `held` line on stderr gives its line, intel id and reason codes (never the text found).
    """
    settings = SanitiserSettings()
    store = open_store(settings, load_sanitiser_keys(settings).store)
    config = load_scrub_config()
    failures = held = 0
    try:
        for number, line in read_lines(args.file):
            try:
                data = json.loads(line)
            except ValueError:
                _report(number, [{"path": "", "code": "invalid_json", "message": "The line is not valid JSON."}])
                failures += 1
                continue
            validation = validate_submission(data)
            if validation.submission is None:
                _report(number, [issue.model_dump() for issue in validation.errors])
                failures += 1
                continue
            submission = validation.submission
            received_on = datetime.now(UTC).date()
            # Offline lines have no submission id of their own: each run seals each line afresh.
            intel_id = store.seal(uuid.uuid4().hex, submission.source, received_on)
            intel = sanitise(submission, submission.source, intel_id=intel_id, received_on=received_on, config=config)
            risk = assess_residual_risk(intel)
            if risk.holds(settings.hold_threshold):
                print(json.dumps({"line": number, "status": "held", "intel_id": intel_id, "reasons": list(risk.codes)}),
                      file=sys.stderr)
                held += 1
                continue
            write_jsonl([intel.model_dump_json()])
    finally:
        store.close()
    return (REJECTED_EXIT if failures else 0) + (HELD_EXIT if held else 0)


def _report(number: int, errors: list[dict[str, Any]]) -> None:
    print(json.dumps({"line": number, "status": "rejected", "errors": errors}), file=sys.stderr)


def _unseal(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    store = open_store(settings, load_unseal_keys(settings))
    try:
        source = store.unseal(args.intel_id, role=args.role, officer_id=args.officer_id, reason=args.reason)
    except UnsealDenied as exc:
        print(f"cpi: unseal refused ({exc.code}): {exc}. The attempt has been audited.", file=sys.stderr)
        return 3
    finally:
        store.close()
    print(source.model_dump_json(indent=2))
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    """The auditor's check: the database's audit log against the audit topic, every signature checked with the
    audit-signing key's public half (the only key this command holds). One JSON line on stdout; each problem
    also on stderr as `entry N: what is wrong`; exit 1 when there is any."""
    settings = SanitiserSettings()
    keys = load_auditor_keys(settings)
    log_only = open_audit_log(settings.sealed_store)
    try:
        stored = log_only.audit_entries()
    finally:
        log_only.close()
    report = compare_audit(stored, read_anchored(settings), keys)
    first = report.problems[0] if report.problems else None
    print(json.dumps({"ok": report.ok, "entries": report.entries, "anchored": report.anchored,
                      "first_bad": first.entry if first else None, "problem": first.problem if first else None,
                      "problems": [{"entry": p.entry, "problem": p.problem} for p in report.problems]}))
    for problem in report.problems:
        print(f"cpi: audit {'entry ' + str(problem.entry) if problem.entry else 'log'}: {problem.problem}",
              file=sys.stderr)
    return 0 if report.ok else 1


def _purge(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    store = open_store(settings, load_unseal_keys(settings))
    try:
        count = store.purge()
    finally:
        store.close()
    print(f"{count} records past their review date purged")
    return 0


def register(commands: Any) -> None:
    sanitise_cmd = commands.add_parser(
        "sanitise", help="offline: Submission JSON Lines in, SanitisedIntel out",
        description="Exit 0 when every line was sanitised; 1 if a line was rejected, 4 if one was held for "
                    "review (its intel not written), 5 if both.",
    )
    sanitise_cmd.add_argument("file", help="a JSON Lines file, or - for stdin")
    sanitise_cmd.set_defaults(run=_sanitise)

    sealed = commands.add_parser("sealed", help="the sealed provenance store (Intelligence Unit only)")
    actions = sealed.add_subparsers(dest="action", required=True)
    unseal = actions.add_parser("unseal", help="open one record's provenance (audited)")
    unseal.add_argument("intel_id")
    unseal.add_argument("--role", required=True, help="must be intelligence_unit")
    unseal.add_argument("--officer-id", required=True)
    unseal.add_argument("--reason", required=True, help="why, in writing (at least 20 characters)")
    unseal.set_defaults(run=_unseal)
    verify = actions.add_parser(
        "audit-verify", help="check the audit log against the audit topic (the auditor: public key only)",
        description="Compares the sealed store's audit entries with cpi.audit.sealed.v1 and checks every signature: "
                    "an edited, deleted or reordered entry, a chain recomputed without the audit-signing key and "
                    "an older copy of the database restored are each reported by entry. Exit 0 ok, 1 a problem.")
    verify.set_defaults(run=_audit_verify)
    purge = actions.add_parser("purge", help="remove records past their review date (audited)")
    purge.set_defaults(run=_purge)
