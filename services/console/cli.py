"""`cpi console`: the Intelligence Unit console on its own port, with its /metrics on an internal one.

The console is the unseal path: it loads the unseal private key (which no worker holds), the store KEK,
the audit key and the audit-signing key, and nothing else; it publishes only released intel, held revisions
and audit entries (each anchored on cpi.audit.sealed.v1 before it commits: without Kafka it does nothing it
would audit), and reads the decided topic into its review queue (a consumer thread in this process, in the
cpi-iu group). Its /metrics counts every re-contact step and refused attempt, which the alerts watch.
"""

from __future__ import annotations

import argparse
from typing import Any

import structlog

from services.common.errors import CpiError

log = structlog.get_logger(__name__)


def _console(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every `cpi` command registers this one, and the console's web stack
    # (authlib, uvicorn) would otherwise load, and print its warnings, in `cpi assess` and the rest.
    import uvicorn
    from prometheus_client import REGISTRY, start_http_server

    from services.common.keys import load_unseal_keys
    from services.common.settings import IntakeSettings
    from services.console.adapters.decisions import DecisionFeed, ReviewQueue
    from services.console.adapters.held import HeldReview
    from services.console.adapters.requests import RecontactRequests
    from services.console.app import create_console
    from services.console.metrics import HeldReviewCollector
    from services.console.settings import ConsoleSettings
    from services.sanitiser.worker import open_store

    settings = ConsoleSettings()
    if settings.console_port == IntakeSettings().api_port:
        raise CpiError("CPI_CONSOLE_PORT must differ from CPI_API_PORT: the console is never on the public edge")
    if settings.oidc_issuer is None:
        # It still starts (so `cpi up` runs whole); every page then says sign-in is not configured.
        log.warning("console_sign_in_not_configured", advice="set CPI_OIDC_ISSUER to the force's identity provider")
    keys = load_unseal_keys(settings)
    store = open_store(settings, keys)
    requests = RecontactRequests(settings.data_dir / "console.db")
    held = HeldReview(settings, keys, store)
    decisions = ReviewQueue(settings.data_dir / "console.db")
    feed = DecisionFeed(settings, decisions)
    feed.start()
    app = create_console(settings, store=store, held=held, requests=requests, decisions=decisions, feed=feed)
    REGISTRY.register(HeldReviewCollector(held.waiting, settings.held_review_target_days,
                                          settings.held_metrics_refresh_seconds))
    metrics, _thread = start_http_server(settings.console_metrics_port, addr=settings.http_host)
    try:
        uvicorn.Server(uvicorn.Config(app, host=settings.http_host, port=settings.console_port, proxy_headers=False,
                                      access_log=False, server_header=False, timeout_keep_alive=5)).run()
    finally:
        feed.stop()
        metrics.shutdown()
        decisions.close()
        requests.close()
        store.close()
    return 0


def register(commands: Any) -> None:
    console = commands.add_parser("console", help="the Intelligence Unit console (queues, held reports, re-contact)")
    console.set_defaults(run=_console)
