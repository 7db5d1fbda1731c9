"""The whole pipeline as separate processes, as `cpi up` runs it, against the session's real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.common.kafka.broker import free_port
from services.common.processes import stop_process, wait_until_ready
from services.common.settings import PlatformSettings
from services.intake.partners import add_partner

WORKERS = ("intake", "sanitiser", "router", "notifier")


@dataclass
class Pipeline:
    """A running pipeline: where its edge listens, its topics' prefix, its data and its logs."""

    bootstrap: str
    prefix: str
    data_dir: Path
    api_url: str
    api_auth: dict[str, str]  # the header a partner system sends
    edge_metrics_url: str  # the edge's internal listener, apart from the public one
    worker_urls: dict[str, str]
    env: dict[str, str]
    env_dir: Path | None = None  # the broker's admin.env and principals/*.env, where it is secured
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.data_dir / "logs").glob("*.log")))

    def as_principal(self, principal: str) -> dict[str, str]:
        """This pipeline's environment with `principal`'s Kafka login (unchanged on an open broker)."""
        from services.common.kafka.principals import principal_env_file, read_env_file, security_environment

        if self.env_dir is None:
            return self.env
        return security_environment(self.env, read_env_file(principal_env_file(self.env_dir, principal)))

    def settings(self) -> PlatformSettings:
        return PlatformSettings(kafka_bootstrap=self.bootstrap, topic_prefix=self.prefix)


@pytest.fixture(scope="module")
def pipeline_extra_env() -> dict[str, str]:
    """Settings a test module adds to its pipeline (e.g. a PostgreSQL sealed store); none by default."""
    return {}


@pytest.fixture(scope="module")
def pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, pipeline_extra_env: dict[str, str]
) -> Iterator[Pipeline]:
    """`cpi up` — exactly what `make run` ends in — on the session's broker, with topics, ports and data
    of its own; stopped with Ctrl-C (SIGINT) after the module unless a test already did. On the secured
    session broker it applies the ACLs for this prefix and runs each worker and the edge as its own
    principal (CPI_KAFKA_ENV_DIR, which the session sets, names their env files)."""
    with running_pipeline(kafka_bootstrap, tmp_path_factory.mktemp("pipeline"), pipeline_extra_env) as pipe:
        yield pipe


@contextmanager
def running_pipeline(bootstrap: str, data_dir: Path, extra_env: dict[str, str],
                     workers: Sequence[str] = WORKERS) -> Iterator[Pipeline]:
    """`cpi up` on `bootstrap` with topics, ports and data of its own under `data_dir`, ready when the block
    starts, stopped with Ctrl-C (SIGINT) when it ends. The broker's administrator settings and
    CPI_KAFKA_ENV_DIR come from this process's environment (tests/reliability sets its own broker's).
    `cpi up` runs only the `workers` named (the edge and the console always): a test that kills workers runs
    the others itself (tests/reliability/harness.py `Workers`), since `cpi up` stops when a child dies."""
    (data_dir / "logs").mkdir()
    prefix = f"e{uuid.uuid4().hex[:10]}."
    api_port = free_port()
    edge_metrics_port = free_port()
    ports = {name: free_port() for name in workers}
    api_key = add_partner(data_dir / "partners.json", "e2e-partner")
    env = {
        **os.environ,
        "CPI_KAFKA_BOOTSTRAP": bootstrap,
        "CPI_TOPIC_PREFIX": prefix,
        "CPI_DATA_DIR": str(data_dir),
        "CPI_API_PORT": str(api_port),
        "CPI_EDGE_METRICS_PORT": str(edge_metrics_port),
        "CPI_API_KEYS_FILE": str(data_dir / "partners.json"),
        "CPI_WORKER_PORTS": json.dumps(ports),
        "CPI_CONSOLE_PORT": str(free_port()),
        "CPI_CONSOLE_METRICS_PORT": str(free_port()),
        "CPI_LOG_LEVEL": "info",
        # The sanitiser still mixes (five at a time), but a lone report waits a second, not a minute.
        "CPI_RELEASE_MAX_WAIT_SECONDS": "1",
        # The console's held counts are read again each second, not each minute, so a test sees a hold at once.
        "CPI_HELD_METRICS_REFRESH_SECONDS": "1",
        **extra_env,
    }
    pipe = Pipeline(
        bootstrap=bootstrap, prefix=prefix, data_dir=data_dir, api_url=f"http://127.0.0.1:{api_port}",
        api_auth={"authorization": f"Bearer {api_key}"}, edge_metrics_url=f"http://127.0.0.1:{edge_metrics_port}",
        worker_urls={name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, env=env,
        env_dir=Path(env["CPI_KAFKA_ENV_DIR"]) if (Path(env.get("CPI_KAFKA_ENV_DIR", "/nonexistent"))
                                                   / "principals").is_dir() else None,
    )
    with open(data_dir / "logs" / "cpi-up.log", "wb") as log:
        pipe.processes["up"] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up"], env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        for url in [*pipe.worker_urls.values(), pipe.api_url]:
            wait_until_ready(f"{url}/readyz", process=pipe.processes["up"])
        yield pipe
    finally:
        stop_process(pipe.processes["up"], signal.SIGINT, timeout=60)
