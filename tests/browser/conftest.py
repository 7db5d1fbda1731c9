"""Headless Chromium (Debian's `chromium`) driven by Playwright, against the real edge on the real broker."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.topics import RECEIVED
from tests.integration.intake.live import LiveApi, live_api

CHROMIUM = Path(os.environ.get("CPI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module; skipped with the reason when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (Debian) to run the browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run browser tests")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def api(kafka_bootstrap: str, topic_prefix: str, topic_factory: Callable[..., dict[str, str]],
        tmp_path: Path) -> Iterator[LiveApi]:
    """The edge served by uvicorn, producing to this test's received topic."""
    topic_factory(RECEIVED)
    with live_api(kafka_bootstrap, topic_prefix, tmp_path / "data") as running:
        yield running


@pytest.fixture
def page(browser: Any, api: LiveApi) -> Iterator[Any]:
    """A fresh page with JavaScript off: the form must work without it."""
    context = browser.new_context(java_script_enabled=False, base_url=api.url)
    try:
        yield context.new_page()
    finally:
        context.close()
