"""Intake worker: received → accepted | rejected, validated by the same function the API uses."""

from __future__ import annotations

import json
from collections.abc import Sequence

from schemas import AcceptedSubmission, ReceivedSubmission, RejectedSubmission, SubmissionContent, ValidationIssue
from schemas.topics import ACCEPTED, RECEIVED, REJECTED
from services.common.envelope import EnvelopeError, Keyring, open_envelope
from services.common.errors import DecodeError
from services.common.kafka.stage import CpiApp, Handler, Publish, create_app, register_stage, run_worker
from services.common.serde import decode, encode
from services.common.settings import IntakeSettings
from services.intake.domain import validate_submission
from services.intake.metrics import count_rejection

STAGE = "intake"


def check_received(received: ReceivedSubmission, keyring: Keyring) -> AcceptedSubmission | RejectedSubmission:
    """Open the sealed source in memory, validate the whole submission, and say accepted or rejected."""
    try:
        source = json.loads(open_envelope(received.sealed_source, received.submission_id.encode(), keyring))
    except (EnvelopeError, ValueError):
        raise DecodeError("sealed_source_unreadable", "the sealed source does not open with this keyring") from None
    if "source" in received.content:
        errors = [ValidationIssue(path="/source", code="source_not_sealed",
                                  message="The source must travel sealed, never inside the content.")]
        return RejectedSubmission(submission_id=received.submission_id, channel=received.channel,
                                  received_at=received.received_at, errors=errors)
    validation = validate_submission({**received.content, "source": source})
    if validation.submission is None:
        return RejectedSubmission(submission_id=received.submission_id, channel=received.channel,
                                  received_at=received.received_at, errors=validation.errors[:200])
    content = SubmissionContent.model_validate(validation.submission.model_dump(exclude={"source"}))
    return AcceptedSubmission(submission_id=received.submission_id, channel=received.channel,
                              received_at=received.received_at, content=content,
                              sealed_source=received.sealed_source)


def make_handler(keyring: Keyring) -> Handler:
    """The stage handler: bytes of a received record in, one accepted or rejected record out.

    Bytes that are not a ReceivedSubmission raise DecodeError, which the stage dead-letters.
    """

    async def handle(value: bytes) -> Sequence[Publish]:
        received = decode(ReceivedSubmission, value)
        result = check_received(received, keyring)
        topic = ACCEPTED if isinstance(result, AcceptedSubmission) else REJECTED
        if isinstance(result, RejectedSubmission):
            count_rejection(result.channel.value, [e.code for e in result.errors])
        return [Publish(topic=topic, key=received.submission_id.encode(), value=encode(result))]

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
