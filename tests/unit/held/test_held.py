"""Held intel, pure (services/sanitiser/held.py): the sealed held record, its revisions, and redaction.

(These live apart from tests/unit/sanitiser/, which holds the scrubber's own tests and corpus.)
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from schemas import HeldIntel, HeldStatus, SanitisedIntel
from services.common.envelope import EnvelopeError, KeyringError, PrivateKeyring
from services.sanitiser.domain import REDACTION_MARKER
from services.sanitiser.held import HeldRecordUnreadable, current, hold, open_held, redact, released, revise
from services.sanitiser.residual import assess_residual_risk

M = REDACTION_MARKER
EMAIL = "jo.bloggs@example.org"


def intel(information: str = f"Leah is collected from school by an older man in a white van. Contact {EMAIL}.",
          **extra: Any) -> SanitisedIntel:
    return SanitisedIntel.model_validate({
        "intel_id": uuid.uuid4().hex, "received_on": "2026-11-20", "categories": ["child_sexual_exploitation"],
        "information": information, "how_known": "told_by_third_party", "lawful_basis": "safeguarding",
        "redaction_count": 2, **extra})


def held(keyring: PrivateKeyring, item: SanitisedIntel | None = None) -> HeldIntel:
    item = item or intel()
    # The sanitiser seals to the unseal key's public half only.
    return hold(item, assess_residual_risk(item), keyring.recipient(), held_on=date(2026, 11, 20))


def test_a_held_record_seals_the_intel_and_excerpts_and_shows_only_codes() -> None:
    """Revision 1 is `held`, readable only as id, day, score and reason codes; the intel and the reasons'
    excerpts open from its envelope with the unseal private key."""
    keyring = PrivateKeyring.generate("unseal")
    record = held(keyring)
    assert (record.revision, record.status, record.held_on) == (1, HeldStatus.HELD, date(2026, 11, 20))
    assert record.reason_codes == ["email_address"] and record.score == 1.0
    on_the_wire = record.model_dump_json()
    assert EMAIL not in on_the_wire and "white van" not in on_the_wire
    content = open_held(record, keyring)
    assert content.intel.information.endswith(f"Contact {EMAIL}.")
    assert [(r.code, r.excerpt) for r in content.reasons] == [("email_address", EMAIL)]


def test_a_held_envelope_opens_only_under_its_own_intel_id_and_keyring() -> None:
    """An envelope moved onto another intel's record, or opened with another unseal key, does not open."""
    keyring = PrivateKeyring.generate("unseal")
    record, other = held(keyring), held(keyring)
    moved = other.model_copy(update={"sealed": record.sealed})
    with pytest.raises(EnvelopeError):
        open_held(moved, keyring)
    with pytest.raises((EnvelopeError, KeyringError)):
        open_held(record, PrivateKeyring.generate("unseal"))


def test_a_revision_after_redaction_is_assessed_again_and_release_drops_the_envelope() -> None:
    """After redacting the e-mail, the next revision is `redacted` with no reasons left; the released
    revision after it carries no sealed intel, so nothing can be opened from it."""
    keyring = PrivateKeyring.generate("unseal")
    first = held(keyring)
    redaction = redact(open_held(first, keyring).intel, [EMAIL])
    second = revise(first, redaction.intel, keyring.recipient())
    assert (second.revision, second.status, second.reason_codes, second.score) == (2, HeldStatus.REDACTED, [], 0)
    assert second.held_on == first.held_on
    assert open_held(second, keyring).reasons == []
    closed = released(second)
    assert (closed.revision, closed.status, closed.sealed) == (3, HeldStatus.RELEASED, None)
    with pytest.raises(HeldRecordUnreadable):
        open_held(closed, keyring)


def test_the_state_of_an_intel_is_its_highest_revision() -> None:
    """`current` keeps each intel's highest revision, so a revision 1 published again (a redelivery)
    after the officer's later revisions does not make a released intel look held again."""
    keyring = PrivateKeyring.generate("unseal")
    first = held(keyring)
    second = revise(first, redact(open_held(first, keyring).intel, [EMAIL]).intel, keyring.recipient())
    third = released(second)
    other = held(keyring)
    state = current([first, other, second, third, first])
    assert state == {first.intel_id: third, other.intel_id: other}


def test_redaction_replaces_each_text_in_any_case_in_every_free_text_field() -> None:
    """Each given text goes from the information and from subjects', locations' and vehicles' descriptions
    and subjects' addresses, whatever its case; each replacement adds one to redaction_count."""
    item = intel(
        f"Jo Bloggs said Leah is picked up daily. Ask JO BLOGGS or {EMAIL.upper()}.",
        subjects=[{"role": "at_risk", "name": "Leah", "description": "Jo bloggs says she is 14",
                   "address": "c/o jo bloggs, Flat 2"}],
        locations=[{"description": "Outside the shop where Jo Bloggs works"}],
        vehicles=[{"colour": "white", "description": "Seen by jo Bloggs"}],
    )
    redaction = redact(item, ["jo bloggs", EMAIL])
    assert redaction.found == (6, 1)
    out = redaction.intel
    assert out.information == f"{M} said Leah is picked up daily. Ask {M} or {M}."
    assert out.subjects[0].description == f"{M} says she is 14"
    assert out.subjects[0].address == f"c/o {M}, Flat 2"
    assert out.subjects[0].name == "Leah"
    assert out.locations[0].description == f"Outside the shop where {M} works"
    assert out.vehicles[0].description == f"Seen by {M}"
    assert out.redaction_count == item.redaction_count + 7
    assert out.intel_id == item.intel_id and out.categories == item.categories


def test_redaction_takes_whole_words_longest_first_and_leaves_markers_alone() -> None:
    """A short text is replaced only as a whole word ("K" not inside "Kyle"), a longer text that holds a
    shorter one is replaced whole, and the scrubber's own markers are never rewritten."""
    item = intel(f"Thanks, K. Kyle Kent says {M} knows. Kyle Kent again.")
    redaction = redact(item, ["k", "red", "Kyle Kent", "Kyle"])
    assert redaction.intel.information == f"Thanks, {M}. {M} says {M} knows. {M} again."
    assert redaction.found == (1, 0, 2, 0)


def test_redaction_reports_a_text_that_is_not_there_and_refuses_blank_ones() -> None:
    """A text that does not occur is counted 0 (the command then refuses to publish); blank texts are refused."""
    item = intel()
    assert redact(item, ["Nobody Here"]).found == (0,)
    assert redact(item, ["Nobody Here"]).intel.information == item.information
    with pytest.raises(ValueError, match="space"):
        redact(item, ["  "])


def test_redaction_keeps_the_contracts_length_limits() -> None:
    """A marker longer than what it replaces never takes a field past its contract limit."""
    item = intel("a " * 9_999 + "b")
    out = redact(item, ["a"]).intel
    assert len(out.information) == 20_000 and out.information.endswith("...")


def test_the_review_clock_counts_held_reports_and_those_past_the_target() -> None:
    """Waiting counts held and redacted records, never released ones; overdue are those held more days than the
    target before today (two days allowed: held on the 20th is due by the 22nd, overdue on the 23rd)."""
    from services.sanitiser.held import review_clock

    keyring = PrivateKeyring.generate("unseal")
    old = held(keyring)  # held on 2026-11-20
    recent = hold(intel(), assess_residual_risk(intel()), keyring.recipient(), held_on=date(2026, 11, 22))
    redacted = revise(old, intel(), keyring.recipient())
    gone = released(held(keyring))
    records = [old, recent, redacted, gone]
    assert review_clock(records, date(2026, 11, 22), 2).overdue == 0
    clock = review_clock(records, date(2026, 11, 23), 2)
    assert (clock.waiting, clock.overdue) == (3, 2)
