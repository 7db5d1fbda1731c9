"""Fixtures for the intake edge: the app with a fake publisher, driven in-process."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's notice about httpx2; the client works as it is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from services.common.envelope import PrivateKeyring
from services.common.settings import IntakeSettings
from services.intake.api import create_api
from services.intake.partners import add_partner
from tests.unit.intake.samples import FakePublisher


@pytest.fixture
def publisher() -> FakePublisher:
    """A publisher that keeps records in memory."""
    return FakePublisher()


@pytest.fixture
def keyring() -> PrivateKeyring:
    """A fresh transport key pair for this test; the edge is given only its public half."""
    return PrivateKeyring.generate("transport")


@pytest.fixture
def partner_keys(tmp_path: Path) -> dict[str, str]:
    """Three partner systems with API keys in the edge's keys file: partner id -> its key."""
    path = tmp_path / "partners.json"
    partners = ("northgate-school", "oakfield-trust", "eastside-college")
    return {partner: add_partner(path, partner) for partner in partners}


@pytest.fixture
def make_client(tmp_path: Path, publisher: FakePublisher, keyring: PrivateKeyring,
                partner_keys: dict[str, str]) -> Iterator[Callable[..., TestClient]]:
    """Build a started TestClient for the edge with the given settings overrides; it sends the first
    partner's API key unless `api_key` says otherwise (None: no key)."""
    clients: list[TestClient] = []

    def make(api_key: str | None = partner_keys["northgate-school"], **overrides: Any) -> TestClient:
        settings = IntakeSettings(data_dir=tmp_path / "data", **{
            "rate_limit_per_minute": 10_000, "api_keys_file": tmp_path / "partners.json", **overrides})
        client = TestClient(create_api(settings, transport_key=keyring.recipient(), publisher=publisher),
                            headers={"authorization": f"Bearer {api_key}"} if api_key else None)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """The edge with a generous rate limit."""
    return make_client()
