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
    BatchHandler,
    CpiApp,
    Handler,
    Mixing,
    Outcome,
    Publish,
    create_app,
    one_at_a_time,
    register_stage,
    run_worker,
)
from services.common.keys import StoreKeys, load_sanitiser_keys
from services.common.serde import decode, encode
from services.common.settings import SanitiserSettings
from services.sanitiser.adapters.sealed_store import RetentionPolicy, SealedStore, SealRequest, open_sealed_store
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
    batch: Sequence[AcceptedSubmission], transport: PrivateKeyring, store: SealedStore, config: ScrubConfig
) -> list[SanitisedIntel | Exception]:
    """Seal a batch's provenance in one store transaction (idempotent per submission) and build each intel,
    which carries none of it; an input that does not open, or does not sanitise, is that input's exception."""
    opened = [_open_submission(accepted, transport) for accepted in batch]
    sealing = [(accepted, submission) for accepted, submission in zip(batch, opened, strict=True)
               if isinstance(submission, Submission)]
    intel_ids = iter(store.seal_batch([SealRequest(accepted.submission_id, submission.source, accepted.received_on)
                                       for accepted, submission in sealing]))
    results: list[SanitisedIntel | Exception] = []
    for accepted, submission in zip(batch, opened, strict=True):
        if not isinstance(submission, Submission):
            results.append(submission)
            continue
        try:
            results.append(sanitise(submission, submission.source, intel_id=next(intel_ids),
                                    received_on=accepted.received_on, config=config))
        except Exception as exc:  # this input's fault alone: dead-lettered; its provenance stays sealed
            results.append(exc)
    return results


def _open_submission(accepted: AcceptedSubmission, transport: PrivateKeyring) -> Submission | DecodeError:
    try:
        return Submission.model_validate_json(
            open_sealed(accepted.sealed_submission, accepted.submission_id.encode(), transport)
        )
    except (EnvelopeError, KeyringError, ValueError):
        return DecodeError("sealed_submission_unreadable",
                           "the sealed submission does not open or is not a valid Submission")


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


def make_batch_handler(transport: PrivateKeyring, unseal: RecipientKey, store: SealedStore, config: ScrubConfig,
                       hold_threshold: float) -> BatchHandler:
    async def handle(values: Sequence[bytes]) -> list[Outcome]:
        decoded = [_decoded(value) for value in values]
        batch = [accepted for accepted in decoded if isinstance(accepted, AcceptedSubmission)]
        # The store does blocking I/O (SQLite/PostgreSQL): keep it off the event loop.
        intels = iter(await asyncio.to_thread(seal_and_sanitise, batch, transport, store, config))
        outcomes: list[Outcome] = []
        for accepted in decoded:
            intel = next(intels) if isinstance(accepted, AcceptedSubmission) else accepted
            outcomes.append(intel if isinstance(intel, Exception) else [release_or_hold(intel, unseal, hold_threshold)])
        return outcomes

    return handle


def make_handler(transport: PrivateKeyring, unseal: RecipientKey, store: SealedStore, config: ScrubConfig,
                 hold_threshold: float) -> Handler:
    """The batch handler for one input at a time (what the tests and tools that handle a single record use)."""
    return one_at_a_time(make_batch_handler(transport, unseal, store, config, hold_threshold))


def _decoded(value: bytes) -> AcceptedSubmission | DecodeError:
    try:
        return decode(AcceptedSubmission, value)
    except DecodeError as exc:
        return exc


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
                   batch_handler=make_batch_handler(keys.transport, keys.store.unseal_public, store,
                                                    load_scrub_config(), settings.hold_threshold), mixing=mixing)
    return app


def main() -> None:
    settings = SanitiserSettings()
    run_worker(build(settings), settings)
