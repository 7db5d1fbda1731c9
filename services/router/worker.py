"""Router worker: sanitised intel → a Decision on cpi.outcome.decided.v1 and on each outcome's topic."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import SanitisedIntel
from schemas.topics import DECIDED, OUTCOME_TOPICS, SANITISED
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
from services.common.settings import RouterSettings
from services.router.domain import RoutingRules, assess, load_rules

STAGE = "router"


def make_handler(rules: RoutingRules, settings: RouterSettings) -> Handler:
    async def handle(value: bytes) -> Sequence[Publish]:
        intel = decode(SanitisedIntel, value)
        decision = assess(intel, rules, source_evaluation=settings.source_evaluation)
        # Keyed by intel id, so every decision about one intel stays in order on one partition.
        key, body, stamp = intel.intel_id.encode(), encode(decision), day_timestamp()
        return [Publish(topic=DECIDED, key=key, value=body, timestamp=stamp)] + [
            Publish(topic=OUTCOME_TOPICS[outcome], key=key, value=body, timestamp=stamp)
            for outcome in decision.outcomes
        ]

    return handle


def build(settings: RouterSettings) -> CpiApp:
    rules = load_rules(settings.rules_path)  # a bad rules file stops the worker here, with the line
    app = create_app(STAGE, settings)
    register_stage(app, settings, stage=STAGE, source=SANITISED, handler=make_handler(rules, settings))
    return app


def main() -> None:
    settings = RouterSettings()
    run_worker(build(settings), settings)
