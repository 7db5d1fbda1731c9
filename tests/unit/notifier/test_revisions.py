"""What a reviewed revision tells the teams (issue 12 step 3): a team it adds is told once, a team it removes gets a
withdrawal, a team it keeps hears nothing more; every notice has an id of its own that follows from the revision,
and none carries the reviewer's reason or id."""

from __future__ import annotations

from schemas import Decision
from services.notifier.domain import notification_id, revision_change, route
from tests.decision_helpers import review
from tests.unit.notifier.test_routing import decision, table, team

TEAMS = table([team("crime-desk", outcomes=["crime_desk"]), team("safeguarding", outcomes=["safeguarding"])])
REASON = "Officer agrees: a child aged 14 is at risk at the flat."


def amended(base: Decision, outcomes: list[str], priority: str | None = None) -> Decision:
    return review(base, outcomes=outcomes, priority=priority, reason=REASON, officer_id="officer-0042").revised()


def told(made: Decision) -> list[tuple[str, bool]]:
    return sorted((note.team, note.withdrawn) for note in route(made, TEAMS).notifications)


def test_revision_change_is_added_withdrawn_and_kept_teams() -> None:
    """The teams of the revision before against the revision's own: added, withdrawn, kept."""
    change = revision_change(["crime-desk", "youth"], ["crime-desk", "safeguarding"])
    assert (change.added, change.withdrawn, change.kept) == ({"safeguarding"}, {"youth"}, {"crime-desk"})


def test_a_revision_that_adds_safeguarding_tells_safeguarding_only() -> None:
    """Crime desk was told of the draft and keeps it: only safeguarding hears of revision 1."""
    base = decision(["crime_desk"])
    assert told(base) == [("crime-desk", False)]
    assert told(amended(base, ["crime_desk", "safeguarding"])) == [("safeguarding", False)]


def test_a_revision_that_removes_an_outcome_withdraws_it_from_its_team() -> None:
    """Crime desk taken off: it gets a withdrawal naming what stands now; safeguarding, added, is told."""
    revised = amended(decision(["crime_desk"]), ["safeguarding"])
    assert told(revised) == [("crime-desk", True), ("safeguarding", False)]
    withdrawal = next(n for n in route(revised, TEAMS).notifications if n.withdrawn)
    assert withdrawal.subject.startswith("[CPI WITHDRAWN]") and "no longer comes to crime-desk" in withdrawal.body
    assert withdrawal.alert.withdrawn and withdrawal.alert.revision == 1


def test_a_confirmation_tells_nobody_again() -> None:
    """A confirmation changes no team: no notification at all."""
    base = decision(["crime_desk", "safeguarding"])
    assert told(review(base, action="confirmed").revised()) == []


def test_a_priority_change_reaches_a_team_that_takes_only_high_priority() -> None:
    """Teams are compared, not outcomes: raising the priority adds a team whose condition is high priority."""
    routes = table([team("crime-desk", outcomes=["crime_desk"]),
                    team("exploitation", outcomes=["crime_desk"], priorities=["high"])])
    revised = amended(decision(["crime_desk"], priority="medium"), ["crime_desk"], "high")
    assert [(n.team, n.withdrawn) for n in route(revised, routes).notifications] == [("exploitation", False)]


def test_each_revisions_notices_have_ids_of_their_own_and_the_draft_keeps_its_id() -> None:
    """The draft's id is what it was before revisions (ledgers carry over); a revision's referral and its
    withdrawal differ from it and each other, and a redelivered revision makes the very same ids."""
    base = decision(["crime_desk"])
    draft = route(base, TEAMS).notifications[0]
    assert draft.notification_id == notification_id(base.decision_id, "crime-desk")
    first = amended(base, ["safeguarding"])
    second = amended(first, ["crime_desk", "safeguarding"])
    ids = {n.notification_id for made in (first, second) for n in route(made, TEAMS).notifications}
    assert len(ids) == 3 and draft.notification_id not in ids  # withdrawn at 1, told again at 2, safeguarding at 1
    assert [n.notification_id for n in route(second, TEAMS).notifications] == [
        n.notification_id for n in route(second, TEAMS).notifications]
    assert told(second) == [("crime-desk", False)]


def test_no_notice_carries_the_reviewers_reason_or_id() -> None:
    """Teams may be outside the police: the reason and officer id stay on the decision topics."""
    revised = amended(decision(["crime_desk"]), ["safeguarding"])
    for note in route(revised, TEAMS).notifications:
        for text in (note.subject, note.body, note.alert.model_dump_json()):
            assert REASON not in text and "officer-0042" not in text
