"""Intake worker: received → accepted | rejected, validated by the same function the API uses."""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas import AcceptedSubmission, ReceivedSubmission, RejectedSubmission
from schemas.topics import ACCEPTED, RECEIVED, REJECTED
from services.common.days import day_timestamp
from services.common.envelope import EnvelopeError, Keyring, open_envelope, seal
from services.common.errors import DecodeError
from services.common.kafka.stage import CpiApp, Handler, Publish, create_app, register_stage, run_worker
from services.common.serde import decode, encode
from services.common.settings import IntakeSettings
from services.intake.domain import validate_submission
from services.intake.metrics import count_rejection

STAGE = "intake"
# The channel label of rejections the worker finds on re-checking (the edge validated with the same
# function, so these mean the rules changed between the two).
WORKER_RECHECK = "worker_recheck"


def check_received(received: ReceivedSubmission, keyring: Keyring) -> AcceptedSubmission | RejectedSubmission:
    """Open the sealed submission in memory, validate it, and say accepted (re-sealed) or rejected."""
    aad = received.submission_id.encode()
    try:
        data = json.loads(open_envelope(received.sealed_submission, aad, keyring))
    except (EnvelopeError, ValueError):
        raise DecodeError("sealed_submission_unreadable",
                          "the sealed submission does not open with this keyring or is not JSON") from None
    validation = validate_submission(data)
    if validation.submission is None:
        return RejectedSubmission(submission_id=received.submission_id, received_on=received.received_on,
                                  errors=validation.errors[:200])
    return AcceptedSubmission(submission_id=received.submission_id, received_on=received.received_on,
                              sealed_submission=seal(validation.submission.model_dump_json().encode(), aad, keyring))


def make_handler(keyring: Keyring) -> Handler:
    """The stage handler: bytes of a received record in, one accepted or rejected record out.

    Bytes that are not a ReceivedSubmission raise DecodeError, which the stage dead-letters.
    """

    async def handle(value: bytes) -> Sequence[Publish]:
        received = decode(ReceivedSubmission, value)
        result = check_received(received, keyring)
        topic = ACCEPTED if isinstance(result, AcceptedSubmission) else REJECTED
        if isinstance(result, RejectedSubmission):
            # The record no longer says which channel it came by; the edge counted that already.
            count_rejection(WORKER_RECHECK, [e.code for e in result.errors])
        return [Publish(topic=topic, key=received.submission_id.encode(), value=encode(result),
                        timestamp=day_timestamp(received.received_on))]

    return handle


def build(settings: IntakeSettings, *, keyring: Keyring | None = None) -> CpiApp:
    """The intake worker's faust app: received in, accepted or rejected out."""
    app = create_app(STAGE, settings)
    handler = make_handler(keyring or Keyring.load_or_create(settings.keyring_file))
    register_stage(app, settings, stage=STAGE, source=RECEIVED, handler=handler)
    return app


def main() -> None:
    """`cpi worker intake`."""
    settings = IntakeSettings()
    run_worker(build(settings), settings)
