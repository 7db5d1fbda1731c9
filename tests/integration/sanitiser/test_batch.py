"""The sanitiser's batch handler with a real SQLite sealed store: a batch is sealed in one transaction, each
input keeps its own outcome (a bad one is its own error, the rest are released), and a redelivered batch
gets the same intel ids with no second row."""

from __future__ import annotations

from pathlib import Path

from schemas import AcceptedSubmission, SanitisedIntel
from services.bench import generated_submissions
from services.common.errors import DecodeError
from services.common.keys import load_edge_keys, load_intake_keys, load_sanitiser_keys
from services.common.serde import encode
from services.intake.receiving import received_record
from services.intake.worker import check_received
from services.sanitiser.adapters import open_sealed_store
from services.sanitiser.domain import load_scrub_config
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD
from services.sanitiser.worker import make_batch_handler
from tests.key_helpers import key_settings


def accepted_values(tmp_path: Path, count: int) -> list[bytes]:
    settings = key_settings(tmp_path)
    values = []
    for submission in generated_submissions(count, seed=3):
        accepted = check_received(received_record(submission, load_edge_keys(settings)), load_intake_keys(settings))
        assert isinstance(accepted, AcceptedSubmission)
        values.append(encode(accepted))
    return values


async def test_a_batch_is_sealed_together_each_input_with_its_own_outcome(tmp_path: Path) -> None:
    """Three good inputs and one that does not decode: the bad one is a DecodeError of its own, the three are
    released with three distinct intel ids and three sealed rows; the same batch redelivered (with one input
    repeated inside it) yields the same intel ids in the same places and no new row."""
    sanitiser = load_sanitiser_keys(key_settings(tmp_path))
    assert sanitiser.store.unseal_public is not None
    good = accepted_values(tmp_path, 3)
    store = open_sealed_store(f"sqlite:///{tmp_path / 'sealed.db'}", sanitiser.store)
    try:
        handle = make_batch_handler(sanitiser.transport, sanitiser.store.unseal_public, store, load_scrub_config(),
                                    DEFAULT_HOLD_THRESHOLD)
        first = await handle([good[0], b"not json", good[1], good[2]])
        assert isinstance(first[1], DecodeError)
        ids = [SanitisedIntel.model_validate_json(o[0].value).intel_id
               for o in (first[0], first[2], first[3]) if not isinstance(o, Exception)]
        assert len(set(ids)) == 3 and store.count() == 3
        again = await handle([good[2], good[0], good[1], good[0]])
        assert [SanitisedIntel.model_validate_json(o[0].value).intel_id
                for o in again if not isinstance(o, Exception)] == [ids[2], ids[0], ids[1], ids[0]]
        assert store.count() == 3
    finally:
        store.close()
