"""Sanitiser worker: accepted → provenance sealed in the store → cpi.intel.sanitised.v1 without it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC

from schemas import AcceptedSubmission, SanitisedIntel, Submission
from schemas.topics import ACCEPTED, SANITISED
from services.common.envelope import EnvelopeError, Keyring, open_envelope
from services.common.errors import DecodeError
from services.common.kafka.stage import (
    CpiApp,
    Handler,
    Publish,
    create_app,
    day_timestamp,
    register_stage,
    run_worker,
)
from services.common.serde import decode, encode
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters.sealed_store import RetentionPolicy, SealedStore, open_sealed_store
from services.sanitiser.domain import ScrubConfig, load_scrub_config, sanitise

STAGE = "sanitiser"


def seal_and_sanitise(
    accepted: AcceptedSubmission, keyring: Keyring, store: SealedStore, config: ScrubConfig
) -> SanitisedIntel:
    """Seal the provenance (idempotent per submission) and build the intel that carries none of it."""
    try:
        submission = Submission.model_validate_json(
            open_envelope(accepted.sealed_submission, accepted.submission_id.encode(), keyring)
        )
    except (EnvelopeError, ValueError):
        raise DecodeError("sealed_submission_unreadable",
                          "the sealed submission does not open or is not a valid Submission") from None
    received_on = accepted.received_at.astimezone(UTC).date()
    intel_id = store.seal(accepted.submission_id, submission.source, received_on)
    return sanitise(submission, submission.source, intel_id=intel_id, received_on=received_on, config=config)


def make_handler(keyring: Keyring, store: SealedStore, config: ScrubConfig) -> Handler:
    async def handle(value: bytes) -> Sequence[Publish]:
        accepted = decode(AcceptedSubmission, value)
        # The store does blocking I/O (SQLite/PostgreSQL): keep it off the event loop.
        intel = await asyncio.to_thread(seal_and_sanitise, accepted, keyring, store, config)
        return [Publish(topic=SANITISED, key=intel.intel_id.encode(), value=encode(intel),
                        timestamp=day_timestamp())]

    return handle


def open_store(settings: SanitiserSettings) -> SealedStore:
    return open_sealed_store(settings.sealed_store, settings.keyring_file,
                             retention=RetentionPolicy(review_after_years=settings.retention_years))


def build(settings: SanitiserSettings, *, store: SealedStore | None = None) -> CpiApp:
    app = create_app(STAGE, settings)
    keyring = Keyring.load_or_create(settings.keyring_file)
    store = store or open_store(settings)
    register_stage(app, settings, stage=STAGE, source=ACCEPTED,
                   handler=make_handler(keyring, store, load_scrub_config()))
    return app


def main() -> None:
    settings = SanitiserSettings()
    run_worker(build(settings), settings)
