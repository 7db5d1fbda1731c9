"""A pipeline stage on faust: decode → domain → publish, with dead letters and health endpoints.

Safe defaults live here once, for all four workers:
- acks=all and an idempotent producer (faust only enables idempotence for transactions);
- results are published and acknowledged by the broker *before* the input is acked, and faust
  commits only acked offsets, so a crash re-delivers rather than loses;
- agent concurrency 1 (faust's concurrency>1 can commit past a gap) and no exactly_once;
- a handler error never escapes the loop (faust would ack the message anyway): the input goes
  to the dead-letter topic with its origin in headers and the stream keeps flowing;
- but a TransientError (a store or server briefly away) is retried, and if it persists the worker
  stops without committing: an outage must not dead-letter every message that arrives during it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import faust
import structlog
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.types import StreamT

from schemas import DeadLetter
from schemas.topics import DEADLETTER, DEADLETTER_MAX_BYTES, TopicSpec
from services.common.errors import CpiError, DecodeError, TransientError
from services.common.files import private_dir
from services.common.kafka.clients import faust_broker
from services.common.metrics import (
    DEAD_LETTERS,
    MESSAGES,
    PROCESSING_SECONDS,
    PUBLISHED,
    RELEASED_RECORDS,
    exposition,
)
from services.common.settings import WorkerSettings

log = structlog.get_logger(__name__)

_ATTEMPTS = 5


@dataclass(frozen=True)
class Publish:
    """One record a handler wants published. `topic` is the registry name, unprefixed."""

    topic: TopicSpec
    key: bytes
    value: bytes
    timestamp: float | None = None  # seconds since the epoch; None lets the producer stamp it
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    # Called once the broker has acknowledged this record (the notifier's ledger marks it recorded); a failure
    # there is logged, not raised: the record is safely published either way.
    on_acked: Callable[[], Awaitable[None]] | None = field(default=None, compare=False)


Handler = Callable[[bytes], Awaitable[Sequence[Publish]]]


class _IdempotentProducer(AIOKafkaProducer):
    """faust's aiokafka producer with idempotence on outside transactions too."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class CpiApp(faust.App):
    """faust.App whose producer is always idempotent with acks=all."""

    def _new_producer(self) -> Any:
        return _IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)


def create_app(stage: str, settings: WorkerSettings) -> CpiApp:
    """A faust app for one stage, with the project's safe defaults and /metrics, /healthz, /readyz."""
    datadir = settings.data_dir / "faust" / stage
    private_dir(datadir.parent)
    app = CpiApp(
        f"{settings.topic_prefix}cpi-{stage}",
        **faust_broker(settings),
        value_serializer="raw",
        key_serializer="raw",
        producer_acks=-1,
        # faust's default (1,000,000 bytes) is below what an input topic takes, so the largest input's dead
        # letter could not be sent (issue 14); the dead-letter topic takes this much.
        producer_max_request_size=DEADLETTER_MAX_BYTES,
        broker_commit_every=100,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        consumer_group_instance_id=settings.group_instance_id,
        topic_allow_declare=False,  # `cpi topics apply` owns topic configuration
        topic_disable_leader=True,
        topic_replication_factor=settings.replication_factor,
        web_enabled=True,
        web_bind=settings.http_host,
        web_host=settings.http_host,
        web_port=settings.worker_port or settings.worker_ports[stage],
        web_stats_enabled=False,
        web_graph_enabled=False,
        processing_guarantee="at_least_once",
        table_cleanup_interval=3600.0,
        datadir=str(datadir),
    )
    _add_health_pages(app)
    return app


def _add_health_pages(app: CpiApp) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp takes the charset separately from the media type.
        body, content_type = exposition()
        media_type, _, _charset = content_type.rpartition("; charset=")
        return web.bytes(body, content_type=media_type)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready, why = readiness(app)
        body: dict[str, Any] = {"ready": ready, "rebalancing": app.rebalancing}
        if why:
            body["why"] = why
        return web.json(body, status=200 if ready else 503)


def readiness(app: CpiApp) -> tuple[bool, str | None]:
    """Whether the worker is consuming: its consumer runs, it is not rebalancing, and it holds partitions.
    Says why not (regression, issue 14: /readyz said ready about a second after a restart, before the worker
    had joined its group and been given anything to consume)."""
    if app._consumer is None or app.consumer.state != "running":
        return False, "the consumer has not started"
    if app.rebalancing:
        return False, "the consumer group is rebalancing"
    if not app.consumer.assignment():
        return False, "no partitions are assigned to this worker (not yet joined, or more replicas than partitions)"
    return True, None


def register_stage(
    app: CpiApp, settings: WorkerSettings, *, stage: str, source: TopicSpec, handler: Handler,
    mixing: Mixing | None = None,
) -> None:
    """Run `handler` on every record of `source`; publish what it returns; dead-letter what it can't take.

    With `mixing`, outputs are released in shuffled batches (see `Mixing`); without, one by one in order."""
    input_topic = app.topic(settings.topic(source.name), value_type=bytes, key_type=bytes)
    topics: dict[str, Any] = {}

    def topic_for(spec: TopicSpec) -> Any:
        name = settings.topic(spec.name)
        if name not in topics:
            topics[name] = app.topic(name, value_type=bytes, key_type=bytes)
        return topics[name]

    async def publish(records: Sequence[Publish]) -> None:
        """Send every record at once and wait until the broker has all of them (acks=all) — one round
        trip per input message — before the input can be acked. A broker that keeps refusing is not the
        message's fault: retry, then stop without committing, so the input is redelivered."""
        remaining = list(records)
        for attempt in range(1, _ATTEMPTS + 1):
            sent = []
            for r in remaining:
                try:
                    sent.append(await topic_for(r.topic).send(key=r.key, value=r.value, timestamp=r.timestamp,
                                                              headers=list(r.headers)))
                except Exception as exc:
                    # Refused before it was sent (faust raises, e.g. for a record too large): a failure like
                    # any other. Raised out of the agent it crashed it, faust restarted it on the next input, and
                    # this input was neither dead-lettered nor acknowledged (issue 14).
                    sent.append(_failed(exc))
            results = await asyncio.gather(*sent, return_exceptions=True)
            failed = []
            for record, result in zip(remaining, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(record)
                    log.warning("publish_failed", stage=stage, topic=record.topic.name, attempt=attempt,
                                error=type(result).__name__)
                else:
                    PUBLISHED.labels(stage, record.topic.name).inc()
                    await _acknowledged(stage, record)
            if not failed:
                return
            remaining = failed
            await asyncio.sleep(min(2**attempt, 30))
        _give_up(stage, "publish")

    async def handle(value: bytes) -> Sequence[Publish]:
        """The handler, with transient failures (a store or server briefly away) retried, then fatal."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await handler(value)
            except TransientError as exc:
                log.warning("transient_failure", stage=stage, attempt=attempt, error=_safe_message(exc))
                await asyncio.sleep(min(2**attempt, 30))
        _give_up(stage, "handler")

    async def process(event: Any) -> list[Publish]:
        """One input's outputs, or its dead letter if the handler can't take it (never raises)."""
        message = event.message
        try:
            value = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
            outputs = list(await handle(value))
        except Exception as exc:
            code = exc.code if isinstance(exc, DecodeError) else _error_code(exc)
            DEAD_LETTERS.labels(stage, code).inc()
            MESSAGES.labels(stage, "dead_lettered").inc()
            log.warning("dead_lettered", stage=stage, topic=message.topic, partition=message.partition,
                        offset=message.offset, error_code=code)
            return [dead_letter(stage, message.topic, message.partition, message.offset,
                                value=message.value or b"", key=message.key or b"", code=code,
                                error=_safe_message(exc))]
        MESSAGES.labels(stage, "processed").inc()
        return outputs

    if mixing is None:
        @app.agent(input_topic, name=f"cpi-{stage}", concurrency=1)
        async def consume(stream: StreamT[Any]) -> None:
            # faust acks each event when the loop asks for the next, so after its outputs are acknowledged.
            async for event in stream.events():
                started = time.perf_counter()
                await publish(await process(event))
                PROCESSING_SECONDS.labels(stage).observe(time.perf_counter() - started)
        return

    pool = MixingPool(stage, mixing, process, publish)

    @app.agent(input_topic, name=f"cpi-{stage}", concurrency=1)
    async def consume_mixed(stream: StreamT[Any]) -> None:
        # Acks are the pool's, once outputs are acknowledged (faust's StreamT stub lacks `noack`).
        manual: StreamT[Any] = cast(Any, stream).noack()
        releaser = asyncio.ensure_future(pool.release_when_due(manual))
        try:
            async for event in manual.events():
                await pool.add(event, manual)
        finally:
            releaser.cancel()


@dataclass(frozen=True)
class Mixing:
    """Release a stage's outputs in shuffled batches, so the order records arrive in does not survive it.

    Inputs wait, unprocessed and unacknowledged, until at least `min_records` are waiting or the oldest
    has waited `max_wait_seconds`; then the whole pool is processed in random order (so whatever the
    handler stores is stored in that order too), published, and acknowledged. An observer who saw the
    inputs arrive can tell which release an output came in, never which input it was within it. A crash
    loses nothing: unacknowledged inputs are redelivered.
    """

    min_records: int
    max_wait_seconds: float

    def __post_init__(self) -> None:
        if self.min_records < 1 or self.max_wait_seconds <= 0:
            raise ValueError("mixing needs min_records >= 1 and max_wait_seconds > 0")


class MixingPool:
    """The waiting inputs of a mixed stage, released by size (on arrival) or by age (on a timer)."""

    def __init__(self, stage: str, mixing: Mixing, process: Callable[[Any], Awaitable[list[Publish]]],
                 publish: Callable[[Sequence[Publish]], Awaitable[None]]) -> None:
        self._stage = stage
        self._mixing = mixing
        self._process = process
        self._publish = publish
        self._waiting: list[Any] = []
        self._oldest = 0.0
        self._lock = asyncio.Lock()  # the arrival loop and the timer both release
        self._shuffle = random.SystemRandom().shuffle

    async def add(self, event: Any, stream: StreamT[Any]) -> None:
        async with self._lock:
            if not self._waiting:
                self._oldest = time.monotonic()
            self._waiting.append(event)
            if len(self._waiting) >= self._mixing.min_records:
                await self._release(stream)

    async def release_when_due(self, stream: StreamT[Any]) -> None:
        tick = min(1.0, self._mixing.max_wait_seconds / 4)
        try:
            while True:
                await asyncio.sleep(tick)
                async with self._lock:
                    if self._waiting and time.monotonic() - self._oldest >= self._mixing.max_wait_seconds:
                        await self._release(stream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # without the timer a quiet pool would wait for ever: stop, uncommitted
            log.critical("mixing_timer_failed", stage=self._stage, error=type(exc).__name__)
            _give_up(self._stage, "release")

    async def _release(self, stream: StreamT[Any]) -> None:
        """Process the pool in random order, publish everything, then ack in arrival order. Caller holds
        the lock."""
        started = time.perf_counter()
        events, self._waiting = self._waiting, []
        mixed = list(events)
        self._shuffle(mixed)
        outputs = [record for event in mixed for record in await self._process(event)]
        await self._publish(outputs)
        for event in events:
            await stream.ack(event)
        elapsed = time.perf_counter() - started
        for _ in events:
            PROCESSING_SECONDS.labels(self._stage).observe(elapsed)
        RELEASED_RECORDS.labels(self._stage).observe(len(events))


def _failed(exc: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


async def _acknowledged(stage: str, record: Publish) -> None:
    if record.on_acked is None:
        return
    try:
        await record.on_acked()
    except Exception as exc:
        log.warning("after_publish_failed", stage=stage, topic=record.topic.name, error=_safe_message(exc))


def _give_up(stage: str, what: str) -> NoReturn:
    log.critical("giving_up", stage=stage, what=what)
    # Leave without committing: the input is redelivered to the next worker, and effects are idempotent.
    os._exit(70)


def _error_code(exc: Exception) -> str:
    return "unprocessable" if isinstance(exc, CpiError) else f"internal_{type(exc).__name__}"[:64]


def _safe_message(exc: Exception) -> str:
    """What goes in a dead letter's headers: our own message for our own errors, else the type only.

    Foreign exceptions (pydantic, json, sqlite) may quote the input, which may hold provenance.
    """
    if isinstance(exc, CpiError):
        return (str(exc) or type(exc).__name__)[:1000]
    return type(exc).__name__


def dead_letter(
    stage: str, topic: str, partition: int, offset: int, *, value: bytes, key: bytes, code: str, error: str
) -> Publish:
    """The dead-letter record: the original bytes unchanged, why and where from in headers."""
    letter = DeadLetter(
        origin_topic=topic,
        origin_partition=partition,
        origin_offset=offset,
        stage=stage,
        error_code=code,
        error=error,
        dead_lettered_at=datetime.now(UTC),
    )
    return Publish(topic=DEADLETTER, key=key, value=value, headers=letter.to_headers())


def run_worker(app: CpiApp, settings: WorkerSettings) -> None:
    """Run the faust worker in this process until SIGINT/SIGTERM, logging through structlog."""
    from services.common.logging import configure_logging, logging_config

    configure_logging(settings.log_level, settings.log_format)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.upper(),
        logging_config=logging_config(settings.log_level, settings.log_format),
        quiet=True,
    )
    worker.execute_from_commandline()
