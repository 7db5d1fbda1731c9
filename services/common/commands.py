"""Platform subcommands: `cpi kafka`, `cpi topics|acls apply`, `cpi worker`, `cpi api`, `cpi tail`, `cpi dlq`."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from services.common.errors import CpiError
from services.common.settings import IntakeSettings, PlatformSettings


def local_broker(settings: PlatformSettings) -> Any:
    from services.common.kafka.broker import LocalBroker

    return LocalBroker(settings.data_dir / "kafka", port=settings.local_kafka_port,
                       controller_port=settings.local_controller_port, security=settings.local_kafka_security)


def _kafka(args: argparse.Namespace) -> int:
    from services.common.kafka.broker import cluster_version

    settings = PlatformSettings()
    if settings.kafka_bootstrap:
        if args.action != "status":
            raise CpiError("CPI_KAFKA_BOOTSTRAP names a cluster: there is no local broker to start or stop")
        print(json.dumps({"bootstrap": settings.kafka_bootstrap, "version": cluster_version(settings),
                          "local": False}))
        return 0
    broker = local_broker(settings)
    if args.action == "start":
        print(f"Kafka {broker.start()} (Apache Kafka, {broker.security}, log: {broker.log_file})")
        print(f"Admin settings: set -a; . {broker.admin_env_file}")
    elif args.action == "stop":
        print("stopped" if broker.stop() else "no local broker was running")
    else:
        status = broker.status()
        print(json.dumps({**status, "local": True}))
        return 0 if status["answering"] else 1
    return 0


def _topics(args: argparse.Namespace) -> int:
    from services.common.kafka.admin import apply_topics

    report = apply_topics(PlatformSettings())
    for name in report.created:
        print(f"created   {name}")
    for name in report.unchanged:
        print(f"ok        {name}")
    for name, differences in report.drift.items():
        print(f"DRIFT     {name}: {'; '.join(differences)}")
    return 0 if report.ok else 1


def _acls(args: argparse.Namespace) -> int:
    from services.common.kafka.acls import apply_acls
    from services.common.kafka.principals import admin_settings

    report = apply_acls(admin_settings(PlatformSettings()))
    for grant in report.created:
        print(f"created   {grant}")
    for grant in report.unchanged:
        print(f"ok        {grant}")
    for acl in report.removed:
        print(f"removed   {acl}")
    return 0


def _strimzi(args: argparse.Namespace) -> int:
    from services.common.kafka.strimzi import render

    if args.min_insync_replicas > args.replicas:
        raise CpiError(f"--min-insync-replicas {args.min_insync_replicas} is more than --replicas {args.replicas}:"
                       " no write could ever be acknowledged")
    print(render(args.replicas, args.min_insync_replicas, args.prefix, args.cluster), end="")
    return 0


def _worker(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"services.{args.name}.worker")
    module.main()
    return 0


def _api(args: argparse.Namespace) -> int:
    from services.common.logging import configure_logging, logging_config
    from services.intake.api import create_api
    from services.intake.server import serve

    settings = IntakeSettings()
    configure_logging(settings.log_level, settings.log_format)
    serve(settings, create_api(settings), log_config=logging_config(settings.log_level, settings.log_format))
    return 0


def _tail(args: argparse.Namespace) -> int:
    """Print a topic's records as JSON lines: value, and for dead letters the headers too."""
    from services.common.kafka import clients

    settings = PlatformSettings()
    consumer = clients.consumer(
        settings, settings.topic(args.topic), auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=int(args.timeout * 1000) if args.timeout else float("inf"),
    )
    try:
        for record in consumer:
            value: Any
            try:
                value = json.loads(record.value)
            except ValueError:
                value = record.value.decode("utf-8", errors="replace")
            print(json.dumps({"partition": record.partition, "offset": record.offset,
                              "headers": {k: v.decode(errors="replace") for k, v in record.headers or []},
                              "value": value}, ensure_ascii=False), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def register(commands: Any) -> None:
    kafka = commands.add_parser("kafka", help="the local single-node Apache Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(run=_kafka)

    topics = commands.add_parser("topics", help="create topics from the registry, report drift")
    topics.add_argument("action", choices=["apply"])
    topics.set_defaults(run=_topics)

    acls = commands.add_parser("acls", help="grant each principal exactly its topics and group (from the registry)")
    acls.add_argument("action", choices=["apply"])
    acls.set_defaults(run=_acls)

    strimzi = commands.add_parser("strimzi", help="print Strimzi KafkaTopics and KafkaUsers (ACLs) from the registry")
    strimzi.add_argument("--replicas", type=_positive, default=3, help="replication factor of every topic")
    strimzi.add_argument("--min-insync-replicas", type=_positive, default=2)
    strimzi.add_argument("--prefix", default="", help="prepended to every topic and group name")
    strimzi.add_argument("--cluster", default="cpi-kafka", help="the Strimzi Kafka resource's name")
    strimzi.set_defaults(run=_strimzi)

    worker = commands.add_parser("worker", help="run one pipeline worker")
    worker.add_argument("name", choices=["intake", "sanitiser", "router", "notifier"])
    worker.set_defaults(run=_worker)

    api = commands.add_parser("api", help="serve the intake form and API")
    api.set_defaults(run=_api)

    tail = commands.add_parser("tail", help="print a topic's records as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--timeout", type=float, default=0, help="stop after this many idle seconds")
    tail.set_defaults(run=_tail)
