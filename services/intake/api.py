"""The intake HTTP edge: the web form and `POST /api/v1/submissions`, producing to the received topic.

The source block is field-encrypted here, before anything is produced, so no topic ever holds it
readable. The receipt handed back to the professional never becomes an id downstream.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import BaseModel

from schemas import Channel, ReceivedSubmission, Submission, ValidationIssue
from schemas.topics import RECEIVED
from services.common.envelope import Keyring, seal
from services.common.serde import encode
from services.common.settings import IntakeSettings
from services.intake.domain import validate_submission

log = structlog.get_logger(__name__)

SUBMISSIONS = Counter("cpi_intake_submissions_total", "Submissions received at the edge, by channel and result.",
                      ["channel", "result"])


class Receipt(BaseModel):
    receipt_id: str
    received_at: datetime


class Problems(BaseModel):
    errors: list[ValidationIssue]


def received_record(submission: Submission, channel: Channel, keyring: Keyring) -> ReceivedSubmission:
    """The received-topic record: a fresh submission id, the content, and the source sealed to that id."""
    submission_id = uuid.uuid4().hex
    sealed = seal(submission.source.model_dump_json().encode(), submission_id.encode(), keyring)
    return ReceivedSubmission(
        submission_id=submission_id,
        channel=channel,
        received_at=datetime.now(UTC),
        content=submission.model_dump(mode="json", exclude={"source"}),
        sealed_source=sealed,
    )


def create_api(settings: IntakeSettings, *, keyring: Keyring | None = None) -> FastAPI:
    """The FastAPI app; Kafka producer started and stopped with it."""
    ring = keyring or Keyring.load_or_create(settings.keyring_file)
    producer_box: dict[str, AIOKafkaProducer] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        producer_box["producer"] = producer
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(title="CPI intake", version="1", lifespan=lifespan)

    async def accept(data: object, channel: Channel) -> tuple[int, dict[str, Any]]:
        validation = validate_submission(data)
        if validation.submission is None:
            SUBMISSIONS.labels(channel.value, "rejected").inc()
            return 422, Problems(errors=validation.errors).model_dump(mode="json")
        record = received_record(validation.submission, channel, ring)
        await producer_box["producer"].send_and_wait(
            settings.topic(RECEIVED.name), value=encode(record), key=record.submission_id.encode()
        )
        SUBMISSIONS.labels(channel.value, "received").inc()
        log.info("submission_received", channel=channel.value)
        return 202, Receipt(receipt_id=uuid.uuid4().hex, received_at=record.received_at).model_dump(mode="json")

    @app.post("/api/v1/submissions", status_code=202, response_model=Receipt,
              responses={422: {"model": Problems}})
    async def submit(request: Request) -> JSONResponse:
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            issue = ValidationIssue(path="", code="invalid_json", message="The body is not valid JSON.")
            return JSONResponse(Problems(errors=[issue]).model_dump(mode="json"), status_code=400)
        status, body = await accept(data, Channel.API)
        return JSONResponse(body, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    async def form() -> HTMLResponse:
        return HTMLResponse(_FORM)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = "producer" in producer_box
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


_FORM = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Share information with the police (non-urgent)</title></head>
<body><main>
<h1>Community Partnership Information</h1>
<p><strong>If anyone is in immediate danger, call 999.</strong> This form is for non-urgent information
only and is not a referral.</p>
<p>Partner systems: send JSON to <code>POST /api/v1/submissions</code> (see <a href="/docs">the API</a>).</p>
<p>{html.escape("The full form is being built; the API accepts every field of a submission today.")}</p>
</main></body></html>
"""
