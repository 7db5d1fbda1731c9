"""`cpi up`: the whole pipeline on this machine — broker, topics, the four workers, the intake edge and
the Intelligence Unit console (on a port of its own, as the Kafka principal cpi-iu).

Each worker runs as its own process, as in a cluster, and — where the broker is secured (the local
one is by default) — as its own Kafka principal: `cpi up` applies the topics and the registry's ACLs
as the administrator (admin.env), then starts each worker and the edge with its principal's env file
(principals/cpi-<name>.env) in place of every CPI_KAFKA_* connection variable. Ctrl-C (or SIGTERM) stops the edge first,
then the workers, then the broker if this command started it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from services.common.settings import IntakeSettings, PlatformSettings


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _spawn(name: str, *args: str, env: dict[str, str] | None = None) -> Child:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "services.cli", *args], env=env,
        start_new_session=True,  # Ctrl-C reaches only `cpi up`, which stops the children in order
    )
    return Child(name, process)


def _stop(children: list[Child], timeout: float = 30.0) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"cpi up: {child.name} did not stop in time; killing it", file=sys.stderr)
            child.process.kill()
            child.process.wait()


def _alerts() -> str:
    """Where the notifier will send alerts: its routing table's teams and the way mail goes."""
    from services.common.settings import NotifierSettings
    from services.notifier.adapters.delivery import routing_from

    notifier = NotifierSettings()
    table = routing_from(notifier)
    mail = f"mail by SMTP to {notifier.smtp_host}" if notifier.smtp_host else f"mail to {notifier.outbox}/"
    source = (f"routing table {notifier.routing_table}, version {table.version}" if notifier.routing_table
              else "CPI_ROUTING_TABLE unset: the single-address settings")
    return f"{', '.join(team.name for team in table.teams)}; {mail}  ({source})"


def _up(args: argparse.Namespace) -> int:
    from schemas.topics import EDGE, IU
    from services.common.commands import local_broker
    from services.common.kafka.acls import apply_acls
    from services.common.kafka.admin import apply_topics
    from services.common.kafka.principals import (
        admin_settings,
        env_dir,
        principal_env_file,
        read_env_file,
        security_environment,
    )

    settings = PlatformSettings()
    alerts = _alerts()  # a bad routing table stops here, naming the line, before anything has started
    broker = None
    if not settings.kafka_bootstrap:
        broker = local_broker(settings)
        already = broker.running_pid() is not None
        print(f"Kafka      {broker.start()}  (Apache Kafka, local single node; log {broker.log_file})", flush=True)
        if already:
            broker = None  # someone else's broker: leave it running when we stop
    else:
        print(f"Kafka      {settings.kafka_bootstrap}  (CPI_KAFKA_BOOTSTRAP)", flush=True)

    admin = admin_settings(settings)
    report = apply_topics(admin)
    print(f"Topics     {len(report.created)} created, {len(report.unchanged)} unchanged", flush=True)
    from services.common.keys import ensure_keys

    # Every key made once, here, before the processes that each load only their own start.
    created = ensure_keys(settings)
    print(f"Keys       {len(created)} created in {settings.keys_dir or settings.data_dir / 'keys'} (cpi keys show)",
          flush=True)
    for name, differences in report.drift.items():
        print(f"           DRIFT {name}: {'; '.join(differences)}", flush=True)
    print(f"Alerts     {alerts}", flush=True)

    folder = env_dir(settings)
    principals = {name: f"cpi-{name}" for name in settings.worker_ports} | {"api": EDGE, "console": IU}
    secured = all(principal_env_file(folder, p).exists() for p in principals.values())
    environments: dict[str, dict[str, str] | None] = dict.fromkeys(principals)
    if secured:
        acls = apply_acls(admin)
        print(f"ACLs       {len(acls.created)} created, {len(acls.unchanged)} unchanged, {len(acls.removed)} removed"
              f"  (admin: set -a; . {folder / 'admin.env'})", flush=True)
        environments = {name: security_environment(os.environ, read_env_file(principal_env_file(folder, p)))
                        for name, p in principals.items()}
    else:
        print("ACLs       none: no principals' env files, so every process connects as this one", flush=True)

    stopping = False

    def request_stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    workers = [_spawn(name, "worker", name, env=environments[name]) for name in settings.worker_ports]
    edge = _spawn("api", "api", env=environments["api"])
    console = _spawn("console", "console", env=environments["console"])
    children = [edge, console, *workers]
    intake = IntakeSettings()
    from services.console.settings import ConsoleSettings

    console_settings = ConsoleSettings()
    host = settings.http_host
    print(f"Form       http://{host}:{intake.api_port}/", flush=True)
    print(f"API        http://{host}:{intake.api_port}/api/v1/submissions  (OpenAPI: /openapi.json)", flush=True)
    signin = ("" if console_settings.oidc_issuer else
              "  (sign-in needs CPI_OIDC_ISSUER: the force's identity provider)")
    print(f"Console    {console_settings.console_base_url}/  (Intelligence Unit; its own port){signin}", flush=True)
    print(f"Metrics    http://{intake.edge_metrics_host or host}:{intake.edge_metrics_port}/metrics  (intake edge, "
          "internal)", flush=True)
    for name, port in settings.worker_ports.items():
        print(f"Metrics    http://{host}:{port}/metrics  ({name} worker; /healthz, /readyz)", flush=True)
    print(f"Metrics    http://{host}:{console_settings.console_metrics_port}/metrics  (console, internal)", flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    status = 0
    while not stopping:
        for child in children:
            code = child.process.poll()
            if code is not None:
                print(f"cpi up: {child.name} exited with {code}; stopping the pipeline", file=sys.stderr)
                status = 1
                stopping = True
                break
        time.sleep(0.5)

    print("Stopping…", flush=True)
    _stop(children)
    if broker is not None:
        broker.stop()
        print("Kafka      stopped", flush=True)
    return status


def register(commands: Any) -> None:
    up = commands.add_parser("up", help="run the whole pipeline locally until Ctrl-C")
    up.set_defaults(run=_up)


if os.name != "posix":  # pragma: no cover - signals and sessions as used here are POSIX
    raise ImportError("cpi up needs a POSIX system")
