"""The intake edge served for real (uvicorn on a free port) against the session's broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from services.common.kafka.broker import free_port
from services.common.settings import IntakeSettings
from services.intake.api import create_api


@dataclass(frozen=True)
class LiveApi:
    """A running edge: its base URL and the settings it runs with (broker, prefix, data dir)."""

    url: str
    settings: IntakeSettings


@contextmanager
def live_api(kafka_bootstrap: str, topic_prefix: str, data_dir: Path, **overrides: object) -> Iterator[LiveApi]:
    """Serve the real app (Kafka publisher included) in a thread until the block ends."""
    settings = IntakeSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=data_dir,
                              **overrides)  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(settings), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, server_header=False))
    thread = threading.Thread(target=server.run, name="intake-api", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the intake API did not become ready")
            time.sleep(0.2)
        yield LiveApi(url=url, settings=settings)
    finally:
        server.should_exit = True
        thread.join(30)
