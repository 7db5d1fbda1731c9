"""Sanitiser worker: accepted → provenance sealed in the store → cpi.intel.sanitised.v1 without it.

Intel that may still point at its source (a residual-risk score at the threshold) goes to
cpi.intel.held.v1 instead, sealed, for the Intelligence Unit to review with `cpi held`; the worker
never releases it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from prometheus_client import Counter

from schemas import AcceptedSubmission, SanitisedIntel, Submission
from schemas.topics import ACCEPTED, HELD, SANITISED
from services.common.days import day_timestamp
from services.common.envelope import EnvelopeError, KeyringError, PrivateKeyring, RecipientKey, open_sealed
from services.common.errors import DecodeError
from services.common.kafka.stage import (
    CpiApp,
    Handler,
    Mixing,
    Publish,
    create_app,
    register_stage,
    run_worker,
)
from services.common.keys import StoreKeys, load_sanitiser_keys
from services.common.serde import decode, encode
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters.sealed_store import RetentionPolicy, SealedStore, open_sealed_store
from services.sanitiser.domain import ScrubConfig, load_scrub_config, sanitise
from services.sanitiser.held import hold
from services.sanitiser.residual import assess_residual_risk

STAGE = "sanitiser"

log = structlog.get_logger(__name__)

# Labelled by reason code only: an excerpt, or anything else from the text, would put what may be
# provenance on the metrics page.
HELD_TOTAL = Counter("cpi_sanitiser_held_total",
                     "Intel held for Intelligence Unit review instead of released, by reason code.", ["reason"])


def seal_and_sanitise(
    accepted: AcceptedSubmission, transport: PrivateKeyring, store: SealedStore, config: ScrubConfig
) -> SanitisedIntel:
    """Seal the provenance (idempotent per submission) and build the intel that carries none of it."""
    try:
        submission = Submission.model_validate_json(
            open_sealed(accepted.sealed_submission, accepted.submission_id.encode(), transport)
        )
    except (EnvelopeError, KeyringError, ValueError):
        raise DecodeError("sealed_submission_unreadable",
                          "the sealed submission does not open or is not a valid Submission") from None
    received_on = accepted.received_on
    intel_id = store.seal(accepted.submission_id, submission.source, received_on)
    return sanitise(submission, submission.source, intel_id=intel_id, received_on=received_on, config=config)


def release_or_hold(intel: SanitisedIntel, unseal: RecipientKey, hold_threshold: float) -> Publish:
    """The sanitised intel for the router, or, if its residual risk reaches the threshold, the held record
    for the Intelligence Unit instead, sealed to the unseal public key (counted and logged by reason code only)."""
    key, stamp = intel.intel_id.encode(), day_timestamp()
    risk = assess_residual_risk(intel)
    if not risk.holds(hold_threshold):
        return Publish(topic=SANITISED, key=key, value=encode(intel), timestamp=stamp)
    for code in risk.codes:
        HELD_TOTAL.labels(reason=code).inc()
    log.info("intel_held", intel_id=intel.intel_id, score=risk.score, reason_codes=list(risk.codes))
    return Publish(topic=HELD, key=key, value=encode(hold(intel, risk, unseal)), timestamp=stamp)


def make_handler(transport: PrivateKeyring, unseal: RecipientKey, store: SealedStore, config: ScrubConfig,
                 hold_threshold: float) -> Handler:
    async def handle(value: bytes) -> Sequence[Publish]:
        accepted = decode(AcceptedSubmission, value)
        # The store does blocking I/O (SQLite/PostgreSQL): keep it off the event loop.
        intel = await asyncio.to_thread(seal_and_sanitise, accepted, transport, store, config)
        return [release_or_hold(intel, unseal, hold_threshold)]

    return handle


def open_store(settings: SanitiserSettings, keys: StoreKeys) -> SealedStore:
    """The configured sealed store, opened with the calling process's own keys (sanitiser or unseal path).

    The unseal path (it holds the audit-signing key) anchors every audit entry on the audit topic: with Kafka
    away, whatever it would audit is refused (AuditUnavailable). The sanitiser writes no audit entry."""
    from services.sanitiser.adapters.audit_topic import KafkaAuditAnchor

    anchor = KafkaAuditAnchor(settings) if keys.audit_signing is not None else None
    return open_sealed_store(settings.sealed_store, keys, anchor=anchor,
                             retention=RetentionPolicy(review_after_years=settings.retention_years))


def build(settings: SanitiserSettings, *, store: SealedStore | None = None) -> CpiApp:
    app = create_app(STAGE, settings)
    keys = load_sanitiser_keys(settings)
    assert keys.store.unseal_public is not None  # the sanitiser's keys always have it
    store = store or open_store(settings, keys.store)
    # Mixed, so neither the sanitised topic's order nor the sealed store's matches arrival order.
    mixing = Mixing(min_records=settings.release_min_records, max_wait_seconds=settings.release_max_wait_seconds)
    register_stage(app, settings, stage=STAGE, source=ACCEPTED,
                   handler=make_handler(keys.transport, keys.store.unseal_public, store, load_scrub_config(),
                                        settings.hold_threshold), mixing=mixing)
    return app


def main() -> None:
    settings = SanitiserSettings()
    run_worker(build(settings), settings)
