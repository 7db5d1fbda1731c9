"""A batch of provenance sealed in one transaction, on real SQLite and PostgreSQL: all or none, in order,
and idempotent per submission (a redelivered batch, or a repeat inside one, gets the intel id it has)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest

from schemas import Source
from services.sanitiser.adapters import SealedStore, SealRequest

if TYPE_CHECKING:
    from tests.integration.sealed.conftest import Backend

IU = {"role": "intelligence_unit", "officer_id": "IU-4471", "reason": "Re-contact the source about new risk."}
RECEIVED = date(2025, 3, 14)


def source(name: str) -> Source:
    return Source(name=name, role="Teacher", organisation="Hollowmere Academy", organisation_type="education",
                  email="someone@school.example")


def requests(*names: str) -> list[SealRequest]:
    return [SealRequest(f"sub-{name}", source(name), RECEIVED) for name in names]


def test_a_batch_is_sealed_in_order_and_each_record_opens_to_its_own_source(store: SealedStore) -> None:
    """seal_batch returns one fresh intel id per request, in request order, and each opens to that request's
    source."""
    names = ("Ada One", "Ben Two", "Cy Three")
    intel_ids = store.seal_batch(requests(*names))
    assert len(set(intel_ids)) == 3
    assert [store.unseal(intel_id, **IU).name for intel_id in intel_ids] == list(names)


def test_a_redelivered_batch_gets_the_same_intel_ids_and_no_second_row(store: SealedStore, backend: Backend) -> None:
    """Sealing a batch again (redelivery), or a batch mixing sealed and new submissions, or one submission twice
    within a batch, yields the ids already given and stores one row per submission."""
    first = store.seal_batch(requests("Ada One", "Ben Two"))
    assert store.seal_batch(requests("Ada One", "Ben Two")) == first
    mixed = store.seal_batch(requests("Ben Two", "Cy Three", "Cy Three", "Ada One"))
    assert mixed[0] == first[1] and mixed[3] == first[0]
    assert mixed[1] == mixed[2] and mixed[1] not in first
    assert store.seal("sub-Cy Three", source("Cy Three"), RECEIVED) == mixed[1]
    assert backend.sql("SELECT COUNT(*) FROM sealed_records") == [(3,)]


def test_an_empty_batch_seals_nothing(store: SealedStore) -> None:
    """An empty batch is no transaction and no ids."""
    assert store.seal_batch([]) == []
    assert store.count() == 0


def _refuse_a_third_row(backend: Backend) -> None:
    """A database rule that fails any insert once two records exist: a batch of three fails at its last row."""
    if backend.name == "sqlite":
        backend.sql("CREATE TRIGGER full_up BEFORE INSERT ON sealed_records "
                    "WHEN (SELECT COUNT(*) FROM sealed_records) >= 2 BEGIN SELECT RAISE(ABORT, 'store full'); END")
        return
    backend.sql("CREATE FUNCTION full_up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF (SELECT COUNT(*) FROM sealed_records) >= 2 THEN RAISE EXCEPTION 'store full'; END IF; "
                "RETURN NEW; END $$")
    backend.sql("CREATE TRIGGER full_up BEFORE INSERT ON sealed_records FOR EACH ROW EXECUTE FUNCTION full_up()")


def test_a_batch_that_fails_part_way_leaves_none_of_it_sealed(store: SealedStore, backend: Backend) -> None:
    """The batch is one transaction: when its third insert fails, the first two are rolled back too, so a retry
    (or the stage's record-by-record fallback) starts from nothing half-written."""
    _refuse_a_third_row(backend)
    with pytest.raises(Exception, match="store full"):
        store.seal_batch(requests("Ada One", "Ben Two", "Cy Three"))
    assert backend.sql("SELECT COUNT(*) FROM sealed_records") == [(0,)]
    assert len(set(store.seal_batch(requests("Ada One", "Ben Two")))) == 2  # the store is still usable
