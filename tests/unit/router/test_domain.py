"""The router's pure domain: text matching, ages, outcomes, priority, grading, THRIVE and rationale."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from schemas import Decision, Outcome, Priority, SanitisedIntel
from services.router.domain import (
    DECISION_NAMESPACE,
    Condition,
    RoutingRules,
    Rule,
    assess,
    load_rules,
)

INTEL_ID = "0123456789abcdef0123456789abcdef"


def make_intel(**fields: Any) -> SanitisedIntel:
    """A valid SanitisedIntel with plain defaults; keyword arguments replace fields."""
    base: dict[str, Any] = {
        "intel_id": INTEL_ID,
        "received_on": date(2026, 11, 20),
        "categories": ["anti_social_behaviour"],
        "information": "A remark passed on by a colleague, shared for information.",
        "how_known": "told_by_third_party",
        "lawful_basis": "safeguarding",
        "redaction_count": 0,
    }
    return SanitisedIntel.model_validate({**base, **fields})


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


def fired(decision: Decision) -> set[str]:
    return {firing.rule_id for firing in decision.rationale}


def evidence_of(decision: Decision, rule_id: str) -> list[str]:
    return next(firing.evidence for firing in decision.rationale if firing.rule_id == rule_id)


# ------------------------------------------------------------------------------ text matching


@pytest.mark.parametrize(
    "sentence",
    [
        "He was stabbed outside the shop last week.",
        "There was a stabbing outside the shop last week.",
        "He said he would stab the boy outside the shop.",
        "He STABS people, according to the boys at the shop.",
    ],
)
def test_inflections_of_a_word_fire_its_rule(rules: RoutingRules, sentence: str) -> None:
    """stab, stabs, stabbed and stabbing, in any case, all fire the weapons and serious violence rule."""
    decision = assess(make_intel(information=sentence), rules)
    assert "crime.weapons_serious_violence" in fired(decision)
    assert decision.priority is Priority.HIGH


@pytest.mark.parametrize("sentence", ["She is being groomed by a man online.", "Staff worry about grooming."])
def test_grooming_in_any_form_fires(rules: RoutingRules, sentence: str) -> None:
    """groomed and grooming fire the grooming rule with crime desk and safeguarding."""
    decision = assess(make_intel(information=sentence), rules)
    assert "crime.grooming" in fired(decision)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(decision.outcomes)


def test_multi_word_phrases_match_across_spacing_and_plurals(rules: RoutingRules) -> None:
    """'county lines' and 'older boyfriends' match as phrases, also with extra spaces and a hyphen."""
    decision = assess(
        make_intel(
            information="Believed to be working county   lines; she has two older-boyfriends.",
            subjects=[{"role": "at_risk", "name": "Ava", "approx_age": 14}],
        ),
        rules,
    )
    assert "county lines" in evidence_of(decision, "crime.drug_supply")
    assert "older-boyfriends" in evidence_of(decision, "crime.child_exploitation")
    assert decision.priority is Priority.HIGH


def test_words_inside_other_words_do_not_match(rules: RoutingRules) -> None:
    """'gun' does not match inside 'gunnel' or 'begun', and 'deal with' is not drug dealing."""
    decision = assess(make_intel(information="The work has begun and staff will deal with the gunnels."), rules)
    assert decision.outcomes == [Outcome.NO_ACTION]


@pytest.mark.parametrize(
    ("sentence", "rule_id"),
    [
        ("No weapons were seen at the address.", "crime.weapons_serious_violence"),
        ("He denies any drug dealing and nothing was found.", "crime.drug_supply"),
        ("There is no suggestion of any sexual exploitation of the girls.", "crime.sexual_offence"),
        ("Staff asked what would happen if he were to carry a knife.", "crime.weapons_serious_violence"),
        ("She has never been seen with a knife.", "crime.weapons_serious_violence"),
        ("Staff couldn't see any weapons on him.", "crime.weapons_serious_violence"),
        ("He wasn\u2019t carrying a knife when searched.", "crime.weapons_serious_violence"),
        ("The claim that he was stabbed was unfounded.", "crime.weapons_serious_violence"),
        ("In a lesson about knife crime the class were attentive.", "crime.weapons_serious_violence"),
    ],
)
def test_negated_or_hypothetical_mentions_do_not_fire(rules: RoutingRules, sentence: str, rule_id: str) -> None:
    """Negations ('no', 'denies', 'no suggestion of', 'never'), hypotheticals ('if he were to'),
    taking-back words ('unfounded') and topics of talk ('a lesson about') stop a rule firing."""
    decision = assess(make_intel(information=sentence), rules)
    assert rule_id not in fired(decision)
    assert Outcome.CRIME_DESK not in decision.outcomes


def test_negation_ends_at_but(rules: RoutingRules) -> None:
    """A negation does not reach past 'but': 'no weapons were seen but he was stabbed' fires on stabbed."""
    decision = assess(make_intel(information="No weapons were seen but he was stabbed in the leg."), rules)
    assert evidence_of(decision, "crime.weapons_serious_violence") == ["stabbed"]


def test_negation_stays_in_its_sentence(rules: RoutingRules) -> None:
    """A 'no' in one sentence does not cancel a match in the next one."""
    decision = assess(make_intel(information="There was no answer at the door. A knife was on the step."), rules)
    assert "crime.weapons_serious_violence" in fired(decision)


def test_descriptions_of_subjects_locations_and_vehicles_are_matched(rules: RoutingRules) -> None:
    """Words in location, subject and vehicle descriptions count, not only the information text."""
    decision = assess(
        make_intel(
            information="Shared for awareness of the address given below.",
            locations=[{"description": "Known trap house behind the shops"}],
            vehicles=[{"description": "Car used for drug runs"}],
            subjects=[{"role": "person_of_concern", "description": "Carries a machete"}],
        ),
        rules,
    )
    assert "trap house" in evidence_of(decision, "crime.drug_supply")
    assert "drug runs" in evidence_of(decision, "crime.drug_supply")
    assert "machete" in evidence_of(decision, "crime.weapons_serious_violence")


# ------------------------------------------------------------------------------------- ages


def test_child_from_date_of_birth_at_received_on(rules: RoutingRules) -> None:
    """A subject whose date of birth makes them 17 (18 the next day) on the day received is a child at risk."""
    intel = make_intel(subjects=[{"role": "at_risk", "name": "Kim", "date_of_birth": "2008-11-21"}])
    decision = assess(intel, rules)
    assert "safeguarding.child_at_risk" in fired(decision)
    assert "age 17" in evidence_of(decision, "safeguarding.child_at_risk")[0]


def test_eighteenth_birthday_is_an_adult(rules: RoutingRules) -> None:
    """On their 18th birthday a subject is no longer counted as a child."""
    intel = make_intel(subjects=[{"role": "at_risk", "name": "Kim", "date_of_birth": "2008-11-20"}])
    assert "safeguarding.child_at_risk" not in fired(assess(intel, rules))


def test_today_overrides_received_on_for_age(rules: RoutingRules) -> None:
    """With `today` given, age is worked out at that day rather than at received_on."""
    intel = make_intel(subjects=[{"role": "at_risk", "name": "Kim", "date_of_birth": "2008-11-21"}])
    later = assess(intel, rules, today=date(2027, 12, 1))
    assert "safeguarding.child_at_risk" not in fired(later)


def test_child_from_approx_age(rules: RoutingRules) -> None:
    """An approximate age under 18 makes a subject a child; 18 does not."""
    child = make_intel(subjects=[{"role": "at_risk", "approx_age": 17}])
    adult = make_intel(subjects=[{"role": "at_risk", "approx_age": 18}])
    assert assess(child, rules).outcomes == [Outcome.SAFEGUARDING]
    assert assess(adult, rules).outcomes == [Outcome.NO_ACTION]


@pytest.mark.parametrize(
    ("description", "child"),
    [
        ("Girl about 13, school hoodie", True),
        ("Teenage boy, about 16 or 17", True),
        ("A 15-year-old in a red coat", True),
        ("Man about 50 with a grey ponytail", False),
        ("Baby daughter, about 6 months", False),  # months are not years: the age stays unknown
        ("Comes back in about 10 minutes", False),
    ],
)
def test_age_from_a_subject_description(rules: RoutingRules, description: str, child: bool) -> None:
    """With no date of birth or approximate age, an age the description gives counts ("girl about 13")."""
    intel = make_intel(subjects=[{"role": "at_risk", "description": description}])
    assert ("safeguarding.child_at_risk" in fired(assess(intel, rules))) is child


# ---------------------------------------------------------------------- outcomes and priority


def test_nothing_specific_is_no_action_alone(rules: RoutingRules) -> None:
    """With nothing specific, the decision is no_action alone, priority none, with a reason given."""
    decision = assess(make_intel(), rules)
    assert decision.outcomes == [Outcome.NO_ACTION]
    assert decision.priority is Priority.NONE
    assert decision.rationale and decision.rationale[0].reason


def test_vague_report_that_says_so_is_no_action(rules: RoutingRules) -> None:
    """A report that says it has no names or places gets no_action even if it mentions county lines."""
    intel = make_intel(information="Worried about county lines in general. No names or places are known.")
    decision = assess(intel, rules)
    assert decision.outcomes == [Outcome.NO_ACTION]
    assert fired(decision) == {"no_action.nothing_specific"}


def test_vague_wording_does_not_hide_a_given_location(rules: RoutingRules) -> None:
    """The vagueness rule does not apply when a location is given."""
    intel = make_intel(
        information="Worried about county lines. No names are known.",
        locations=[{"description": "Flat 3, Elm House"}],
    )
    assert Outcome.CRIME_DESK in assess(intel, rules).outcomes


def test_named_subject_alone_is_an_intelligence_log_at_low(rules: RoutingRules) -> None:
    """A named subject with no offence or risk is logged, priority low."""
    decision = assess(make_intel(subjects=[{"role": "other", "name": "Jo Bloggs"}]), rules)
    assert decision.outcomes == [Outcome.INTELLIGENCE_LOG]
    assert decision.priority is Priority.LOW


def test_offence_without_serious_marker_is_medium(rules: RoutingRules) -> None:
    """A burglary at a given place goes to the log and the crime desk at medium priority."""
    decision = assess(
        make_intel(information="The shed was broken into and tools were stolen.",
                   locations=[{"description": "Allotments, Mill Lane"}]),
        rules,
    )
    assert decision.outcomes == [Outcome.INTELLIGENCE_LOG, Outcome.CRIME_DESK]
    assert decision.priority is Priority.MEDIUM


def test_child_at_risk_with_exploitation_category_is_high(rules: RoutingRules) -> None:
    """A child at risk in a child sexual exploitation report gets safeguarding at high priority."""
    decision = assess(
        make_intel(categories=["child_sexual_exploitation"],
                   subjects=[{"role": "at_risk", "name": "Amy", "approx_age": 13}]),
        rules,
    )
    assert set(decision.outcomes) == {Outcome.INTELLIGENCE_LOG, Outcome.SAFEGUARDING}
    assert decision.priority is Priority.HIGH


def test_child_at_risk_without_exploitation_is_medium(rules: RoutingRules) -> None:
    """A child at risk in an anti-social behaviour report gets safeguarding at medium priority."""
    decision = assess(make_intel(subjects=[{"role": "at_risk", "name": "Amy", "approx_age": 13}]), rules)
    assert decision.priority is Priority.MEDIUM


def test_outcomes_come_in_a_fixed_order(rules: RoutingRules) -> None:
    """Several outcomes are listed log, crime desk, safeguarding whatever order the rules fired in."""
    decision = assess(
        make_intel(information="Her flat has been taken over by dealers (cuckooing).",
                   subjects=[{"role": "at_risk", "name": "Tracey"}]),
        rules,
    )
    assert decision.outcomes == [Outcome.INTELLIGENCE_LOG, Outcome.CRIME_DESK, Outcome.SAFEGUARDING]
    assert decision.priority is Priority.HIGH


# ------------------------------------------------------------------- grading and identifiers


@pytest.mark.parametrize(
    ("how_known", "grade"),
    [("witnessed_directly", "A"), ("told_by_subject", "B"), ("told_by_third_party", "C"),
     ("rumour_or_hearsay", "D")],
)
def test_intelligence_assessment_follows_how_known(rules: RoutingRules, how_known: str, grade: str) -> None:
    """how_known maps to the intelligence assessment A, B, C or D."""
    assert assess(make_intel(how_known=how_known), rules).grading.intelligence_assessment == grade


def test_source_evaluation_is_passed_through(rules: RoutingRules) -> None:
    """The source evaluation is 2 by default and otherwise the one given."""
    assert assess(make_intel(), rules).grading.source_evaluation == 2
    assert assess(make_intel(), rules, source_evaluation=1).grading.source_evaluation == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"lawful_basis": "safeguarding"}, "P"),
        ({"lawful_basis": "consent"}, "C"),
        ({"lawful_basis": "other"}, "C"),
        ({"lawful_basis": "public_task", "information": "He has a diagnosis of schizophrenia."}, "C"),
    ],
)
def test_handling_code(rules: RoutingRules, fields: dict[str, Any], code: str) -> None:
    """Handling code is P unless the lawful basis is consent/other or the text carries health information."""
    decision = assess(make_intel(**fields), rules)
    assert decision.grading.handling_code == code
    assert ("grading.handling_conditions" in fired(decision)) == (code == "C")


def test_decision_id_is_deterministic_per_intel_and_rules_version(rules: RoutingRules) -> None:
    """The decision id is uuid5(intel_id:rules_version) as 32 hex digits, and changes with the version."""
    decision = assess(make_intel(), rules)
    assert decision.decision_id == uuid.uuid5(DECISION_NAMESPACE, f"{INTEL_ID}:{rules.version}").hex
    assert len(decision.decision_id) == 32
    assert decision.rules_version == rules.version
    newer = assess(make_intel(), rules.model_copy(update={"version": "2099.1.1"}))
    assert newer.decision_id != decision.decision_id


# --------------------------------------------------------------------- rationale and THRIVE


def test_rationale_names_each_rule_with_reason_and_evidence(rules: RoutingRules) -> None:
    """Every rule that fired is in the rationale with its plain-English reason and the words that fired it."""
    decision = assess(make_intel(information="He keeps a machete under his bed and sells crack."), rules)
    weapons = next(f for f in decision.rationale if f.rule_id == "crime.weapons_serious_violence")
    assert weapons.reason == next(r.reason for r in rules.rules if r.id == weapons.rule_id)
    assert weapons.evidence == ["machete"]
    assert evidence_of(decision, "crime.drug_supply") == ["sells crack"]


def test_thrive_is_derived_from_what_fired(rules: RoutingRules) -> None:
    """THRIVE names the concerns that fired, says harm is serious at high priority, and notes a child."""
    decision = assess(
        make_intel(information="He was threatened with a knife.",
                   subjects=[{"role": "at_risk", "name": "Sam", "approx_age": 15}]),
        rules,
    )
    assert "weapons or serious violence" in decision.thrive.threat
    assert decision.thrive.harm.startswith("Serious harm")
    assert "high" in decision.thrive.risk
    assert "child" in decision.thrive.vulnerability


def test_thrive_for_no_action_says_there_is_no_risk(rules: RoutingRules) -> None:
    """For no_action, THRIVE says that no threat, harm or risk was described."""
    thrive = assess(make_intel(), rules).thrive
    assert thrive.threat.startswith("No specific threat")
    assert "no identified risk" in thrive.risk


# ------------------------------------------------------------------- rules as data


def _with_rule(rules: RoutingRules, rule: Rule) -> RoutingRules:
    return rules.model_copy(update={"rules": [*rules.rules, rule]})


def test_rules_can_use_subject_aware_and_how_known(rules: RoutingRules) -> None:
    """A rule added as data, on subject_aware and how_known, fires only when both hold."""
    extra = Rule(
        id="test.unaware_rumour",
        reason="The subject does not know and the source only heard it.",
        concern="an unaware subject",
        when=Condition(subject_aware=False, how_known_in=["rumour_or_hearsay"]),
        outcomes=["intelligence_log"],
    )
    custom = _with_rule(rules, extra)
    # An unidentifiable subject, so the hearsay-about-no-one rule does not make it no action regardless.
    someone = [{"role": "other"}]
    hit = assess(make_intel(subject_aware=False, how_known="rumour_or_hearsay", subjects=someone), custom)
    miss = assess(make_intel(subject_aware=True, how_known="rumour_or_hearsay", subjects=someone), custom)
    assert evidence_of(hit, "test.unaware_rumour") == ["how_known: rumour_or_hearsay", "subject_aware: false"]
    assert miss.outcomes == [Outcome.NO_ACTION]


def test_a_rule_priority_lifts_the_decision(rules: RoutingRules) -> None:
    """A rule that gives only a priority raises the priority of the outcomes other rules chose."""
    extra = Rule(id="test.lift", reason="Lift it.", concern="a test", when=Condition(has_location=True),
                 priority="high")
    decision = assess(make_intel(locations=[{"description": "The park"}]), _with_rule(rules, extra))
    assert decision.outcomes == [Outcome.INTELLIGENCE_LOG]
    assert decision.priority is Priority.HIGH


# ------------------------------------------------------------------ vocabulary (rules 2026.11.2)

JAYDEN = ("Jayden has been missing from lessons, has unexplained cash and two phones, and says an older man called "
          "Skinny makes him carry packages of drugs to a flat")


@pytest.mark.parametrize(
    "subjects",
    [
        [{"role": "at_risk", "name": "Jayden", "approx_age": 14}],
        [{"role": "at_risk", "approx_age": 14}],
        [{"role": "at_risk", "name": "Jayden Okafor", "approx_age": 14,
          "description": "Year 9 pupil, recently has two phones and new trainers"},
         {"role": "person_of_concern", "aliases": ["Skinny"], "approx_age": 22,
          "description": "Drives a black Audi and waits outside the gates"}],
    ],
)
def test_child_made_to_carry_drugs_is_crime_desk_and_safeguarding_at_high(
        rules: RoutingRules, subjects: list[dict[str, Any]]) -> None:
    """The end-to-end expectation: a 14-year-old, told by the subject, criminal exploitation and drug-related
    harm, made to carry packages of drugs -> intelligence log, crime desk and safeguarding, priority high, and
    the rationale names the exploitation of a child."""
    decision = assess(make_intel(information=JAYDEN, categories=["criminal_exploitation", "drug_related_harm"],
                                 how_known="told_by_subject", subjects=subjects), rules)
    assert {Outcome.INTELLIGENCE_LOG, Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(decision.outcomes)
    assert decision.priority is Priority.HIGH
    assert decision.grading.intelligence_assessment == "B"
    assert any("exploit" in (f.rule_id + f.reason).lower() for f in decision.rationale)


@pytest.mark.parametrize(
    "sentence",
    [
        "He punches the walls of his flat when he is angry.",
        "She punched a hole in her bedroom door.",
        "He kicked the door of the classroom.",
        "He hit the wall in frustration.",
        "He was hit by a car while crossing the road.",
    ],
)
def test_hitting_things_is_not_violence_to_a_person(rules: RoutingRules, sentence: str) -> None:
    """Punching a wall, kicking a door or being hit by a car is not violence against a person."""
    assert "crime.violence_or_threats" not in fired(assess(make_intel(information=sentence), rules))


@pytest.mark.parametrize(
    "sentence",
    ["He punched his brother in the face.", "Her partner hit her with a belt.", "They kicked him in the head."],
)
def test_hitting_people_is_violence(rules: RoutingRules, sentence: str) -> None:
    assert "crime.violence_or_threats" in fired(assess(make_intel(information=sentence), rules))


@pytest.mark.parametrize(
    "sentence",
    [
        "He told his support worker he wants to kill himself.",
        "She says she wants to die.",
        "He has been hearing voices at night.",
        "She has been cutting herself and says she would be better off dead.",
    ],
)
def test_suicidal_ideation_and_psychosis_are_vulnerability_not_violence(rules: RoutingRules, sentence: str) -> None:
    decision = assess(make_intel(information=sentence), rules)
    assert "safeguarding.adult_vulnerability" in fired(decision)
    assert "crime.weapons_serious_violence" not in fired(decision)
    assert Outcome.CRIME_DESK not in decision.outcomes


def test_a_relative_clause_is_not_negated_by_its_main_clause(rules: RoutingRules) -> None:
    """'She doesn't know the man who stabbed her brother': the stabbing still counts."""
    decision = assess(make_intel(information="She doesn't know the man who stabbed her brother."), rules)
    assert evidence_of(decision, "crime.weapons_serious_violence") == ["stabbed"]


@pytest.mark.parametrize(
    ("sentence", "rule_id"),
    [
        ("The woman is locked in by the owner at night and has not been paid since she arrived.",
         "crime.trafficking_forced_labour"),
        ("The boss has confiscated their passports.", "crime.trafficking_forced_labour"),
        ("An adult at the house gives them ketamine for free.", "crime.drug_supply"),
        ("The boy stands on the corner and whistles when police cars come near.", "crime.drug_supply"),
        ("He acts as a lookout for the older lads.", "crime.drug_supply"),
        ("Aaron has posted intimate photos of Zoe online.", "crime.sexual_offence"),
        ("Diesel was siphoned from the farm tanks overnight.", "crime.theft"),
        ("A post says someone should \"torch\" the community centre.", "crime.violence_or_threats"),
        ("He is said to carry a shank.", "crime.weapons_serious_violence"),
        ("Men took her to the bank to withdraw cash for work that was never done.", "crime.other_offence"),
        ("The men at the car wash are paid cash in hand and have no days off.", "crime.labour_exploitation_indicators"),
        ("Her boyfriend puts her profile on an escort website.", "crime.sexual_offence"),
        ("Lads say he keeps a \"strap\" in the bin store.", "crime.weapons_serious_violence"),
        ("Three sheds were forced open overnight.", "crime.theft"),
        ("He checks her messages every night and stops her from seeing her family.", "crime.coercion_control"),
        ("Her parents have booked flights and an engagement has been arranged with a cousin.",
         "crime.harmful_practices"),
        ("Bar staff saw him put his hand up the skirt of a woman too drunk to stand.", "crime.sexual_offence"),
        ("Through the night a string of different men go up to her room.", "crime.sexual_offence"),
        ("He takes their wages for rent and holds their bank cards.", "crime.labour_exploitation_indicators"),
        ("She said he has nothing left to live for and is saving up his tablets.", "safeguarding.adult_vulnerability"),
        ("When she could not pay, he made her have sex with him.", "crime.sexual_offence"),
        ("Her landlord says she can pay the rent another way.", "crime.sexual_offence"),
        ("She is being taken to be married to a man she has never met.", "crime.harmful_practices"),
        ("Most of the lead was stripped off the vestry roof.", "crime.theft"),
        ("They ripped up the pitch and it will cost a few thousand to put right.", "crime.criminal_damage"),
        ("He rented two flats using passports in two different names.", "crime.other_offence"),
    ],
)
def test_professional_vocabulary_fires(rules: RoutingRules, sentence: str, rule_id: str) -> None:
    assert rule_id in fired(assess(make_intel(information=sentence), rules))


def test_photos_of_a_child_in_the_bath_kept_secret_is_a_sexual_offence_against_a_child(rules: RoutingRules) -> None:
    decision = assess(make_intel(
        information="Maisie said her stepdad takes photos of her in the bath and tells her it is their special secret.",
        subjects=[{"role": "at_risk", "name": "Maisie", "approx_age": 10}]), rules)
    assert {"crime.child_sexual", "crime.grooming"} <= fired(decision)
    assert decision.priority is Priority.HIGH


def test_doorstep_fraud_against_an_older_person_is_safeguarding(rules: RoutingRules) -> None:
    """Rogue traders taking cash from elderly residents: crime desk and safeguarding; a scam alone is not."""
    decision = assess(make_intel(information="Rogue traders are taking cash deposits from elderly residents "
                                             "for roofing work and never returning."), rules)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(decision.outcomes)
    assert "safeguarding.financial_abuse_older_person" in fired(decision)
    younger = assess(make_intel(information="A market trader was scammed by a customer paying with a fake note."),
                     rules)
    assert Outcome.SAFEGUARDING not in younger.outcomes


# ------------------------------------------------------------------ mechanisms added in rules 2026.11.3


def test_child_sent_to_steal_by_an_adult_is_criminal_exploitation(rules: RoutingRules) -> None:
    """A child plus an adult directing them plus an offence fires without any exploitation keyword."""
    decision = assess(
        make_intel(information="Two girls in school uniform are being sent into the shop by a woman who waits "
                               "outside and takes the bottles they bring out without paying."),
        rules,
    )
    assert "crime.child_exploitation_by_adult" in fired(decision)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(decision.outcomes)
    assert decision.priority is Priority.HIGH


def test_adult_directing_an_adult_is_not_child_exploitation(rules: RoutingRules) -> None:
    """The same words about adults do not fire the child rule."""
    decision = assess(
        make_intel(information="Two women are being sent into the shop by a man who waits outside and takes "
                               "the bottles they bring out without paying.",
                   subjects=[{"role": "person_of_concern", "approx_age": 30}]),
        rules,
    )
    assert "crime.child_exploitation_by_adult" not in fired(decision)


def test_sexual_health_contact_is_an_offence_under_16_only(rules: RoutingRules) -> None:
    """max_age: contraception at 15 fires crime.child_sexual_contact; at 17 with a peer it does not."""
    text = "She came in asking for emergency contraception."
    young = assess(make_intel(information=text, subjects=[{"role": "at_risk", "name": "Mia", "approx_age": 15}]),
                   rules)
    older = assess(make_intel(information=text, subjects=[{"role": "at_risk", "name": "Mia", "approx_age": 17}]),
                   rules)
    assert "crime.child_sexual_contact" in fired(young)
    assert "crime.child_sexual_contact" not in fired(older)


def test_one_labour_indicator_is_not_enough_but_two_are(rules: RoutingRules) -> None:
    """text_count: a single weak indicator does not fire; two different ones do."""
    one = assess(make_intel(information="The girl at the counter speaks no English."), rules)
    two = assess(make_intel(information="The girl at the counter speaks no English. She sleeps on the kitchen floor."),
                 rules)
    assert "crime.labour_exploitation_indicators" not in fired(one)
    assert "crime.labour_exploitation_indicators" in fired(two)
    assert two.priority is Priority.HIGH


def test_domestic_violence_against_an_adult_is_safeguarding_but_a_stranger_assault_is_not(
        rules: RoutingRules) -> None:
    """safeguarding.victim_of_harm: violence from a partner is a safety concern; a one-off assault by strangers
    goes to the crime desk only."""
    partner = assess(make_intel(information="Her partner punched her in the face last night.",
                                subjects=[{"role": "at_risk", "name": "Leanne", "approx_age": 31}]), rules)
    stranger = assess(make_intel(information="He was punched by a stranger outside a nightclub.",
                                 subjects=[{"role": "at_risk", "name": "Connor", "approx_age": 24}]), rules)
    assert Outcome.SAFEGUARDING in partner.outcomes
    assert Outcome.SAFEGUARDING not in stranger.outcomes
    assert Outcome.CRIME_DESK in stranger.outcomes


# ------------------------------------------------------------------- rules 2026.11.4 additions


def test_negation_ends_at_and_when_a_new_verb_phrase_starts(rules: RoutingRules) -> None:
    """'speaks no English and sleeps on the kitchen floor': the 'no' negates English, not the sleeping."""
    decision = assess(make_intel(information="She speaks no English and sleeps on the kitchen floor."), rules)
    assert "crime.labour_exploitation_indicators" in fired(decision)
    assert decision.priority is Priority.HIGH


@pytest.mark.parametrize(
    "sentence",
    [
        "No knives and guns were found at the address.",  # one clause: 'guns' is not an opener
        "He was searched and no knife was found.",  # the negation comes after the 'and'
        "Nobody has been threatened or stabbed.",
        "No one mentioned a knife.",
    ],
)
def test_negation_still_reaches_within_its_clause(rules: RoutingRules, sentence: str) -> None:
    decision = assess(make_intel(information=sentence), rules)
    assert Outcome.CRIME_DESK not in decision.outcomes


@pytest.mark.parametrize(
    "sentence",
    [
        "No weapons were seen, and he was stabbed in the leg.",
        "Nobody saw it happen and he was stabbed in the leg.",
        "There were no witnesses, he said he was stabbed.",
    ],
)
def test_a_new_clause_after_and_or_a_comma_is_not_negated(rules: RoutingRules, sentence: str) -> None:
    decision = assess(make_intel(information=sentence), rules)
    assert "crime.weapons_serious_violence" in fired(decision)


def test_a_hypothetical_reaches_across_a_relative_clause(rules: RoutingRules) -> None:
    """'what would happen to someone who carried a knife' stays hypothetical past 'who'."""
    decision = assess(
        make_intel(information="In PSHE he asked what would happen to someone who carried a knife for protection."),
        rules,
    )
    assert "crime.weapons_serious_violence" not in fired(decision)


def test_love_bites_and_an_adult_boyfriend_is_sexual_activity_with_a_child(rules: RoutingRules) -> None:
    decision = assess(
        make_intel(categories=["child_sexual_exploitation"],
                   subjects=[{"role": "at_risk", "name": "Amy", "approx_age": 15}],
                   information="She has love bites on her neck and says her boyfriend is 22."),
        rules,
    )
    assert Outcome.CRIME_DESK in decision.outcomes
    assert decision.priority is Priority.HIGH


def test_missing_category_alone_does_not_make_a_child_high(rules: RoutingRules) -> None:
    """'Missing, exploited or trafficked' ticked for a child whose concern is self-harm is medium; with a
    missing episode in the text it is high."""
    subjects = [{"role": "at_risk", "name": "Amy", "approx_age": 15}]
    self_harm = assess(make_intel(categories=["missing_exploited_trafficked"], subjects=subjects,
                                  information="She disclosed thoughts of ending her life."), rules)
    missing = assess(make_intel(categories=["missing_exploited_trafficked"], subjects=subjects,
                                information="She went missing for two nights."), rules)
    assert self_harm.priority is Priority.MEDIUM
    assert missing.priority is Priority.HIGH


def test_buying_for_money_in_a_report_about_controlled_drugs_is_possible_supply(rules: RoutingRules) -> None:
    decision = assess(make_intel(information="She bought sweets from a boy for £5; they look like cannabis gummies."),
                      rules)
    assert "crime.drug_purchase" in fired(decision)
    alcohol = assess(make_intel(information="She bought a coat from a friend for £5. She was drinking."), rules)
    assert "crime.drug_purchase" not in fired(alcohol)


# ------------------------------------------------------------------ policy decisions (rules 2026.11.5)


def test_child_exploitation_signs_alone_are_safeguarding_not_crime_desk(rules: RoutingRules) -> None:
    """A missing child with unexplained money or gifts and nobody else described: safeguarding at high, no crime
    desk. Once someone else acting on the child is described (an older man), it is also the crime desk."""
    child = [{"role": "at_risk", "name": "Jordan", "approx_age": 14}]
    alone = assess(make_intel(information="Jordan came back after two nights missing with £200 and new trainers.",
                              categories=["missing_exploited_trafficked"], subjects=child), rules)
    assert Outcome.CRIME_DESK not in decision_outcomes(alone)
    assert Outcome.SAFEGUARDING in decision_outcomes(alone) and alone.priority is Priority.HIGH
    with_adult = assess(make_intel(information="Jordan came back after two nights missing with £200 and new "
                                               "trainers; he was dropped off by an older man in a black Audi.",
                                   categories=["missing_exploited_trafficked"], subjects=child), rules)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= set(with_adult.outcomes)
    assert with_adult.priority is Priority.HIGH


def test_a_concern_checked_and_ruled_out_gives_way_unless_something_new_is_reported(rules: RoutingRules) -> None:
    """`none_of`: a knife rumour searched for and not found is not the crime desk; a cleared child concern is
    not safeguarding, unless something new is disclosed in the same report."""
    rumour = assess(make_intel(information="A rumour that Tyler carries a blade was checked. His bag was searched "
                                           "and no knife was found.",
                               subjects=[{"role": "other", "name": "Tyler", "approx_age": 15}]), rules)
    assert Outcome.CRIME_DESK not in decision_outcomes(rumour)
    child = [{"role": "at_risk", "name": "Grace", "approx_age": 15}]
    cleared = assess(make_intel(information="Staff have spoken to Grace and the school has no concerns.",
                                categories=["child_sexual_exploitation"], subjects=child), rules)
    assert decision_outcomes(cleared) == {Outcome.INTELLIGENCE_LOG}
    disclosed = assess(make_intel(information="Staff have spoken to Grace and the school has no concerns, but she "
                                              "disclosed something about her uncle.",
                                  categories=["child_sexual_exploitation"], subjects=child), rules)
    assert Outcome.SAFEGUARDING in decision_outcomes(disclosed)


def decision_outcomes(decision: Decision) -> set[Outcome]:
    return set(decision.outcomes)


# ------------------------------------------------------------------ rules 2026.11.6


def test_a_negation_cue_does_not_cancel_a_phrase_that_is_itself_a_clearance(rules: RoutingRules) -> None:
    """'No smell, nothing of concern': 'nothing of concern' sits after the negating 'No', but it is a
    statement that a concern was cleared (assertion.exempt_lexicons), so the dealing suspicion gives way."""
    assert "concern_cleared" in rules.assertion.exempt_lexicons
    subject = [{"role": "other", "name": "Dana", "approx_age": 36}]
    cleared = assess(make_intel(subjects=subject, information="A neighbour thought there was dealing at flat 12. "
                                "Visited: clients of her hairdressing business. No smell, nothing of concern."),
                     rules)
    assert "crime.drug_supply" not in fired(cleared)
    suspected = assess(make_intel(subjects=subject, information="A neighbour thinks there is dealing at flat 12."),
                       rules)
    assert "crime.drug_supply" in fired(suspected)


def test_exempt_lexicons_must_exist() -> None:
    """The assertion section's lexicon lists are checked against the lexicons when the rules load."""
    dumped = load_rules().model_dump()
    for field in ("exempt_lexicons", "historical_offences"):
        with pytest.raises(ValueError, match="unknown lexicon 'no_such_lexicon'"):
            RoutingRules.model_validate({**dumped, "assertion": {**dumped["assertion"], field: ["no_such_lexicon"]}})


def test_an_unknown_assertion_key_is_refused() -> None:
    """A misspelt trigger list in the rules file is an error at start-up, not a list silently ignored."""
    dumped = load_rules().model_dump()
    with pytest.raises(ValueError, match="negated_befor"):
        RoutingRules.model_validate({**dumped, "assertion": {**dumped["assertion"], "negated_befor": ["no"]}})


def test_an_adult_person_of_concern_beside_a_child_in_an_exploitation_report_is_crime_desk(
    rules: RoutingRules,
) -> None:
    """Policy reading of 2026.11.6: in a child exploitation report an adult named or described as a person of
    concern beside a child at risk is someone else acting on the child. A child of concern is not enough, and
    'missing, exploited or trafficked' ticked for a toddler hit at home does not count without a sign."""
    child = {"role": "at_risk", "name": "Amber", "approx_age": 15}
    adult = {"role": "person_of_concern", "aliases": ["Deano"], "description": "Man about 30 with a black Audi"}
    peer = {"role": "person_of_concern", "name": "Kyle", "approx_age": 15}
    text = "Amber has been seen with Deano after school."
    with_adult = assess(make_intel(categories=["child_sexual_exploitation"], subjects=[child, adult],
                                   information=text), rules)
    assert "crime.child_exploitation_person_of_concern" in fired(with_adult)
    assert with_adult.priority is Priority.HIGH
    with_peer = assess(make_intel(categories=["child_sexual_exploitation"], subjects=[child, peer],
                                  information="Amber has been seen with Kyle after school."), rules)
    assert "crime.child_exploitation_person_of_concern" not in fired(with_peer)
    toddler = assess(make_intel(categories=["missing_exploited_trafficked"],
                                subjects=[{"role": "at_risk", "name": "Lily", "approx_age": 3},
                                          {"role": "person_of_concern", "name": "Dave"}],
                                information="Lily has bruises on her arms and said Dave smacked her."), rules)
    assert "crime.child_exploitation_person_of_concern" not in fired(toddler)


@pytest.mark.parametrize(
    ("sentence", "age", "rule_id"),
    [
        ("Three lads in the flat, tenant sleeping on the sofa and his bedroom locked.", 44,
         "crime.cuckooing_indicators"),
        ("He waits outside her work most evenings and sends 40-50 msgs a day from new numbers.", 44,
         "crime.harassment"),
        ("People walk up, hand over cash and get a small wrap from him.", 44, "crime.drug_supply"),
        ("Comes in with cash in carrier bags, split into several transfers to different names.", 44,
         "crime.other_offence"),
        ("She is going abroad in the summer to have \"the special cutting\".", 44, "crime.harmful_practices"),
        ("Child in the same nappy as yesterday, fridge empty.", 2, "crime.child_neglect"),
    ],
)
def test_indicators_added_in_2026_11_6_fire(rules: RoutingRules, sentence: str, age: int, rule_id: str) -> None:
    subjects = [{"role": "at_risk", "name": "Sam", "approx_age": age}]
    assert rule_id in fired(assess(make_intel(information=sentence, subjects=subjects), rules))


def test_razor_blades_on_a_shopping_list_are_not_weapons(rules: RoutingRules) -> None:
    decision = assess(make_intel(information="They fill bags with razor blades and meat and walk out."), rules)
    assert "crime.weapons_serious_violence" not in fired(decision)
    assert "crime.theft" in fired(decision)


def test_a_missing_adult_found_safe_is_not_safeguarding(rules: RoutingRules) -> None:
    subject = [{"role": "other", "name": "Peter", "approx_age": 44}]
    found = assess(make_intel(subjects=subject, information="Peter, reported missing yesterday, has come home. "
                              "There are no concerns about his welfare."), rules)
    assert Outcome.SAFEGUARDING not in decision_outcomes(found)
    still_missing = assess(make_intel(subjects=subject, information="Peter was reported missing yesterday."), rules)
    assert Outcome.SAFEGUARDING in decision_outcomes(still_missing)


# ------------------------------------------------------------------ rules 2026.11.7


def test_a_negation_word_answered_before_a_comma_does_not_negate_what_follows(rules: RoutingRules) -> None:
    """'When told no, he pulled a kitchen knife': the 'no' is an answer, not a negation of the knife."""
    told_no = assess(make_intel(information="He demanded diazepam and, when told no, pulled a kitchen knife and "
                                            "waved it at staff."), rules)
    assert "crime.weapons_serious_violence" in fired(told_no)
    negated = assess(make_intel(information="He demanded diazepam; no knife was seen."), rules)
    assert "crime.weapons_serious_violence" not in fired(negated)


def test_a_reduced_relative_clause_ends_a_negation(rules: RoutingRules) -> None:
    decision = assess(make_intel(information="A spectator nobody recognised punched the referee in the face."), rules)
    assert "crime.violence_or_threats" in fired(decision)


def test_a_threat_to_kill_is_a_threat_not_serious_violence(rules: RoutingRules) -> None:
    threat = assess(make_intel(information='She said "he\'ll kill me if I say anything".'), rules)
    assert "crime.violence_or_threats" in fired(threat)
    assert "crime.weapons_serious_violence" not in fired(threat)
    killed = assess(make_intel(information="His brother was killed in a fight last year."), rules)
    assert "crime.weapons_serious_violence" in fired(killed)


def test_a_child_concern_checked_and_explained_is_not_exploitation(rules: RoutingRules) -> None:
    child = [{"role": "at_risk", "name": "Jayden", "approx_age": 14}]
    explained = assess(make_intel(categories=["criminal_exploitation"], subjects=child, information=(
        "Jayden had a new iPhone. Dad confirmed it was his birthday present and sent a photo of the receipt; "
        "we are satisfied there is no concern.")), rules)
    assert decision_outcomes(explained) == {Outcome.INTELLIGENCE_LOG}
    unexplained = assess(make_intel(categories=["criminal_exploitation"], subjects=child,
                                    information="Jayden has a new iPhone he will not explain."), rules)
    assert Outcome.SAFEGUARDING in decision_outcomes(unexplained) and unexplained.priority is Priority.HIGH


def test_training_about_a_harm_is_not_the_harm(rules: RoutingRules) -> None:
    subject = [{"role": "other", "name": "Andrei", "approx_age": 38}]
    training = assess(make_intel(subjects=subject, information="After the modern slavery training a colleague "
                                 "asked about Andrei's lifts to work."), rules)
    assert "crime.trafficking_forced_labour" not in fired(training)
    talk = assess(make_intel(subjects=subject, information="After a knife crime talk he asked a question."), rules)
    assert "crime.weapons_serious_violence" not in fired(talk)


def test_a_child_carrying_a_knife_is_also_safeguarding(rules: RoutingRules) -> None:
    boy = [{"role": "person_of_concern", "description": "Boy in school uniform", "approx_age": 16}]
    decision = assess(make_intel(subjects=boy, information="He showed another boy a kitchen knife in his "
                                 "waistband and said it was for the lads who jumped him."), rules)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= decision_outcomes(decision)
    assert decision.priority is Priority.HIGH


# ------------------------------------------------------------------ the clue prefilter (speed, not behaviour)


def test_clues_are_words_a_match_cannot_do_without() -> None:
    from services.router.domain import _clues

    assert _clues("nappy rash") == ("napp",)  # the stem: nappy and nappies both hold it
    assert set(_clues(r"re:\b(?:benefits|pension)\s+(?:go|goes)\s+into\b")) == {"benefits", "pension"}
    assert _clues(r"re:\b(?:her|his)\s+bank\s+card\b") == ("bank",)  # an everyday word is a poor clue
    assert _clues(r"re:\b(?:\d+)?\s*am\b") == ()  # nothing of three letters is required: always run


def test_the_clue_prefilter_never_changes_a_decision(monkeypatch: pytest.MonkeyPatch, rules: RoutingRules) -> None:
    """Every labelled case is assessed the same with the prefilter as with every term run on every text."""
    import services.router.domain as domain
    from services.router.corpora import DEFAULT_CORPORA_DIR, MAIN_CORPUS, batches, cases, intel_of

    files = [MAIN_CORPUS, *(batch.file for batch in batches())]
    intels = [intel_of(n, case) for name in files for n, case in enumerate(cases(DEFAULT_CORPORA_DIR / name))]
    with_clues = [assess(intel, rules) for intel in intels]
    monkeypatch.setattr(domain, "_clues", lambda term: ())
    monkeypatch.setattr(domain, "_INDEXES", {})
    assert [assess(intel, rules) for intel in intels] == with_clues


def test_a_person_of_concern_in_an_offence_report_goes_to_the_crime_desk(rules: RoutingRules) -> None:
    """Naming someone as a person of concern in a report of organised crime is reporting a possible offence by
    them, even in words no lexicon knows; not when the report says the concern was ruled out, and not for
    anti-social behaviour alone (noise, nuisance)."""
    person = {"role": "person_of_concern", "name": "Dylan"}
    text = "Every Friday he sells designer trainers from the boot of a van; the labels are misspelt."
    reported = assess(make_intel(categories=["organised_crime"], subjects=[person], information=text), rules)
    assert "crime.person_of_concern" in fired(reported)
    assert Outcome.CRIME_DESK in reported.outcomes and reported.priority is Priority.MEDIUM
    cleared = assess(make_intel(categories=["organised_crime"], subjects=[person],
                                information=text + " Trading standards checked: nothing of concern."), rules)
    nuisance = assess(make_intel(categories=["anti_social_behaviour"], subjects=[person],
                                 information="He plays loud music most nights."), rules)
    assert Outcome.CRIME_DESK not in cleared.outcomes
    assert Outcome.CRIME_DESK not in nuisance.outcomes


def test_someone_at_risk_kept_at_a_cannabis_grow_is_possible_trafficking(rules: RoutingRules) -> None:
    text = "Windows blacked out, a strong smell of cannabis and he never goes out."
    kept = assess(make_intel(subjects=[{"role": "at_risk", "description": "Teenage boy"}], information=text), rules)
    empty_house = assess(make_intel(information=text), rules)
    assert "crime.cannabis_farm_worker" in fired(kept)
    assert set(kept.outcomes) >= {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} and kept.priority is Priority.HIGH
    assert "crime.cannabis_cultivation" in fired(empty_house) and empty_house.priority is Priority.MEDIUM


def test_grooming_of_an_adult_is_medium_unless_sexual(rules: RoutingRules) -> None:
    """An 82-year-old told to keep an online 'boyfriend' secret: fraud and safeguarding, medium. Sexual
    grooming of an adult, or grooming of a child, stays high."""
    adult = {"role": "at_risk", "name": "Margaret", "approx_age": 82}
    romance = assess(make_intel(subjects=[adult], information="He has told her not to tell her family."), rules)
    sexual = assess(make_intel(categories=["child_sexual_exploitation"], subjects=[adult],
                               information="He comes to her room and has told her not to tell her family."), rules)
    child = assess(make_intel(subjects=[{**adult, "approx_age": 14}],
                              information="He has told her not to tell her family."), rules)
    assert "crime.grooming_adult" in fired(romance) and romance.priority is Priority.MEDIUM
    assert Outcome.CRIME_DESK in romance.outcomes
    assert sexual.priority is Priority.HIGH and child.priority is Priority.HIGH


@pytest.mark.parametrize(
    ("sentence", "rule_id"),
    [
        ("He said there's no point now he's kicked out of school.", "crime.violence_or_threats"),
        ("He has fresh cuts and bruises from falls when drunk.", "crime.violence_or_threats"),
        ("Ben is missing school most Mondays to care for his mum.", "safeguarding.missing_person"),
        ("CCTV shows two former pupils throwing bricks at the windows.", "safeguarding.child_harm"),
    ],
)
def test_words_that_only_look_like_a_concern_do_not_fire(rules: RoutingRules, sentence: str, rule_id: str) -> None:
    assert rule_id not in fired(assess(make_intel(subjects=[{"role": "at_risk", "approx_age": 40}],
                                                  information=sentence), rules))


def test_a_worry_that_turned_out_otherwise_clears_a_suspected_offence(rules: RoutingRules) -> None:
    decision = assess(make_intel(
        subjects=[{"role": "at_risk", "approx_age": 84}],
        information="Neighbours were worried someone was taking his pension, but it is his daughter collecting it "
                    "as agreed, and the bank sees nothing odd."), rules)
    assert Outcome.CRIME_DESK not in decision.outcomes


def test_a_home_taken_over_is_cuckooing_at_high(rules: RoutingRules) -> None:
    decision = assess(make_intel(
        subjects=[{"role": "at_risk", "name": "Graham", "approx_age": 54}],
        information="Two lads from London are staying at his and won't leave, they've got his key, and he sleeps on "
                    "the landing because they told him to keep out of the living room."), rules)
    assert "crime.cuckooing_indicators" in fired(decision)
    assert decision.priority is Priority.HIGH


@pytest.mark.parametrize(
    "sentence",
    [
        "Staff have not seen or heard of any fights, damage or anyone being approached.",
        "He didn't say he had one or that anybody had threatened him.",
    ],
)
def test_not_seen_or_heard_and_did_not_say_negate_the_clause(rules: RoutingRules, sentence: str) -> None:
    assert Outcome.CRIME_DESK not in assess(make_intel(information=sentence), rules).outcomes


def test_forced_labour_checked_and_ruled_out_is_not_a_concern(rules: RoutingRules) -> None:
    """'Working for nothing' was the worry; contracts, own passports and 'no concerns were found' clear it."""
    decision = assess(make_intel(
        categories=["modern_slavery"],
        information="A customer worried the car wash staff might be working for nothing. A licensing visit found "
                    "written contracts; they held their own passports. No concerns were found."), rules)
    assert Outcome.CRIME_DESK not in decision.outcomes and Outcome.SAFEGUARDING not in decision.outcomes


@pytest.mark.parametrize(
    "sentence",
    [
        "After their unpaid work session they were kicking in the glass panels of the bus shelter.",
        "The group on mopeds is noisy and customers find it intimidating.",
    ],
)
def test_probation_unpaid_work_and_an_intimidating_crowd_are_not_forced_labour_or_threats(
    rules: RoutingRules, sentence: str
) -> None:
    fired_rules = fired(assess(make_intel(information=sentence), rules))
    assert not fired_rules & {"crime.trafficking_forced_labour", "crime.violence_or_threats"}


# ------------------------------------------------------------------ rules 2026.12.1


def outcomes_of(rules: RoutingRules, information: str, subjects: list[dict[str, Any]] | None = None,
                categories: list[str] | None = None) -> tuple[set[Outcome], Priority]:
    decision = assess(make_intel(information=information, subjects=subjects or [],
                                 categories=categories or ["anti_social_behaviour"]), rules)
    return set(decision.outcomes), decision.priority


@pytest.mark.parametrize("cue", ["isnt", "doesnt", "didnt", "wasnt", "hasnt", "wont", "cant"])
def test_negation_written_without_an_apostrophe_still_negates(rules: RoutingRules, cue: str) -> None:
    """Informal notes drop the apostrophe: "he isnt carrying a knife" negates the knife as "isn't" does; the same
    sentence without the cue fires."""
    negated, _ = outcomes_of(rules, f"Mum says her son {cue} carrying a knife to the park.")
    assert Outcome.CRIME_DESK not in negated
    present, priority = outcomes_of(rules, "Mum says her son is carrying a knife to the park.")
    assert Outcome.CRIME_DESK in present and priority is Priority.HIGH


@pytest.mark.parametrize(
    "sentence",
    [
        "The farm manager holds their bank cards and the PIN numbers and hands them 30 pounds a week.",
        "Anil says he owes 9,000 pounds to the agent for the job, and the boss takes it out of his wages.",
        "The boss has all their passports, and they were told they must stay until the debt is paid.",
        "The workers are locked in from outside at night and were brought over in the back of a lorry.",
        "The man told her she must \"pay it back\" by working in his friend's flat.",
    ],
)
def test_implicit_debt_bondage_and_control_is_slavery_at_high(rules: RoutingRules, sentence: str) -> None:
    """Documents or bank cards kept by someone else, a debt taken from wages, "pay back", locked in from outside:
    possible trafficking or forced labour, to the crime desk and safeguarding at high."""
    outcomes, priority = outcomes_of(rules, sentence, [{"role": "at_risk", "approx_age": 30}], ["modern_slavery"])
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= outcomes and priority is Priority.HIGH


@pytest.mark.parametrize(
    "sentence",
    [
        "A volunteer wondered whether the boss holds their bank cards. Staff checked: they keep their own bank "
        "cards, have written contracts and there are no concerns.",
        "If the agent takes the debt out of his wages he will tell us.",
        "Nothing indicates anybody holds their passports or that they owe money to an agent.",
    ],
)
def test_debt_bondage_signs_ruled_out_or_hypothetical_do_not_fire(rules: RoutingRules, sentence: str) -> None:
    """The same signs checked and ruled out, only supposed ("if"), or said not to be there ("nothing indicates")
    are not slavery."""
    decision = assess(make_intel(information=sentence, subjects=[{"role": "at_risk", "approx_age": 30}],
                                 categories=["modern_slavery"]), rules)
    assert not fired(decision) & {"crime.trafficking_forced_labour", "crime.labour_exploitation_indicators"}
    assert decision.priority is not Priority.HIGH


def test_pay_after_rent_and_a_daily_minibus_together_are_labour_exploitation(rules: RoutingRules) -> None:
    """Pay left "after rent and transport" and a minibus taking them every morning are two indicators: enough for
    the labour-exploitation checklist; one of them alone is not."""
    both = "A minibus picks them up every morning at 5. They get 50 pounds a week \"after rent and transport\"."
    assert "crime.labour_exploitation_indicators" in fired(assess(make_intel(information=both), rules))
    one = "They get 50 pounds a week \"after rent and transport\"."
    assert "crime.labour_exploitation_indicators" not in fired(assess(make_intel(information=one), rules))


ADULT_AT_RISK = [{"role": "at_risk", "name": "Doreen", "approx_age": 68, "description": "lives alone"}]


@pytest.mark.parametrize(
    "sentence",
    [
        "Doreen says her \"new mates\" have been staying at her flat for a fortnight.",
        "A man calling himself her carer would not let the visitors in. People are in and out all night, and he "
        "has her post office card.",
    ],
)
def test_implicit_cuckooing_is_high(rules: RoutingRules, sentence: str) -> None:
    """New "mates" staying at a vulnerable adult's home, or callers all night with someone else holding their card
    and keeping visitors out: cuckooing, crime desk and safeguarding at high."""
    outcomes, priority = outcomes_of(rules, sentence, ADULT_AT_RISK)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= outcomes and priority is Priority.HIGH


@pytest.mark.parametrize(
    "sentence",
    [
        "Doreen's new mates are not staying at her flat; she was worried they might ask.",
        "If people start coming to the door all night we will let you know; nobody has her bank card.",
    ],
)
def test_cuckooing_signs_negated_or_feared_do_not_fire(rules: RoutingRules, sentence: str) -> None:
    """Cuckooing signs denied or only feared are not cuckooing."""
    decision = assess(make_intel(information=sentence, subjects=ADULT_AT_RISK), rules)
    assert not fired(decision) & {"crime.cuckooing", "crime.cuckooing_indicators"}


def test_cuckooing_checked_and_ruled_out_does_not_fire(rules: RoutingRules) -> None:
    """Friends staying at her flat, checked by her social worker and ruled out, is not cuckooing."""
    decision = assess(make_intel(subjects=ADULT_AT_RISK, information=(
        "Neighbours saw friends staying at her flat. Her social worker has spoken to her: it is her grandson "
        "and his partner, staying while their house is repaired. No concerns.")), rules)
    assert not fired(decision) & {"crime.cuckooing", "crime.cuckooing_indicators"}
    assert decision.priority is not Priority.HIGH


WORKER_AT_RISK = [{"role": "at_risk", "name": "Priya", "approx_age": 22}]


def test_stalking_in_plain_words_is_crime_desk_and_safeguarding(rules: RoutingRules) -> None:
    """Followed home, messaged from new accounts every time she blocks him: harassment, to the crime desk, and a
    safeguarding concern for the person targeted."""
    outcomes, _ = outcomes_of(rules, "Her ex-colleague has followed her home twice and messages her from new "
                                     "accounts every time she blocks him.", WORKER_AT_RISK)
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= outcomes


@pytest.mark.parametrize(
    "sentence",
    [
        "If he follows her home again she will call the police.",
        "He hasnt followed her home and she has not heard from him since March.",
    ],
)
def test_stalking_feared_or_negated_does_not_fire(rules: RoutingRules, sentence: str) -> None:
    """A stalking sign that is only supposed or is denied is not harassment."""
    assert "crime.harassment" not in fired(assess(make_intel(information=sentence, subjects=WORKER_AT_RISK), rules))


@pytest.mark.parametrize(
    "sentence",
    [
        "After the match he shouted \"ill break your legs\" at the linesman.",
        "The landlord said he will \"ring immigration\" on anyone who complains.",
    ],
)
def test_threats_written_informally_are_crime_desk(rules: RoutingRules, sentence: str) -> None:
    """A threat without an apostrophe ("ill break your legs") or a threat to report someone to immigration is a
    threat: the crime desk."""
    assert "crime.violence_or_threats" in fired(assess(make_intel(information=sentence), rules))


@pytest.mark.parametrize(
    "sentence",
    [
        "The linesman was ill; break time came early and the match was called off.",
        "He never said he would ring immigration; the tenants misunderstood.",
    ],
)
def test_words_like_a_threat_or_a_denied_threat_do_not_fire(rules: RoutingRules, sentence: str) -> None:
    """"ill" as an illness, and a denied threat, are not threats."""
    assert "crime.violence_or_threats" not in fired(assess(make_intel(information=sentence), rules))


@pytest.mark.parametrize(
    "sentence",
    [
        "He says there is no point living now and he has been giving his things away to the other tenants.",
        "She gave her coat and phone to friends, said goodbye to the staff and has not eaten for several days.",
    ],
)
def test_implicit_suicidal_intent_is_safeguarding(rules: RoutingRules, sentence: str) -> None:
    """No point living, giving possessions away, saying goodbye: someone's safety is a concern."""
    outcomes, _ = outcomes_of(rules, sentence, [{"role": "at_risk", "name": "Sam", "approx_age": 40}])
    assert Outcome.SAFEGUARDING in outcomes


def test_possessions_not_given_away_are_not_suicidal_intent(rules: RoutingRules) -> None:
    """Someone who is not giving his things away (he is moving house) shows no suicidal intent."""
    outcomes, _ = outcomes_of(rules, "He is not giving his things away to anyone; he is moving house next week "
                                     "and is happy about it.", [{"role": "other", "name": "Sam", "approx_age": 40}])
    assert Outcome.SAFEGUARDING not in outcomes


CHILD_AT_RISK = [{"role": "at_risk", "name": "Kai", "approx_age": 14}]


@pytest.mark.parametrize(
    "sentence",
    [
        "A man at the garage asks him to carry a sports bag to a car and gives him £20 each time.",
        "The groundsman pays him in cash to look after a rucksack and told him to keep it between us.",
    ],
)
def test_a_child_paid_to_carry_bags_or_keep_secrets_is_criminal_exploitation(
    rules: RoutingRules, sentence: str
) -> None:
    """A child paid by an adult to carry a bag or keep a secret: possible criminal exploitation, crime desk and
    safeguarding at high."""
    outcomes, priority = outcomes_of(rules, sentence, CHILD_AT_RISK, ["drug_related_harm"])
    assert {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} <= outcomes and priority is Priority.HIGH


def test_a_childs_errand_checked_and_explained_is_not_exploitation(rules: RoutingRules) -> None:
    """The same errand checked and explained (his uncle, shopping, mum confirmed) is not exploitation."""
    decision = assess(make_intel(subjects=CHILD_AT_RISK, categories=["drug_related_harm"], information=(
        "His uncle asks him to carry a bag to the car and gives him £5. Staff have spoken to his mum: it is the "
        "weekly shopping. No concerns.")), rules)
    assert "crime.child_exploitation_by_adult" not in fired(decision)
    assert decision.priority is not Priority.HIGH


def test_a_childs_gifts_explained_as_birthday_presents_are_cleared(rules: RoutingRules) -> None:
    """New phone and earbuds explained as birthday presents, with no other concerns: the worry is closed, intel
    log only; the same signs unexplained are safeguarding at high."""
    cleared = assess(make_intel(subjects=CHILD_AT_RISK, categories=["criminal_exploitation"], information=(
        "Staff were worried about his new phone and earbuds. They were birthday presents from his gran; no other "
        "concerns.")), rules)
    assert set(cleared.outcomes) == {Outcome.INTELLIGENCE_LOG}
    present = assess(make_intel(subjects=CHILD_AT_RISK, categories=["criminal_exploitation"],
                                information="Staff are worried about his new phone and earbuds."), rules)
    assert Outcome.SAFEGUARDING in present.outcomes and present.priority is Priority.HIGH


def test_a_missing_episode_resolved_is_not_safeguarding(rules: RoutingRules) -> None:
    """A child who went missing and was found at a relative's, all fine and nobody else involved, logged for the
    record: no longer a safeguarding concern."""
    decision = assess(make_intel(subjects=CHILD_AT_RISK, categories=["missing_exploited_trafficked"], information=(
        "Kai went missing after football on Friday. He was found at about 8pm at his aunt's; all fine, nobody else "
        "involved. Ticked missing for the record only.")), rules)
    assert set(decision.outcomes) == {Outcome.INTELLIGENCE_LOG}


def test_supply_history_that_is_over_is_not_a_current_offence(rules: RoutingRules) -> None:
    """A conviction for supply served and over (released years ago, nothing current) is not the crime desk; supply
    today is."""
    subject = [{"role": "other", "name": "Lee", "approx_age": 45}]
    past = assess(make_intel(subjects=subject, information=(
        "Lee was convicted of supplying cocaine and released in 2019; he is out of that life, works at the depot. "
        "Nothing current.")), rules)
    assert Outcome.CRIME_DESK not in past.outcomes
    now = assess(make_intel(subjects=subject, information="Lee is supplying cocaine from the depot car park."), rules)
    assert Outcome.CRIME_DESK in now.outcomes


def test_fgm_described_without_the_word_is_high(rules: RoutingRules) -> None:
    """A plan to take girls abroad "to make them clean" is FGM described without the word: crime desk and
    safeguarding at high; the same words negated ("would never let anyone") are not."""
    girls = [{"role": "at_risk", "name": "Zara", "approx_age": 8}]
    planned = assess(make_intel(subjects=girls, information=(
        "The aunt said the family will take the girls abroad in the summer so an elder can make them clean.")), rules)
    assert "crime.harmful_practices" in fired(planned) and planned.priority is Priority.HIGH
    refused = assess(make_intel(subjects=girls, information=(
        "The mother said she would never let anyone make them clean; she is against it.")), rules)
    assert "crime.harmful_practices" not in fired(refused)


def test_neglect_in_plain_words_is_crime_desk_and_safeguarding(rules: RoutingRules) -> None:
    """Needles left on the kitchen table and a child always starving: neglect of a child, crime desk and
    safeguarding at medium; needles said not to be there are not."""
    child = [{"role": "at_risk", "name": "Ava", "approx_age": 7}]
    neglect = assess(make_intel(subjects=child, information=(
        "Ava is always starving at breakfast club and says there are needles on the kitchen table.")), rules)
    assert "crime.child_neglect" in fired(neglect) and neglect.priority is Priority.MEDIUM
    none = assess(make_intel(subjects=child, information="The home visit found no needles on the kitchen table."),
                  rules)
    assert "crime.child_neglect" not in fired(none)


def test_laundering_in_plain_words_is_crime_desk(rules: RoutingRules) -> None:
    """Sports bags of cash taken in, amounts far too large for a small business: possible money laundering; a
    business with no such signs is not."""
    outcomes, _ = outcomes_of(rules, "The travel agent takes sports bags of cash from men in cars; the amounts are "
                                     "far too large for a small shop.", [{"role": "other", "name": "Omar"}])
    assert Outcome.CRIME_DESK in outcomes
    plain, _ = outcomes_of(rules, "The travel agent sells coach tickets and is busy at weekends.",
                           [{"role": "other", "name": "Omar"}])
    assert Outcome.CRIME_DESK not in plain
