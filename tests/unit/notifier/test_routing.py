"""The alert routing table (issue 17): who is told of a decision, chosen by pure code; and a bad file refused
with its line named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas import Decision
from services.common.errors import ConfigurationError
from services.common.settings import NotifierSettings
from services.notifier.adapters.delivery import SINGLE_ADDRESS_VERSION, routing_from
from services.notifier.domain import RoutingTable, load_routing_table, notification_id, route, team_matches

EXAMPLE = Path(__file__).parents[3] / "docs" / "alert-routing.example.yaml"
SECRET = "s" * 40
ENV = {"CPI_WEBHOOK_SECRET_BRISTOL_MASH": SECRET}


def decision(outcomes: list[str], *, priority: str = "medium", categories: list[str] | None = None,
             subjects: list[dict[str, Any]] | None = None, postcodes: list[str] | None = None) -> Decision:
    return Decision.model_validate({
        "decision_id": "d" * 32, "intel_id": "1" * 32, "outcomes": outcomes, "priority": priority,
        "grading": {"source_evaluation": 2, "intelligence_assessment": "B", "handling_code": "P"},
        "thrive": {"threat": "t", "harm": "h", "risk": "r", "vulnerability": "v"},
        "rationale": [{"rule_id": "r", "reason": "A reason."}], "rules_version": "test",
        "intel": {"intel_id": "1" * 32, "received_on": "2026-11-20",
                  "categories": categories or ["criminal_exploitation"],
                  "subjects": subjects if subjects is not None else [{"role": "at_risk", "approx_age": 14}],
                  "locations": [{"description": "A place", "postcode": p} for p in (postcodes or [])],
                  "information": "Some sanitised information about what is happening.",
                  "how_known": "told_by_subject", "lawful_basis": "safeguarding", "redaction_count": 0},
    })


def table(teams: list[dict[str, Any]], default: str | None = None) -> RoutingTable:
    return RoutingTable.model_validate({"version": "t1", "default_team": default or teams[0]["name"],
                                        "teams": teams}, context={"environ": ENV})


def team(name: str, **when: Any) -> dict[str, Any]:
    when.setdefault("outcomes", ["crime_desk", "safeguarding"])
    return {"name": name, "when": when, "channels": [{"email": f"{name}@force.example"}]}


def told(made: Decision, routes: RoutingTable) -> list[str]:
    return [note.team for note in route(made, routes).notifications]


@pytest.fixture
def example() -> RoutingTable:
    return load_routing_table(EXAMPLE, ENV, ["force.example"])


def matches(made: Decision, **when: Any) -> bool:
    return team_matches(table([team("t", **when)]).teams[0], made)


def test_outcomes_condition_holds_when_any_listed_outcome_is_decided() -> None:
    """A team is told only of decisions with one of its outcomes."""
    assert matches(decision(["intelligence_log", "crime_desk"]), outcomes=["crime_desk"])
    assert not matches(decision(["intelligence_log", "safeguarding"]), outcomes=["crime_desk"])


def test_categories_condition_needs_one_shared_category() -> None:
    """A category condition holds when the intel has any of the listed categories."""
    made = decision(["crime_desk"], categories=["modern_slavery", "organised_crime"])
    assert matches(made, categories=["modern_slavery", "community_cohesion"])
    assert not matches(made, categories=["community_cohesion"])


def test_priorities_condition() -> None:
    """A priority condition holds for the listed priorities only."""
    assert matches(decision(["crime_desk"], priority="high"), priorities=["high"])
    assert not matches(decision(["crime_desk"], priority="medium"), priorities=["high"])


@pytest.mark.parametrize(("subject", "child", "adult"), [
    ({"role": "at_risk", "approx_age": 14}, True, False),
    ({"role": "at_risk", "approx_age": 18}, False, True),
    ({"role": "at_risk", "date_of_birth": "2010-11-21"}, True, False),   # 15 on the day received (2026-11-20)
    ({"role": "at_risk", "date_of_birth": "2008-11-20"}, False, True),   # 18 that very day
    ({"role": "at_risk", "description": "a 16-year-old girl"}, True, False),
    ({"role": "at_risk"}, False, False),                                 # age unknown: neither team
    ({"role": "person_of_concern", "approx_age": 12}, False, False),     # not the one at risk
])
def test_at_risk_condition_tells_a_child_from_an_adult(subject: dict[str, Any], child: bool, adult: bool) -> None:
    """`at_risk: child` holds when a subject at risk is under 18 on the day the intel was received, `adult`
    when one is 18 or over; an unknown age, or a child who is not the one at risk, satisfies neither."""
    made = decision(["safeguarding"], subjects=[subject])
    assert (matches(made, at_risk="child"), matches(made, at_risk="adult")) == (child, adult)


@pytest.mark.parametrize(("postcodes", "areas", "expected"), [
    (["BS5 9AB"], ["BS"], True),
    (["BS5 9AB"], ["BS5"], True),
    (["BS5 9AB"], ["BS50"], False),
    (["BS15 1AA"], ["BS1"], False),
    (["B1 1AA"], ["BS"], False),
    (["B1 1AA"], ["B"], True),
    (["EC1A 1BB"], ["EC1"], True),
    (["M1 1AE", "BS5 9AB"], ["GL", "BS5"], True),
    ([], ["BS"], False),
])
def test_areas_condition_reads_postcode_areas_and_districts(postcodes: list[str], areas: list[str],
                                                            expected: bool) -> None:
    """An area condition holds when a location's postcode is in a listed area (`BS`) or district (`BS5`, or
    `EC1` for `EC1A`); a district is not a prefix (`BS1` is not `BS15`), and no postcode matches no area."""
    assert matches(decision(["crime_desk"], postcodes=postcodes), areas=areas) is expected


def test_every_matching_team_is_told_once_per_channel(example: RoutingTable) -> None:
    """A high-priority child case in BS5 with an offence reaches, each once, the force control room, the Bristol
    children's hub (by both its channels), and the east Bristol crime desk; not the adults' team nor the
    modern slavery unit."""
    made = decision(["intelligence_log", "crime_desk", "safeguarding"], priority="high", postcodes=["BS5 9AB"])
    routing = route(made, example)
    assert not routing.unmatched
    assert [(n.team, n.channel.target) for n in routing.notifications] == [
        ("force-control-room", "control-room@force.example"),
        ("bristol-childrens-hub", "mash@bristol.force.example"),
        ("bristol-childrens-hub", "https://mash.bristol.force.example/cpi/alerts"),
        ("bristol-east-crime-desk", "crime-desk.east@bristol.force.example"),
    ]
    assert len({n.notification_id for n in routing.notifications}) == 4
    hub = [n for n in routing.notifications if n.team == "bristol-childrens-hub"]
    assert {n.outcome.value for n in hub} == {"safeguarding"}
    assert all(n.routing_version == "2026.12.1" and n.alert.team == n.team for n in routing.notifications)


def test_a_decision_no_team_takes_goes_to_the_default_team(example: RoutingTable) -> None:
    """A medium safeguarding decision about an adult outside every listed area is sent to the default team,
    says so in its body, and is marked unmatched (for the metric and log event); never dropped."""
    made = decision(["safeguarding"], subjects=[{"role": "at_risk", "approx_age": 40}], postcodes=["M1 1AE"])
    routing = route(made, example)
    assert routing.unmatched
    assert [n.team for n in routing.notifications] == ["force-control-room"]
    assert "default team" in routing.notifications[0].body
    assert routing.notifications[0].outcome.value == "safeguarding"


def test_intelligence_log_alone_goes_only_to_teams_that_ask_for_it(example: RoutingTable) -> None:
    """An intelligence-log-only decision is not 'unmatched': it goes to the teams that list that outcome (the
    modern slavery unit, for its category) and to nobody otherwise."""
    assert told(decision(["intelligence_log"], priority="low", categories=["modern_slavery"]), example) == [
        "modern-slavery-unit"]
    routing = route(decision(["intelligence_log"], priority="low"), example)
    assert (routing.notifications, routing.unmatched) == ([], False)


def test_notification_ids_are_stable_and_a_one_channel_team_keeps_its_old_id() -> None:
    """The same decision and table give the same ids (so a redelivery is recognised); a team with one channel
    has the id it had before teams could have several, so ledgers of earlier notifiers still hold."""
    routes = table([team("crime_desk", outcomes=["crime_desk"])])
    made = decision(["crime_desk"])
    first, again = route(made, routes).notifications, route(made, routes).notifications
    assert [n.notification_id for n in first] == [n.notification_id for n in again]
    # What the notifier before the routing table gave decision d...d's crime-desk notification.
    assert first[0].notification_id == notification_id("d" * 32, "crime_desk") == "f25ed7137737510aa36654ca8c87d1b9"


def test_the_single_address_settings_are_the_simplest_table() -> None:
    """Without CPI_ROUTING_TABLE, crime desk and safeguarding are two teams told of their own outcome, at their
    webhook where set, else their address; the table's version says where it came from."""
    settings = NotifierSettings(crime_desk_email="desk@force.example", safeguarding_webhook="https://s.example/h",
                                safeguarding_webhook_secrets=[SECRET])
    routes = routing_from(settings)
    assert routes.version == SINGLE_ADDRESS_VERSION
    made = decision(["intelligence_log", "crime_desk", "safeguarding"])
    assert [(n.team, n.channel.target) for n in route(made, routes).notifications] == [
        ("crime_desk", "desk@force.example"), ("safeguarding", "https://s.example/h")]
    webhook = route(made, routes).notifications[1].channel
    assert [s.get_secret_value() for s in webhook.signing_secrets] == [SECRET]  # type: ignore[union-attr]


def test_a_table_and_the_single_address_settings_together_are_refused(tmp_path: Path) -> None:
    """With CPI_ROUTING_TABLE set, a single-address setting too would be silently unused: refused, named."""
    settings = NotifierSettings(routing_table=EXAMPLE, crime_desk_email="desk@force.example")
    with pytest.raises(ConfigurationError, match="CPI_CRIME_DESK_EMAIL would be ignored"):
        routing_from(settings, ENV)


def test_the_example_table_in_the_docs_loads(example: RoutingTable) -> None:
    """docs/alert-routing.example.yaml is a valid table (so operators copy a working one)."""
    assert example.default_team == "force-control-room" and len(example.teams) == 5


def _last_line(text: str, fragment: str) -> int:
    return [n for n, line in enumerate(text.splitlines(), 1) if fragment in line][-1]


@pytest.mark.parametrize(("change", "fragment", "problem"), [
    (("at_risk: child", "at_risk: teenager"), "at_risk: teenager", "'child' or 'adult'"),
    (("areas: [BS]\n    channels:\n      - email: mash", "areas: [Bristol]\n    channels:\n      - email: mash"),
     "areas: [Bristol]", "should match pattern"),
    (("outcomes: [crime_desk]", "outcomes: [arrest]"), "outcomes: [arrest]", "intelligence_log"),
    (("email: msu@force.example", "email: msu@forse.example"), "msu@forse.example", "CPI_MAIL_ALLOWED_DOMAINS"),
    (("secrets: [CPI_WEBHOOK_SECRET_BRISTOL_MASH]", "secrets: [CPI_UNSET_SECRET]"), "CPI_UNSET_SECRET",
     "CPI_UNSET_SECRET must be set"),
    (("https://mash.bristol", "http://mash.bristol"), "http://mash.bristol", "must be https://"),
    (("default_team: force-control-room", "default_team: nobody"), "default_team: nobody", "not one of the teams"),
    (("name: bristol-adults-team", "name: bristol-childrens-hub"), "name: bristol-childrens-hub", "used twice"),
    (("      priorities: [high]", "      priorities: [high]\n      colour: red"), "colour: red", "Extra inputs"),
    (("    channels:\n      - email: control", "    channels: []\n    x:\n      - email: control"),
     "channels: []", "at least 1"),
])
def test_a_bad_table_stops_the_notifier_with_the_line_named(
    tmp_path: Path, change: tuple[str, str], fragment: str, problem: str
) -> None:
    """Each kind of mistake in the table (an unknown value, a malformed area, an address outside the allowed
    domains, a webhook secret not set or a plain-http webhook, an unknown default team, a name used twice, a
    field the format lacks, a team with no channel) raises ConfigurationError naming the file and the line."""
    text = EXAMPLE.read_text()
    assert change[0] in text
    bad = text.replace(change[0], change[1], 1)
    path = tmp_path / "routing.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigurationError) as raised:
        load_routing_table(path, ENV, ["force.example"])
    message = str(raised.value)
    assert f"{path}:{_last_line(bad, fragment)}:" in message, message
    assert problem in message, message


def test_a_table_that_is_not_yaml_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is refused with the line the parser stopped at."""
    path = tmp_path / "routing.yaml"
    path.write_text('version: "1"\ndefault_team: a\nteams:\n  - name: a\n   when: [\n')
    with pytest.raises(ConfigurationError, match=rf"{path}:5: not valid YAML"):
        load_routing_table(path, {}, [])
