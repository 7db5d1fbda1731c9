"""Intake worker: received → accepted | rejected, validated by the same function the API uses."""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas import AcceptedSubmission, ReceivedSubmission, RejectedSubmission
from schemas.topics import ACCEPTED, RECEIVED, REJECTED
from services.common.days import day_timestamp
from services.common.envelope import EnvelopeError, KeyringError, PrivateKeyring, open_sealed, seal_to
from services.common.errors import DecodeError
from services.common.kafka.stage import CpiApp, Handler, Publish, create_app, register_stage, run_worker
from services.common.keys import load_intake_keys
from services.common.serde import decode, encode
from services.common.settings import IntakeSettings
from services.intake.domain import validate_submission
from services.intake.metrics import count_rejection

STAGE = "intake"
# The channel label of rejections the worker finds on re-checking (the edge validated with the same
# function, so these mean the rules changed between the two).
WORKER_RECHECK = "worker_recheck"


def check_received(received: ReceivedSubmission, transport: PrivateKeyring) -> AcceptedSubmission | RejectedSubmission:
    """Open the sealed submission in memory with the transport private key, validate it, and say accepted
    (sealed again to the transport public key, the primary's) or rejected."""
    aad = received.submission_id.encode()
    try:
        data = json.loads(open_sealed(received.sealed_submission, aad, transport))
    except (EnvelopeError, KeyringError, ValueError):
        raise DecodeError("sealed_submission_unreadable",
                          "the sealed submission does not open with the transport key or is not JSON") from None
    validation = validate_submission(data)
    if validation.submission is None:
        return RejectedSubmission(submission_id=received.submission_id, received_on=received.received_on,
                                  errors=validation.errors[:200])
    return AcceptedSubmission(submission_id=received.submission_id, received_on=received.received_on,
                              sealed_submission=seal_to(validation.submission.model_dump_json().encode(), aad,
                                                        transport.recipient()))


def make_handler(transport: PrivateKeyring) -> Handler:
    """The stage handler: bytes of a received record in, one accepted or rejected record out.

    Bytes that are not a ReceivedSubmission raise DecodeError, which the stage dead-letters.
    """

    async def handle(value: bytes) -> Sequence[Publish]:
        received = decode(ReceivedSubmission, value)
        result = check_received(received, transport)
        topic = ACCEPTED if isinstance(result, AcceptedSubmission) else REJECTED
        if isinstance(result, RejectedSubmission):
            # The record no longer says which channel it came by; the edge counted that already.
            count_rejection(WORKER_RECHECK, [e.code for e in result.errors])
        return [Publish(topic=topic, key=received.submission_id.encode(), value=encode(result),
                        timestamp=day_timestamp(received.received_on))]

    return handle


def build(settings: IntakeSettings, *, transport: PrivateKeyring | None = None) -> CpiApp:
    """The intake worker's faust app: received in, accepted or rejected out."""
    app = create_app(STAGE, settings)
    handler = make_handler(transport or load_intake_keys(settings))
    register_stage(app, settings, stage=STAGE, source=RECEIVED, handler=handler)
    return app


def main() -> None:
    """`cpi worker intake`."""
    settings = IntakeSettings()
    run_worker(build(settings), settings)
