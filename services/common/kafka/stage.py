"""A pipeline stage on faust: decode → domain → publish, with dead letters and health endpoints.

Safe defaults live here once, for all four workers:
- acks=all and an idempotent producer (faust only enables idempotence for transactions);
- results are published and acknowledged by the broker *before* the input is acked, and faust
  commits only acked offsets, so a crash re-delivers rather than loses;
- agent concurrency 1 (faust's concurrency>1 can commit past a gap) and no exactly_once;
- inputs are taken in batches (up to N records, or whatever came within T ms), each processed, all
  outputs published at once and acknowledged by the broker, and only then the batch acked: one round
  trip per batch rather than per record. faust's `take()` acks on its own, so the stream runs with
  `noack()` and the stage acks each event itself, in arrival order, after its outputs are safe;
- a stage whose effects batch (the sanitiser seals a batch in one store transaction) gives a batch handler;
  if it fails for the batch, each input is handled alone, so one poison input is dead-lettered by itself;
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
from typing import Any, NoReturn, TypeVar, cast

import faust
import structlog
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.types import StreamT

from schemas import DeadLetter
from schemas.topics import DEADLETTER, DEADLETTER_MAX_BYTES, TopicSpec
from services.common.errors import CpiError, DecodeError, TransientError
from services.common.files import private_dir
from services.common.kafka.clients import faust_broker
from services.common.kafka.progress import OffsetClock, lag
from services.common.metrics import (
    CONSUMER_LAG,
    DEAD_LETTERS,
    MESSAGES,
    PROCESSING_SECONDS,
    PUBLISHED,
    RELEASED_RECORDS,
    STAGE_LATENCY,
    exposition,
)
from services.common.settings import WorkerSettings

log = structlog.get_logger(__name__)

_ATTEMPTS = 5
_T = TypeVar("_T")


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
Outcome = Sequence[Publish] | Exception
BatchHandler = Callable[[Sequence[bytes]], Awaitable[Sequence[Outcome]]]
"""A handler for a whole batch (the sanitiser seals a batch in one store transaction): in input order, each
input's outputs, or the exception that input alone raised (it is dead-lettered). Raised for the batch, a
TransientError retries the batch; any other error is taken as some input's fault, so the inputs are then
handled one at a time to find which."""


def one_at_a_time(handler: BatchHandler) -> Handler:
    """`handler` for one input: its outputs, or its exception raised."""

    async def handle(value: bytes) -> Sequence[Publish]:
        [outcome] = await handler([value])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return handle


class _IdempotentProducer(AIOKafkaProducer):
    """faust's aiokafka producer with idempotence on outside transactions too."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class CpiApp(faust.App):
    """faust.App whose producer is always idempotent with acks=all."""

    # Each input topic's (full name) stage and registry name, filled by register_stage.
    stage_inputs: dict[str, tuple[str, str]]
    offset_clock: OffsetClock

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
    app.stage_inputs = {}
    app.offset_clock = OffsetClock()
    _add_health_pages(app)
    _watch_progress(app, settings.progress_interval_seconds)
    return app


def _watch_progress(app: CpiApp, interval: float) -> None:
    """Every `interval`, read the end offsets of this worker's input partitions: the consumer lag gauge,
    and the offset clock that stage latency is measured by (services/common/kafka/progress.py)."""
    shown: set[Any] = set()

    async def watch_progress() -> None:
        if app._consumer is None or app.consumer.state != "running" or app.rebalancing:
            return
        consumer: Any = app.consumer  # faust's ConsumerT stub lacks the committed offsets it keeps
        assigned = {tp for tp in consumer.assignment() if tp.topic in app.stage_inputs}
        for tp in shown - assigned:  # given to another worker: its lag is that worker's to show now
            stage, topic = app.stage_inputs[tp.topic]
            CONSUMER_LAG.remove(stage, topic, str(tp.partition))
            app.offset_clock.forget(tp)
        shown.intersection_update(assigned)
        if not assigned:
            return
        at = time.monotonic()  # before the request: the ends read were true at this moment or later
        try:
            ends = await consumer.highwaters(*assigned)
            uncommitted = [tp for tp in assigned if consumer._committed_offset.get(tp) is None]
            earliest = await consumer.earliest_offsets(*uncommitted) if uncommitted else {}
        except Exception as exc:  # a broker briefly away: the next reading will do, the stream is unaffected
            log.warning("progress_unread", error=type(exc).__name__)
            return
        for tp, end in ends.items():
            if end is None:
                continue
            app.offset_clock.observe(tp, end, at)
            stage, topic = app.stage_inputs[tp.topic]
            committed = consumer._committed_offset.get(tp)
            CONSUMER_LAG.labels(stage, topic, str(tp.partition)).set(lag(end, committed, earliest.get(tp) or 0))
            shown.add(tp)

    app.timer(interval)(watch_progress)


def _observe_latency(app: CpiApp, stage: str, message: Any) -> None:
    """How long `message` waited and was worked on here, now that its outputs are acknowledged."""
    written_by = app.offset_clock.not_written_at(message.tp, message.offset)
    if written_by is not None:
        STAGE_LATENCY.labels(stage).observe(time.monotonic() - written_by)


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
    app: CpiApp, settings: WorkerSettings, *, stage: str, source: TopicSpec, handler: Handler | None = None,
    batch_handler: BatchHandler | None = None, mixing: Mixing | None = None, batched: bool = True,
) -> None:
    """Run `handler` on every record of `source` (or `batch_handler` on every batch); publish what it returns;
    dead-letter what it can't take.

    Inputs are taken in batches of up to `settings.batch_max_records`, or what arrived within
    `settings.batch_max_wait_ms` of the first, processed in arrival order and published together. With
    `mixing`, batches are shuffled releases instead (see `Mixing`). `batched=False` takes one at a time (a
    handler that waits on purpose, as the notifier's retries do, would hold a whole batch up)."""
    if (handler is None) == (batch_handler is None):
        raise ValueError("a stage takes exactly one of handler and batch_handler")
    input_topic = app.topic(settings.topic(source.name), value_type=bytes, key_type=bytes)
    app.stage_inputs[settings.topic(source.name)] = (stage, source.name)
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

    async def retried(call: Callable[[], Awaitable[_T]]) -> _T:
        """`call`, with transient failures (a store or server briefly away) retried, then fatal."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await call()
            except TransientError as exc:
                log.warning("transient_failure", stage=stage, attempt=attempt, error=_safe_message(exc))
                await asyncio.sleep(min(2**attempt, 30))
        _give_up(stage, "handler")

    async def outcomes(values: Sequence[bytes]) -> Sequence[Outcome]:
        if batch_handler is not None:
            return await batch_outcomes(values, lambda batch: retried(lambda: batch_handler(batch)))
        assert handler is not None
        return [await one_outcome(handler, value) for value in values]

    async def one_outcome(handle: Handler, value: bytes) -> Outcome:
        try:
            return list(await retried(lambda: handle(value)))
        except Exception as exc:
            return exc

    async def process(events: Sequence[Any]) -> list[Publish]:
        """The batch's outputs, in order, with a dead letter for each input the handler can't take (never
        raises)."""
        values = [event.value if isinstance(event.value, bytes) else bytes(event.value or b"") for event in events]
        outputs: list[Publish] = []
        for event, outcome in zip(events, await outcomes(values), strict=True):
            if not isinstance(outcome, Exception):
                MESSAGES.labels(stage, "processed").inc()
                outputs.extend(outcome)
                continue
            message = event.message
            code = outcome.code if isinstance(outcome, DecodeError) else _error_code(outcome)
            DEAD_LETTERS.labels(stage, code).inc()
            MESSAGES.labels(stage, "dead_lettered").inc()
            log.warning("dead_lettered", stage=stage, topic=message.topic, partition=message.partition,
                        offset=message.offset, error_code=code)
            outputs.append(dead_letter(stage, message.topic, message.partition, message.offset,
                                       value=message.value or b"", key=message.key or b"", code=code,
                                       error=_safe_message(outcome)))
        return outputs

    release = mixing or Mixing(min_records=settings.batch_max_records if batched else 1,
                               max_wait_seconds=settings.batch_max_wait_ms / 1000, shuffle=False)
    pool = MixingPool(stage, release, process, publish, lambda event: _observe_latency(app, stage, event.message))

    @app.agent(input_topic, name=f"cpi-{stage}", concurrency=1)
    async def consume(stream: StreamT[Any]) -> None:
        # Acks are the pool's, once outputs are acknowledged (faust's StreamT stub lacks `noack`).
        manual: StreamT[Any] = cast(Any, stream).noack()
        releaser = asyncio.ensure_future(pool.release_when_due(manual))
        try:
            async for event in manual.events():
                await pool.add(event, manual)
        finally:
            releaser.cancel()


async def batch_outcomes(values: Sequence[bytes], handle: BatchHandler) -> Sequence[Outcome]:
    """Each input's outcome from `handle`, run on the whole batch; if it raises for the batch, on each input
    alone, so only the input at fault is dead-lettered (and the rest of its batch is not lost with it)."""
    try:
        results = await handle(values)
        if len(results) != len(values):
            raise CpiError(f"a batch handler returned {len(results)} outcomes for {len(values)} inputs")
    except Exception as exc:
        if len(values) == 1:
            return [exc]
        log.warning("batch_failed", records=len(values), error=type(exc).__name__)
        return [await _one(value, handle) for value in values]
    return results


async def _one(value: bytes, handle: BatchHandler) -> Outcome:
    try:
        [result] = await handle([value])
    except Exception as exc:
        return exc
    return result


@dataclass(frozen=True)
class Mixing:
    """Release a stage's outputs in batches, shuffled so the order records arrive in does not survive it.

    Inputs wait, unprocessed and unacknowledged, until at least `min_records` are waiting or the oldest
    has waited `max_wait_seconds`; then the whole pool is processed in random order (so whatever the
    handler stores is stored in that order too), published, and acknowledged. An observer who saw the
    inputs arrive can tell which release an output came in, never which input it was within it. A crash
    loses nothing: unacknowledged inputs are redelivered. Unshuffled, the same pool is a plain batch:
    processed in arrival order, so order per key is kept.
    """

    min_records: int
    max_wait_seconds: float
    shuffle: bool = True

    def __post_init__(self) -> None:
        if self.min_records < 1 or self.max_wait_seconds <= 0:
            raise ValueError("mixing needs min_records >= 1 and max_wait_seconds > 0")


class MixingPool:
    """The waiting inputs of a mixed stage, released by size (on arrival) or by age (on a timer)."""

    def __init__(self, stage: str, mixing: Mixing, process: Callable[[Sequence[Any]], Awaitable[list[Publish]]],
                 publish: Callable[[Sequence[Publish]], Awaitable[None]],
                 released: Callable[[Any], None] = lambda event: None) -> None:
        self._stage = stage
        self._released = released  # told of each input once its outputs are acknowledged
        self._mixing = mixing
        self._process = process
        self._publish = publish
        self._waiting: list[Any] = []
        self._oldest = 0.0
        self._lock = asyncio.Lock()  # the arrival loop and the timer both release
        self._arrived = asyncio.Event()  # set while anything waits: the timer sleeps on it, not on a tick
        self._shuffle = random.SystemRandom().shuffle if mixing.shuffle else None

    async def add(self, event: Any, stream: StreamT[Any]) -> None:
        async with self._lock:
            if not self._waiting:
                self._oldest = time.monotonic()
                self._arrived.set()
            self._waiting.append(event)
            if len(self._waiting) >= self._mixing.min_records:
                await self._release(stream)

    async def release_when_due(self, stream: StreamT[Any]) -> None:
        wait = self._mixing.max_wait_seconds
        try:
            while True:
                await self._arrived.wait()  # an idle worker does not wake at all
                due = self._oldest + wait - time.monotonic()
                if due > 0:
                    await asyncio.sleep(due)
                async with self._lock:
                    if self._waiting and time.monotonic() - self._oldest >= wait:
                        await self._release(stream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # without the timer a quiet pool would wait for ever: stop, uncommitted
            log.critical("mixing_timer_failed", stage=self._stage, error=type(exc).__name__)
            _give_up(self._stage, "release")

    async def _release(self, stream: StreamT[Any]) -> None:
        """Process the pool (in random order, when shuffled) as one batch, publish everything, then ack in arrival
        order. Caller holds the lock."""
        started = time.perf_counter()
        events, self._waiting = self._waiting, []
        self._arrived.clear()
        mixed = list(events)
        if self._shuffle is not None:
            self._shuffle(mixed)
        outputs = await self._process(mixed)
        await self._publish(outputs)
        for event in events:
            await stream.ack(event)
            self._released(event)
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
