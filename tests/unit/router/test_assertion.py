"""Assertion status of a finding (services/router/assertion.py) with the rules file's triggers, and what each
status does to routing (present counts; negated and general never; hypothetical and historical for
safeguarding only, and historical sexual offences for the crime desk too)."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import Outcome, Priority
from services.router.assertion import Status, Triggers, counts, status_of
from services.router.domain import RoutingRules, assess, load_rules
from tests.unit.router.test_domain import make_intel


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


@pytest.fixture(scope="module")
def triggers(rules: RoutingRules) -> Triggers:
    return rules.assertion


def status(triggers: Triggers, text: str, finding: str, occurrence: int = 0) -> Status:
    """The status of the `occurrence`-th appearance of `finding` in `text`."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.lower().index(finding.lower(), start + 1)
    return status_of(text, start, start + len(finding), triggers)


# ----------------------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(("text", "finding"), [
    ("He carries a knife in his bag.", "knife"),
    ("She goes missing most weekends.", "missing"),
    ("Other pupils say he carries a knife.", "knife"),  # hearsay about him is about him
    ("His older brother was stabbed last year.", "stabbed"),
    ("A client who used to run with him says he keeps a handgun in the flat.", "handgun"),
    ("He generally carries a knife in his sock.", "knife"),  # a habit, not a generality
    ("He carries a knife, generally in his sock.", "knife"),
    ("In the past week he has carried a knife.", "knife"),  # recent, not over
    ("He has carried a knife in the past week.", "knife"),
    ("The car stopped and a man sold drugs through the window.", "sold drugs"),
])
def test_a_plain_statement_is_present(triggers: Triggers, text: str, finding: str) -> None:
    """With no cue in scope a finding is present (hearsay and recent past events included)."""
    assert status(triggers, text, finding) is Status.PRESENT


@pytest.mark.parametrize(("text", "finding"), [
    ("There was no sign of a knife at the address.", "knife"),
    ("He denies selling cannabis.", "selling cannabis"),
    ("She has not been seen with older males.", "older males"),
    ("Staff couldn't see any weapons on him.", "weapons"),
    ("She has never been seen with a knife.", "knife"),
    ("There is no evidence that anyone has been groomed.", "groomed"),
    ("Nobody has been threatened.", "threatened"),
    ("The claim that he was stabbed was unfounded.", "stabbed"),
    ("The drug dealing was ruled out after a visit.", "drug dealing"),
    ("He didnt have a knife on him.", "knife"),
])
def test_denials_and_findings_ruled_out_are_negated(triggers: Triggers, text: str, finding: str) -> None:
    """Negation cues before (window or clause) or after the finding make it negated."""
    assert status(triggers, text, finding) is Status.NEGATED


@pytest.mark.parametrize(("text", "finding"), [
    ("If he were to carry a knife he would be excluded.", "knife"),
    ("If he starts selling again we'll let you know.", "selling"),
    ("Staff are worried that he might go missing again.", "missing"),
    ("Mum is worried he might be being groomed online.", "groomed"),
    ("We are not sure whether he is being groomed.", "groomed"),
    ("She may start going missing again.", "missing"),
    ("Keep the file open in case he is exploited.", "exploited"),
])
def test_conditions_fears_and_uncertainty_are_hypothetical(triggers: Triggers, text: str, finding: str) -> None:
    """'if', 'in case', 'worried that he might', 'not sure whether': hypothetical, not negated."""
    assert status(triggers, text, finding) is Status.HYPOTHETICAL


def test_a_worry_without_a_modal_is_a_suspicion_and_present(triggers: Triggers) -> None:
    """'worried he is carrying a knife' reports a suspected offence now; only a worry about what might happen
    is hypothetical."""
    assert status(triggers, "Staff are worried he is carrying a knife.", "knife") is Status.PRESENT
    assert status(triggers, "Staff are worried he might carry a knife.", "knife") is Status.HYPOTHETICAL


@pytest.mark.parametrize(("text", "finding"), [
    ("He used to sell cannabis from the flat.", "sell cannabis"),
    ("He served time for supply and has been clean for two years.", "supply"),
    ("In 2019 she went missing often; she no longer goes missing.", "goes missing"),
    ("Historically he sold cannabis from the flat.", "sold cannabis"),
    ("The dealing has since stopped.", "dealing"),
    ("He has stopped dealing since his release.", "dealing"),
    ("He has a previous conviction for robbery.", "robbery"),
])
def test_what_is_over_and_done_is_historical(triggers: Triggers, text: str, finding: str) -> None:
    """'used to', 'served time for', 'no longer', 'has since stopped', 'historically': historical."""
    assert status(triggers, text, finding) is Status.HISTORICAL


@pytest.mark.parametrize(("text", "finding"), [
    ("There is a lot of drug dealing in the area generally.", "drug dealing"),
    ("The school would like posters about county lines.", "county lines"),
    ("In a lesson about knife crime the class were attentive.", "knife"),
    ("He asked what would happen to someone who carried a knife.", "knife"),
    ("Staff asked what they should do if a child went missing.", "missing"),
    ("Knives in general worry the staff.", "Knives"),
])
def test_topics_of_talk_and_people_in_general_are_general(triggers: Triggers, text: str, finding: str) -> None:
    """Talk about a topic or the area in general is not an event about anyone: general."""
    assert status(triggers, text, finding) is Status.GENERAL


# ------------------------------------------------------------------------------------------- scope


@pytest.mark.parametrize(("text", "finding"), [
    ("No weapons were seen but he was stabbed in the leg.", "stabbed"),
    ("No weapons were seen, however he had a knife in his bag.", "knife"),
    ("He has no knife, although he carries a machete.", "machete"),
    ("There was no answer at the door. A knife was on the step.", "knife"),
    ("She speaks no English and sleeps on the kitchen floor.", "sleeps on the kitchen floor"),
    ("She doesn't know the man who stabbed her brother.", "stabbed"),
    ("If he is late, tell us. He carries a knife.", "knife"),
    ("He used to go missing; now he deals from the flat.", "deals"),
])
def test_scope_ends_at_terminators_new_clauses_and_sentences(triggers: Triggers, text: str, finding: str) -> None:
    """A cue's scope ends at 'but', 'however', 'although', a relative clause, a new verb phrase after 'and',
    and at the end of its sentence, so the finding after it is present."""
    assert status(triggers, text, finding) is Status.PRESENT


def test_a_window_cue_reaches_only_a_few_words(triggers: Triggers) -> None:
    """'no' negates the words just after it, not a finding many words on in a long clause."""
    text = "There was no answer from the flat on the third floor where he keeps a knife."
    assert status(triggers, text, "knife") is Status.PRESENT


def test_a_sentence_cue_reaches_across_a_relative_clause(triggers: Triggers) -> None:
    """'what would happen to someone who carried a knife' stays a topic of talk past 'who'."""
    text = "In PSHE he asked what would happen to someone who carried a knife for protection."
    assert status(triggers, text, "knife") is Status.GENERAL


# ------------------------------------------------------------------ several cues in one sentence


def test_several_findings_in_one_sentence_each_get_their_own_status(triggers: Triggers) -> None:
    """In one sentence: a present knife, a negated gun, a historical sale and a feared disappearance."""
    text = ("He has a knife and no gun, he used to sell cannabis and staff are worried that he might go "
            "missing.")
    assert status(triggers, text, "knife") is Status.PRESENT
    assert status(triggers, text, "gun") is Status.NEGATED
    assert status(triggers, text, "sell cannabis") is Status.HISTORICAL
    assert status(triggers, text, "missing") is Status.HYPOTHETICAL


def test_the_same_word_twice_can_differ(triggers: Triggers) -> None:
    """'No knife was found. Later he pulled a knife.': the first knife is negated, the second present."""
    text = "No knife was found. Later he pulled a knife."
    assert status(triggers, text, "knife", 0) is Status.NEGATED
    assert status(triggers, text, "knife", 1) is Status.PRESENT


def test_a_denial_outweighs_a_worry(triggers: Triggers) -> None:
    """With a negation and a hypothetical cue both in scope, the finding is negated (precedence)."""
    assert status(triggers, "If there is no knife, we will close the case.", "knife") is Status.NEGATED


# ---------------------------------------------------------------- pseudo and double negation


@pytest.mark.parametrize(("text", "finding"), [
    ("There is no doubt he carries a knife.", "knife"),
    ("Not only does he carry a knife, he has threatened staff.", "knife"),
    ("It is not unusual for him to carry a knife.", "knife"),
    ("It is not uncommon for her to go missing overnight.", "missing"),
    ("He is not just selling cannabis but crack too.", "selling cannabis"),
    ("A knife could not be ruled out.", "knife"),
    ("A stabbing has not been ruled out by officers.", "stabbing"),
    ("No wonder she is frightened of the man who hit her.", "frightened"),
])
def test_pseudo_and_double_negations_do_not_negate(triggers: Triggers, text: str, finding: str) -> None:
    """'no doubt', 'not only', 'not just', 'not unusual', 'not uncommon', 'cannot be ruled out': a negation
    word that affirms, so the finding is present."""
    assert status(triggers, text, finding) is Status.PRESENT


def test_an_answer_no_before_a_comma_does_not_negate(triggers: Triggers) -> None:
    """'when told no, pulled a knife': the 'no' answers, it does not deny the knife."""
    assert status(triggers, "When told no, he pulled a kitchen knife.", "knife") is Status.PRESENT


# --------------------------------------------------------------------------------------- policy


@pytest.mark.parametrize(("given", "outcomes", "lexicon", "expected"), [
    (Status.PRESENT, {"crime_desk"}, "violence", True),
    (Status.PRESENT, set(), "concern_cleared", True),
    (Status.NEGATED, {"safeguarding"}, "missing", False),
    (Status.GENERAL, {"safeguarding"}, "missing", False),
    (Status.HYPOTHETICAL, {"safeguarding"}, "missing", True),
    (Status.HYPOTHETICAL, {"crime_desk", "safeguarding"}, "adult_control", False),
    (Status.HYPOTHETICAL, {"crime_desk"}, "sexual_offence", False),
    (Status.HYPOTHETICAL, set(), "concern_cleared", False),
    (Status.HISTORICAL, {"safeguarding"}, "missing", True),
    (Status.HISTORICAL, {"crime_desk"}, "drug_supply", False),
    (Status.HISTORICAL, {"crime_desk", "safeguarding"}, "sexual_offence", True),
    (Status.HISTORICAL, {"intelligence_log"}, "pattern_of_activity", False),
])
def test_what_each_status_counts_for(triggers: Triggers, given: Status, outcomes: set[str], lexicon: str,
                                     expected: bool) -> None:
    """The policy table: negated and general count for nothing; hypothetical and historical for safeguarding
    only; historical sexual offences also for the crime desk; a rule with no outcomes sees present only."""
    assert "sexual_offence" in triggers.historical_offences
    assert counts(given, frozenset(outcomes), lexicon, triggers) is expected


CHILD: list[dict[str, Any]] = [{"role": "at_risk", "name": "Kai", "approx_age": 14}]


def test_a_fear_for_a_child_still_raises_safeguarding_but_not_the_crime_desk(rules: RoutingRules) -> None:
    """'worried that he might go missing' about a 14-year-old: a safety concern (safeguarding, and high in a
    report of exploitation), with no offence to task."""
    information = "Kai is 14. Staff are worried that he might go missing with the older lads."
    decision = assess(make_intel(categories=["missing_exploited_trafficked"], subjects=CHILD, information=information),
                      rules)
    assert Outcome.SAFEGUARDING in decision.outcomes and decision.priority is Priority.HIGH
    assert Outcome.CRIME_DESK not in decision.outcomes


def test_a_negated_sign_raises_nothing(rules: RoutingRules) -> None:
    """'no sign of any weapons' about a named adult: no crime desk and no high priority."""
    subject = [{"role": "person_of_concern", "name": "Lee Marsh", "approx_age": 40}]
    decision = assess(make_intel(subjects=subject, information="Officers visited; there was no sign of any "
                                                                "weapons and he denies making threats."), rules)
    assert Outcome.CRIME_DESK not in decision.outcomes
    assert decision.priority is not Priority.HIGH


@pytest.mark.parametrize("past", [
    "Dean served time for selling heroin and has been clean for two years.",
    "Dean used to sell heroin from the flat.",
])
def test_past_supply_is_not_tasked_but_present_supply_is(rules: RoutingRules, past: str) -> None:
    """'served time for selling heroin, clean for two years' is history, not a crime now; 'sells heroin' is."""
    subject = [{"role": "other", "name": "Dean Hart", "approx_age": 33}]
    then = assess(make_intel(categories=["drug_related_harm"], subjects=subject, information=past), rules)
    assert Outcome.CRIME_DESK not in then.outcomes
    now = assess(make_intel(categories=["drug_related_harm"], subjects=subject,
                            information="Dean sells heroin from the flat."), rules)
    assert Outcome.CRIME_DESK in now.outcomes


def test_non_recent_sexual_abuse_of_a_child_is_still_tasked_at_high(rules: RoutingRules) -> None:
    """A historical sexual offence is still investigated: crime desk and safeguarding at high."""
    child = [{"role": "at_risk", "name": "Amy", "approx_age": 15}]
    decision = assess(make_intel(categories=["child_sexual_exploitation"], subjects=child,
                                 information="Amy disclosed that she used to be sexually abused by her uncle."), rules)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(decision.outcomes)
    assert decision.priority is Priority.HIGH


def test_the_area_in_general_is_no_offence(rules: RoutingRules) -> None:
    """'a lot of drug dealing in the area generally' names no person, place or event: no action."""
    decision = assess(make_intel(information="There is a lot of drug dealing in the area generally."), rules)
    assert decision.outcomes == [Outcome.NO_ACTION]


def test_a_conditional_offence_is_not_tasked(rules: RoutingRules) -> None:
    """'if he starts selling again we'll let you know' is no offence."""
    subject = [{"role": "other", "name": "Dean Hart", "approx_age": 33}]
    decision = assess(make_intel(categories=["drug_related_harm"], subjects=subject,
                                 information="If Dean starts selling cannabis again we will let you know."), rules)
    assert Outcome.CRIME_DESK not in decision.outcomes


@pytest.mark.parametrize("sentence", [
    "There is no doubt he carries a knife in his waistband.",
    "It is not unusual for him to carry a knife in his waistband.",
    "A stabbing at the flat has not been ruled out by officers.",
])
def test_a_pseudo_negation_does_not_hide_an_offence(rules: RoutingRules, sentence: str) -> None:
    """'no doubt', 'not unusual', 'not been ruled out' go to the crime desk at high, like the plain statement."""
    decision = assess(make_intel(information=sentence), rules)
    assert Outcome.CRIME_DESK in decision.outcomes
    assert decision.priority is Priority.HIGH



# ------------------------------------------------- clearance sentences, wherever they sit (issue 13)

ADULT_OF_CONCERN: list[dict[str, Any]] = [{"role": "person_of_concern", "name": "Lee Marsh", "approx_age": 19}]


@pytest.mark.parametrize("clearance", [
    "Officers looked round the flat and found no weapons.",
    "The 'knife' was a plastic toy; staff looked round and found no weapons.",
])
def test_a_weapon_searched_for_and_not_found_later_in_the_report_clears_it(rules: RoutingRules,
                                                                          clearance: str) -> None:
    """A clearance sentence clears the weapon it names though it sits sentences after the 'knife', not within a
    few words of it: no crime desk at high. Without it the same report goes to the crime desk at high."""
    concern = "A neighbour said Lee was waving a knife in the stairwell. He was calm when staff arrived."
    raised = assess(make_intel(subjects=ADULT_OF_CONCERN, information=concern), rules)
    assert Outcome.CRIME_DESK in raised.outcomes and raised.priority is Priority.HIGH
    cleared = assess(make_intel(subjects=ADULT_OF_CONCERN, information=f"{concern} {clearance}"), rules)
    assert Outcome.CRIME_DESK not in cleared.outcomes
    assert cleared.priority is Priority.LOW


def test_a_search_clears_only_what_it_names(rules: RoutingRules) -> None:
    """'looked round and found no drugs' names drugs, not the knife: the knife still goes to the crime desk at
    high."""
    decision = assess(make_intel(subjects=ADULT_OF_CONCERN, information=(
        "A neighbour said Lee was waving a knife in the stairwell. Officers looked round and found no drugs.")),
        rules)
    assert Outcome.CRIME_DESK in decision.outcomes and decision.priority is Priority.HIGH


CHILD_AT_HOME: list[dict[str, Any]] = [{"role": "at_risk", "name": "Mia", "approx_age": 8}]


def test_an_injury_a_doctor_confirmed_as_the_fall_clears_the_violence_concern(rules: RoutingRules) -> None:
    """'the GP confirmed the marks match the fall' clears the bruising the report opened with: no crime desk;
    without it, bruises from being hit go to the crime desk."""
    concern = "Mia came in with bruising on her arm and said her dad hit her."
    raised = assess(make_intel(categories=["missing_exploited_trafficked"], subjects=CHILD_AT_HOME,
                               information=concern), rules)
    assert Outcome.CRIME_DESK in raised.outcomes
    explained = ("Mia came in with bruising on her arm after falling off her bike; mum said at first she had been "
                 "hit by her brother. The GP examined her and confirmed the marks match the fall.")
    cleared = assess(make_intel(categories=["missing_exploited_trafficked"], subjects=CHILD_AT_HOME,
                                information=explained), rules)
    assert Outcome.CRIME_DESK not in cleared.outcomes


TEEN: list[dict[str, Any]] = [{"role": "at_risk", "name": "Chloe", "approx_age": 14}]


def test_no_concerns_about_her_clears_exploitation_signs_reported_earlier(rules: RoutingRules) -> None:
    """'no concerns about her: attendance good, no new items or associates' clears the new phone the report
    opened with: no high-priority exploitation. Without it a child with an unexplained new phone is high."""
    concern = "Chloe was seen with a new phone and designer trainers she would not explain."
    raised = assess(make_intel(categories=["child_sexual_exploitation"], subjects=TEEN, information=concern), rules)
    assert Outcome.SAFEGUARDING in raised.outcomes and raised.priority is Priority.HIGH
    cleared = assess(make_intel(categories=["child_sexual_exploitation"], subjects=TEEN, information=(
        f"{concern} Her tutor has since checked: no concerns about her, attendance good, no new items or "
        "associates.")), rules)
    assert cleared.priority is not Priority.HIGH


@pytest.mark.parametrize(("text", "finding", "expected"), [
    ("She is worried he might hurt her again.", "hurt", Status.HYPOTHETICAL),
    ("If he starts selling again we'll let you know.", "selling", Status.HYPOTHETICAL),
    ("He hurt her again last night.", "hurt", Status.PRESENT),
    ("He served time for supply, clean for two years.", "supply", Status.HISTORICAL),
    ("He supplies the estate, clean for two years of convictions only.", "supplies", Status.PRESENT),
])
def test_fears_and_conditions_are_hypothetical_and_time_served_is_historical(
        triggers: Triggers, text: str, finding: str, expected: Status) -> None:
    """A conditional act or a fear is hypothetical and a sentence served is historical; the same act stated as
    done is present."""
    assert status(triggers, text, finding) is expected
