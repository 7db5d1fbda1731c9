"""`cpi assess FILE` (offline, the worker's own code) and `cpi reassess` (replay history through new rules)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas import Decision, SanitisedIntel
from schemas.topics import DECIDED, OUTCOME_TOPICS, SANITISED
from services.cli import read_lines, write_jsonl
from services.common.kafka.reading import read_to_end
from services.common.settings import RouterSettings
from services.router.corpora import DEFAULT_CORPORA_DIR
from services.router.domain import assess, load_rules
from services.router.model import DEFAULT_MODEL_PATH, second_opinion


def _assess(args: argparse.Namespace) -> int:
    """JSON Lines of SanitisedIntel in, Decision out; bad lines reported on stderr with their number."""
    settings = RouterSettings()
    rules = load_rules(Path(args.rules) if args.rules else settings.rules_path)
    model = second_opinion(settings)
    failures = 0
    for number, line in read_lines(args.file):
        try:
            intel = SanitisedIntel.model_validate_json(line)
        except ValidationError as exc:
            errors = [{"path": "/" + "/".join(str(p) for p in e["loc"]), "code": e["type"], "message": e["msg"]}
                      for e in exc.errors(include_input=False, include_url=False, include_context=False)]
            print(json.dumps({"line": number, "status": "rejected", "errors": errors}), file=sys.stderr)
            failures += 1
            continue
        write_jsonl([assess(intel, rules, source_evaluation=settings.source_evaluation, model=model).model_dump_json()])
    return 1 if failures else 0


def _read_topic(settings: RouterSettings, topic: str) -> list[Any]:
    consumer, records = read_to_end(settings, topic)
    consumer.close()
    return records


def changed(old: Decision | None, new: Decision) -> bool:
    """A decision changed when its outcomes or priority differ from the last one published."""
    return old is None or set(old.outcomes) != set(new.outcomes) or old.priority != new.priority


def _flagged(decision: Decision) -> bool:
    return decision.review is not None and decision.review.needed


def _label(decision: Decision) -> str:
    return "+".join(sorted(o.value for o in decision.outcomes)) + f"/{decision.priority.value}"


def _reassess(args: argparse.Namespace) -> int:
    """Replay every sanitised intel through the current rules; publish only decisions that changed."""
    from services.common.days import day_timestamp
    from services.common.kafka import clients

    settings = RouterSettings()
    rules = load_rules(Path(args.rules) if args.rules else settings.rules_path)
    model = second_opinion(settings)
    latest: dict[str, Decision] = {}
    for record in _read_topic(settings, settings.topic(DECIDED.name)):
        decision = Decision.model_validate_json(record.value)
        latest[decision.intel_id] = decision
    summary: Counter[str] = Counter()
    producer = None if args.dry_run else clients.producer(settings)
    try:
        for record in _read_topic(settings, settings.topic(SANITISED.name)):
            try:
                intel = SanitisedIntel.model_validate_json(record.value)
            except ValidationError:
                summary["skipped_undecodable"] += 1
                continue
            new = assess(intel, rules, source_evaluation=settings.source_evaluation, model=model)
            old = latest.get(intel.intel_id)
            # The second opinion never changes outcomes or priority, so a new model changes no decision;
            # these say what it would flag on history, and where its flag differs from the last decision's.
            summary["review_needed"] += _flagged(new)
            summary["review_flag_changed"] += old is not None and _flagged(old) != _flagged(new)
            if old is not None and old.reviewed is not None:
                # A handler confirmed or amended it: new rules do not overrule a person. Its revision stands.
                summary["reviewed_kept"] += 1
                continue
            if not changed(old, new):
                summary["unchanged"] += 1
                continue
            before = "none" if old is None else _label(old)
            after = _label(new)
            summary[f"{before} -> {after}"] += 1
            if producer is not None:
                body, key = new.model_dump_json().encode(), intel.intel_id.encode()
                stamp = int(day_timestamp() * 1000)
                for topic in [DECIDED, *(OUTCOME_TOPICS[o] for o in new.outcomes)]:
                    producer.send(settings.topic(topic.name), value=body, key=key, timestamp_ms=stamp)
            latest[intel.intel_id] = new
        if producer is not None:
            producer.flush()
    finally:
        if producer is not None:
            producer.close()
    print(json.dumps({"rules_version": rules.version, "model_version": model.version if model else None,
                      "dry_run": args.dry_run, **summary}, indent=2))
    return 0


def _build_model(args: argparse.Namespace) -> int:
    # Imported here: scikit-learn is the `model` extra, needed to build the model, never to run the router.
    try:
        from services.router.build_model import run
    except ModuleNotFoundError as error:
        print(f"cpi: building the model needs the `model` extra (pip install 'cpi-pipeline[model]'): {error}",
              file=sys.stderr)
        return 2
    return run(Path(args.corpora), Path(args.out), seed=args.seed, selecting=args.select)


def register(commands: Any) -> None:
    assess_cmd = commands.add_parser("assess", help="offline: SanitisedIntel JSON Lines in, Decision out")
    assess_cmd.add_argument("file", help="a JSON Lines file, or - for stdin")
    assess_cmd.add_argument("--rules", help="a rules file (default: the configured one)")
    assess_cmd.set_defaults(run=_assess)

    reassess = commands.add_parser("reassess", help="replay sanitised history through the current rules")
    reassess.add_argument("--rules", help="a rules file (default: the configured one)")
    reassess.add_argument("--dry-run", action="store_true", help="report what would change, publish nothing")
    reassess.set_defaults(run=_reassess)

    build = commands.add_parser("build-model", help="train the router's second opinion on the training corpora")
    build.add_argument("--corpora", default=str(DEFAULT_CORPORA_DIR), help="the labelled corpora's directory")
    build.add_argument("--out", default=str(DEFAULT_MODEL_PATH), help="where to write the artefact")
    build.add_argument("--seed", type=int, help="override the settings' seed")
    build.add_argument("--select", action="store_true",
                       help="print the batch-out cross-validation table the settings are chosen from; write nothing")
    build.set_defaults(run=_build_model)
