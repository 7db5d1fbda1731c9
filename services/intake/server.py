"""Serving the edge: the public listener, hardened against slow clients, and /metrics on an internal one.

uvicorn caps connections and requests (`limit_concurrency`, then 503) and closes idle keep-alive
connections, but has no deadline for reading a request: a client sending its headers a byte at a
time, or a body that never ends, holds a connection for as long as it likes. `ReadDeadlineProtocol`
adds one, from h11's own view of the request (the client's state is IDLE while headers are being
read and SEND_BODY while the body is), so it needs no parsing of its own.

Proxy headers are the app's business (`create_api` believes them only from `trusted_proxies`), so
uvicorn's own handling, which trusts loopback by default, is always off here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import h11
import structlog
import uvicorn
from prometheus_client import start_http_server
from uvicorn.protocols.http.h11_impl import H11Protocol

import services.common.metrics  # noqa: F401 - what it serves has no `_created` series (that module says so)
from services.common.settings import IntakeSettings
from services.intake.metrics import READ_TIMEOUTS

__all__ = ["MetricsListener", "ReadDeadlineProtocol", "edge_config", "serve", "start_metrics"]

log = structlog.get_logger(__name__)

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: 16\r\nconnection: close\r\n\r\nRequest Timeout\n")


class ReadDeadlineProtocol(H11Protocol):
    """h11 with a deadline for each request's headers and another for its body; past either, 408 and close.

    The headers' clock starts when the connection opens (or the previous response ends, on keep-alive);
    the body's when the headers are complete. It is a deadline, not an idle timeout: trickling bytes
    does not extend it.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch_reading()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reading()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_reading()  # keep-alive: the next request's headers are on the clock

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _watch_reading(self) -> None:
        state = self.conn.their_state
        phase = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if phase is not None and not self.transport.is_closing():
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._read_timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        READ_TIMEOUTS.labels(self._phase or "unknown").inc()
        log.info("request_read_timeout", phase=self._phase)  # no address: the edge never logs who
        answered = self._phase == "body" and self.cycle is not None and self.cycle.response_started
        if not answered:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()  # the app, if it is reading the body, sees the client go


def _protocol(settings: IntakeSettings) -> type[ReadDeadlineProtocol]:
    """The protocol class uvicorn instantiates per connection, with this edge's deadlines."""
    return type("EdgeProtocol", (ReadDeadlineProtocol,), {
        "header_timeout": settings.edge_header_timeout_seconds,
        "body_timeout": settings.edge_body_timeout_seconds,
    })


def edge_config(settings: IntakeSettings, app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the public listener: read deadlines, the concurrency cap, no proxy trust."""
    return uvicorn.Config(
        app, host=settings.http_host, port=settings.api_port, http=_protocol(settings),
        limit_concurrency=settings.edge_max_concurrency, proxy_headers=False, timeout_keep_alive=5,
        access_log=False, server_header=False, **options,
    )


@dataclass
class MetricsListener:
    """The edge's internal /metrics listener; `close` stops it."""

    url: str
    _server: Any

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics(settings: IntakeSettings) -> MetricsListener:
    """Serve this process's metrics on the internal host and port, in a thread, apart from the public app."""
    host = settings.edge_metrics_host or settings.http_host
    server, _thread = start_http_server(settings.edge_metrics_port, addr=host)
    return MetricsListener(url=f"http://{host}:{settings.edge_metrics_port}/metrics", _server=server)


def serve(settings: IntakeSettings, app: Any, **options: Any) -> None:
    """`cpi api`: the public listener until SIGINT/SIGTERM, with the metrics listener beside it."""
    metrics = start_metrics(settings)
    try:
        uvicorn.Server(edge_config(settings, app, **options)).run()
    finally:
        metrics.close()
