"""The review queue's pure rules: which decisions need review, their order, their clocks and the filters; and
the settings that configure them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.console.domain import (
    ClockStatus,
    QueueConfigError,
    QueuedDecision,
    QueueFilter,
    QueueRow,
    clock,
    parse_review_criteria,
    parse_review_targets,
    review_grounds,
    review_queue,
)
from services.console.settings import ConsoleSettings

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TARGETS = {"high": timedelta(hours=1), "medium": timedelta(hours=24), "low": timedelta(hours=72)}


def item(name: str, priority: str, waited: timedelta, *, outcomes: tuple[str, ...] = ("intelligence_log",),
         categories: tuple[str, ...] = ("drug_related_harm",), codes: tuple[str, ...] = ()) -> QueuedDecision:
    return QueuedDecision(name, name.ljust(32, "0"), priority, outcomes, categories, codes, NOW - waited)


def names(rows: list[QueueRow]) -> list[str]:
    return [row.item.decision_id for row in rows]


def test_targets_parse_per_priority_and_a_priority_left_out_has_none() -> None:
    """`high=1h,medium=90m,low=3d` gives each priority its target in any unit; `none` is left without one."""
    assert parse_review_targets(" high=1h, medium=90m,low=3d ") == {
        "high": timedelta(hours=1), "medium": timedelta(minutes=90), "low": timedelta(days=3)}


@pytest.mark.parametrize("text", ["high=1", "urgent=1h", "high=0h", "high=1h,high=2h", "high:1h", "high=-1h"])
def test_a_target_that_cannot_be_used_is_refused_with_what_to_give(text: str) -> None:
    """A missing unit, an unknown priority, a zero, a repeat or a wrong separator is a configuration error."""
    with pytest.raises(QueueConfigError):
        parse_review_targets(text)


def test_criteria_parse_and_nothing_or_a_malformed_code_is_refused() -> None:
    """Criteria are a comma-separated set; an empty list or a code with capitals or spaces is refused."""
    assert parse_review_criteria("high_priority, flagged") == {"high_priority", "flagged"}
    for bad in ("", " , ", "High", "rules conflict"):
        with pytest.raises(QueueConfigError):
            parse_review_criteria(bad)


def test_which_decisions_need_review_follows_the_configured_criteria() -> None:
    """`all` takes every decision; `high_priority` the high ones; `flagged` any the router flagged; a code only
    those flagged with that code."""
    high = item("high", "high", timedelta(0))
    doubted = item("doubt", "low", timedelta(0), codes=("model_doubts_crime_desk",))
    thin = item("thin", "medium", timedelta(0), codes=("rules_evidence_thin",))
    plain = item("plain", "low", timedelta(0))
    everything = [high, doubted, thin, plain]

    def chosen(criteria: str) -> set[str]:
        return {i.decision_id for i in everything if review_grounds(i, parse_review_criteria(criteria))}

    assert chosen("all") == {"high", "doubt", "thin", "plain"}
    assert chosen("high_priority") == {"high"}
    assert chosen("flagged") == {"doubt", "thin"}
    assert chosen("high_priority,rules_evidence_thin") == {"high", "thin"}
    assert review_grounds(thin, frozenset({"flagged", "rules_evidence_thin"})) == ("flagged", "rules_evidence_thin")


def test_the_queue_is_high_priority_first_then_the_longest_waiting() -> None:
    """Whatever order they are read in: every high before any medium before any low, oldest first within each."""
    items = [item("low-old", "low", timedelta(days=5)), item("high-new", "high", timedelta(minutes=5)),
             item("med-new", "medium", timedelta(hours=1)), item("high-old", "high", timedelta(hours=3)),
             item("med-old", "medium", timedelta(hours=30)), item("none-old", "none", timedelta(days=9))]
    rows = review_queue(items, criteria=frozenset({"all"}), targets=TARGETS, now=NOW)
    assert names(rows) == ["high-old", "high-new", "med-old", "med-new", "low-old", "none-old"]
    assert names(review_queue(list(reversed(items)), criteria=frozenset({"all"}), targets=TARGETS, now=NOW)) \
        == names(rows)


def test_each_clock_runs_against_its_prioritys_target() -> None:
    """Two hours is a breach for high (1h) but within target for medium (24h); none has no target; a clock a
    little ahead of the host's (a skewed clock) shows no wait rather than a negative one."""
    assert clock(item("a", "high", timedelta(hours=2)), NOW, TARGETS).status is ClockStatus.BREACHED
    assert clock(item("a", "high", timedelta(hours=2)), NOW, TARGETS).left == timedelta(hours=-1)
    medium = clock(item("b", "medium", timedelta(hours=2)), NOW, TARGETS)
    assert (medium.status, medium.left) == (ClockStatus.WITHIN_TARGET, timedelta(hours=22))
    assert clock(item("c", "none", timedelta(days=30)), NOW, TARGETS).status is ClockStatus.NO_TARGET
    assert clock(item("d", "high", timedelta(minutes=-3)), NOW, TARGETS).waited == timedelta(0)
    exactly = clock(item("e", "high", timedelta(hours=1)), NOW, TARGETS)
    assert exactly.status is ClockStatus.WITHIN_TARGET  # at the target, not yet past it


def test_filters_come_from_query_parameters_and_unknown_values_filter_nothing() -> None:
    """Known values become filters; an unknown category, an empty outcome or a misspelt status are no filter."""
    assert QueueFilter.from_query({"category": "modern_slavery", "outcome": "crime_desk", "priority": "high",
                                   "status": "breached"}) == QueueFilter("modern_slavery", "crime_desk", "high",
                                                                        ClockStatus.BREACHED)
    assert QueueFilter.from_query({"category": "<b>x</b>", "outcome": "", "status": "late"}) == QueueFilter()


def test_each_filter_narrows_the_queue_and_they_combine() -> None:
    """Category, outcome, priority and clock status each keep only the decisions that match; together, all must."""
    items = [item("cse", "high", timedelta(hours=3), outcomes=("crime_desk", "safeguarding"),
                  categories=("child_sexual_exploitation",)),
             item("slavery", "high", timedelta(minutes=10), outcomes=("crime_desk",), categories=("modern_slavery",)),
             item("asb", "medium", timedelta(hours=30), outcomes=("safeguarding",),
                  categories=("anti_social_behaviour", "modern_slavery"))]

    def kept(**query: str) -> list[str]:
        return names(review_queue(items, criteria=frozenset({"all"}), targets=TARGETS, now=NOW,
                                  filters=QueueFilter.from_query(query)))

    assert kept() == ["cse", "slavery", "asb"]
    assert kept(category="modern_slavery") == ["slavery", "asb"]
    assert kept(outcome="safeguarding") == ["cse", "asb"]
    assert kept(priority="medium") == ["asb"]
    assert kept(status="breached") == ["cse", "asb"]
    assert kept(status="within_target") == ["slavery"]
    assert kept(category="modern_slavery", status="breached", outcome="safeguarding") == ["asb"]
    assert kept(category="organised_crime") == []


def test_decisions_reaching_the_queue_in_one_minute_keep_the_order_they_arrived_in() -> None:
    """The queue's time is to the minute; two of one priority in the same minute are in arrival order, whatever
    their ids."""
    first = QueuedDecision("f" * 32, "1" * 32, "high", ("crime_desk",), (), (), NOW, arrival=7)
    second = QueuedDecision("0" * 32, "2" * 32, "high", ("crime_desk",), (), (), NOW, arrival=8)
    rows = review_queue([second, first], criteria=frozenset({"all"}), targets=TARGETS, now=NOW)
    assert names(rows) == ["f" * 32, "0" * 32]


def test_the_console_will_not_start_with_targets_or_criteria_it_cannot_use() -> None:
    """CPI_CONSOLE_REVIEW_TARGETS and CPI_CONSOLE_REVIEW_WHEN are checked when the settings load, naming the
    setting; good ones are there parsed for the queue."""
    with pytest.raises(ValidationError, match="console_review_targets"):
        ConsoleSettings(console_review_targets="high=soon")
    with pytest.raises(ValidationError, match="console_review_when"):
        ConsoleSettings(console_review_when="")
    settings = ConsoleSettings(console_review_targets="high=2h", console_review_when="all")
    assert (settings.review_targets, settings.review_criteria) == ({"high": timedelta(hours=2)}, {"all"})
