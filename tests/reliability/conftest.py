"""The fault suite's fixtures: the whole pipeline (`cpi up`, as tests/e2e starts it) and whether this is a `--long` run
(the option is declared in tests/conftest.py, where pytest reads options from)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import pipeline, pipeline_extra_env
from tests.reliability.harness import RestartableSmtp, restartable_smtp

__all__ = ["pipeline", "pipeline_extra_env"]  # tests/e2e's fixtures, shared rather than copied


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """Whether the suite runs its `--long` sizes."""
    return bool(request.config.getoption("--long"))


@pytest.fixture(scope="session")
def long_only(long_run: bool) -> None:
    """Skip a scenario that runs only with `--long` (minutes of brokers and rebalances: the default suite stays
    within CI's budget). Session-scoped and named first, so the skip comes before other session fixtures start."""
    if not long_run:
        pytest.skip("runs with --long only (minutes long; the default suite is CI's)")


@pytest.fixture
def team_mail() -> Iterator[RestartableSmtp]:
    """A team's real SMTP server (crime desk's), which a scenario may stop and start again."""
    with restartable_smtp() as server:
        yield server
