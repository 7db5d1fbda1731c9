"""`cpi bench`: throughput of each stage's own code on this machine, with the machine named.

Offline figures time the very functions the workers run (validate, seal + sanitise, assess) on
generated submissions. `--kafka` also times the running pipeline end to end through a broker:
it starts the four workers on fresh topics, feeds N accepted-ready submissions and waits for
every decision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas import Submission

_FIRST = ["Jayden", "Amira", "Kacper", "Leah", "Tyrese", "Sofia", "Mohammed", "Ellie", "Callum", "Zara"]
_LAST = ["Okafor", "Khan", "Nowak", "Brown", "Campbell", "Rossi", "Ali", "Evans", "Murphy", "Ahmed"]
_ROLES = [("Teacher", "education", "Oakfield Primary School"), ("Practice Nurse", "health", "Riverside Surgery"),
          ("Social Worker", "social_care", "Northshire Children's Services"),
          ("Housing Officer", "housing", "Eastgate Homes"), ("Youth Worker", "youth_service", "Hilltop Youth Club")]
_STORIES = [
    "{s} has been missing from home three times this month and comes back with new clothes and cash. "
    "An older man called {p} collects {o} in a grey car near the station.",
    "I am {s}'s {role} and I noticed {o} has two phones and will not say who bought them. "
    "{p} was seen handing {o} small packages outside the chip shop on Mill Road.",
    "Neighbours report people coming and going from the flat at all hours; {p} appears to have moved in "
    "with a vulnerable adult who is frightened of him.",
    "Teenagers gather at the underpass most evenings, shouting and throwing bottles at passing cars.",
    "{s} says {p} threatened him with a knife because he owed money for cannabis.",
]


def generated_submissions(count: int, seed: int = 7) -> list[Submission]:
    """Varied, realistic submissions (deterministic for a seed)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        role, org_type, org = rng.choice(_ROLES)
        source_name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        subject = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        concern = rng.choice(_LAST)
        story = rng.choice(_STORIES).format(s=subject, p=concern, o="him", role=role.lower())
        out.append(Submission.model_validate({
            "source": {"name": source_name, "role": role, "organisation": org, "organisation_type": org_type,
                       "email": f"{source_name.split()[0].lower()}@{org.split()[0].lower()}.example",
                       "phone": f"07700 900{rng.randint(100, 999)}"},
            "lawful_basis": "safeguarding",
            "urgency": {"immediate_risk": False, "crime_in_progress": False},
            "categories": rng.sample(["criminal_exploitation", "drug_related_harm", "anti_social_behaviour",
                                      "missing_exploited_trafficked", "modern_slavery"], k=rng.randint(1, 2)),
            "subjects": [{"role": "at_risk", "name": subject, "approx_age": rng.randint(11, 40)},
                         {"role": "person_of_concern", "name": concern}],
            "information": f"{story} Reported by {source_name}, {role}, {org}.",
            "how_known": rng.choice(["witnessed_directly", "told_by_subject", "told_by_third_party"]),
        }))
    return out


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


def _rate(label: str, items: list[Any], work: Callable[[Any], Any]) -> dict[str, Any]:
    latencies = []
    started = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        work(item)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"stage": label, "records": len(items), "seconds": round(elapsed, 3),
            "per_second": round(len(items) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 3),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3)}


_SEAL_BATCH = 64  # the sanitiser's release pool (CPI_RELEASE_MIN_RECORDS)


def _per_record(timed: dict[str, Any], records: int) -> dict[str, Any]:
    """A rate timed over batches, restated per record (latencies stay per batch)."""
    return {**timed, "records": records, "per_second": round(records / timed["seconds"], 1),
            "batches": timed["records"]}


def offline(count: int) -> list[dict[str, Any]]:
    """Time validate, seal + sanitise (SQLite store) and assess over `count` generated submissions."""
    from services.common.envelope import Keyring, PrivateKeyring
    from services.common.keys import StoreKeys
    from services.intake.domain import validate_submission
    from services.router.domain import assess, load_rules
    from services.router.model import load_model
    from services.sanitiser.adapters.sealed_store import SealRequest, open_sealed_store
    from services.sanitiser.domain import load_scrub_config, sanitise

    submissions = generated_submissions(count)
    raw = [s.model_dump(mode="json") for s in submissions]
    config, rules = load_scrub_config(), load_rules()
    today = datetime.now(UTC).date()
    results = [_rate("intake.validate", raw, validate_submission)]
    results.append(_rate("sanitiser.scrub", submissions, lambda s: sanitise(
        s, s.source, intel_id=uuid.uuid4().hex, received_on=today, config=config)))
    with tempfile.TemporaryDirectory() as tmp:
        keys = StoreKeys(kek=Keyring.generate(), audit=Keyring.generate(),
                         unseal_public=PrivateKeyring.generate("unseal").recipient())
        store = open_sealed_store(f"sqlite:///{tmp}/sealed.db", keys)
        try:
            results.append(_rate("sanitiser.seal+scrub (SQLite)", submissions, lambda s: sanitise(
                s, s.source, intel_id=store.seal(uuid.uuid4().hex, s.source, today), received_on=today,
                config=config)))
            results.append(_rate("sanitiser.seal (SQLite, a transaction per record)", submissions,
                                 lambda s: store.seal(uuid.uuid4().hex, s.source, today)))
            batches = [submissions[i:i + _SEAL_BATCH] for i in range(0, len(submissions), _SEAL_BATCH)]
            results.append(_per_record(_rate(f"sanitiser.seal (SQLite, a transaction per {_SEAL_BATCH})", batches,
                                             lambda batch: store.seal_batch(
                                                 [SealRequest(uuid.uuid4().hex, s.source, today) for s in batch])),
                                       len(submissions)))
        finally:
            store.close()
    intel = [sanitise(s, s.source, intel_id=uuid.uuid4().hex, received_on=today, config=config)
             for s in submissions]
    model = load_model()  # as the worker runs: the rules and the second opinion
    results.append(_rate("router.assess", intel, lambda i: assess(i, rules, model=model)))
    results.append(_rate("router.assess (rules only)", intel, lambda i: assess(i, rules)))
    return results


def _bench(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"machine": machine(), "when": datetime.now(UTC).isoformat(timespec="seconds")}
    if not args.kafka_only:
        report["offline"] = offline(args.records)
    if args.kafka or args.kafka_only:
        from services.bench_kafka import BenchRun, through_kafka

        run = BenchRun(mode=args.mode, records=args.kafka_records, rate=args.rate)
        report["kafka"] = {"machine": report["machine"], **through_kafka(run)}
        if args.out is not None:
            report["files"] = write_results(report, args.out)
    print(json.dumps(report, indent=2))
    return 0


def write_results(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """The report as JSON and its Kafka run's chart as PNG in `folder`, named by mode and time."""
    from services.bench_chart import draw

    folder.mkdir(parents=True, exist_ok=True)
    kafka = report["kafka"]
    stem = f"bench-{kafka['mode']}-{report['when'].replace(':', '')}"
    json_path, png_path = folder / f"{stem}.json", folder / f"{stem}.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    draw(kafka, png_path)
    return {"json": str(json_path), "chart": str(png_path)}


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="throughput of each stage on this machine")
    bench.add_argument("--records", type=int, default=2000, help="records for the offline figures")
    bench.add_argument("--kafka", action="store_true", help="also time the pipeline through a real broker")
    bench.add_argument("--kafka-only", action="store_true", help="the pipeline through a broker, no offline figures")
    bench.add_argument("--kafka-records", type=int, default=500, help="submissions through the pipeline")
    bench.add_argument("--mode", choices=("backlog", "open-loop"), default="backlog",
                       help="backlog: all written at once, timed until decided and notified; open-loop: written "
                       "at --rate, latency percentiles")
    bench.add_argument("--rate", type=float, default=None, help="open-loop: submissions per second")
    bench.add_argument("--out", type=Path, default=None,
                       help="folder for the JSON report and the PNG chart (needs the bench extra: matplotlib)")
    bench.set_defaults(run=_bench)
