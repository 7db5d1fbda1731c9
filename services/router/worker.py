"""Router worker: sanitised intel → a Decision on cpi.outcome.decided.v1 and on each outcome's topic; and a
handler's review (cpi.decision.reviewed.v1, from the console) → that decision's next revision on the same topics."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from schemas import Decision, DecisionReview, Outcome, SanitisedIntel
from schemas.decision import agreement
from schemas.topics import DECIDED, OUTCOME_TOPICS, REVIEWED, SANITISED
from services.common.days import day_timestamp
from services.common.kafka.stage import (
    CpiApp,
    Handler,
    Publish,
    create_app,
    register_stage,
    run_worker,
)
from services.common.serde import decode, encode
from services.common.settings import RouterSettings
from services.router.domain import RoutingRules, assess, load_rules
from services.router.model import TextModel, second_opinion

STAGE = "router"
REVIEW_STAGE = "router-review"


DECISIONS = Counter("cpi_router_decisions_total", "Decisions by outcome and priority (one per outcome).",
                    ["outcome", "priority"])
RULES_FIRED = Counter("cpi_router_rules_fired_total", "Rules that fired, by rule id and rules version.",
                      ["rule_id", "rules_version"])
REVIEWS = Counter("cpi_router_review_reasons_total", "Decisions flagged for review, by reason code and model version.",
                  ["code", "model_version"])
REVISIONS = Counter("cpi_router_revisions_total", "Reviewed revisions published, by action (confirmed, amended).",
                    ["action"])
# Router against handler on each first review (issue 12 step 7): by field (outcomes, priority) and result (agreed,
# amended); and the high-risk reports the router under-triaged. Agreement rate = agreed / (agreed + amended).
AGREEMENT = Counter("cpi_router_handler_agreement_total", "Handlers' first reviews of the router's drafts, by field "
                    "(outcomes, priority) and result (agreed, amended).", ["field", "result"])
UNDER_TRIAGED = Counter("cpi_router_under_triaged_total", "Drafts a handler raised to high priority.")
for _field in ("outcomes", "priority"):  # served from the start, so the dashboard's rate has a series to read
    for _result in ("agreed", "amended"):
        AGREEMENT.labels(_field, _result)
ASSESSMENT_SECONDS = Histogram("cpi_router_assessment_seconds", "Time to assess one intel.",
                               buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1))


def make_handler(rules: RoutingRules, settings: RouterSettings, model: TextModel | None = None) -> Handler:
    async def handle(value: bytes) -> Sequence[Publish]:
        intel = decode(SanitisedIntel, value)
        with ASSESSMENT_SECONDS.time():
            decision = assess(intel, rules, source_evaluation=settings.source_evaluation, model=model)
        for outcome in decision.outcomes:
            DECISIONS.labels(outcome.value, decision.priority.value).inc()
        for firing in decision.rationale:
            RULES_FIRED.labels(firing.rule_id, decision.rules_version).inc()
        for reason in decision.review.reasons if decision.review else []:
            REVIEWS.labels(reason.code, decision.model_version).inc()
        return published(decision)

    return handle


def published(decision: Decision, withdrawn_from: Sequence[Outcome] = ()) -> list[Publish]:
    """The decision on the decided topic and on each of its outcomes' topics (and on those of `withdrawn_from`, the
    outcomes a revision removed, so their readers learn it too). Keyed by intel id, so every revision of one
    intel's decision stays in order on one partition."""
    key, body, stamp = decision.intel_id.encode(), encode(decision), day_timestamp()
    outcomes = dict.fromkeys([*decision.outcomes, *withdrawn_from])  # each once, in order
    return [Publish(topic=DECIDED, key=key, value=body, timestamp=stamp)] + [
        Publish(topic=OUTCOME_TOPICS[outcome], key=key, value=body, timestamp=stamp) for outcome in outcomes
    ]


def make_review_handler() -> Handler:
    """A handler's review → the decision's next revision. A review that does not make a valid revision (a
    "confirmation" that changes something) raises, and so is dead-lettered with the reason."""
    async def handle(value: bytes) -> Sequence[Publish]:
        review = decode(DecisionReview, value)
        revision = review.revised()
        REVISIONS.labels(review.action.value).inc()
        if review.base.revision == 0:  # a review of a handler's own revision says nothing of the router
            compared = agreement(review.base.assessed, review.assessed)
            for field, agreed in (("outcomes", compared.outcomes_agreed), ("priority", compared.priority_agreed)):
                AGREEMENT.labels(field, "agreed" if agreed else "amended").inc()
            if compared.under_triaged:
                UNDER_TRIAGED.inc()
        return published(revision, withdrawn_from=review.base.outcomes)

    return handle


def build(settings: RouterSettings) -> CpiApp:
    rules = load_rules(settings.rules_path)  # a bad rules file stops the worker here, with the line
    app = create_app(STAGE, settings)
    handler = make_handler(rules, settings, second_opinion(settings))
    register_stage(app, settings, stage=STAGE, source=SANITISED, handler=handler)
    register_stage(app, settings, stage=REVIEW_STAGE, source=REVIEWED, handler=make_review_handler())
    return app


def main() -> None:
    settings = RouterSettings()
    run_worker(build(settings), settings)
