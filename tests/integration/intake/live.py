"""The intake edge served for real (uvicorn on a free port, configured as `cpi api` configures it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from services.common.kafka.broker import free_port
from services.common.settings import IntakeSettings
from services.intake.api import create_api
from services.intake.partners import add_partner
from services.intake.server import edge_config

PARTNER = "test-partner"


@dataclass(frozen=True)
class LiveApi:
    """A running edge: its base URL, the settings it runs with, and a partner's API key it accepts."""

    url: str
    settings: IntakeSettings
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        """The header a partner system sends."""
        return {"authorization": f"Bearer {self.api_key}"}


@contextmanager
def serving(settings: IntakeSettings, app: Any) -> Iterator[str]:
    """Serve `app` on settings.api_port with the edge's uvicorn configuration, in a thread; yields the URL."""
    server = uvicorn.Server(edge_config(settings, app, log_level="warning"))
    thread = threading.Thread(target=server.run, name="intake-api", daemon=True)
    thread.start()
    url = f"http://{settings.http_host}:{settings.api_port}"
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
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def live_api(kafka_bootstrap: str, topic_prefix: str, data_dir: Path, **overrides: object) -> Iterator[LiveApi]:
    """Serve the real app (Kafka publisher included) in a thread until the block ends."""
    keys_file = data_dir.parent / "partners.json"
    api_key = add_partner(keys_file, PARTNER)
    settings = IntakeSettings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, data_dir=data_dir,
                              api_port=free_port(), api_keys_file=keys_file, **overrides)  # type: ignore[arg-type]
    with serving(settings, create_api(settings)) as url:
        yield LiveApi(url=url, settings=settings, api_key=api_key)
