"""The intake worker's handler: the same validation as the edge, rejections without content, garbage refused."""

from __future__ import annotations

import json

import pytest

from schemas import AcceptedSubmission, RejectedSubmission, Submission
from schemas.topics import ACCEPTED, REJECTED
from services.common.envelope import PrivateKeyring, open_sealed, seal_to
from services.common.errors import DecodeError
from services.intake.receiving import received_record
from services.intake.worker import make_handler
from tests.unit.intake.samples import valid_submission


async def test_a_valid_record_is_published_as_accepted_still_sealed() -> None:
    """A received record that validates is published to accepted, its submission still sealed to its id."""
    keyring = PrivateKeyring.generate("transport")
    record = received_record(Submission.model_validate(valid_submission()), keyring.recipient())
    [out] = await make_handler(keyring)(record.model_dump_json().encode())
    assert out.topic is ACCEPTED
    accepted = AcceptedSubmission.model_validate_json(out.value)
    assert b"Harriet" not in out.value
    opened = json.loads(open_sealed(accepted.sealed_submission, accepted.submission_id.encode(), keyring))
    assert opened["source"]["name"] == "Harriet Canary-Teacher"


async def test_an_invalid_record_is_rejected_with_codes_and_paths_only() -> None:
    """A sealed submission that fails validation becomes a rejection carrying codes and paths, no content."""
    keyring = PrivateKeyring.generate("transport")
    base = received_record(Submission.model_validate(valid_submission()), keyring.recipient())
    data = valid_submission(information="Canary: short", lawful_basis="other")
    sealed = seal_to(json.dumps(data).encode(), base.submission_id.encode(), keyring.recipient())
    record = base.model_copy(update={"sealed_submission": sealed})
    [out] = await make_handler(keyring)(record.model_dump_json().encode())
    assert out.topic is REJECTED
    rejection = RejectedSubmission.model_validate_json(out.value)
    assert {(e.path, e.code) for e in rejection.errors} == {
        ("/information", "too_short"), ("/lawful_basis_detail", "lawful_basis_detail_required")}
    assert b"Canary" not in out.value and b"Harriet" not in out.value


@pytest.mark.parametrize("value", [b"", b"\x00\xff", b"{}", b'{"submission_id": 1}', b"[]"])
async def test_undecodable_bytes_raise_decode_error_for_the_dead_letter_topic(value: bytes) -> None:
    """Bytes that are not a received record raise DecodeError, which the stage dead-letters."""
    with pytest.raises(DecodeError):
        await make_handler(PrivateKeyring.generate("transport"))(value)


async def test_a_record_sealed_with_another_key_is_undecodable() -> None:
    """An envelope that does not open with this keyring is a DecodeError, not a crash or an acceptance."""
    other = PrivateKeyring.generate("transport")
    record = received_record(Submission.model_validate(valid_submission()), other.recipient())
    with pytest.raises(DecodeError) as raised:
        await make_handler(PrivateKeyring.generate("transport"))(record.model_dump_json().encode())
    assert raised.value.code == "sealed_submission_unreadable"
