"""Properties of assess() over generated SanitisedIntel: always a valid Decision, deterministic, consistent."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    Category,
    Decision,
    HowKnown,
    LawfulBasis,
    Location,
    Outcome,
    Priority,
    SanitisedIntel,
    Subject,
    Vehicle,
)
from schemas.base import normalise_text
from schemas.submission import SubjectRole
from services.router.domain import DECISION_NAMESPACE, RoutingRules, assess, load_rules
from services.router.model import load_model

RULES = load_rules()
MODEL = load_model()
TODAY = date(2026, 11, 20)
LAST_PAST_DAY = date(2026, 11, 1)  # PastDate fields refuse the future; stay safely before the real today

# Words that make rules fire, mixed with free text, so generated intel exercises the rules and negation.
PHRASES = [
    "stabbed", "no weapons were seen", "county lines", "older boyfriend", "if he were to carry a knife",
    "denies any drug use", "there is no suggestion of grooming", "went missing", "new phone", "cuckooing",
    "passport held", "racist graffiti", "loud music every night", "sexual assault", "learning disability",
    "no names or places are known", "but", "not", ".", ",", "year 9 pupils", "threatened to kill",
]



def visible(text: str) -> bool:
    """The contracts drop invisible characters (Cf, variation selectors, fillers): is anything left?"""
    return str(normalise_text(text)).strip() != ""


# Cf (format) characters are invisible and removed by the contracts, so text made only of them is empty.
_letters = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cf"))
free_text = st.text(alphabet=_letters, min_size=1, max_size=60)
one_line = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp")),
                   min_size=1, max_size=40).filter(lambda s: visible(s) and "\x85" not in s)
description = free_text.filter(visible)
past_dates = st.dates(min_value=date(1906, 1, 1), max_value=LAST_PAST_DAY)
information = st.lists(st.one_of(st.sampled_from(PHRASES), free_text), min_size=1, max_size=12).map(" ".join).filter(
    visible
)

subjects = st.builds(
    Subject,
    role=st.sampled_from(SubjectRole),
    name=st.none() | one_line,
    aliases=st.lists(one_line, max_size=2),
    date_of_birth=st.none() | past_dates,
    approx_age=st.none() | st.integers(min_value=0, max_value=120),
    gender=st.none() | one_line,
    address=st.none() | description,
    description=st.none() | description,
)
locations = st.builds(Location, description=description, postcode=st.none() | st.just("SW1A 1AA"))
vehicles = st.builds(
    Vehicle,
    registration=st.none() | st.just("AB12 CDE"),
    make=st.none() | one_line,
    colour=st.none() | one_line,
    description=st.none() | description,
)
intels = st.builds(
    SanitisedIntel,
    intel_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    received_on=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    categories=st.lists(st.sampled_from(Category), min_size=1, max_size=8, unique=True),
    subjects=st.lists(subjects, max_size=3),
    locations=st.lists(locations, max_size=2),
    vehicles=st.lists(vehicles, max_size=2),
    information=information,
    how_known=st.sampled_from(HowKnown),
    when_observed=st.none() | past_dates,
    subject_aware=st.none() | st.booleans(),
    lawful_basis=st.sampled_from(LawfulBasis),
    redaction_count=st.integers(min_value=0, max_value=50),
)
source_evaluations: st.SearchStrategy[Literal[1, 2, 3]] = st.sampled_from([1, 2, 3])

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(intel=intels, source_evaluation=source_evaluations)
def test_any_valid_intel_gets_a_valid_decision(intel: SanitisedIntel, source_evaluation: Literal[1, 2, 3]) -> None:
    """Every valid SanitisedIntel gets a Decision that survives a JSON round trip through its contract."""
    decision = assess(intel, RULES, source_evaluation=source_evaluation, today=TODAY)
    again = Decision.model_validate_json(decision.model_dump_json())
    assert again == decision
    assert decision.intel == intel
    assert decision.grading.source_evaluation == source_evaluation
    assert decision.rules_version == RULES.version
    assert decision.rationale, "every decision says why"


@_SETTINGS
@given(intel=intels)
def test_no_action_never_combines_and_priority_matches(intel: SanitisedIntel) -> None:
    """no_action only ever comes alone with priority none; crime desk or safeguarding means at least medium."""
    decision = assess(intel, RULES, today=TODAY)
    if Outcome.NO_ACTION in decision.outcomes:
        assert decision.outcomes == [Outcome.NO_ACTION]
        assert decision.priority is Priority.NONE
    else:
        assert decision.priority is not Priority.NONE
        if {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} & set(decision.outcomes):
            assert decision.priority in {Priority.MEDIUM, Priority.HIGH}


@_SETTINGS
@given(intel=intels)
def test_assessment_is_deterministic(intel: SanitisedIntel) -> None:
    """The same intel under the same rules gives the same decision, and its id is uuid5 of intel id and version."""
    first = assess(intel, RULES, today=TODAY)
    second = assess(SanitisedIntel.model_validate_json(intel.model_dump_json()), RULES, today=TODAY)
    assert first == second
    assert first.decision_id == uuid.uuid5(DECISION_NAMESPACE, f"{intel.intel_id}:{RULES.version}").hex


@_SETTINGS
@given(intel=intels)
def test_second_opinion_is_deterministic_and_never_decides(intel: SanitisedIntel) -> None:
    """With the shipped model every valid intel gets a decision that survives a JSON round trip, is the same
    on a second assessment, has the id uuid5 of intel id, rules version and model version, and has exactly the
    outcomes, priority and rationale the rules give alone; review is needed exactly when it gives reasons."""
    first = assess(intel, RULES, today=TODAY, model=MODEL)
    again = assess(SanitisedIntel.model_validate_json(intel.model_dump_json()), RULES, today=TODAY, model=MODEL)
    assert first == again == Decision.model_validate_json(first.model_dump_json())
    assert first.decision_id == uuid.uuid5(DECISION_NAMESPACE, f"{intel.intel_id}:{RULES.version}:{MODEL.version}").hex
    alone = assess(intel, RULES, today=TODAY)
    assert (first.outcomes, first.priority, first.rationale) == (alone.outcomes, alone.priority, alone.rationale)
    assert first.review is not None and first.review.needed == bool(first.review.reasons)


@_SETTINGS
@given(intel=intels)
def test_rationale_only_names_known_rules(intel: SanitisedIntel) -> None:
    """Every firing in the rationale is a rule in the file (or the built-in no-action and handling notes)."""
    known = {rule.id for rule in RULES.rules} | {"no_action.nothing_found", "grading.handling_conditions"}
    decision = assess(intel, RULES, today=TODAY)
    assert {firing.rule_id for firing in decision.rationale} <= known


WEAPON_WORDS = ["knife", "machete", "gun", "firearm", "stabbing", "weapons"]


@settings(max_examples=100, deadline=None)
@given(
    word=st.sampled_from(WEAPON_WORDS),
    opener=st.sampled_from(["There is no suggestion of", "He denies having any", "No", "If he were to get a"]),
)
def test_negated_weapon_mentions_never_fire(word: str, opener: str) -> None:
    """A weapon word in a negated or hypothetical clause never fires the weapons rule."""
    intel = SanitisedIntel(
        intel_id="f" * 32, received_on=TODAY, categories=[Category.ORGANISED_CRIME],
        information=f"{opener} {word} at the address.", how_known=HowKnown.TOLD_BY_THIRD_PARTY,
        lawful_basis=LawfulBasis.SAFEGUARDING, redaction_count=0,
    )
    decision = assess(intel, RULES)
    assert "crime.weapons_serious_violence" not in {firing.rule_id for firing in decision.rationale}


def test_rules_fixture_is_the_default() -> None:
    """The property tests run against the shipped rules file."""
    assert isinstance(RULES, RoutingRules)
    assert RULES == load_rules()
