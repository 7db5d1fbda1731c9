"""Measure what a worker's death costs: SIGKILL the router, restart it at once, time until /readyz is 200
again (joined its group and holding its partitions), under three group settings. Not a test (no timed
assertions in tests): run `python -m tests.reliability.measure_kill_restart` and read the figures.

On the 2-core development machine (2026-12-02): faust's default session (60 s) 60.0 s each time; the
project's default (CPI_SESSION_TIMEOUT_SECONDS=10, heartbeat 1 s) 10.0 s; static membership
(CPI_GROUP_INSTANCE_ID, as the manifests set it from the pod's name) 2.6 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from services.common.kafka.admin import apply_topics
from services.common.kafka.broker import LocalBroker, free_port
from services.common.kafka.principals import read_env_file, security_environment, with_connection
from services.common.settings import PlatformSettings

SETTINGS = {
    "faust's default (session 60 s, heartbeat 3 s)": {"CPI_SESSION_TIMEOUT_SECONDS": "60",
                                                      "CPI_HEARTBEAT_INTERVAL_SECONDS": "3"},
    "the project's default (session 10 s, heartbeat 1 s)": {},
    "static membership (a group instance id)": {"CPI_GROUP_INSTANCE_ID": "router-0"},
}


def _ready(port: int, worker: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit("the worker died")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "worker", "router"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(kills: int = 3) -> None:
    work = Path(tempfile.mkdtemp(prefix="cpi-kill-"))
    broker = LocalBroker(work / "kafka", port=free_port(), controller_port=free_port())
    bootstrap = broker.start()
    try:
        admitted = read_env_file(broker.admin_env_file)
        for label, extra in SETTINGS.items():
            prefix = f"k{uuid.uuid4().hex[:8]}."
            apply_topics(with_connection(PlatformSettings(kafka_bootstrap=bootstrap, topic_prefix=prefix), admitted))
            port = free_port()
            env = security_environment({
                **os.environ, "CPI_KAFKA_BOOTSTRAP": bootstrap, "CPI_TOPIC_PREFIX": prefix,
                "CPI_DATA_DIR": str(work / prefix), "CPI_WORKER_PORT": str(port), "CPI_LOG_LEVEL": "warning",
                **extra}, admitted)
            worker = _start(env)
            assert _ready(port, worker, 120)
            times = []
            for _ in range(kills):
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                started, worker = time.monotonic(), _start(env)
                times.append(time.monotonic() - started if _ready(port, worker, 150) else float("inf"))
            worker.terminate()
            worker.wait(30)
            print(f"{label}: SIGKILL + restart -> ready again in " + ", ".join(f"{t:.1f} s" for t in times),
                  flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
