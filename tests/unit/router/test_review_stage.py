"""The router's review stage (issue 12 step 3): a handler's review becomes the next revision, published on the
decided topic and on the topics of its outcomes and of those it removes, keyed by intel id; a review that makes
no valid revision raises, so the stage dead-letters it."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from schemas import Decision
from schemas.decision import Agreement, agreement
from schemas.topics import DECIDED, OUTCOME_TOPICS
from services.router.worker import make_review_handler
from tests.decision_helpers import decision, review


def test_a_revision_goes_to_decided_and_to_every_outcome_topic_it_keeps_adds_or_removes() -> None:
    """Crime desk kept, intelligence log removed, safeguarding added: all three topics and decided get revision 1."""
    base = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    sent = review(base, outcomes=["crime_desk", "safeguarding"], priority="high")
    published = asyncio.run(make_review_handler()(sent.model_dump_json().encode()))
    assert [p.topic for p in published] == [DECIDED] + [OUTCOME_TOPICS[o] for o in sent.assessed.outcomes] + [
        OUTCOME_TOPICS[base.outcomes[0]]]
    assert {p.key for p in published} == {base.intel_id.encode()}
    [value] = {p.value for p in published}
    revision = Decision.model_validate_json(value)
    assert revision == sent.revised() and revision.revision == 1


def test_a_review_that_makes_no_valid_revision_raises() -> None:
    """A "confirmation" that changes the outcomes is refused, not published."""
    base = decision("medium", ["crime_desk"], ["drug_related_harm"])
    forged = review(base, action="confirmed", outcomes=["safeguarding"])
    with pytest.raises(ValidationError):
        asyncio.run(make_review_handler()(forged.model_dump_json().encode()))


def test_agreement_compares_the_routers_draft_with_the_handlers_review() -> None:
    """A handler who raises a medium draft to high, adding safeguarding, disagrees on both and records an
    under-triage; a confirmation agrees on both; lowering a high is not under-triage."""
    draft = decision("medium", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    raised = review(draft, outcomes=["intelligence_log", "crime_desk", "safeguarding"], priority="high")
    assert agreement(draft.assessed, raised.assessed) == Agreement(False, False, True)
    assert agreement(draft.assessed, review(draft, action="confirmed").assessed) == Agreement(True, True, False)
    high = decision("high", ["intelligence_log", "crime_desk"], ["criminal_exploitation"])
    assert agreement(high.assessed, review(high, priority="medium").assessed) == Agreement(True, False, False)


def test_a_review_of_a_handlers_own_revision_is_not_counted_as_agreement() -> None:
    """Only the first review compares the router with a handler; a second compares two handlers."""
    before = [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SAMPLES]
    first = review(decision("low", ["intelligence_log"], ["criminal_exploitation"]), priority="medium",
                   outcomes=["intelligence_log", "safeguarding"]).revised()
    asyncio.run(make_review_handler()(review(first, priority="high").model_dump_json().encode()))
    assert [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SAMPLES] == before


def test_the_review_stage_counts_agreement_and_under_triage() -> None:
    """The router's /metrics carries router-handler agreement and under-triage, counted once per first review."""
    before = [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SAMPLES]
    draft = decision("low", ["intelligence_log"], ["criminal_exploitation"])
    sent = review(draft, outcomes=["intelligence_log", "safeguarding"], priority="high")
    asyncio.run(make_review_handler()(sent.model_dump_json().encode()))
    after = [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SAMPLES]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1.0, 1.0, 1.0]


SAMPLES = [("cpi_router_handler_agreement_total", {"field": "outcomes", "result": "amended"}),
           ("cpi_router_handler_agreement_total", {"field": "priority", "result": "amended"}),
           ("cpi_router_under_triaged_total", {})]
